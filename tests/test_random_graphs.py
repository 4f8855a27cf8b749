"""Random well-formed graphs (hypothesis): shape and param rules agree with the Flax lowering.

Graphs are valid by construction: each op is drawn from the ops that apply to the current
shape, with attributes chosen to fit it (divisors for groups, windows that fit for VALID, ...),
and the running shapes come from the rules themselves (`infer_op`). The check is then that the
rules' shapes for every tensor and params for every op equal `jax.eval_shape` of the lowering.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _ir_checks import assert_matches_flax
from hypothesis import given
from hypothesis import strategies as st

from alphanas.ir import Graph, GraphBuilder, OpKind, Size, make_op, rel
from alphanas.ir.analysis import infer_op

K = OpKind
Shape = tuple[int, ...]
Draw = Callable[[st.SearchStrategy[Any]], Any]
MAX_OPS = 6


class Net:
    """A GraphBuilder plus the rule-computed shape of every tensor built so far."""

    def __init__(self, name: str) -> None:
        self.b = GraphBuilder(name)
        self.shapes: dict[str, Shape] = {}
        self.n_ops = 0

    def input(self, name: str, shape: Shape) -> str:
        self.shapes[name] = shape
        return self.b.input(name, shape)

    def op(self, kind: OpKind, *inputs: str, **attrs: Any) -> str:
        name = self.b.op(kind, *inputs, **attrs)
        info = infer_op(make_op(name, kind, inputs, **attrs), [self.shapes[i] for i in inputs], self.shapes)
        self.shapes[name] = info.shape
        self.n_ops += 1
        return name


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def width(draw: Draw, c: int) -> int | Size:
    """An output width: a small constant or a size relative to the input's channels `c`."""
    return draw(st.one_of(st.integers(1, 8), st.sampled_from([rel(), rel(2)] + [rel(1, d) for d in divisors(c)[1:]])))


# ---- one op valid for a given shape: (kind, attrs) ----------------------------------------------


def conv(draw: Draw, s: Shape) -> tuple[OpKind, dict]:
    n = len(s) - 2
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(n))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(n))
    fits = all((k - 1) * d + 1 <= x for k, d, x in zip(kernel, dilation, s[1:-1], strict=True))
    padding = draw(st.sampled_from(["SAME", "VALID"] if fits else ["SAME"]))
    a: dict[str, Any] = {"kernel": kernel, "dilation": dilation, "padding": padding,
                         "strides": tuple(draw(st.integers(1, 2)) for _ in range(n)),
                         "use_bias": draw(st.booleans())}
    mode = draw(st.sampled_from(["plain", "grouped", "depthwise"]))
    if mode == "depthwise":
        a.update(groups=rel(), features=rel(draw(st.integers(1, 2))))
    elif mode == "grouped":
        g = draw(st.sampled_from(divisors(s[-1])))
        a.update(groups=g, features=g * draw(st.integers(1, max(1, 8 // g))))
    else:
        a.update(features=width(draw, s[-1]))
    return K.CONV, a


def pool(draw: Draw, s: Shape) -> tuple[OpKind, dict]:
    n = len(s) - 2
    window = tuple(draw(st.integers(0, min(3, x))) for x in s[1:-1])  # 0 = global
    strides = draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 2)] * n)))
    return draw(st.sampled_from([K.AVG_POOL, K.MAX_POOL])), {
        "window": window, "strides": strides, "padding": draw(st.sampled_from(["SAME", "VALID"]))}


def resize(draw: Draw, s: Shape) -> tuple[OpKind, dict]:
    size = tuple(draw(st.sampled_from([rel(2, axis=1 + i), rel(axis=1 + i), 1, 3, 5])) for i in range(len(s) - 2))
    return K.RESIZE, {"size": size, "method": draw(st.sampled_from(["nearest", "linear"]))}


def attention(draw: Draw, s: Shape) -> tuple[OpKind, dict]:
    heads = draw(st.integers(1, 3))
    return K.SELF_ATTENTION, {"num_heads": heads, "qkv_features": heads * draw(st.integers(1, 3)),
                              "out_features": width(draw, s[-1]), "use_bias": draw(st.booleans())}


def dense(draw: Draw, s: Shape) -> tuple[OpKind, dict]:
    return K.DENSE, {"features": width(draw, s[-1]), "use_bias": draw(st.booleans())}


def dense_general(draw: Draw, s: Shape) -> tuple[OpKind, dict]:
    axes = draw(st.lists(st.integers(1, len(s) - 1), min_size=1, max_size=2, unique=True))
    axes = [a - len(s) if draw(st.booleans()) else a for a in axes]
    features = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
    return K.DENSE_GENERAL, {"features": features, "axis": tuple(axes)}


def norm(draw: Draw, s: Shape) -> tuple[OpKind, dict]:
    kind = draw(st.sampled_from([K.BATCH_NORM, K.LAYER_NORM] + ([K.GROUP_NORM] if len(s) >= 2 else [])))
    return kind, ({"num_groups": draw(st.sampled_from(divisors(s[-1])))} if kind is K.GROUP_NORM else {})


def elementwise(draw: Draw, s: Shape) -> tuple[OpKind, dict]:
    kind = draw(st.sampled_from([K.RELU, K.GELU, K.SWISH, K.SIGMOID, K.TANH, K.IDENTITY, K.SOFTMAX,
                                 K.DROPOUT, K.STOCHASTIC_DEPTH, K.SCALAR_ADD, K.SCALAR_MUL]))
    if kind is K.SOFTMAX:
        return kind, {"axis": draw(st.integers(-len(s), len(s) - 1))}
    if kind in (K.DROPOUT, K.STOCHASTIC_DEPTH):
        return kind, {"rate": draw(st.sampled_from([0.0, 0.1, 0.5]))}
    if kind in (K.SCALAR_ADD, K.SCALAR_MUL):
        return kind, {"value": draw(st.sampled_from([-1.0, 0.5, 2.0]))}
    return kind, {}


