"""Skeleton + Z3 assignment -> a graph; and the independent re-verification of a program.

The program is a template: widths are sizes relative to the first input's channels (or
absolute), so the same graph fits every context. Re-verification does not trust the search:
per context it re-infers every property with `alphanas.properties.verify` (on the host graph
with the program spliced in, when the context has a host) and judges the program with the
independent oracle (`alphanas.oracle`: Flax trace, exact mixing, its own depth walk and cost
definitions), which must agree with the rules facet by facet.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from alphanas.errors import AlphanasError
from alphanas.ir.edit import splice
from alphanas.ir.graph import BlockInstance, Graph, GraphBuilder
from alphanas.properties.verify import Report, verify
from alphanas.synth.menu import Variant
from alphanas.synth.problem import Context, Problem
from alphanas.synth.solve import Assignment

__all__ = ["Recheck", "build_program", "pseudo_code", "recheck", "reverify"]

Nodes = Sequence[tuple[Variant, tuple[int, ...]]]


def build_program(ctx: Context, nodes: Nodes, a: Assignment, name: str = "synthesized") -> Graph:
    """The program in the naming of context `ctx` (its input names, its output name)."""
    b = GraphBuilder(name)
    tensors = [b.input(n, s) for n, s in ctx.inputs]
    for i, (v, ins) in enumerate(nodes):
        attrs: dict[str, Any] = dict(v.attrs)
        if v.width == "new":
            attrs["features"] = a.widths[i].attr(tensors[0])
        if v.kernel:
            attrs["kernel"] = (a.kernels[i], a.kernels[i])
        if v.bias:
            attrs["use_bias"] = a.bias[i]
        if v.heads:
            attrs["num_heads"] = a.heads[i]
        last = i == len(nodes) - 1
        tensors.append(b.op(v.kind, *(tensors[j] for j in ins),
                            name=ctx.output if last else f"{v.kind.value}{i}", **attrs))
    return b.build(tensors[-1])


def reverify(problem: Problem, nodes: Nodes, a: Assignment, deadline: float | None = None,
             ) -> tuple[bool, str, tuple[Report, ...]]:
    """(holds in every context, the first failure, the reports); see `recheck`."""
    r = recheck(problem, nodes, a, deadline)
    return r.ok, r.why, r.reports


@dataclass(frozen=True)
class Recheck:
    """The independent re-verification of one program: `ok` only when, in every context, the
    rules (`verify`, spliced into the host) and the oracle both say the spec holds and agree on
    every facet; `disagreements` are internal errors (rules vs oracle), `timed_out` says the
    deadline passed before every context was checked, `proved` that a failure is a violation
    both judges found (anything else, e.g. a program that cannot be built or spliced, proves
    nothing about the spec)."""

    ok: bool
    why: str
    reports: tuple[Report, ...]
    disagreements: tuple[str, ...] = ()
    timed_out: bool = False
    proved: bool = False  # a failure that the rules and the oracle both found (a real violation)


def recheck(problem: Problem, nodes: Nodes, a: Assignment, deadline: float | None = None) -> Recheck:
    reports: list[Report] = []
    for k, ctx in enumerate(problem.contexts):
        if deadline is not None and time.perf_counter() > deadline:
            return Recheck(False, f"context {k}: the deadline passed during re-verification",
                           tuple(reports), timed_out=True)
        try:
            g = build_program(ctx, nodes, a)
            symbolic = ctx.spec.is_symbolic  # the shape claim proved for every size in range
            if ctx.host is not None and ctx.selection is not None:
                host, new = _spliced(ctx, g)
                rep = verify(host, ctx.spec, subgraph=new, symbolic=symbolic, oracle=True)
            else:
                rep = verify(g, ctx.spec, symbolic=symbolic, oracle=True)
        except AlphanasError as e:
            return Recheck(False, f"context {k}: {e}", tuple(reports))
        cc = rep.oracle
        reports.append(rep)
        if cc.disagreements:
            return Recheck(False, f"context {k}: {cc}", tuple(reports),
                           tuple(f"context {k}: {d}" for d in cc.disagreements))
        if not rep.holds:
            return Recheck(False, f"context {k}: {rep.violations[0]}", tuple(reports),
                           proved=not cc.verdict.holds and not cc.verdict.undecided)
        if not cc.verdict.holds:
            return Recheck(False, f"context {k}: {cc.verdict}", tuple(reports))
    return Recheck(True, "", tuple(reports))


def _spliced(ctx: Context, g: Graph) -> tuple[Graph, list[str]]:
    """The host with `g` spliced in place of the selection; the new output keeps its old name."""
    assert ctx.host is not None and ctx.selection is not None
    prefix = "synth"
    while any(o.name.startswith(prefix + "/") for o in ctx.host.ops):
        prefix += "_"
    host = splice(ctx.host, ctx.selection, g, outputs=(ctx.output,), prefix=prefix)
    out = f"{prefix}/{ctx.output}"
    mapping = {out: ctx.output}
    blocks = tuple(BlockInstance(bl.template, bl.prefix, tuple(mapping.get(n, n) for n in bl.ops))
                   for bl in host.blocks)
    host = replace(host, ops=tuple(o.renamed(mapping) for o in host.ops),
                   outputs=tuple(mapping.get(o, o) for o in host.outputs), blocks=blocks)
    new = [o.name for o in host.ops if o.name.startswith(prefix + "/") or o.name == ctx.output]
    return host, new


def pseudo_code(g: Graph) -> str:
    """`y = conv(x, features=..., kernel=(3, 3))` lines, one per op."""
    lines = [f"def {g.name or 'program'}({', '.join(g.input_names)}):"]
    for o in g.ops:
        args = ", ".join([*o.inputs, *(f"{k}={_attr(v)}" for k, v in o.attrs)])
        lines.append(f"    {o.name} = {o.kind.value}({args})")
    lines.append(f"    return {', '.join(g.outputs)}")
    return "\n".join(lines)


def _attr(v: Any) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(_attr(x) for x in v) + ")"
    return repr(v) if isinstance(v, str) else str(v)
