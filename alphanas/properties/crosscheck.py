"""The analytic verdict beside the independent oracle's (`alphanas.oracle`), facet by facet.

`crosscheck(subject, spec, report)` recomputes with the oracle what `verify` computed with the
rules: every tensor's shape (rules vs the Flax trace), params (rules vs the Flax variables),
FLOPs and peak activation (rules vs the oracle's re-implementation of their definitions), depth
(the DP vs the oracle's path walk) and the verdict (`verify`'s report vs `oracle.judge`).
Mixing is the definition evaluated exactly by the oracle's pull-back on both sides (checked
against the Jacobian definition in the tests), so only its verdict is compared. Any difference
is a disagreement: an internal error of one side, never silently skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from alphanas.ir.attrs import DepthClass
from alphanas.oracle import OracleUnsupported, Verdict, facts, host_linear_inputs, judge
from alphanas.properties.base import Subject
from alphanas.properties.depth import infer_depth, input_classes
from alphanas.properties.resources import peak_live_activation
from alphanas.properties.spec import Spec
from alphanas.properties.verify import Report

__all__ = ["Crosscheck", "crosscheck", "oracle_linear_inputs"]


@dataclass(frozen=True)
class Crosscheck:
    """The oracle's verdict and every facet where it and the rules differ."""

    verdict: Verdict
    disagreements: tuple[str, ...]

    @property
    def agrees(self) -> bool:
        return not self.disagreements

    def __str__(self) -> str:
        if self.agrees:
            return f"{self.verdict} (the oracle agrees with the rules)"
        return f"{self.verdict}; DISAGREES with the rules: " + "; ".join(self.disagreements)


def oracle_linear_inputs(subject: Subject, spec: Spec | None = None) -> frozenset[str]:
    """The subject's linear-produced inputs as the oracle sees them: from the host, else the
    spec's declared context."""
    if subject.host is not None:
        return host_linear_inputs(subject.host, subject.inputs)
    return spec.linear_inputs() if spec is not None else frozenset()


def crosscheck(subject: Subject, spec: Spec, report: Report | None = None) -> Crosscheck:
    """Every facet of `subject` by the rules and by the oracle; `report`: `verify`'s verdict."""
    g = subject.graph
    linear = oracle_linear_inputs(subject, spec)
    verdict = judge(g, spec, linear)
    try:
        f = facts(g, linear)
    except OracleUnsupported as e:
        return Crosscheck(verdict, (f"oracle: {e}",) if report is not None else ())
    a = subject.analysis
    out = [f"shape of {t}: rules {a.shapes[t]}, Flax {f.shapes[t]}"
           for t in a.shapes if t in f.shapes and tuple(a.shapes[t]) != f.shapes[t]]
    for name, rules, oracle in (("params", a.params, f.params), ("flops", a.flops, f.flops),
                                ("peak activation", peak_live_activation(g, a.shapes), f.peak)):
        if rules != oracle:
            out.append(f"{name}: rules {rules:,}, oracle {oracle:,}")
    ruled_linear = frozenset(n for n, c in input_classes(subject).items() if c is DepthClass.LINEAR)
    if ruled_linear != linear:
        out.append(f"linear-produced inputs: rules {sorted(ruled_linear)}, oracle {sorted(linear)}")
    depth = infer_depth(subject)
    if dict(depth) != dict(f.depth):
        out.append(f"depth: rules {dict(depth)}, oracle {dict(f.depth)}")
    if report is not None and report.holds != verdict.holds and not verdict.undecided:
        out.append(f"verdict: rules {'hold' if report.holds else 'violated'}, {verdict}")
    return Crosscheck(verdict, tuple(out))
