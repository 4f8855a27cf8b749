"""Mixing of a complete skeleton, decided exactly where that is provably possible.

The abstract mixing of the enumeration (the paper's composition rule) is neither an upper nor a
lower bound of the real mixing, so it never prunes. Instead, for a complete skeleton whose
mixing cannot depend on the widths Z3 picks, the real program is built and its mixing computed
exactly by the definition (`alphanas.oracle.deps`):

- *Width-insensitive* skeletons: no concat (which input holds the output's centre channel
  depends on the widths), no flatten (the flattened centre's position does), and, when a width
  option can be 1 in some context, no softmax or layer norm (over one element they are
  constant). Otherwise every op reads channels either at the same index (elementwise,
  depthwise, pools) or all of them (dense, conv, attention, layer norm), the spatial and token
  sizes are fixed by the variants, add/mul operands have equal widths (the encoding never
  broadcasts a free width: `abstract._binary` equates them), and the output width is the spec's,
  so the index sets read do not depend on any free width.
- *Kernels are monotone*: with SAME padding, stride s <= 2 and K >= 3, the total padding is
  (m - 1) s + K - n >= K - s > 0, so growing K by 2 grows the low padding by exactly 1 and each
  window by one position on both sides: every op reads a superset, hence (composition of
  monotone maps) the pulled-back index sets grow, and the matrix entries (count and coverage
  classifications) can only grow.

So for a width-insensitive skeleton: if mixing fails with every free kernel at its largest, no
assignment meets it (prune, sound); else the minimal kernel vectors that meet it are found on
the lattice {3, 5, 7}^k, and Z3 gets "kernel vector >= one of them" as exact constraints. Any
other skeleton gets no mixing constraint: each of Z3's models is judged by the re-verification,
and a skeleton abandoned that way makes the search's answer "unknown", never "unsat".
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
LATTICE_CAP = 81  # kernel vectors checked at most per skeleton (3^4)


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
    if not _insensitive(problem, nodes):
        return MixPlan(exact=False)
    widths = {k: _unified_widths(c, nodes) for k, c in ctxs}
    if any(w is None for w in widths.values()):
        return MixPlan(exact=False)  # contradictory width equalities: Z3 says unsat anyway
    free = [i for i, (v, _) in enumerate(nodes) if v.kernel]
    checks = 0

    def meets(vec: Sequence[int]) -> bool:
        nonlocal checks
        checks += 1
        kernels = dict(zip(free, vec, strict=True))
        return all(_meets(c, nodes, widths[k], kernels) for k, c in ctxs)  # type: ignore[arg-type]

    try:
        if not meets([KERNELS[-1]] * len(free)):
            return MixPlan(prune=True, checks=checks)
        if not free or meets([KERNELS[0]] * len(free)):
            return MixPlan(checks=checks)
        if len(KERNELS) ** len(free) > LATTICE_CAP:
            return MixPlan(exact=False, checks=checks)
        minimal = _minimal_vectors(len(free), meets)
    except (AlphanasError, OracleUnsupported):
        return MixPlan(exact=False, checks=checks)
    cons = smt.any_of(smt.all_of(*(smt.ge(wvar("k", i), m) for i, m in zip(free, vec, strict=True)))
                      for vec in minimal)
    return MixPlan(cons=(cons,), checks=checks)


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


def _insensitive(problem: Problem, nodes: Nodes) -> bool:
    if any(v.width in ("sum", "flatten") for v, _ in nodes):
        return False
    if not any(v.kind in _CONSTANT_AT_ONE for v, _ in nodes):
        return True
    refs = [c.ref_channels for c in problem.contexts]
    return all(o.value(r) != 1 for o in width_options(problem) for r in refs)


def _unified_widths(ctx: Context, nodes: Nodes) -> dict[int, int] | None:
    """A width per new-width node satisfying the skeleton's width equalities in `ctx` (add/mul
    operands equal unless one is 1, the output's width the spec's); None if they contradict."""
    parent: dict[Any, Any] = {}

    def find(x: Any) -> Any:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    def union(a: Any, b: Any) -> None:
        parent[find(a)] = find(b)

    sym: list[Any] = [("const", s[-1]) for _, s in ctx.inputs]
    for i, (v, ins) in enumerate(nodes):
        if v.width == "new":
            sym.append(("w", i))
        elif v.width == "unify":
            a, b = (sym[j] for j in ins)
            if a == ("const", 1) or b == ("const", 1):
                sym.append(b if a == ("const", 1) else a)
            else:
                union(a, b)
                sym.append(a)
        else:
            sym.append(sym[ins[0]])
    union(sym[-1], ("const", ctx.out_shape[-1]))
    consts: dict[Any, int] = {}
    for x in [*parent, *sym]:
        if x[0] == "const":
            r = find(x)
            if consts.setdefault(r, x[1]) != x[1]:
                return None
    return {i: consts.get(find(("w", i)), 16) for i, (v, _) in enumerate(nodes) if v.width == "new"}


def _meets(ctx: Context, nodes: Nodes, widths: dict[int, int], kernels: dict[int, int]) -> bool:
    a = Assignment({i: WidthOption(absolute=w) for i, w in widths.items()}, kernels,
                   {i: False for i, (v, _) in enumerate(nodes) if v.bias},
                   {i: 1 for i, (v, _) in enumerate(nodes) if v.heads})
    g = build_program(ctx, nodes, a)
    got = exact_mixing(g)
    for j, want in ctx.mixing:
        have = got[(ctx.inputs[j][0], ctx.output)]
        if any(w > h for wr, hr in zip(want, have, strict=True) for w, h in zip(wr, hr, strict=True)):
            return False
    return True
