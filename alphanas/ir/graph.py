"""Immutable DAGs of ops with named inputs and outputs, block templates, and a builder.

Every op produces one tensor named after the op. A `Graph` validates its structure when built
(duplicate names, dangling references, arity, cycles) and stores its ops in a deterministic
topological order; shapes are checked by `alphanas.ir.analysis.analyze`.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from alphanas.errors import GraphError
from alphanas.ir.attrs import OpKind, Shape, Size
from alphanas.ir.registry import opdef

__all__ = ["BlockInstance", "BlockTemplate", "Graph", "GraphBuilder", "Op", "TensorSpec", "make_op"]


@dataclass(frozen=True, slots=True)
class Op:
    """One op: its output tensor is called `name`. Build with `make_op` to validate attrs."""

    name: str
    kind: OpKind
    inputs: tuple[str, ...]
    attrs: tuple[tuple[str, Any], ...] = ()

    def attr(self, key: str) -> Any:
        for k, v in self.attrs:
            if k == key:
                return v
        raise KeyError(f"{self.kind.value} '{self.name}' has no attribute '{key}'")

    @property
    def attr_dict(self) -> dict[str, Any]:
        return dict(self.attrs)

    def renamed(self, mapping: Mapping[str, str]) -> Op:
        """This op with its name, inputs and Size tensor references renamed via `mapping`."""
        return Op(
            mapping.get(self.name, self.name),
            self.kind,
            tuple(mapping.get(i, i) for i in self.inputs),
            tuple((k, _rename_value(v, mapping)) for k, v in self.attrs),
        )


def _rename_value(v: Any, mapping: Mapping[str, str]) -> Any:
    if isinstance(v, Size) and v.tensor is not None:
        return replace(v, tensor=mapping.get(v.tensor, v.tensor))
    if isinstance(v, tuple):
        return tuple(_rename_value(x, mapping) for x in v)
    return v


def make_op(name: str, kind: OpKind | str, inputs: Sequence[str] = (), **attrs: Any) -> Op:
    """A validated op: known kind, schema-checked attributes with defaults filled in."""
    if isinstance(kind, str):
        kind = OpKind.parse(kind)
    if not isinstance(name, str) or not name:
        raise GraphError(f"op names must be non-empty strings, got {name!r}")
    where = f"{kind.value} '{name}'"
    d = opdef(kind)
    if not d.check_arity(len(inputs)):
        raise GraphError(f"{where}: takes {d.arity_text()} inputs, got {len(inputs)}")
    return Op(name, kind, tuple(inputs), d.check_attrs(attrs, where))


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A named graph input; `shape` is None in block templates (taken from context)."""

    name: str
    shape: Shape | None = None


@dataclass(frozen=True, slots=True)
class BlockTemplate:
    """A named sub-graph that may be instantiated at several positions."""

    name: str
    graph: Graph


@dataclass(frozen=True, slots=True)
class BlockInstance:
    """Where a template sits in a host graph: the host op names it produced."""

    template: str
    prefix: str
    ops: tuple[str, ...]


