"""Abstract values of partial programs, and the transfer function of one variant.

A tensor of a partial program, in one context, is a `TVal`: its *shadow* shape (every dim
concrete; a symbolic width shows as its value with every width at `SHADOW`), its last dim as a
`Term` over the width variables, and its depth DP state per subject input. Everything but the
widths and kernel sizes is decided by the enumerated variants, so shape (up to the widths) and
depth are those of every concrete program of the skeleton. Mixing is not abstracted here: it is
decided on complete skeletons, exactly, by `alphanas.synth.mixcheck`. Applying a variant also
yields the side conditions on widths (add/mul: equal widths) and the op's params/FLOPs as
`Term`s, for Z3 and for the budget bounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from alphanas.errors import AlphanasError
from alphanas.ir.analysis import OpInfo, infer_op
from alphanas.ir.attrs import Shape
from alphanas.ir.graph import make_op
from alphanas.ir.registry import opdef
from alphanas.properties import smt
from alphanas.properties.depth import NO_PATH, depth_step
from alphanas.properties.encodings import flops_term, params_term
from alphanas.properties.smt import Constraint, Term
from alphanas.properties.symbolic import SymOpInfo
from alphanas.synth.menu import KERNELS, Variant

__all__ = ["SHADOW", "Infeasible", "Step", "TVal", "apply", "input_value", "wvar"]

SHADOW = 16
Ints = tuple[tuple[int, ...], ...]


class Infeasible(Exception):
    """The variant cannot apply here (shapes do not fit): the candidate is ill-formed."""


@dataclass(frozen=True, slots=True)
class TVal:
    shape: Shape                                 # shadow shape
    last: Term                                   # symbolic last dim
    depth: tuple[tuple[int, int], ...]           # per subject input: (linear, non-linear) DP

    def depth_of(self, k: int) -> int:
        return max(self.depth[k])


@dataclass(frozen=True, slots=True)
class Step:
    """A variant applied in one context."""

    val: TVal
    cons: tuple[Constraint, ...]
    params: Term
    flops: Term


def wvar(kind: str, i: int, k: int | None = None) -> Term:
    """The Z3 variable of op `i`: w (width, per context k), k (kernel), b (bias), h (heads)."""
    return smt.var(f"{kind}{i}" if k is None else f"{kind}{i}@{k}")


def input_value(k: int, n: int, shape: Shape, linear: bool) -> TVal:
    depth = [(NO_PATH, NO_PATH)] * n
    depth[k] = (0, NO_PATH) if linear else (NO_PATH, 0)
    return TVal(shape, Term.const(shape[-1]), tuple(depth))


def _shadow(t: Term) -> int:
    return t.evaluate({v: SHADOW for v in t.variables})


def apply(v: Variant, i: int, k: int, ins: Sequence[TVal]) -> Step:
    """Variant `v` as op `i` of the program, in context `k`, on input values `ins`."""
    return _apply(v, i, k, tuple(ins))


@lru_cache(maxsize=200_000)
def _apply(v: Variant, i: int, k: int, ins: tuple[TVal, ...]) -> Step:
    if any(len(x.shape) not in v.ranks for x in ins):
        raise Infeasible(f"{v} needs rank {v.ranks}")
    if v.arity == 2:
        info, last, cons = _binary(v, ins)
    else:  # convs are SAME-padded: the shape does not depend on the kernel Z3 picks
        info, last = _unary(v, i, k, ins[0], KERNELS[-1])
        cons = ()
    if v.heads:
        cons = (*cons, *_heads(i, last))
    val = TVal(info.shape, last, _depth(v, ins))
    params, flops = _costs(v, i, k, info, ins, last)
    return Step(val, cons, params, flops)


def _unary(v: Variant, i: int, k: int, x: TVal, kernel: int) -> tuple[OpInfo, Term]:
    attrs: dict[str, Any] = dict(v.attrs)
    if v.width == "new":
        attrs["features"] = SHADOW
    if v.kernel:
        attrs["kernel"] = (kernel, kernel)
    if v.heads:
        attrs["num_heads"] = 1
    try:
        info = infer_op(make_op("op", v.kind, ("x",), **attrs), (x.shape,), {"x": x.shape})
    except AlphanasError as e:
        raise Infeasible(str(e)) from None
    if v.width == "new":
        last = wvar("w", i, k)
    elif v.width == "flatten":
        n = 1
        for d in x.shape[1:-1]:
            n *= d
        last = x.last * n
    else:
        last = x.last
    if last.is_const and last.value != info.shape[-1]:
        info = OpInfo(info.attrs, info.in_shapes, (*info.shape[:-1], last.value), 0, 0)
    return info, last


def _binary(v: Variant, ins: Sequence[TVal]) -> tuple[OpInfo, Term, tuple[Constraint, ...]]:
    a, b = ins
    if len(a.shape) != len(b.shape) and v.width == "sum":
        raise Infeasible(f"{v}: ranks {len(a.shape)} and {len(b.shape)} differ")
    r = max(len(a.shape), len(b.shape))  # add/mul broadcast right-aligned, as NumPy and the IR do
    pa, pb = (1,) * (r - len(a.shape)) + a.shape, (1,) * (r - len(b.shape)) + b.shape
    body: list[int] = []
    for x, y in zip(pa[:-1], pb[:-1], strict=True):
        if v.width == "sum" and x != y:
            raise Infeasible(f"{v}: {a.shape} and {b.shape} differ off the concat axis")
        if x != y and 1 not in (x, y):
            raise Infeasible(f"{v}: {a.shape} and {b.shape} do not broadcast")
        body.append(max(x, y))
    cons: tuple[Constraint, ...] = ()
    if v.width == "sum":
        last = a.last + b.last
        out = (*body, a.shape[-1] + b.shape[-1])
        return OpInfo(dict(v.attrs), (a.shape, b.shape), out, 0, 0), last, cons
    if a.last.value == 1 or b.last.value == 1:
        last = b.last if a.last.value == 1 else a.last
    else:
        c = smt.eq(a.last, b.last)
        if c is smt.FALSE:
            raise Infeasible(f"{v}: widths {a.last} and {b.last} differ")
        last, cons = a.last, (() if c is smt.TRUE else (c,))
    w = max(_shadow(last), 2) if last.value != 1 else 1
    fit = tuple((*x.shape[:-1], 1 if x.last.value == 1 else w) for x in ins)
    return OpInfo({}, fit, (*body, w), 0, 0), last, cons


def _heads(i: int, width: Term) -> tuple[Constraint, ...]:
    from alphanas.synth.menu import HEADS

    h = wvar("h", i)
    return (smt.any_of(smt.eq(h, n) for n in HEADS),
            *(smt.implies(smt.eq(h, n), smt.divides(n, width)) for n in HEADS if n > 1))


def _depth(v: Variant, ins: Sequence[TVal]) -> tuple[tuple[int, int], ...]:
    n = len(ins[0].depth)
    states = [([x.depth[j][0] for j in range(n)], [x.depth[j][1] for j in range(n)]) for x in ins]
    lin, non = depth_step(opdef(v.kind).depth, states, n)
    return tuple(zip(lin, non, strict=True))


def _sym(x: TVal) -> tuple[Term, ...]:
    return (*(Term.const(d) for d in x.shape[:-1]), x.last)


def _costs(v: Variant, i: int, k: int, info: OpInfo, ins: Sequence[TVal], last: Term) -> tuple[Term, Term]:
    attrs: dict[str, Any] = {**info.attrs, "use_bias": False}
    x = ins[0]
    if v.width == "new":
        attrs["features"] = last
    if v.depthwise:
        attrs["features"] = attrs["groups"] = x.last
    elif "groups" in attrs:
        attrs["groups"] = Term.const(1)
    if v.kernel:
        attrs["kernel"] = (wvar("k", i), wvar("k", i))
    if v.heads:
        attrs["qkv_features"] = attrs["out_features"] = x.last
    out = (*(Term.const(d) for d in info.shape[:-1]), last)
    sym = SymOpInfo(attrs, tuple(_sym(y) for y in ins), out)
    params = params_term(v.kind, sym, _div)
    flops = flops_term(v.kind, sym, _div)
    if v.bias:
        b = wvar("b", i)
        params = params + b * (last if not v.heads else 3 * x.last + x.last)
    return params, flops


def _div(p: Term, d: Term) -> Term:
    q = p.exact_div(d)
    if q is None:
        raise Infeasible(f"{p} is not a multiple of {d}")
    return q
