"""The zoo: reference parameter counts, shape rules vs. Flax, and a CPU forward/backward pass."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _ir_checks import assert_host_init_matches

from alphanas.ir import analyze, zoo
from alphanas.ir.init import host_init
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
    assert_host_init_matches(g, variables)


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_backward_on_cpu(name):
    g = zoo.build(name, batch=2, **zoo.ZOO[name].small)
    m = lower(g)
    x = jax.random.normal(jax.random.PRNGKey(0), g.input_shapes[0])
    variables = host_init(g, seed=0)

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


def test_host_init_is_seeded_and_has_flax_statistics():
    g = zoo.build("cifar_cnn")
    a, b, c = host_init(g, seed=3), host_init(g, seed=3), host_init(g, seed=4)
    k = a["params"]["fc/dense"]["kernel"]
    assert np.array_equal(k, b["params"]["fc/dense"]["kernel"])
    assert not np.array_equal(k, c["params"]["fc/dense"]["kernel"])
    assert abs(float(k.std()) - (1 / 8192) ** 0.5) < 0.05 * (1 / 8192) ** 0.5  # lecun normal
    assert float(np.abs(k).max()) <= 2 * (1 / 8192) ** 0.5 / 0.8796 + 1e-6  # truncated at 2 sigma
    assert not a["params"]["fc/dense"]["bias"].any()
