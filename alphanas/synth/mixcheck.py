"""Mixing of a complete skeleton, decided exactly where that is provably possible.

The abstract mixing of the enumeration (the paper's composition rule) is neither an upper nor a
lower bound of the real mixing, so it never prunes. Instead, for a complete skeleton whose
mixing cannot depend on the widths Z3 picks, the real program is built and its mixing computed
exactly by the definition (`alphanas.oracle.deps`):

- *Widths*: every op reads channels either at the same index (elementwise, depthwise, pools,
  add/mul, whose operands the encoding keeps equal: `abstract._binary` never broadcasts a free
  width) or all of them (dense, conv, attention, layer norm); spatial and token sizes are fixed
  by the variants, and the output width is the spec's. So the index sets read depend on a free
  width only where a concat (which operand holds the centre channel, at which offset) or a
  flatten (where the flattened centre lies) reads it, or where a width of 1 makes softmax or
  layer norm constant. The widths feeding concats and flattens (*relevant* classes of the
  width equalities) are enumerated over the width options; every other width is irrelevant
  (any value gives the same mixing). Skeletons where a summed or flattened width is itself
  equated or concatenated again, or softmax/layer norm with a width option of 1, are not
  modelled.
- *Kernels are monotone*: with SAME padding, stride s <= 2 and K >= 3, the total padding is
  (m - 1) s + K - n >= K - s > 0, so growing K by 2 grows the low padding by exactly 1 and each
  window by one position on both sides: every op reads a superset, hence (composition of
  monotone maps) the pulled-back index sets grow, and the matrix entries (count and coverage
  classifications) can only grow.

So for a modelled skeleton and each choice of relevant widths: if mixing fails with every free
kernel at its largest, no assignment with those widths meets it; else the minimal kernel
vectors that meet it are found on the lattice {3, 5, 7}^k. Z3 gets the exact disjunction over
the passing width choices of "these widths and kernel vector >= one of its minimal vectors";
with no passing choice the skeleton is pruned (sound). Any other skeleton (or one with more
cases than CHECK_CAP programs) gets no mixing constraint: each of Z3's models is judged by the
re-verification, and a skeleton abandoned that way makes the search's answer "unknown", never
"unsat".
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alphanas.errors import AlphanasError
from alphanas.ir.attrs import OpKind
from alphanas.oracle.deps import OracleUnsupported, exact_mixing
from alphanas.properties import smt
from alphanas.properties.smt import Constraint
from alphanas.synth.abstract import wvar
from alphanas.synth.build import build_program
from alphanas.synth.menu import KERNELS, Variant
from alphanas.synth.problem import Context, Problem
from alphanas.synth.solve import Assignment, WidthOption, width_options

__all__ = ["MixPlan", "plan_mixing"]

Nodes = Sequence[tuple[Variant, tuple[int, ...]]]
_CONSTANT_AT_ONE = frozenset({OpKind.SOFTMAX, OpKind.LAYER_NORM})  # over a width-1 axis: constant
LATTICE_CAP = 81  # kernel vectors checked at most per width case (3^4)
CHECK_CAP = 400   # programs evaluated at most per skeleton
COMBO_CAP = 1024  # choices of the relevant widths enumerated at most


@dataclass(frozen=True)
class MixPlan:
    """`prune`: no assignment meets the mixing targets (proved); `cons`: exact kernel
    constraints for Z3; `exact`: the constraints capture mixing completely (else each model
    must be judged and abandoning the skeleton is not a proof); `checks`: programs evaluated."""

    prune: bool = False
    cons: tuple[Constraint, ...] = ()
    exact: bool = True
    checks: int = 0


def plan_mixing(problem: Problem, nodes: Nodes) -> MixPlan:
    """The mixing plan of a complete skeleton (see the module docstring)."""
    ctxs = [(k, c) for k, c in enumerate(problem.contexts) if c.mixing]
    if not ctxs:
        return MixPlan()
    if _constant_at_one(problem, nodes):
        return MixPlan(exact=False)
    parts = [_unify(c, nodes) for _, c in ctxs]
    if any(p is None for p in parts) or len({p.key for p in parts if p is not None}) > 1:
        return MixPlan(exact=False)  # contradictory equalities (Z3 says unsat) or contexts differ
    relevant = parts[0].relevant  # type: ignore[union-attr]
    if relevant is None:
        return MixPlan(exact=False)
    opts = width_options(problem)
    free = [i for i, (v, _) in enumerate(nodes) if v.kernel]
    combos = list(itertools.product(range(len(opts)), repeat=len(relevant)))
    if len(combos) > COMBO_CAP:
        return MixPlan(exact=False)
    checks, cases, fitted = 0, [], 0
    try:
        for combo in combos:
            widths = {k: p.widths(c, dict(zip(relevant, (opts[j] for j in combo), strict=True)))  # type: ignore[union-attr]
                      for (k, c), p in zip(ctxs, parts, strict=True)}
            if any(w is None for w in widths.values()):
                continue  # an option not whole in some context: Z3 cannot pick it either
            case, n = _kernel_case(ctxs, nodes, widths, free)  # type: ignore[arg-type]
            fitted += n > 0
            checks += n
            if checks > CHECK_CAP:
                return MixPlan(exact=False, checks=checks)
            if case is None:
                continue
            if case is ... and not relevant:
                return MixPlan(checks=checks)
            pick = [smt.eq(wvar("s", i), j) for i, j in zip(relevant, combo, strict=True)]
            cases.append(smt.all_of(*pick, *(() if case is ... else (case,))))
    except (AlphanasError, OracleUnsupported):
        return MixPlan(exact=False, checks=checks)
    if not cases:  # pruned only when some widths fit the output and none of them meets mixing
        return MixPlan(prune=fitted > 0, exact=fitted > 0, checks=checks)
    return MixPlan(cons=(smt.any_of(cases),), checks=checks)


def _kernel_case(ctxs: Sequence[tuple[int, Context]], nodes: Nodes, widths: dict[int, dict[int, int]],
                 free: Sequence[int]) -> tuple[Any, int]:
    """(None: no kernel vector meets the targets at these widths | ...: every vector does | a
    constraint "kernels >= one of the minimal vectors", the programs evaluated)."""
    checks = 0

    def meets(vec: Sequence[int]) -> bool:
        nonlocal checks
        checks += 1
        kernels = dict(zip(free, vec, strict=True))
        return all(_meets(c, nodes, widths[k], kernels) for k, c in ctxs)

    if not all(_fits(c, nodes, widths[k]) for k, c in ctxs):
        return None, checks  # these widths miss the output width: Z3 cannot pick them either
    if not meets([KERNELS[-1]] * len(free)):
        return None, checks
    if not free or meets([KERNELS[0]] * len(free)):
        return ..., checks
    if len(KERNELS) ** len(free) > LATTICE_CAP:
        raise OracleUnsupported("too many kernel vectors to decide mixing exactly")
    minimal = _minimal_vectors(len(free), meets)
    return smt.any_of(smt.all_of(*(smt.ge(wvar("k", i), m) for i, m in zip(free, vec, strict=True)))
                      for vec in minimal), checks


def _minimal_vectors(n: int, meets: Any) -> list[tuple[int, ...]]:
    """The minimal kernel vectors meeting the targets, in increasing order of total size (an
    up-set: every vector above a minimal one meets them too)."""
    found: list[tuple[int, ...]] = []
    for vec in sorted(itertools.product(KERNELS, repeat=n), key=lambda v: (sum(v), v)):
        if any(all(a >= b for a, b in zip(vec, m, strict=True)) for m in found):
            continue
        if meets(vec):
            found.append(vec)
    return found


def _constant_at_one(problem: Problem, nodes: Nodes) -> bool:
    """Softmax or layer norm in the skeleton while some width option is 1 (constant there)."""
    if not any(v.kind in _CONSTANT_AT_ONE for v, _ in nodes):
        return False
    refs = [c.ref_channels for c in problem.contexts]
    return any(o.value(r) == 1 for o in width_options(problem) for r in refs)


@dataclass(frozen=True)
class _Classes:
    """The skeleton's width equalities in one context: each new-width node's class root, the
    classes' constants, and the free classes whose width the mixing depends on (`relevant`:
    one representative node per class that feeds a concat or a flatten; None when a concat's
    summed width is itself equated or fed on, which this plan does not model)."""

    root: dict[int, Any]
    consts: dict[Any, int]
    relevant: tuple[int, ...] | None
    key: tuple

    def widths(self, ctx: Context, picked: dict[int, WidthOption]) -> dict[int, int] | None:
        """A width per new-width node: its class's constant, the picked option's value for a
        relevant class, else any width (16: nothing else depends on it)."""
        ref = ctx.ref_channels
        by_root = {self.root[i]: o.value(ref) for i, o in picked.items()}
        if any(v is None for v in by_root.values()):
            return None
        return {i: self.consts.get(r, by_root.get(r, 16)) for i, r in self.root.items()}  # type: ignore[misc]


def _unify(ctx: Context, nodes: Nodes) -> _Classes | None:
    """The width classes of the skeleton in `ctx` (add/mul operands equal unless one is 1, the
    output's width the spec's); None if two different constants are equated."""
    parent: dict[Any, Any] = {}

    def find(x: Any) -> Any:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    def union(a: Any, b: Any) -> None:
        parent[find(a)] = find(b)

    sym: list[Any] = [("const", s[-1]) for _, s in ctx.inputs]
    fed: list[Any] = []      # symbols whose width the mixing depends on
    modelled = True
    for i, (v, ins) in enumerate(nodes):
        if v.width == "new":
            sym.append(("w", i))
        elif v.width == "unify":
            a, b = (sym[j] for j in ins)
            modelled &= a[0] not in ("sum", "flat") and b[0] not in ("sum", "flat")
            if a == ("const", 1) or b == ("const", 1):
                sym.append(b if a == ("const", 1) else a)
            else:
                union(a, b)
                sym.append(a)
        elif v.width == "sum":
            fed += [sym[j] for j in ins]
            sym.append(("sum", i))
        elif v.width == "flatten":
            fed.append(sym[ins[0]])
            sym.append(("flat", i))
        else:
            sym.append(sym[ins[0]])
    modelled &= all(x[0] not in ("sum", "flat") for x in fed)
    out = sym[-1]
    if out[0] in ("w", "const"):
        union(out, ("const", ctx.out_shape[-1]))
    consts: dict[Any, int] = {}
    for x in {*parent, *parent.values(), *sym}:
        if x[0] == "const" and consts.setdefault(find(x), x[1]) != x[1]:
            return None
    root = {i: find(("w", i)) for i, (v, _) in enumerate(nodes) if v.width == "new"}
    rep: dict[Any, int] = {}
    for x in fed:
        r = find(x)
        if x[0] == "w" and r not in consts:
            rep.setdefault(r, min(i for i, q in root.items() if q == r))
    relevant = tuple(sorted(rep.values())) if modelled else None
    groups: dict[Any, list[int]] = {}
    for i, r in root.items():
        groups.setdefault(r, []).append(i)
    key = (tuple(sorted((tuple(ids), r in consts) for r, ids in groups.items())), relevant)
    return _Classes(root, consts, relevant, key)


def _fits(ctx: Context, nodes: Nodes, widths: dict[int, int]) -> bool:
    """Whether these widths give the spec's output shape (the encoding requires it)."""
    from alphanas.ir.analysis import analyze

    g = _program(ctx, nodes, widths, {i: KERNELS[0] for i, (v, _) in enumerate(nodes) if v.kernel})
    return analyze(g).output_shapes == (tuple(ctx.out_shape),)


def _program(ctx: Context, nodes: Nodes, widths: dict[int, int], kernels: dict[int, int]) -> Any:
    a = Assignment({i: WidthOption(absolute=w) for i, w in widths.items()}, kernels,
                   {i: False for i, (v, _) in enumerate(nodes) if v.bias},
                   {i: 1 for i, (v, _) in enumerate(nodes) if v.heads})
    return build_program(ctx, nodes, a)


def _meets(ctx: Context, nodes: Nodes, widths: dict[int, int], kernels: dict[int, int]) -> bool:
    g = _program(ctx, nodes, widths, kernels)
    got = exact_mixing(g)
    for j, want in ctx.mixing:
        have = got[(ctx.inputs[j][0], ctx.output)]
        if any(w > h for wr, hr in zip(want, have, strict=True) for w, h in zip(wr, hr, strict=True)):
            return False
    return True
