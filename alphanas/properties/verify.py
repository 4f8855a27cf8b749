"""Verification of a model, or a sub-graph of it, against a spec.

`verify(graph, spec, subgraph=None, symbolic=False)` checks every property the spec sets and
returns a `Report`: per property, whether it holds and, on failure, where and by how much (which
output dim, which input->output depth, which mixing entry, which budget and its overshoot).

The spec's input names must be the model's inputs (or the sub-graph's: the host tensors it
reads); for a whole model, concrete spec input shapes replace the declared ones. A sub-graph's
input shapes come from its host, and a difference from the spec is reported ("inputs"). Depth
counts a whole model's inputs as the spec's [context] declares them (unlisted: non-linear); a
sub-graph's as their host producers are, and an input whose declared class differs from its
host producer's is reported ("inputs", where "context NAME"): the spec was written for another
place. An input the [context] does not list makes no claim in a host. A
symbolic spec is checked at the model's declared shapes (or, when it declares none, at the
smallest sizes in range). The spec's [search] op set and op count are checked too ("search").
With `symbolic=True` a symbolic shape claim is also proved for its whole input range by
`alphanas.properties.proof.prove_shape` (imported only then).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from alphanas.errors import AlphanasError, GraphError, ShapeError, SpecError
from alphanas.ir.graph import Graph
from alphanas.properties.base import Subject, Target, Violation
from alphanas.properties.depth import input_classes
from alphanas.properties.shape import SymbolicShapeTarget, shape_violations
from alphanas.properties.spec import SearchSpace, Spec, spec_pairs

__all__ = ["PropertyReport", "Report", "properties_of", "resolve_ops",
           "subject_for", "verify"]


@dataclass(frozen=True)
class PropertyReport:
    """The outcome for one property: holds, violations, distance (0 when it holds), a note."""

    property: str
    holds: bool
    violations: tuple[Violation, ...] = ()
    distance: float = 0.0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"property": self.property, "holds": self.holds, "distance": _json(self.distance),
                "note": self.note,
                "violations": [{"where": v.where, "expected": _json(v.expected), "got": _json(v.got),
                                "amount": _json(v.amount)} for v in self.violations]}


@dataclass(frozen=True)
class Report:
    """What `verify` found, property by property."""

    model: str
    spec: str
    subgraph: tuple[str, ...] | None
    properties: tuple[PropertyReport, ...]
    oracle: Any = None  # a `crosscheck.Crosscheck` when verified with oracle=True

    @property
    def holds(self) -> bool:
        return all(p.holds for p in self.properties)

    @property
    def violations(self) -> list[Violation]:
        return [v for p in self.properties for v in p.violations]

    def result(self, name: str) -> PropertyReport:
        for p in self.properties:
            if p.property == name:
                return p
        raise KeyError(f"the report has no property '{name}'")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain dicts, lists, strings and numbers."""
        d = {"holds": self.holds, "model": self.model, "spec": self.spec,
             "subgraph": None if self.subgraph is None else list(self.subgraph),
             "properties": [p.to_dict() for p in self.properties]}
        if self.oracle is not None:
            v = self.oracle.verdict
            d["oracle"] = {"holds": v.holds, "undecided": v.undecided, "failures": list(v.failures),
                           "agrees": self.oracle.agrees, "disagreements": list(self.oracle.disagreements)}
        return d

    def headline(self) -> str:
        what = self.model + (f" (sub-graph of {len(self.subgraph)} ops)" if self.subgraph else "")
        if self.holds:
            return f"{what} satisfies {self.spec}: all {len(self.properties)} properties hold"
        bad = sum(not p.holds for p in self.properties)
        return f"{what} violates {self.spec}: {bad} of {len(self.properties)} properties fail"

    def __str__(self) -> str:
        lines = [self.headline()]
        for p in self.properties:
            lines.append(f"  {p.property}: {'holds' if p.holds else 'VIOLATED'}"
                         + (f" ({p.note})" if p.note else ""))
            lines += [f"    {v.where}: expected {v.expected}, got {v.got} (by {_num(v.amount)})"
                      for v in p.violations]
        if self.oracle is not None:
            lines.append(f"  {self.oracle}")
        return "\n".join(lines)

    def __rich__(self) -> Any:
        """The headline, a row per property, then a row per violation."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        style = "bold green" if self.holds else "bold red"
        props = Table()
        for col in ("property", "result", "distance", "note"):
            props.add_column(col, justify="right" if col == "distance" else "left")
        for p in self.properties:
            props.add_row(Text(p.property), Text("holds", "green") if p.holds else
                          Text("violated", "bold red"), f"{p.distance:.3g}", Text(p.note))
        parts: list[Any] = [Text(self.headline(), style), props]
        if self.violations:
            viol = Table()
            for col in ("property", "where", "expected", "got", "by"):
                viol.add_column(col, justify="right" if col == "by" else "left", overflow="fold")
            for p in self.properties:
                for v in p.violations:
                    viol.add_row(*(Text(x) for x in (p.property, v.where, str(v.expected),
                                                     str(v.got), _num(v.amount))))
            parts += [Text("violations"), viol]
        if self.oracle is not None:
            parts.append(Text(str(self.oracle), "green" if self.oracle.agrees else "bold red"))
        return Group(*parts)


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:.3g}"


def _json(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, Enum):
        return v.name.lower()
    if isinstance(v, Mapping):
        return {str(k): _json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json(x) for x in v]
    return str(v)


# -- the subject ------------------------------------------------------------------------------


def resolve_ops(graph: Graph, text: str) -> list[str]:
    """Op names from `a,b,c` (op names) and/or `prefix/` items (every op under that prefix)."""
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise GraphError("expected comma-separated op names or a prefix ending in '/', got "
                         f"{text!r}")
    names: list[str] = []
    for it in items:
        if it.endswith("/"):
            found = [o.name for o in graph.ops if o.name.startswith(it)]
            if not found:
                tops = sorted({o.name.split("/")[0] + "/" for o in graph.ops if "/" in o.name})
                raise GraphError(f"no op of graph {graph.name!r} is under '{it}' "
                                 f"(top-level prefixes: {', '.join(tops) or 'none'})")
            names += found
        elif it in graph.op_map:
            names.append(it)
        else:
            close = difflib.get_close_matches(it, list(graph.op_map), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise GraphError(f"graph {graph.name!r} has no op '{it}'{hint}")
    return list(dict.fromkeys(names))


def subject_for(graph: Graph, spec: Spec, subgraph: Iterable[str] | None = None) -> Subject:
    """The subject the spec talks about: the whole model at the spec's input shapes, or the
    sub-graph `subgraph` (op names) in the context of `graph`; names are checked."""
    if subgraph is None:
        _same_names(spec, "inputs", spec.input_names, graph.input_names, "model")
        subject = Subject.whole(_with_spec_shapes(graph, spec), spec.linear_inputs())
    else:
        subject = Subject.sub(graph, list(subgraph))
        _same_names(spec, "inputs", spec.input_names, subject.inputs, "sub-graph")
    what = "model" if subgraph is None else "sub-graph"
    if spec.output_names is not None:
        _same_names(spec, "outputs", spec.output_names, subject.outputs, what)
    for section, where, (_, o) in spec_pairs(spec):
        if o not in subject.outputs:
            raise SpecError(f"{spec.source}: {section}.{where}: '{o}' is not an output of the "
                            f"{what} (outputs: {', '.join(subject.outputs)})")
    return subject


def _same_names(spec: Spec, section: str, want: Sequence[str], got: Sequence[str], what: str) -> None:
    if set(want) != set(got):
        raise SpecError(f"{spec.source}: {section}: the spec names {', '.join(want)} but the {what}'s "
                        f"{section} are {', '.join(got)}")


def _with_spec_shapes(graph: Graph, spec: Spec) -> Graph:
    shapes = spec.concrete_inputs()
    if shapes is None:
        if all(t.shape is not None for t in graph.inputs):
            return graph
        shapes = spec.example_inputs()
    g = graph.with_input_shapes([shapes[n] for n in graph.input_names])
    try:
        Subject.whole(g).analysis  # noqa: B018 - fail here, naming the spec
    except ShapeError as e:
        raise SpecError(f"{spec.source}: inputs: the model does not accept these shapes: {e}") from None
    return g


# -- verification -----------------------------------------------------------------------------


def verify(graph: Graph, spec: Spec, subgraph: Iterable[str] | None = None,
           symbolic: bool = False, oracle: bool = False) -> Report:
    """Check `graph` (or its sub-graph of the ops `subgraph`) against every property of `spec`.

    `oracle=True` also runs the independent oracle (`alphanas.oracle`, through
    `alphanas.properties.crosscheck`) and records its verdict and every facet where it and the
    rules disagree in `Report.oracle`."""
    ops = None if subgraph is None else tuple(subgraph)
    subject = subject_for(graph, spec, ops)
    reports = []
    if ops is not None and (spec.concrete_inputs() is not None or spec.context):
        reports.append(_inputs_report(subject, spec))
    reports += [_target_report(t, subject) for t in spec.targets()]
    if spec.search != SearchSpace():
        reports.append(_search_report(subject, spec.search))
    if symbolic:
        reports.append(_symbolic_report(subject, spec))
    rep = Report(graph.name or "<unnamed>", spec.source, ops, tuple(reports))
    if oracle:
        from alphanas.properties.crosscheck import crosscheck

        rep = Report(rep.model, rep.spec, rep.subgraph, rep.properties, crosscheck(subject, spec, rep))
    return rep


def _target_report(t: Target, subject: Subject) -> PropertyReport:
    violations = tuple(t.check(subject))
    note = "checked at the concrete input shapes" if isinstance(t, SymbolicShapeTarget) else ""
    return PropertyReport(t.name, not violations, violations,
                          t.distance(subject) if violations else 0.0, note)


def _inputs_report(subject: Subject, spec: Spec) -> PropertyReport:
    """The sub-graph's input shapes and declared producer classes against its host's."""
    shapes, want = subject.analysis.shapes, spec.concrete_inputs()
    v: tuple[Violation, ...] = ()
    if want is not None:
        v = tuple(x for n in subject.inputs for x in shape_violations(f"input {n}", want[n], shapes[n]))
    v += _context_violations(subject, spec)
    what = " and ".join(w for w, on in (("shapes", want is not None), ("producers", bool(spec.context)))
                        if on)
    return PropertyReport("inputs", not v, v, 1.0 if v else 0.0,
                          f"the sub-graph's input {what} in its host")


def _context_violations(subject: Subject, spec: Spec) -> tuple[Violation, ...]:
    """An input whose [context] class differs from what its host producer counts as."""
    actual = input_classes(subject)
    return tuple(Violation("inputs", f"context {n}", f'"{c.value}" (the spec\'s [context])',
                           f'"{actual[n].value}" (its producer in the host)', 1.0)
                 for n, c in spec.context if n in actual and actual[n] is not c)


def _search_report(subject: Subject, search: SearchSpace) -> PropertyReport:
    ops, out = subject.graph.ops, []
    if search.ops is not None:
        allowed = ", ".join(k.value for k in search.ops)
        out += [Violation("search", f"op {o.name}", f"one of {allowed}", o.kind.value, 1.0)
                for o in ops if o.kind not in search.ops]
    bad = len(out)
    if search.max_ops is not None and len(ops) > search.max_ops:
        out.append(Violation("search", "op count", f"<= {search.max_ops}", len(ops),
                             float(len(ops) - search.max_ops)))
    dist = bad / max(len(ops), 1)
    if search.max_ops is not None:
        dist += max(0.0, len(ops) / search.max_ops - 1)
    return PropertyReport("search", not out, tuple(out), dist if out else 0.0)


def _symbolic_report(subject: Subject, spec: Spec) -> PropertyReport:
    """Prove the symbolic shape claim for every input size in the ranges (z3, imported lazily)."""
    name = "shape (symbolic)"
    claim = spec.shape
    if not isinstance(claim, SymbolicShapeTarget) or not claim.dim_names:
        return PropertyReport(name, True, note="the spec has no dim names: nothing symbolic to prove")
    if not claim.outputs:
        return PropertyReport(name, True, note="the spec claims no output shapes: nothing to prove")
    from alphanas.properties.proof import prove_shape  # z3 loads only for --symbolic
    outs = dict(claim.outputs)
    res = prove_shape(subject.graph, dict(claim.inputs),
                      {n: (r.min, r.max, r.multiple_of) for n, r in claim.ranges},
                      [[e.to_toml() for e in outs[o]] for o in subject.outputs])
    if res.holds:
        return PropertyReport(name, True, note=res.reason)
    claim_text = "; ".join(f"{o} = ({', '.join(str(e) for e in dims)})" for o, dims in claim.outputs)
    got = str(res.counterexample) if res.counterexample is not None else res.reason
    where = "for all inputs in the ranges" if res.holds is False else "proof (unknown)"
    v = Violation("shape", where, claim_text, got, 1.0)
    return PropertyReport(name, False, (v,), 1.0, res.reason)


# -- inferred properties ----------------------------------------------------------------------


def properties_of(subject: Subject) -> dict[str, Any]:
    """Every inferred property of `subject` as JSON-ready data (mixing is None when its module
    is unavailable or cannot handle the subject; `mixing_note` then says why). `context` is
    each input's producer class as depth counts it."""
    from alphanas.properties.depth import infer_depth
    from alphanas.properties.resources import infer_resources

    shapes = subject.analysis.shapes
    r = infer_resources(subject)
    mixing, note = _mixing_of(subject)
    return {
        "inputs": {i: list(shapes[i]) for i in subject.inputs},
        "outputs": {o: list(shapes[o]) for o in subject.outputs},
        "context": {i: c.value for i, c in input_classes(subject).items()},
        "depth": [{"input": i, "output": o, "depth": d} for (i, o), d in infer_depth(subject).items()],
        "resources": {"params": r.params, "flops": r.flops, "peak_activation": r.peak_activation},
        "mixing": mixing,
        "mixing_note": note,
    }


def _mixing_of(subject: Subject) -> tuple[list[dict[str, Any]] | None, str]:
    try:
        from alphanas.properties.mixing import infer_mixing
    except ImportError as e:
        return None, f"mixing is not available: {e}"
    try:
        table = infer_mixing(subject)
    except AlphanasError as e:
        return None, f"mixing could not be inferred: {e}"
    return [{"input": i, "output": o, "matrix": [[_mix_name(v) for v in row] for row in m]}
            for (i, o), m in table.items()], ""


def _mix_name(v: Any) -> str:
    return v.name.lower() if isinstance(v, Enum) else str(v)
