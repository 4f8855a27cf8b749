"""ResNet v1 18/34/50 (torchvision layout: stride on the 3x3 conv, no conv biases).

Stems: "imagenet" (7x7/2 conv, 3x3/2 max pool) and "cifar" (3x3/1 conv, no pool).
Blocks are templates with relative widths, so one template serves every stage.
"""

from __future__ import annotations

from collections.abc import Sequence

from alphanas.ir.attrs import OpKind as K
from alphanas.ir.attrs import rel
from alphanas.ir.graph import BlockTemplate, Graph, GraphBuilder, template
from alphanas.ir.zoo import ZooEntry, register

__all__ = ["resnet", "resnet18", "resnet34", "resnet50"]


def _conv_bn(b: GraphBuilder, x: str, name: str, features, kernel: int, strides: int = 1,
             relu: bool = True) -> str:
    x = b.op(K.CONV, x, name=f"{name}", features=features, kernel=kernel, strides=strides,
             use_bias=False)
    x = b.op(K.BATCH_NORM, x, name=f"{name}_bn")
    return b.op(K.RELU, x, name=f"{name}_relu") if relu else x


def basic_block(strides: int) -> BlockTemplate:
    """Two 3x3 convs; with strides 2 the width doubles and the shortcut is a 1x1/2 conv."""
    widen = 2 if strides == 2 else 1

    def body(b: GraphBuilder, x: str) -> str:
        y = _conv_bn(b, x, "conv1", rel(widen), 3, strides)
        y = _conv_bn(b, y, "conv2", rel(), 3, relu=False)
        s = _conv_bn(b, x, "shortcut", rel(widen), 1, strides, relu=False) if widen > 1 else x
        y = b.op(K.ADD, y, s, name="add")
        return b.op(K.RELU, y, name="relu")

    return template("basic" if strides == 1 else "basic_down", body)


def bottleneck_block(kind: str) -> BlockTemplate:
    """1x1 reduce, 3x3, 1x1 expand (x4). kind: "identity", "expand" (64->256), "down" (/2, x2)."""
    reduce_div, strides = {"identity": (4, 1), "expand": (1, 1), "down": (2, 2)}[kind]

    def body(b: GraphBuilder, x: str) -> str:
        y = _conv_bn(b, x, "conv1", rel(1, reduce_div), 1)
        y = _conv_bn(b, y, "conv2", rel(), 3, strides)
        y = _conv_bn(b, y, "conv3", rel(4), 1, relu=False)
        if kind == "identity":
            s = x
        else:
            s = _conv_bn(b, x, "shortcut", rel(4 // reduce_div), 1, strides, relu=False)
        y = b.op(K.ADD, y, s, name="add")
        return b.op(K.RELU, y, name="relu")

    return template(f"bottleneck_{kind}", body)


def resnet(layers: Sequence[int], bottleneck: bool, name: str, batch: int = 1,
           image_size: int = 224, channels: int = 3, num_classes: int = 1000,
           stem: str = "imagenet") -> Graph:
    """A ResNet v1 with `layers` blocks per stage (widths 64, 128, 256, 512)."""
    if stem not in ("imagenet", "cifar"):
        from alphanas.errors import AttrError

        raise AttrError(f"resnet stem must be 'imagenet' or 'cifar', got {stem!r}")
    b = GraphBuilder(f"{name}" if stem == "imagenet" else f"{name}_cifar")
    x = b.input("input", (batch, image_size, image_size, channels))
    with b.scope("stem"):
        if stem == "imagenet":
            x = _conv_bn(b, x, "conv", 64, 7, 2)
            x = b.op(K.MAX_POOL, x, name="pool", window=3, strides=2, padding="SAME")
        else:
            x = _conv_bn(b, x, "conv", 64, 3, 1)
    for stage, n in enumerate(layers):
        for i in range(n):
            if bottleneck:
                kind = "identity" if i else ("expand" if stage == 0 else "down")
                t = bottleneck_block(kind)
            else:
                t = basic_block(2 if (i == 0 and stage > 0) else 1)
            (x,) = b.block(t, [x], prefix=f"stage{stage + 1}/block{i}")
    x = b.op(K.MEAN, x, name="head/pool", axes=(1, 2))
    x = b.op(K.DENSE, x, name="head/logits", features=num_classes)
    return b.build(x)


def resnet18(**kw) -> Graph:
    return resnet((2, 2, 2, 2), False, "resnet18", **kw)


def resnet34(**kw) -> Graph:
    return resnet((3, 4, 6, 3), False, "resnet34", **kw)


def resnet50(**kw) -> Graph:
    return resnet((3, 4, 6, 3), True, "resnet50", **kw)


_SMALL = {"image_size": 32}
_CIFAR = {"stem": "cifar", "image_size": 32, "num_classes": 10}
register(ZooEntry("resnet18", resnet18, "ResNet-18, ImageNet stem, 1000 classes",
                  reference_params=11_689_512, small=_SMALL))
register(ZooEntry("resnet34", resnet34, "ResNet-34, ImageNet stem, 1000 classes",
                  reference_params=21_797_672, small=_SMALL))
register(ZooEntry("resnet50", resnet50, "ResNet-50 (v1.5 stride placement), ImageNet stem",
                  reference_params=25_557_032, small=_SMALL))
register(ZooEntry("resnet18_cifar", resnet18, "ResNet-18, CIFAR stem (3x3/1, no pool), 10 classes",
                  defaults=_CIFAR, reference_params=11_173_962, small={"image_size": 8}))
register(ZooEntry("resnet34_cifar", resnet34, "ResNet-34, CIFAR stem (3x3/1, no pool), 10 classes",
                  defaults=_CIFAR, reference_params=21_282_122, small={"image_size": 8}))
register(ZooEntry("resnet50_cifar", resnet50, "ResNet-50, CIFAR stem (3x3/1, no pool), 10 classes",
                  defaults=_CIFAR, reference_params=23_520_842, small={"image_size": 8}))


def resnet_narrow(layers: Sequence[int] = (2, 2), width: int = 8, batch: int = 1,
                  image_size: int = 28, channels: int = 1, num_classes: int = 10) -> Graph:
    """A CPU-sized ResNet: a 3x3 stem of `width` channels, then stages of basic blocks (the
    first block of each later stage halves the size and doubles the width); every other block
    preserves its shape, so block duplication and deletion can fire."""
    b = GraphBuilder("resnet_narrow")
    x = b.input("input", (batch, image_size, image_size, channels))
    with b.scope("stem"):
        x = _conv_bn(b, x, "conv", width, 3, 1)
    for stage, n in enumerate(layers):
        for i in range(n):
            t = basic_block(2 if (i == 0 and stage > 0) else 1)
            (x,) = b.block(t, [x], prefix=f"stage{stage + 1}/block{i}")
    x = b.op(K.MEAN, x, name="head/pool", axes=(1, 2))
    x = b.op(K.DENSE, x, name="head/logits", features=num_classes)
    return b.build(x)


register(ZooEntry("resnet_narrow", resnet_narrow, "a CPU-sized ResNet (widths 8/16, 2+2 basic "
                  "blocks), the trained track's seed; Fashion-MNIST-shaped by default",
                  reference_params=10_978, small={"image_size": 8}))
