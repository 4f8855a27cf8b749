"""The paper's CIFAR CNN and a small MLP."""

from __future__ import annotations

from alphanas.ir.attrs import OpKind as K
from alphanas.ir.attrs import rel
from alphanas.ir.graph import Graph, GraphBuilder, template
from alphanas.ir.zoo import ZooEntry, register


def conv_layer():
    """conv 3x3 doubling the channels -> relu -> 2x2 average pool (the paper's block)."""

    def body(b: GraphBuilder, x: str) -> str:
        x = b.op(K.CONV, x, name="conv", features=rel(2), kernel=3)
        x = b.op(K.RELU, x, name="relu")
        return b.op(K.AVG_POOL, x, name="avg_pool", window=2)

    return template("conv_layer", body)


def cifar_cnn(batch: int = 1, image_size: int = 32, channels: int = 3, width: int = 32,
              hidden: int = 256, num_classes: int = 10) -> Graph:
    """The paper's CIFAR CNN: 1x1 projection, two conv layers, a 2-layer head. Depth 7."""
    b = GraphBuilder("cifar_cnn")
    x = b.input("input", (batch, image_size, image_size, channels))
    x = b.op(K.CONV, x, name="proj", features=width, kernel=1)
    block = conv_layer()
    for i in range(2):
        (x,) = b.block(block, [x], prefix=f"conv_layer{i}")
    x = b.op(K.FLATTEN, x, name="flatten")
    x = b.op(K.DENSE, x, name="fc/dense", features=hidden)
    x = b.op(K.RELU, x, name="fc/relu")
    x = b.op(K.DENSE, x, name="fc/logits", features=num_classes)
    return b.build(x)


def mlp(batch: int = 1, in_features: int = 64, hidden: tuple[int, ...] = (128, 64),
        num_classes: int = 10) -> Graph:
    """A small MLP: dense -> relu per hidden layer, then logits."""
    b = GraphBuilder("mlp")
    x = b.input("input", (batch, in_features))
    for i, h in enumerate(hidden):
        with b.scope(f"layer{i}"):
            x = b.op(K.DENSE, x, name="dense", features=h)
            x = b.op(K.RELU, x, name="relu")
    x = b.op(K.DENSE, x, name="logits", features=num_classes)
    return b.build(x)


register(ZooEntry("cifar_cnn", cifar_cnn, "the alphaNAS paper's CIFAR-10 CNN (depth 7)",
                  reference_params=2_192_458, small={"image_size": 8}))
register(ZooEntry("mlp", mlp, "a small 2-hidden-layer MLP on 64 features (digits-sized)",
                  reference_params=64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10))
