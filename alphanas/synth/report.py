"""Rendering of a synthesis `Result`: rich renderables for the terminal and a JSON document.

`render(result)` gives the outcome line, then (when solved) the program as a table of ops with
their concrete attributes, output shapes and costs, its pseudo-code and the re-verification
report of every context, and finally the search counters. `to_json(result)` gives the same as
plain data: `{status, reason, stats, program, pseudo_code, verification}`. `progress_line(stats,
elapsed_s)` is the one-line summary a spinner shows while the search runs.
Rich is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from alphanas.ir.analysis import Analysis
    from alphanas.ir.graph import Graph, Op
    from alphanas.synth.search import Result, Stats

__all__ = ["program_table", "progress_line", "render", "stats_table", "to_json"]

_STATUS_STYLE = {"solved": "bold green", "unsat": "bold red", "unknown": "bold yellow",
                 "timeout": "bold yellow"}


def to_json(result: Result) -> dict[str, Any]:
    """The result as JSON-ready data; `program`, `pseudo_code` are None unless solved."""
    from alphanas.ir.serialize import to_json as graph_json
    from alphanas.synth.build import pseudo_code

    g = result.graph
    return {"status": result.status, "reason": result.reason, "stats": result.stats.to_dict(),
            "program": None if g is None else graph_json(g),
            "pseudo_code": None if g is None else pseudo_code(g),
            "verification": [r.to_dict() for r in result.reports]}


def render(result: Result) -> RenderableType:
    """Outcome, program table, pseudo-code, verification reports and stats, as one group."""
    from rich.console import Group
    from rich.text import Text

    from alphanas.ir.analysis import analyze
    from alphanas.synth.build import pseudo_code

    head = Text(f"{result.status}: ", _STATUS_STYLE.get(result.status, "bold"))
    head.append(result.reason, "default")
    parts: list[RenderableType] = [head]
    if result.graph is not None:
        g = result.graph
        a = analyze(g)
        parts += [program_table(g, a), Text(_totals(g, a)), Text("pseudo-code", "bold"),
                  Text(pseudo_code(g))]
        parts += [Text("verification", "bold"), *result.reports]
    parts.append(stats_table(result.stats))
    return Group(*parts)


def program_table(g: Graph, a: Analysis) -> Table:
    """One row per op: name, kind, inputs, non-default attributes (resolved), shape, costs."""
    from rich.table import Table

    table = Table(title=f"program {g.name or '<unnamed>'}")
    for col in ("name", "kind", "inputs", "attrs", "output shape", "params", "FLOPs"):
        table.add_column(col, justify="right" if col in ("params", "FLOPs") else "left",
                         overflow="fold")
    for op in g.ops:
        info = a.ops[op.name]
        table.add_row(op.name, op.kind.value, ", ".join(op.inputs), _attrs_text(op, info.attrs),
                      _shape(info.shape), f"{info.params:,}", f"{info.flops:,}")
    return table


def _attrs_text(op: Op, resolved: Mapping[str, Any]) -> str:
    """`k=v` for each attribute not at its default, with relative sizes resolved."""
    from alphanas.ir.registry import opdef

    d = opdef(op.kind)
    shown = []
    for k, v in op.attrs:
        spec = d.spec(k)
        if spec is not None and _is_default(v, spec.default):
            continue
        shown.append(f"{k}={_value(resolved.get(k, v))}")
    return ", ".join(shown)


def _is_default(v: Any, default: Any) -> bool:
    if isinstance(v, tuple) and not isinstance(default, tuple):
        return len(v) > 0 and all(x == default for x in v)
    return bool(v == default)


def _value(v: Any) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(_value(x) for x in v) + ")"
    return str(v)


def _shape(shape: Sequence[Any]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _totals(g: Graph, a: Analysis) -> str:
    ins = ", ".join(f"{t.name} {_shape(a.shapes[t.name])}" for t in g.inputs)
    outs = ", ".join(f"{o} {_shape(a.shapes[o])}" for o in g.outputs)
    return (f"{len(g.ops)} ops: {ins} -> {outs}; {a.params:,} params, {a.flops:,} FLOPs, "
            f"peak activation {a.peak_activation:,} elements")


def stats_table(s: Stats) -> Table:
    """The search counters, one row each; pruned and failed counts broken down by rule."""
    from rich.table import Table

    table = Table(title="search")
    table.add_column("counter")
    table.add_column("value", justify="right")
    for name, value in _stat_rows(s):
        table.add_row(name, value)
    return table


def _stat_rows(s: Stats) -> list[tuple[str, str]]:
    rows = [("candidates generated", f"{s.generated:,}"),
            ("pruned", f"{sum(s.pruned.values()):,}")]
    rows += [(f"  {rule}", f"{n:,}") for rule, n in sorted(s.pruned.items())]
    rows += [("deduplicated", f"{s.deduplicated:,}"),
             ("complete skeletons", f"{s.complete:,}")]
    rows += [(f"  rejected: {why}", f"{n:,}") for why, n in sorted(s.failed.items())]
    rows += [("SMT calls", f"{s.smt_calls:,}"),
             ("SMT time", f"{s.smt_time_s:.3f} s"),
             ("SMT undecided", f"{s.smt_unknown:,}"),
             ("exact mixing checks", f"{s.mixing_checks:,}"),
             ("verified (rules and oracle)", f"{s.verified:,}"),
             ("failed re-verification", f"{s.verify_failed:,}"),
             ("skeletons left undecided", f"{s.incomplete:,}"),
             ("rules/oracle disagreements", f"{s.disagreements:,}"),
             ("largest size searched", f"{s.size} ops"),
             ("wall time", f"{s.wall_s:.3f} s"),
             ("exit", s.exit)]
    return rows


def progress_line(s: Stats, elapsed_s: float) -> str:
    """A one-line summary of a running search (the stats' own wall time is set at the end)."""
    return (f"synthesizing: {elapsed_s:.0f} s, size {s.size}, {s.generated:,} generated, "
            f"{sum(s.pruned.values()):,} pruned, {s.complete:,} complete, "
            f"{s.smt_calls:,} SMT calls, {s.verified:,} verified")
