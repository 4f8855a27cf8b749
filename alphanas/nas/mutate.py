"""Mutation of architectures: the paper's property-guided operator, a random baseline, and
fingerprints that recognise a graph up to op naming.

`mutate(graph, seed)` (DESIGN §6): with `p_duplicate` copy a shape-preserving block instance
right after itself, with `p_delete` remove one, else rewrite a block template: grow a connected
single-output sub-graph in it, read its spec (shape, depth, mixing) in *every* instance, mutate
depth and mixing the same way in each, synthesize one program for all contexts, splice it into
every instance and into the template, and re-verify each spliced sub-graph against its spec.
A graph without (consistent) blocks is one pseudo-block. `random_mutate` ignores properties.
All randomness comes from `numpy.random.default_rng(seed)`; no set order or clock decides.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from alphanas.errors import AlphanasError
from alphanas.ir.analysis import analyze
from alphanas.ir.attrs import OpKind, Size, rel
from alphanas.ir.edit import Selection, extract, prune_dead, select, splice
from alphanas.ir.graph import (
    BlockInstance,
    BlockTemplate,
    Graph,
    Op,
    TensorSpec,
    make_op,
    size_refs,
)
from alphanas.properties.base import Subject
from alphanas.properties.spec import Spec, read_off_spec, spec_to_toml

__all__ = ["Mutation", "MutationError", "MutationSettings", "fingerprint", "mutate", "random_mutate"]

_SEED_MAX = 2**63


class MutationError(AlphanasError, ValueError):
    """A graph or settings `mutate` cannot work with (names what and why)."""


# -- fingerprints -----------------------------------------------------------------------------


def fingerprint(graph: Graph) -> str:
    """sha256 over hash-consed op identities: an op's id digests its kind, its attributes (sizes
    point at ids, a size of the first input and `Size(tensor=first input)` coincide) and the ids
    of its inputs in order (any order for add and mul); inputs are ids of (position, shape).
    Names, blocks and the graph's name do not count, so graphs equal up to renaming (or swapped
    operands of a commutative op) share a fingerprint."""
    ids = {t.name: _digest(["input", k, None if t.shape is None else list(t.shape)])
           for k, t in enumerate(graph.inputs)}
    for o in graph.ops:
        first = ids[o.inputs[0]] if o.inputs else None
        attrs = [[k, _canon(v, ids, first)] for k, v in o.attrs]
        ins = [ids[i] for i in o.inputs]
        ids[o.name] = _digest([o.kind.value, attrs, sorted(ins) if o.kind in _COMMUTATIVE else ins])
    return _digest({"inputs": [ids[t.name] for t in graph.inputs],
                    "ops": sorted(ids[o.name] for o in graph.ops),
                    "outputs": [ids[n] for n in graph.outputs]})


_COMMUTATIVE = frozenset({OpKind.ADD, OpKind.MUL})


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _canon(v: Any, ids: dict[str, str], first: str | None) -> Any:
    if isinstance(v, Size):
        ref = first if v.tensor is None else ids[v.tensor]
        return {"size": [v.axis, v.mul, v.div, ref]}
    if isinstance(v, tuple):
        return [_canon(x, ids, first) for x in v]
    if isinstance(v, float):
        return {"float": repr(v)}  # 1.0 and 1 stay apart
    return v


# -- settings and results ---------------------------------------------------------------------


@dataclass(frozen=True)
class MutationSettings:
    """The operator's knobs (DESIGN §6 reference values). `ops=None` lets the synthesizer use
    every op kind it can place; `properties` are the ones read off (and kept) per context."""

    p_duplicate: float = 0.2
    p_delete: float = 0.2
    grow_continue: float = 0.75
    max_fraction: float = 0.8
    depth_p: float = 0.5
    depth_delta_max: int = 2
    mixing_drop_p: float = 0.5
    mutate_shape: bool = False
    synth_timeout_s: float = 30.0     # a safety net: the deterministic budget is the next one
    synth_max_candidates: int = 20_000
    synth_max_ops: int = 6
    retries: int = 5
    properties: tuple[str, ...] = ("shape", "depth", "mixing")
    ops: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for k in ("p_duplicate", "p_delete", "grow_continue", "depth_p", "mixing_drop_p"):
            if not 0.0 <= getattr(self, k) <= 1.0:
                raise MutationError(f"MutationSettings.{k}: expected a probability in [0, 1], "
                                    f"got {getattr(self, k)!r}")
        if self.p_duplicate + self.p_delete > 1.0:
            raise MutationError(f"MutationSettings: p_duplicate + p_delete must be <= 1, got "
                                f"{self.p_duplicate} + {self.p_delete}")
        if not 0.0 < self.max_fraction <= 1.0:
            raise MutationError(f"MutationSettings.max_fraction: expected (0, 1], got {self.max_fraction!r}")
        if self.retries < 1 or self.depth_delta_max < 0 or self.synth_timeout_s <= 0:
            raise MutationError("MutationSettings: expected retries >= 1, depth_delta_max >= 0 and "
                                f"synth_timeout_s > 0, got {self.retries}, {self.depth_delta_max}, "
                                f"{self.synth_timeout_s}")
        for i, k in enumerate(self.ops or ()):
            try:
                OpKind.parse(k)
            except AlphanasError as e:
                raise MutationError(f"MutationSettings.ops[{i}]: {e}") from None
        if "shape" not in self.properties:
            raise MutationError("MutationSettings.properties: synthesis needs 'shape', got "
                                f"{', '.join(self.properties)}")


@dataclass(frozen=True)
class Mutation:
    """One application of an operator. `child` is None when every attempt failed (`reason`
    says why). `verified`: the spliced sub-graphs were re-checked against `spec_toml`'s spec
    in every context (template mutations only)."""

    child: Graph | None
    kind: str                       # duplicate_block | delete_block | mutate_template | random:<op>
    description: str = ""
    spec_toml: str = ""             # the synthesized spec of context 0
    synth_stats: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    reason: str = ""
    verified: bool = False
    context_specs: tuple[str, ...] = ()          # every context's spec (TOML), in site order
    new_ops: tuple[tuple[str, ...], ...] = ()    # the spliced sub-graph's ops at each site

    @property
    def ok(self) -> bool:
        return self.child is not None


# -- the operator -----------------------------------------------------------------------------


def mutate(graph: Graph, seed: int, settings: MutationSettings | None = None) -> Mutation:
    """A child of `graph` (DESIGN §6), or a `Mutation` without child after `retries` attempts;
    a child with the parent's fingerprint counts as a failed attempt."""
    s = settings or MutationSettings()
    return _retrying(graph, seed, s.retries, lambda g, sub_seed: _attempt(g, sub_seed, s))


