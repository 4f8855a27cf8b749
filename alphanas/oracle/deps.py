"""Exact mixing by the definition: which input elements the output centre and its slices read.

Written from the ops' semantics alone (no code shared with `alphanas.properties`). For every
output, the seed is a stack of boolean masks over the output: row 0 marks the centre element c
(index size // 2 on every dim), row 1 + j the 1-D slice through c along output dim j. The masks
are pulled back op by op in reverse topological order: an input element is marked iff some
marked output element reads it (for generic parameter values, in eval mode). Then, per
(input, output) and input dim i: `count` = positions along i marked in row 0; `paired(i, j)` =
every position along i is marked in row 1 + j. The entry is NONE unless paired, else ALL_TO_ONE
when count = size, MANY_TO_ONE when count > 1, ONE_TO_ONE otherwise.

"Reads" is structural dependence, with the exact exceptions where an op's output is a constant
function of an input (its Jacobian is zero): softmax over one element, layer/group norm over one
element, scalar_mul by 0. Cancellation between paths with constant coefficients (x + (-1) * x)
is not detected. Matrices are plain ints 0..3 (NONE, ONE_TO_ONE, MANY_TO_ONE, ALL_TO_ONE).
"""

from __future__ import annotations

import itertools
import math
import string
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from alphanas.ir.analysis import analyze
from alphanas.ir.attrs import OpKind
from alphanas.ir.graph import Graph

__all__ = ["NONE", "ONE", "MANY", "ALL", "OracleUnsupported", "exact_mixing", "seeds"]

NONE, ONE, MANY, ALL = 0, 1, 2, 3
K = OpKind
Matrix = tuple[tuple[int, ...], ...]
Masks = np.ndarray  # (rows, *tensor shape), bool


class OracleUnsupported(Exception):
    """The oracle has no exact rule for this op configuration."""


