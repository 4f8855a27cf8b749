"""Skeleton + Z3 assignment -> a graph; and the independent re-verification of a program.

The program is a template: widths are sizes relative to the first input's channels (or
absolute), so the same graph fits every context. Re-verification does not trust the search:
per context it re-infers every property with `alphanas.properties.verify` (on the host graph
with the program spliced in, when the context has a host) and, optionally, checks the Flax
lowering's `jax.eval_shape` against the rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from alphanas.errors import AlphanasError
from alphanas.ir.analysis import analyze
from alphanas.ir.edit import splice
from alphanas.ir.graph import BlockInstance, Graph, GraphBuilder
from alphanas.properties.verify import Report, verify
from alphanas.synth.menu import Variant
from alphanas.synth.problem import Context, Problem
from alphanas.synth.solve import Assignment

__all__ = ["build_program", "pseudo_code", "reverify"]

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


def reverify(problem: Problem, nodes: Nodes, a: Assignment) -> tuple[bool, str, tuple[Report, ...]]:
    """(holds in every context, the first failure, the reports)."""
    reports = []
    for k, ctx in enumerate(problem.contexts):
        try:
            g = build_program(ctx, nodes, a)
            if ctx.host is not None and ctx.selection is not None:
                host, new = _spliced(ctx, g)
                rep = verify(host, ctx.spec, subgraph=new)
            else:
                rep = verify(g, ctx.spec)
            if problem.settings.flax_check:
                _flax_agrees(g)
        except AlphanasError as e:
            return False, f"context {k}: {e}", tuple(reports)
        reports.append(rep)
        if not rep.holds:
            return False, f"context {k}: {rep.violations[0]}", tuple(reports)
    return True, "", tuple(reports)


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


def _flax_agrees(g: Graph) -> None:
    """One `jax.eval_shape` trace of Flax's init_with_output (init and apply at once)."""
    import jax
    import jax.numpy as jnp

    from alphanas.ir.lower import lower

    m = lower(g)
    xs = [jax.ShapeDtypeStruct(s, jnp.float32) for s in g.input_shapes]
    out, _ = jax.eval_shape(lambda key, *x: m.init_with_output(key, *x), jax.random.PRNGKey(0), *xs)
    got = tuple(tuple(x.shape) for x in (out if isinstance(out, (list, tuple)) else [out]))
    want = analyze(g).output_shapes
    if got != tuple(want):
        raise AlphanasError(f"jax.eval_shape of the Flax lowering gives {got}, the rules {want}")


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
