"""JSON (de)serialization of graphs, Graphviz DOT export, and atomic file writes.

Format (version 1)::

    {"format": "alphanas-graph", "version": 1, "name": str,
     "inputs": [{"name": str, "shape": [int, ...] | null}],
     "ops": [{"name": str, "kind": str, "inputs": [str], "attrs": {name: value}}],
     "outputs": [str],
     "templates": [{"name": str, "graph": <the same format; format/version optional>}],
     "blocks": [{"template": str, "prefix": str, "ops": [str]}]}

Attribute values are JSON numbers, strings, booleans and null; tuples are lists; a relative size
is `{"size": {"axis": int, "mul": int, "div": int, "tensor": str | null}}`. Decoding follows each
op's attribute schema, so `from_json(to_json(g)) == g`. Every malformed input raises
`SerializationError` naming the source file, the field path, what was expected and what was got.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alphanas.errors import AlphanasError, SerializationError
from alphanas.ir.attrs import AttrSpec, AttrType, OpKind, Size
from alphanas.ir.graph import BlockInstance, BlockTemplate, Graph, Op, TensorSpec, make_op
from alphanas.ir.registry import opdef

if TYPE_CHECKING:
    from alphanas.ir.analysis import Analysis

__all__ = [
    "FORMAT",
    "VERSION",
    "atomic_write_text",
    "dumps",
    "from_json",
    "load",
    "loads",
    "save",
    "to_dot",
    "to_json",
]

FORMAT = "alphanas-graph"
VERSION = 1

_GRAPH_FIELDS = ("format", "version", "name", "inputs", "ops", "outputs", "templates", "blocks")
_SIZE_FIELDS = ("axis", "mul", "div", "tensor")

# -- encoding --------------------------------------------------------------------------------


def to_json(graph: Graph) -> dict[str, Any]:
    """The JSON object (plain dicts and lists) describing `graph`, templates included."""
    return {"format": FORMAT, "version": VERSION, **_graph_body(graph)}


def _graph_body(graph: Graph) -> dict[str, Any]:
    return {
        "name": graph.name,
        "inputs": [{"name": t.name, "shape": None if t.shape is None else list(t.shape)}
                   for t in graph.inputs],
        "ops": [_encode_op(o) for o in graph.ops],
        "outputs": list(graph.outputs),
        "templates": [{"name": t.name, "graph": _graph_body(t.graph)} for t in graph.templates],
        "blocks": [{"template": b.template, "prefix": b.prefix, "ops": list(b.ops)}
                   for b in graph.blocks],
    }


def _encode_op(o: Op) -> dict[str, Any]:
    return {"name": o.name, "kind": o.kind.value, "inputs": list(o.inputs),
            "attrs": {k: _encode_value(v) for k, v in o.attrs}}


def _encode_value(v: Any) -> Any:
    if isinstance(v, Size):
        return {"size": {"axis": v.axis, "mul": v.mul, "div": v.div, "tensor": v.tensor}}
    if isinstance(v, (tuple, list)):
        return [_encode_value(x) for x in v]
    return v


def dumps(graph: Graph, indent: int | None = 1) -> str:
    """`graph` as JSON text (newline-terminated)."""
    return json.dumps(to_json(graph), indent=indent) + "\n"


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically, as `atomic_write_bytes` does."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same directory and `os.replace`.

    A reader never sees a half-written file, and on failure an existing file is left untouched.
    Raises `OSError` when the directory is missing or not writable.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    except OSError as e:  # name the file the caller asked for, not our temporary
        raise OSError(e.errno, e.strerror, os.fspath(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save(graph: Graph, path: str | os.PathLike[str]) -> None:
    """Write `graph` as JSON to `path`, atomically."""
    atomic_write_text(path, dumps(graph))


# -- decoding --------------------------------------------------------------------------------


class _Ctx:
    """Where we are while decoding: the source file and the JSON field path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, msg: str) -> SerializationError:
        return SerializationError(f"{self.source}: {path}: {msg}" if path else f"{self.source}: {msg}")

    def expect(self, path: str, expected: str, got: Any) -> SerializationError:
        return self.fail(path, f"expected {expected}, got {_show(got)}")


