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

__all__ = ["Caps", "ShapeBounds", "cost_floor", "final_check", "prune", "quick_unsat", "reason",
           "required_inputs", "unread"]

INF = 10**9
MAX_STEPS = 12  # the synthesizer's largest program (problem.MAX_OPS)
K = OpKind


@dataclass(frozen=True)
class Caps:
    """What the allowed variants can do to a shape: merges and broadcasting, and per-dim and
    rank moves derived from the variants themselves (`ShapeBounds`)."""

    merge: bool        # a binary op exists
    broadcast: bool    # add/mul: a size-1 dim can grow
    bounds: ShapeBounds

    @classmethod
    def of(cls, variants: Sequence[Variant], inputs: Sequence[Shape] = ()) -> Caps:
        """`inputs`: every subject input shape (of every context); broadcasting a size-1 dim to
        size w needs a partner of size w, so w must be reachable from some input."""
        kinds = {v.kind for v in variants}
        broadcast = bool(kinds & {K.ADD, K.MUL})
        return cls(any(v.arity == 2 for v in variants), broadcast,
                   ShapeBounds(tuple(v for v in variants if v.arity == 1), broadcast, tuple(inputs)))


class ShapeBounds:
    """Lower bounds on the ops that turn a tensor's shape into the output's (last dims aside:
    widths are Z3's), derived from what each allowed variant does.

    Every op on a path changes each dim by its own rule, so a path of n ops from shape s to
    shape w projects, dim by dim, onto a path of n steps (identity steps allowed) from s_d to
    w_d, where a step is a unary variant's effect on that dim, a merge that keeps it (concat,
    add/mul with a broadcastable partner), or, with add/mul, a broadcast from 1 to a size w that
    a partner can have: one reachable by such steps from some subject input's dim (any size when
    an input has another rank, whose dims need not correspond).
    The bound is the largest per-dim distance when every op on the path keeps the rank; ranks
    must otherwise be reachable by the variants' rank moves or (add/mul) a broadcasting merge
    with a higher-rank partner (at least one op), and a path that leaves the rank and comes back
    takes at least two. Sizes are probed on the variants' real shape rules (`infer_op`) at every
    kernel size, so ops that collapse a dim in one step (global means, pools) count as such.
    """

    def __init__(self, unary: Sequence[Variant], broadcast: bool, inputs: Sequence[Shape] = ()) -> None:
        self.unary, self.broadcast, self.inputs = tuple(unary), broadcast, tuple(inputs)
        self._steps: dict[tuple[int, int, int], frozenset[int]] = {}
        self._partners: dict[tuple[int, int], frozenset[int] | None] = {}
        self._need: dict[tuple[Shape, Shape], int] = {}

    def need(self, got: Shape, want: Shape) -> int:
        key = (got[:-1] + (len(got),), want[:-1] + (len(want),))
        if key not in self._need:
            self._need[key] = self._compute(got, want)
        return self._need[key]

    def _compute(self, got: Shape, want: Shape) -> int:
        if len(got) != len(want):
            return 1 if len(want) in self._ranks_from(len(got)) else INF
        r = len(got)
        dims = [self._dim_distance(r, d, n, w) for d, (n, w) in enumerate(zip(got[:-1], want[:-1], strict=True))]
        per_dim = max(dims, default=0)
        # Down a rank and back up by a broadcasting merge takes >= 2 ops, and each dim of the
        # result is then reachable from the tensor's own or comes from the partner.
        cycle = self.broadcast and any(y < r for y in self._ranks_from(r)) and all(
            k < INF or self._partner_can_be(r, d, w) for d, (k, w) in enumerate(zip(dims, want[:-1], strict=True)))
        return min(per_dim, 2) if cycle else per_dim

    def _ranks_from(self, r: int) -> set[int]:
        """The ranks reachable from rank r: unary rank moves, and with add/mul a broadcasting
        merge with a partner of higher rank (right-aligned)."""
        seen, todo = {r}, [r]
        while todo:
            x = todo.pop()
            ys = {y for v in self.unary for y in _ranks_after(v, x)}
            if self.broadcast:
                ys |= set(range(x + 1, 5))
            for y in ys - seen:
                seen.add(y)
                todo.append(y)
        return seen

    def _dim_distance(self, rank: int, d: int, n: int, w: int) -> int:
        """BFS over the sizes of dim d (rank-preserving steps only), at most MAX_OPS deep."""
        frontier, seen = {n}, {n}
        for steps in range(MAX_STEPS + 1):
            if w in frontier:
                return steps
            nxt: set[int] = set()
            for x in frontier:
                nxt |= self._moves(rank, d, x)
                if x == 1 and self.broadcast and self._partner_can_be(rank, d, w):
                    nxt.add(w)
            frontier = nxt - seen
            seen |= frontier
            if not frontier:
                break
        return INF

    def _partner_can_be(self, rank: int, d: int, w: int) -> bool:
        key = (rank, d)
        if key not in self._partners:
            sources = {s[d] for s in self.inputs if d == 0 or len(s) == rank}
            other_rank = d != 0 and any(len(s) != rank for s in self.inputs)
            self._partners[key] = None if other_rank or not self.inputs else self._closure(rank, d, sources)
        reach = self._partners[key]
        return reach is None or w in reach

    def _closure(self, rank: int, d: int, sources: set[int]) -> frozenset[int]:
        seen, frontier = set(sources), set(sources)
        for _ in range(MAX_STEPS):
            frontier = {y for x in frontier for y in self._moves(rank, d, x)} - seen
            seen |= frontier
        return frozenset(seen)

    def _moves(self, rank: int, d: int, n: int) -> frozenset[int]:
        key = (rank, d, n)
        if key not in self._steps:
            shape = tuple(n if i == d else (2 if i == 0 else n) for i in range(rank - 1)) + (16,)
            outs = [o for v in self.unary for o in _probe(v, shape)]
            self._steps[key] = frozenset(o[d] for o in outs if len(o) == rank)
        return self._steps[key]


