"""EfficientNet-B0/B1 (torchvision layout: MBConv with squeeze-excitation, no conv biases).

The repeated blocks of a stage share one template whose widths are relative to its input; the
first block of each stage changes the width and has its own template.
"""

from __future__ import annotations

import math

from alphanas.ir.attrs import OpKind as K
from alphanas.ir.attrs import dim_of, rel
from alphanas.ir.graph import BlockTemplate, Graph, GraphBuilder, template
from alphanas.ir.zoo import ZooEntry, register

__all__ = ["efficientnet", "efficientnet_b0", "efficientnet_b1"]

# (expand ratio, kernel, stride, in channels, out channels, layers) of EfficientNet-B0.
_B0_STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)


def _make_divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def mbconv(expand: int, kernel: int, strides: int, out: int | None, drop: float) -> BlockTemplate:
    """Inverted residual: [1x1 expand] -> kxk depthwise -> squeeze-excite -> 1x1 project.

    `out=None` keeps the input width and adds the residual (with stochastic depth).
    """

    def body(b: GraphBuilder, x: str) -> str:
        y = x
        if expand != 1:
            y = b.op(K.CONV, y, name="expand", features=rel(expand), kernel=1, use_bias=False)
            y = b.op(K.BATCH_NORM, y, name="expand_bn", epsilon=1e-3)
            y = b.op(K.SWISH, y, name="expand_swish")
        y = b.op(K.CONV, y, name="depthwise", features=rel(), kernel=kernel, strides=strides,
                 groups=rel(), use_bias=False)
        y = b.op(K.BATCH_NORM, y, name="depthwise_bn", epsilon=1e-3)
        y = b.op(K.SWISH, y, name="depthwise_swish")
        s = b.op(K.MEAN, y, name="se/squeeze", axes=(1, 2), keepdims=True)
        s = b.op(K.CONV, s, name="se/reduce", features=dim_of(x, div=4), kernel=1)
        s = b.op(K.SWISH, s, name="se/swish")
        s = b.op(K.CONV, s, name="se/expand", features=dim_of(y), kernel=1)
        s = b.op(K.SIGMOID, s, name="se/gate")
        y = b.op(K.MUL, y, s, name="se/scale")
        y = b.op(K.CONV, y, name="project", features=out or dim_of(x), kernel=1, use_bias=False)
        y = b.op(K.BATCH_NORM, y, name="project_bn", epsilon=1e-3)
        if out is not None:
            return y
        if drop > 0:
            y = b.op(K.STOCHASTIC_DEPTH, y, name="drop_path", rate=drop)
        return b.op(K.ADD, y, x, name="add")

    suffix = f"_to{out}" if out is not None else "_residual"
    return template(f"mbconv{expand}_k{kernel}_s{strides}{suffix}", body)


def efficientnet(width: float, depth: float, dropout: float, name: str, batch: int = 1,
                 image_size: int = 224, channels: int = 3, num_classes: int = 1000,
                 drop_path: float = 0.1) -> Graph:
    """An EfficientNet scaled by `width` and `depth` multipliers."""
    b = GraphBuilder(name)
    x = b.input("input", (batch, image_size, image_size, channels))
    stem = _make_divisible(32 * width)
    with b.scope("stem"):
        x = b.op(K.CONV, x, name="conv", features=stem, kernel=3, strides=2, use_bias=False)
        x = b.op(K.BATCH_NORM, x, name="bn", epsilon=1e-3)
        x = b.op(K.SWISH, x, name="swish")
    width_in = stem
    for s, (e, k, st, _, c_out, n) in enumerate(_B0_STAGES):
        out = _make_divisible(c_out * width)
        for i in range(math.ceil(n * depth)):
            first = i == 0
            t = mbconv(e, k, st if first else 1, out if first and out != width_in else None,
                       drop_path)
            (x,) = b.block(t, [x], prefix=f"stage{s + 1}/block{i}")
            width_in = out
    with b.scope("head"):
        x = b.op(K.CONV, x, name="conv", features=_make_divisible(1280 * width), kernel=1,
                 use_bias=False)
        x = b.op(K.BATCH_NORM, x, name="bn", epsilon=1e-3)
        x = b.op(K.SWISH, x, name="swish")
        x = b.op(K.MEAN, x, name="pool", axes=(1, 2))
        x = b.op(K.DROPOUT, x, name="dropout", rate=dropout)
        x = b.op(K.DENSE, x, name="logits", features=num_classes)
    return b.build(x)


def efficientnet_b0(**kw) -> Graph:
    return efficientnet(1.0, 1.0, 0.2, "efficientnet_b0", **kw)


def efficientnet_b1(**kw) -> Graph:
    return efficientnet(1.0, 1.1, 0.2, "efficientnet_b1", **kw)


register(ZooEntry("efficientnet_b0", efficientnet_b0, "EfficientNet-B0, 224x224, 1000 classes",
                  reference_params=5_288_548, small={"image_size": 32}))
register(ZooEntry("efficientnet_b1", efficientnet_b1, "EfficientNet-B1 (depth x1.1), 1000 classes",
                  defaults={"image_size": 240}, reference_params=7_794_184,
                  small={"image_size": 32}))