def _show(v: Any) -> str:
    try:
        text = json.dumps(v)
    except (TypeError, ValueError):
        text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _obj(cx: _Ctx, v: Any, path: str, fields: tuple[str, ...], required: tuple[str, ...]) -> dict[str, Any]:
    """`v` checked to be an object with only `fields` and all of `required`."""
    if not isinstance(v, dict):
        raise cx.expect(path, "an object", v)
    for k in v:
        if k not in fields:
            raise cx.fail(_join(path, k), f"unknown field (expected one of: {', '.join(fields)})")
    for k in required:
        if k not in v:
            raise cx.fail(path, f"missing required field '{k}'")
    return v


def _str(cx: _Ctx, v: Any, path: str, nonempty: bool = True) -> str:
    if not isinstance(v, str) or (nonempty and not v):
        raise cx.expect(path, "a non-empty string" if nonempty else "a string", v)
    return v


def _list(cx: _Ctx, v: Any, path: str) -> list[Any]:
    if not isinstance(v, list):
        raise cx.expect(path, "a list", v)
    return v


def _names(cx: _Ctx, v: Any, path: str) -> tuple[str, ...]:
    return tuple(_str(cx, x, _join(path, i)) for i, x in enumerate(_list(cx, v, path)))


def from_json(obj: Any, source: str = "<json>") -> Graph:
    """The graph described by `obj` (as produced by `to_json`); `source` names it in errors."""
    cx = _Ctx(source)
    if not isinstance(obj, dict):
        raise cx.expect("", "a JSON object at the top level", obj)
    _check_header(cx, obj, "", required=True)
    return _decode_graph(cx, obj, "")


def _check_header(cx: _Ctx, obj: dict[str, Any], path: str, required: bool) -> None:
    for k in ("format", "version"):
        if required and k not in obj:
            raise cx.fail(path, f"missing required field '{k}' (is this an alphanas graph file?)")
    if "format" in obj and obj["format"] != FORMAT:
        raise cx.expect(_join(path, "format"), json.dumps(FORMAT), obj["format"])
    if "version" in obj:
        v = obj["version"]
        if not _is_int(v):
            raise cx.expect(_join(path, "version"), "an int", v)
        if v != VERSION:
            raise cx.fail(path, f"version {v} is not supported (expected {VERSION})")


def _decode_graph(cx: _Ctx, v: Any, path: str) -> Graph:
    obj = _obj(cx, v, path, _GRAPH_FIELDS, ("inputs", "ops", "outputs"))
    _check_header(cx, obj, path, required=False)
    name = _str(cx, obj.get("name", ""), _join(path, "name"), nonempty=False)
    inputs = _decode_inputs(cx, obj["inputs"], _join(path, "inputs"))
    ops = _decode_ops(cx, obj["ops"], _join(path, "ops"))
    outputs = _names(cx, obj["outputs"], _join(path, "outputs"))
    templates = _decode_templates(cx, obj.get("templates", []), _join(path, "templates"))
    blocks = _decode_blocks(cx, obj.get("blocks", []), _join(path, "blocks"))
    _check_references(cx, path, inputs, ops, outputs, blocks)
    try:
        return Graph(inputs, ops, outputs, name, templates, blocks)
    except AlphanasError as e:
        raise cx.fail(path, str(e)) from None


def _decode_inputs(cx: _Ctx, v: Any, path: str) -> tuple[TensorSpec, ...]:
    out = []
    for i, t in enumerate(_list(cx, v, path)):
        p = _join(path, i)
        t = _obj(cx, t, p, ("name", "shape"), ("name",))
        out.append(TensorSpec(_str(cx, t["name"], _join(p, "name")),
                              _decode_shape(cx, t.get("shape"), _join(p, "shape"))))
    return tuple(out)


