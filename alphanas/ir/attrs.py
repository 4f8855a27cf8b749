"""Op kinds, relative sizes and typed attribute schemas.

A `Size` is a width relative to a tensor dimension ("2x input channels", "input channels / 4",
"channels of tensor X"), resolved against actual shapes, so one block template fits several
positions with different widths.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alphanas.errors import AttrError, ShapeError

__all__ = [
    "REQUIRED",
    "AttrSpec",
    "AttrType",
    "DepthClass",
    "OpKind",
    "Shape",
    "Size",
    "dim_of",
    "rel",
]

Shape = tuple[int, ...]


class OpKind(enum.Enum):
    """Every op type of the DSL; the value is the name used in JSON and on the CLI."""

    CONV = "conv"
    DENSE = "dense"
    DENSE_GENERAL = "dense_general"
    ADD = "add"
    MUL = "mul"
    CONCAT = "concat"
    SCALAR_ADD = "scalar_add"
    SCALAR_MUL = "scalar_mul"
    EINSUM = "einsum"
    SELF_ATTENTION = "self_attention"
    RELU = "relu"
    GELU = "gelu"
    SWISH = "swish"
    SIGMOID = "sigmoid"
    TANH = "tanh"
    SOFTMAX = "softmax"
    BATCH_NORM = "batch_norm"
    LAYER_NORM = "layer_norm"
    GROUP_NORM = "group_norm"
    RESHAPE = "reshape"
    FLATTEN = "flatten"
    TRANSPOSE = "transpose"
    DROPOUT = "dropout"
    STOCHASTIC_DEPTH = "stochastic_depth"
    AVG_POOL = "avg_pool"
    MAX_POOL = "max_pool"
    MEAN = "mean"
    RESIZE = "resize"
    PARAM = "param"
    IDENTITY = "identity"

    @classmethod
    def parse(cls, name: str) -> OpKind:
        """The kind called `name`, or an error listing the known kinds."""
        try:
            return cls(name)
        except ValueError:
            from alphanas.errors import UnknownOpError

            known = ", ".join(k.value for k in cls)
            raise UnknownOpError(f"unknown op '{name}'; expected one of: {known}") from None


class DepthClass(enum.Enum):
    """How an op counts for the depth property (DESIGN §4)."""

    LINEAR = "linear"
    NONLINEAR = "non-linear"
    TRANSPARENT = "transparent"


@dataclass(frozen=True, slots=True)
class Size:
    """`dim(tensor, axis) * mul / div`; `tensor=None` means the op's first input.

    Resolution fails with a `ShapeError` when the division is not exact.
    """

    axis: int = -1
    mul: int = 1
    div: int = 1
    tensor: str | None = None

    def __post_init__(self) -> None:
        if self.tensor is not None and not isinstance(self.tensor, str):
            raise AttrError(f"Size.tensor must be a tensor name, got {self.tensor!r}")
        for field in ("axis", "mul", "div"):
            if not isinstance(getattr(self, field), int) or isinstance(getattr(self, field), bool):
                raise AttrError(f"Size.{field} must be an int, got {getattr(self, field)!r}")
        if self.mul < 1 or self.div < 1:
            raise AttrError(f"Size needs mul >= 1 and div >= 1, got mul={self.mul} div={self.div}")

    def resolve(self, shape: Shape, where: str) -> int:
        """The concrete size given the referenced tensor's shape."""
        if not -len(shape) <= self.axis < len(shape):
            raise ShapeError(f"{where}: {self} refers to axis {self.axis} of a rank-{len(shape)} tensor {shape}")
        n = shape[self.axis] * self.mul
        if n % self.div:
            raise ShapeError(f"{where}: {self} is not whole: {shape[self.axis]}*{self.mul} is not divisible by {self.div}")
        return n // self.div

    def __str__(self) -> str:
        src = f"'{self.tensor}'" if self.tensor else "input"
        s = f"dim({src}, {self.axis})"
        if self.mul != 1:
            s += f"*{self.mul}"
        if self.div != 1:
            s += f"/{self.div}"
        return s


def rel(mul: int = 1, div: int = 1, axis: int = -1) -> Size:
    """A size relative to the op's first input, e.g. `rel(2)` = twice its channels."""
    return Size(axis=axis, mul=mul, div=div)


def dim_of(tensor: str, axis: int = -1, mul: int = 1, div: int = 1) -> Size:
    """A size read off another tensor of the graph, e.g. the channels of a block's input."""
    return Size(axis=axis, mul=mul, div=div, tensor=tensor)


class AttrType(enum.Enum):
    """Value types an attribute may take."""

    INT = "int"
    INTS = "int or list of ints"
    SIZE = "size (int or Size)"
    SIZES = "list of sizes"
    FLOAT = "float"
    BOOL = "bool"
    CHOICE = "choice"
    STR = "string"
    AXES = "list of ints"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True, slots=True)
class AttrSpec:
    """One attribute of an op: type, default, allowed values, lower bound."""

    name: str
    type: AttrType
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    doc: str = ""

    def check(self, value: Any, where: str) -> Any:
        """Return `value` normalized (lists to tuples) or raise `AttrError` naming `where`."""
        if value is None and self.default is None:
            return None
        t = self.type
        ok = True
        if t is AttrType.INT:
            ok = _is_int(value)
        elif t is AttrType.INTS:
            if _is_seq(value):
                value = tuple(value)
                ok = len(value) > 0 and all(_is_int(v) for v in value)
            else:
                ok = _is_int(value)
        elif t is AttrType.AXES:
            if _is_int(value):
                value = (value,)
            ok = _is_seq(value) and all(_is_int(v) for v in value)
            value = tuple(value) if ok else value
        elif t is AttrType.SIZE:
            ok = _is_int(value) or isinstance(value, Size)
        elif t is AttrType.SIZES:
            ok = _is_seq(value) and all(_is_int(v) or isinstance(v, Size) for v in value)
            value = tuple(value) if ok else value
        elif t is AttrType.FLOAT:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = ok and math.isfinite(value)
            value = float(value) if ok else value
        elif t is AttrType.BOOL:
            ok = isinstance(value, bool)
        elif t in (AttrType.CHOICE, AttrType.STR):
            ok = isinstance(value, str) and (t is AttrType.STR or value in self.choices)
        if not ok:
            expected = f"one of {', '.join(self.choices)}" if t is AttrType.CHOICE else t.value
            raise AttrError(f"{where}: attribute '{self.name}' expects {expected}, got {value!r}")
        self._check_range(value, where)
        return value

    def _check_range(self, value: Any, where: str) -> None:
        if self.min is None and self.max is None:
            return
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, Size):
                continue
            if self.min is not None and v < self.min:
                raise AttrError(f"{where}: attribute '{self.name}' must be >= {_num(self.min)}, got {value!r}")
            if self.max is not None and v > self.max:
                raise AttrError(f"{where}: attribute '{self.name}' must be <= {_num(self.max)}, got {value!r}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_seq(v: Any) -> bool:
    return isinstance(v, Sequence) and not isinstance(v, str)
