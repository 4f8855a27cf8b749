"""Mixing (the paper's "linear operator"/pairing property): how input dims mix into output dims.

For each (input, output) pair of a subject, a matrix over (input dim, output dim) with values in
NONE < ONE_TO_ONE < MANY_TO_ONE < ALL_TO_ONE. The definition (DESIGN §4; `mixing_concrete` checks
it with Jacobians): take the output's centre element c (index size // 2 on every dim) and the 1-D
slice through c along output dim j. Input dim i pairs with j iff every position along i
influences some element of that slice; the kind counts the positions along i that influence c:
all of them -> ALL_TO_ONE, several -> MANY_TO_ONE, otherwise ONE_TO_ONE (also when c reads none
of them although the slice reaches all of them, as in the reference).

Consequences of the literal definition:
- a reduced dim pairs with *every* output dim: for dense, features -> batch is ALL_TO_ONE (the
  batch slice through c reads every feature) while batch -> features is NONE;
- an ALL_TO_ONE entry makes its whole row ALL_TO_ONE (c reads every position and lies on every
  slice); in particular a size-1 input dim is ALL_TO_ONE everywhere once c depends on the input;
- ops run in eval mode: batch norm is a per-channel affine map, dropout and stochastic depth are
  identities; max pool reads its whole window (over inputs, the arg-max can be anywhere in it);
- an op whose output is constant has an all-NONE table (zero Jacobian): softmax over one element,
  layer/group norm over one element, scalar_mul by 0.

`infer_mixing` (used by `verify`, `props` and every read-off) evaluates the definition *exactly*
on the concrete graph: the index masks that the output centre and its slices read are pulled
back through every op (`alphanas.oracle.deps`, cross-checked against the Jacobian definition
of `mixing_concrete` in the tests). Per-op tables also come analytically from resolved
attributes and shapes (`op_mixing`, exact for one op); `analytic_mixing` composes them over a
graph with the paper's rule (`compose`), which is exact only on the graphs `compose` documents.
The synthesizer's abstract states use `mixing_step` (that rule) to rank, never to prune.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from alphanas.errors import SpecError
from alphanas.ir.analysis import OpInfo, analyze
from alphanas.ir.attrs import OpKind, Shape
from alphanas.ir.graph import Graph, Op
from alphanas.ir.rules import parse_einsum
from alphanas.properties.base import Pair, Subject, Target, Violation

__all__ = [
    "Mix",
    "MixMatrix",
    "MixingTarget",
    "compose",
    "compose_is_exact",
    "mixing_step",
    "start_state",
    "identity_mixing",
    "analytic_mixing",
    "infer_mixing",
    "matrix_from_counts",
    "op_mixing",
]

K = OpKind


class Mix(enum.IntEnum):
    """The mixing lattice, ordered by strength."""

    NONE = 0
    ONE_TO_ONE = 1
    MANY_TO_ONE = 2
    ALL_TO_ONE = 3

    @property
    def label(self) -> str:
        """The spec-file name: none, one, many, all."""
        return _LABELS[self]


_LABELS = {Mix.NONE: "none", Mix.ONE_TO_ONE: "one", Mix.MANY_TO_ONE: "many", Mix.ALL_TO_ONE: "all"}
_BY_LABEL = {v: k for k, v in _LABELS.items()}

MixMatrix = tuple[tuple[Mix, ...], ...]
"""Rows: input dims; columns: output dims."""


def matrix_from_counts(paired: np.ndarray, counts: np.ndarray, sizes: Sequence[int]) -> MixMatrix:
    """The matrix from `paired[i, j]` and `counts[i]` (positions along input dim i read by the
    centre): the definition's classification, shared by the analytic and the concrete side."""
    rows = []
    for i, n in enumerate(sizes):
        kind = Mix.ALL_TO_ONE if counts[i] == n else Mix.MANY_TO_ONE if counts[i] > 1 else Mix.ONE_TO_ONE
        rows.append(tuple(kind if paired[i, j] else Mix.NONE for j in range(paired.shape[1])))
    return tuple(rows)


# ---- per-op tables -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Axis:
    """How one input dim of a product-form op is read: output element y reads input element x
    iff x_i is in D_i(y) for every input dim i.

    `out`: the output dim D_i depends on (None: D_i is every position, a reduced dim);
    `centre`: |D_i(c)| for the output centre c; `covers`: every position is read by some output
    position along `out`; `hits`: some output position along `out` reads any position at all.
    """

    out: int | None
    centre: int
    covers: bool = True
    hits: bool = True