def _retrying(graph: Graph, seed: int, retries: int,
              attempt: Callable[[Graph, int], Mutation]) -> Mutation:
    _check_parent(graph)
    rng = np.random.default_rng(seed)
    parent = fingerprint(graph)
    failures: list[str] = []
    last = Mutation(None, "")
    for k in range(1, retries + 1):
        last = attempt(graph, int(rng.integers(_SEED_MAX)))
        if last.child is not None and fingerprint(last.child) == parent:
            last = replace(last, child=None, reason="identical to parent")
        if last.child is not None:
            return replace(last, attempts=k)
        failures.append(f"{last.kind}: {last.reason}")
    return replace(last, attempts=retries, verified=False,
                   reason=f"all {retries} attempts failed: " + "; ".join(failures))


def _check_parent(graph: Graph) -> None:
    if not graph.ops:
        raise MutationError(f"graph {graph.name!r} has no ops to mutate")
    try:
        analyze(graph)
    except AlphanasError as e:
        raise MutationError(f"graph {graph.name!r} must analyze before it is mutated: {e}") from None


def _attempt(graph: Graph, seed: int, s: MutationSettings) -> Mutation:
    rng = np.random.default_rng(seed)
    blocks = _preserving_blocks(graph)
    u = rng.random()
    kind = ("mutate_template" if not blocks or u >= s.p_duplicate + s.p_delete else
            "duplicate_block" if u < s.p_duplicate else "delete_block")
    try:
        if kind == "mutate_template":
            return _mutate_template(graph, rng, s)
        chosen = blocks[int(rng.integers(len(blocks)))]
        return _duplicate(graph, chosen) if kind == "duplicate_block" else _delete(graph, chosen)
    except AlphanasError as e:
        return Mutation(None, kind, reason=str(e))


