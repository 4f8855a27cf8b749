"""Sketch synthesis: a fixed DAG whose holes each take one variant from a finite set.

A `Sketch` is how a search space is written down: NAS-Bench-201's cell is the 4-node DAG whose
six edges are holes over {none, skip, conv1x1, conv3x3, avg_pool}. `fill(sketch, specs)` finds
an assignment of the holes whose program meets every spec (one spec per context the program is
used in, e.g. the 15 positions of a cell), or proves that none does.

How an answer is established (the soundness rule of DESIGN §4: a claim is checked by code that
does not share the rule being checked):
- The enumeration filters candidates with the analytic rules (`Target.check` on the program at
  each spec's input shapes and producer context).
- A candidate is returned only after `verify` (every property, rules) and the independent oracle
  (`alphanas.oracle.judge`) both say it holds in every context and agree. A candidate the rules
  accept and the oracle rejects is a disagreement: it is recorded and never returned.
- "unsat" is claimed only after every assignment was enumerated, each was rejected by the rules,
  and the oracle confirms each rejection in at least one context. If the oracle accepts one of
  them, the answer is "unknown" (a disagreement) instead. With `certify=False` (the NAS loop,
  which only needs a child), an empty enumeration is "exhausted", not a certificate.
- With more assignments than `max_candidates`, an empty search is "budget", never "unsat".
- An assignment whose program does not build or cannot take the spec's shapes (e.g. a pool
  window larger than its input) is not a program; an unsat reason counts them.

Order: assignments are enumerated in the product order of the holes' variant lists; the accepted
ones are then ranked by `rank` (lower first) with ties broken by a seeded permutation, so the same
seed gives the same answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from math import prod
from typing import Any

import numpy as np

from alphanas.errors import AlphanasError
from alphanas.ir.graph import Graph
from alphanas.properties.base import Subject
from alphanas.properties.spec import Spec

__all__ = ["Hole", "Sketch", "SketchError", "SketchResult", "fill"]

Assignment = tuple[str, ...]


class SketchError(AlphanasError, ValueError):
    """A sketch or its specs are malformed (names the hole or the spec)."""


@dataclass(frozen=True)
class Hole:
    """A hole named `name` that takes one of `choices`."""

    name: str
    choices: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Sketch:
    """Holes plus `build(assignment) -> Graph`: the whole program for one variant per hole (in
    hole order). The graph's input and output names are the ones the specs use."""

    name: str
    holes: tuple[Hole, ...]
    build: Callable[[Assignment], Graph]
    ident: Callable[[Assignment], Hashable] | None = None
    """The identity of the program an assignment builds, for a cache shared across sketches
    (`fill(cache_key=...)`); default: the assignment itself."""

    def __post_init__(self) -> None:
        names = [h.name for h in self.holes]
        if len(set(names)) != len(names):
            raise SketchError(f"sketch {self.name}: two holes share a name")
        for h in self.holes:
            if not h.choices or len(set(h.choices)) != len(h.choices):
                raise SketchError(f"sketch {self.name}: hole {h.name} needs distinct choices, "
                                  f"got {list(h.choices)}")

    @property
    def size(self) -> int:
        return prod(len(h.choices) for h in self.holes)

    def assignments(self) -> itertools.product:
        return itertools.product(*(h.choices for h in self.holes))


@dataclass(frozen=True)
class SketchResult:
    """status: solved, unsat, exhausted (no candidate, not certified), budget, unknown."""

    status: str
    assignment: Assignment | None = None
    graph: Graph | None = None
    reason: str = ""
    candidates: int = 0
    accepted: int = 0
    disagreements: tuple[str, ...] = ()

    @property
    def solved(self) -> bool:
        return self.status == "solved"


@dataclass
class _Cache:
    """Subjects per (assignment, context), shared across `fill` calls by the caller's key."""

    subjects: dict[Hashable, Subject] = field(default_factory=dict)


_CACHES: dict[Hashable, _Cache] = {}


def _context(spec: Spec) -> tuple[tuple[tuple[int, ...], ...], frozenset[str]]:
    shapes = spec.concrete_inputs()
    if shapes is None:
        raise SketchError(f"{spec.source}: a sketch spec needs concrete input shapes")
    return tuple(tuple(shapes[n]) for n, _ in spec.inputs), spec.linear_inputs()


def _subject(sketch: Sketch, a: Assignment, spec: Spec, cache: _Cache,
             graphs: dict[Assignment, Graph]) -> Subject:
    shapes, linear = _context(spec)
    key = (sketch.ident(a) if sketch.ident else a, shapes, linear)
    s = cache.subjects.get(key)
    if s is None:
        g = graphs.get(a)
        if g is None:
            g = graphs[a] = sketch.build(a)
        names = [n for n, _ in spec.inputs]
        if set(names) != set(g.input_names):
            raise SketchError(f"{spec.source}: inputs {', '.join(names)}, but sketch {sketch.name} "
                              f"builds a program with inputs {', '.join(g.input_names)}")
        by_name = dict(zip(names, shapes, strict=True))
        s = Subject.whole(g.with_input_shapes([by_name[n] for n in g.input_names]), linear)
        cache.subjects[key] = s
    return s


