"""The synthesizer: enumerate skeletons in size order over abstract states, prune, solve the
numeric attributes with Z3, re-verify, return.

Programs are SSA sequences: op i reads any earlier tensors (subject inputs first; a binary op
may read one tensor twice), so DAGs with branches, skips and merges are in the space; the last
op is the output, every other op's output must be read (no dead ends), and a subject input must
be read only when the spec needs a path from it (a depth bound or a non-NONE mixing bound;
`certify.required_inputs`). Sizes 1..max_ops are searched in turn (iterative deepening), so the
first program found has the fewest ops. Pruning rules, each sound for "some completion in the
remaining r ops meets the spec" (their counts are in `Stats.pruned`):

- ill-formed: the variant does not apply (shapes do not fit);
- duplicate-op: a *pure* variant (no parameters, no free choice) on the same inputs twice makes
  the same tensor twice, and a program using both equals a smaller program using one (same
  function, same or lower cost), which iterative deepening has already tried; variants with
  weights are never pruned this way (two convs of one input under a budget are not one conv);
- dangling: u tensors still to be read need >= u-1 binary ops to reach one output;
- shape: an unread tensor's shape needs more ops than r to become the output's, by the per-dim
  distances that the allowed variants' own shape rules give (`certify.ShapeBounds`);
- depth: each op adds at most one switch, and depth never falls along a path, so the best depth
  so far + r must reach the lower bound, and no tensor may already exceed the upper bound
  (every tensor lies on a path to the output);
- budget: params/FLOPs with every width at its smallest option and every kernel at 3 already
  exceed a budget (costs are polynomials with positive coefficients in those choices);
- dedup (counted in `Stats.deduplicated`): the same multiset of tensors (hash-consed
  structure; two weighted ops on the same inputs count twice) and of read tensors, reached in
  another order.

Complete skeletons are checked on shape and depth (exact in the abstract), then on mixing by
`alphanas.synth.mixcheck` (an exact prune or exact kernel constraints where provable, otherwise
nothing), then Z3 solves widths/kernels/bias/heads under the width equalities and every budget
(params, FLOPs, peak activation; `alphanas.synth.solve`); a model is rebuilt as a graph and
re-verified by the rules and by the independent oracle, which must agree
(`alphanas.synth.build.recheck`), before it is returned. A model that fails is blocked and Z3
asked again; a skeleton abandoned after `models_per_skeleton` failed models, any rules/oracle
disagreement, or an undecided Z3 check makes the answer "unknown" (or "timeout"), never "unsat".
"unsat" is a certificate for the bounds: allowed ops, <= max_ops ops and the width options. The
deadline bounds the whole call: Z3 checks get the time left, and re-verification stops at it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from alphanas.ir.graph import Graph
from alphanas.properties.verify import Report
from alphanas.synth import certify
from alphanas.synth.abstract import Infeasible, Step, TVal, apply, input_value
from alphanas.synth.build import Recheck, build_program, recheck
from alphanas.synth.menu import Variant, menu
from alphanas.synth.mixcheck import plan_mixing
from alphanas.synth.problem import Problem
from alphanas.synth.solve import Assignment, SkeletonSolver

__all__ = ["Result", "Stats", "synthesize"]

INF = 10**9


@dataclass
class Stats:
    generated: int = 0                      # partial programs built (variant applications)
    pruned: Counter[str] = field(default_factory=Counter)
    deduplicated: int = 0
    complete: int = 0                       # complete skeletons checked in full (abstractly)
    failed: Counter[str] = field(default_factory=Counter)  # why complete skeletons failed
    smt_calls: int = 0
    smt_time_s: float = 0.0
    smt_unknown: int = 0
    verified: int = 0
    verify_failed: int = 0
    mixing_checks: int = 0                  # programs evaluated by the exact mixing plan
    incomplete: int = 0                     # skeletons abandoned for a reason outside the encoding
    disagreements: int = 0                  # rules vs oracle: internal errors, never skipped
    notes: list[str] = field(default_factory=list)  # the first disagreements, verbatim
    wall_s: float = 0.0
    size: int = 0                           # the largest program size searched
    exit: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["pruned"], d["failed"] = dict(self.pruned), dict(self.failed)
        return d


@dataclass(frozen=True)
class Result:
    status: str                             # "solved" | "unsat" | "unknown" | "timeout" | "budget"
    reason: str
    stats: Stats
    graph: Graph | None = None
    assignment: Assignment | None = None
    reports: tuple[Report, ...] = ()
    skeleton: tuple[str, ...] = ()

    @property
    def solved(self) -> bool:
        return self.status == "solved"


class _Timeout(Exception):
    pass


class _Budget(Exception):
    pass


class _Search:
    def __init__(self, problem: Problem, progress: Callable[[Stats], None] | None) -> None:
        self.p, self.progress = problem, progress
        self.menu = menu(problem.ops)
        self.caps = certify.Caps.of(self.menu, [sh for c in problem.contexts for _, sh in c.inputs])
        self.stats = Stats()
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + problem.settings.timeout_s
        n = problem.n_inputs
        self.vals: list[tuple[TVal, ...]] = [
            tuple(input_value(j, n, c.inputs[j][1], j in c.linear_inputs) for c in problem.contexts)
            for j in range(n)]
        self.nodes: list[tuple[Variant, tuple[int, ...]]] = []
        self.steps: list[tuple[Step, ...]] = []
        self.uses = [0] * n
        self.sids: list[Any] = [("in", j) for j in range(n)]
        self.lows = [certify.cost_floor(problem, k) for k in range(len(problem.contexts))]
        self.cost_lb: list[list[int]] = []
        self.best: tuple[Any, ...] | None = None   # (cost, nodes, assignment, reports)
        self.bound: int | None = None
        self.required = certify.required_inputs(problem)
        self.pool: Any = None                       # the re-verification thread, made lazily
        self.context: Any = None                    # one fresh Z3 context per call, made lazily

    # -- the enumeration ---------------------------------------------------------------------

    def run(self) -> Result:
        quick = certify.quick_unsat(self.p, self.menu, self.caps)
        if quick:
            return self._unsat(quick, universal=quick.startswith(("depth", "host")))
        try:
            for n in range(1, self.p.max_ops + 1):
                self.stats.size, self.seen = n, set()
                self._dfs(n)
                if self.best is not None:
                    return self._solved()
        except _Budget:
            if self.best is not None:
                return self._solved(f"best found within {self.p.settings.max_candidates:,} candidates")
            return self._result("budget", f"no program within {self.p.settings.max_candidates:,} "
                                f"candidates (max_candidates; searched every program of < "
                                f"{self.stats.size} ops)")
        except _Timeout as e:
            if self.best is not None:
                return self._solved(f"best found before the timeout (ran out during {e})")
            return self._result("timeout", f"no program found within {self.p.settings.timeout_s:g} s "
                                f"(ran out during {e}; searched every program of < "
                                f"{self.stats.size} ops)")
        if self.stats.smt_unknown:
            return self._result("timeout", f"Z3 could not decide {self.stats.smt_unknown} skeletons "
                                "within its bounds; raise --timeout or the rlimit")
        if self.stats.disagreements:
            return self._result("unknown", f"{self.stats.disagreements} programs had the rules and "
                                f"the oracle disagree (an internal error): {self.stats.notes[0]}")
        if self.stats.incomplete:
            return self._result("unknown", f"no program found, but {self.stats.incomplete} skeletons "
                                f"were abandoned after {self.p.settings.models_per_skeleton} Z3 models "
                                "failed re-verification for a reason outside the encoding (e.g. "
                                "mixing that depends on the widths); raise models_per_skeleton")
        return self._unsat(certify.reason(self.p, self.stats))

    def _unsat(self, reason: str, universal: bool = False) -> Result:
        """"unsat" when the proof covers every op the specs allow, else "unknown"."""
        if self.p.ignored and not universal:
            return self._result("unknown", f"{reason}; but the spec also allows "
                                f"{', '.join(self.p.ignored)}, which the synthesizer does not place, so "
                                "this is no certificate (list the ops in [search] ops)")
        return self._result("unsat", reason)

    def _dfs(self, n: int) -> None:
        d = len(self.nodes)
        if d == n:
            self._complete()
            return
        self._check_deadline("the enumeration")
        total = len(self.vals)
        for v in self.menu:
            for ins in self._input_choices(v, total):
                self._try(n, v, ins)

    def _input_choices(self, v: Variant, total: int) -> list[tuple[int, ...]]:
        order = range(total - 1, -1, -1)  # the newest tensor first
        if v.arity == 1:
            return [(a,) for a in order]
        return [(a, b) for a in order for b in order if not v.commutative or a >= b]

    def _try(self, n: int, v: Variant, ins: tuple[int, ...]) -> None:
        sid = (v.key, *(self.sids[j] for j in ins))
        if v.pure and sid in self.sids:
            self.stats.pruned["duplicate-op"] += 1
            return
        todo = certify.unread(self)
        unread = len(todo) + 1 - sum(1 for j in set(ins) if j in todo)
        if unread - 1 > n - len(self.nodes) - 1:
            self.stats.pruned["dangling"] += 1
            return
        i = len(self.nodes)
        try:
            steps = tuple(apply(v, i, k, [self.vals[j][k] for j in ins])
                          for k in range(len(self.p.contexts)))
        except Infeasible:
            self.stats.pruned["ill-formed"] += 1
            return
        self.stats.generated += 1
        cap = self.p.settings.max_candidates
        if cap is not None and self.stats.generated > cap:
            raise _Budget
        if self.progress is not None and self.stats.generated % 2000 == 0:
            self.stats.wall_s = time.perf_counter() - self.t0
            self.progress(self.stats)
        self._push(v, ins, steps, sid)
        try:
            rule = certify.prune(self, n - len(self.nodes))
            if rule:
                self.stats.pruned[rule] += 1
                return
            # multisets: two convs of one input are two tensors (Z3 may size them differently)
            key = (frozenset(Counter(self.sids).items()),
                   frozenset(Counter(s for s, u in zip(self.sids, self.uses, strict=True) if u).items()))
            if key in self.seen:
                self.stats.deduplicated += 1
                return
            self.seen.add(key)
            self._dfs(n)
        finally:
            self._pop(ins)

    def _push(self, v: Variant, ins: tuple[int, ...], steps: tuple[Step, ...], sid: Any) -> None:
        for j in ins:
            self.uses[j] += 1
        self.nodes.append((v, ins))
        self.steps.append(steps)
        self.vals.append(tuple(s.val for s in steps))
        self.uses.append(0)
        self.sids.append(sid)
        prev = self.cost_lb[-1] if self.cost_lb else [[0, 0] for _ in self.p.contexts]
        self.cost_lb.append([[a + s.params.evaluate(lo), b + s.flops.evaluate(lo)]
                             for (a, b), s, lo in zip(prev, steps, self.lows, strict=True)])

    def _pop(self, ins: tuple[int, ...]) -> None:
        for j in ins:
            self.uses[j] -= 1
        for stack in (self.nodes, self.steps, self.vals, self.uses, self.sids, self.cost_lb):
            stack.pop()

    # -- complete skeletons ------------------------------------------------------------------

    def _complete(self) -> None:
        why = certify.final_check(self)
        if why:
            self.stats.failed[why] += 1
            return
        plan = plan_mixing(self.p, self.nodes)
        self.stats.mixing_checks += plan.checks
        if plan.prune:
            self.stats.failed["mixing"] += 1
            return
        self.stats.complete += 1
        if self.context is None:
            from alphanas.properties.smt import fresh_context

            self.context = fresh_context()
        z3 = SkeletonSolver(self.p, self.nodes, self.steps, self.bound, plan.cons, self.context,
                            self.deadline)
        unproved = False  # a blocked model failed for a reason no judge established
        checks, secs = 0, 0.0
        for _ in range(self.p.settings.models_per_skeleton):
            self._check_deadline("Z3's attribute solving")
            res, a = z3.next()
            self.stats.smt_calls += z3.stats.checks - checks
            self.stats.smt_time_s += z3.stats.time_s - secs
            checks, secs = z3.stats.checks, z3.stats.time_s
            if a is None:
                if res.unsat and unproved:
                    self.stats.incomplete += 1
                elif res.unsat:
                    self.stats.failed["widths/budgets (Z3 unsat)"] += 1
                else:
                    self.stats.smt_unknown += 1
                    self._check_deadline("Z3's attribute solving")
                return
            r = self._recheck(a)
            if r.ok:
                self.stats.verified += 1
                self._found(a, r.reports)
                return
            self.stats.verify_failed += 1
            if r.disagreements:
                self.stats.disagreements += 1
                self.stats.notes += list(r.disagreements[: max(0, 5 - len(self.stats.notes))])
            elif not r.proved and len(self.stats.notes) < 5:
                self.stats.notes.append(f"unproved re-verification failure: {r.why[:200]}")
            unproved = unproved or not r.proved
            z3.block(a)
        self.stats.incomplete += 1

    def _recheck(self, a: Assignment) -> Recheck:
        """Re-verify on a worker thread, waiting at most until the deadline: the first check of
        a process imports JAX for the oracle's trace, and no single check may outlast the call
        (a late result is dropped; the thread finishes on its own)."""
        if self.pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(1, thread_name_prefix="alphanas-recheck")
        job = self.pool.submit(recheck, self.p, list(self.nodes), a, self.deadline)
        try:
            r = job.result(timeout=max(0.0, self.deadline - time.perf_counter()))
        except FutureTimeout:
            raise _Timeout("the re-verification (rules and oracle)") from None
        if r.timed_out:
            raise _Timeout("the re-verification (rules and oracle)")
        return r

    def _check_deadline(self, phase: str) -> None:
        if time.perf_counter() > self.deadline:
            raise _Timeout(phase)

    def _found(self, a: Assignment, reports: tuple[Report, ...]) -> None:
        cost = a.cost if a.cost is not None else 0
        if self.best is None or cost < self.best[0]:
            self.best = (cost, list(self.nodes), a, reports)
        if self.p.settings.minimize is None:
            raise _Done
        self.bound = cost - 1

    def _solved(self, note: str = "") -> Result:
        assert self.best is not None
        cost, nodes, a, reports = self.best
        graph = build_program(self.p.contexts[0], nodes, a)
        opt = self.p.settings.minimize
        reason = f"{len(nodes)} op{'s' if len(nodes) > 1 else ''}" + (f", {opt} {cost:,} (minimal among {len(nodes)}-op programs)"
                                        if opt else "")
        return self._result("solved", reason + (f"; {note}" if note else ""), graph, a, reports,
                            tuple(v.key for v, _ in nodes))

    def _result(self, status: str, reason: str, graph: Graph | None = None, a: Assignment | None = None,
                reports: tuple[Report, ...] = (), skeleton: tuple[str, ...] = ()) -> Result:
        self.stats.wall_s = time.perf_counter() - self.t0
        self.stats.exit = status
        return Result(status, reason, self.stats, graph, a, reports, skeleton)


class _Done(Exception):
    pass


def synthesize(problem: Problem, progress: Callable[[Stats], None] | None = None) -> Result:
    """Search for a program meeting every context of `problem` (see the module docstring)."""
    s = _Search(problem, progress)
    try:
        return s.run()
    except _Done:
        return s._solved()
    finally:
        if s.pool is not None:
            s.pool.shutdown(wait=False)

