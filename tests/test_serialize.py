"""JSON round trips, every serialization error (message checked), atomic saves and DOT export."""

from __future__ import annotations

import copy
import json
import os
import re
import stat
from collections.abc import Callable
from typing import Any

import pytest

from alphanas.errors import SerializationError
from alphanas.ir import GraphBuilder, OpKind, Size, dim_of, rel, template, zoo
from alphanas.ir.graph import Graph
from alphanas.ir.serialize import (
    FORMAT,
    VERSION,
    atomic_write_text,
    dumps,
    from_json,
    load,
    loads,
    save,
    to_dot,
    to_json,
)

K = OpKind

# -- fixtures --------------------------------------------------------------------------------


def sized_graph() -> Graph:
    """A graph using every attribute encoding: Size (relative and dim_of), tuples of sizes,
    None defaults, floats, bools, choices, strings, axes, a template and its instances."""

    def body(b: GraphBuilder, x: str) -> str:
        y = b.op(K.CONV, x, name="expand", features=rel(2), kernel=(3, 3), groups=1)
        y = b.op(K.CONV, y, name="dw", features=rel(), kernel=3, groups=rel(), use_bias=False)
        y = b.op(K.SWISH, y, name="act")
        return b.op(K.CONV, y, name="project", features=dim_of(x), kernel=1)

    t = template("mbconv", body)
    b = GraphBuilder("sized")
    x = b.input("image", (2, 8, 8, 4))
    for i in range(2):
        (x,) = b.block(t, [x], prefix=f"stage/block{i}")
    y = b.op(K.RESHAPE, x, name="tokens", new_shape=(Size(axis=0), -1, dim_of(x, axis=3)))
    pos = b.op(K.PARAM, name="pos", shape=(1, dim_of(y, axis=1), dim_of(y, axis=2, mul=2, div=2)),
               stddev=0.5)
    y = b.op(K.ADD, y, pos, name="pos/add")
    y = b.op(K.EINSUM, y, y, name="gram", equation="bnd,bmd->bnm")
    y = b.op(K.SCALAR_MUL, y, name="scale", value=3)  # an int for a float attribute
    y = b.op(K.MEAN, y, name="mean", axes=1, keepdims=True)
    p = b.op(K.MAX_POOL, x, name="pool", window=(2, 0), padding="SAME")
    return b.build([y, p])


@pytest.fixture(scope="module")
def cnn_json() -> dict[str, Any]:
    return to_json(zoo.build("cifar_cnn"))


def _raises(obj: Any, match: str) -> SerializationError:
    with pytest.raises(SerializationError) as info:
        from_json(obj, "model.json")
    assert re.fullmatch(match, str(info.value)), str(info.value)
    return info.value


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_models_round_trip_equal(name: str) -> None:
    g = zoo.build(name)
    assert from_json(to_json(g)) == g
    assert loads(dumps(g)) == g
    assert json.loads(dumps(g)) == to_json(g)  # the dict really is plain JSON


def test_round_trip_keeps_sizes_tuples_and_block_structure() -> None:
    g = sized_graph()
    back = loads(dumps(g, indent=None))
    assert back == g
    assert hash(back) == hash(g)
    assert back.op("stage/block0/project").attr("features") == Size(tensor="image")
    assert back.op("stage/block1/project").attr("features") == Size(tensor="stage/block0/project")
    assert back.op("stage/block0/expand").attr("kernel") == (3, 3)
    assert back.op("pos").attr("shape") == (1, Size(axis=1, tensor="tokens"),
                                             Size(axis=2, mul=2, div=2, tensor="tokens"))
    assert back.op("mean").attr("axes") == (1,)
    assert back.op("pool").attr("strides") is None
    assert back.op("scale").attr("value") == 3.0 and isinstance(back.op("scale").attr("value"), float)
    assert [b.prefix for b in back.blocks] == ["stage/block0", "stage/block1"]


def test_size_encoding_is_documented_shape() -> None:
    obj = to_json(sized_graph())
    proj = next(o for o in obj["ops"] if o["name"] == "stage/block0/project")
    assert proj["attrs"]["features"] == {"size": {"axis": -1, "mul": 1, "div": 1, "tensor": "image"}}
    assert obj["format"] == FORMAT and obj["version"] == VERSION
    assert obj["templates"][0]["graph"]["inputs"] == [{"name": "input", "shape": None}]


def test_save_and_load_file(tmp_path) -> None:
    g = sized_graph()
    path = tmp_path / "model.json"
    save(g, path)
    assert load(path) == g
    assert load(str(path)) == g
    assert not [p for p in tmp_path.iterdir() if p.name != "model.json"]  # no temp file left