def _ranks_after(v: Variant, r: int) -> set[int]:
    return {len(o) for o in _probe(v, (2,) + (8,) * (r - 2) + (16,))} if r >= 2 else set()


def _probe(v: Variant, shape: Shape) -> list[Shape]:
    """The variant's output shapes on `shape` by the IR's rule, at every kernel size (none when
    it does not apply)."""
    from alphanas.errors import AlphanasError
    from alphanas.ir.analysis import infer_op
    from alphanas.ir.graph import make_op

    if len(shape) not in v.ranks:
        return []
    out = []
    for k in (KERNELS if v.kernel else (None,)):
        attrs: dict[str, Any] = dict(v.attrs)
        if v.width == "new":
            attrs["features"] = 16
        if k is not None:
            attrs["kernel"] = (k,) * (len(shape) - 2)
        if v.heads:
            attrs["num_heads"] = 1
        try:
            out.append(tuple(infer_op(make_op("probe", v.kind, ("x",), **attrs), (shape,),
                                      {"x": shape}).shape))
        except AlphanasError:
            pass
    return out


def cost_floor(problem: Problem, k: int) -> dict[str, int]:
    """Every choice variable at its cheapest value in context k (costs are monotone in them)."""
    ref = problem.contexts[k].ref_channels
    w = min(v for o in width_options(problem) if (v := o.value(ref)) is not None)
    lo: dict[str, int] = {}
    for i in range(problem.max_ops):
        lo[f"w{i}@{k}"], lo[f"k{i}"], lo[f"b{i}"], lo[f"h{i}"] = w, KERNELS[0], 0, 1
    return lo


def required_inputs(problem: Problem) -> frozenset[int]:
    """The subject inputs a program must read: those with a depth bound (a bound needs a path)
    or a non-NONE mixing lower bound in some context. Every other input may be ignored, as the
    spec (and `verify`) allow."""
    need: set[int] = set()
    for ctx in problem.contexts:
        need |= {i for i, _ in ctx.depth}
        need |= {i for i, m in ctx.mixing if any(v for row in m for v in row)}
    return frozenset(need)


