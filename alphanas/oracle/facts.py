"""The oracle's facts about a concrete program, each from its own plain computation.

- shapes of every tensor and the parameter count: one `jax.eval_shape` trace of the Flax
  lowering (`init_with_output`, every op's lowering run as `GraphModule` runs it), counting the
  elements of the `params` collection;
- depth: a walk over every path written from the definition (DESIGN §4): a switch is counted
  each time the class (linear / non-linear) changes along the path, a sub-graph input counts as
  produced by its declared class (non-linear by default), identity is transparent;
- FLOPs and peak live activation: the documented definitions (`alphanas.ir.rules`,
  `alphanas.properties.resources`), re-implemented here from the text;
- mixing: `alphanas.oracle.deps.exact_mixing`.
None of it calls the analytic property rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from alphanas.ir.analysis import analyze
from alphanas.ir.attrs import OpKind
from alphanas.ir.graph import Graph
from alphanas.oracle.deps import Matrix, exact_mixing

__all__ = ["Facts", "facts", "oracle_depth", "oracle_flops", "oracle_peak", "traced"]

K = OpKind
Shape = tuple[int, ...]

LINEAR_OPS = frozenset({K.CONV, K.DENSE, K.DENSE_GENERAL, K.ADD, K.MUL, K.CONCAT, K.SCALAR_ADD,
                        K.SCALAR_MUL, K.EINSUM, K.BATCH_NORM, K.LAYER_NORM, K.GROUP_NORM,
                        K.RESHAPE, K.FLATTEN, K.TRANSPOSE, K.DROPOUT, K.STOCHASTIC_DEPTH,
                        K.AVG_POOL, K.MAX_POOL, K.MEAN, K.RESIZE, K.PARAM})
NONLINEAR_OPS = frozenset({K.RELU, K.GELU, K.SWISH, K.SIGMOID, K.TANH, K.SOFTMAX,
                           K.SELF_ATTENTION})
TRANSPARENT_OPS = frozenset({K.IDENTITY})


@dataclass(frozen=True)
class Facts:
    """What the oracle computed for one program at its declared input shapes."""

    shapes: Mapping[str, Shape]                  # every tensor, from the Flax trace
    params: int                                  # elements of the Flax `params` collection
    flops: int
    peak: int
    depth: Mapping[tuple[str, str], int]         # connected pairs only
    mixing: Mapping[tuple[str, str], Matrix]


def facts(graph: Graph, linear_inputs: frozenset[str] = frozenset()) -> Facts:
    """Every fact about `graph` (its inputs must have shapes); cached per graph."""
    return _facts(graph, linear_inputs)


@lru_cache(maxsize=2048)
def _facts(graph: Graph, linear_inputs: frozenset[str]) -> Facts:
    shapes, params = traced(graph)
    return Facts(shapes, params, oracle_flops(graph), oracle_peak(graph, shapes),
                 oracle_depth(graph, linear_inputs), exact_mixing(graph))


@lru_cache(maxsize=2048)
def traced(graph: Graph) -> tuple[dict[str, Shape], int]:
    """Shapes of every tensor and the parameter count, from one abstract trace of Flax."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from alphanas.ir import _lowering
    from alphanas.ir.analysis import resolve_attrs
    from alphanas.ir.registry import opdef

    class Everything(nn.Module):
        @nn.compact
        def __call__(self, *xs: Any) -> dict[str, Any]:
            env = dict(zip(graph.input_names, xs, strict=True))
            shapes = {k: tuple(v.shape) for k, v in env.items()}
            for op in graph.ops:
                ins = [env[i] for i in op.inputs]
                attrs = resolve_attrs(op, [tuple(x.shape) for x in ins], shapes)
                env[op.name] = getattr(_lowering, opdef(op.kind).lower)(self, op, attrs, ins, False)
                shapes[op.name] = tuple(env[op.name].shape)
            return env

    xs = [jax.ShapeDtypeStruct(s, jnp.float32) for s in graph.input_shapes]  # type: ignore[arg-type]
    env, variables = jax.eval_shape(lambda k, *x: Everything().init_with_output(k, *x),
                                    jax.random.PRNGKey(0), *xs)
    params = sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(variables.get("params", {})))
    return {k: tuple(int(d) for d in v.shape) for k, v in env.items()}, int(params)