def _same(j: int) -> _Axis:
    """Position p of the input dim feeds position p (or a size-1 dim feeds every position)."""
    return _Axis(j, 1)


def _reduced(n: int) -> _Axis:
    return _Axis(None, n)


def _product_matrix(axes: Sequence[_Axis], sizes: Shape, out: Shape) -> MixMatrix:
    """The definition evaluated on a product-form dependence (see `_Axis`)."""
    r, s = len(sizes), len(out)
    reads_centre = all(a.centre > 0 for a in axes)
    paired = np.zeros((r, s), bool)
    for j in range(s):
        mine = [i for i, a in enumerate(axes) if a.out == j]  # at most one for every op here
        base = all(axes[i].centre > 0 for i in range(r) if i not in mine)
        hit = all(axes[i].hits for i in mine)
        for i, a in enumerate(axes):
            if i in mine:
                paired[i, j] = base and a.covers
            else:
                paired[i, j] = base and hit and a.centre == sizes[i]
    counts = np.array([a.centre if reads_centre else 0 for a in axes], int)
    return matrix_from_counts(paired, counts, sizes)


def _dead(sizes: Shape, out: Shape) -> MixMatrix:
    return tuple((Mix.NONE,) * len(out) for _ in sizes)


def _window(n: int, m: int, k: int, s: int, d: int, lo: int, j: int) -> _Axis:
    """Output position q (of m) reads input positions q*s - lo + t*d, t < k, inside [0, n)."""

    def reads(q: int) -> list[int]:
        return [p for p in range(q * s - lo, q * s - lo + k * d, d) if 0 <= p < n]

    centre = len(reads(m // 2))
    if d == 1 and s <= k:  # windows overlap or touch: their union is [-lo, last end]
        last = (m - 1) * s - lo + k - 1
        return _Axis(j, centre, last >= n - 1, last >= 0)
    seen = {p for q in range(m) for p in reads(q)}
    return _Axis(j, centre, len(seen) == n, bool(seen))


def _same_pad(n: int, m: int, k_eff: int, s: int, padding: str) -> int:
    """Low padding of an XLA window op ('SAME' pads (total // 2) before)."""
    return max((m - 1) * s + k_eff - n, 0) // 2 if padding == "SAME" else 0


def _conv(info: OpInfo) -> tuple[MixMatrix, ...]:
    a, x, y = info.attrs, info.in_shapes[0], info.shape
    r = len(x)
    axes = [_same(0)]
    for i in range(r - 2):
        k, s, d = a["kernel"][i], a["strides"][i], a["dilation"][i]
        lo = _same_pad(x[1 + i], y[1 + i], (k - 1) * d + 1, s, a["padding"])
        axes.append(_window(x[1 + i], y[1 + i], k, s, d, lo, 1 + i))
    axes.append(_Axis(r - 1, x[-1] // a["groups"]))  # the centre's group of input channels
    return (_product_matrix(axes, x, y),)


def _pool(info: OpInfo) -> tuple[MixMatrix, ...]:
    a, x, y = info.attrs, info.in_shapes[0], info.shape
    r = len(x)
    axes = [_same(0)]
    for i in range(r - 2):
        w, s = a["window"][i], a["strides"][i]
        lo = _same_pad(x[1 + i], y[1 + i], w, s, a["padding"])
        axes.append(_window(x[1 + i], y[1 + i], w, s, 1, lo, 1 + i))
    axes.append(_same(r - 1))
    return (_product_matrix(axes, x, y),)


def _elementwise(info: OpInfo) -> tuple[MixMatrix, ...]:
    x = info.in_shapes[0]
    return (_product_matrix([_same(i) for i in range(len(x))], x, info.shape),)


def _broadcasting(info: OpInfo) -> tuple[MixMatrix, ...]:
    """add/mul: input dims right-aligned with the output's; a size-1 dim feeds every position."""
    y = info.shape
    out = []
    for x in info.in_shapes:
        shift = len(y) - len(x)
        out.append(_product_matrix([_same(i + shift) for i in range(len(x))], x, y))
    return tuple(out)


def _concat(info: OpInfo) -> tuple[MixMatrix, ...]:
    y = info.shape
    ax = info.attrs["axis"] % len(y)
    out, offset = [], 0
    for x in info.in_shapes:
        centre = int(offset <= y[ax] // 2 < offset + x[ax])  # does the centre come from this input?
        axes = [_Axis(ax, centre) if i == ax else _same(i) for i in range(len(x))]
        out.append(_product_matrix(axes, x, y))
        offset += x[ax]
    return tuple(out)


def _dense(info: OpInfo) -> tuple[MixMatrix, ...]:
    x = info.in_shapes[0]
    axes = [_same(i) for i in range(len(x) - 1)] + [_reduced(x[-1])]
    return (_product_matrix(axes, x, info.shape),)


def _dense_general(info: OpInfo) -> tuple[MixMatrix, ...]:
    x, contracted = info.in_shapes[0], info.attrs["axis"]
    kept = [i for i in range(len(x)) if i not in contracted]
    axes = [_reduced(x[i]) if i in contracted else _same(kept.index(i)) for i in range(len(x))]
    return (_product_matrix(axes, x, info.shape),)


def _scalar_mul(info: OpInfo) -> tuple[MixMatrix, ...]:
    if info.attrs["value"] == 0:  # a constant output: the Jacobian is zero
        return (_dead(info.in_shapes[0], info.shape),)
    return _elementwise(info)


def _softmax(info: OpInfo) -> tuple[MixMatrix, ...]:
    x = info.in_shapes[0]
    ax = info.attrs["axis"] % len(x)
    if x[ax] == 1:  # softmax of one element is the constant 1
        return (_dead(x, info.shape),)
    axes = [_reduced(x[i]) if i == ax else _same(i) for i in range(len(x))]
    return (_product_matrix(axes, x, info.shape),)


def _layer_norm(info: OpInfo) -> tuple[MixMatrix, ...]:
    x = info.in_shapes[0]
    if x[-1] == 1:  # normalizing one element gives the constant bias
        return (_dead(x, info.shape),)
    axes = [_same(i) for i in range(len(x) - 1)] + [_reduced(x[-1])]
    return (_product_matrix(axes, x, info.shape),)


def _group_norm(info: OpInfo) -> tuple[MixMatrix, ...]:
    """Statistics over (spatial..., the channels of one group) per example (Flax's default)."""
    x = info.in_shapes[0]
    group = x[-1] // info.attrs["num_groups"]
    if math.prod(x[1:-1]) * group == 1:
        return (_dead(x, info.shape),)
    axes = [_same(0)] + [_reduced(n) for n in x[1:-1]] + [_Axis(len(x) - 1, group)]
    return (_product_matrix(axes, x, info.shape),)


def _attention(info: OpInfo) -> tuple[MixMatrix, ...]:
    """Attention over axis -2 with every leading axis a batch axis: tokens and features reduced."""
    x = info.in_shapes[0]
    axes = [_same(i) for i in range(len(x) - 2)] + [_reduced(x[-2]), _reduced(x[-1])]
    return (_product_matrix(axes, x, info.shape),)


def _transpose(info: OpInfo) -> tuple[MixMatrix, ...]:
    x, perm = info.in_shapes[0], list(info.attrs["perm"])
    return (_product_matrix([_same(perm.index(i)) for i in range(len(x))], x, info.shape),)


def _mean(info: OpInfo) -> tuple[MixMatrix, ...]:
    x, red, keep = info.in_shapes[0], info.attrs["axes"], info.attrs["keepdims"]
    kept = [i for i in range(len(x)) if i not in red]
    axes = [_reduced(x[i]) if i in red else _same(i if keep else kept.index(i)) for i in range(len(x))]
    return (_product_matrix(axes, x, info.shape),)


def _resize(info: OpInfo) -> tuple[MixMatrix, ...]:
    x, y, linear = info.in_shapes[0], info.shape, info.attrs["method"] == "linear"
    axes = [_same(0)]
    for i in range(1, len(x) - 1):
        reads = _resize_linear if linear and x[i] != y[i] else _resize_nearest
        sets = [reads(x[i], y[i], q) for q in range(y[i])]
        seen = set().union(*sets)
        axes.append(_Axis(i, len(sets[y[i] // 2]), len(seen) == x[i], bool(seen)))
    axes.append(_same(len(x) - 1))
    return (_product_matrix(axes, x, y),)


def _resize_nearest(n: int, m: int, q: int) -> set[int]:
    """jax.image.resize 'nearest': output q reads floor((q + 1/2) * n / m)."""
    return {min((2 * q + 1) * n // (2 * m), n - 1)}


def _resize_linear(n: int, m: int, q: int) -> set[int]:
    """jax.image.resize 'linear' (antialiased): a triangle kernel of radius max(n/m, 1) around
    the sample point (q + 1/2) * n/m - 1/2, in exact arithmetic."""
    inv = Fraction(n, m)
    radius = max(inv, Fraction(1))
    centre = (q + Fraction(1, 2)) * inv - Fraction(1, 2)
    return {p for p in range(n) if abs(centre - p) < radius}


def _reshape(info: OpInfo) -> tuple[MixMatrix, ...]:
    return (_reshape_table(info.in_shapes[0], info.shape),)


@lru_cache(maxsize=512)
def _reshape_table(x: Shape, y: Shape) -> MixMatrix:
    """Reshape/flatten: output element y reads the input element with the same row-major index;
    the slices through the centre are enumerated (not product form)."""
    c = tuple(n // 2 for n in y)
    flat = int(np.ravel_multi_index(c, y)) if y else 0
    strides = [math.prod(y[j + 1 :]) for j in range(len(y))]
    paired = np.zeros((len(x), len(y)), bool)
    for j in range(len(y)):
        idx = flat + (np.arange(y[j]) - c[j]) * strides[j]
        coords = np.unravel_index(idx, x) if x else ()
        for i in range(len(x)):
            paired[i, j] = np.unique(coords[i]).size == x[i]
    return matrix_from_counts(paired, np.ones(len(x), int), x)


def _einsum(info: OpInfo) -> tuple[MixMatrix, ...]:
    terms, rhs = parse_einsum(info.attrs["equation"], len(info.in_shapes))
    y = info.shape
    ell_out = len(y) - (len(rhs) - ("." in rhs))
    where: dict[str, int] = {}
    pos = 0
    for ch in rhs:
        where[ch] = pos
        pos += ell_out if ch == "." else 1
    out = []
    for t, x in zip(terms, info.in_shapes, strict=True):
        k = len(x) - (len(t) - ("." in t))  # this operand's ellipsis rank
        axes: list[_Axis] = []
        for ch in t:
            for e in range(k if ch == "." else 1):
                if ch not in where:
                    axes.append(_reduced(x[len(axes)]))
                else:
                    axes.append(_same(where[ch] + (ell_out - k + e if ch == "." else 0)))
        out.append(_product_matrix(axes, x, y))
    return tuple(out)


Rule = Callable[[OpInfo], tuple[MixMatrix, ...]]

_RULES: dict[OpKind, Rule] = {
    K.CONV: _conv, K.DENSE: _dense, K.DENSE_GENERAL: _dense_general,
    K.ADD: _broadcasting, K.MUL: _broadcasting, K.CONCAT: _concat,
    K.SCALAR_ADD: _elementwise, K.SCALAR_MUL: _scalar_mul, K.EINSUM: _einsum,
    K.SELF_ATTENTION: _attention, K.SOFTMAX: _softmax,
    K.RELU: _elementwise, K.GELU: _elementwise, K.SWISH: _elementwise,
    K.SIGMOID: _elementwise, K.TANH: _elementwise, K.IDENTITY: _elementwise,
    K.BATCH_NORM: _elementwise,  # eval mode: (x - running mean) * scale / sqrt(running var) + bias
    K.DROPOUT: _elementwise, K.STOCHASTIC_DEPTH: _elementwise,  # eval mode: identities
    K.LAYER_NORM: _layer_norm, K.GROUP_NORM: _group_norm,
    K.RESHAPE: _reshape, K.FLATTEN: _reshape, K.TRANSPOSE: _transpose,
    K.AVG_POOL: _pool, K.MAX_POOL: _pool, K.MEAN: _mean, K.RESIZE: _resize,
    K.PARAM: lambda info: (),  # no inputs
}


def op_mixing(op: Op | OpKind, info: OpInfo) -> tuple[MixMatrix, ...]:
    """One matrix per input of the op (input dims x output dims), from its resolved attributes."""
    kind = op.kind if isinstance(op, Op) else op
    return _op_tables(kind, tuple(sorted(info.attrs.items())), info.in_shapes, info.shape)


@lru_cache(maxsize=4096)
def _op_tables(kind: OpKind, attrs: tuple, ins: tuple[Shape, ...], out: Shape) -> tuple[MixMatrix, ...]:
    return _RULES[kind](OpInfo(dict(attrs), ins, out, 0, 0))


def identity_mixing(shape: Shape) -> MixMatrix:
    """The matrix of a tensor with itself (diagonal ONE_TO_ONE; size-1 dims ALL_TO_ONE rows)."""
    return _product_matrix([_same(i) for i in range(len(shape))], shape, shape)


# ---- composition over a graph ----------------------------------------------------------------

_Ints = tuple[tuple[int, ...], ...]  # a matrix of plain ints (fast to hash and compare)


def compose(before: MixMatrix, op: MixMatrix) -> MixMatrix:
    """The paper's rule for X -> Y (`before`) followed by Y -> Z (`op`).

    Entry (a, b): ALL_TO_ONE if row a of `before` holds an ALL_TO_ONE (the centre of Y reads every
    position along a), whatever op[c, b] is, as in the reference; otherwise the max over Y dims c
    with both before[a, c] and op[c, b] paired of max(before[a, c], op[c, b]). `infer_mixing`
    skips ops whose table is all NONE (Z does not depend on Y).

    Exact for one op; for several, the rule only sees kinds, not positions, and is neither an
    upper nor a lower bound in general: windows that together span a dim give ALL_TO_ONE
    concretely but MANY_TO_ONE here; a dim split by a reshape and merged back loses its pairing
    here; an ALL_TO_ONE of Y's centre is propagated even when Z's centre reads other elements of Y
    (e.g. after concat, a strided window or a flatten whose centre is not Y's centre); and paths
    that read different positions join to more than their max (e.g. through flatten and
    transpose). It is exact on "regular" graphs: ops that read each input dim at the output's own
    coordinate or entirely (no reshape, flatten, concat or resize), plus at most one window op
    (conv, pool; dilation 1) on any path (tests/test_mixing.py).
    """
    cols = _columns(_ints(op), len(op[0]) if op else 0)
    return _to_mix(_compose(_ints(before), cols))


def _ints(m: MixMatrix) -> _Ints:
    return tuple(tuple(int(v) for v in row) for row in m)


def _to_mix(m: _Ints) -> MixMatrix:
    return tuple(tuple(Mix(v) for v in row) for row in m)


@lru_cache(maxsize=4096)
def _columns(op: _Ints, width: int) -> _Ints:
    return tuple(tuple(row[b] for row in op) for b in range(width))


@lru_cache(maxsize=65536)
def _compose(before: _Ints, cols: _Ints) -> _Ints:
    """`compose` on int matrices, `op` given by columns."""
    rows = []
    for row in before:
        if 3 in row:
            rows.append((3,) * len(cols))
            continue
        new = []
        for col in cols:
            best = 0
            for x, y in zip(row, col, strict=True):
                if x and y and max(x, y) > best:
                    best = max(x, y)
            new.append(best)
        rows.append(tuple(new))
    return tuple(rows)


def _join(a: _Ints, b: _Ints) -> _Ints:
    return tuple(tuple(max(x, y) for x, y in zip(r, q, strict=True)) for r, q in zip(a, b, strict=True))


def infer_mixing(subject: Subject | Graph) -> dict[Pair, MixMatrix]:
    """The mixing matrix of every (input, output) pair, exactly by the definition (pulled-back
    index masks over the concrete graph)."""
    from alphanas.oracle.deps import exact_mixing

    graph = subject.graph if isinstance(subject, Subject) else subject
    return {pair: _to_mix(m) for pair, m in exact_mixing(graph).items()}


_POINTWISE = frozenset({K.RELU, K.GELU, K.SWISH, K.SIGMOID, K.TANH, K.IDENTITY, K.BATCH_NORM,
                        K.DROPOUT, K.STOCHASTIC_DEPTH, K.SCALAR_ADD, K.SCALAR_MUL, K.ADD, K.MUL,
                        K.DENSE, K.LAYER_NORM, K.SOFTMAX, K.SELF_ATTENTION, K.GROUP_NORM})


def compose_is_exact(graph: Graph) -> bool:
    """Whether `analytic_mixing` claims to equal the definition on `graph`: every op reads each
    input dim at the output's own coordinate or entirely (pointwise ops, add/mul broadcasting,
    dense, norms, softmax, attention, keepdims means), plus at most one window op (a conv or
    pool with a window or stride > 1, dilation 1, or an add/mul that broadcasts) on any path. The differential tests hold the
    claim to the oracle."""
    a = analyze(graph)
    windows: dict[str, int] = {n: 0 for n in graph.input_names}
    for op in graph.ops:
        at = a.ops[op.name].attrs
        if op.kind in (K.CONV, K.AVG_POOL, K.MAX_POOL):
            if any(d != 1 for d in at.get("dilation", (1,))):
                return False
            sizes = at.get("kernel", at.get("window", ()))
            w = int(any(k > 1 for k in sizes) or any(s > 1 for s in at["strides"]))
        elif op.kind is K.MEAN and at["keepdims"]:
            w = 0
        elif op.kind in (K.ADD, K.MUL) and len(set(a.ops[op.name].in_shapes)) > 1:
            w = 1  # a broadcast reads a size-1 dim at another coordinate, like a window
        elif op.kind in _POINTWISE:
            w = 0
        else:
            return False
        windows[op.name] = w + max((windows.get(i, 0) for i in op.inputs), default=0)
        if windows[op.name] > 1:
            return False
    return True


def analytic_mixing(subject: Subject | Graph) -> dict[Pair, MixMatrix]:
    """The paper's composition rule over the graph (fast; exact only where `compose` says):
    per tensor, a map graph input -> matrix; several paths join by element-wise max."""
    graph = subject.graph if isinstance(subject, Subject) else subject
    analysis = subject.analysis if isinstance(subject, Subject) else analyze(graph)
    shapes = analysis.shapes
    state: dict[str, dict[str, _Ints]] = {
        name: {name: _diagonal(len(shapes[name]))} for name in graph.input_names}
    for op in graph.ops:
        state[op.name] = mixing_step(op.kind, analysis.ops[op.name], [state[i] for i in op.inputs])
    out: dict[Pair, MixMatrix] = {}
    for i in graph.input_names:
        for o in graph.outputs:
            if o == i:  # an input returned as is
                out[(i, o)] = identity_mixing(shapes[i])
            else:
                m = state[o].get(i)
                out[(i, o)] = _to_mix(m) if m is not None else _dead(shapes[i], shapes[o])
    return out


def mixing_step(kind: OpKind, info: OpInfo, ins: Sequence[Mapping[str, _Ints]]) -> dict[str, _Ints]:
    """One op of `infer_mixing`: per graph input, the op output's matrix (int entries) from the
    states of its inputs (graph input -> matrix); `start_state(rank)` starts a graph input."""
    acc: dict[str, _Ints] = {}
    for src, cols in zip(ins, _op_columns(kind, info), strict=True):
        if cols is None:  # the output does not depend on this input
            continue
        for name, m in src.items():
            new = _compose(m, cols)
            acc[name] = _join(acc[name], new) if name in acc and acc[name] != new else new
    return acc


def start_state(rank: int) -> _Ints:
    """The state of a graph input with itself in `mixing_step` (diagonal ONE_TO_ONE)."""
    return _diagonal(rank)


def _op_columns(kind: OpKind, info: OpInfo) -> tuple[_Ints | None, ...]:
    """Per input, the op's table by columns (None when all NONE), cached with the table."""
    return _columns_of(kind, tuple(sorted(info.attrs.items())), info.in_shapes, info.shape)


@lru_cache(maxsize=4096)
def _columns_of(kind: OpKind, attrs: tuple, ins: tuple[Shape, ...], out: Shape) -> tuple[_Ints | None, ...]:
    tables = _op_tables(kind, attrs, ins, out)
    return tuple(_columns(_ints(t), len(out)) if any(v for row in t for v in row) else None
                 for t in tables)


@lru_cache(maxsize=64)
def _diagonal(rank: int) -> _Ints:
    """The start state of an input: diagonal ONE_TO_ONE, neutral on the left of `compose`."""
    return tuple(tuple(int(a == b) for b in range(rank)) for a in range(rank))


# ---- the target ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MixingTarget(Target):
    """Lower bounds on mixing: every listed pair must mix at least this much, entry by entry."""

    entries: tuple[tuple[Pair, MixMatrix], ...]
    name: ClassVar[str] = "mixing"

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(sorted(self.entries)))

    @classmethod
    def read_off(cls, subject: Subject) -> MixingTarget:
        return cls(tuple(infer_mixing(subject).items()))

    def _gaps(self, subject: Subject) -> list[tuple[str, Mix, Mix]]:
        """(where, expected, got) for every entry where the subject mixes less than required."""
        got = infer_mixing(subject)
        gaps = []
        for (i, o), target in self.entries:
            have = got.get((i, o), ())
            for a, row in enumerate(target):
                for b, want in enumerate(row):
                    g = have[a][b] if a < len(have) and b < len(have[a]) else Mix.NONE
                    if want > g:
                        gaps.append((f"{i}->{o}[{a},{b}]", want, g))
        return gaps

    def check(self, subject: Subject) -> list[Violation]:
        """One violation per (pair, input dim, output dim) below target; amount = lattice steps."""
        return [Violation(self.name, w, want.label, g.label, float(want - g))
                for w, want, g in self._gaps(subject)]

    def distance(self, subject: Subject) -> float:
        """Fraction of the target's non-NONE entries that the subject does not reach."""
        total = sum(v > Mix.NONE for _, m in self.entries for row in m for v in row)
        return len(self._gaps(subject)) / total if total else 0.0

    def mutate(self, seed: int, p: float = 0.5, **options: Any) -> MixingTarget:
        """Each pair's whole matrix set to NONE with probability `p` (seeded)."""
        if options:
            raise TypeError(f"unknown mutation options: {', '.join(sorted(options))}")
        rng = random.Random(seed)
        out = []
        for pair, m in self.entries:
            drop = rng.random() < p
            out.append((pair, tuple((Mix.NONE,) * len(r) for r in m) if drop else m))
        return MixingTarget(tuple(out))

    def to_dict(self) -> dict[str, Any]:
        return {"pairs": [{"input": i, "output": o, "matrix": [[v.label for v in r] for r in m]}
                          for (i, o), m in self.entries]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> MixingTarget:
        _keys(data, where, {"pairs"}, {"pairs"})
        pairs = data["pairs"]
        if not isinstance(pairs, (list, tuple)):
            raise SpecError(f"{where}.pairs: expected a list of tables, got {pairs!r}")
        entries: dict[Pair, MixMatrix] = {}
        for k, item in enumerate(pairs):
            pair, m = _parse_pair(item, f"{where}.pairs[{k}]")
            if pair in entries:
                raise SpecError(f"{where}.pairs[{k}]: pair {pair[0]} -> {pair[1]} is listed twice")
            entries[pair] = m
        return cls(tuple(entries.items()))


def _keys(data: Any, where: str, required: set[str], accepted: set[str]) -> None:
    if not isinstance(data, Mapping):
        raise SpecError(f"{where}: expected a table with keys {', '.join(sorted(accepted))}, got {data!r}")
    unknown = sorted(set(data) - accepted)
    if unknown:
        raise SpecError(f"{where}.{unknown[0]}: unknown key (accepted: {', '.join(sorted(accepted))})")
    missing = sorted(required - set(data))
    if missing:
        raise SpecError(f"{where}.{missing[0]}: missing required key")


def _parse_pair(item: Any, where: str) -> tuple[Pair, MixMatrix]:
    _keys(item, where, {"input", "output", "matrix"}, {"input", "output", "matrix"})
    for key in ("input", "output"):
        if not isinstance(item[key], str) or not item[key]:
            raise SpecError(f"{where}.{key}: expected a tensor name, got {item[key]!r}")
    rows = item["matrix"]
    if not isinstance(rows, (list, tuple)) or not all(isinstance(r, (list, tuple)) for r in rows):
        raise SpecError(f"{where}.matrix: expected a list of rows (lists of none, one, many, all), got {rows!r}")
    if len({len(r) for r in rows}) > 1:
        raise SpecError(f"{where}.matrix: rows must have equal lengths, got {[len(r) for r in rows]}")
    for a, row in enumerate(rows):
        for b, v in enumerate(row):
            if not isinstance(v, str) or v not in _BY_LABEL:
                raise SpecError(f"{where}.matrix[{a}][{b}]: expected one of none, one, many, all; got {v!r}")
    return (item["input"], item["output"]), tuple(tuple(_BY_LABEL[v] for v in row) for row in rows)
