"""Pruning rules, the abstract check of complete skeletons, and unsat reasons.

Every rule here is a *necessary* condition for a completion to exist (see
`alphanas.synth.search` for the list and why each is sound); `quick_unsat` applies them to the
empty program, so an impossible spec (depth beyond max_ops, an output larger than the input
with no upsampling, a rank that no allowed op can make) is refused before any enumeration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alphanas.ir.attrs import OpKind, Shape
from alphanas.synth.abstract import TVal
from alphanas.synth.menu import KERNELS, Variant
from alphanas.synth.problem import Problem
from alphanas.synth.solve import width_options

if TYPE_CHECKING:
    from alphanas.synth.search import Stats

__all__ = ["Caps", "cost_floor", "final_check", "prune", "quick_unsat", "reason"]

INF = 10**9
K = OpKind


@dataclass(frozen=True)
class Caps:
    """What the allowed variants can do to a shape at all."""

    merge: bool        # a binary op exists
    broadcast: bool    # add/mul: a size-1 dim can grow
    shrink: bool       # a strided conv/pool exists (rank 4)
    grow: bool         # upsample exists
    drop_rank: bool    # flatten/mean exist

    @classmethod
    def of(cls, variants: Sequence[Variant]) -> Caps:
        keys = {v.key for v in variants}
        kinds = {v.kind for v in variants}
        return cls(any(v.arity == 2 for v in variants), bool(kinds & {K.ADD, K.MUL}),
                   any(k.endswith("/s2") or k in ("avg_pool2", "max_pool2") for k in keys),
                   K.RESIZE in kinds, bool(kinds & {K.FLATTEN, K.MEAN}))


def shape_need(got: Shape, want: Shape, caps: Caps) -> int:
    """A lower bound on the ops that turn a tensor of shape `got` into one of `want` (last dims
    aside: widths are Z3's)."""
    if len(got) != len(want):
        return 1 if len(got) > len(want) and caps.drop_rank else INF
    if got[0] != want[0]:
        return INF
    need = 0
    for d, w in zip(got[1:-1], want[1:-1], strict=True):
        if d == w:
            continue
        if d == 1 and caps.broadcast:
            need = max(need, 1)
        elif d > w and caps.shrink and len(got) == 4:
            n = 0
            while d > w:
                d, n = d // 2, n + 1
            need = max(need, n)
        elif d < w and caps.grow and len(got) == 4:
            n = 0
            while d < w:
                d, n = d * 2, n + 1
            need = max(need, n)
        else:
            return INF
    return need


def cost_floor(problem: Problem, k: int) -> dict[str, int]:
    """Every choice variable at its cheapest value in context k (costs are monotone in them)."""
    ref = problem.contexts[k].ref_channels
    w = min(v for o in width_options(problem) if (v := o.value(ref)) is not None)
    lo: dict[str, int] = {}
    for i in range(problem.max_ops):
        lo[f"w{i}@{k}"], lo[f"k{i}"], lo[f"b{i}"], lo[f"h{i}"] = w, KERNELS[0], 0, 1
    return lo


def prune(s: Any, r: int) -> str:
    """The first rule that rules out every completion of `s` in `r` more ops, or ''."""
    unread = [j for j, u in enumerate(s.uses) if u == 0]
    if len(unread) - 1 > r or (len(unread) > 1 and not s.caps.merge):
        return "dangling"
    for k, ctx in enumerate(s.p.contexts):
        if max(shape_need(s.vals[j][k].shape, ctx.out_shape, s.caps) for j in unread) > r:
            return "shape"
        for i, b in ctx.depth:
            best = max(v[k].depth_of(i) for v in s.vals)
            if best + r < b.lo or (b.hi is not None and best > b.hi):
                return "depth"
        for (key, bound), got in zip(_cost_budgets(ctx.budgets), s.cost_lb[-1][k], strict=False):
            if key and got > bound:
                return "budget"
    return ""


def _cost_budgets(budgets: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    d = dict(budgets)
    return [("params" if "params" in d else "", d.get("params", 0)),
            ("flops" if "flops" in d else "", d.get("flops", 0))]


def final_check(s: Any) -> str:
    """Why the complete skeleton fails in the abstract (shape, depth, mixing), or ''. Sets
    `s.big_kernels` when mixing holds only with the free kernels at their largest."""
    if any(u == 0 for u in s.uses[:-1]) or s.uses[-1]:
        return "dangling"
    for k, ctx in enumerate(s.p.contexts):
        out: TVal = s.vals[-1][k]
        if out.shape[:-1] != ctx.out_shape[:-1] or len(out.shape) != len(ctx.out_shape):
            return "shape"
        if out.last.is_const and out.last.value != ctx.out_shape[-1]:
            return "shape"
        for i, b in ctx.depth:
            if b.gap(out.depth_of(i)) > 0 or out.depth_of(i) < 0:
                return "depth"
        if not all(_covers(out.mix[i], want) for i, want in ctx.mixing):
            return "mixing"
    s.big_kernels = not all(_covers(s.vals[-1][k].mix_lo[i], want)
                            for k, ctx in enumerate(s.p.contexts) for i, want in ctx.mixing)
    return ""


def _covers(got: Any, want: Any) -> bool:
    """Mixing matrix `got` (None = no path) is at least `want` entry by entry."""
    return not any(w and (got is None or g < w) for row, grow in zip(want, got or want, strict=True)
                   for w, g in zip(row, grow, strict=True))


def quick_unsat(problem: Problem, variants: Sequence[Variant], caps: Caps) -> str:
    """A reason the spec is unreachable within the bounds, found without enumerating, or ''."""
    n = problem.max_ops
    for ctx in problem.contexts:
        for i, b in ctx.depth:
            if b.lo > n:
                return (f"depth: {ctx.inputs[i][0]}->{ctx.output} must be {b} but each op adds at most one "
                        f"linear/non-linear switch, so {n} ops (max_ops) reach at most {n}")
        for _, shape in ctx.inputs:
            need = shape_need(shape, ctx.out_shape, caps)
            if need > n and len(ctx.inputs) == 1:
                what = "no allowed op can make it" if need >= INF else f"that takes at least {need} ops"
                return (f"shape: the output {ctx.out_shape} cannot come from the input {shape}: {what} "
                        f"(allowed ops: {', '.join(sorted({v.kind.value for v in variants}))}; "
                        f"max_ops {n})")
    return ""


def reason(problem: Problem, stats: Stats) -> str:
    """The unsat certificate's reason: what failed, over all candidates within the bounds."""
    ops = ", ".join(sorted(k.value for k in problem.ops))
    failed = stats.pruned + stats.failed
    failed.pop("ill-formed", None)
    failed.pop("duplicate-op", None)
    top = ", ".join(f"{rule} ({n:,})" for rule, n in failed.most_common(4)) or "nothing applies"
    return (f"no program of <= {problem.max_ops} ops from {{{ops}}} (widths from "
            f"{len(width_options(problem))} options) meets the spec; candidates failed on: {top}")
