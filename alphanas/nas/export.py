"""Export of a candidate as standalone Flax source plus its trained parameters.

`flax_source(graph)` writes a module that needs only jax and flax (not alphanas): one statement
per op with every relative size resolved by `analyze(graph)`, reproducing
`alphanas.ir.lower.lower(graph)` exactly — the same parameter tree, the same outputs, the same
dropout streams in train mode. The model is specialized to the graph's declared input shapes
except the batch axis: batch-relative reshape sizes stay symbolic (`x.shape[0]`).
"""

from __future__ import annotations

import keyword
import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from alphanas.errors import AlphanasError, InternalError
from alphanas.ir.analysis import Analysis, analyze
from alphanas.ir.attrs import OpKind, Size
from alphanas.ir.graph import Graph, Op
from alphanas.ir.serialize import atomic_write_text, dumps

__all__ = ["ExportError", "emitted_kinds", "export_candidate", "flax_source"]

K = OpKind


class ExportError(AlphanasError, ValueError):
    """A candidate cannot be exported: unwritable directory, variables not matching the graph."""


# -- helpers emitted into the generated file (same semantics as alphanas.ir._lowering) ---------

_HELPERS = {
    "_stochastic_depth": '''
def _stochastic_depth(module: nn.Module, x: Any, rate: float, train: bool) -> Any:
    """Drops each example's whole branch with probability `rate` (train mode only)."""
    if not train or rate == 0.0:
        return x
    keep = 1.0 - rate
    mask = jax.random.bernoulli(module.make_rng("dropout"), keep, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(mask, x / keep, 0.0)
''',
    "_resize": '''
def _resize(x: Any, size: tuple, method: str) -> Any:
    """Resizes the spatial dims of a channels-last (B, *spatial, C) array to `size`."""
    return jax.image.resize(x, (x.shape[0], *size, x.shape[-1]), method=method)
''',
}

# -- per-op statements --------------------------------------------------------------------------


class _Ctx:
    """What an emitter needs: resolved attrs, input expressions, the op, the analysis."""

    def __init__(self, op: Op, attrs: Mapping[str, Any], xs: list[str], names: Mapping[str, str],
                 analysis: Analysis) -> None:
        self.op, self.a, self.xs, self.names, self.analysis = op, attrs, xs, names, analysis

    def lit(self, key: str) -> str:
        return _lit(self.a[key])

    @property
    def name(self) -> str:
        return repr(self.op.name)


