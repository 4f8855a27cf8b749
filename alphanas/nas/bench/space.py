"""The NAS-Bench-201 cell space: keys, isomorphism classes, mutations and properties.

A cell is a 6-digit key (op index per edge, `alphanas.ir.zoo.nb201.EDGES` order).

Isomorphism (`canonical`): node j computes the multiset sum of op(node i); a node without a live
input is zero, an op applied to zero counts as zero (NAS-Bench-201's `none` multiplies by 0),
and `skip_connect` is the identity, so skip(a + b) + c = a + b + c. Two cells are isomorphic
when node 3's expression is the same up to the order of the summands; this also identifies
nodes 1 and 2 when they are symmetric.
Parameters of dead edges still differ (the table counts them), accuracy does not beyond noise.

Mutations:
- `nb201_mutation`: NAS-Bench-201's REA operator (a uniform node, a uniform edge into it, a
  uniformly drawn different op);
- `random_mutation`: a connected set of 1..`max_holes` edges gets fresh random ops
  (property-blind), the same edge sets as the property-guided operator;
- `alpha_mutation`: the αNAS operator restricted to the NB201 grammar: the same connected
  edge set becomes the holes of a sketch, the cell's properties (shape, depth, mixing) are read
  off in all 15 positions of the network, perturbed as `alphanas.nas.mutate` does (depth by up to
  ±2, the mixing requirement dropped with p = 0.5), and `alphanas.synth.sketch.fill` picks, at
  random among the assignments that meet the perturbed specs in every position, the replacement
  (verified by the rules and the oracle).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from alphanas.ir.zoo.nb201 import EDGES, NB201_OPS, cell_body, nb201, parse_cell
from alphanas.properties.base import Subject
from alphanas.properties.spec import Spec, read_off_spec

__all__ = ["AlphaSettings", "alpha_mutation", "canonical", "cell_specs", "connected_edges",
           "live_ops", "nb201_mutation", "neighbours", "random_mutation", "signature"]

_SEED_MAX = 2 ** 31 - 1


@functools.cache
def _expr(key: str) -> tuple[str | None, frozenset[int]]:
    """(node 3's canonical expression or None for zero, the edges on live paths).

    A node's value is a multiset of summands; `skip_connect` passes its source's summands on
    (the identity), any other op makes one summand op(source); zero sources contribute nothing."""
    ops = [NB201_OPS[int(c)] for c in key]
    terms: list[tuple[str, ...] | None] = [("x",)]
    used: list[frozenset[int]] = [frozenset()]
    for j in (1, 2, 3):
        acc: list[str] = []
        edges: set[int] = set()
        for e, (s, t) in enumerate(EDGES):
            if t != j or ops[e] == "none" or terms[s] is None:
                continue
            src = terms[s]
            acc += list(src) if ops[e] == "skip_connect" else [f"{ops[e]}({'+'.join(src)})"]
            edges |= used[s] | {e}
        terms.append(tuple(sorted(acc)) if acc else None)
        used.append(frozenset(edges))
    out = terms[3]
    return (None if out is None else "+".join(out)), used[3]


def canonical(key: str) -> str:
    """The smallest key isomorphic to `key` (see the module docstring)."""
    return _classes()[_expr(key)[0] or "zero"]


@functools.lru_cache(maxsize=1)
def _classes() -> dict[str, str]:
    from alphanas.nas.bench.table import all_keys

    out: dict[str, str] = {}
    for k in all_keys():  # ascending, so the first key of a class is its smallest
        out.setdefault(_expr(k)[0] or "zero", k)
    return out


def n_classes() -> int:
    return len(_classes())


def live_ops(key: str) -> list[str]:
    """The ops of the edges on some input-to-output path (empty when the output is zero)."""
    return [NB201_OPS[int(key[e])] for e in sorted(_expr(key)[1])]


def _with(key: str, edge: int, op: int) -> str:
    return key[:edge] + str(op) + key[edge + 1:]


def neighbours(key: str) -> list[str]:
    """The 24 cells one edge-op change away, in edge then op order."""
    return [_with(key, e, o) for e in range(6) for o in range(5) if o != int(key[e])]


def nb201_mutation(key: str, rng: np.random.Generator) -> str:
    """NAS-Bench-201's REA mutation: node uniform in 1..3, then an edge into it, then a new op."""
    node = int(rng.integers(1, 4))
    edges = [e for e, (_, t) in enumerate(EDGES) if t == node]
    e = edges[int(rng.integers(len(edges)))]
    ops = [o for o in range(5) if o != int(key[e])]
    return _with(key, e, ops[int(rng.integers(len(ops)))])


def connected_edges(rng: np.random.Generator, max_holes: int = 3) -> tuple[int, ...]:
    """A connected set of 1..max_holes edges (sharing nodes), grown from a uniform edge."""
    size = int(rng.integers(1, max_holes + 1))
    chosen = [int(rng.integers(6))]
    while len(chosen) < size:
        nodes = {n for e in chosen for n in EDGES[e]}
        frontier = [e for e in range(6) if e not in chosen and set(EDGES[e]) & nodes]
        chosen.append(frontier[int(rng.integers(len(frontier)))])
    return tuple(sorted(chosen))


def random_mutation(key: str, rng: np.random.Generator, max_holes: int = 3) -> str:
    """Property-blind: fresh uniform ops on a connected edge set, the cell must change."""
    holes = connected_edges(rng, max_holes)
    while True:
        child = list(key)
        for e in holes:
            child[e] = str(int(rng.integers(5)))
        if "".join(child) != key:
            return "".join(child)


# -- properties ------------------------------------------------------------------------------

_PROPS = ("shape", "depth", "mixing")


def _cell_graph(ops: Sequence[str]):
    from alphanas.ir.graph import GraphBuilder

    b = GraphBuilder("nb201_cell")
    x = b.input("input")
    return b.build(cell_body(b, x, ops))


@functools.lru_cache(maxsize=4096)
def cell_contexts(key: str, num_classes: int = 10) -> tuple[tuple[tuple[int, ...], bool], ...]:
    """The distinct (input shape, input produced by a linear op) of the cell's 15 positions in
    the network, read off the host network position by position (the producer class looks
    through transparent ops, as the depth property does)."""
    from alphanas.ir.analysis import analyze
    from alphanas.ir.attrs import DepthClass
    from alphanas.ir.registry import LINEAR, REGISTRY

    g = nb201(key, num_classes=num_classes)
    shapes, ops = analyze(g).shapes, g.op_map
    seen: list[tuple[tuple[int, ...], bool]] = []
    for b in g.blocks:
        if not b.template.startswith("nb201_cell"):
            continue
        inside = set(b.ops)
        (x,) = {i for o in b.ops for i in ops[o].inputs if i not in inside}
        src = x
        while src in ops and REGISTRY[ops[src].kind].depth is DepthClass.TRANSPARENT:
            src = ops[src].inputs[0]
        ctx = (tuple(shapes[x]), src in ops and ops[src].kind in LINEAR)
        if ctx not in seen:
            seen.append(ctx)
    return tuple(seen)


@functools.lru_cache(maxsize=8192)
def cell_specs(key: str, num_classes: int = 10) -> tuple[Spec, ...]:
    """The cell's exact properties (shape, depth, mixing) in each distinct position context,
    as specs over the standalone cell (input `input`, output `out`)."""
    ops = parse_cell(key)
    specs = []
    for shape, linear in cell_contexts(key, num_classes):
        g = _cell_graph(ops).with_input_shapes([shape])
        specs.append(read_off_spec(Subject.whole(g, {"input"} if linear else ()),
                                   properties=_PROPS, name=f"nb201 cell {key} at {shape}"))
    return tuple(specs)


@functools.cache
def signature(key: str) -> tuple[int, tuple[tuple[int, ...], ...]]:
    """(depth of input->out, -1 when no path; the 4x4 mixing matrix as lattice levels) of the
    standalone cell at the first stage's context (input 1x32x32x16 from a linear producer):
    the properties that `stats.locality` compares."""
    g = _cell_graph(parse_cell(key)).with_input_shapes([(1, 32, 32, 16)])
    spec = read_off_spec(Subject.whole(g, {"input"}), properties=("depth", "mixing"))
    depth = -1
    if spec.depth is not None and spec.depth.pairs:
        depth = int(spec.depth.pairs[0][1].lo)
    mix: tuple[tuple[int, ...], ...] = ((0,) * 4,) * 4
    if spec.mixing is not None and spec.mixing.entries:
        mix = tuple(tuple(int(v) for v in row) for row in spec.mixing.entries[0][1])
    return depth, mix


@dataclass(frozen=True)
class AlphaSettings:
    """The αNAS operator's knobs on NB201 (the reference values of `MutationSettings`)."""

    max_holes: int = 3
    depth_p: float = 0.5
    depth_delta_max: int = 2
    mixing_drop_p: float = 0.5
    attempts: int = 5


@dataclass(frozen=True)
class AlphaOutcome:
    child: str
    holes: tuple[int, ...]
    status: str        # the sketch fill's status of the last attempt
    attempts: int
    fallback: bool     # no attempt synthesized a child; a random mutation was used


def _perturbed(specs: Sequence[Spec], rng: np.random.Generator, s: AlphaSettings) -> list[Spec]:
    """Every context's spec with the same depth shift and the same mixing drop."""
    depth_seed = int(rng.integers(_SEED_MAX))
    drop = bool(rng.random() < s.mixing_drop_p)
    out = []
    for sp in specs:
        if sp.depth is not None:
            sp = replace(sp, depth=sp.depth.mutate(depth_seed, p=s.depth_p,
                                                   delta_max=s.depth_delta_max))
        if sp.mixing is not None and drop:
            sp = replace(sp, mixing=None)
        out.append(sp)
    return out


def _sketch(key: str, holes: tuple[int, ...]):
    from alphanas.synth.sketch import Hole, Sketch

    fixed = parse_cell(key)

    def ops_of(a: tuple[str, ...]) -> tuple[str, ...]:
        ops = list(fixed)
        for e, op in zip(holes, a, strict=True):
            ops[e] = op
        return tuple(ops)

    return Sketch(f"nb201 cell {key} holes {holes}",
                  tuple(Hole(f"edge{e}", NB201_OPS) for e in holes),
                  lambda a: _cell_graph(ops_of(a)), ident=ops_of)


def alpha_mutation(key: str, rng: np.random.Generator, s: AlphaSettings | None = None,
                   num_classes: int = 10) -> AlphaOutcome:
    """The property-guided child of `key` (see the module docstring). When no attempt yields a
    child (e.g. the perturbed depth is out of reach), the last attempt's edge set gets a random
    mutation and `fallback` says so."""
    from alphanas.synth.sketch import fill

    s = s or AlphaSettings()
    specs = cell_specs(key, num_classes)
    status, holes = "", (0,)
    for attempt in range(1, s.attempts + 1):
        holes = connected_edges(rng, s.max_holes)
        mutated = _perturbed(specs, rng, s)
        parent = tuple(NB201_OPS[int(key[e])] for e in holes)
        r = fill(_sketch(key, holes), mutated, seed=int(rng.integers(_SEED_MAX)),
                 exclude=[parent], certify=False, cache_key="nb201")
        status = r.status
        if r.solved and r.assignment is not None:
            child = list(key)
            for e, op in zip(holes, r.assignment, strict=True):
                child[e] = str(NB201_OPS.index(op))
            return AlphaOutcome("".join(child), holes, status, attempt, False)
    child = list(key)
    while "".join(child) == key:
        for e in holes:
            child[e] = str(int(rng.integers(5)))
    return AlphaOutcome("".join(child), holes, status, s.attempts, True)