def unread(s: Any) -> list[int]:
    """Tensors still to be read: op outputs, and the inputs the spec needs."""
    n = s.p.n_inputs
    return [j for j, u in enumerate(s.uses) if u == 0 and (j >= n or j in s.required)]


def prune(s: Any, r: int) -> str:
    """The first rule that rules out every completion of `s` in `r` more ops, or ''."""
    todo = unread(s)
    if len(todo) - 1 > r or (len(todo) > 1 and not s.caps.merge):
        return "dangling"
    for k, ctx in enumerate(s.p.contexts):
        if max(s.caps.bounds.need(s.vals[j][k].shape, ctx.out_shape) for j in todo) > r:
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
    """Why the complete skeleton fails on shape or depth (exact in the abstract: shapes are
    fixed by the variants up to the output width, depth by the op classes), or ''. Mixing is
    decided by `alphanas.synth.mixcheck`."""
    n = s.p.n_inputs
    if any(u == 0 for u in s.uses[n:-1]) or s.uses[-1] or any(s.uses[j] == 0 for j in s.required):
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
    return ""


def quick_unsat(problem: Problem, variants: Sequence[Variant], caps: Caps) -> str:
    """A reason the spec is unreachable within the bounds, found without enumerating, or ''.
    The host and depth reasons hold for every op kind; the shape reason for the menu's (callers
    treat it as a certificate only when the specs allow no op the synthesizer cannot place)."""
    n = problem.max_ops
    for k, ctx in enumerate(problem.contexts):
        kept = _host_shape(ctx)
        if kept is not None and kept != ctx.out_shape:
            return (f"host: context {k} replaces '{ctx.selection.outputs[0]}' of "  # type: ignore[union-attr]
                    f"'{ctx.host.name}', whose shape {kept} a replacement must keep, but the spec's "  # type: ignore[union-attr]
                    f"output is {ctx.out_shape}")
        for i, b in ctx.depth:
            if b.lo > n:
                return (f"depth: {ctx.inputs[i][0]}->{ctx.output} must be {b} but each op adds at most one "
                        f"linear/non-linear switch, so {n} ops (max_ops) reach at most {n}")
        need = min(caps.bounds.need(shape, ctx.out_shape) for _, shape in ctx.inputs)
        if need > n:
            shapes = " or ".join(str(shape) for _, shape in ctx.inputs)
            what = "no allowed op can make it" if need >= INF else f"that takes at least {need} ops"
            return (f"shape: the output {ctx.out_shape} cannot come from the input {shapes}: {what} "
                    f"(allowed ops: {', '.join(sorted({v.kind.value for v in variants}))}; "
                    f"max_ops {n})")
    return ""


def _host_shape(ctx: Any) -> Shape | None:
    """The shape of the host tensor the context's program replaces (None without a host)."""
    if ctx.host is None or ctx.selection is None or len(ctx.selection.outputs) != 1:
        return None
    from alphanas.ir.analysis import analyze

    return tuple(analyze(ctx.host).shapes[ctx.selection.outputs[0]])


def reason(problem: Problem, stats: Stats) -> str:
    """The unsat certificate's reason: what failed, over all candidates within the bounds."""
    ops = ", ".join(sorted(k.value for k in problem.ops))
    failed = stats.pruned + stats.failed
    failed.pop("ill-formed", None)
    failed.pop("duplicate-op", None)
    top = ", ".join(f"{rule} ({n:,})" for rule, n in failed.most_common(4)) or "nothing applies"
    return (f"no program of <= {problem.max_ops} ops from {{{ops}}} (the synthesizer's variants: "
            f"SAME convs 1x1 / KxK / depthwise with K in 3, 5, 7 and strides 1, 2, the menu's pool "
            f"windows and means; widths from {len(width_options(problem))} options) meets the spec; "
            f"candidates failed on: {top}")
