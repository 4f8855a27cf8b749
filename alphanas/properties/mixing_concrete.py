"""The mixing definition evaluated concretely, with JAX derivatives: the reference that the
analytic rules of `alphanas.properties.mixing` are tested against.

For a graph with (small) declared input shapes: lower it to Flax, fill every parameter and batch
statistic with seeded random values (scaled like an init, nothing accidentally zero, variances
positive), run in eval mode (batch norm on running statistics, no dropout), and for each output
take the gradient of its centre element and of a random-weighted sum of the 1-D slice through the
centre along each output dim (one vector-Jacobian product each; random weights never cancel,
unlike a plain sum, which is constant for softmax). An input element influences an output set
iff that gradient is non-zero: above a relative 1e-12 in float64 (small graphs) or 1e-6 in
float32 (big ones), to ignore rounding in linear-resize weights. To see through accidental zeros
(dead relu units, the arg-max of a max pool), dependence is OR-ed over several random input
draws. The matrix then follows the definition (`alphanas.properties.mixing.matrix_from_counts`).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from alphanas.ir.analysis import analyze
from alphanas.ir.attrs import OpKind
from alphanas.ir.graph import Graph
from alphanas.ir.lower import lower
from alphanas.properties.base import Pair
from alphanas.properties.mixing import MixMatrix, matrix_from_counts

__all__ = ["concrete_mixing", "dependence_masks"]

_PRECISE_FLOPS = 1_000_000  # above this, float64 convolutions on CPU get too slow
_RELATIVE_ZERO = {np.float64: 1e-12, np.float32: 1e-6}
_MAX_POOL_DRAWS = 96
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def concrete_mixing(graph: Graph, draws: int = 24, seed: int = 0, precise: bool | None = None,
                    optimize: bool = False) -> dict[Pair, MixMatrix]:
    """The mixing matrix of every (input, output) pair of `graph`, by the definition."""
    out_shapes = analyze(graph).output_shapes
    masks = dependence_masks(graph, draws, seed, precise, optimize)
    result: dict[Pair, MixMatrix] = {}
    for o, (name, shape) in enumerate(zip(graph.outputs, out_shapes, strict=True)):
        for x, (inp, in_shape) in enumerate(zip(graph.input_names, graph.input_shapes, strict=True)):
            result[(inp, name)] = _matrix(masks[o][x], in_shape, shape)  # type: ignore[arg-type]
    return result


def _matrix(mask: np.ndarray, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> MixMatrix:
    """mask[0]: input elements read by the centre; mask[1 + j]: read by the slice along dim j."""
    r, s = len(in_shape), len(out_shape)
    paired = np.zeros((r, s), bool)
    counts = np.zeros(r, int)
    for i in range(r):
        others = tuple(a for a in range(r) if a != i)
        counts[i] = int(mask[0].any(axis=others).sum())
        for j in range(s):
            paired[i, j] = bool(mask[1 + j].any(axis=others).all())
    return matrix_from_counts(paired, counts, in_shape)


def dependence_masks(graph: Graph, draws: int = 24, seed: int = 0, precise: bool | None = None,
                     optimize: bool = False) -> list[list[np.ndarray]]:
    """masks[output][input]: bool array (1 + output rank, *input shape); row 0 is what the
    output's centre element depends on, row 1 + j what the slice along output dim j depends on.

    `precise`: float64 with a relative zero of 1e-12, else float32 with 1e-6 (fine unless the
    graph has a linear resize, whose kernel-edge weights are rounding noise, or derivatives that
    are genuinely that small); `None` picks float64 up to 1e6 FLOPs. `optimize=False` compiles
    without XLA's backend optimizations: much faster to compile, slower to run. A graph with a
    max pool gets at least 96 draws (the arg-max must visit every row of each window).
    """
    if precise is None:
        precise = analyze(graph).flops <= _PRECISE_FLOPS
    if any(op.kind is OpKind.MAX_POOL for op in graph.ops):
        draws = max(draws, _MAX_POOL_DRAWS)
    dtype = np.float64 if precise else np.float32
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((draws, *s)).astype(dtype) for s in graph.input_shapes]  # type: ignore[misc]
    cts = [np.stack([_cotangents(s, rng) for _ in range(draws)]).astype(dtype)
           for s in analyze(graph).output_shapes]
    with jax.enable_x64(precise):
        variables = _variables(graph, rng, dtype)
        pull = jax.jit(jax.vmap(_pullback(graph), (None, 0, 0)))
        grads = pull.lower(variables, xs, cts).compile({} if optimize else _FAST_COMPILE)(variables, xs, cts)
        zero = _RELATIVE_ZERO[dtype]
        return [_nonzero([np.abs(np.asarray(g)) for g in per_output], zero) for per_output in grads]


def _nonzero(gs: list[np.ndarray], zero: float) -> list[np.ndarray]:
    """OR over draws of |g| > relative zero; g: (draws, rows, *input shape), scaled per row over
    every input (an input whose gradient is all rounding noise counts as independent)."""
    scale = np.zeros(gs[0].shape[:2]) if gs else np.zeros((0, 0))
    for g in gs:
        scale = np.maximum(scale, g.reshape(g.shape[:2] + (-1,)).max(axis=2, initial=0.0))
    out = []
    for g in gs:
        thresh = scale.reshape(scale.shape + (1,) * (g.ndim - 2)) * zero
        out.append(((g > thresh) & (g > 0)).any(axis=0))
    return out


def _variables(graph: Graph, rng: np.random.Generator, dtype: Any) -> Any:
    """Random variables of the lowered graph (no init run: only its shapes): kernels
    scaled by 1/sqrt(fan-in), positive variances, nothing accidentally zero."""
    xs = [jax.ShapeDtypeStruct(s, dtype) for s in graph.input_shapes]  # type: ignore[arg-type]
    shapes = jax.eval_shape(lower(graph).init, jax.random.PRNGKey(0), *xs)
    leaves, tree = jax.tree_util.tree_flatten_with_path(shapes)
    new = []
    for path, leaf in leaves:
        name = getattr(path[-1], "key", "")
        noise = rng.standard_normal(leaf.shape)
        if name == "kernel":
            value = noise / np.sqrt(max(math.prod(leaf.shape[:-1]), 1))
        elif name in ("var", "scale"):
            value = np.exp(0.1 * noise)
        else:  # biases, means, params: small, so that relu units are alive about half the time
            value = 0.05 * noise
        new.append(jnp.asarray(value, dtype))
    return jax.tree_util.tree_unflatten(tree, new)


def _pullback(graph: Graph) -> Any:
    """(variables, inputs, cotangents per output) -> per output, per input, the gradients of
    each cotangent row (variables are an argument, not constants baked into the program)."""
    module = lower(graph)

    def pull(variables: Any, xs: list[Any], cts: list[Any]) -> list[Any]:
        def run(*args: Any) -> tuple[Any, ...]:
            y = module.apply(variables, *args, train=False)
            return y if isinstance(y, tuple) else (y,)

        ys, vjp = jax.vjp(run, *xs)
        out = []
        for o, ct_rows in enumerate(cts):
            def one(ct: Any, o: int = o) -> Any:
                return vjp(tuple(ct if i == o else jnp.zeros_like(y) for i, y in enumerate(ys)))

            out.append(list(jax.vmap(one)(ct_rows)))
        return out

    return pull


def _cotangents(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """(1 + rank, *shape): one-hot at the centre, then random weights on each centre slice."""
    centre = tuple(n // 2 for n in shape)
    rows = np.zeros((1 + len(shape), *shape))
    rows[(0, *centre)] = 1.0
    for j, n in enumerate(shape):
        rows[(1 + j, *centre[:j], slice(None), *centre[j + 1 :])] = rng.standard_normal(n)
    return rows