def oracle_depth(graph: Graph, linear_inputs: frozenset[str] = frozenset()) -> dict[tuple[str, str], int]:
    """Max switches over every path from each input to each output (connected pairs only).

    best[t] maps (input, class of the last non-transparent op on the path) to the most switches
    of a path from that input to tensor t; an input starts with its declared class and 0.
    """
    best: dict[str, dict[tuple[str, str], int]] = {
        i: {(i, "L" if i in linear_inputs else "N"): 0} for i in graph.input_names}
    for op in graph.ops:
        here: dict[tuple[str, str], int] = {}
        for src in set(op.inputs):
            for (i, last), d in best.get(src, {}).items():
                if op.kind in TRANSPARENT_OPS:
                    cls, nd = last, d
                else:
                    cls = "L" if op.kind in LINEAR_OPS else "N"
                    nd = d + (cls != last)
                here[(i, cls)] = max(here.get((i, cls), -1), nd)
        best[op.name] = here
    out: dict[tuple[str, str], int] = {}
    for o in graph.outputs:
        for (i, _), d in best.get(o, {}).items():
            out[(i, o)] = max(out.get((i, o), -1), d)
    return out


def oracle_flops(graph: Graph) -> int:
    """FLOPs by the documented definition, summed over the ops (batch included)."""
    a = analyze(graph)
    return sum(_op_flops(op.kind, a.ops[op.name].attrs, a.ops[op.name].in_shapes, a.ops[op.name].shape)
               for op in graph.ops)


def _op_flops(kind: OpKind, at: Mapping[str, Any], ins: tuple[Shape, ...], out: Shape) -> int:
    n = math.prod(out)
    if kind is K.CONV:
        return 2 * n * math.prod(at["kernel"]) * (ins[0][-1] // at["groups"])
    if kind is K.DENSE:
        return 2 * n * ins[0][-1]
    if kind is K.DENSE_GENERAL:
        return 2 * n * math.prod(ins[0][i] for i in at["axis"])
    if kind is K.EINSUM:
        return _einsum_flops(at["equation"], ins)
    if kind is K.SELF_ATTENTION:
        x = ins[0]
        q, o = at["qkv_features"], at["out_features"]
        return 2 * math.prod(x[:-1]) * (3 * x[-1] * q + 2 * x[-2] * q + q * o)
    if kind in (K.ADD, K.MUL, K.SCALAR_ADD, K.SCALAR_MUL, K.RELU, K.GELU, K.SWISH, K.SIGMOID, K.TANH):
        return n
    if kind is K.SOFTMAX:
        return 3 * n
    if kind is K.BATCH_NORM:
        return 2 * n
    if kind in (K.LAYER_NORM, K.GROUP_NORM):
        return 5 * n
    if kind in (K.AVG_POOL, K.MAX_POOL):
        return n * math.prod(at["window"])
    if kind is K.MEAN:
        return math.prod(ins[0])
    if kind is K.RESIZE:
        return 0 if at["method"] == "nearest" else 2 * 2 ** (len(out) - 2) * n
    return 0  # concat, reshape, flatten, transpose, identity, param, dropout, stochastic depth


def _einsum_flops(equation: str, ins: tuple[Shape, ...]) -> int:
    """2 x the product of every label's size (the ellipsis counts as its broadcast dims)."""
    lhs = equation.replace(" ", "").replace("...", ".").split("->")[0].split(",")
    sizes: dict[str, int] = {}
    ell: list[int] = []
    for t, s in zip(lhs, ins, strict=True):
        k = len(s) - (len(t) - ("." in t))
        dims = list(s)
        for ch in t:
            if ch == ".":
                part, dims = dims[:k], dims[k:]
                pad = [1] * (len(part) - len(ell))
                ell = [max(x, y) for x, y in zip(pad + ell, [1] * (len(ell) - len(part)) + part, strict=True)]
            else:
                sizes[ch] = dims.pop(0)
    return 2 * math.prod(sizes.values()) * math.prod(ell)


def oracle_peak(graph: Graph, shapes: Mapping[str, Shape]) -> int:
    """Peak live elements over the topological order: before the first op all inputs; at op k
    the tensors produced so far that op k or a later op reads or that are outputs, plus op k's
    output; `param` outputs count 0."""
    order = [op.name for op in graph.ops]
    weights = {op.name for op in graph.ops if op.kind is K.PARAM}
    readers: dict[str, list[int]] = {}
    for k, op in enumerate(graph.ops):
        for i in op.inputs:
            readers.setdefault(i, []).append(k)

    def size(t: str) -> int:
        return 0 if t in weights else math.prod(shapes[t])

    peak = sum(size(i) for i in graph.input_names)
    for k, name in enumerate(order):
        live = [t for t in (*graph.input_names, *order[:k])
                if t in graph.outputs or any(r >= k for r in readers.get(t, ()))]
        peak = max(peak, sum(size(t) for t in live) + size(name))
    return peak