# -- duplicate / delete a block ---------------------------------------------------------------


def _preserving_blocks(graph: Graph) -> list[tuple[BlockInstance, Selection]]:
    """Instances with one input and one output of the same shape."""
    shapes, out = analyze(graph).shapes, []
    for b in graph.blocks:
        try:
            sel = select(graph, b.ops)
        except AlphanasError:
            continue
        if len(sel.inputs) == 1 == len(sel.outputs) and shapes[sel.inputs[0]] == shapes[sel.outputs[0]]:
            out.append((b, sel))
    return out


def _duplicate(graph: Graph, chosen: tuple[BlockInstance, Selection]) -> Mutation:
    b, sel = chosen
    (inp,), (out,) = sel.inputs, sel.outputs
    prefix = _fresh_prefix(graph, f"{b.prefix}_copy")
    mapping = {n: f"{prefix}/{n[len(b.prefix) + 1:] if n.startswith(b.prefix + '/') else n}"
               for n in b.ops}
    copy = [graph.op_map[n].renamed({**mapping, inp: out}) for n in sel.ops]
    new_out = mapping[out]
    inside = set(b.ops)
    host = [o if o.name in inside else _reading(o, {out: new_out}) for o in graph.ops]
    outs = tuple(new_out if n == out else n for n in graph.outputs)
    at = graph.blocks.index(b) + 1
    blocks = (*graph.blocks[:at], BlockInstance(b.template, prefix, tuple(o.name for o in copy)),
              *graph.blocks[at:])
    child = Graph(graph.inputs, (*host, *copy), outs, graph.name, graph.templates, blocks)
    analyze(child)
    return Mutation(child, "duplicate_block",
                    f"duplicated block '{b.prefix}' (template '{b.template}') as '{prefix}'")


def _delete(graph: Graph, chosen: tuple[BlockInstance, Selection]) -> Mutation:
    b, sel = chosen
    (inp,), (out,) = sel.inputs, sel.outputs
    inside = set(b.ops)
    host = tuple(o if o.name in inside else _reading(o, {out: inp}) for o in graph.ops)
    outs = tuple(inp if n == out else n for n in graph.outputs)
    child = prune_dead(replace(graph, ops=host, outputs=outs))
    child = _without_unused_templates(replace(child, blocks=tuple(x for x in child.blocks if x.prefix != b.prefix)))
    analyze(child)
    return Mutation(child, "delete_block", f"deleted block '{b.prefix}' (template '{b.template}')")


def _reading(o: Op, rewire: dict[str, str]) -> Op:
    """`o` reading (and sizing from) rewired tensors, under its own name."""
    if not any(t in rewire for t in (*o.inputs, *size_refs(o))):
        return o
    r = o.renamed(rewire)
    return Op(o.name, o.kind, r.inputs, r.attrs)


def _fresh_prefix(graph: Graph, base: str) -> str:
    taken = {b.prefix for b in graph.blocks}
    name, i = base, 1
    while name in taken or any(o.name.startswith(name + "/") for o in graph.ops):
        name, i = f"{base}{i}", i + 1
    return name


def _without_unused_templates(graph: Graph) -> Graph:
    used = {b.template for b in graph.blocks}
    return replace(graph, templates=tuple(t for t in graph.templates if t.name in used))


# -- blocks and their templates ---------------------------------------------------------------


@dataclass(frozen=True)
class _Site:
    """One instance of a (pseudo-)template: template op -> host op, template input -> host tensor."""

    prefix: str | None              # None: the pseudo-block (the host itself)
    names: dict[str, str]
    binds: dict[str, str]

    def host_name(self, t: str) -> str:
        return self.names.get(t) or self.binds[t]