def test_lenient_optional_fields_are_accepted() -> None:
    obj = {"format": FORMAT, "version": 1,
           "inputs": [{"name": "x"}],
           "ops": [{"name": "p", "kind": "param", "attrs": {"shape": [1, 4]}},
                   {"name": "r", "kind": "relu", "inputs": ["x"]},
                   {"name": "s", "kind": "add", "inputs": ["r", "p"], "attrs": {}}],
           "outputs": ["s"]}
    g = from_json(obj)
    assert g.name == "" and g.input_shapes == (None,) and g.templates == () and g.blocks == ()
    assert g.op("p").attr("stddev") == 0.02  # default filled in


def test_nested_template_graph_may_carry_format_and_version(cnn_json) -> None:
    obj = copy.deepcopy(cnn_json)
    obj["templates"][0]["graph"].update(format=FORMAT, version=VERSION)
    assert from_json(obj) == zoo.build("cifar_cnn")


# -- errors ----------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """A mutation that sets (or, with _DELETE, removes) the field at a path like `ops[2].kind`."""

    def apply(obj: dict[str, Any]) -> None:
        keys: list[Any] = []
        for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
            keys.append(int(part[1:-1]) if part.startswith("[") else part)
        target = obj
        for k in keys[:-1]:
            target = target[k]
        if value is _DELETE:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value

    return apply


_DELETE = object()
# Paths refer to cifar_cnn: ops[0] is the 1x1 conv 'proj', ops[1] 'conv_layer0/conv'.

ERRORS: list[tuple[str, Mutation, str]] = [
    ("wrong version", _set("version", 7), r"model\.json: version 7 is not supported \(expected 1\)"),
    ("version type", _set("version", "1"), r'model\.json: version: expected an int, got "1"'),
    ("wrong format", _set("format", "onnx"),
     r'model\.json: format: expected "alphanas-graph", got "onnx"'),
    ("missing format", _set("format", _DELETE),
     r"model\.json: missing required field 'format' \(is this an alphanas graph file\?\)"),
    ("missing ops", _set("ops", _DELETE), r"model\.json: missing required field 'ops'"),
    ("missing kind", _set("ops[2].kind", _DELETE), r"model\.json: ops\[2\]: missing required field 'kind'"),
    ("unknown field", _set("ops[1].knd", "relu"),
     r"model\.json: ops\[1\]\.knd: unknown field \(expected one of: name, kind, inputs, attrs\)"),
    ("wrong kernel type", _set("ops[0].attrs.kernel", "x"),
     r'model\.json: ops\[0\]\.attrs\.kernel: expected int or list of ints, got "x"'),
    ("bool is not an int", _set("ops[0].attrs.kernel", [3, True]),
     r"model\.json: ops\[0\]\.attrs\.kernel: expected int or list of ints, got \[3, true\]"),
    ("wrong bool", _set("ops[0].attrs.use_bias", 1),
     r"model\.json: ops\[0\]\.attrs\.use_bias: expected true or false, got 1"),
    ("bad choice", _set("ops[0].attrs.padding", "FULL"),
     r'model\.json: ops\[0\]\.attrs\.padding: expected one of "SAME", "VALID", got "FULL"'),
    ("out of range", _set("ops[0].attrs.kernel", 0),
     r"model\.json: ops\[0\]: conv 'proj': attribute 'kernel' must be >= 1, got 0"),
    ("unknown attribute", _set("ops[0].attrs.stride", 2),
     r"model\.json: ops\[0\]\.attrs\.stride: unknown attribute of conv \(accepted: features, kernel, "
     r"strides, padding, dilation, groups, use_bias\)"),
    ("unknown op", _set("ops[2].kind", "convv"),
     r"model\.json: ops\[2\]\.kind: unknown op 'convv'; expected one of: conv, dense, .*, identity"),
    ("kind not a string", _set("ops[2].kind", 3), r"model\.json: ops\[2\]\.kind: expected a non-empty string, got 3"),
    ("ops not a list", _set("ops", {"a": 1}), r'model\.json: ops: expected a list, got \{"a": 1\}'),
    ("dangling input", _set("ops[3].inputs[0]", "ghost"),
     r"model\.json: ops\[3\]\.inputs\[0\]: unknown tensor 'ghost' \(not an input or op of the graph\)"),
    ("dangling output", _set("outputs", ["fc/logits", "nowhere"]),
     r"model\.json: outputs\[1\]: unknown tensor 'nowhere' \(not an input or op of the graph\)"),
    ("duplicate name", _set("ops[1].name", "proj"), r"model\.json: ops\[1\]\.name: duplicate name 'proj'"),
    ("arity", _set("ops[1].inputs", ["proj", "input"]),
     r"model\.json: ops\[1\]: conv 'conv_layer0/conv': takes 1 inputs, got 2"),
    ("cycle", _set("ops[0].inputs", ["flatten"]),
     r"model\.json: graph 'cifar_cnn': has a cycle: .*"),
    ("bad shape", _set("inputs[0].shape", [1, 0, 32, 3]),
     r"model\.json: inputs\[0\]\.shape: expected a list of positive ints or null, got \[1, 0, 32, 3\]"),
    ("size mul", _set("templates[0].graph.ops[0].attrs.features", {"size": {"mul": 0}}),
     r"model\.json: templates\[0\]\.graph\.ops\[0\]\.attrs\.features\.size: Size needs mul >= 1 .*"),
    ("size field type", _set("templates[0].graph.ops[0].attrs.features", {"size": {"axis": "-1"}}),
     r'model\.json: templates\[0\]\.graph\.ops\[0\]\.attrs\.features\.size\.axis: expected an int, got "-1"'),
    ("size unknown field", _set("templates[0].graph.ops[0].attrs.features", {"size": {"ax": 1}}),
     r"model\.json: templates\[0\]\.graph\.ops\[0\]\.attrs\.features\.size\.ax: unknown field .*"),
    ("size dangling tensor", _set("ops[0].attrs.features", {"size": {"tensor": "ghost"}}),
     r"model\.json: ops\[0\]\.attrs\.features: unknown tensor 'ghost' .*"),
    ("template error path", _set("templates[0].graph.ops[1].inputs", ["nope"]),
     r"model\.json: templates\[0\]\.graph\.ops\[1\]\.inputs\[0\]: unknown tensor 'nope' .*"),
    ("block dangling op", _set("blocks[1].ops[2]", "ghost"),
     r"model\.json: blocks\[1\]\.ops\[2\]: 'ghost' is not an op of the graph"),
    ("block unknown template", _set("blocks[0].template", "nope"),
     r"model\.json: block 'conv_layer0' uses unknown template 'nope'"),
]


