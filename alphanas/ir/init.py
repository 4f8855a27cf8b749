"""Host-side initialization of a graph's Flax variables, without compiling anything.

`jax.jit(module.init)` compiles one XLA program holding every parameter's random initializer,
which takes 10-40 s for an EfficientNet on a CPU. `host_init` samples the same distributions
as Flax's defaults with NumPy instead (lecun-normal kernels — truncated normal with variance
1/fan_in — zero biases, unit norm scales, `param` ops normal(stddev)) and returns a pytree of
exactly the structure and shapes `GraphModule.init` gives. Each op draws from its own stream
seeded by (seed, op name), so an op keeps its initial values when other ops change.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from math import prod
from typing import Any

import numpy as np

from alphanas.ir.analysis import OpInfo, analyze
from alphanas.ir.attrs import OpKind
from alphanas.ir.graph import Graph, Op

__all__ = ["host_init"]

K = OpKind
_TRUNC_STD = 0.87962566103423978  # std of a standard normal truncated to [-2, 2]
Tree = dict[str, Any]


def _lecun(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    x = rng.standard_normal(shape)
    bad = np.abs(x) > 2
    while bad.any():
        x[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(x) > 2
    return (x * (np.sqrt(1.0 / max(fan_in, 1)) / _TRUNC_STD)).astype(np.float32)


def _dense_like(rng: np.random.Generator, kshape: tuple[int, ...], fan_in: int,
                bshape: tuple[int, ...] | None) -> Tree:
    out: Tree = {"kernel": _lecun(rng, kshape, fan_in)}
    if bshape is not None:
        out["bias"] = np.zeros(bshape, np.float32)
    return out


def _conv(rng: np.random.Generator, a: dict, info: OpInfo) -> Tree:
    cin = info.in_shapes[0][-1] // a["groups"]
    kshape = (*a["kernel"], cin, a["features"])
    return _dense_like(rng, kshape, prod(kshape[:-1]), (a["features"],) if a["use_bias"] else None)


def _dense(rng: np.random.Generator, a: dict, info: OpInfo) -> Tree:
    cin = info.in_shapes[0][-1]
    return _dense_like(rng, (cin, a["features"]), cin, (a["features"],) if a["use_bias"] else None)


def _dense_general(rng: np.random.Generator, a: dict, info: OpInfo) -> Tree:
    ins = tuple(info.in_shapes[0][i] for i in a["axis"])
    feats = tuple(a["features"])
    return _dense_like(rng, ins + feats, prod(ins), feats if a["use_bias"] else None)


def _attention(rng: np.random.Generator, a: dict, info: OpInfo) -> Tree:
    d, heads = info.in_shapes[0][-1], a["num_heads"]
    hd = a["qkv_features"] // heads
    bias = a["use_bias"]
    out: Tree = {n: _dense_like(rng, (d, heads, hd), d, (heads, hd) if bias else None)
                 for n in ("query", "key", "value")}
    o = a["out_features"]
    out["out"] = _dense_like(rng, (heads, hd, o), heads * hd, (o,) if bias else None)
    return out


def _norm(rng: np.random.Generator, a: dict, info: OpInfo) -> Tree:
    c = info.in_shapes[0][-1]
    return {"scale": np.ones((c,), np.float32), "bias": np.zeros((c,), np.float32)}


_PARAMS: dict[OpKind, Callable[[np.random.Generator, dict, OpInfo], Tree]] = {
    K.CONV: _conv,
    K.DENSE: _dense,
    K.DENSE_GENERAL: _dense_general,
    K.SELF_ATTENTION: _attention,
    K.BATCH_NORM: _norm,
    K.LAYER_NORM: _norm,
    K.GROUP_NORM: _norm,
}


def _op_rng(seed: int, op: Op) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(op.name.encode())])


def host_init(graph: Graph, seed: int = 0) -> dict[str, Tree]:
    """Variables (`params`, and `batch_stats` if any) for the graph's declared input shapes."""
    a = analyze(graph)
    params: Tree = {}
    stats: Tree = {}
    for op in graph.ops:
        info = a.ops[op.name]
        if op.kind is K.PARAM:
            rng = _op_rng(seed, op)
            params[op.name] = (rng.standard_normal(info.shape) * info.attrs["stddev"]).astype(np.float32)
        elif op.kind in _PARAMS:
            params[op.name] = _PARAMS[op.kind](_op_rng(seed, op), dict(info.attrs), info)
        if op.kind is K.BATCH_NORM:
            c = info.in_shapes[0][-1]
            stats[op.name] = {"mean": np.zeros((c,), np.float32), "var": np.ones((c,), np.float32)}
    out: dict[str, Tree] = {}
    if params:
        out["params"] = params
    if stats:
        out["batch_stats"] = stats
    return out
