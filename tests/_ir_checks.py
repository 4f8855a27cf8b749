"""Shared differential check: our shape/param rules vs. the Flax lowering under jax.eval_shape."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from alphanas.ir import Analysis, Graph, analyze


def leaf_count(tree: Any) -> int:
    """Total number of elements over the array leaves of a pytree."""
    import jax

    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree))


def flax_param_count(variables: Any) -> int:
    """Sum of the sizes of the leaves of variables['params'] (0 when there are none)."""
    return leaf_count(variables.get("params", {}))


def assert_matches_flax(graph: Graph) -> Analysis:
    """Analyze `graph`; assert every tensor's shape, each op's params and the total params
    equal those of its Flax lowering under `jax.eval_shape`."""
    from alphanas.ir.lower import eval_shapes

    a = analyze(graph)
    # Expose every op's tensor as an output so that each shape rule is checked, not just the last.
    every = tuple(dict.fromkeys((*graph.outputs, *(o.name for o in graph.ops))))
    variables, out = eval_shapes(replace(graph, outputs=every))
    outs = out if isinstance(out, tuple) else (out,)
    got = {n: tuple(o.shape) for n, o in zip(every, outs, strict=True)}
    want = {n: a.shapes[n] for n in every}
    assert want == got, f"{graph.name}: rules say {want}, Flax says {got}"
    params = variables.get("params", {})
    for name, info in a.ops.items():
        n = leaf_count(params[name]) if name in params else 0
        assert info.params == n, f"{graph.name}: op '{name}': rules say {info.params} params, Flax has {n}"
    n = flax_param_count(variables)
    assert a.params == n, f"{graph.name}: rules say {a.params} params, Flax has {n}"
    assert_host_init_matches(graph, variables)
    return a


def assert_host_init_matches(graph: Graph, variables: Any) -> None:
    """`host_init` gives the same pytree structure and leaf shapes as Flax's init."""
    import jax

    from alphanas.ir.init import host_init

    ours = host_init(graph, seed=0)
    shapes = jax.tree_util.tree_map(lambda x: tuple(x.shape), ours)
    want = jax.tree_util.tree_map(lambda x: tuple(x.shape), dict(variables))
    assert shapes == want, f"{graph.name}: host_init gives {shapes}, Flax init gives {want}"