@dataclass(frozen=True)
class Graph:
    """An immutable DAG; `ops` are kept in a deterministic topological order."""

    inputs: tuple[TensorSpec, ...]
    ops: tuple[Op, ...]
    outputs: tuple[str, ...]
    name: str = ""
    templates: tuple[BlockTemplate, ...] = ()
    blocks: tuple[BlockInstance, ...] = ()
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "ops", _validated_topo(self))
        object.__setattr__(self, "templates", tuple(self.templates))
        object.__setattr__(self, "blocks", tuple(self.blocks))
        _check_blocks(self)

    def __hash__(self) -> int:
        if not self._hash:
            h = hash((self.inputs, self.ops, self.outputs, self.name, self.templates, self.blocks))
            object.__setattr__(self, "_hash", h or 1)
        return self._hash

    # -- lookups ----------------------------------------------------------------------------

    @cached_property
    def op_map(self) -> dict[str, Op]:
        return {o.name: o for o in self.ops}

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def input_shapes(self) -> tuple[Shape | None, ...]:
        return tuple(t.shape for t in self.inputs)

    def op(self, name: str) -> Op:
        try:
            return self.op_map[name]
        except KeyError:
            raise GraphError(f"graph {self.name or '<unnamed>'} has no op '{name}'") from None

    @cached_property
    def consumers(self) -> dict[str, tuple[str, ...]]:
        """Tensor name -> names of the ops that read it (in topological order)."""
        out: dict[str, list[str]] = {t.name: [] for t in self.inputs}
        for o in self.ops:
            out[o.name] = []
        for o in self.ops:
            for i in dict.fromkeys((*o.inputs, *size_refs(o))):
                out[i].append(o.name)
        return {k: tuple(v) for k, v in out.items()}

    def to_networkx(self) -> Any:
        """A `networkx.DiGraph` over tensor names (inputs and ops), edges producer -> consumer."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(self.input_names)
        for o in self.ops:
            g.add_node(o.name, kind=o.kind.value)
            for i in (*o.inputs, *size_refs(o)):
                g.add_edge(i, o.name)
        return g

    def template(self, name: str) -> BlockTemplate:
        for t in self.templates:
            if t.name == name:
                return t
        raise GraphError(f"graph {self.name or '<unnamed>'} has no block template '{name}'")

    def with_input_shapes(self, shapes: Sequence[Shape]) -> Graph:
        """The same graph with new declared input shapes."""
        if len(shapes) != len(self.inputs):
            raise GraphError(f"graph has {len(self.inputs)} inputs, got {len(shapes)} shapes")
        ins = tuple(TensorSpec(t.name, tuple(s)) for t, s in zip(self.inputs, shapes, strict=True))
        return replace(self, inputs=ins)

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)


def size_refs(o: Op) -> list[str]:
    refs: list[str] = []
    for _, v in o.attrs:
        for x in v if isinstance(v, tuple) else (v,):
            if isinstance(x, Size) and x.tensor is not None and x.tensor not in refs:
                refs.append(x.tensor)
    return refs


def _is_dim(d: Any) -> bool:
    return isinstance(d, int) and not isinstance(d, bool) and d >= 1


def _validated_topo(g: Graph) -> tuple[Op, ...]:
    where = f"graph {g.name!r}" if g.name else "graph"
    seen: set[str] = set()
    for t in g.inputs:
        if not isinstance(t, TensorSpec):
            raise GraphError(f"{where}: inputs must be TensorSpec, got {t!r}")
        if t.name in seen:
            raise GraphError(f"{where}: duplicate name '{t.name}'")
        if t.shape is not None and not (
            isinstance(t.shape, tuple) and all(_is_dim(d) for d in t.shape)
        ):
            raise GraphError(f"{where}: input '{t.name}' has shape {t.shape!r}; expected a tuple of positive ints")
        seen.add(t.name)
    for o in g.ops:
        if not isinstance(o, Op) or not isinstance(o.kind, OpKind):
            raise GraphError(f"{where}: ops must be Op with an OpKind kind (use make_op), got {o!r}")
        if o.name in seen:
            raise GraphError(f"{where}: duplicate name '{o.name}'")
        seen.add(o.name)
        d = opdef(o.kind)
        if not d.check_arity(len(o.inputs)):
            raise GraphError(f"{o.kind.value} '{o.name}': takes {d.arity_text()} inputs, got {len(o.inputs)}")
    for o in g.ops:
        for i in (*o.inputs, *size_refs(o)):
            if i not in seen:
                raise GraphError(f"{o.kind.value} '{o.name}': input '{i}' is not an input or op of the {where}")
    if not g.outputs:
        raise GraphError(f"{where}: needs at least one output")
    for out in g.outputs:
        if out not in seen:
            raise GraphError(f"{where}: output '{out}' is not an input or op of the graph")
    return _topo_order(g, where)


def _topo_order(g: Graph, where: str) -> tuple[Op, ...]:
    """Kahn's algorithm, ties broken by the given order, so a sorted graph keeps its order."""
    index = {o.name: i for i, o in enumerate(g.ops)}
    indeg = {o.name: 0 for o in g.ops}
    succ: dict[str, list[str]] = {n: [] for n in (*g.input_names, *index)}
    for o in g.ops:
        for i in dict.fromkeys((*o.inputs, *size_refs(o))):
            succ[i].append(o.name)
            if i in index:
                indeg[o.name] += 1
    heap = [index[n] for n, d in indeg.items() if d == 0]
    heapq.heapify(heap)
    order: list[Op] = []
    while heap:
        o = g.ops[heapq.heappop(heap)]
        order.append(o)
        for s in succ[o.name]:
            indeg[s] -= 1
            if indeg[s] == 0:
                heapq.heappush(heap, index[s])
    if len(order) != len(g.ops):
        import networkx as nx

        stuck = [o.name for o in g.ops if indeg[o.name] > 0]
        cyc = nx.find_cycle(g.to_networkx().subgraph(stuck))
        path = " -> ".join([u for u, _ in cyc] + [cyc[0][0]])
        raise GraphError(f"{where}: has a cycle: {path}")
    return tuple(order)


