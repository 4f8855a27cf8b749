"""Per-op shape, normalization and cost rules, on concrete (resolved) attributes.

Shapes are channels-last: (batch, spatial..., features). Rules raise `ShapeError` with a
message saying what was expected and what was got; the caller prefixes the op's name.

FLOPs definition (for the given input shapes, batch included):
- conv, dense, dense_general, einsum, self-attention: 2 x multiply-accumulates (bias ignored);
  self-attention counts its q/k/v/out projections and both attention matmuls.
- elementwise ops (add, mul, scalar ops, activations): 1 per output element; softmax 3.
- batch norm 2 per element (folded scale+shift); layer/group norm 5 per element.
- pools: window size per output element; mean: 1 per input element;
  resize: 0 for nearest, 2 x 2^r per output element for linear (r resized dims).
- reshape, flatten, transpose, identity, param, dropout, stochastic depth: 0 (inference).
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from typing import Any

from alphanas.errors import ShapeError

Shape = tuple[int, ...]
Attrs = dict[str, Any]

__all__ = ["conv_out", "parse_einsum", "broadcast", "prod"]


def prod(xs: Sequence[int]) -> int:
    return math.prod(xs)


def _need_rank(s: Shape, lo: int, what: str) -> None:
    if len(s) < lo:
        raise ShapeError(f"{what} needs a rank >= {lo} input, got shape {s}")


def _spatial_tuple(value: Any, n: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(value)
    if len(value) != n:
        raise ShapeError(f"'{name}' has {len(value)} entries but the input has {n} spatial dims")
    return value


def conv_out(size: int, k: int, s: int, d: int, padding: str) -> int:
    """Output length of a conv/pool window along one dim (Flax/XLA semantics)."""
    if padding == "SAME":
        return -(-size // s)
    eff = (k - 1) * d + 1
    if size < eff:
        raise ShapeError(f"VALID window of extent {eff} does not fit in a dim of size {size}")
    return (size - eff) // s + 1


# ---- convolution -------------------------------------------------------------------------


def norm_conv(a: Attrs, ins: list[Shape]) -> Attrs:
    _need_rank(ins[0], 3, "conv")
    n = len(ins[0]) - 2
    a = dict(a)
    a["kernel"] = _spatial_tuple(a["kernel"], n, "kernel")
    a["strides"] = _spatial_tuple(a["strides"], n, "strides")
    a["dilation"] = _spatial_tuple(a["dilation"], n, "dilation")
    return a


def shape_conv(a: Attrs, ins: list[Shape]) -> Shape:
    x = ins[0]
    c, f, g = x[-1], a["features"], a["groups"]
    if c % g:
        raise ShapeError(f"input has {c} channels but groups={g} does not divide {c}")
    if f % g:
        raise ShapeError(f"features={f} is not divisible by groups={g}")
    spatial = tuple(
        conv_out(x[1 + i], a["kernel"][i], a["strides"][i], a["dilation"][i], a["padding"])
        for i in range(len(x) - 2)
    )
    return (x[0], *spatial, f)


def params_conv(a: Attrs, ins: list[Shape], out: Shape) -> int:
    c = ins[0][-1]
    return prod(a["kernel"]) * (c // a["groups"]) * a["features"] + (a["features"] if a["use_bias"] else 0)


def flops_conv(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return 2 * prod(out) * prod(a["kernel"]) * (ins[0][-1] // a["groups"])


# ---- dense -------------------------------------------------------------------------------


def shape_dense(a: Attrs, ins: list[Shape]) -> Shape:
    _need_rank(ins[0], 1, "dense")
    return (*ins[0][:-1], a["features"])


def params_dense(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return ins[0][-1] * a["features"] + (a["features"] if a["use_bias"] else 0)


def flops_dense(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return 2 * prod(out) * ins[0][-1]


def _axes(given: Sequence[int], x: Shape) -> list[int]:
    """`given` axes of `x` made non-negative, each checked to be in range."""
    r = len(x)
    for ax in given:
        if not -r <= ax < r:
            raise ShapeError(f"axis {ax} is out of range for a rank-{r} input {x}")
    return [ax % r for ax in given]


def norm_dense_general(a: Attrs, ins: list[Shape]) -> Attrs:
    axes = _axes(a["axis"], ins[0])
    if len(set(axes)) != len(axes):
        raise ShapeError(f"axis {a['axis']} repeats an axis")
    if 0 in axes:
        raise ShapeError("axis must not include the batch axis 0")
    return {**a, "axis": tuple(sorted(axes))}


def shape_dense_general(a: Attrs, ins: list[Shape]) -> Shape:
    x = ins[0]
    kept = tuple(d for i, d in enumerate(x) if i not in a["axis"])
    return (*kept, *a["features"])


def params_dense_general(a: Attrs, ins: list[Shape], out: Shape) -> int:
    fin = prod(ins[0][i] for i in a["axis"])
    fout = prod(a["features"])
    return fin * fout + (fout if a["use_bias"] else 0)


def flops_dense_general(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return 2 * prod(out) * prod(ins[0][i] for i in a["axis"])


# ---- elementwise / combining --------------------------------------------------------------


def broadcast(x: Shape, y: Shape) -> Shape:
    """NumPy broadcasting of two shapes."""
    r = max(len(x), len(y))
    xs, ys = (1,) * (r - len(x)) + x, (1,) * (r - len(y)) + y
    out = []
    for i, (p, q) in enumerate(zip(xs, ys, strict=False)):
        if p != q and 1 not in (p, q):
            raise ShapeError(f"shapes {x} and {y} do not broadcast (axis {i - r}: {p} vs {q})")
        out.append(max(p, q) if 1 in (p, q) else p)
    return tuple(out)


def shape_broadcast(a: Attrs, ins: list[Shape]) -> Shape:
    return broadcast(ins[0], ins[1])


def shape_same(a: Attrs, ins: list[Shape]) -> Shape:
    return ins[0]


def shape_softmax(a: Attrs, ins: list[Shape]) -> Shape:
    r = len(ins[0])
    if not -r <= a["axis"] < r:
        raise ShapeError(f"axis {a['axis']} is out of range for a rank-{r} input")
    return ins[0]


def shape_concat(a: Attrs, ins: list[Shape]) -> Shape:
    r = len(ins[0])
    ax = a["axis"]
    if not -r <= ax < r:
        raise ShapeError(f"axis {ax} is out of range for rank-{r} inputs")
    ax %= r
    for i, s in enumerate(ins[1:], 1):
        if len(s) != r or any(s[j] != ins[0][j] for j in range(r) if j != ax):
            raise ShapeError(f"input {i} has shape {s} but concat on axis {ax} needs the other dims of {ins[0]}")
    return (*ins[0][:ax], sum(s[ax] for s in ins), *ins[0][ax + 1 :])


def flops_elementwise(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return prod(out)


def flops_zero(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return 0


def params_zero(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return 0


# ---- einsum ------------------------------------------------------------------------------


def parse_einsum(eq: str, n_inputs: int) -> tuple[list[str], str]:
    """Split an explicit einsum equation ('...qhd,...khd->...hqk') into terms; '.' marks ellipsis."""
    eq = eq.replace(" ", "")
    if "->" not in eq:
        raise ShapeError(f"einsum equation '{eq}' must be explicit (contain '->')")
    lhs, rhs = eq.split("->")
    terms = [t.replace("...", ".") for t in lhs.split(",")]
    rhs = rhs.replace("...", ".")
    if len(terms) != n_inputs:
        raise ShapeError(f"einsum equation '{eq}' has {len(terms)} operands but the op has {n_inputs} inputs")
    for t in [*terms, rhs]:
        bad = [ch for ch in t if ch not in string.ascii_letters and ch != "."]
        if bad or t.count(".") > 1 or len(set(t)) != len(t):
            raise ShapeError(f"einsum term '{t}' in '{eq}' must use distinct letters and at most one '...'")
    for ch in rhs:
        if ch != "." and not any(ch in t for t in terms):
            raise ShapeError(f"einsum output label '{ch}' in '{eq}' appears in no operand")
    return terms, rhs


def _einsum_sizes(a: Attrs, ins: list[Shape]) -> tuple[dict[str, int], Shape]:
    terms, _ = parse_einsum(a["equation"], len(ins))
    sizes: dict[str, int] = {}
    ell: Shape = ()
    for t, s in zip(terms, ins, strict=False):
        n_named = len(t) - ("." in t)
        if len(s) < n_named or ("." not in t and len(s) != n_named):
            raise ShapeError(f"einsum term '{t}' does not fit an operand of shape {s}")
        k = len(s) - n_named
        if "." in t:
            i = t.index(".")
            ell = broadcast(ell, s[i : i + k])
            named = list(zip(t[:i], s[:i], strict=False)) + list(zip(t[i + 1 :], s[i + k :], strict=False))
        else:
            named = list(zip(t, s, strict=False))
        for ch, d in named:
            if sizes.setdefault(ch, d) != d:
                raise ShapeError(f"einsum label '{ch}' has size {sizes[ch]} in one operand and {d} in another")
    return sizes, ell


def shape_einsum(a: Attrs, ins: list[Shape]) -> Shape:
    _, rhs = parse_einsum(a["equation"], len(ins))
    sizes, ell = _einsum_sizes(a, ins)
    out: list[int] = []
    for ch in rhs:
        out.extend(ell if ch == "." else (sizes[ch],))
    return tuple(out)


def flops_einsum(a: Attrs, ins: list[Shape], out: Shape) -> int:
    sizes, ell = _einsum_sizes(a, ins)
    return 2 * prod(sizes.values()) * prod(ell)


# ---- attention ---------------------------------------------------------------------------


def shape_attention(a: Attrs, ins: list[Shape]) -> Shape:
    _need_rank(ins[0], 3, "self_attention")
    if a["qkv_features"] % a["num_heads"]:
        raise ShapeError(f"qkv_features={a['qkv_features']} is not divisible by num_heads={a['num_heads']}")
    return (*ins[0][:-1], a["out_features"])


def params_attention(a: Attrs, ins: list[Shape], out: Shape) -> int:
    d, q, o = ins[0][-1], a["qkv_features"], a["out_features"]
    b = a["use_bias"]
    return 3 * (d * q + (q if b else 0)) + q * o + (o if b else 0)


def flops_attention(a: Attrs, ins: list[Shape], out: Shape) -> int:
    x = ins[0]
    tokens, d, q, o = prod(x[:-1]), x[-1], a["qkv_features"], a["out_features"]
    length = x[-2]
    return 2 * tokens * (3 * d * q + 2 * length * q + q * o)


# ---- normalization -----------------------------------------------------------------------


def params_norm(a: Attrs, ins: list[Shape], out: Shape) -> int:
    c = ins[0][-1]
    return (c if a.get("use_scale", True) else 0) + (c if a.get("use_bias", True) else 0)


def shape_group_norm(a: Attrs, ins: list[Shape]) -> Shape:
    _need_rank(ins[0], 2, "group_norm")
    if ins[0][-1] % a["num_groups"]:
        raise ShapeError(f"input has {ins[0][-1]} channels but num_groups={a['num_groups']} does not divide it")
    return ins[0]


def flops_scaled(k: int):
    def rule(a: Attrs, ins: list[Shape], out: Shape) -> int:
        return k * prod(out)

    return rule


# ---- shape movers ------------------------------------------------------------------------


def shape_reshape(a: Attrs, ins: list[Shape]) -> Shape:
    new = list(a["new_shape"])
    total = prod(ins[0])
    if new.count(-1) > 1:
        raise ShapeError(f"new_shape {tuple(new)} has more than one -1")
    if any(d < -1 or d == 0 for d in new):
        raise ShapeError(f"new_shape {tuple(new)} must hold positive sizes or a single -1")
    known = prod(d for d in new if d != -1)
    if -1 in new:
        if total % known:
            raise ShapeError(f"cannot reshape {ins[0]} ({total} elements) to {tuple(new)}")
        new[new.index(-1)] = total // known
    elif known != total:
        raise ShapeError(f"cannot reshape {ins[0]} ({total} elements) to {tuple(new)} ({known} elements)")
    return tuple(new)


def shape_flatten(a: Attrs, ins: list[Shape]) -> Shape:
    _need_rank(ins[0], 1, "flatten")
    return (ins[0][0], prod(ins[0][1:]))


def shape_transpose(a: Attrs, ins: list[Shape]) -> Shape:
    perm = a["perm"]
    if sorted(perm) != list(range(len(ins[0]))):
        raise ShapeError(f"perm {perm} is not a permutation of the {len(ins[0])} axes of {ins[0]}")
    return tuple(ins[0][p] for p in perm)


# ---- pooling, mean, resize ---------------------------------------------------------------


def norm_pool(a: Attrs, ins: list[Shape]) -> Attrs:
    _need_rank(ins[0], 3, "pool")
    x = ins[0]
    n = len(x) - 2
    window = _spatial_tuple(a["window"], n, "window")
    window = tuple(x[1 + i] if w == 0 else w for i, w in enumerate(window))
    strides = window if a["strides"] is None else _spatial_tuple(a["strides"], n, "strides")
    return {**a, "window": window, "strides": strides}


def shape_pool(a: Attrs, ins: list[Shape]) -> Shape:
    x = ins[0]
    spatial = tuple(
        conv_out(x[1 + i], a["window"][i], a["strides"][i], 1, a["padding"]) for i in range(len(x) - 2)
    )
    return (x[0], *spatial, x[-1])


def flops_pool(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return prod(out) * prod(a["window"])


def norm_mean(a: Attrs, ins: list[Shape]) -> Attrs:
    axes = _axes(a["axes"], ins[0])
    if len(set(axes)) != len(axes) or not axes:
        raise ShapeError(f"axes {a['axes']} must be non-empty and distinct")
    return {**a, "axes": tuple(sorted(axes))}


def shape_mean(a: Attrs, ins: list[Shape]) -> Shape:
    if a["keepdims"]:
        return tuple(1 if i in a["axes"] else d for i, d in enumerate(ins[0]))
    return tuple(d for i, d in enumerate(ins[0]) if i not in a["axes"])


def flops_mean(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return prod(ins[0])


def shape_resize(a: Attrs, ins: list[Shape]) -> Shape:
    _need_rank(ins[0], 3, "resize")
    n = len(ins[0]) - 2
    if len(a["size"]) != n:
        raise ShapeError(f"size has {len(a['size'])} entries but the input has {n} spatial dims")
    return (ins[0][0], *a["size"], ins[0][-1])


def flops_resize(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return 0 if a["method"] == "nearest" else 2 * 2 ** (len(out) - 2) * prod(out)


def shape_param(a: Attrs, ins: list[Shape]) -> Shape:
    if any(d < 1 for d in a["shape"]):
        raise ShapeError(f"param shape {a['shape']} must hold positive sizes")
    return tuple(a["shape"])


def params_param(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return prod(out)