def _decode_shape(cx: _Ctx, v: Any, path: str) -> tuple[int, ...] | None:
    if v is None:
        return None
    if not isinstance(v, list) or not all(_is_int(d) and d >= 1 for d in v):
        raise cx.expect(path, "a list of positive ints or null", v)
    return tuple(v)


def _decode_ops(cx: _Ctx, v: Any, path: str) -> tuple[Op, ...]:
    return tuple(_decode_op(cx, o, _join(path, i)) for i, o in enumerate(_list(cx, v, path)))


def _decode_op(cx: _Ctx, v: Any, path: str) -> Op:
    obj = _obj(cx, v, path, ("name", "kind", "inputs", "attrs"), ("name", "kind"))
    name = _str(cx, obj["name"], _join(path, "name"))
    kind_text = _str(cx, obj["kind"], _join(path, "kind"))
    try:
        kind = OpKind.parse(kind_text)
    except AlphanasError as e:
        raise cx.fail(_join(path, "kind"), str(e)) from None
    inputs = _names(cx, obj.get("inputs", []), _join(path, "inputs"))
    attrs = _decode_attrs(cx, kind, obj.get("attrs", {}), _join(path, "attrs"))
    try:
        return make_op(name, kind, inputs, **attrs)
    except AlphanasError as e:
        raise cx.fail(path, str(e)) from None


