"""Every op kind, on small concrete graphs: shape rules and param rules vs. the Flax lowering.

Each case builds a graph whose ops are checked tensor by tensor against `jax.eval_shape` of the
lowered module, and op by op against the Flax parameter count.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _ir_checks import assert_matches_flax

from alphanas.ir import Graph, GraphBuilder, OpKind, Size, dim_of, rel

K = OpKind


def one(shape: tuple[int, ...], kind: OpKind, **attrs) -> Callable[[], Graph]:
    """A graph applying one op of `kind` to an input of `shape`."""

    def build() -> Graph:
        b = GraphBuilder(f"{kind.value}{shape}")
        x = b.input("x", shape)
        return b.build(b.op(kind, x, **attrs))

    return build


def two(s1: tuple[int, ...], s2: tuple[int, ...], kind: OpKind, **attrs) -> Callable[[], Graph]:
    """A graph applying one op of `kind` to two inputs."""

    def build() -> Graph:
        b = GraphBuilder(f"{kind.value}{s1}{s2}")
        x, y = b.input("x", s1), b.input("y", s2)
        return b.build(b.op(kind, x, y, **attrs))

    return build


def concat3(axis: int) -> Callable[[], Graph]:
    def build() -> Graph:
        b = GraphBuilder("concat3")
        x = b.input("x", (2, 3, 4, 5))
        y = b.op(K.CONV, x, features=3, kernel=1)
        z = b.op(K.RELU, x)
        return b.build(b.op(K.CONCAT, x, y, z, axis=axis) if axis in (-1, 3) else
                       b.op(K.CONCAT, x, z, x, axis=axis))

    return build


def squeeze_excite() -> Graph:
    """mean(keepdims) -> dense -> sigmoid, broadcast-multiplied back onto the input."""
    b = GraphBuilder("se")
    x = b.input("x", (2, 5, 5, 8))
    s = b.op(K.MEAN, x, axes=(1, 2), keepdims=True)
    s = b.op(K.DENSE, s, features=rel(1, 4))
    s = b.op(K.SWISH, s)
    s = b.op(K.DENSE, s, features=dim_of("x"))
    s = b.op(K.SIGMOID, s)
    return b.build(b.op(K.MUL, x, s))


def position_embedding() -> Graph:
    """A learned (1, tokens, width) parameter added to a (batch, tokens, width) input."""
    b = GraphBuilder("pos_emb")
    x = b.input("x", (3, 5, 8))
    p = b.op(K.PARAM, shape=(1, dim_of("x", 1), dim_of("x", 2)), stddev=0.02)
    return b.build(b.op(K.ADD, x, p))


def param_alone() -> Graph:
    b = GraphBuilder("param_alone")
    b.input("x", (2, 3))
    return b.build(b.op(K.PARAM, shape=(4, 3, 2)))


def patch_embed() -> Graph:
    """ViT-style: strided conv patches -> reshape with Size dims -> layer norm -> attention."""
    b = GraphBuilder("patch_embed")
    x = b.input("x", (2, 8, 8, 3))
    y = b.op(K.CONV, x, features=16, kernel=4, strides=4, padding="VALID")
    y = b.op(K.RESHAPE, y, new_shape=(rel(axis=0), -1, rel()))
    y = b.op(K.LAYER_NORM, y)
    y = b.op(K.SELF_ATTENTION, y, num_heads=4)
    return b.build(b.op(K.GELU, y))


def attention_einsums() -> Graph:
    """Hand-written multi-head attention with dense_general projections and ellipsis einsums."""
    b = GraphBuilder("mha")
    x = b.input("x", (2, 6, 8))
    q = b.op(K.DENSE_GENERAL, x, features=(2, 4))
    k = b.op(K.DENSE_GENERAL, x, features=(2, 4))
    v = b.op(K.DENSE_GENERAL, x, features=(2, 4))
    s = b.op(K.EINSUM, q, k, equation="...qhd,...khd->...hqk")
    s = b.op(K.SCALAR_MUL, s, value=0.5)
    s = b.op(K.SOFTMAX, s, axis=-1)
    o = b.op(K.EINSUM, s, v, equation="...hqk,...khd->...qhd")
    o = b.op(K.DENSE_GENERAL, o, features=(8,), axis=(-2, -1))
    return b.build(b.op(K.ADD, x, o))


def residual_block() -> Graph:
    b = GraphBuilder("residual")
    x = b.input("x", (2, 6, 6, 4))
    y = b.op(K.CONV, x, features=rel(), kernel=3, use_bias=False)
    y = b.op(K.BATCH_NORM, y)
    y = b.op(K.RELU, y)
    y = b.op(K.DROPOUT, y, rate=0.2)
    y = b.op(K.CONV, y, features=rel(), kernel=3, use_bias=False)
    y = b.op(K.GROUP_NORM, y, num_groups=2)
    y = b.op(K.STOCHASTIC_DEPTH, y, rate=0.1)
    y = b.op(K.ADD, y, x)
    y = b.op(K.IDENTITY, y)
    return b.build([b.op(K.TANH, y), y])


def unet_up() -> Graph:
    """Upsample with resize(rel sizes) and concat with a skip connection."""
    b = GraphBuilder("unet_up")
    x = b.input("x", (1, 8, 8, 4))
    d = b.op(K.MAX_POOL, x, window=2)
    d = b.op(K.CONV, d, features=8, kernel=3)
    u = b.op(K.RESIZE, d, size=(rel(2, axis=1), rel(2, axis=2)), method="nearest")
    u = b.op(K.CONCAT, u, x, axis=-1)
    return b.build(b.op(K.CONV, u, features=dim_of("x"), kernel=1))


S4 = (2, 6, 6, 4)

CASES: list[tuple[str, OpKind, Callable[[], Graph]]] = [
    # conv: strides, padding, dilation, groups, depthwise, ranks, rectangular kernels
    ("conv-3x3-same", K.CONV, one((2, 8, 8, 3), K.CONV, features=16, kernel=3)),
    ("conv-stride2-same-odd", K.CONV, one((1, 7, 7, 4), K.CONV, features=8, kernel=3, strides=2)),
    ("conv-stride2-valid", K.CONV, one((1, 9, 9, 2), K.CONV, features=5, kernel=3, strides=2, padding="VALID")),
    ("conv-stride3-valid-even", K.CONV, one((1, 10, 8, 2), K.CONV, features=4, kernel=(2, 3), strides=(3, 2), padding="VALID")),
    ("conv-dilation-same", K.CONV, one((1, 9, 9, 3), K.CONV, features=4, kernel=3, dilation=2)),
    ("conv-dilation-valid", K.CONV, one((1, 9, 9, 3), K.CONV, features=4, kernel=3, dilation=(2, 3), padding="VALID")),
    ("conv-groups", K.CONV, one((1, 6, 6, 4), K.CONV, features=8, kernel=3, groups=2)),
    ("conv-depthwise", K.CONV, one(S4, K.CONV, features=rel(), kernel=3, groups=rel())),
    ("conv-depthwise-mult2", K.CONV, one(S4, K.CONV, features=rel(2), kernel=5, strides=2, groups=rel(), use_bias=False)),
    ("conv-1x1-rel-half", K.CONV, one(S4, K.CONV, features=rel(1, 2), kernel=1, use_bias=False)),
    ("conv-1d", K.CONV, one((2, 10, 3), K.CONV, features=6, kernel=3, strides=2, padding="VALID")),
    ("conv-3d", K.CONV, one((1, 4, 5, 6, 2), K.CONV, features=3, kernel=(2, 2, 3), strides=(1, 2, 2))),
    # dense and dense_general
    ("dense-2d", K.DENSE, one((2, 5), K.DENSE, features=7)),
    ("dense-4d-nobias", K.DENSE, one(S4, K.DENSE, features=rel(3), use_bias=False)),
    ("dense_general-last", K.DENSE_GENERAL, one((2, 3, 5), K.DENSE_GENERAL, features=(3, 4))),
    ("dense_general-2axes", K.DENSE_GENERAL, one((2, 3, 5, 6), K.DENSE_GENERAL, features=(4,), axis=(1, 2))),
    ("dense_general-neg-axes", K.DENSE_GENERAL, one((2, 3, 5, 6), K.DENSE_GENERAL, features=(2, 3), axis=(-2, -1), use_bias=False)),
    ("dense_general-nonadjacent", K.DENSE_GENERAL, one((2, 3, 5, 6), K.DENSE_GENERAL, features=(2, rel(axis=2)), axis=(1, 3))),
    # broadcasting binary ops
    ("add-same", K.ADD, two(S4, S4, K.ADD)),
    ("add-bcast-channels", K.ADD, two(S4, (4,), K.ADD)),
    ("add-bcast-both", K.ADD, two((2, 1, 6, 4), (5, 1, 4), K.ADD)),
    ("mul-bcast-keepdims", K.MUL, two(S4, (2, 1, 1, 4), K.MUL)),
    ("mul-squeeze-excite", K.MUL, squeeze_excite),
    ("add-param-pos-emb", K.ADD, position_embedding),
    # concat
    ("concat-channels-3in", K.CONCAT, concat3(-1)),
    ("concat-axis1", K.CONCAT, two((2, 3, 4), (2, 5, 4), K.CONCAT, axis=1)),
    ("concat-axis2-3in", K.CONCAT, concat3(2)),
    ("concat-batch", K.CONCAT, two((2, 3), (1, 3), K.CONCAT, axis=0)),
    ("concat-unet", K.CONCAT, unet_up),
    # scalar ops
    ("scalar_add", K.SCALAR_ADD, one(S4, K.SCALAR_ADD, value=1.5)),
    ("scalar_mul", K.SCALAR_MUL, one(S4, K.SCALAR_MUL, value=-2)),
    # einsum
    ("einsum-bmm", K.EINSUM, two((2, 3, 4), (2, 4, 5), K.EINSUM, equation="bij,bjk->bik")),
    ("einsum-ellipsis-bcast", K.EINSUM, two((2, 3, 4, 5), (3, 5, 6), K.EINSUM, equation="...ij,...jk->...ik")),
    ("einsum-unary-transpose", K.EINSUM, one((2, 3, 4), K.EINSUM, equation="...ij->...ji")),
    ("einsum-reduce", K.EINSUM, one((2, 3, 4), K.EINSUM, equation="bij->b")),
    ("einsum-attention", K.EINSUM, attention_einsums),
    # attention
    ("attention-basic", K.SELF_ATTENTION, one((2, 5, 8), K.SELF_ATTENTION, num_heads=2)),
    ("attention-qkv-out", K.SELF_ATTENTION, one((2, 5, 8), K.SELF_ATTENTION, num_heads=4, qkv_features=16, out_features=rel(3, 2))),
    ("attention-nobias-4d", K.SELF_ATTENTION, one((2, 3, 4, 6), K.SELF_ATTENTION, num_heads=3, use_bias=False)),
    ("attention-vit", K.SELF_ATTENTION, patch_embed),
    # activations and softmax
    ("relu", K.RELU, one(S4, K.RELU)),
    ("gelu", K.GELU, one((3, 7), K.GELU)),
    ("swish", K.SWISH, one(S4, K.SWISH)),
    ("sigmoid", K.SIGMOID, one(S4, K.SIGMOID)),
    ("tanh", K.TANH, one((3, 7), K.TANH)),
    ("softmax-last", K.SOFTMAX, one((3, 7), K.SOFTMAX)),
    ("softmax-axis1", K.SOFTMAX, one(S4, K.SOFTMAX, axis=1)),
    # normalization
    ("batch_norm", K.BATCH_NORM, one(S4, K.BATCH_NORM, momentum=0.99, epsilon=1e-3)),
    ("batch_norm-2d", K.BATCH_NORM, one((4, 10), K.BATCH_NORM)),
    ("layer_norm", K.LAYER_NORM, one((2, 5, 8), K.LAYER_NORM)),
    ("group_norm", K.GROUP_NORM, one((2, 4, 4, 8), K.GROUP_NORM, num_groups=4)),
    ("group_norm-1group", K.GROUP_NORM, one((2, 4, 4, 6), K.GROUP_NORM, num_groups=1)),
    # shape movers
    ("reshape-minus1", K.RESHAPE, one(S4, K.RESHAPE, new_shape=(2, -1))),
    ("reshape-size-dims", K.RESHAPE, one(S4, K.RESHAPE, new_shape=(Size(axis=0), -1, rel()))),
    ("reshape-split-channels", K.RESHAPE, one(S4, K.RESHAPE, new_shape=(2, 6, 6, 2, rel(1, 2)))),
    ("flatten", K.FLATTEN, one(S4, K.FLATTEN)),
    ("flatten-2d", K.FLATTEN, one((3, 7), K.FLATTEN)),
    ("transpose-nhwc-nchw", K.TRANSPOSE, one((2, 3, 4, 5), K.TRANSPOSE, perm=(0, 3, 1, 2))),
    ("transpose-swap", K.TRANSPOSE, one((2, 3, 4), K.TRANSPOSE, perm=(0, 2, 1))),
    # train-only ops (eval mode: identity)
    ("dropout", K.DROPOUT, one(S4, K.DROPOUT, rate=0.5)),
    ("stochastic_depth", K.STOCHASTIC_DEPTH, one(S4, K.STOCHASTIC_DEPTH, rate=0.2)),
    ("residual-block", K.IDENTITY, residual_block),
    # pooling, mean, resize
    ("avg_pool-2", K.AVG_POOL, one((1, 8, 8, 3), K.AVG_POOL, window=2)),
    ("avg_pool-3s2-same", K.AVG_POOL, one((1, 7, 7, 3), K.AVG_POOL, window=3, strides=2, padding="SAME")),
    ("avg_pool-global", K.AVG_POOL, one((2, 5, 7, 3), K.AVG_POOL, window=0)),
    ("avg_pool-global-h", K.AVG_POOL, one((2, 5, 7, 3), K.AVG_POOL, window=(0, 2), strides=(1, 1))),
    ("avg_pool-1d", K.AVG_POOL, one((2, 9, 3), K.AVG_POOL, window=3, strides=2)),
    ("max_pool-3s2-valid", K.MAX_POOL, one((1, 9, 9, 2), K.MAX_POOL, window=3, strides=2)),
    ("max_pool-3s2-same", K.MAX_POOL, one((1, 8, 8, 2), K.MAX_POOL, window=3, strides=2, padding="SAME")),
    ("max_pool-global", K.MAX_POOL, one((2, 4, 6, 3), K.MAX_POOL, window=0)),
    ("max_pool-unet", K.MAX_POOL, unet_up),
    ("mean-spatial", K.MEAN, one(S4, K.MEAN, axes=(1, 2))),
    ("mean-keepdims", K.MEAN, one(S4, K.MEAN, axes=(1, 2), keepdims=True)),
    ("mean-last-int", K.MEAN, one((3, 7), K.MEAN, axes=-1)),
    ("resize-nearest-rel2", K.RESIZE, one((1, 4, 5, 3), K.RESIZE, size=(rel(2, axis=1), rel(2, axis=2)))),
    ("resize-linear-explicit", K.RESIZE, one((1, 4, 5, 3), K.RESIZE, size=(7, 3), method="linear")),
    ("resize-linear-1d-down", K.RESIZE, one((2, 8, 3), K.RESIZE, size=(rel(1, 2, axis=1),), method="linear")),
    ("resize-unet", K.RESIZE, unet_up),
    # param and identity
    ("param-alone", K.PARAM, param_alone),
    ("param-pos-emb", K.PARAM, position_embedding),
    ("identity", K.IDENTITY, one((3, 7), K.IDENTITY)),
]


@pytest.mark.parametrize("kind, build", [pytest.param(k, f, id=i) for i, k, f in CASES])
def test_rules_agree_with_flax(kind: OpKind, build: Callable[[], Graph]) -> None:
    g = build()
    assert kind in {o.kind for o in g.ops}, f"case for {kind.value} has no {kind.value} op"
    assert_matches_flax(g)


def test_cases_cover_every_op_kind() -> None:
    declared = {k for _, k, _ in CASES}
    built = {o.kind for _, _, f in CASES for o in f().ops}
    assert declared == set(OpKind), f"no case for: {sorted(k.value for k in set(OpKind) - declared)}"
    assert built == set(OpKind)


def test_case_ids_are_unique() -> None:
    ids = [i for i, _, _ in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("build", [residual_block, squeeze_excite], ids=["residual", "se"])
def test_train_mode_matches_rules(build: Callable[[], Graph]) -> None:
    """Train mode (batch statistics updated, dropout and stochastic depth live) keeps the shapes."""
    import jax

    from alphanas.ir import analyze
    from alphanas.ir.lower import lower

    g = build()
    m = lower(g)
    xs = [jax.ShapeDtypeStruct(s, "float32") for s in g.input_shapes]
    variables = jax.eval_shape(m.init, jax.random.PRNGKey(0), *xs)
    out, updates = jax.eval_shape(lambda v, *xs: m.apply(
        v, *xs, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.PRNGKey(1)}), variables, *xs)
    outs = out if isinstance(out, tuple) else (out,)
    assert tuple(o.shape for o in outs) == analyze(g).output_shapes
    assert jax.tree_util.tree_structure(updates.get("batch_stats", {})) == \
        jax.tree_util.tree_structure(variables.get("batch_stats", {}))


def test_lowering_runs_under_jit_in_both_modes() -> None:
    import jax
    import jax.numpy as jnp

    from alphanas.ir.lower import init_variables, lower

    g = squeeze_excite()
    m = lower(g)
    variables = init_variables(g)
    x = jnp.linspace(-1.0, 1.0, 2 * 5 * 5 * 8).reshape(2, 5, 5, 8)
    y_eval = jax.jit(m.apply)(variables, x)
    y_train = jax.jit(lambda v, x: m.apply(v, x, train=True))(variables, x)
    assert y_eval.shape == y_train.shape == (2, 5, 5, 8)
    assert bool(jnp.all(jnp.isfinite(y_eval)))


@pytest.mark.parametrize("build, flops", [
    # 2 x multiply-accumulates for conv/dense/einsum (bias and padding ignored)
    (one((2, 8, 8, 4), K.CONV, features=8, kernel=3), 2 * (2 * 8 * 8 * 8) * 9 * 4),
    (one((2, 8, 8, 4), K.CONV, features=8, kernel=3, strides=2, groups=2), 2 * (2 * 4 * 4 * 8) * 9 * 2),
    (one((2, 5, 8), K.DENSE, features=6), 2 * (2 * 5 * 6) * 8),
    (one((2, 5, 8), K.DENSE_GENERAL, features=(2, 3), axis=(1, 2)), 2 * (2 * 6) * 40),
    (two((2, 3, 4), (2, 4, 5), K.EINSUM, equation="bij,bjk->bik"), 2 * 2 * 3 * 4 * 5),
    (one((2, 5, 8), K.SELF_ATTENTION, num_heads=2), 2 * 10 * (3 * 8 * 8 + 2 * 5 * 8 + 8 * 8)),
    # elementwise: 1 per output element; softmax 3; batch norm 2; layer/group norm 5
    (two((2, 1, 4), (3, 1), K.ADD), 2 * 3 * 4),
    (one((2, 5, 8), K.RELU), 80),
    (one((2, 5, 8), K.SOFTMAX), 3 * 80),
    (one((2, 5, 8), K.BATCH_NORM), 2 * 80),
    (one((2, 5, 8), K.LAYER_NORM), 5 * 80),
    # pools: window per output element; mean: 1 per input element; resize linear: 2 x 2^r per output
    (one((1, 8, 8, 3), K.AVG_POOL, window=2), (4 * 4 * 3) * 4),
    (one((1, 8, 8, 3), K.MAX_POOL, window=0), 3 * 64),
    (one((2, 5, 8), K.MEAN, axes=(1,)), 80),
    (one((1, 4, 4, 3), K.RESIZE, size=(8, 8), method="linear"), 2 * 4 * (8 * 8 * 3)),
    (one((1, 4, 4, 3), K.RESIZE, size=(8, 8)), 0),
    # data movement and train-only ops are free
    (one((2, 5, 8), K.RESHAPE, new_shape=(2, -1)), 0),
    (one((2, 5, 8), K.TRANSPOSE, perm=(0, 2, 1)), 0),
    (one((2, 5, 8), K.DROPOUT), 0),
    (param_alone, 0),
])
def test_flops_definition(build: Callable[[], Graph], flops: int) -> None:
    from alphanas.ir import analyze

    assert analyze(build()).flops == flops
