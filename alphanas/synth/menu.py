"""The synthesis DSL: op *variants*, each an op kind with the discrete attributes that change
the abstract state (rank, spatial size, which dims mix) fixed, and the rest left to Z3.

Enumerated (they decide the abstract state): conv 1x1 vs. KxK vs. depthwise KxK (the mixing of
channels and space differs), strides 1 vs. 2 and pool windows (the spatial size), global vs.
local pooling, keepdims. Solved by Z3 (they change only sizes and cost): channel widths (relative
to the first input's channels, or absolute), the kernel size K in {3, 5, 7}, use_bias, attention
heads. Convs use SAME padding; pools use the window/stride/padding pairs the zoo uses.

Left out of synthesis (still fine inside hosts): einsum, reshape, transpose, param, dense over
chosen axes, scalar ops, group norm: their attributes are free-form and would blow up the menu.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alphanas.ir.attrs import OpKind, rel

__all__ = ["KERNELS", "HEADS", "SYNTH_OPS", "Variant", "menu"]

K = OpKind
KERNELS = (3, 5, 7)
_WEIGHTED = frozenset({OpKind.BATCH_NORM, OpKind.LAYER_NORM, OpKind.GROUP_NORM})
HEADS = (1, 2, 3, 4, 6, 8, 12)


@dataclass(frozen=True, slots=True)
class Variant:
    """One choice of the enumeration.

    `width` says how the output's last dim relates to the inputs': "same" (first input's),
    "new" (a width Z3 picks), "sum" (concat), "unify" (add/mul: inputs equal or broadcast),
    "flatten" (product of the non-batch dims).
    """

    key: str
    kind: OpKind
    arity: int
    attrs: tuple[tuple[str, Any], ...] = ()
    width: str = "same"
    ranks: tuple[int, ...] = (2, 3, 4)
    kernel: bool = False      # kernel K x K with K chosen by Z3 from KERNELS
    depthwise: bool = False
    bias: bool = False        # use_bias chosen by Z3
    heads: bool = False       # num_heads chosen by Z3 from HEADS (dividing the width)
    commutative: bool = False

    def __str__(self) -> str:
        return self.key

    @property
    def pure(self) -> bool:
        """No parameters and no free choice: two applications to the same inputs are the same
        tensor (so a program using both equals a smaller one)."""
        return not (self.width == "new" or self.kernel or self.bias or self.heads
                    or self.kind in _WEIGHTED)


def _conv(key: str, kernel: int | None, stride: int, depthwise: bool = False) -> Variant:
    attrs: tuple[tuple[str, Any], ...] = (("strides", (stride, stride)), ("padding", "SAME"))
    if kernel is not None:
        attrs = (("kernel", (kernel, kernel)), *attrs)
    if depthwise:
        attrs = (*attrs, ("groups", rel()), ("features", rel()))
    return Variant(key, K.CONV, 1, attrs, "same" if depthwise else "new", (4,),
                   kernel=kernel is None, depthwise=depthwise, bias=True)


_VARIANTS: tuple[Variant, ...] = (
    _conv("conv1x1", 1, 1), _conv("conv1x1/s2", 1, 2),
    _conv("convKxK", None, 1), _conv("convKxK/s2", None, 2),
    _conv("dwconvKxK", None, 1, True), _conv("dwconvKxK/s2", None, 2, True),
    Variant("dense", K.DENSE, 1, (), "new", bias=True),
    Variant("batch_norm", K.BATCH_NORM, 1),
    Variant("layer_norm", K.LAYER_NORM, 1),
    Variant("relu", K.RELU, 1), Variant("gelu", K.GELU, 1), Variant("swish", K.SWISH, 1),
    Variant("sigmoid", K.SIGMOID, 1), Variant("tanh", K.TANH, 1),
    Variant("softmax", K.SOFTMAX, 1, (("axis", -1),)),
    Variant("add", K.ADD, 2, (), "unify", commutative=True),
    Variant("mul", K.MUL, 2, (), "unify", commutative=True),
    Variant("concat", K.CONCAT, 2, (("axis", -1),), "sum"),
    Variant("avg_pool2", K.AVG_POOL, 1, (("window", 2),), ranks=(4,)),
    Variant("max_pool2", K.MAX_POOL, 1, (("window", 2),), ranks=(4,)),
    Variant("avg_pool3/s2", K.AVG_POOL, 1, (("window", 3), ("strides", 2), ("padding", "SAME")), ranks=(4,)),
    Variant("max_pool3/s2", K.MAX_POOL, 1, (("window", 3), ("strides", 2), ("padding", "SAME")), ranks=(4,)),
    Variant("max_pool3", K.MAX_POOL, 1, (("window", 3), ("strides", 1), ("padding", "SAME")), ranks=(4,)),
    Variant("global_mean", K.MEAN, 1, (("axes", (1, 2)),), ranks=(4,)),
    Variant("global_mean/keep", K.MEAN, 1, (("axes", (1, 2)), ("keepdims", True)), ranks=(4,)),
    Variant("token_mean", K.MEAN, 1, (("axes", (1,)),), ranks=(3,)),
    Variant("flatten", K.FLATTEN, 1, (), "flatten", ranks=(3, 4)),
    Variant("upsample2", K.RESIZE, 1, (("size", (rel(2, axis=1), rel(2, axis=2))),), ranks=(4,)),
    Variant("self_attention", K.SELF_ATTENTION, 1, (), ranks=(3,), bias=True, heads=True),
    Variant("dropout", K.DROPOUT, 1, (("rate", 0.1),)),
    Variant("stochastic_depth", K.STOCHASTIC_DEPTH, 1, (("rate", 0.1),)),
    Variant("identity", K.IDENTITY, 1),
)

SYNTH_OPS: frozenset[OpKind] = frozenset(v.kind for v in _VARIANTS)
"""The op kinds the synthesizer can place."""


def menu(ops: frozenset[OpKind]) -> tuple[Variant, ...]:
    """The variants of the allowed op kinds, in enumeration order (cheap, common ops first is
    not assumed: the order is the table's, so results are stable)."""
    return tuple(v for v in _VARIANTS if v.kind in ops)
