"""Two baselines for `synthesize`, returning its `Result`/`Stats` so runs compare directly.

- `plain_enumerate`: every SSA program of 1..max_ops ops over the same variants, times every
  concrete attribute assignment of a grid, each built and checked; no pruning, no symmetry
  breaking, no dedup, no Z3. It answers "how much do abstract pruning and Z3 save".
- `greedy_progressive`: the paper's progressive synthesizer: grow a chain one concrete op at a
  time, keeping the op that brings the candidate closest to the spec (summed property
  distances), never backtracking. It can miss solutions and never proves unsat.

Both are deterministic (fixed enumeration orders, ties broken by menu order) and stop at the
problem's `timeout_s`. `Stats.complete` counts candidates fully evaluated (built as concrete
graphs and checked; for plain enumeration, those that fail to build too, for greedy search
those are skipped and count only in `generated`); `Stats.pruned` stays empty.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from alphanas.errors import AlphanasError
from alphanas.ir.analysis import analyze
from alphanas.properties.base import Subject
from alphanas.properties.verify import Report
from alphanas.synth.build import Nodes, build_program, reverify
from alphanas.synth.menu import HEADS, KERNELS, Variant, menu
from alphanas.synth.problem import Problem
from alphanas.synth.search import Result, Stats
from alphanas.synth.solve import Assignment, WidthOption, width_options

__all__ = ["greedy_progressive", "plain_enumerate"]

Progress = Callable[[Stats], None] | None
Node = tuple[Variant, tuple[int, ...]]
Attrs = tuple[WidthOption | None, int | None, bool | None, int | None]
"""One op's concrete choices: (width option, kernel, use_bias, heads); None = not its attribute."""

PROGRESS_EVERY = 1000   # plain enumeration: candidates between progress callbacks


class _Timeout(Exception):
    pass


@dataclass(frozen=True)
class _Pick:
    """A greedy step's choice: its distance to the spec, the op, its attributes, and the
    re-verification reports when it is a solution."""

    distance: float
    node: Node
    attrs: Attrs
    reports: tuple[Report, ...] | None


@dataclass
class _Run:
    """The shared bookkeeping of a baseline run: stats, clock, result."""

    problem: Problem
    progress: Progress
    stats: Stats
    t0: float

    @classmethod
    def start(cls, problem: Problem, progress: Progress) -> _Run:
        return cls(problem, progress, Stats(), time.perf_counter())

    def tick(self) -> None:
        """Raise `_Timeout` past the deadline."""
        if time.perf_counter() - self.t0 > self.problem.settings.timeout_s:
            raise _Timeout

    def report(self) -> None:
        """Hand the stats so far to the progress callback."""
        if self.progress is not None:
            self.stats.wall_s = time.perf_counter() - self.t0
            self.progress(self.stats)

    def result(self, status: str, reason: str, nodes: Nodes = (), a: Assignment | None = None,
               reports: tuple[Report, ...] = ()) -> Result:
        self.stats.wall_s = time.perf_counter() - self.t0
        self.stats.exit = status
        graph = build_program(self.problem.contexts[0], nodes, a) if a is not None else None
        return Result(status, reason, self.stats, graph, a, reports, tuple(v.key for v, _ in nodes))


def _first_failure(reports: Sequence[Report]) -> str:
    """The first failing property of the last report ("error": the candidate did not build)."""
    bad = [r.property for r in (reports[-1].properties if reports else ()) if not r.holds]
    return bad[0] if bad else "error"


def _assignment(choices: Sequence[Attrs]) -> Assignment:
    """Per-op choices (indexed by op) as an `Assignment`."""
    picks = [{i: c[f] for i, c in enumerate(choices) if c[f] is not None} for f in range(4)]
    return Assignment(*picks)


def _attr_grid(v: Variant, opts: Sequence[WidthOption], kernels: Sequence[int],
               biases: Sequence[bool], heads: Sequence[int]) -> list[Attrs]:
    """Every concrete choice for one op of variant `v` (one empty choice when it has none)."""
    return list(itertools.product(opts if v.width == "new" else (None,),
                                  kernels if v.kernel else (None,),
                                  biases if v.bias else (None,),
                                  heads if v.heads else (None,)))


# -- plain enumeration ----------------------------------------------------------------------------


def _input_choices(v: Variant, total: int) -> list[tuple[int, ...]]:
    """Every input tuple over `total` earlier tensors, newest first (as `synthesize` orders)."""
    return list(itertools.product(range(total - 1, -1, -1), repeat=v.arity))


def _programs(variants: Sequence[Variant], n_inputs: int, n: int) -> Iterator[tuple[Node, ...]]:
    """Every SSA program of `n` ops: op i is any variant on any inputs among the n_inputs + i
    earlier tensors (dead ends, duplicates and symmetric twins included)."""
    per_op = [[(v, ins) for v in variants for ins in _input_choices(v, n_inputs + i)] for i in range(n)]
    return itertools.product(*per_op)


def _full_grid(nodes: Nodes, opts: Sequence[WidthOption]) -> Iterator[Assignment]:
    """Every concrete assignment of the grid for `nodes`, lazily."""
    grids = [_attr_grid(v, opts, KERNELS, (False, True), HEADS) for v, _ in nodes]
    return (_assignment(c) for c in itertools.product(*grids))


def _evaluate(run: _Run, nodes: Nodes, a: Assignment) -> tuple[Report, ...] | None:
    """Build and check one candidate: its reports when it meets the spec, else None. The output
    shape is compared first (it is part of the check) so most candidates skip `verify`."""
    p, st = run.problem, run.stats
    st.complete += 1
    for ctx in p.contexts:
        try:
            shapes = analyze(build_program(ctx, nodes, a)).output_shapes
        except AlphanasError:
            st.failed["ill-formed"] += 1
            return None
        if tuple(shapes) != (ctx.out_shape,):
            st.failed["shape"] += 1
            return None
    ok, _, reports = reverify(p, nodes, a)
    if not ok:
        st.verify_failed += 1
        st.failed[_first_failure(reports)] += 1
        return None
    st.verified += 1
    return reports