@pytest.mark.parametrize(("mutate", "match"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_malformed_graph_is_rejected_with_path(cnn_json, mutate: Mutation, match: str) -> None:
    obj = copy.deepcopy(cnn_json)
    mutate(obj)
    _raises(obj, match)


def test_top_level_must_be_an_object() -> None:
    _raises([1, 2], r"model\.json: expected a JSON object at the top level, got \[1, 2\]")


def test_long_values_are_shortened_in_messages(cnn_json) -> None:
    obj = copy.deepcopy(cnn_json)
    obj["ops"][0]["attrs"]["kernel"] = "k" * 500
    err = _raises(obj, r'model\.json: ops\[0\]\.attrs\.kernel: expected int or list of ints, got "k+\.\.\.')
    assert len(str(err)) < 150


def test_invalid_json_text_names_line_and_column() -> None:
    with pytest.raises(SerializationError, match=r"^model\.json: invalid JSON at line 2, column 8: Expecting value$"):
        loads('{"ops": [\n  1, 2,, 3]}', "model.json")


def test_missing_file_names_the_path(tmp_path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(SerializationError) as info:
        load(path)
    assert str(info.value) == f"{path}: cannot read: No such file or directory"


def test_non_utf8_file_is_rejected(tmp_path) -> None:
    path = tmp_path / "bin.json"
    path.write_bytes(b'{"name": "\xff"}')
    with pytest.raises(SerializationError, match=r"bin\.json: not UTF-8 text \(byte 10\)"):
        load(path)


def test_bad_json_file_names_the_path(tmp_path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"format": "alphanas-graph", "version": 1,')
    with pytest.raises(SerializationError, match=re.escape(f"{path}: invalid JSON at line 1")):
        load(path)


# -- atomic save -----------------------------------------------------------------------------


def test_failed_save_leaves_existing_file_intact(tmp_path, monkeypatch) -> None:
    path = tmp_path / "model.json"
    save(zoo.build("mlp"), path)
    before = path.read_bytes()

    def boom(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("alphanas.ir.serialize.os.fsync", boom)
    with pytest.raises(OSError, match="No space left"):
        save(zoo.build("cifar_cnn"), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]


def test_save_replaces_and_keeps_permissions(tmp_path) -> None:
    path = tmp_path / "model.json"
    path.write_text("old")
    os.chmod(path, 0o640)
    save(zoo.build("mlp"), path)
    assert load(path) == zoo.build("mlp")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_save_into_missing_directory_names_the_target(tmp_path) -> None:
    path = tmp_path / "no" / "such" / "model.json"
    with pytest.raises(FileNotFoundError) as info:
        atomic_write_text(path, "{}")
    assert info.value.filename == str(path)


# -- DOT -------------------------------------------------------------------------------------

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|->|[{}\[\];=,]|[A-Za-z_][A-Za-z_0-9.]*|-?\d+(?:\.\d+)?|\S')


def _unquote(tok: str) -> str:
    return tok[1:-1].replace('\\"', '"') if tok.startswith('"') else tok


def parse_dot(text: str) -> tuple[set[str], list[tuple[str, str]], int, dict[str, str]]:
    """A small structural DOT reader: (declared nodes, edges, clusters, node attr text).

    Checks balanced braces and that every statement is a node, edge, attribute or subgraph.
    """
    toks = _TOKEN.findall(text)
    assert toks[:1] == ["digraph"] and toks[2] == "{" and toks[-1] == "}", toks[:3]
    nodes: set[str] = set()
    attrs: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    depth, clusters, i = 0, 0, 2
    while i < len(toks):
        t = toks[i]
        if t == "{":
            depth, i = depth + 1, i + 1
        elif t == "}":
            depth, i = depth - 1, i + 1
            assert depth >= 0, "unbalanced braces"
        elif t == "subgraph":
            assert toks[i + 1].startswith("cluster_") and toks[i + 2] == "{"
            clusters, i = clusters + 1, i + 2
        elif t in ("node", "edge", "graph") and toks[i + 1] == "[":
            i = toks.index("]", i) + 2
        elif toks[i + 1] == "=":
            assert toks[i + 3] == ";", toks[i:i + 4]  # graph attribute: key = value;
            i += 4
        elif toks[i + 1] == "->":
            edges.append((_unquote(t), _unquote(toks[i + 2])))
            i += 3
            if toks[i] == "[":
                i = toks.index("]", i) + 1
            assert toks[i] == ";"
            i += 1
        else:
            name = _unquote(t)
            assert toks[i + 1] == "[", f"unexpected token after {t}: {toks[i + 1]}"
            end = toks.index("]", i)
            assert toks[end + 1] == ";"
            nodes.add(name)
            attrs[name] = " ".join(toks[i + 2:end])
            i = end + 2
    assert depth == 0, "unbalanced braces"
    return nodes, edges, clusters, attrs


@pytest.mark.parametrize("name", ["cifar_cnn", "resnet18", "efficientnet_b0", "vit_ti16"])
def test_dot_declares_every_tensor_and_edge(name: str) -> None:
    g = zoo.build(name)
    nodes, edges, clusters, attrs = parse_dot(to_dot(g))
    assert nodes == set(g.input_names) | {o.name for o in g.ops}
    assert all(u in nodes and v in nodes for u, v in edges)
    assert {(i, o.name) for o in g.ops for i in o.inputs} <= set(edges)
    assert clusters == len(g.blocks)
    for out in g.outputs:
        assert "peripheries" in attrs[out]


def test_dot_labels_carry_kind_and_shape() -> None:
    text = to_dot(zoo.build("cifar_cnn"))
    assert '"fc/logits" [label="fc/logits\\ndense\\n(1, 10)"' in text
    assert 'label="conv_layer1 (conv_layer)"' in text


def test_dot_without_declared_shapes_omits_them() -> None:
    g = zoo.build("cifar_cnn").template("conv_layer").graph
    nodes, _, _, attrs = parse_dot(to_dot(g))
    assert nodes == {"input", "conv", "relu", "avg_pool"}
    assert "(" not in attrs["conv"]


def test_dot_size_references_are_dashed_edges() -> None:
    text = to_dot(sized_graph())
    assert '"image" -> "stage/block0/project" [style=dashed];' in text


def test_dot_escapes_awkward_names() -> None:
    b = GraphBuilder('my "net"')
    x = b.input('in"put', (1, 4))
    y = b.op(K.RELU, x, name='a "quoted" {name}; x -> y')
    y = b.op(K.TANH, y, name="back\\slash")
    g = b.build(y)
    nodes, edges, _, _ = parse_dot(to_dot(g))
    assert nodes == {'in"put', 'a "quoted" {name}; x -> y', "back\\\\slash"}
    assert len(edges) == 2
