"""Vision Transformers Ti/16 and S/16 (big_vision layout, global-average-pool classifier).

Attention comes in two spellings: "primitives" (dense q/k/v, reshape to heads, scaled einsum,
softmax, einsum, reshape, dense) and "fused" (one self_attention op); same parameters.
Reference counts are timm's minus the class token and its position embedding (GAP head).
"""

from __future__ import annotations

import math

from alphanas.errors import AttrError
from alphanas.ir.attrs import OpKind as K
from alphanas.ir.attrs import Size, dim_of, rel
from alphanas.ir.graph import BlockTemplate, Graph, GraphBuilder, template
from alphanas.ir.zoo import ZooEntry, register

__all__ = ["vit", "VIT_CONFIGS"]

VIT_CONFIGS = {
    "Ti/16": {"width": 192, "depth": 12, "mlp_dim": 768, "num_heads": 3, "patch_size": 16},
    "S/16": {"width": 384, "depth": 12, "mlp_dim": 1536, "num_heads": 6, "patch_size": 16},
}
_BATCH = Size(axis=0)


def attention_block(num_heads: int, head_dim: int, fused: bool) -> BlockTemplate:
    """Multi-head self-attention over tokens (B, N, D) -> (B, N, D)."""

    def primitives(b: GraphBuilder, x: str) -> str:
        heads = (_BATCH, -1, num_heads, head_dim)
        q, k, v = (b.op(K.DENSE, x, name=f"{n}/pre", features=rel()) for n in ("query", "key", "value"))
        q, k, v = (b.op(K.RESHAPE, t, name=n, new_shape=heads)
                   for t, n in ((q, "query"), (k, "key"), (v, "value")))
        q = b.op(K.SCALAR_MUL, q, name="query/scale", value=1.0 / math.sqrt(head_dim))
        w = b.op(K.EINSUM, q, k, name="attn_weight", equation="...qhd,...khd->...hqk")
        w = b.op(K.SOFTMAX, w, name="attn_weight/softmax", axis=-1)
        y = b.op(K.EINSUM, w, v, name="attn_value", equation="...hqk,...khd->...qhd")
        y = b.op(K.RESHAPE, y, name="attn_value/reshape", new_shape=(_BATCH, -1, dim_of(x)))
        return b.op(K.DENSE, y, name="out", features=rel())

    def fused_body(b: GraphBuilder, x: str) -> str:
        return b.op(K.SELF_ATTENTION, x, name="attention", num_heads=num_heads)

    kind = "fused" if fused else "primitives"
    return template(f"mhdpa_{kind}_h{num_heads}", fused_body if fused else primitives)


def mlp_block(factor: int) -> BlockTemplate:
    """dense (x factor) -> gelu -> dense (back to the input width)."""

    def body(b: GraphBuilder, x: str) -> str:
        y = b.op(K.DENSE, x, name="dense0", features=rel(factor))
        y = b.op(K.GELU, y, name="gelu")
        return b.op(K.DENSE, y, name="dense1", features=rel(1, factor))

    return template(f"mlp_x{factor}", body)


def vit(config: str, name: str, batch: int = 1, image_size: int = 224, channels: int = 3,
        num_classes: int = 1000, attention: str = "primitives") -> Graph:
    """A ViT with a patch-embedding conv, learned position embedding and GAP head."""
    if attention not in ("primitives", "fused"):
        raise AttrError(f"vit attention must be 'primitives' or 'fused', got {attention!r}")
    c = VIT_CONFIGS[config]
    width, heads, p = c["width"], c["num_heads"], c["patch_size"]
    if image_size % p:
        raise AttrError(f"vit image_size={image_size} is not a multiple of the patch size {p}")
    b = GraphBuilder(name if attention == "primitives" else f"{name}_fused")
    x = b.input("input", (batch, image_size, image_size, channels))
    x = b.op(K.CONV, x, name="embedding", features=width, kernel=p, strides=p, padding="VALID")
    x = b.op(K.RESHAPE, x, name="tokens", new_shape=(_BATCH, -1, rel()))
    pos = b.op(K.PARAM, name="pos_embedding",
               shape=(1, dim_of(x, axis=1), dim_of(x, axis=2)), stddev=1 / math.sqrt(width))
    x = b.op(K.ADD, x, pos, name="pos_embedding/add")
    attn = attention_block(heads, width // heads, attention == "fused")
    mlp = mlp_block(c["mlp_dim"] // width)
    for i in range(c["depth"]):
        with b.scope(f"encoder{i}"):
            y = b.op(K.LAYER_NORM, x, name="ln0")
            (y,) = b.block(attn, [y], prefix="attention")
            x = b.op(K.ADD, x, y, name="residual0")
            y = b.op(K.LAYER_NORM, x, name="ln1")
            (y,) = b.block(mlp, [y], prefix="mlp")
            x = b.op(K.ADD, x, y, name="residual1")
    x = b.op(K.LAYER_NORM, x, name="encoder_norm")
    x = b.op(K.MEAN, x, name="gap", axes=(1,))
    x = b.op(K.DENSE, x, name="head", features=num_classes)
    return b.build(x)


def _entry(key: str, config: str, ref: int, fused: bool) -> None:
    def build(**kw) -> Graph:
        kw.setdefault("attention", "fused" if fused else "primitives")
        return vit(config, key.removesuffix("_fused"), **kw)

    spelled = "fused self-attention op" if fused else "attention spelled out from primitives"
    register(ZooEntry(key, build, f"ViT-{config}, GAP head, {spelled}", reference_params=ref,
                      small={"image_size": 32}))


_entry("vit_ti16", "Ti/16", 5_717_032, False)
_entry("vit_ti16_fused", "Ti/16", 5_717_032, True)
_entry("vit_s16", "S/16", 22_049_896, False)
_entry("vit_s16_fused", "S/16", 22_049_896, True)
