"""Z3 picks the numeric attributes of one skeleton, jointly over every context.

Each op that makes a new width chooses one *option* `s_i` (shared by all contexts): a multiple
of the first input's channels (x1/4 .. x6, or the target's ratio) or an absolute width. In
context k its width is `w_i@k`, tied to the option by `s_i = j -> w_i@k = value_j,k` (options
that are not whole in some context are not allowed). Kernel sizes K in {3, 5, 7}, use_bias in
{0, 1} and attention heads are choices too. The shape equalities (add/mul widths, the output
width) and the budgets are then linear in the widths except for products of two choices
(`cin * cout` of a conv); each product is replaced by a fresh variable with one implication per
value of its first factor ("Boolean cases"), so every formula stays in linear integer
arithmetic over bounded variables, as DESIGN §5 asks. `minimize` tightens the objective with
assumption literals until UNSAT (the last model is then optimal) or the check bound is hit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from alphanas.ir.attrs import Size
from alphanas.properties import smt
from alphanas.properties.smt import CheckResult, Constraint, SmtSettings, Status, Term
from alphanas.synth.abstract import Step, wvar
from alphanas.synth.menu import HEADS, KERNELS, Variant
from alphanas.synth.problem import Context, Problem

__all__ = ["Assignment", "SkeletonSolver", "WidthOption", "peak_terms", "width_options"]

_RATIOS = (Fraction(1, 4), Fraction(1, 2), Fraction(1), Fraction(2), Fraction(3), Fraction(4), Fraction(6))
_ABSOLUTE = (8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class WidthOption:
    """A width: `ratio` x the first input's channels, or `absolute`."""

    ratio: Fraction | None = None
    absolute: int | None = None

    def value(self, ref: int) -> int | None:
        if self.absolute is not None:
            return self.absolute
        v = self.ratio * ref  # type: ignore[operator]
        return int(v) if v.denominator == 1 and v >= 1 else None

    def attr(self, ref_tensor: str) -> int | Size:
        if self.absolute is not None:
            return self.absolute
        assert self.ratio is not None
        return Size(-1, self.ratio.numerator, self.ratio.denominator, ref_tensor)

    def __str__(self) -> str:
        return str(self.absolute) if self.absolute is not None else f"{self.ratio} x in"


def width_options(problem: Problem) -> tuple[WidthOption, ...]:
    """Relative options first (they make templates), then absolute ones; one per distinct
    tuple of per-context values."""
    refs = [c.ref_channels for c in problem.contexts]
    outs = [c.out_shape[-1] for c in problem.contexts]
    cands = [WidthOption(r) for r in _RATIOS]
    target = {Fraction(o, r) for o, r in zip(outs, refs, strict=True)}
    cands += [WidthOption(t) for t in sorted(target) if len(target) == 1]
    cands += [WidthOption(absolute=a) for a in (*sorted(set(outs)), *_ABSOLUTE)]
    seen, out = set(), []
    for o in cands:
        vals = tuple(o.value(r) for r in refs)
        if None not in vals and vals not in seen:
            seen.add(vals)
            out.append(o)
    return tuple(out)


@dataclass(frozen=True)
class Assignment:
    """Z3's choices for a skeleton: per op index, the width option / kernel / bias / heads."""

    widths: dict[int, WidthOption]
    kernels: dict[int, int]
    bias: dict[int, bool]
    heads: dict[int, int]
    cost: int | None = None


class _Lin:
    """Linearizes polynomial terms over finite-domain variables (see the module docstring)."""

    def __init__(self, solver: smt.Solver, domains: dict[str, tuple[int, ...]]) -> None:
        self.solver, self.domains, self.cache = solver, domains, {}

    def __call__(self, t: Term) -> Term:
        out = Term()
        for mono, c in t.coeffs:
            out = out + (Term.const(c) if not mono else self._prod(mono) * c)
        return out

    def _prod(self, mono: tuple[str, ...]) -> Term:
        if len(mono) == 1:
            return smt.var(mono[0])
        if mono not in self.cache:
            x, rest = mono[0], self._prod(mono[1:])
            p = smt.var("p!" + "*".join(mono))
            self.solver.add(*(smt.implies(smt.eq(smt.var(x), v), smt.eq(p, rest * v))
                              for v in self.domains[x]))
            self.cache[mono] = p
        return self.cache[mono]


