"""Sub-graph selection and splicing: the edits the synthesizer and the NAS loop make.

`select(graph, ops)` names a connected, convex set of ops and finds its inputs (tensors it reads
from outside) and outputs (its tensors read outside or returned by the graph). `splice` replaces
a selection by another graph wired positionally to those inputs/outputs, returning a new graph
with dead ops removed; a selected op whose tensor is still read elsewhere survives.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from alphanas.errors import GraphError, ShapeError
from alphanas.ir.analysis import analyze
from alphanas.ir.graph import BlockInstance, Graph, Op, TensorSpec, size_refs

__all__ = ["Selection", "select", "splice", "extract", "prune_dead"]


@dataclass(frozen=True, slots=True)
class Selection:
    """A sub-graph in context: its ops (topological order), inputs and outputs."""

    ops: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def select(graph: Graph, ops: Iterable[str]) -> Selection:
    """The selection of `ops`; they must be connected and convex (no path leaves and re-enters)."""
    names = list(dict.fromkeys(ops))
    if not names:
        raise GraphError("a selection needs at least one op")
    for n in names:
        graph.op(n)  # raises naming the op
    chosen = set(names)
    _check_connected(graph, chosen)
    _check_convex(graph, chosen)
    order = tuple(o.name for o in graph.ops if o.name in chosen)
    inputs: list[str] = []
    for n in order:
        o = graph.op_map[n]
        for i in (*o.inputs, *size_refs(o)):
            if i not in chosen and i not in inputs:
                inputs.append(i)
    outputs = tuple(
        n for n in order
        if n in graph.outputs or any(c not in chosen for c in graph.consumers[n])
    )
    return Selection(order, tuple(inputs), outputs)


def _check_connected(graph: Graph, chosen: set[str]) -> None:
    import networkx as nx

    sub = graph.to_networkx().subgraph(chosen)
    if not nx.is_weakly_connected(sub):
        parts = sorted(sorted(c) for c in nx.weakly_connected_components(sub))
        raise GraphError(f"selection is not connected: {parts[0]} and {parts[1]} are separate")


def _check_convex(graph: Graph, chosen: set[str]) -> None:
    """No op outside the selection may lie on a path between two selected ops."""
    import networkx as nx

    g = graph.to_networkx()
    below = set().union(*(nx.descendants(g, n) for n in chosen)) - chosen
    above = set().union(*(nx.ancestors(g, n) for n in chosen)) - chosen
    between = sorted(below & above)
    if between:
        raise GraphError(f"selection is not convex: '{between[0]}' is outside it but on a path between its ops")


def extract(graph: Graph, sel: Selection) -> Graph:
    """The selection as a standalone graph: inputs named and shaped as in the host."""
    shapes = analyze(graph).shapes if all(t.shape is not None for t in graph.inputs) else {}
    ins = tuple(TensorSpec(i, shapes.get(i)) for i in sel.inputs)
    return Graph(ins, tuple(graph.op_map[n] for n in sel.ops), sel.outputs, f"{graph.name}[sub]")


def prune_dead(graph: Graph) -> Graph:
    """`graph` without ops that no output depends on."""
    live: set[str] = set(graph.outputs)
    for o in reversed(graph.ops):
        if o.name in live:
            live.update(o.inputs)
            live.update(size_refs(o))
    ops = tuple(o for o in graph.ops if o.name in live)
    if len(ops) == len(graph.ops):
        return graph
    blocks = _blocks_without(graph.blocks, {o.name for o in graph.ops} - live)
    return replace(graph, ops=ops, blocks=blocks)


def _blocks_without(blocks: Sequence[BlockInstance], dead: set[str]) -> tuple[BlockInstance, ...]:
    out = []
    for b in blocks:
        kept = tuple(n for n in b.ops if n not in dead)
        if kept:
            out.append(replace(b, ops=kept))
    return tuple(out)


def splice(graph: Graph, sel: Selection, replacement: Graph, outputs: Sequence[str] | None = None,
           prefix: str | None = None) -> Graph:
    """Replace `sel` in `graph` by `replacement`.

    The replacement's inputs bind positionally to `sel.inputs`; its outputs replace `outputs`
    (default `sel.outputs`) positionally. Every replaced tensor must keep its shape. Ops of the
    selection that are still read elsewhere are kept; dead ops are removed.
    """
    targets = tuple(sel.outputs if outputs is None else outputs)
    where = f"splicing into graph {graph.name!r}"
    if len(replacement.inputs) != len(sel.inputs):
        raise GraphError(f"{where}: the replacement takes {len(replacement.inputs)} inputs but the "
                         f"selection reads {len(sel.inputs)} ({', '.join(sel.inputs)})")
    if len(replacement.outputs) != len(targets):
        raise GraphError(f"{where}: the replacement has {len(replacement.outputs)} outputs but "
                         f"{len(targets)} tensors are replaced ({', '.join(targets)})")
    if len(set(targets)) != len(targets):
        raise GraphError(f"{where}: the replaced tensors ({', '.join(targets)}) repeat a name")
    bad = [t for t in targets if t not in sel.ops]
    if bad:
        raise GraphError(f"{where}: '{bad[0]}' is not an op of the selection")
    mapping = _fresh_names(graph, sel, replacement, prefix)
    mapping.update(zip(replacement.input_names, sel.inputs, strict=False))
    new_ops = [o.renamed(mapping) for o in replacement.ops]
    rewire = {t: mapping[r] for t, r in zip(targets, replacement.outputs, strict=False)}
    host = [_rewired(o, rewire) for o in graph.ops if o.name not in rewire]
    outs = tuple(rewire.get(o, o) for o in graph.outputs)
    blocks = _blocks_with(graph, sel, [o.name for o in new_ops], set(rewire))
    g = Graph(graph.inputs, tuple(host + new_ops), outs, graph.name, graph.templates, blocks)
    g = prune_dead(g)
    if all(t.shape is not None for t in graph.inputs):
        _check_shapes(graph, sel, replacement, rewire, where)
        analyze(g)
    return g


def _rewired(o: Op, rewire: dict[str, str]) -> Op:
    if not any(i in rewire for i in o.inputs) and not any(r in rewire for r in size_refs(o)):
        return o
    renamed = o.renamed(rewire)
    return Op(o.name, o.kind, renamed.inputs, renamed.attrs)


def _fresh_names(graph: Graph, sel: Selection, repl: Graph, prefix: str | None) -> dict[str, str]:
    if prefix is None:
        parts = [n.split("/")[:-1] for n in sel.ops]
        common: list[str] = []
        for segs in zip(*parts, strict=False):
            if len(set(segs)) != 1:
                break
            common.append(segs[0])
        prefix = "/".join(common)
    taken = set(graph.input_names) | {o.name for o in graph.ops}
    mapping: dict[str, str] = {}
    for o in repl.ops:
        base = f"{prefix}/{o.name}" if prefix else o.name
        name, i = base, 1
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        mapping[o.name] = name
    return mapping


def _blocks_with(graph: Graph, sel: Selection, new: list[str],
                 removed: set[str]) -> tuple[BlockInstance, ...]:
    """Blocks after the splice: replaced ops leave their blocks, and new ops join the block
    that held every selected op."""
    out = []
    for b in graph.blocks:
        ops = tuple(n for n in b.ops if n not in removed)
        if set(sel.ops) <= set(b.ops):
            ops = ops + tuple(new)
        if ops:
            out.append(replace(b, ops=ops))
    return tuple(out)


def _check_shapes(old: Graph, sel: Selection, repl: Graph, rewire: dict[str, str], where: str) -> None:
    """Each replacement output, analyzed on the selection's input shapes, keeps its tensor's shape
    (checked before the host is re-analyzed, so a mismatch names both tensors)."""
    before = analyze(old).shapes
    got = analyze(repl, [before[i] for i in sel.inputs]).output_shapes
    for (t, r), s in zip(rewire.items(), got, strict=True):
        if before[t] != s:
            raise ShapeError(f"{where}: replacement output '{r}' has shape {s} but the "
                             f"replaced tensor '{t}' has shape {before[t]}")