def _check_blocks(g: Graph) -> None:
    names = {t.name for t in g.templates}
    if len(names) != len(g.templates):
        raise GraphError("duplicate block template names")
    for b in g.blocks:
        if b.template not in names:
            raise GraphError(f"block '{b.prefix}' uses unknown template '{b.template}'")
        missing = [n for n in b.ops if n not in g.op_map]
        if missing:
            raise GraphError(f"block '{b.prefix}' lists op '{missing[0]}' that is not in the graph")


class GraphBuilder:
    """Imperative construction of a `Graph`: `x = b.op(OpKind.RELU, x)`.

    Names are scoped (`with b.scope("stage1"):`) and auto-numbered when not given.
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._inputs: list[TensorSpec] = []
        self._ops: list[Op] = []
        self._names: set[str] = set()
        self._scope: list[str] = []
        self._templates: dict[str, BlockTemplate] = {}
        self._blocks: list[BlockInstance] = []

    def _fresh(self, base: str) -> str:
        full = "/".join([*self._scope, base])
        name, i = full, 1
        while name in self._names:
            name, i = f"{full}_{i}", i + 1
        self._names.add(name)
        return name

    @contextlib.contextmanager
    def scope(self, prefix: str) -> Iterator[None]:
        self._scope.append(prefix)
        try:
            yield
        finally:
            self._scope.pop()

    def input(self, name: str, shape: Sequence[int] | None = None) -> str:
        if name in self._names:
            raise GraphError(f"duplicate name '{name}'")
        self._names.add(name)
        self._inputs.append(TensorSpec(name, None if shape is None else tuple(shape)))
        return name

    def op(self, kind: OpKind | str, *inputs: str, name: str | None = None, **attrs: Any) -> str:
        """Append an op and return the name of its output tensor."""
        k = OpKind.parse(kind) if isinstance(kind, str) else kind
        o = make_op(self._fresh(name or k.value), k, inputs, **attrs)
        self._ops.append(o)
        return o.name

    def block(self, template: BlockTemplate, inputs: Sequence[str], prefix: str) -> list[str]:
        """Instantiate `template` on `inputs`; returns the names of its outputs."""
        t = template.graph
        if len(inputs) != len(t.inputs):
            raise GraphError(f"block template '{template.name}' takes {len(t.inputs)} inputs, got {len(inputs)}")
        known = self._templates.get(template.name)
        if known is not None and known != template:
            raise GraphError(f"two different block templates are named '{template.name}'")
        self._templates[template.name] = template
        full = "/".join([*self._scope, prefix])
        mapping = dict(zip(t.input_names, inputs, strict=True))
        for o in t.ops:
            if f"{full}/{o.name}" in self._names:
                raise GraphError(f"duplicate name '{full}/{o.name}'")
            mapping[o.name] = f"{full}/{o.name}"
        new = [o.renamed(mapping) for o in t.ops]
        self._names.update(o.name for o in new)
        self._ops.extend(new)
        self._blocks.append(BlockInstance(template.name, full, tuple(o.name for o in new)))
        return [mapping[n] for n in t.outputs]

    def build(self, outputs: Sequence[str] | str) -> Graph:
        outs = (outputs,) if isinstance(outputs, str) else tuple(outputs)
        return Graph(tuple(self._inputs), tuple(self._ops), outs, self.name,
                     tuple(self._templates.values()), tuple(self._blocks))


def template(name: str, build: Any, n_inputs: int = 1) -> BlockTemplate:
    """A block template from `build(builder, *input_names) -> output name(s)`."""
    b = GraphBuilder(name)
    ins = [b.input(f"in{i}" if n_inputs > 1 else "input") for i in range(n_inputs)]
    outs = build(b, *ins)
    return BlockTemplate(name, b.build(outs))