def _decode_attrs(cx: _Ctx, kind: OpKind, v: Any, path: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise cx.expect(path, "an object", v)
    d = opdef(kind)
    out = {}
    for key, value in v.items():
        spec = d.spec(key)
        if spec is None:
            accepted = ", ".join(s.name for s in d.attrs) or "none"
            raise cx.fail(_join(path, key), f"unknown attribute of {kind.value} (accepted: {accepted})")
        out[key] = _decode_attr(cx, spec, value, _join(path, key))
    return out


_EXPECTED = {
    AttrType.INT: "an int",
    AttrType.INTS: "int or list of ints",
    AttrType.AXES: "int or list of ints",
    AttrType.SIZE: 'int or {"size": {...}}',
    AttrType.SIZES: 'list of ints or {"size": {...}}',
    AttrType.FLOAT: "a number",
    AttrType.BOOL: "true or false",
    AttrType.STR: "a string",
}


def _decode_attr(cx: _Ctx, spec: AttrSpec, v: Any, path: str) -> Any:
    """The Python value of one attribute, by its schema type; ranges are left to `make_op`."""
    if v is None and spec.default is None:
        return None
    t = spec.type
    if t in (AttrType.SIZE, AttrType.SIZES):
        return _decode_sizes(cx, spec, v, path)
    if t is AttrType.CHOICE:
        if isinstance(v, str) and v in spec.choices:
            return v
        raise cx.expect(path, "one of " + ", ".join(json.dumps(c) for c in spec.choices), v)
    if isinstance(v, list) and t in (AttrType.INTS, AttrType.AXES):
        if all(_is_int(x) for x in v) and (v or t is AttrType.AXES):
            return tuple(v)
    elif _ATTR_OK[t](v):
        return v
    raise cx.expect(path, _EXPECTED[t], v)


_ATTR_OK: Mapping[AttrType, Callable[[Any], bool]] = {
    AttrType.INT: _is_int,
    AttrType.INTS: _is_int,
    AttrType.AXES: _is_int,
    AttrType.FLOAT: lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
    AttrType.BOOL: lambda x: isinstance(x, bool),
    AttrType.STR: lambda x: isinstance(x, str),
}


def _decode_sizes(cx: _Ctx, spec: AttrSpec, v: Any, path: str) -> Any:
    if spec.type is AttrType.SIZE:
        if _is_int(v):
            return v
        if isinstance(v, dict) and "size" in v:
            return _decode_size(cx, v, path)
        raise cx.expect(path, _EXPECTED[AttrType.SIZE], v)
    if not isinstance(v, list):
        raise cx.expect(path, _EXPECTED[AttrType.SIZES], v)
    out = []
    for i, x in enumerate(v):
        if _is_int(x):
            out.append(x)
        elif isinstance(x, dict) and "size" in x:
            out.append(_decode_size(cx, x, _join(path, i)))
        else:
            raise cx.expect(_join(path, i), _EXPECTED[AttrType.SIZE], x)
    return tuple(out)


def _decode_size(cx: _Ctx, v: dict[str, Any], path: str) -> Size:
    _obj(cx, v, path, ("size",), ("size",))
    p = _join(path, "size")
    s = _obj(cx, v["size"], p, _SIZE_FIELDS, ())
    for k in ("axis", "mul", "div"):
        if k in s and not _is_int(s[k]):
            raise cx.expect(_join(p, k), "an int", s[k])
    tensor = s.get("tensor")
    if tensor is not None:
        _str(cx, tensor, _join(p, "tensor"))
    try:
        return Size(axis=s.get("axis", -1), mul=s.get("mul", 1), div=s.get("div", 1), tensor=tensor)
    except AlphanasError as e:
        raise cx.fail(p, str(e)) from None


def _decode_templates(cx: _Ctx, v: Any, path: str) -> tuple[BlockTemplate, ...]:
    out = []
    for i, t in enumerate(_list(cx, v, path)):
        p = _join(path, i)
        t = _obj(cx, t, p, ("name", "graph"), ("name", "graph"))
        out.append(BlockTemplate(_str(cx, t["name"], _join(p, "name")),
                                 _decode_graph(cx, t["graph"], _join(p, "graph"))))
    return tuple(out)


def _decode_blocks(cx: _Ctx, v: Any, path: str) -> tuple[BlockInstance, ...]:
    out = []
    for i, b in enumerate(_list(cx, v, path)):
        p = _join(path, i)
        b = _obj(cx, b, p, ("template", "prefix", "ops"), ("template", "prefix", "ops"))
        out.append(BlockInstance(_str(cx, b["template"], _join(p, "template")),
                                 _str(cx, b["prefix"], _join(p, "prefix")),
                                 _names(cx, b["ops"], _join(p, "ops"))))
    return tuple(out)


def _check_references(cx: _Ctx, path: str, inputs: tuple[TensorSpec, ...], ops: tuple[Op, ...],
                      outputs: tuple[str, ...], blocks: tuple[BlockInstance, ...]) -> None:
    """Duplicate names and dangling references, reported at their exact field path."""
    known: set[str] = set()
    entries = [(_join(_join(path, "inputs"), i), t.name) for i, t in enumerate(inputs)]
    entries += [(_join(_join(path, "ops"), i), o.name) for i, o in enumerate(ops)]
    for p, name in entries:
        if name in known:
            raise cx.fail(_join(p, "name"), f"duplicate name '{name}'")
        known.add(name)
    op_names = {o.name for o in ops}
    for i, o in enumerate(ops):
        p = _join(_join(path, "ops"), i)
        for j, ref in enumerate(o.inputs):
            if ref not in known:
                raise cx.fail(_join(_join(p, "inputs"), j), _dangling(ref))
        for k, val in o.attrs:
            for x in val if isinstance(val, tuple) else (val,):
                if isinstance(x, Size) and x.tensor is not None and x.tensor not in known:
                    raise cx.fail(_join(_join(p, "attrs"), k), _dangling(x.tensor))
    for j, ref in enumerate(outputs):
        if ref not in known:
            raise cx.fail(_join(_join(path, "outputs"), j), _dangling(ref))
    for i, b in enumerate(blocks):
        for j, ref in enumerate(b.ops):
            if ref not in op_names:
                p = _join(_join(_join(_join(path, "blocks"), i), "ops"), j)
                raise cx.fail(p, f"'{ref}' is not an op of the graph")


def _dangling(ref: str) -> str:
    return f"unknown tensor '{ref}' (not an input or op of the graph)"


def loads(text: str, source: str = "<json>") -> Graph:
    """The graph in JSON `text`; `source` names it in errors."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise SerializationError(
            f"{source}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise SerializationError(f"{source}: invalid JSON: nested too deeply") from None
    return from_json(obj, source)


def load(path: str | os.PathLike[str]) -> Graph:
    """The graph saved at `path`; every failure is a `SerializationError` naming the file."""
    source = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SerializationError(f"{source}: cannot read: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SerializationError(f"{source}: not UTF-8 text (byte {e.start})") from None
    return loads(text, source)


# -- Graphviz --------------------------------------------------------------------------------


def _q(s: str) -> str:
    """A DOT double-quoted string; `\\n` inside `s` must already be an intended line break."""
    return '"' + s.replace('"', '\\"') + '"'


def _esc(s: str) -> str:
    """User text escaped for a DOT label (backslashes and newlines made literal)."""
    return s.replace("\\", "\\\\").replace("\n", "\\n")


def to_dot(graph: Graph, analysis: Analysis | None = None) -> str:
    """Graphviz DOT text: a node per input and op, edges producer -> consumer (dashed for
    `dim_of` size references), a cluster per block instance, outputs double-bordered.

    Labels give name, kind and the output shape when `analysis` is given or the declared input
    shapes let the graph analyse (a graph that does not analyse is still drawn, without shapes).
    """
    shapes = _dot_shapes(graph, analysis)
    outputs = set(graph.outputs)

    def node(name: str, kind: str, extra: str = "") -> str:
        label = _esc(name) + "\\n" + kind
        if name in shapes:
            label += "\\n" + _esc(str(tuple(shapes[name])))
        attrs = f"label={_q(label)}{extra}"
        if name in outputs:
            attrs += ", peripheries=2, penwidth=2"
        return f"{_q(_esc(name))} [{attrs}];"

    lines = [f"digraph {_q(_esc(graph.name or 'graph'))} {{", "  rankdir=TB;",
             '  node [shape=box, fontname="Helvetica"];']
    lines += ["  " + node(t.name, "input", ", shape=ellipse") for t in graph.inputs]
    in_block: dict[str, int] = {}
    for i, b in enumerate(graph.blocks):
        for n in b.ops:
            in_block.setdefault(n, i)
    lines += ["  " + node(o.name, o.kind.value) for o in graph.ops if o.name not in in_block]
    for i, b in enumerate(graph.blocks):
        members = [o for o in graph.ops if in_block.get(o.name) == i]
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f"    label={_q(_esc(f'{b.prefix} ({b.template})'))}; style=rounded;")
        lines += ["    " + node(o.name, o.kind.value) for o in members]
        lines.append("  }")
    lines += ["  " + e for e in _dot_edges(graph)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_edges(graph: Graph) -> list[str]:
    edges = []
    for o in graph.ops:
        for i in o.inputs:
            edges.append(f"{_q(_esc(i))} -> {_q(_esc(o.name))};")
        refs = {x.tensor for _, v in o.attrs for x in (v if isinstance(v, tuple) else (v,))
                if isinstance(x, Size) and x.tensor is not None}
        for r in sorted(refs):
            edges.append(f"{_q(_esc(r))} -> {_q(_esc(o.name))} [style=dashed];")
    return edges


def _dot_shapes(graph: Graph, analysis: Analysis | None) -> Mapping[str, tuple[int, ...]]:
    if analysis is not None:
        return analysis.shapes
    if not all(t.shape is not None for t in graph.inputs):
        return {}
    from alphanas.ir.analysis import analyze

    try:
        return analyze(graph).shapes
    except AlphanasError:  # a graph that does not analyse can still be drawn
        return {}
