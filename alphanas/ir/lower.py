"""Lowering of a `Graph` to a jit-compatible `flax.linen` Module.

`GraphModule(graph)(*inputs, train=False)`: batch norm uses running statistics and dropout is
off in eval mode; in train mode pass `mutable=["batch_stats"]` and a `"dropout"` rng.
Parameters are named after the op that owns them.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from alphanas.ir import _lowering
from alphanas.ir.analysis import resolve_attrs
from alphanas.ir.graph import Graph
from alphanas.ir.registry import opdef

__all__ = ["GraphModule", "lower", "init_variables", "eval_shapes"]


class GraphModule(nn.Module):
    """A Flax module that runs `graph`; returns one array, or a tuple for several outputs."""

    graph: Graph

    @nn.compact
    def __call__(self, *inputs: Any, train: bool = False) -> Any:
        g = self.graph
        if len(inputs) != len(g.inputs):
            raise TypeError(f"graph {g.name!r} takes {len(g.inputs)} inputs, got {len(inputs)}")
        env = dict(zip(g.input_names, inputs, strict=False))
        shapes = {k: tuple(v.shape) for k, v in env.items()}
        for op in g.ops:
            xs = [env[i] for i in op.inputs]
            a = resolve_attrs(op, [tuple(x.shape) for x in xs], shapes)
            y = getattr(_lowering, opdef(op.kind).lower)(self, op, a, xs, train)
            env[op.name] = y
            shapes[op.name] = tuple(y.shape)
        outs = tuple(env[o] for o in g.outputs)
        return outs[0] if len(outs) == 1 else outs


def lower(graph: Graph) -> GraphModule:
    """The Flax module of `graph`."""
    return GraphModule(graph)


def _dummy_inputs(graph: Graph, dtype: Any = jnp.float32) -> list[Any]:
    return [jax.ShapeDtypeStruct(s, dtype) for s in graph.input_shapes]  # type: ignore[arg-type]


def init_variables(graph: Graph, seed: int = 0) -> Any:
    """Initialized variables (params, batch_stats) for the graph's declared input shapes."""
    xs = [jnp.zeros(s, jnp.float32) for s in graph.input_shapes]  # type: ignore[arg-type]
    return jax.jit(lower(graph).init)(jax.random.PRNGKey(seed), *xs)


def eval_shapes(graph: Graph) -> tuple[Any, Any]:
    """`jax.eval_shape` of init and apply: (variable shapes, output shapes), no compute."""
    m = lower(graph)
    xs = _dummy_inputs(graph)
    variables = jax.eval_shape(m.init, jax.random.PRNGKey(0), *xs)
    out = jax.eval_shape(m.apply, variables, *xs)
    return variables, out