def _site(graph: Graph, b: BlockInstance, t: Graph) -> _Site | None:
    """How instance `b` realises template `t`; None unless it is exactly `t`, renamed."""
    names = {o.name: f"{b.prefix}/{o.name}" for o in t.ops}
    if sorted(names.values()) != sorted(b.ops) or any(n not in graph.op_map for n in names.values()):
        return None
    binds: dict[str, str] = {}
    for o in t.ops:
        h = graph.op_map[names[o.name]]
        for a, x in zip((*o.inputs, *size_refs(o)), (*h.inputs, *size_refs(h)), strict=False):
            if a in t.input_names and binds.setdefault(a, x) != x:
                return None
    if any(graph.op_map[names[o.name]] != o.renamed({**names, **binds}) for o in t.ops):
        return None
    return _Site(b.prefix, names, binds)


def _units(graph: Graph) -> list[tuple[BlockTemplate | None, list[_Site]]]:
    """Templates whose every instance matches them, with their sites; else the pseudo-block."""
    out: list[tuple[BlockTemplate | None, list[_Site]]] = []
    for tpl in graph.templates:
        sites = [_site(graph, b, tpl.graph) for b in graph.blocks if b.template == tpl.name]
        if sites and all(s is not None for s in sites):
            out.append((tpl, [s for s in sites if s is not None]))
    if not out:
        ident = {o.name: o.name for o in graph.ops}
        out.append((None, [_Site(None, ident, {n: n for n in graph.input_names})]))
    return out


# -- mutate a template ------------------------------------------------------------------------


def _mutate_template(graph: Graph, rng: np.random.Generator, s: MutationSettings) -> Mutation:
    from alphanas.synth import Problem, Settings, synthesize

    units = _units(graph)
    tpl, sites = units[int(rng.integers(len(units)))]
    t = graph if tpl is None else tpl.graph
    where = "the whole graph" if tpl is None else f"template '{tpl.name}'"
    sel_t = _grow(t, rng, s)
    if sel_t is None:
        return Mutation(None, "mutate_template", reason=f"{where}: no valid single-output sub-graph grown")
    sels = [_in_site(graph, sel_t, site) for site in sites]
    specs = _mutated_specs(graph, sels, int(rng.integers(_SEED_MAX)), s)
    settings = Settings(timeout_s=s.synth_timeout_s, max_ops=s.synth_max_ops,
                        max_candidates=s.synth_max_candidates)
    # The synthesizer re-verifies in the host, where a replaced tensor must keep its shape: a
    # shape mutation is synthesized standalone and re-verified in the child below.
    hosts = None if s.mutate_shape else [(graph, sel) for sel in sels]
    problem = Problem.of(specs, settings, hosts=hosts)
    spec0 = spec_to_toml(problem.contexts[0].spec)
    r = synthesize(problem)
    what = f"{where}: [{', '.join(sel_t.ops)}]"
    if not r.solved or r.graph is None:
        return Mutation(None, "mutate_template", what, spec0, r.stats.to_dict(),
                        reason=f"{where}: synthesis {r.status}: {r.reason}")
    desc = f"{what} -> [{', '.join(r.skeleton)}] in {len(sites)} instance(s)"
    base = Mutation(None, "mutate_template", desc, spec0, r.stats.to_dict())
    try:
        child, new = _splice_all(graph, tpl, sel_t, sites, sels, r.graph, s.mutate_shape)
        why = _reverify(child, [c.spec for c in problem.contexts], new)
    except AlphanasError as e:
        return replace(base, reason=f"{where}: splicing failed: {e}")
    if why:
        return replace(base, reason=f"{where}: re-verification failed: {why}")
    return replace(base, child=child, verified=True, new_ops=tuple(tuple(n) for n in new),
                   context_specs=tuple(spec_to_toml(c.spec) for c in problem.contexts))


def _grow(t: Graph, rng: np.random.Generator, s: MutationSettings, tries: int = 10) -> Selection | None:
    """A connected, convex, single-output selection of at most `max_fraction` of `t`'s ops,
    grown from a random op by adding a random neighbour with probability `grow_continue`."""
    order = [o.name for o in t.ops]
    index = {n: i for i, n in enumerate(order)}
    limit = max(1, int(s.max_fraction * len(order)))
    for _ in range(tries):
        chosen = [order[int(rng.integers(len(order)))]]
        while len(chosen) < limit and rng.random() < s.grow_continue:
            near = {n for c in chosen for n in (*t.op_map[c].inputs, *size_refs(t.op_map[c]),
                                                *t.consumers[c]) if n in index}
            near = sorted(near - set(chosen), key=index.__getitem__)
            if not near:
                break
            chosen.append(near[int(rng.integers(len(near)))])
        try:
            sel = select(t, chosen)
        except AlphanasError:
            continue
        if len(sel.outputs) == 1:
            return sel
    return None