def plain_enumerate(problem: Problem, progress: Progress = None) -> Result:
    """Enumerate programs by size and every grid assignment of each; the first candidate that
    re-verifies is returned. "unsat" means the whole grid (not every width) was exhausted."""
    run = _Run.start(problem, progress)
    variants, opts = menu(problem.ops), width_options(problem)
    try:
        for n in range(1, problem.max_ops + 1):
            run.stats.size = n
            for nodes in _programs(variants, problem.n_inputs, n):
                run.stats.generated += 1
                for a in _full_grid(nodes, opts):
                    run.tick()
                    reports = _evaluate(run, nodes, a)
                    if reports is not None:
                        return run.result("solved", f"{n} ops (plain enumeration)", nodes, a, reports)
                    if run.stats.complete % PROGRESS_EVERY == 0:
                        run.report()
    except _Timeout:
        return run.result("timeout", f"no program found within {problem.settings.timeout_s:g} s "
                          f"(plain enumeration: {run.stats.complete:,} candidates, every program "
                          f"of < {run.stats.size} ops)")
    return run.result("unsat", f"exhausted the grid: no program of <= {problem.max_ops} ops "
                      f"({run.stats.generated:,} programs, {run.stats.complete:,} candidates) "
                      "meets the spec")


# -- greedy progressive synthesis ----------------------------------------------------------------


def _chain_menu(problem: Problem) -> list[tuple[Variant, Attrs]]:
    """The concrete choices of one chain step: widths from the options, kernel 3, bias on,
    the first heads option (1, always valid)."""
    opts = width_options(problem)
    return [(v, c) for v in menu(problem.ops) for c in _attr_grid(v, opts, (3,), (True,), HEADS[:1])]


def _chain_inputs(v: Variant, i: int, n_inputs: int) -> list[tuple[int, ...]]:
    """Op i reads the previous tensor (op i-1's output; subject input 0 for op 0); a binary op
    also reads a subject input (a residual or a merge of inputs)."""
    prev = n_inputs + i - 1 if i else 0
    if v.arity == 1:
        return [(prev,)]
    return [(prev, j) for j in range(n_inputs) if j != prev]


def _distance(problem: Problem, nodes: Nodes, a: Assignment) -> float | None:
    """Summed target distances over the contexts (None: ill-formed). A sub-graph context is
    measured on the program with its host recorded, as `verify` sees it once spliced."""
    total = 0.0
    for ctx in problem.contexts:
        try:
            subject = Subject(build_program(ctx, nodes, a), ctx.host, ctx.selection,
                              ctx.spec.linear_inputs())
            total += sum(t.distance(subject) for t in ctx.spec.targets())
        except AlphanasError:
            return None
    return total


def _greedy_step(run: _Run, nodes: Nodes, choices: Sequence[Attrs],
                 step_menu: Sequence[tuple[Variant, Attrs]]) -> _Pick | None:
    """Score every extension of the chain by one op: the first that re-verifies (among those
    at distance 0), else the closest (ties: menu order); None when no extension is well-formed."""
    p, st = run.problem, run.stats
    scored: list[tuple[float, int, Node, Attrs]] = []
    for v, c in step_menu:
        for ins in _chain_inputs(v, len(nodes), p.n_inputs):
            run.tick()
            st.generated += 1
            d = _distance(p, [*nodes, (v, ins)], _assignment([*choices, c]))
            if d is None:
                st.failed["ill-formed"] += 1
                continue
            st.complete += 1
            scored.append((d, len(scored), (v, ins), c))
    scored.sort(key=lambda s: s[:2])
    for d, _, node, c in itertools.takewhile(lambda s: s[0] == 0, scored):
        ok, _, reports = reverify(p, [*nodes, node], _assignment([*choices, c]))
        if ok:
            st.verified += 1
            return _Pick(d, node, c, reports)
        st.verify_failed += 1
        st.failed[_first_failure(reports)] += 1
    return _Pick(scored[0][0], scored[0][2], scored[0][3], None) if scored else None


def greedy_progressive(problem: Problem, progress: Progress = None) -> Result:
    """Grow a chain op by op, keeping the closest extension, until it re-verifies. Not finding
    one is reported as "timeout" (greedy search cannot prove unsat)."""
    run = _Run.start(problem, progress)
    step_menu = _chain_menu(problem)
    nodes: list[Node] = []
    choices: list[Attrs] = []
    best = float("inf")
    try:
        while len(nodes) < problem.max_ops:
            run.stats.size = len(nodes) + 1
            pick = _greedy_step(run, nodes, choices, step_menu)
            if pick is None:
                return run.result("timeout", f"greedy search ended without a solution after {len(nodes)} "
                                  "ops: no allowed op applies to the chain")
            nodes.append(pick.node)
            choices.append(pick.attrs)
            best = pick.distance
            if pick.reports is not None:
                return run.result("solved", f"{len(nodes)} ops (greedy chain)", nodes,
                                  _assignment(choices), pick.reports)
            run.report()
    except _Timeout:
        return run.result("timeout", f"no program found within {problem.settings.timeout_s:g} s "
                          f"(greedy chain of {len(nodes)} ops)")
    chain = ", ".join(v.key for v, _ in nodes)
    return run.result("timeout", f"greedy search ended without a solution after {len(nodes)} ops "
                      f"(max_ops; the chain {chain} is at distance {best:.3g}); greedy search "
                      "cannot prove unsat")
