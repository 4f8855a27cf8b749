"""The zoo: reference parameter counts, shape rules vs. Flax, and a CPU forward/backward pass."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alphanas.ir import analyze, zoo
from alphanas.ir.lower import eval_shapes, lower

NAMES = zoo.names()


def _flax_params(variables) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(variables["params"]))


def test_zoo_has_the_documented_models():
    expected = {"cifar_cnn", "mlp", "resnet18", "resnet34", "resnet50", "resnet18_cifar",
                "resnet34_cifar", "resnet50_cifar", "efficientnet_b0", "efficientnet_b1",
                "vit_ti16", "vit_s16", "vit_ti16_fused", "vit_s16_fused"}
    assert expected <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_reference_param_count(name):
    entry = zoo.ZOO[name]
    assert entry.reference_params is not None
    assert analyze(zoo.build(name)).params == entry.reference_params


@pytest.mark.parametrize("name", NAMES)
def test_rules_agree_with_flax_at_full_size(name):
    g = zoo.build(name)
    variables, out = eval_shapes(g)
    a = analyze(g)
    assert _flax_params(variables) == a.params
    assert (out.shape,) == a.output_shapes


def _random_variables(graph, seed: int = 0):
    """Variables shaped like Flax's init, filled on the host (XLA-compiling init is slow)."""
    rng = np.random.default_rng(seed)
    shapes, _ = eval_shapes(graph)

    def fill(path, leaf):
        key = str(getattr(path[-1], "key", path[-1]))
        if key in ("scale", "var"):
            return jnp.ones(leaf.shape, leaf.dtype)
        if key in ("bias", "mean"):
            return jnp.zeros(leaf.shape, leaf.dtype)
        fan_in = max(1, int(np.prod(leaf.shape[:-1])))
        return jnp.asarray(rng.normal(0, fan_in**-0.5, leaf.shape), leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_backward_on_cpu(name):
    g = zoo.build(name, batch=2, **zoo.ZOO[name].small)
    m = lower(g)
    x = jax.random.normal(jax.random.PRNGKey(0), g.input_shapes[0])
    variables = _random_variables(g)

    def loss(params):
        out, _ = m.apply({**variables, "params": params}, x, train=True,
                         mutable=["batch_stats"], rngs={"dropout": jax.random.PRNGKey(2)})
        return jnp.mean(out**2)

    @jax.jit
    def step(params):
        return m.apply({**variables, "params": params}, x), jax.grad(loss)(params)

    y, grads = step(variables["params"])
    assert y.shape == analyze(g).output_shapes[0]
    assert bool(jnp.all(jnp.isfinite(y)))
    leaves = jax.tree_util.tree_leaves(grads)
    assert len(leaves) == len(jax.tree_util.tree_leaves(variables["params"]))
    assert all(bool(jnp.all(jnp.isfinite(gr))) for gr in leaves)
    assert any(float(jnp.abs(gr).sum()) > 0 for gr in leaves)


def test_templates_are_shared_across_positions():
    g = zoo.build("resnet50")
    uses: dict[str, int] = {}
    for b in g.blocks:
        uses[b.template] = uses.get(b.template, 0) + 1
    assert uses["bottleneck_identity"] == 12  # (3-1) + (4-1) + (6-1) + (3-1)
    assert uses["bottleneck_down"] == 3


def test_cifar_cnn_is_the_papers_model():
    g = zoo.build("cifar_cnn")
    kinds = [o.kind.value for o in g.ops]
    assert kinds == ["conv", "conv", "relu", "avg_pool", "conv", "relu", "avg_pool", "flatten",
                     "dense", "relu", "dense"]


def test_unknown_model_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown model 'resnet9'.*resnet18"):
        zoo.build("resnet9")