def _in_site(graph: Graph, sel_t: Selection, site: _Site) -> Selection:
    """The template selection at one site, its inputs in the template's order."""
    sel = select(graph, [site.names[n] for n in sel_t.ops])
    inputs = tuple(site.host_name(n) for n in sel_t.inputs)
    outputs = tuple(site.host_name(n) for n in sel_t.outputs)
    if sorted(inputs) != sorted(sel.inputs) or outputs != sel.outputs:
        raise MutationError(f"the sub-graph [{', '.join(sel.ops)}] reads {sorted(sel.inputs)} and "
                            f"returns {list(sel.outputs)}, but its template reads {sorted(inputs)} "
                            f"and returns {list(outputs)}")
    return Selection(sel.ops, inputs, sel.outputs)


def _mutated_specs(graph: Graph, sels: Sequence[Selection], seed: int,
                   s: MutationSettings) -> list[Spec]:
    """Each context's read-off spec with the same depth/mixing(/shape) mutation applied: depth
    and shape with one seed (pairs and outputs come in template order), mixing by input index.
    The shape of a model output (e.g. the logits) is never mutated."""
    from alphanas.synth.menu import SYNTH_OPS

    rng = np.random.default_rng(seed)
    depth_seed, mix_seed, shape_seed = (int(x) for x in rng.integers(_SEED_MAX, size=3))
    search_ops = None if s.ops is None else tuple(k for k in (OpKind.parse(x) for x in s.ops)
                                                 if k in SYNTH_OPS)
    dropped: set[int] | None = None
    specs = []
    for sel in sels:
        spec = read_off_spec(Subject(extract(graph, sel), graph, sel), properties=s.properties)
        if spec.depth is not None:
            spec = replace(spec, depth=spec.depth.mutate(depth_seed, p=s.depth_p,
                                                         delta_max=s.depth_delta_max))
        if spec.mixing is not None:
            if dropped is None:
                dropped = _dropped_inputs(spec, mix_seed, s.mixing_drop_p)
            spec = replace(spec, mixing=_drop_mixing(spec, dropped))
        if s.mutate_shape and spec.shape is not None and not set(sel.outputs) & set(graph.outputs):
            spec = replace(spec, shape=spec.shape.mutate(shape_seed))
        if search_ops is not None:
            spec = replace(spec, search=replace(spec.search, ops=search_ops))
        specs.append(spec)
    return specs


def _dropped_inputs(spec: Spec, seed: int, p: float) -> set[int]:
    """Indices of the inputs whose mixing pairs `MixingTarget.mutate` drops in this spec."""
    assert spec.mixing is not None
    before = dict(spec.mixing.entries)  # type: ignore[attr-defined]
    after = dict(spec.mixing.mutate(seed, p=p).entries)  # type: ignore[attr-defined]
    names = list(spec.input_names)
    return {names.index(i) for (i, o), m in after.items() if m != before[(i, o)]}


def _drop_mixing(spec: Spec, dropped: set[int]) -> Any:
    from alphanas.properties.mixing import Mix, MixingTarget

    assert spec.mixing is not None
    names = list(spec.input_names)
    return MixingTarget(tuple(
        ((i, o), tuple((Mix.NONE,) * len(r) for r in m) if names.index(i) in dropped else m)
        for (i, o), m in spec.mixing.entries))  # type: ignore[attr-defined]


