"""Spec files: the example specs load, every validation error names file/key/accepted values,
TOML round trips, and specs read off (sub-)graphs."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from alphanas.errors import SpecError
from alphanas.ir import GraphBuilder, OpKind, zoo
from alphanas.ir import OpKind as K
from alphanas.properties.base import Subject
from alphanas.properties.depth import DepthBound, DepthMode, DepthTarget
from alphanas.properties.resources import ResourceTarget
from alphanas.properties.shape import DimRange, ShapeTarget, SymbolicShapeTarget
from alphanas.properties.spec import (
    SearchSpace,
    Spec,
    load_spec,
    parse_spec,
    read_off_spec,
    spec_to_toml,
    toml_dumps,
)

EXAMPLES = sorted((Path(__file__).parent.parent / "examples" / "specs").glob("*.toml"))


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- valid specs ------------------------------------------------------------------------------


def test_there_are_example_specs() -> None:
    assert {p.name for p in EXAMPLES} >= {"downsample_block.toml", "symbolic_downsample.toml",
                                          "cifar_cnn.toml", "residual_range.toml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_load_and_round_trip(path: Path, tmp_path: Path) -> None:
    spec = load_spec(path)
    assert spec.source == str(path) and spec.targets()
    again = load_spec(write(tmp_path, spec_to_toml(spec)))
    assert again == spec


def test_downsample_example_content() -> None:
    spec = load_spec(next(p for p in EXAMPLES if p.name == "downsample_block.toml"))
    assert spec.name == "downsample block"
    assert spec.inputs == (("x", (1, 32, 32, 64)),)
    assert spec.concrete_inputs() == {"x": (1, 32, 32, 64)}
    assert spec.shape == ShapeTarget((("y", (1, 16, 16, 128)),))
    assert spec.depth == DepthTarget(((("x", "y"), DepthBound(3)),), None, DepthMode.AT_LEAST)
    assert spec.resources == ResourceTarget(max_params=100_000, max_flops=20_000_000)
    assert spec.search == SearchSpace((K.CONV, K.RELU, K.BATCH_NORM, K.ADD), 6)
    assert spec.mixing is None and not spec.is_symbolic


def test_symbolic_example_content() -> None:
    spec = load_spec(next(p for p in EXAMPLES if p.name == "symbolic_downsample.toml"))
    assert spec.is_symbolic and spec.concrete_inputs() is None
    assert isinstance(spec.shape, SymbolicShapeTarget)
    assert spec.shape.range_map["H"] == DimRange(32, 1024, 32)
    assert [str(e) for e in spec.shape.outputs[0][1]] == ["B", "H/2", "W/2", "512"]
    assert spec.example_inputs() == {"x": (1, 32, 32, 256)}


def test_minimal_spec_and_defaults() -> None:
    spec = parse_spec({"inputs": {"x": [1, 4]}, "depth": {"value": 2}})
    assert spec == Spec((("x", (1, 4)),), None, DepthTarget((), DepthBound(2)))
    assert spec.output_names is None and spec.targets() == [spec.depth]
    assert spec.source == "<spec>"


def test_mixing_section_is_delegated() -> None:
    from alphanas.properties.mixing import MixingTarget

    data = {"inputs": {"x": [1, 4]}, "outputs": {"y": [1, 4]},
            "mixing": {"pairs": [{"input": "x", "output": "y",
                                  "matrix": [["one", "none"], ["none", "all"]]}]}}
    spec = parse_spec(data)
    assert isinstance(spec.mixing, MixingTarget)
    assert parse_spec(tomllib.loads(spec_to_toml(spec))) == spec


# -- invalid specs ----------------------------------------------------------------------------

BAD = [
    ("[inputs]\nx = [1, 2\n", "invalid TOML: "),
    ("[inputs]\nx = [1, 4]\n[deph]\nvalue = 2\n",
     "unknown key 'deph' (accepted: context, depth, inputs, mixing, name, outputs, ranges, resources, search)"),
    ("name = 3\n[inputs]\nx = [1]\n", "name: expected a string, got 3"),
    ("[outputs]\ny = [1]\n", "missing section [inputs] (input name = shape, e.g. x = [1, 32, 32, 64])"),
    ("inputs = [1, 2]\n", "inputs: expected a table (input name = shape), got [1, 2]"),
    ("[inputs]\nx = [1, 0]\n", "inputs.x[1]: expected a positive int or a dim name (letters, digits, '_'), got 0"),
    ('[inputs]\n"a b" = 3\n', 'inputs."a b": expected a non-empty list of positive ints or dim names, got 3'),
    ("[inputs]\nx = [1, 4]\n[depth]\nmode = \"atleast\"\n\"x->y\" = 3\n",
     'depth.mode: expected one of at_least, exactly, range; got "atleast"'),
    ("[inputs]\nx = [1, 4]\n[depth]\n\"z->y\" = 3\n", "depth.\"z->y\": 'z' is not an input of the spec (inputs: x)"),
    ("[inputs]\nx = [1, 4]\n[outputs]\ny = [1, 4]\n[depth]\n\"x->w\" = 3\n",
     "depth.\"x->w\": 'w' is not an output of the spec (outputs: y)"),
    ("[inputs]\nx = [1, 4]\n[depth]\nmode = \"range\"\nvalue = 3\n",
     "depth.value: expected a table {min = int, max = int} (mode range), got 3"),
    ("depth = 3\n[inputs]\nx = [1, 4]\n", "depth: expected a table, got 3"),
    ("search = [\"conv\"]\n[inputs]\nx = [1, 4]\n", 'search: expected a table, got [\'conv\']'),
    ("[inputs]\nx = [1, 32]\n[outputs]\ny = [1, \"H/2\"]\n",
     'outputs.y[1]: "H/2" names a dim but the inputs have no dim names (write them as e.g. ["B", "H", "W", 64])'),
    ("[inputs]\nx = [\"B\", \"H\"]\n[outputs]\ny = [\"B\", \"H**2\"]\n[ranges]\nB = {min = 1, max = 2}\nH = {min = 1, max = 2}\n",
     'outputs.y[1]: expected a positive int, a dim name, or name*int, name/int, name+int, name-int; got "H**2"'),
    ("[inputs]\nx = [\"B\", 4]\n", "ranges: missing a range for dim 'B' (e.g. B = {min = 1, max = 64})"),
    ("[inputs]\nx = [2, 4]\n[ranges]\nB = {min = 1, max = 4}\n",
     "ranges.B: 'B' is not a dim name of the inputs (names: none)"),
    ("[inputs]\nx = [\"H\"]\n[ranges]\nH = {min = 40, max = 50, multiple_of = 32}\n",
     "ranges.H: the range [40, 50], multiple of 32 is empty"),
    ("[inputs]\nx = [1, 4]\n[resources]\nmax_param = 10\n",
     "resources: unknown key 'max_param' (accepted: max_flops, max_params, max_peak_activation)"),
    ("[inputs]\nx = [1, 4]\n[resources]\nmax_flops = -2e7\n",
     "resources.max_flops: expected a non-negative whole number (e.g. 100000 or 2e7), got -20000000.0"),
    ("[inputs]\nx = [1, 4]\n[search]\nops = [\"conv\", \"rleu\"]\n",
     "search.ops[1]: unknown op 'rleu'; expected one of: " + ", ".join(k.value for k in OpKind)),
    ("[inputs]\nx = [1, 4]\n[search]\nops = []\n", "search.ops: expected a non-empty list of op names, got []"),
    ("[inputs]\nx = [1, 4]\n[search]\nmax_ops = 0\n", "search.max_ops: expected a positive int, got 0"),
    ("[inputs]\nx = [1, 4]\n[search]\nmax_op = 3\n", "search: unknown key 'max_op' (accepted: max_ops, ops)"),
    ("[inputs]\nx = [1, 4]\n[mixing]\npairs = 3\n", "mixing.pairs: expected a list of tables, got 3"),
    ("[inputs]\nx = [1, 4]\n[[mixing.pairs]]\ninput = \"q\"\noutput = \"y\"\nmatrix = [[\"one\", \"none\"], [\"none\", \"all\"]]\n",
     "mixing.pairs[0]: 'q' is not an input of the spec (inputs: x)"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_spec_names_file_key_and_accepted_values(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    if message.endswith(": "):
        assert str(info.value).startswith(f"{path}: {message}")
    else:
        assert str(info.value) == f"{path}: {message}"


def test_toml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[inputs]\nx = [1, 4]\n\n[depth]\nmode = at_least\n")
    with pytest.raises(SpecError, match=r"invalid TOML: .*\(at line 5, column 8\)"):
        load_spec(path)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "absent.toml")
    assert str(info.value) == f"{tmp_path / 'absent.toml'}: cannot read: No such file or directory"
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"name = \"caf\xe9\"\n[inputs]\nx = [1]\n")
    with pytest.raises(SpecError, match=r"latin1\.toml: not UTF-8 text \(byte 11\)$"):
        load_spec(path)


def test_parse_spec_uses_its_source_name() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"inputs": {"x": [1]}, "depth": {"mode": "deep", "value": 1}}, "bench/task3")
    assert str(info.value) == 'bench/task3: depth.mode: expected one of at_least, exactly, range; got "deep"'


# -- reading off, writing ---------------------------------------------------------------------


def three_branch_subject() -> Subject:
    b = GraphBuilder("three_branch")
    x = b.input("input", (1, 16))
    rs = [b.op(K.RELU, b.op(K.DENSE, x, name=f"dense{i}", features=8), name=f"relu{i}")
          for i in range(3)]
    a0 = b.op(K.ADD, rs[0], rs[1], name="add0")
    a1 = b.op(K.ADD, rs[1], rs[2], name="add1")
    return Subject.sub(b.build([a0, a1]), ["relu0", "relu1", "relu2", "add0", "add1"])


@pytest.mark.parametrize("subject", [
    Subject.whole(zoo.build("cifar_cnn")),
    Subject.sub(zoo.build("cifar_cnn"), ["conv_layer1/conv", "conv_layer1/relu", "conv_layer1/avg_pool"]),
    Subject.whole(zoo.build("mlp")),
    three_branch_subject(),
], ids=["cifar", "cifar_block", "mlp", "three_branch"])
def test_read_off_round_trip(subject: Subject, tmp_path: Path) -> None:
    spec = read_off_spec(subject, name="read off")
    assert [t.name for t in spec.targets()] == ["shape", "depth", "mixing", "resources"]
    assert all(t.satisfied_by(subject) for t in spec.targets())
    text = spec_to_toml(spec)
    assert load_spec(write(tmp_path, text)) == spec


def test_read_off_values() -> None:
    spec = read_off_spec(three_branch_subject(), properties=("depth", "search"))
    assert spec.inputs == (("dense0", (1, 8)), ("dense1", (1, 8)), ("dense2", (1, 8)))
    assert spec.depth is not None and spec.depth.to_dict() == {
        "mode": "at_least", "dense0->add0": 2, "dense1->add0": 2, "dense1->add1": 2, "dense2->add1": 2}
    assert spec.search == SearchSpace((K.ADD, K.RELU), 5)
    assert spec.shape is None and spec.mixing is None and spec.resources is None
    with pytest.raises(ValueError, match="unknown property 'width'"):
        read_off_spec(three_branch_subject(), properties=("width",))


def test_written_toml_quotes_odd_names() -> None:
    doc = {"name": 'say "hi"\\\n\x7f é', "inputs": {"a/b": [1], "plain_name-2": [2], 'q"': [3]},
           "depth": {"mode": "range", "a/b->y": {"min": 1, "max": 2}},
           "m": {"pairs": [{"matrix": [["one", "none"], ["all", "many"]], "f": 1.5, "t": True}]}}
    text = toml_dumps(doc)
    assert '"a/b" = [1]' in text and "plain_name-2 = [2]" in text
    assert '"a/b->y" = {min = 1, max = 2}' in text and "[[m.pairs]]" in text
    assert tomllib.loads(text) == doc
