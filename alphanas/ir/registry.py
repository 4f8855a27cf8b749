"""The op registry: one `OpDef` per `OpKind` holding every facet of that op.

Facets: arity, attribute schema, normalization, shape rule, depth class, params and FLOPs rules,
Flax lowering (a function name in `alphanas.ir._lowering`, imported lazily so that
`import alphanas.ir` needs no jax) and a one-line doc.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from alphanas.errors import AttrError
from alphanas.ir import rules as R
from alphanas.ir.attrs import REQUIRED, AttrSpec, AttrType, DepthClass, OpKind, Size

__all__ = ["OpDef", "REGISTRY", "opdef", "LINEAR", "NONLINEAR", "ELEMENTWISE", "RESHAPING"]

Attrs = dict[str, Any]
ShapeRule = Callable[[Attrs, list[tuple[int, ...]]], tuple[int, ...]]
CostRule = Callable[[Attrs, list[tuple[int, ...]], tuple[int, ...]], int]
NormRule = Callable[[Attrs, list[tuple[int, ...]]], Attrs]


def _identity_norm(a: Attrs, ins: list[tuple[int, ...]]) -> Attrs:
    return a


@dataclass(frozen=True)
class OpDef:
    """Everything about one op kind."""

    kind: OpKind
    arity: tuple[int, int | None]
    attrs: tuple[AttrSpec, ...]
    shape: ShapeRule
    depth: DepthClass
    params: CostRule
    flops: CostRule
    lower: str
    doc: str
    norm: NormRule = _identity_norm

    def spec(self, name: str) -> AttrSpec | None:
        for s in self.attrs:
            if s.name == name:
                return s
        return None

    def check_attrs(self, attrs: Mapping[str, Any], where: str) -> tuple[tuple[str, Any], ...]:
        """Validate `attrs` against the schema and fill defaults; sorted (name, value) pairs."""
        known = {s.name for s in self.attrs}
        unknown = sorted(set(attrs) - known)
        if unknown:
            accepted = ", ".join(sorted(known)) or "none"
            raise AttrError(f"{where}: unknown attribute '{unknown[0]}' (accepted: {accepted})")
        out = []
        for s in self.attrs:
            if s.name in attrs:
                out.append((s.name, s.check(attrs[s.name], where)))
            elif s.default is REQUIRED:
                raise AttrError(f"{where}: missing required attribute '{s.name}' ({s.type.value})")
            else:
                out.append((s.name, s.default))
        return tuple(sorted(out))

    def check_arity(self, n: int) -> bool:
        lo, hi = self.arity
        return n >= lo and (hi is None or n <= hi)

    def arity_text(self) -> str:
        lo, hi = self.arity
        if hi is None:
            return f"at least {lo}"
        return str(lo) if lo == hi else f"{lo} to {hi}"


def _a(name: str, t: AttrType, default: Any = REQUIRED, **kw: Any) -> AttrSpec:
    return AttrSpec(name, t, default, **kw)


_PADDING = _a("padding", AttrType.CHOICE, "SAME", choices=("SAME", "VALID"))
_BIAS = _a("use_bias", AttrType.BOOL, True)
_NONE: tuple[AttrSpec, ...] = ()

L, N, T = DepthClass.LINEAR, DepthClass.NONLINEAR, DepthClass.TRANSPARENT
K = OpKind


def _elementwise(kind: OpKind, doc: str, depth: DepthClass = N) -> OpDef:
    return OpDef(kind, (1, 1), _NONE, R.shape_same, depth, R.params_zero, R.flops_elementwise,
                 "lower_" + kind.value, doc)


_DEFS = [
    OpDef(K.CONV, (1, 1), (
        _a("features", AttrType.SIZE, min=1, doc="output channels"),
        _a("kernel", AttrType.INTS, min=1),
        _a("strides", AttrType.INTS, 1, min=1),
        _PADDING,
        _a("dilation", AttrType.INTS, 1, min=1),
        _a("groups", AttrType.SIZE, 1, min=1, doc="feature groups; rel() = depthwise"),
        _BIAS,
    ), R.shape_conv, L, R.params_conv, R.flops_conv, "lower_conv",
        "N-d convolution over the spatial dims (channels last), grouped/depthwise via groups",
        R.norm_conv),
    OpDef(K.DENSE, (1, 1), (_a("features", AttrType.SIZE, min=1), _BIAS),
          R.shape_dense, L, R.params_dense, R.flops_dense, "lower_dense",
          "affine map of the last axis"),
    OpDef(K.DENSE_GENERAL, (1, 1), (
        _a("features", AttrType.SIZES, min=1), _a("axis", AttrType.AXES, (-1,)), _BIAS,
    ), R.shape_dense_general, L, R.params_dense_general, R.flops_dense_general,
        "lower_dense_general", "affine map contracting the chosen axes into new trailing features",
        R.norm_dense_general),
    OpDef(K.ADD, (2, 2), _NONE, R.shape_broadcast, L, R.params_zero, R.flops_elementwise,
          "lower_add", "elementwise sum with broadcasting"),
    OpDef(K.MUL, (2, 2), _NONE, R.shape_broadcast, L, R.params_zero, R.flops_elementwise,
          "lower_mul", "elementwise product with broadcasting"),
    OpDef(K.CONCAT, (2, None), (_a("axis", AttrType.INT, -1),), R.shape_concat, L,
          R.params_zero, R.flops_zero, "lower_concat", "concatenation along one axis"),
    OpDef(K.SCALAR_ADD, (1, 1), (_a("value", AttrType.FLOAT),), R.shape_same, L,
          R.params_zero, R.flops_elementwise, "lower_scalar_add", "adds a constant"),
    OpDef(K.SCALAR_MUL, (1, 1), (_a("value", AttrType.FLOAT),), R.shape_same, L,
          R.params_zero, R.flops_elementwise, "lower_scalar_mul", "multiplies by a constant"),
    OpDef(K.EINSUM, (1, None), (_a("equation", AttrType.STR),), R.shape_einsum, L,
          R.params_zero, R.flops_einsum, "lower_einsum",
          "explicit einsum over its inputs ('...qhd,...khd->...hqk')"),
    OpDef(K.SELF_ATTENTION, (1, 1), (
        _a("num_heads", AttrType.INT, min=1),
        _a("qkv_features", AttrType.SIZE, Size(), min=1),
        _a("out_features", AttrType.SIZE, Size(), min=1),
        _BIAS,
    ), R.shape_attention, N, R.params_attention, R.flops_attention, "lower_self_attention",
        "fused multi-head dot-product self-attention over the second-to-last axis"),
    _elementwise(K.RELU, "max(x, 0)"),
    _elementwise(K.GELU, "Gaussian error linear unit (tanh approximation)"),
    _elementwise(K.SWISH, "x * sigmoid(x) (SiLU)"),
    _elementwise(K.SIGMOID, "logistic sigmoid"),
    _elementwise(K.TANH, "hyperbolic tangent"),
    OpDef(K.SOFTMAX, (1, 1), (_a("axis", AttrType.INT, -1),), R.shape_softmax, N, R.params_zero,
          R.flops_scaled(3), "lower_softmax", "softmax along one axis"),
    OpDef(K.BATCH_NORM, (1, 1), (
        _a("momentum", AttrType.FLOAT, 0.9, min=0, max=1),
        _a("epsilon", AttrType.FLOAT, 1e-5, min=0),
    ), R.shape_same, L, R.params_norm, R.flops_scaled(2), "lower_batch_norm",
        "batch normalization over the last axis (running statistics in eval mode)"),
    OpDef(K.LAYER_NORM, (1, 1), (_a("epsilon", AttrType.FLOAT, 1e-6, min=0),), R.shape_same, L,
          R.params_norm, R.flops_scaled(5), "lower_layer_norm", "layer normalization of the last axis"),
    OpDef(K.GROUP_NORM, (1, 1), (
        _a("num_groups", AttrType.INT, 32, min=1), _a("epsilon", AttrType.FLOAT, 1e-6, min=0),
    ), R.shape_group_norm, L, R.params_norm, R.flops_scaled(5), "lower_group_norm",
        "group normalization over channel groups"),
    OpDef(K.RESHAPE, (1, 1), (_a("new_shape", AttrType.SIZES, doc="batch included; one -1 allowed"),),
          R.shape_reshape, L, R.params_zero, R.flops_zero, "lower_reshape",
          "reshape to new_shape (batch axis included)"),
    OpDef(K.FLATTEN, (1, 1), _NONE, R.shape_flatten, L, R.params_zero, R.flops_zero,
          "lower_flatten", "flattens all axes but the batch"),
    OpDef(K.TRANSPOSE, (1, 1), (_a("perm", AttrType.AXES),), R.shape_transpose, L,
          R.params_zero, R.flops_zero, "lower_transpose", "permutes the axes"),
    OpDef(K.DROPOUT, (1, 1), (_a("rate", AttrType.FLOAT, 0.1, min=0, max=0.999),), R.shape_same, L,
          R.params_zero, R.flops_zero, "lower_dropout", "elementwise dropout (train mode only)"),
    OpDef(K.STOCHASTIC_DEPTH, (1, 1), (_a("rate", AttrType.FLOAT, 0.1, min=0, max=0.999),),
          R.shape_same, L, R.params_zero, R.flops_zero, "lower_stochastic_depth",
          "drops the whole example's branch with probability rate (train mode only)"),
    OpDef(K.AVG_POOL, (1, 1), (
        _a("window", AttrType.INTS, min=0, doc="0 = global over that dim"),
        _a("strides", AttrType.INTS, None, min=1, doc="default: the window"),
        _a("padding", AttrType.CHOICE, "VALID", choices=("SAME", "VALID")),
    ), R.shape_pool, L, R.params_zero, R.flops_pool, "lower_avg_pool",
        "average pooling over the spatial dims", R.norm_pool),
    OpDef(K.MAX_POOL, (1, 1), (
        _a("window", AttrType.INTS, min=0, doc="0 = global over that dim"),
        _a("strides", AttrType.INTS, None, min=1, doc="default: the window"),
        _a("padding", AttrType.CHOICE, "VALID", choices=("SAME", "VALID")),
    ), R.shape_pool, L, R.params_zero, R.flops_pool, "lower_max_pool",
        "max pooling over the spatial dims", R.norm_pool),
    OpDef(K.MEAN, (1, 1), (_a("axes", AttrType.AXES), _a("keepdims", AttrType.BOOL, False)),
          R.shape_mean, L, R.params_zero, R.flops_mean, "lower_mean", "mean over axes",
          R.norm_mean),
    OpDef(K.RESIZE, (1, 1), (
        _a("size", AttrType.SIZES, min=1, doc="spatial output size, e.g. (rel(2, axis=1), rel(2, axis=2))"),
        _a("method", AttrType.CHOICE, "nearest", choices=("nearest", "linear")),
    ), R.shape_resize, L, R.params_zero, R.flops_resize, "lower_resize",
        "resize/upsample the spatial dims"),
    OpDef(K.PARAM, (0, 0), (
        _a("shape", AttrType.SIZES, min=1), _a("stddev", AttrType.FLOAT, 0.02, min=0),
    ), R.shape_param, L, R.params_param, R.flops_zero, "lower_param",
        "a learned tensor (e.g. a position embedding), no inputs"),
    OpDef(K.IDENTITY, (1, 1), _NONE, R.shape_same, T, R.params_zero, R.flops_zero,
          "lower_identity", "returns its input"),
]

REGISTRY: dict[OpKind, OpDef] = {d.kind: d for d in _DEFS}

LINEAR = frozenset(k for k, d in REGISTRY.items() if d.depth is L)
NONLINEAR = frozenset(k for k, d in REGISTRY.items() if d.depth is N)
ELEMENTWISE = frozenset({K.RELU, K.GELU, K.SWISH, K.SIGMOID, K.TANH, K.SCALAR_ADD, K.SCALAR_MUL,
                         K.ADD, K.MUL, K.DROPOUT, K.IDENTITY})
RESHAPING = frozenset({K.RESHAPE, K.FLATTEN, K.TRANSPOSE})


def opdef(kind: OpKind) -> OpDef:
    """The registry entry of `kind`."""
    return REGISTRY[kind]
