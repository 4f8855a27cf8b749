"""Shape and cost inference from the per-op rules (no tracing), cached per (graph, shapes).

`analyze(graph)` resolves every relative size against actual shapes, applies each op's
normalization and shape rule in topological order, and sums params and FLOPs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from alphanas.errors import AlphanasError, GraphError, ShapeError
from alphanas.ir.attrs import Shape, Size
from alphanas.ir.graph import Graph, Op
from alphanas.ir.registry import opdef

__all__ = ["Analysis", "OpInfo", "analyze", "resolve_attrs", "infer_op"]


@dataclass(frozen=True)
class OpInfo:
    """What the rules say about one op in context."""

    attrs: Mapping[str, Any]
    in_shapes: tuple[Shape, ...]
    shape: Shape
    params: int
    flops: int


@dataclass(frozen=True)
class Analysis:
    """Shapes of every tensor and per-op costs of a graph for given input shapes."""

    graph: Graph
    shapes: Mapping[str, Shape]
    ops: Mapping[str, OpInfo]

    @property
    def params(self) -> int:
        return sum(i.params for i in self.ops.values())

    @property
    def flops(self) -> int:
        return sum(i.flops for i in self.ops.values())

    @property
    def output_shapes(self) -> tuple[Shape, ...]:
        return tuple(self.shapes[o] for o in self.graph.outputs)

    @property
    def peak_activation(self) -> int:
        """Largest single activation tensor, in elements."""
        from math import prod

        return max((prod(s) for s in self.shapes.values()), default=0)


def _resolve(v: Any, first: Shape | None, shapes: Mapping[str, Shape], where: str) -> Any:
    if isinstance(v, Size):
        if v.tensor is not None:
            if v.tensor not in shapes:
                raise GraphError(f"{where}: size refers to unknown tensor '{v.tensor}'")
            return v.resolve(shapes[v.tensor], where)
        if first is None:
            raise ShapeError(f"{where}: relative size {v} needs an input to be relative to")
        return v.resolve(first, where)
    if isinstance(v, tuple):
        return tuple(_resolve(x, first, shapes, where) for x in v)
    return v


def resolve_attrs(op: Op, in_shapes: Sequence[Shape], shapes: Mapping[str, Shape]) -> dict[str, Any]:
    """Concrete attributes of `op` given its input shapes (and other tensors' shapes)."""
    where = f"{op.kind.value} '{op.name}'"
    first = in_shapes[0] if in_shapes else None
    a = {k: _resolve(v, first, shapes, where) for k, v in op.attrs}
    try:
        return opdef(op.kind).norm(a, list(in_shapes))
    except ShapeError as e:
        raise ShapeError(f"{where}: {e}") from None


def infer_op(op: Op, in_shapes: Sequence[Shape], shapes: Mapping[str, Shape]) -> OpInfo:
    """Resolved attributes, output shape and costs of one op."""
    d = opdef(op.kind)
    ins = [tuple(s) for s in in_shapes]
    a = resolve_attrs(op, ins, shapes)
    try:
        out = tuple(int(x) for x in d.shape(a, ins))
    except ShapeError as e:
        got = ", ".join(str(s) for s in ins) or "no inputs"
        raise ShapeError(f"{op.kind.value} '{op.name}': {e} (input shapes: {got})") from None
    return OpInfo(a, tuple(ins), out, d.params(a, ins, out), d.flops(a, ins, out))


def analyze(graph: Graph, input_shapes: Sequence[Shape] | None = None) -> Analysis:
    """Shapes and costs of `graph`; `input_shapes` defaults to the declared ones."""
    if input_shapes is None:
        shapes_in = graph.input_shapes
        missing = [t.name for t in graph.inputs if t.shape is None]
        if missing:
            raise ShapeError(f"input '{missing[0]}' of graph {graph.name!r} has no declared shape")
    else:
        shapes_in = tuple(tuple(s) for s in input_shapes)
        if len(shapes_in) != len(graph.inputs):
            raise ShapeError(f"graph {graph.name!r} has {len(graph.inputs)} inputs, got {len(shapes_in)} shapes")
    return _analyze(graph, tuple(shapes_in))  # type: ignore[arg-type]


@lru_cache(maxsize=256)
def _analyze(graph: Graph, shapes_in: tuple[Shape, ...]) -> Analysis:
    shapes: dict[str, Shape] = {}
    for t, s in zip(graph.inputs, shapes_in, strict=True):
        if any(not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in s):
            raise ShapeError(f"input '{t.name}' has shape {s}; every dim must be a positive int")
        shapes[t.name] = s
    infos: dict[str, OpInfo] = {}
    for op in graph.ops:
        try:
            info = infer_op(op, [shapes[i] for i in op.inputs], shapes)
        except AlphanasError:
            raise
        except (ValueError, TypeError, ZeroDivisionError, IndexError) as e:  # a rule tripped
            raise ShapeError(f"{op.kind.value} '{op.name}': {e}") from None
        infos[op.name] = info
        shapes[op.name] = info.shape
    return Analysis(graph, shapes, infos)
