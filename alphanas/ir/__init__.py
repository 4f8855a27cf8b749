"""The tensor-op IR: op registry, graphs, relative sizes, shapes and cost, edits, JSON.

Importing this package needs neither jax nor z3; `alphanas.ir.lower` imports Flax.
"""

from alphanas.ir.analysis import Analysis, OpInfo, analyze
from alphanas.ir.attrs import DepthClass, OpKind, Shape, Size, dim_of, rel
from alphanas.ir.edit import Selection, extract, prune_dead, select, splice
from alphanas.ir.graph import (
    BlockInstance,
    BlockTemplate,
    Graph,
    GraphBuilder,
    Op,
    TensorSpec,
    make_op,
    template,
)
from alphanas.ir.registry import ELEMENTWISE, LINEAR, NONLINEAR, REGISTRY, RESHAPING, OpDef, opdef

__all__ = [
    "ELEMENTWISE",
    "LINEAR",
    "NONLINEAR",
    "REGISTRY",
    "RESHAPING",
    "Analysis",
    "BlockInstance",
    "BlockTemplate",
    "DepthClass",
    "Graph",
    "GraphBuilder",
    "Op",
    "OpDef",
    "OpInfo",
    "OpKind",
    "Selection",
    "Shape",
    "Size",
    "TensorSpec",
    "analyze",
    "dim_of",
    "extract",
    "make_op",
    "opdef",
    "prune_dead",
    "rel",
    "select",
    "splice",
    "template",
]