def _rules_accept(subject: Subject, spec: Spec) -> bool:
    return all(not t.check(subject) for t in spec.targets())


def fill(sketch: Sketch, specs: Spec | Sequence[Spec], *, seed: int = 0,
         max_candidates: int = 100_000, exclude: Sequence[Assignment] = (),
         rank: Callable[[Assignment], Any] | None = None, certify: bool = True,
         cache_key: Hashable | None = None) -> SketchResult:
    """An assignment of `sketch`'s holes meeting every spec in `specs`, established as the
    module docstring says. `exclude` lists assignments not to return (e.g. the parent)."""
    specs = [specs] if isinstance(specs, Spec) else list(specs)
    if not specs:
        raise SketchError(f"sketch {sketch.name}: fill needs at least one spec")
    cache = _CACHES.setdefault(cache_key, _Cache()) if cache_key is not None else _Cache()
    if cache_key is not None and len(cache.subjects) > 60_000:
        cache.subjects.clear()
    graphs: dict[Assignment, Graph] = {}
    excluded = {tuple(a) for a in exclude}
    accepted: list[Assignment] = []
    rejected: list[Assignment] = []
    broken: list[str] = []
    n, complete = 0, True
    for a in sketch.assignments():
        if a in excluded:
            continue
        if n >= max_candidates:
            complete = False
            break
        n += 1
        try:
            ok = all(_rules_accept(_subject(sketch, a, sp, cache, graphs), sp) for sp in specs)
        except SketchError:
            raise
        except AlphanasError as e:  # not a program at these shapes (e.g. a window too large)
            broken.append(f"{a}: {e}")
            continue
        (accepted if ok else rejected).append(a)
    order = _ranked(accepted, rank, seed)
    disagreements: list[str] = []
    for a in order:
        ok, why = _confirm(sketch, a, specs, cache, graphs)
        if ok:
            return SketchResult("solved", a, _subject(sketch, a, specs[0], cache, graphs).graph,
                                f"{a} meets every spec (rules and oracle agree)", n, len(accepted),
                                tuple(disagreements))
        disagreements.append(f"{a}: {why}")
    if accepted:
        return SketchResult("unknown", reason="the rules accepted candidates that the re-check "
                            f"rejected: {disagreements[0]}", candidates=n, accepted=len(accepted),
                            disagreements=tuple(disagreements))
    if not complete:
        return SketchResult("budget", reason=f"no candidate among the first {n} of "
                            f"{sketch.size} assignments (max_candidates={max_candidates})",
                            candidates=n)
    if not certify:
        return SketchResult("exhausted", reason=f"no assignment of the {n} tried meets the specs "
                            "(rules only; not certified)", candidates=n)
    for a in rejected:
        why = _oracle_rejects(sketch, a, specs, cache, graphs)
        if why is not None:
            disagreements.append(f"{a}: {why}")
    if disagreements:
        return SketchResult("unknown", reason="the oracle accepts a candidate that the rules "
                            f"rejected: {disagreements[0]}", candidates=n,
                            disagreements=tuple(disagreements))
    holes = ", ".join(f"{h.name} in {{{', '.join(h.choices)}}}" for h in sketch.holes)
    bad = f"; {len(broken)} do not build at the specs' shapes" if broken else ""
    return SketchResult("unsat", reason=f"none of the {n} assignments ({holes}"
                        f"{'; excluding ' + str(len(excluded)) if excluded else ''}) meets the "
                        f"specs; each rejection confirmed by the oracle{bad}", candidates=n)


def _ranked(accepted: list[Assignment], rank: Callable[[Assignment], Any] | None,
            seed: int) -> list[Assignment]:
    perm = np.random.default_rng(seed).permutation(len(accepted))
    tie = {a: int(perm[i]) for i, a in enumerate(accepted)}
    return sorted(accepted, key=lambda a: ((rank(a) if rank else 0), tie[a]))


def _confirm(sketch: Sketch, a: Assignment, specs: Sequence[Spec], cache: _Cache,
             graphs: dict[Assignment, Graph]) -> tuple[bool, str]:
    from alphanas.properties.verify import verify

    for sp in specs:
        g = _subject(sketch, a, sp, cache, graphs).graph
        rep = verify(g, sp, oracle=True)
        if not rep.holds:
            return False, f"verify: {'; '.join(str(v) for v in rep.violations[:2])}"
        if rep.oracle is None or not rep.oracle.verdict.holds or not rep.oracle.agrees:
            return False, str(rep.oracle)
    return True, ""


def _oracle_rejects(sketch: Sketch, a: Assignment, specs: Sequence[Spec], cache: _Cache,
                    graphs: dict[Assignment, Graph]) -> str | None:
    """None when the oracle rejects `a` in some context (agreeing with the rules); else why not."""
    from alphanas.oracle.judge import judge

    undecided = ""
    for sp in specs:
        v = judge(_subject(sketch, a, sp, cache, graphs).graph, sp)
        if not v.holds and not v.undecided:
            return None
        undecided = undecided or v.undecided
    return f"oracle undecided ({undecided})" if undecided else "the oracle says it holds"