def mover(draw: Draw, s: Shape) -> tuple[OpKind, dict]:
    """reshape / flatten / transpose / mean / einsum: ops that move or reduce axes."""
    options = ["flatten", "transpose", "reshape-batch"]
    if len(s) >= 2:
        options += ["mean", "einsum-swap"]
    if len(s) >= 3:
        options.append("reshape-merge")
    if len(s) <= 4 and s[-1] % 2 == 0:
        options.append("reshape-split")
    choice = draw(st.sampled_from(options))
    if choice == "flatten":
        return K.FLATTEN, {}
    if choice == "transpose":
        return K.TRANSPOSE, {"perm": (0, *draw(st.permutations(range(1, len(s)))))}
    if choice == "mean":
        axes = draw(st.lists(st.integers(1, len(s) - 1), min_size=1, max_size=len(s) - 1, unique=True))
        return K.MEAN, {"axes": tuple(axes), "keepdims": draw(st.booleans())}
    if choice == "reshape-batch":
        return K.RESHAPE, {"new_shape": (s[0], -1)}
    if choice == "reshape-merge":
        return K.RESHAPE, {"new_shape": (rel(axis=0), -1, rel())}
    if choice == "reshape-split":
        return K.RESHAPE, {"new_shape": (*s[:-1], 2, rel(1, 2))}
    return K.EINSUM, {"equation": "...ij->...ji"}


def op_for(draw: Draw, s: Shape) -> tuple[OpKind, dict]:
    """Any op of the menu that applies to an input of shape `s`."""
    menu: list[Callable[[Draw, Shape], tuple[OpKind, dict]]] = [dense, norm, elementwise, elementwise, mover]
    if len(s) >= 2:
        menu.append(dense_general)
    if len(s) >= 3:
        menu += [conv, conv, pool, attention, resize]
    return draw(st.sampled_from(menu))(draw, s)


def input_shape(draw: Draw) -> Shape:
    spatial = draw(st.lists(st.integers(1, 8), min_size=1, max_size=2))
    return (draw(st.integers(1, 2)), *spatial, draw(st.integers(1, 8)))


# ---- graph strategies ---------------------------------------------------------------------------


@st.composite
def chains(draw: Draw) -> Graph:
    """x -> up to MAX_OPS ops, each valid for the shape before it."""
    net = Net("chain")
    x = net.input("x", input_shape(draw))
    for _ in range(draw(st.integers(1, MAX_OPS))):
        kind, attrs = op_for(draw, net.shapes[x])
        x = net.op(kind, x, **attrs)
    return net.b.build(x)


def same_shape_op(draw: Draw, s: Shape, keep_channels: bool) -> tuple[OpKind, dict]:
    """An op whose output has shape `s`, or differs only in the last axis unless `keep_channels`."""
    c = rel() if keep_channels else width(draw, s[-1])
    options: list[tuple[OpKind, dict]] = [
        elementwise(draw, s), norm(draw, s), (K.DENSE, {"features": c}),
        (K.CONV, {"features": c, "kernel": draw(st.integers(1, 3))}),
        (K.CONV, {"features": rel(), "kernel": 3, "groups": rel()}),
        (K.AVG_POOL, {"window": 3, "strides": 1, "padding": "SAME"}),
    ]
    return draw(st.sampled_from(options))


@st.composite
def dags(draw: Draw) -> Graph:
    """x -> 2-3 branches -> merged by add/mul (broadcasting) or concat, then maybe more ops."""
    net = Net("dag")
    shape = input_shape(draw)
    x = net.input("x", shape)
    if draw(st.booleans()):
        x = net.op(K.CONV, x, features=draw(st.integers(2, 8)), kernel=1)
    merge = draw(st.sampled_from(["add", "mul", "concat-channels", "concat-any", "excite"]))
    n = 2 if merge in ("add", "mul", "excite") else draw(st.integers(2, 3))
    branches = []
    for _ in range(n):
        y = x
        for _ in range(draw(st.integers(0, 1))):
            kind, attrs = same_shape_op(draw, net.shapes[y], keep_channels=merge != "concat-channels")
            y = net.op(kind, y, **attrs)
        branches.append(y)
    if merge == "excite":  # (B, H, W, C) * (B, 1, 1, C): broadcasting
        s = net.op(K.MEAN, branches[1], axes=tuple(range(1, len(shape) - 1)), keepdims=True)
        y = net.op(draw(st.sampled_from([K.MUL, K.ADD])), branches[0], net.op(K.SIGMOID, s))
    elif merge in ("add", "mul"):
        y = net.op(K.ADD if merge == "add" else K.MUL, *branches)
    else:
        axis = -1 if merge == "concat-channels" else draw(st.integers(-len(shape), len(shape) - 1))
        y = net.op(K.CONCAT, *branches, axis=axis)
    while net.n_ops < MAX_OPS and draw(st.booleans()):
        kind, attrs = op_for(draw, net.shapes[y])
        y = net.op(kind, y, **attrs)
    outputs = [y, branches[0]] if draw(st.booleans()) and branches[0] not in (x, y) else [y]
    return net.b.build(outputs)


@given(chains())
def test_random_chains_agree_with_flax(g: Graph) -> None:
    assert_matches_flax(g)


@given(dags())
def test_random_dags_agree_with_flax(g: Graph) -> None:
    a = assert_matches_flax(g)
    assert any(o.kind in (K.ADD, K.MUL, K.CONCAT) for o in g.ops)
    assert len(a.output_shapes) == len(g.outputs)