def _splice_all(graph: Graph, tpl: BlockTemplate | None, sel_t: Selection, sites: Sequence[_Site],
                sels: Sequence[Selection], prog: Graph, free_shapes: bool) -> tuple[Graph, list[list[str]]]:
    """`prog` in place of the selection at every site, and in the template; the new ops per site."""
    t = graph if tpl is None else tpl.graph
    prog = _with_fresh_names(prog, t, graph, sites)
    child, new = graph, []
    for site, sel in zip(sites, sels, strict=True):
        child, names = _replace(child, sel, prog, site.prefix, free_shapes)
        new.append(names)
    if tpl is not None:
        t2, _ = _replace(tpl.graph, sel_t, prog, "", free_shapes)
        child = replace(child, templates=tuple(BlockTemplate(x.name, t2) if x.name == tpl.name else x
                                               for x in child.templates))
    analyze(child)
    return child, new


def _with_fresh_names(prog: Graph, t: Graph, host: Graph, sites: Sequence[_Site]) -> Graph:
    """`prog` with op names free in the template and (under each site's prefix) in the host."""
    taken = set(t.op_map) | set(t.input_names)
    prefixes = [s.prefix for s in sites if s.prefix]
    mapping: dict[str, str] = {}
    for o in prog.ops:
        base = o.name.replace("/", "_")
        name, i = base, 1
        while name in taken or any(f"{p}/{name}" in host.op_map for p in prefixes):
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        mapping[o.name] = name
    return Graph(prog.inputs, tuple(o.renamed(mapping) for o in prog.ops),
                 tuple(mapping.get(n, n) for n in prog.outputs), prog.name)


def _replace(host: Graph, sel: Selection, prog: Graph, prefix: str | None,
             free_shapes: bool) -> tuple[Graph, list[str]]:
    """`splice` keeping the replaced output's name for the new output op; with `free_shapes`
    the replaced tensor may change shape (the caller re-analyzes)."""
    (old,) = sel.outputs
    base = replace(host, inputs=tuple(TensorSpec(x.name) for x in host.inputs)) if free_shapes else host
    g = splice(base, sel, prog, outputs=(old,), prefix=prefix)
    new = [o.name for o in g.ops if o.name not in base.op_map]
    new_set = set(new)
    out = next(n for n in new if n in g.outputs or any(c not in new_set for c in g.consumers[n]))
    m = {out: old}
    blocks = tuple(replace(b, ops=tuple(m.get(n, n) for n in b.ops)) for b in g.blocks)
    g = Graph(host.inputs, tuple(o.renamed(m) for o in g.ops), tuple(m.get(n, n) for n in g.outputs),
              g.name, g.templates, blocks)
    return g, [m.get(n, n) for n in new]


def _reverify(child: Graph, specs: Sequence[Spec], new: Sequence[Sequence[str]]) -> str:
    """'' when every site's new sub-graph meets its (mutated) spec in the child, else why not."""
    from alphanas.properties.verify import verify

    for k, (spec, ops) in enumerate(zip(specs, new, strict=True)):
        rep = verify(child, spec, subgraph=ops)
        if not rep.holds:
            return f"context {k}: {rep.violations[0]}"
    return ""


# -- the random baseline ----------------------------------------------------------------------

_ACTIVATIONS = (OpKind.RELU, OpKind.GELU, OpKind.SWISH, OpKind.SIGMOID, OpKind.TANH)
_INSERTS = ("relu", "batch_norm", "identity", "conv3x3")


def random_mutate(graph: Graph, seed: int, retries: int = 20) -> Mutation:
    """The property-ignoring baseline: insert an op (relu, batch_norm, identity or a same-width
    3x3 conv) after a random op, delete a shape-preserving op, swap an activation, or change a
    conv's kernel or width; retried until the child analyzes and differs from the parent.
    Blocks the edit breaks are dissolved (their instance no longer matches the template)."""
    return _retrying(graph, seed, retries, _random_attempt)


def _random_attempt(graph: Graph, seed: int) -> Mutation:
    rng = np.random.default_rng(seed)
    edits: dict[str, Callable[[Graph, np.random.Generator], tuple[Graph, str]]] = {
        "insert": _insert_op, "delete": _delete_op, "activation": _swap_activation,
        "conv": _change_conv}
    kind = list(edits)[int(rng.integers(len(edits)))]
    try:
        child, desc = edits[kind](graph, rng)
        child = _tidy_blocks(child)
        analyze(child)
    except AlphanasError as e:
        return Mutation(None, f"random:{kind}", reason=str(e))
    return Mutation(child, f"random:{kind}", desc)


