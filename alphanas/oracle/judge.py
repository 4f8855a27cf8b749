"""The oracle's verdict on a program against a spec: every claim checked from `Facts`.

Only the spec's *data* is read (output shapes, depth bounds, mixing lower bounds, budgets,
allowed ops); every measured value comes from `alphanas.oracle.facts`. The semantics follow
DESIGN §4 as the spec file documents them: depth bounds apply to each listed pair and, with a
default, to every (input, output) pair, and a pair with no path violates a depth bound; mixing
entries are lower bounds; budgets are upper bounds. A sub-graph input counts as produced by its
host producer (looking through identity; a host input is non-linear) or, standalone, as the
spec's declared context says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alphanas.ir.attrs import OpKind
from alphanas.ir.graph import Graph
from alphanas.oracle.deps import OracleUnsupported
from alphanas.oracle.facts import LINEAR_OPS, TRANSPARENT_OPS, Facts, facts

if TYPE_CHECKING:
    from alphanas.properties.spec import Spec

__all__ = ["Verdict", "host_linear_inputs", "judge"]


@dataclass(frozen=True)
class Verdict:
    """`holds` is True only when every claim was decided and holds; `undecided` names what the
    oracle could not compute (then `holds` is False)."""

    holds: bool
    failures: tuple[str, ...] = ()
    undecided: str = ""

    def __str__(self) -> str:
        if self.holds:
            return "oracle: every property holds"
        if self.undecided:
            return f"oracle: undecided ({self.undecided})"
        return "oracle: " + "; ".join(self.failures)


def host_linear_inputs(host: Graph, names: Iterable[str]) -> frozenset[str]:
    """The tensors among `names` whose host producer (through identity ops) is linear."""
    ops = {op.name: op for op in host.ops}
    out = set()
    for name in names:
        t = name
        while t in ops and ops[t].kind in TRANSPARENT_OPS and ops[t].inputs:
            t = ops[t].inputs[0]
        if t in ops and ops[t].kind in LINEAR_OPS:
            out.add(name)
    return frozenset(out)


def judge(graph: Graph, spec: Spec, linear_inputs: frozenset[str] | None = None) -> Verdict:
    """Check `graph` (standalone, inputs shaped) against every claim of `spec`.

    `linear_inputs`: the inputs produced by a linear op (from the host); None takes the spec's
    declared context.
    """
    if linear_inputs is None:
        linear_inputs = spec.linear_inputs()
    try:
        f = facts(graph, frozenset(linear_inputs))
    except OracleUnsupported as e:
        return Verdict(False, (), str(e))
    bad: list[str] = []
    bad += _inputs(graph, spec)
    bad += _outputs(graph, spec, f)
    bad += _depth(graph, spec, f)
    bad += _mixing(spec, f)
    bad += _budgets(spec, f)
    bad += _search(graph, spec)
    return Verdict(not bad, tuple(bad))


def _inputs(graph: Graph, spec: Spec) -> list[str]:
    got = dict(zip(graph.input_names, graph.input_shapes, strict=True))
    out = []
    for name, dims in spec.inputs:
        if name not in got:
            out.append(f"input {name}: missing from the program")
        elif all(isinstance(d, int) for d in dims) and tuple(dims) != got[name]:
            out.append(f"input {name}: shape {got[name]}, spec {tuple(dims)}")
    return out


def _outputs(graph: Graph, spec: Spec, f: Facts) -> list[str]:
    target = spec.shape
    if target is None or not target.outputs:
        return []
    want: Mapping[str, Any] = dict(target.outputs)
    if hasattr(target, "output_shapes_at"):
        env = _bindings(graph, spec)
        want = target.output_shapes_at(env)
    out = []
    for name, dims in want.items():
        if name not in graph.outputs:
            out.append(f"output {name}: not an output of the program")
            continue
        got = f.shapes[name]
        if len(got) != len(dims) or any(d is not None and d != g for d, g in zip(dims, got, strict=False)):
            out.append(f"output {name}: shape {got}, spec {tuple(dims)}")
    out += [f"output {o}: not in the spec" for o in graph.outputs if o not in want]
    return out


def _bindings(graph: Graph, spec: Spec) -> dict[str, int]:
    got = dict(zip(graph.input_names, graph.input_shapes, strict=True))
    env: dict[str, int] = {}
    for name, dims in spec.inputs:
        for d, g in zip(dims, got.get(name) or (), strict=False):
            if isinstance(d, str):
                env[d] = g
    return env


def _depth(graph: Graph, spec: Spec, f: Facts) -> list[str]:
    t = spec.depth
    if t is None:
        return []
    listed = dict(t.pairs)
    out = []
    for i in graph.input_names:
        for o in graph.outputs:
            b = listed.get((i, o), t.default)
            if b is None:
                continue
            d = f.depth.get((i, o))
            if d is None:
                out.append(f"depth {i}->{o}: no path, spec {b}")
            elif d < b.lo or (b.hi is not None and d > b.hi):
                out.append(f"depth {i}->{o}: {d}, spec {b}")
    return out


def _mixing(spec: Spec, f: Facts) -> list[str]:
    entries = getattr(spec.mixing, "entries", ()) if spec.mixing is not None else ()
    out = []
    for (i, o), want in entries:
        got = f.mixing.get((i, o))
        for a, row in enumerate(want):
            for b, w in enumerate(row):
                g = got[a][b] if got is not None and a < len(got) and b < len(got[a]) else 0
                if int(w) > g:
                    out.append(f"mixing {i}->{o}[{a},{b}]: {g}, spec >= {int(w)}")
    return out


def _budgets(spec: Spec, f: Facts) -> list[str]:
    r = spec.resources
    if r is None:
        return []
    out = []
    for name, bound, got in (("params", r.max_params, f.params), ("flops", r.max_flops, f.flops),
                             ("peak activation", r.max_peak_activation, f.peak)):
        if bound is not None and got > bound:
            out.append(f"{name}: {got:,} > budget {int(bound):,}")
    return out


def _search(graph: Graph, spec: Spec) -> list[str]:
    s = spec.search
    out = []
    allowed: frozenset[OpKind] | None = frozenset(s.ops) if s.ops is not None else None
    if allowed is not None:
        out += [f"op {op.name}: {op.kind.value} is not among the spec's ops"
                for op in graph.ops if op.kind not in allowed]
    if s.max_ops is not None and len(graph.ops) > s.max_ops:
        out.append(f"op count {len(graph.ops)} > max_ops {s.max_ops}")
    return out
