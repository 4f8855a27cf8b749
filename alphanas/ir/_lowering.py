"""Flax lowering of each op kind: `lower_<kind>(module, op, attrs, xs, train) -> array`.

Called from `GraphModule.__call__` (inside its compact scope), with concrete attributes.
Submodules and parameters are named after the op.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from alphanas.ir.graph import Op

A = dict[str, Any]


def lower_conv(m: nn.Module, op: Op, a: A, xs: list, train: bool):
    return nn.Conv(a["features"], a["kernel"], strides=a["strides"], padding=a["padding"],
                   kernel_dilation=a["dilation"], feature_group_count=a["groups"],
                   use_bias=a["use_bias"], name=op.name)(xs[0])


def lower_dense(m: nn.Module, op: Op, a: A, xs: list, train: bool):
    return nn.Dense(a["features"], use_bias=a["use_bias"], name=op.name)(xs[0])


def lower_dense_general(m: nn.Module, op: Op, a: A, xs: list, train: bool):
    return nn.DenseGeneral(a["features"], axis=a["axis"], use_bias=a["use_bias"], name=op.name)(xs[0])


def lower_add(m, op, a, xs, train):
    return xs[0] + xs[1]


def lower_mul(m, op, a, xs, train):
    return xs[0] * xs[1]


def lower_concat(m, op, a, xs, train):
    return jnp.concatenate(xs, axis=a["axis"])


def lower_scalar_add(m, op, a, xs, train):
    return xs[0] + a["value"]


def lower_scalar_mul(m, op, a, xs, train):
    return xs[0] * a["value"]


def lower_einsum(m, op, a, xs, train):
    return jnp.einsum(a["equation"], *xs)


def lower_self_attention(m, op, a, xs, train):
    return nn.MultiHeadDotProductAttention(
        num_heads=a["num_heads"], qkv_features=a["qkv_features"], out_features=a["out_features"],
        use_bias=a["use_bias"], name=op.name)(xs[0], deterministic=True)


def lower_relu(m, op, a, xs, train):
    return nn.relu(xs[0])


def lower_gelu(m, op, a, xs, train):
    return nn.gelu(xs[0])


def lower_swish(m, op, a, xs, train):
    return nn.swish(xs[0])


def lower_sigmoid(m, op, a, xs, train):
    return nn.sigmoid(xs[0])


def lower_tanh(m, op, a, xs, train):
    return jnp.tanh(xs[0])


def lower_softmax(m, op, a, xs, train):
    return jax.nn.softmax(xs[0], axis=a["axis"])


def lower_batch_norm(m, op, a, xs, train):
    return nn.BatchNorm(use_running_average=not train, momentum=a["momentum"],
                        epsilon=a["epsilon"], name=op.name)(xs[0])


def lower_layer_norm(m, op, a, xs, train):
    return nn.LayerNorm(epsilon=a["epsilon"], name=op.name)(xs[0])


def lower_group_norm(m, op, a, xs, train):
    return nn.GroupNorm(num_groups=a["num_groups"], epsilon=a["epsilon"], name=op.name)(xs[0])


def lower_reshape(m, op, a, xs, train):
    return jnp.reshape(xs[0], a["new_shape"])


def lower_flatten(m, op, a, xs, train):
    return jnp.reshape(xs[0], (xs[0].shape[0], -1))


def lower_transpose(m, op, a, xs, train):
    return jnp.transpose(xs[0], a["perm"])


def lower_dropout(m, op, a, xs, train):
    return nn.Dropout(a["rate"], deterministic=not train, name=op.name)(xs[0])


def lower_stochastic_depth(m, op, a, xs, train):
    x = xs[0]
    if not train or a["rate"] == 0.0:
        return x
    keep = 1.0 - a["rate"]
    mask = jax.random.bernoulli(m.make_rng("dropout"), keep, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(mask, x / keep, 0.0)


def lower_avg_pool(m, op, a, xs, train):
    return nn.avg_pool(xs[0], a["window"], strides=a["strides"], padding=a["padding"])


def lower_max_pool(m, op, a, xs, train):
    return nn.max_pool(xs[0], a["window"], strides=a["strides"], padding=a["padding"])


def lower_mean(m, op, a, xs, train):
    return jnp.mean(xs[0], axis=a["axes"], keepdims=a["keepdims"])


def lower_resize(m, op, a, xs, train):
    x = xs[0]
    return jax.image.resize(x, (x.shape[0], *a["size"], x.shape[-1]), method=a["method"])


def lower_param(m, op, a, xs, train):
    return m.param(op.name, nn.initializers.normal(stddev=a["stddev"]), a["shape"])


def lower_identity(m, op, a, xs, train):
    return xs[0]