def _pick(rng: np.random.Generator, items: Sequence[Any], what: str) -> Any:
    if not items:
        raise MutationError(f"no {what} to edit")
    return items[int(rng.integers(len(items)))]


def _insert_op(graph: Graph, rng: np.random.Generator) -> tuple[Graph, str]:
    shapes = analyze(graph).shapes
    x = _pick(rng, [o.name for o in graph.ops], "op")
    what = _pick(rng, [k for k in _INSERTS if k != "conv3x3" or len(shapes[x]) == 4], "insertable op")
    name, i = f"{x}_{what}", 1
    while name in graph.op_map:
        name, i = f"{x}_{what}{i}", i + 1
    new = (make_op(name, OpKind.CONV, [x], features=rel(), kernel=3) if what == "conv3x3"
           else make_op(name, what, [x]))
    host = [_reading(o, {x: name}) for o in graph.ops]
    outs = tuple(name if n == x else n for n in graph.outputs)
    return replace(graph, ops=(*host, new), outputs=outs), f"inserted {what} '{name}' after '{x}'"


def _delete_op(graph: Graph, rng: np.random.Generator) -> tuple[Graph, str]:
    shapes = analyze(graph).shapes
    cands = [o.name for o in graph.ops if len(o.inputs) == 1 and shapes[o.name] == shapes[o.inputs[0]]]
    y = _pick(rng, cands, "shape-preserving op")
    x = graph.op_map[y].inputs[0]
    host = tuple(_reading(o, {y: x}) for o in graph.ops if o.name != y)
    outs = tuple(x if n == y else n for n in graph.outputs)
    g = replace(graph, ops=host, outputs=outs,
                blocks=tuple(replace(b, ops=tuple(n for n in b.ops if n != y)) for b in graph.blocks))
    return g, f"deleted {graph.op_map[y].kind.value} '{y}'"


def _swap_activation(graph: Graph, rng: np.random.Generator) -> tuple[Graph, str]:
    y = _pick(rng, [o.name for o in graph.ops if o.kind in _ACTIVATIONS], "activation")
    old = graph.op_map[y]
    kind = _pick(rng, [k for k in _ACTIVATIONS if k is not old.kind], "activation kind")
    new = make_op(y, kind, old.inputs)
    return (replace(graph, ops=tuple(new if o.name == y else o for o in graph.ops)),
            f"swapped {old.kind.value} '{y}' for {kind.value}")


def _change_conv(graph: Graph, rng: np.random.Generator) -> tuple[Graph, str]:
    y = _pick(rng, [o.name for o in graph.ops if o.kind is OpKind.CONV], "conv")
    old = graph.op_map[y]
    attrs = old.attr_dict
    if rng.random() < 0.5:
        k = _pick(rng, [k for k in (1, 3, 5) if attrs["kernel"] not in (k, (k, k))], "kernel")
        attrs["kernel"], desc = k, f"kernel {k}x{k}"
    else:
        f = attrs["features"]
        wider = bool(rng.random() < 0.5)
        if isinstance(f, Size):
            f = replace(f, mul=f.mul * 2) if wider else (replace(f, mul=f.mul // 2) if f.mul % 2 == 0
                                                        else replace(f, div=f.div * 2))
        else:
            f = f * 2 if wider else max(1, f // 2)
        attrs["features"], desc = f, f"width {'x2' if wider else '/2'}"
    new = make_op(y, OpKind.CONV, old.inputs, **attrs)
    return replace(graph, ops=tuple(new if o.name == y else o for o in graph.ops)), f"conv '{y}': {desc}"


def _tidy_blocks(graph: Graph) -> Graph:
    """`graph` without block instances that no longer match their template."""
    templates = {t.name: t.graph for t in graph.templates}
    kept = tuple(b for b in graph.blocks if all(n in graph.op_map for n in b.ops)
                 and _site(graph, b, templates[b.template]) is not None)
    return _without_unused_templates(replace(graph, blocks=kept))