class SkeletonSolver:
    """Z3 over the attributes of one complete skeleton: `next()` gives a model (or None), and
    `block(a)` excludes a model that failed re-verification before asking again, on the same
    solver (incremental: the encoding is built once per skeleton).

    `steps[i][k]` is node i in context k; the last node is the output. `bound` caps the
    objective; `extra` adds constraints (the exact kernel/width constraints of the mixing
    targets); `deadline` (a `time.perf_counter()` instant) caps each check's wall clock below
    the settings' so that the whole call ends by then."""

    def __init__(self, problem: Problem, nodes: Sequence[tuple[Variant, tuple[int, ...]]],
                 steps: Sequence[Sequence[Step]], bound: int | None = None,
                 extra: Sequence[Constraint] = (), context: Any = None,
                 deadline: float | None = None) -> None:
        s = problem.settings
        self.minimize = s.minimize
        self.nodes, self.opts = nodes, width_options(problem)
        self.solver = solver = smt.Solver(SmtSettings(s.rlimit, s.check_timeout_ms), context)
        self.limit = _Limit(s.check_timeout_ms, deadline)
        lin = _Lin(solver, _choices(problem, nodes, self.opts, solver))
        self.objective = Term()
        for k, ctx in enumerate(problem.contexts):
            solver.add(*(c for st in steps for c in st[k].cons))
            solver.add(smt.eq(steps[-1][k].val.last, ctx.out_shape[-1]))
            params = lin(sum((st[k].params for st in steps), Term()))
            flops = lin(sum((st[k].flops for st in steps), Term()))
            for key, b in ctx.budgets:
                if key in ("params", "flops"):
                    solver.add(smt.le(params if key == "params" else flops, b))
                elif key == "peak":
                    solver.add(*(smt.le(t, b) for t in peak_terms(ctx, nodes, [st[k] for st in steps])))
            if s.minimize is not None:
                self.objective = self.objective + (params if s.minimize == "params" else flops)
        solver.add(*extra)
        if bound is not None:
            solver.add(smt.le(self.objective, bound))

    @property
    def stats(self) -> smt.SmtStats:
        return self.solver.stats

    def block(self, a: Assignment) -> None:
        self.solver.add(_block(a, self.opts))

    def next(self) -> tuple[CheckResult, Assignment | None]:
        res = self.solver.check(timeout_ms=self.limit())
        if not res.sat:
            return res, None
        best = _read(self.solver, self.nodes, self.opts)
        if self.minimize is not None:
            res, best = _minimize(self.solver, self.objective, best, self.nodes, self.opts, self.limit)
        return res, best


class _Limit:
    """The wall-clock limit of the next check: the settings' per-check limit, or less when the
    call's deadline is nearer (at least 1 ms: Z3 reads 0 as no limit)."""

    def __init__(self, per_check_ms: int, deadline: float | None) -> None:
        self.per_check_ms, self.deadline = per_check_ms, deadline

    def __call__(self) -> int:
        if self.deadline is None:
            return self.per_check_ms
        left = int(1000 * (self.deadline - time.perf_counter()))
        return max(1, min(self.per_check_ms, left))