def _lit(v: Any) -> str:
    """Python source of a resolved attribute value (ints, floats, bools, strings, tuples)."""
    if v is None or isinstance(v, (bool, str)):
        return repr(v)
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return repr(float(v))
    if isinstance(v, tuple):
        inner = ", ".join(_lit(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    raise InternalError(f"cannot write attribute value {v!r} ({type(v).__name__}) as source")


def _conv(c: _Ctx) -> str:
    return (f"nn.Conv({c.lit('features')}, {c.lit('kernel')}, strides={c.lit('strides')}, "
            f"padding={c.lit('padding')}, kernel_dilation={c.lit('dilation')}, "
            f"feature_group_count={c.lit('groups')}, use_bias={c.lit('use_bias')}, "
            f"name={c.name})({c.xs[0]})")


def _reshape(c: _Ctx) -> str:
    """Entries relative to a tensor's batch axis stay symbolic; the rest are resolved ints."""
    raw = c.op.attr("new_shape")
    parts = []
    for r, v in zip(raw, c.a["new_shape"], strict=True):
        if isinstance(r, Size):
            ref = r.tensor if r.tensor is not None else c.op.inputs[0]
            rank = len(c.analysis.shapes[ref])
            if r.axis % rank == 0:
                e = f"{c.names[ref]}.shape[0]"
                e += f" * {r.mul}" if r.mul != 1 else ""
                parts.append(e + (f" // {r.div}" if r.div != 1 else ""))
                continue
        parts.append(_lit(v))
    shape = f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"
    return f"jnp.reshape({c.xs[0]}, {shape})"


_Emit = Callable[[_Ctx], str]

_EMIT: dict[OpKind, _Emit] = {
    K.CONV: _conv,
    K.DENSE: lambda c: f"nn.Dense({c.lit('features')}, use_bias={c.lit('use_bias')}, name={c.name})({c.xs[0]})",
    K.DENSE_GENERAL: lambda c: (f"nn.DenseGeneral({c.lit('features')}, axis={c.lit('axis')}, "
                                f"use_bias={c.lit('use_bias')}, name={c.name})({c.xs[0]})"),
    K.ADD: lambda c: f"{c.xs[0]} + {c.xs[1]}",
    K.MUL: lambda c: f"{c.xs[0]} * {c.xs[1]}",
    K.CONCAT: lambda c: f"jnp.concatenate([{', '.join(c.xs)}], axis={c.lit('axis')})",
    K.SCALAR_ADD: lambda c: f"{c.xs[0]} + {c.lit('value')}",
    K.SCALAR_MUL: lambda c: f"{c.xs[0]} * {c.lit('value')}",
    K.EINSUM: lambda c: f"jnp.einsum({c.lit('equation')}, {', '.join(c.xs)})",
    K.SELF_ATTENTION: lambda c: (
        f"nn.MultiHeadDotProductAttention(num_heads={c.lit('num_heads')}, "
        f"qkv_features={c.lit('qkv_features')}, out_features={c.lit('out_features')}, "
        f"use_bias={c.lit('use_bias')}, name={c.name})({c.xs[0]}, deterministic=True)"),
    K.RELU: lambda c: f"nn.relu({c.xs[0]})",
    K.GELU: lambda c: f"nn.gelu({c.xs[0]})",
    K.SWISH: lambda c: f"nn.swish({c.xs[0]})",
    K.SIGMOID: lambda c: f"nn.sigmoid({c.xs[0]})",
    K.TANH: lambda c: f"jnp.tanh({c.xs[0]})",
    K.SOFTMAX: lambda c: f"jax.nn.softmax({c.xs[0]}, axis={c.lit('axis')})",
    K.BATCH_NORM: lambda c: (f"nn.BatchNorm(use_running_average=not train, momentum={c.lit('momentum')}, "
                             f"epsilon={c.lit('epsilon')}, name={c.name})({c.xs[0]})"),
    K.LAYER_NORM: lambda c: f"nn.LayerNorm(epsilon={c.lit('epsilon')}, name={c.name})({c.xs[0]})",
    K.GROUP_NORM: lambda c: (f"nn.GroupNorm(num_groups={c.lit('num_groups')}, "
                             f"epsilon={c.lit('epsilon')}, name={c.name})({c.xs[0]})"),
    K.RESHAPE: _reshape,
    K.FLATTEN: lambda c: f"jnp.reshape({c.xs[0]}, ({c.xs[0]}.shape[0], -1))",
    K.TRANSPOSE: lambda c: f"jnp.transpose({c.xs[0]}, {c.lit('perm')})",
    K.DROPOUT: lambda c: f"nn.Dropout({c.lit('rate')}, deterministic=not train, name={c.name})({c.xs[0]})",
    K.STOCHASTIC_DEPTH: lambda c: f"_stochastic_depth(self, {c.xs[0]}, {c.lit('rate')}, train)",
    K.AVG_POOL: lambda c: (f"nn.avg_pool({c.xs[0]}, {c.lit('window')}, strides={c.lit('strides')}, "
                           f"padding={c.lit('padding')})"),
    K.MAX_POOL: lambda c: (f"nn.max_pool({c.xs[0]}, {c.lit('window')}, strides={c.lit('strides')}, "
                           f"padding={c.lit('padding')})"),
    K.MEAN: lambda c: f"jnp.mean({c.xs[0]}, axis={c.lit('axes')}, keepdims={c.lit('keepdims')})",
    K.RESIZE: lambda c: f"_resize({c.xs[0]}, {c.lit('size')}, {c.lit('method')})",
    K.PARAM: lambda c: (f"self.param({c.name}, nn.initializers.normal(stddev={c.lit('stddev')}), "
                        f"{c.lit('shape')})"),
    K.IDENTITY: lambda c: c.xs[0],
}

_USES_HELPER = {K.STOCHASTIC_DEPTH: "_stochastic_depth", K.RESIZE: "_resize"}
_RESERVED = frozenset({"self", "train", "nn", "jax", "jnp", "Any", "x", *_HELPERS})


def emitted_kinds() -> frozenset[OpKind]:
    """The op kinds `flax_source` can write (every kind of the IR, checked by a test)."""
    return frozenset(_EMIT)


# -- the generated module ---------------------------------------------------------------------


def _identifiers(graph: Graph) -> dict[str, str]:
    """A distinct Python identifier for every tensor, readable after its op name."""
    used = set(_RESERVED)
    out: dict[str, str] = {}
    if len(graph.inputs) == 1:
        out[graph.inputs[0].name] = "x"
    for name in (*graph.input_names, *(o.name for o in graph.ops)):
        if name in out:
            continue
        base = re.sub(r"\W", "_", name).strip("_") or "t"
        if base[0].isdigit() or keyword.iskeyword(base):
            base = "t_" + base
        ident, i = base, 1
        while ident in used:
            ident, i = f"{base}_{i}", i + 1
        used.add(ident)
        out[name] = ident
    return out


def _body(graph: Graph, analysis: Analysis, names: Mapping[str, str]) -> tuple[list[str], set[str]]:
    lines: list[str] = []
    helpers: set[str] = set()
    for op in graph.ops:
        emit = _EMIT.get(op.kind)
        if emit is None:
            raise InternalError(f"export has no Flax statement for op kind '{op.kind.value}'")
        ctx = _Ctx(op, analysis.ops[op.name].attrs, [names[i] for i in op.inputs], names, analysis)
        shape = analysis.shapes[op.name]
        lines.append(f"# {op.kind.value} {op.name!r} -> {shape}")
        lines.append(f"{names[op.name]} = {emit(ctx)}")
        if op.kind in _USES_HELPER:
            helpers.add(_USES_HELPER[op.kind])
    outs = [names[o] for o in graph.outputs]
    lines.append(f"return {outs[0]}" if len(outs) == 1 else f"return ({', '.join(outs)})")
    return lines, helpers


def _doc_safe(text: str) -> str:
    """`text` made safe inside a triple-quoted docstring (graph names are user strings)."""
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _header(graph: Graph, analysis: Analysis, class_name: str, args: str) -> str:
    """The generated module's docstring, imports and input/output constants."""
    ins = ", ".join(f"{n!r}: {s}" for n, s in zip(graph.input_names, graph.input_shapes, strict=True))
    outs = ", ".join(f"{o!r}: {analysis.shapes[o]}" for o in graph.outputs)
    ins, outs, title = _doc_safe(ins), _doc_safe(outs), _doc_safe(repr(graph.name))
    head = [
        f'"""Standalone Flax model of graph {title}, exported by alphanas.',
        "",
        f"Inputs (channels last, float32): {ins}.",
        f"Outputs: {outs}. Parameters: {analysis.params}.",
        f"`{class_name}().apply(variables, {args})` evaluates it; with `train=True` pass",
        '`mutable=["batch_stats"]` and a "dropout" rng. Generated code: edit the graph, not this.',
        '"""',
        "",
        "from typing import Any",
        "",
        "import flax.linen as nn",
        "import jax",
        "import jax.numpy as jnp",
        "",
        f"INPUT_NAMES = {tuple(graph.input_names)!r}",
        f"INPUT_SHAPES = {tuple(graph.input_shapes)!r}",
        f"OUTPUT_NAMES = {tuple(graph.outputs)!r}",
        "",
    ]
    return "\n".join(head)


def flax_source(graph: Graph, class_name: str = "Model") -> str:
    """Python source of a module defining `class <class_name>(nn.Module)` whose
    `__call__(self, x, train=False)` (one argument per graph input) equals `lower(graph)`."""
    if not class_name.isidentifier() or keyword.iskeyword(class_name) or class_name in _RESERVED:
        raise ExportError(f"class_name must be a Python identifier other than "
                          f"{', '.join(sorted(_RESERVED))}, got {class_name!r}")
    analysis = analyze(graph)
    names = _identifiers(graph)
    body, helpers = _body(graph, analysis, names)
    args = ", ".join(names[n] for n in graph.input_names)
    parts = [_header(graph, analysis, class_name, args)]
    parts += [_HELPERS[h] for h in sorted(helpers)]
    cls = [
        "",
        f"class {class_name}(nn.Module):",
        f'    """Graph {_doc_safe(repr(graph.name))}: returns one array, or a tuple for several outputs."""',
        "",
        "    @nn.compact",
        f"    def __call__(self, {args}, train: bool = False) -> Any:",
        *(f"        {line}" for line in body),
    ]
    parts.append("\n".join(cls) + "\n")
    return "\n".join(parts)


# -- export of a candidate --------------------------------------------------------------------

_README = """Exported by alphanas from graph {name!r}.

  graph.json      the architecture in the alphanas IR (alphanas.ir.serialize.load)
  model.py        standalone Flax source: needs only jax and flax
  params.msgpack  the variables (params{stats}), flax msgpack of nested dicts of arrays

Load and run (from this directory):

    import numpy as np
    from flax.serialization import msgpack_restore
    from model import {cls}

    with open("params.msgpack", "rb") as f:
        variables = msgpack_restore(f.read())
    xs = [np.zeros(s, np.float32) for s in {shapes}]  # one batch per input, channels last
    y = {cls}().apply(variables, *xs)  # eval mode: batch norm uses running statistics

Inputs: {inputs}. Outputs: {outputs}.
"""


def _flat(tree: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(tree, Mapping):
        out: dict[tuple[str, ...], Any] = {}
        for k, v in tree.items():
            out.update(_flat(v, (*prefix, str(k))))
        return out
    return {prefix: tree}


def _show_path(path: tuple[str, ...]) -> str:
    return path[0] + "".join(f"[{k!r}]" for k in path[1:]) if path else "<root>"


def _check_variables(graph: Graph, state: Mapping[str, Any]) -> None:
    """ExportError naming the first variable whose presence or shape differs from the graph's."""
    from alphanas.ir.lower import eval_shapes

    want = {p: tuple(v.shape) for p, v in _flat(eval_shapes(graph)[0]).items()}
    got = {p: tuple(getattr(v, "shape", ())) for p, v in _flat(state).items()}
    for p in sorted(set(want) | set(got)):
        if p not in got:
            raise ExportError(f"variables of graph {graph.name!r} lack {_show_path(p)} (shape {want[p]})")
        if p not in want:
            raise ExportError(f"variables of graph {graph.name!r} have {_show_path(p)}, "
                              "which the graph does not use")
        if want[p] != got[p]:
            raise ExportError(f"variables of graph {graph.name!r}: {_show_path(p)} has shape "
                              f"{got[p]}, the graph expects {want[p]}")


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def export_candidate(graph: Graph, variables: Any, out_dir: str | os.PathLike[str],
                     class_name: str = "Model") -> dict[str, Path]:
    """Write `graph.json`, `model.py`, `params.msgpack` and `README.txt` to `out_dir`
    (created if missing); returns their paths keyed graph/model/params/readme."""
    import jax
    import numpy as np
    from flax import serialization

    out = Path(out_dir)
    source = flax_source(graph, class_name)
    state = jax.tree_util.tree_map(np.asarray, serialization.to_state_dict(variables))
    _check_variables(graph, state)
    analysis = analyze(graph)
    paths = {"graph": out / "graph.json", "model": out / "model.py",
             "params": out / "params.msgpack", "readme": out / "README.txt"}
    readme = _README.format(
        name=graph.name, cls=class_name, shapes=list(graph.input_shapes),
        stats=", batch_stats" if "batch_stats" in state else "",
        inputs=", ".join(f"{n} {s}" for n, s in zip(graph.input_names, graph.input_shapes, strict=True)),
        outputs=", ".join(f"{o} {analysis.shapes[o]}" for o in graph.outputs))
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(paths["graph"], dumps(graph))
        atomic_write_text(paths["model"], source)
        _write_bytes(paths["params"], serialization.msgpack_serialize(state))
        atomic_write_text(paths["readme"], readme)
    except OSError as e:
        raise ExportError(f"cannot export graph {graph.name!r} to {out}: {e.strerror or e} "
                          f"({e.filename or out})") from None
    return paths