def seeds(shape: tuple[int, ...]) -> Masks:
    """Row 0: the centre element; row 1 + j: the slice through the centre along dim j."""
    centre = tuple(n // 2 for n in shape)
    rows = np.zeros((1 + len(shape), *shape), bool)
    rows[(0, *centre)] = True
    for j in range(len(shape)):
        rows[(1 + j, *centre[:j], slice(None), *centre[j + 1:])] = True
    return rows


def exact_mixing(graph: Graph) -> dict[tuple[str, str], Matrix]:
    """The mixing matrix of every (input, output) pair of `graph`, by the definition."""
    a = analyze(graph)
    shapes = a.shapes
    blocks, total = [], 0
    for o in graph.outputs:
        blocks.append((o, total))
        total += 1 + len(shapes[o])
    marks: dict[str, Masks] = {}
    for o, start in blocks:
        m = _zeros(total, shapes[o]) if o not in marks else marks[o]
        m[start:start + 1 + len(shapes[o])] |= seeds(shapes[o])
        marks[o] = m
    for op in reversed(graph.ops):
        if op.name not in marks:
            continue
        info = a.ops[op.name]
        pulled = _pullback(op.kind, info.attrs, info.in_shapes, info.shape, marks.pop(op.name))
        for name, m in zip(op.inputs, pulled, strict=True):
            if m is None:
                continue
            if name in marks:
                marks[name] = marks[name] | m
            else:
                marks[name] = m
    out: dict[tuple[str, str], Matrix] = {}
    for i in graph.input_names:
        m = marks.get(i, _zeros(total, shapes[i]))
        for o, start in blocks:
            out[(i, o)] = classify(m[start:start + 1 + len(shapes[o])], shapes[i])
    return out


def _zeros(rows: int, shape: tuple[int, ...]) -> Masks:
    return np.zeros((rows, *shape), bool)


def classify(rows: Masks, in_shape: tuple[int, ...]) -> Matrix:
    """The definition's matrix from one output's pulled-back rows over one input."""
    r, s = len(in_shape), rows.shape[0] - 1
    matrix = []
    for i in range(r):
        other = tuple(1 + a for a in range(r) if a != i)
        along = rows.any(axis=other) if other else rows  # (rows, n_i)
        count = int(along[0].sum())
        n = in_shape[i]
        kind = ALL if count == n else MANY if count > 1 else ONE
        matrix.append(tuple(kind if along[1 + j].all() else NONE for j in range(s)))
    return tuple(matrix)


# ---- pull-backs: marks over the output -> marks over each input (None: no dependence) -----------

Pull = Callable[[dict[str, Any], Sequence[tuple[int, ...]], tuple[int, ...], Masks], list[Any]]


def _pullback(kind: OpKind, attrs: dict[str, Any], ins: Sequence[tuple[int, ...]],
              out: tuple[int, ...], m: Masks) -> list[Masks | None]:
    rule = _PULL.get(kind)
    if rule is None:
        raise OracleUnsupported(f"no exact mixing rule for op kind {kind.value}")
    return rule(attrs, ins, out, m)


def _same(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    return [m]


def _scalar_mul(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    return [None] if a["value"] == 0 else [m]


def _spread(m: Masks, axes: Sequence[int], shape: tuple[int, ...]) -> Masks:
    """Every element along `axes` (tensor axes) is read when any is: OR then broadcast."""
    ax = tuple(1 + x for x in axes)
    return np.broadcast_to(m.any(axis=ax, keepdims=True), m.shape[:1] + shape).copy()


def _broadcasting(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    res = []
    for x in ins:
        lead = len(out) - len(x)
        t = m.any(axis=tuple(1 + k for k in range(lead))) if lead else m
        ones = tuple(1 + k for k, n in enumerate(x) if n == 1 and out[lead + k] != 1)
        if ones:
            t = t.any(axis=ones, keepdims=True)
        res.append(t.reshape((m.shape[0], *x)))
    return res


def _concat(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    ax = a["axis"] % len(out)
    cuts = np.cumsum([x[ax] for x in ins])[:-1]
    return list(np.split(m, cuts, axis=1 + ax))


def _dense(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    x = ins[0]
    return [np.broadcast_to(m.any(axis=-1, keepdims=True), m.shape[:1] + x).copy()]


def _dense_general(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    x, contracted = ins[0], a["axis"]
    n_feat = len(out) - (len(x) - len(contracted))
    kept = m.any(axis=tuple(range(m.ndim - n_feat, m.ndim))) if n_feat else m
    for ax in sorted(contracted):
        kept = np.expand_dims(kept, 1 + ax)
    return [np.broadcast_to(kept, m.shape[:1] + x).copy()]


def _softmax(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    x = ins[0]
    ax = a["axis"] % len(x)
    return [None] if x[ax] == 1 else [_spread(m, (ax,), x)]


def _layer_norm(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    x = ins[0]
    return [None] if x[-1] == 1 else [_spread(m, (len(x) - 1,), x)]


def _group_norm(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    """Per example, statistics over the spatial dims and the channels of one group."""
    x, g = ins[0], a["num_groups"]
    per = x[-1] // g
    if math.prod(x[1:-1]) * per == 1:
        return [None]
    t = m.reshape((*m.shape[:-1], g, per)).any(axis=-1)              # (rows, b, *sp, g)
    t = t.any(axis=tuple(range(2, t.ndim - 1)), keepdims=True)       # over the spatial dims
    t = np.repeat(t, per, axis=-1)
    return [np.broadcast_to(t, m.shape[:1] + x).copy()]


def _attention(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    """Each output token reads every token (keys/values) and every feature of its batch."""
    x = ins[0]
    t = m.any(axis=(-2, -1), keepdims=True)
    return [np.broadcast_to(t, m.shape[:1] + x).copy()]


def _mean(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    x, axes = ins[0], a["axes"]
    t = m
    if not a["keepdims"]:
        for ax in sorted(axes):
            t = np.expand_dims(t, 1 + ax)
    else:
        t = t.any(axis=tuple(1 + ax for ax in axes), keepdims=True)
    return [np.broadcast_to(t, m.shape[:1] + x).copy()]


def _reshape(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    return [m.reshape((m.shape[0], *ins[0]))]


def _transpose(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    inverse = np.argsort(a["perm"])
    return [m.transpose((0, *(1 + int(p) for p in inverse)))]


def _pads(n: int, m: int, k_eff: int, s: int, padding: str) -> int:
    """XLA's low padding: 'SAME' pads max((m - 1) * s + k_eff - n, 0), the smaller half first."""
    if padding == "VALID":
        if m != (n - k_eff) // s + 1:
            raise OracleUnsupported(f"VALID window {k_eff}/{s} on {n} gives {(n - k_eff) // s + 1}, not {m}")
        return 0
    if m != -(-n // s):
        raise OracleUnsupported(f"SAME stride {s} on {n} gives {-(-n // s)}, not {m}")
    return max((m - 1) * s + k_eff - n, 0) // 2


def _windows(m: Masks, x_sp: tuple[int, ...], k: Sequence[int], s: Sequence[int],
             d: Sequence[int], padding: str) -> Masks:
    """Spatial pull-back: output q reads input q * s - lo + t * d for taps t < k (inside)."""
    y_sp = m.shape[2:-1]
    los = [_pads(n, q, (kk - 1) * dd + 1, ss, padding)
           for n, q, kk, ss, dd in zip(x_sp, y_sp, k, s, d, strict=True)]
    spans = [(q - 1) * ss + (kk - 1) * dd + 1 for q, kk, ss, dd in zip(y_sp, k, s, d, strict=True)]
    wide = np.zeros(m.shape[:2] + tuple(max(sp, lo + n) for sp, lo, n in
                                       zip(spans, los, x_sp, strict=True)) + m.shape[-1:], bool)
    for taps in itertools.product(*(range(kk) for kk in k)):
        idx = tuple(slice(t * dd, t * dd + (q - 1) * ss + 1, ss)
                    for t, dd, q, ss in zip(taps, d, y_sp, s, strict=True))
        wide[(slice(None), slice(None), *idx)] |= m
    crop = tuple(slice(lo, lo + n) for lo, n in zip(los, x_sp, strict=True))
    return wide[(slice(None), slice(None), *crop)]


def _conv(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    """Output channel f of group g reads the input channels of group g at every tap."""
    x, g = ins[0], a["groups"]
    t = m.reshape((*m.shape[:-1], g, out[-1] // g)).any(axis=-1)
    t = _windows(t, x[1:-1], a["kernel"], a["strides"], a["dilation"], a["padding"])
    return [np.repeat(t, x[-1] // g, axis=-1)]


def _pool(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    """Per channel; a max pool's arg-max can be anywhere in its window, so the whole window."""
    x = ins[0]
    n = len(x) - 2
    return [_windows(m, x[1:-1], a["window"], a["strides"], (1,) * n, a["padding"])]


def _resize(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    """Separable: along each resized dim, output q reads the inputs jax.image.resize weights."""
    x, t = ins[0], m
    for ax in range(1, len(x) - 1):
        if x[ax] == out[ax]:
            continue
        w = resize_weights(x[ax], out[ax], a["method"])  # (m, n) bool
        t = np.moveaxis(np.tensordot(np.moveaxis(t, 1 + ax, -1).astype(np.int32), w.astype(np.int32),
                                     axes=([-1], [0])) > 0, -1, 1 + ax)
    return [t]


@lru_cache(maxsize=256)
def resize_weights(n: int, m: int, method: str) -> np.ndarray:
    """(m, n) bool: which of n inputs each of m outputs reads, probed on jax.image.resize itself."""
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        probe = jnp.eye(n, dtype=jnp.float64)[None]  # (1, n inputs as positions, n probes)
        w = np.asarray(jax.image.resize(probe, (1, m, n), method=method))[0]
    scale = max(float(np.abs(w).max()), 1e-300)
    return np.abs(w) > 1e-9 * scale


def _einsum(a: dict[str, Any], ins: Sequence[tuple[int, ...]], out: tuple[int, ...], m: Masks) -> list[Any]:
    """An operand element reads into every output element that agrees on their shared labels
    (an ellipsis is spelled out as letters, right-aligned; a size-1 dim broadcasts)."""
    eq = a["equation"].replace(" ", "").replace("...", ".")
    lhs, rhs = eq.split("->")
    terms = lhs.split(",")
    free = [ch for ch in string.ascii_letters if ch not in eq]
    ell = max(len(x) - (len(t) - ("." in t)) for t, x in zip(terms, ins, strict=True))
    letters = "".join(free[:ell])
    rhs = rhs.replace(".", letters)
    z = free[ell]
    res = []
    for t, x in zip(terms, ins, strict=True):
        k = len(x) - (len(t) - ("." in t))
        t = t.replace(".", letters[ell - k:] if k else "")
        shared = [ch for ch in rhs if ch in t]
        red = np.einsum(f"{z}{rhs}->{z}{''.join(shared)}", m.astype(np.int32)) > 0
        full = _arrange(red, t, shared)
        wide = tuple(1 + i for i, n in enumerate(x) if n == 1 and full.shape[1 + i] > 1)
        if wide:
            full = full.any(axis=wide, keepdims=True)
        res.append(np.broadcast_to(full, m.shape[:1] + x).copy())
    return res


def _arrange(red: Masks, term: str, shared: list[str]) -> Masks:
    """`red` has the shared labels in output order after the row axis; put them in `term`'s
    order and insert size-1 axes for the contracted labels."""
    order = [ch for ch in term if ch in shared]
    t = red.transpose((0, *(1 + shared.index(ch) for ch in order)))
    shape = [red.shape[0]] + [t.shape[1 + order.index(ch)] if ch in shared else 1 for ch in term]
    return t.reshape(shape)


_PULL: dict[OpKind, Pull] = {
    K.CONV: _conv, K.DENSE: _dense, K.DENSE_GENERAL: _dense_general,
    K.ADD: _broadcasting, K.MUL: _broadcasting, K.CONCAT: _concat,
    K.SCALAR_ADD: _same, K.SCALAR_MUL: _scalar_mul, K.EINSUM: _einsum,
    K.SELF_ATTENTION: _attention, K.SOFTMAX: _softmax,
    K.RELU: _same, K.GELU: _same, K.SWISH: _same, K.SIGMOID: _same, K.TANH: _same,
    K.IDENTITY: _same, K.BATCH_NORM: _same, K.DROPOUT: _same, K.STOCHASTIC_DEPTH: _same,
    K.LAYER_NORM: _layer_norm, K.GROUP_NORM: _group_norm,
    K.RESHAPE: _reshape, K.FLATTEN: _reshape, K.TRANSPOSE: _transpose,
    K.AVG_POOL: _pool, K.MAX_POOL: _pool, K.MEAN: _mean, K.RESIZE: _resize,
    K.PARAM: lambda a, ins, out, m: [],
}