def peak_terms(ctx: Context, nodes: Sequence[tuple[Variant, tuple[int, ...]]],
               steps: Sequence[Step]) -> list[Term]:
    """The live elements before the first op and at each op (the peak-activation definition of
    `alphanas.properties.resources`), linear in the widths: a tensor's size is its fixed
    leading dims times its width term."""
    n = len(ctx.inputs)
    sizes = [Term.const(math.prod(shape)) for _, shape in ctx.inputs]
    sizes += [st.val.last * math.prod(st.val.shape[:-1]) for st in steps]
    last_read = {j: i for i, (_, ins) in enumerate(nodes) for j in ins}
    last_read[n + len(nodes) - 1] = len(nodes)  # the output stays live
    out = [sum(sizes[:n], Term())]
    for i in range(len(nodes)):
        live = [sizes[t] for t in range(n + i) if last_read.get(t, -1) >= i]
        out.append(sum(live, Term()) + sizes[n + i])
    return out


def _choices(problem: Problem, nodes: Sequence[tuple[Variant, tuple[int, ...]]],
             opts: Sequence[WidthOption], solver: smt.Solver) -> dict[str, tuple[int, ...]]:
    domains: dict[str, tuple[int, ...]] = {}
    refs = [c.ref_channels for c in problem.contexts]
    for i, (v, _) in enumerate(nodes):
        if v.width == "new":
            sel = wvar("s", i)
            solver.add(smt.any_of(smt.eq(sel, j) for j in range(len(opts))))
            for k, ref in enumerate(refs):
                vals = [o.value(ref) for o in opts]
                solver.add(*(smt.implies(smt.eq(sel, j), smt.eq(wvar("w", i, k), val))
                             for j, val in enumerate(vals)))
                domains[f"w{i}@{k}"] = tuple(sorted(set(vals)))  # type: ignore[arg-type]
        for flag, name, dom in ((v.kernel, "k", KERNELS), (v.bias, "b", (0, 1)), (v.heads, "h", HEADS)):
            if flag:
                solver.add(smt.any_of(smt.eq(wvar(name, i), d) for d in dom))
                domains[f"{name}{i}"] = dom
    return domains


def _read(solver: smt.Solver, nodes: Sequence[tuple[Variant, tuple[int, ...]]],
          opts: Sequence[WidthOption]) -> Assignment:
    widths, kernels, bias, heads = {}, {}, {}, {}
    for i, (v, _) in enumerate(nodes):
        if v.width == "new":
            widths[i] = opts[solver.value(wvar("s", i))]
        if v.kernel:
            kernels[i] = solver.value(wvar("k", i))
        if v.bias:
            bias[i] = bool(solver.value(wvar("b", i)))
        if v.heads:
            heads[i] = solver.value(wvar("h", i))
    return Assignment(widths, kernels, bias, heads)


def _minimize(solver: smt.Solver, objective: Term, best: Assignment,
              nodes: Sequence[tuple[Variant, tuple[int, ...]]],
              opts: Sequence[WidthOption], limit: _Limit) -> tuple[CheckResult, Assignment]:
    cost = solver.value(objective)
    best = Assignment(best.widths, best.kernels, best.bias, best.heads, cost)
    while True:
        lit = solver.track(smt.le(objective, cost - 1))
        r = solver.check([lit], timeout_ms=limit())
        if not r.sat:
            status = Status.SAT if r.unsat else Status.UNKNOWN
            return CheckResult(status, "optimal" if r.unsat else f"best so far ({r.reason})", r.time_s), best
        cost = solver.value(objective)
        a = _read(solver, nodes, opts)
        best = Assignment(a.widths, a.kernels, a.bias, a.heads, cost)


def _block(a: Assignment, opts: Sequence[WidthOption]) -> Constraint:
    lits = [smt.ne(wvar("s", i), opts.index(o)) for i, o in a.widths.items()]
    lits += [smt.ne(wvar("k", i), v) for i, v in a.kernels.items()]
    lits += [smt.ne(wvar("b", i), int(v)) for i, v in a.bias.items()]
    lits += [smt.ne(wvar("h", i), v) for i, v in a.heads.items()]
    return smt.any_of(lits) if lits else smt.FALSE
