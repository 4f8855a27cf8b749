"""Mixing: the analytic per-op rules and their composition vs. the Jacobian definition; targets.

The definition (DESIGN §4) is evaluated concretely by `mixing_concrete` (JAX derivatives on
random inputs); the analytic side (`mixing.op_mixing`, `mixing.infer_mixing`) must agree with it
for every op kind on random attributes and shapes, on random graphs of the class where the
paper's composition rule is exact, and on the zoo's blocks. Where the rule is inexact, the
documented counterexamples are pinned down on both sides.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_random_graphs import chains, dags

from alphanas.errors import SpecError
from alphanas.ir import Graph, GraphBuilder, OpKind, analyze, rel, zoo
from alphanas.properties import mixing
from alphanas.properties.base import Subject
from alphanas.properties.mixing import (
    Mix,
    MixingTarget,
    MixMatrix,
    analytic_mixing,
    identity_mixing,
    infer_mixing,
    op_mixing,
)
from alphanas.properties.mixing_concrete import concrete_mixing

K = OpKind
Shape = tuple[int, ...]
Draw = Callable[[st.SearchStrategy[Any]], Any]
A, M, S, N = Mix.ALL_TO_ONE, Mix.MANY_TO_ONE, Mix.ONE_TO_ONE, Mix.NONE  # all, many, single, none

# Hypothesis budgets: a fraction of the active profile (conftest.py), since every example
# compiles a Jacobian program.
_PROFILE = settings().max_examples
PER_KIND = settings(max_examples=max(3, _PROFILE // 3))
PER_GRAPH = settings(max_examples=max(5, _PROFILE // 2))


def text(m: dict) -> dict:
    """A matrix dict with lattice names, for readable assertion messages."""
    return {f"{i}->{o}": [" ".join(v.label for v in row) for row in mat] for (i, o), mat in m.items()}


def has_constant_values(g: Graph) -> bool:
    """Whether an op makes a value that no input changes (softmax / layer or group norm over one
    element, scalar_mul by 0). Downstream of it, a relu or a product can be 0 for the one
    parameter draw of the Jacobian reference but not for other parameters, so the reference's
    dependence is draw-dependent there; the definition (and `infer_mixing`) takes parameters
    as generic."""
    a = analyze(g)
    for op in g.ops:
        info = a.ops[op.name]
        x = info.in_shapes[0] if info.in_shapes else ()
        if op.kind is K.SCALAR_MUL and info.attrs["value"] == 0:
            return True
        if op.kind is K.SOFTMAX and x[info.attrs["axis"] % len(x)] == 1:
            return True
        if op.kind is K.LAYER_NORM and x[-1] == 1:
            return True
        if op.kind is K.GROUP_NORM and math.prod(x[1:-1]) * (x[-1] // info.attrs["num_groups"]) == 1:
            return True
    return False


def assert_agree(g: Graph) -> None:
    assume(not has_constant_values(g))
    analytic, concrete = infer_mixing(g), concrete_mixing(g)
    assert analytic == concrete, f"{g.ops}\nanalytic {text(analytic)}\nconcrete {text(concrete)}"


def _rows_all_or_none_all(m: MixMatrix) -> bool:
    return all(all(v == A for v in row) or A not in row for row in m)


# ---- one op of each kind: random attributes and small shapes -----------------------------------


def shape(draw: Draw, lo: int = 1, hi: int = 4, size: int = 5) -> Shape:
    """(batch, ..., features) with rank in [lo, hi]; dims small (Jacobians stay cheap)."""
    rank = draw(st.integers(lo, hi))
    return tuple([draw(st.integers(1, 3))] + [draw(st.integers(1, size)) for _ in range(rank - 1)])


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def single(kind: OpKind, shapes: list[Shape], **attrs: Any) -> Graph:
    """A graph applying one op of `kind` to inputs x0, x1, ... of `shapes`."""
    b = GraphBuilder(kind.value)
    xs = [b.input(f"x{i}", s) for i, s in enumerate(shapes)]
    return b.build(b.op(kind, *xs, **attrs))


def conv(draw: Draw) -> Graph:
    s = shape(draw, 3, 4)
    n = len(s) - 2
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(n))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(n))
    fits = all((k - 1) * d + 1 <= x for k, d, x in zip(kernel, dilation, s[1:-1], strict=True))
    groups = draw(st.sampled_from(divisors(s[-1])))
    return single(K.CONV, [s], kernel=kernel, dilation=dilation,
                  strides=tuple(draw(st.integers(1, 3)) for _ in range(n)),
                  padding=draw(st.sampled_from(["SAME", "VALID"] if fits else ["SAME"])),
                  groups=groups, features=groups * draw(st.integers(1, 2)),
                  use_bias=draw(st.booleans()))


def pool(kind: OpKind) -> Callable[[Draw], Graph]:
    def build(draw: Draw) -> Graph:
        s = shape(draw, 3, 4)
        window = tuple(draw(st.integers(0, x)) for x in s[1:-1])  # 0 = global
        strides = draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 3)] * (len(s) - 2))))
        return single(kind, [s], window=window, strides=strides,
                      padding=draw(st.sampled_from(["SAME", "VALID"])))

    return build


def dense(draw: Draw) -> Graph:
    return single(K.DENSE, [shape(draw, 1, 3)], features=draw(st.integers(1, 4)))


def dense_general(draw: Draw) -> Graph:
    s = shape(draw, 2, 4)
    axes = draw(st.lists(st.integers(1, len(s) - 1), min_size=1, max_size=len(s) - 1, unique=True))
    axes = [a - len(s) if draw(st.booleans()) else a for a in axes]
    features = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    return single(K.DENSE_GENERAL, [s], axis=tuple(axes), features=features)


def broadcasting(kind: OpKind) -> Callable[[Draw], Graph]:
    """Two inputs broadcasting to a common shape: leading dims dropped, dims set to 1."""

    def operand(draw: Draw, out: Shape) -> Shape:
        s = out[draw(st.integers(0, len(out) - 1)):]
        return tuple(1 if draw(st.integers(0, 2)) == 0 else d for d in s)

    def build(draw: Draw) -> Graph:
        out = shape(draw, 1, 4)
        return single(kind, [operand(draw, out), operand(draw, out)])

    return build


def concat(draw: Draw) -> Graph:
    s = shape(draw, 1, 4, size=4)
    axis = draw(st.integers(-len(s), len(s) - 1))
    parts = [tuple(draw(st.integers(1, 3)) if i == axis % len(s) else d for i, d in enumerate(s))
             for _ in range(draw(st.integers(2, 3)))]
    return single(K.CONCAT, parts, axis=axis)


def einsum(draw: Draw) -> Graph:
    """1-2 operands over labels a-d; ellipsis in every term, in none, or summed (not in output)."""
    sizes = {ch: draw(st.integers(1, 4)) for ch in "abcd"}
    n = draw(st.integers(1, 2))
    terms = ["".join(draw(st.permutations("abcd"))[: draw(st.integers(1, 3))]) for _ in range(n)]
    labels = sorted(set("".join(terms)))
    rhs = "".join(draw(st.permutations(labels))[: draw(st.integers(0, len(labels)))])
    ell = draw(st.sampled_from(["none", "all", "summed"]))
    ell_shape = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(1, 2))))
    shapes = []
    for t in terms:  # this operand's ellipsis: a suffix of ell_shape, maybe with 1s (broadcast)
        lead = ell_shape[draw(st.integers(0, len(ell_shape))):] if ell != "none" else ()
        lead = tuple(1 if draw(st.integers(0, 3)) == 0 else d for d in lead)
        shapes.append(lead + tuple(sizes[ch] for ch in t))
    pre = "..." if ell != "none" else ""
    eq = ",".join(pre + t for t in terms) + "->" + ("..." if ell == "all" else "") + rhs
    return single(K.EINSUM, shapes, equation=eq)


def attention(draw: Draw) -> Graph:
    heads = draw(st.integers(1, 2))
    return single(K.SELF_ATTENTION, [shape(draw, 3, 4, size=4)], num_heads=heads,
                  qkv_features=heads * draw(st.integers(1, 2)), out_features=draw(st.integers(1, 3)),
                  use_bias=draw(st.booleans()))


def unary(kind: OpKind, **fixed: Any) -> Callable[[Draw], Graph]:
    def build(draw: Draw) -> Graph:
        return single(kind, [shape(draw)], **{k: draw(v) for k, v in fixed.items()})

    return build


def softmax(draw: Draw) -> Graph:
    s = shape(draw)
    return single(K.SOFTMAX, [s], axis=draw(st.integers(-len(s), len(s) - 1)))


def transpose(draw: Draw) -> Graph:
    s = shape(draw)
    return single(K.TRANSPOSE, [s], perm=tuple(draw(st.permutations(range(len(s))))))


def group_norm(draw: Draw) -> Graph:
    s = shape(draw, 2, 4)
    return single(K.GROUP_NORM, [s], num_groups=draw(st.sampled_from(divisors(s[-1]))))


def reshape(draw: Draw) -> Graph:
    """A random factorization of the element count (size-1 dims included), maybe with a -1."""
    s = shape(draw)
    rest, new = math.prod(s), []
    while rest > 1 and len(new) < 4:
        d = draw(st.sampled_from(divisors(rest)))
        new.append(d)
        rest //= d
    new = [*new, rest] if rest > 1 or not new else new
    new = list(draw(st.permutations(new)))
    if draw(st.booleans()):
        new[draw(st.integers(0, len(new) - 1))] = -1
    return single(K.RESHAPE, [s], new_shape=tuple(new))


def mean(draw: Draw) -> Graph:
    s = shape(draw)
    axes = draw(st.lists(st.integers(0, len(s) - 1), min_size=1, max_size=len(s), unique=True))
    return single(K.MEAN, [s], axes=tuple(axes), keepdims=draw(st.booleans()))


def resize(draw: Draw) -> Graph:
    s = shape(draw, 3, 4)
    size = tuple(draw(st.integers(1, 7)) for _ in s[1:-1])
    return single(K.RESIZE, [s], size=size, method=draw(st.sampled_from(["nearest", "linear"])))


def param(draw: Draw) -> Graph:
    b = GraphBuilder("param")
    b.input("x", shape(draw))
    return b.build(b.op(K.PARAM, shape=shape(draw, 1, 3)))


RATE = st.sampled_from([0.0, 0.3, 0.9])
ONE_OP: dict[OpKind, Callable[[Draw], Graph]] = {
    K.CONV: conv, K.DENSE: dense, K.DENSE_GENERAL: dense_general,
    K.ADD: broadcasting(K.ADD), K.MUL: broadcasting(K.MUL), K.CONCAT: concat,
    K.SCALAR_ADD: unary(K.SCALAR_ADD, value=st.sampled_from([-1.5, 0.0, 2.0])),
    K.SCALAR_MUL: unary(K.SCALAR_MUL, value=st.sampled_from([-1.5, 0.0, 0.5])),
    K.EINSUM: einsum, K.SELF_ATTENTION: attention,
    K.RELU: unary(K.RELU), K.GELU: unary(K.GELU), K.SWISH: unary(K.SWISH),
    K.SIGMOID: unary(K.SIGMOID), K.TANH: unary(K.TANH), K.SOFTMAX: softmax,
    K.BATCH_NORM: unary(K.BATCH_NORM), K.LAYER_NORM: unary(K.LAYER_NORM), K.GROUP_NORM: group_norm,
    K.RESHAPE: reshape, K.FLATTEN: unary(K.FLATTEN), K.TRANSPOSE: transpose,
    K.DROPOUT: unary(K.DROPOUT, rate=RATE), K.STOCHASTIC_DEPTH: unary(K.STOCHASTIC_DEPTH, rate=RATE),
    K.AVG_POOL: pool(K.AVG_POOL), K.MAX_POOL: pool(K.MAX_POOL), K.MEAN: mean, K.RESIZE: resize,
    K.PARAM: param, K.IDENTITY: unary(K.IDENTITY),
}


def test_every_op_kind_has_a_rule_and_a_strategy() -> None:
    assert set(ONE_OP) == set(OpKind)
    assert set(mixing._RULES) == set(OpKind)


@pytest.mark.parametrize("kind", list(OpKind), ids=lambda k: k.value)
@PER_KIND
@given(data=st.data())
def test_op_rule_matches_the_definition(kind: OpKind, data: st.DataObject) -> None:
    g = data.draw(st.composite(lambda draw: ONE_OP[kind](draw))(), label="graph")
    op = g.ops[-1]
    tables = op_mixing(op, analyze(g).ops[op.name])
    concrete = concrete_mixing(g)
    for x, table in zip(op.inputs, tables, strict=True):
        assert table == concrete[(x, op.name)], (
            f"{op}\n{g.input_shapes}\nanalytic {text({(x, op.name): table})}\nconcrete {text(concrete)}")
    assert infer_mixing(g) == concrete
    assert all(_rows_all_or_none_all(m) for m in concrete.values())  # a theorem of the definition


# ---- the definition on examples (DESIGN §4) -------------------------------------------------------


def test_dense_and_conv_examples() -> None:
    """Dense: batch -> batch one, features -> features all; a reduced dim pairs with every output
    dim, so features -> batch is all (the batch slice through the centre reads every feature),
    while batch -> features is none. 3x3 conv: spatial many, channels all."""
    g = single(K.DENSE, [(3, 4)], features=5)
    assert infer_mixing(g)[("x0", "dense")] == ((S, N), (A, A)) == concrete_mixing(g)[("x0", "dense")]
    g = single(K.CONV, [(2, 6, 6, 3)], features=4, kernel=3)
    want = ((S, N, N, N), (N, M, N, N), (N, N, M, N), (A, A, A, A))
    assert infer_mixing(g)[("x0", "conv")] == want == concrete_mixing(g)[("x0", "conv")]


def test_kernel_size_and_groups_change_the_table() -> None:
    """The reference cached tables under a key without attribute values; ours differ."""
    one = single(K.CONV, [(2, 6, 6, 4)], features=4, kernel=1)
    depthwise = single(K.CONV, [(2, 6, 6, 4)], features=4, kernel=3, groups=4)
    grouped = single(K.CONV, [(2, 6, 6, 4)], features=4, kernel=3, groups=2)
    tables = [infer_mixing(g)[("x0", "conv")] for g in (one, depthwise, grouped)]
    assert [t[1][1] for t in tables] == [S, M, M]
    assert [t[3][3] for t in tables] == [A, S, M]


def test_size_one_dims_and_inputs_returned_as_outputs() -> None:
    b = GraphBuilder("io")
    x, y = b.input("x", (1, 3)), b.input("y", (2, 3))
    g = b.build([x, b.op(K.RELU, y)])
    m = infer_mixing(g)
    assert m[("x", "x")] == identity_mixing((1, 3)) == ((A, A), (N, S))
    assert m[("y", "relu")] == ((S, N), (N, S)) and m[("x", "relu")] == ((N, N), (N, N))
    assert m == concrete_mixing(g)


# ---- compositions ---------------------------------------------------------------------------------


class Net:
    """A GraphBuilder that tracks shapes with the rules."""

    def __init__(self, name: str) -> None:
        self.b = GraphBuilder(name)
        self.shapes: dict[str, Shape] = {}

    def input(self, name: str, s: Shape) -> str:
        self.shapes[name] = s
        return self.b.input(name, s)

    def op(self, kind: OpKind, *xs: str, **attrs: Any) -> str:
        y = self.b.op(kind, *xs, **attrs)
        self.shapes[y] = analyze(self.b.build(y)).shapes[y]
        return y

    def apply(self, choice: tuple[OpKind, dict], *xs: str) -> str:
        return self.op(choice[0], *xs, **choice[1])


def window(draw: Draw, s: Shape) -> tuple[OpKind, dict]:
    """A conv or pool with dilation 1 (every output position then reads some input)."""
    n = len(s) - 2
    if draw(st.booleans()):
        kernel = tuple(draw(st.integers(1, min(3, x))) for x in s[1:-1])
        groups = draw(st.sampled_from(divisors(s[-1])))
        return K.CONV, {"kernel": kernel, "strides": tuple(draw(st.integers(1, 2)) for _ in range(n)),
                        "padding": draw(st.sampled_from(["SAME", "VALID"])), "groups": groups,
                        "features": groups * draw(st.integers(1, 2))}
    return draw(st.sampled_from([K.AVG_POOL, K.MAX_POOL])), {
        "window": tuple(draw(st.integers(0, x)) for x in s[1:-1]),
        "strides": draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 2)] * n))),
        "padding": draw(st.sampled_from(["SAME", "VALID"]))}


def same_shape(draw: Draw, s: Shape) -> tuple[OpKind, dict]:
    """A 'regular' op keeping the shape: every input dim read at the output's own coordinate or
    fully (identity or reduced), so each output element reads the input like the centre does.
    The analytic side assumes that nothing cancels exactly, so the generator avoids identities:
    scales are positive (x * -0.5 + x * -0.5 + x is constant), and normalizers are followed by a
    tanh (softmax sums to 1 and a normalized group averages to 0, so a mean after them is
    constant)."""
    kind = draw(st.sampled_from([K.RELU, K.TANH, K.SWISH, K.SCALAR_MUL, K.BATCH_NORM, K.LAYER_NORM,
                                 K.SOFTMAX, K.GROUP_NORM, K.DENSE, K.SELF_ATTENTION, K.IDENTITY]))
    attrs: dict[str, Any] = {
        K.SCALAR_MUL: {"value": 1.5}, K.DENSE: {"features": rel()},
        K.SOFTMAX: {"axis": draw(st.integers(-len(s), len(s) - 1))},
        K.GROUP_NORM: {"num_groups": draw(st.sampled_from(divisors(s[-1])))},
        K.SELF_ATTENTION: {"num_heads": 1, "qkv_features": 2, "out_features": rel()},
    }.get(kind, {})
    return kind, attrs


def reshaping(draw: Draw, s: Shape) -> tuple[OpKind, dict]:
    """A 'regular' op that may change the shape (no reshape or flatten: see the counterexamples)."""
    options: list[tuple[OpKind, dict]] = [
        (K.DENSE, {"features": draw(st.integers(1, 3))}),
        (K.TRANSPOSE, {"perm": tuple(draw(st.permutations(range(len(s)))))}),
        (K.EINSUM, {"equation": "...ij->...ji"}),
        (K.MEAN, {"axes": (draw(st.integers(1, len(s) - 1)),), "keepdims": draw(st.booleans())}),
    ]
    if len(s) >= 3:
        axes = tuple(draw(st.lists(st.integers(1, len(s) - 1), min_size=1, max_size=2, unique=True)))
        options += [(K.DENSE_GENERAL, {"axis": axes, "features": (2,)}),
                    (K.SELF_ATTENTION, {"num_heads": 1, "qkv_features": 2, "out_features": 3})]
    return draw(st.sampled_from(options))


@st.composite
def regular_graphs(draw: Draw) -> Graph:
    """x -> [window] -> 1-3 branches of regular ops joined by add/mul (or a squeeze-excite) ->
    regular ops -> [window if none before]: at most one window on every path."""
    net = Net("regular")
    x = net.input("x", (draw(st.integers(1, 2)), *(draw(st.integers(1, 4)) for _ in range(
        draw(st.integers(1, 2)))), draw(st.integers(1, 3))))
    windowed = draw(st.booleans())
    if windowed:
        x = net.apply(window(draw, net.shapes[x]), x)
    branches = []
    for _ in range(draw(st.integers(1, 3))):
        y = x
        for _ in range(draw(st.integers(0, 2))):
            choice = same_shape(draw, net.shapes[y])
            y = net.apply(choice, y)
            if choice[0] in (K.SOFTMAX, K.LAYER_NORM, K.GROUP_NORM):
                y = net.op(K.TANH, y)  # a mean over the normalized axes would be constant
        branches.append(y)
    if draw(st.booleans()):  # squeeze-excite: broadcast a per-channel gate back
        s = net.op(K.MEAN, branches[-1], axes=tuple(range(1, len(net.shapes[x]) - 1)), keepdims=True)
        branches[-1] = net.op(K.SIGMOID, s)
    y = branches[0]
    for other in branches[1:]:
        y = net.op(draw(st.sampled_from([K.ADD, K.MUL])), y, other)
    for _ in range(draw(st.integers(0, 2))):
        y = net.apply(reshaping(draw, net.shapes[y]), y)
    if not windowed and len(net.shapes[y]) >= 3 and draw(st.booleans()):
        y = net.apply(window(draw, net.shapes[y]), y)
    outs = [y, branches[0]] if branches[0] not in (x, y) and draw(st.booleans()) else [y]
    return net.b.build(outs)


@PER_GRAPH
@given(regular_graphs())
def test_composition_is_exact_on_regular_graphs(g: Graph) -> None:
    assert_agree(g)
    assert analytic_mixing(g) == infer_mixing(g)


@settings(max_examples=max(10, _PROFILE))
@given(st.one_of(chains(), dags()))
def test_an_all_to_one_entry_fills_its_row(g: Graph) -> None:
    """By the definition (the centre lies on every slice), and kept by `compose`; on the random
    graphs of test_random_graphs, any op mix (analytic side only: no Jacobians)."""
    m = infer_mixing(g)
    assert set(m) == set(Subject(g).pairs) and all(_rows_all_or_none_all(x) for x in m.values())


def test_compose_follows_the_paper_rule() -> None:
    before = ((S, N), (N, M), (N, A))  # X (3 dims) -> Y (2 dims)
    op = ((N, M, N), (S, N, N))  # Y -> Z (3 dims)
    # row 0 reaches Z only through Y0 -> Z1; row 1 through Y1 -> Z0; row 2 holds an ALL_TO_ONE
    assert mixing.compose(before, op) == ((N, M, N), (M, N, N), (A, A, A))
    assert mixing.compose(((S, N), (N, S)), op) == op  # the diagonal is neutral


# ---- where the paper's composition rule is not exact (documented in `mixing.compose`) ----------


def chain(shape_: Shape, *ops: tuple[OpKind, dict]) -> Graph:
    net = Net("chain")
    x = net.input("x", shape_)
    for op in ops:
        x = net.apply(op, x)
    return net.b.build(x)


def pair(g: Graph) -> tuple[MixMatrix, MixMatrix]:
    """(the paper's composition rule, the Jacobian definition); `infer_mixing` is exact."""
    key = (g.input_names[0], g.outputs[0])
    concrete = concrete_mixing(g)[key]
    assert infer_mixing(g)[key] == concrete
    return analytic_mixing(g)[key], concrete


def test_stacked_windows_spanning_a_dim_are_all_to_one_concretely() -> None:
    """Two 3-wide windows on a dim of 4: the centre reads all 4 positions (ALL_TO_ONE, so the
    whole row), but the rule only combines MANY_TO_ONE with MANY_TO_ONE."""
    conv3 = (K.CONV, {"features": 2, "kernel": 3})
    analytic, concrete = pair(chain((2, 4, 2), conv3, conv3))
    assert analytic == ((S, N, N), (N, M, N), (A, A, A))
    assert concrete == ((S, N, N), (A, A, A), (A, A, A))


def test_a_dim_split_and_merged_back_loses_its_pairing() -> None:
    """(2, 6) -> (2, 2, 3) -> (2, 6) is the identity, but no output dim of the split pairs with
    the 6 features (each slice reads 2 or 3 of them), so the rule finds no path."""
    analytic, concrete = pair(chain((2, 6), (K.RESHAPE, {"new_shape": (2, 2, 3)}),
                                    (K.RESHAPE, {"new_shape": (2, 6)})))
    assert analytic == ((S, N), (N, N))
    assert concrete == ((S, N), (N, S))


def test_all_to_one_at_the_centre_is_propagated_off_centre() -> None:
    """A 3-wide window on a dim of 3 reads everything at the centre only; after a concat the
    output's centre is the window's first position, which reads 2 of 3."""
    net = Net("concat")
    x, w = net.input("x", (2, 3, 2)), net.input("w", (2, 2, 2))
    y = net.op(K.CONV, x, features=2, kernel=3)
    g = net.b.build(net.op(K.CONCAT, w, y, axis=1))
    analytic, concrete = analytic_mixing(g)[("x", "concat")], concrete_mixing(g)[("x", "concat")]
    assert infer_mixing(g)[("x", "concat")] == concrete
    assert analytic[1] == (A, A, A)
    assert concrete[1] == (N, M, N)


def test_paths_reading_different_positions_join_to_more_than_their_max() -> None:
    """flatten(x) + flatten(x transposed) on (2, 2, 2): the output's centre reads x[1, 0] on one
    path and x[0, 1] on the other, i.e. both positions of each dim (ALL_TO_ONE), while each path
    alone is ONE_TO_ONE."""
    net = Net("paths")
    x = net.input("x", (2, 2, 2))
    a = net.op(K.FLATTEN, x)
    b = net.op(K.FLATTEN, net.op(K.TRANSPOSE, x, perm=(0, 2, 1)))
    g = net.b.build(net.op(K.ADD, a, b))
    analytic, concrete = pair(g)
    assert analytic == ((S, N), (N, S), (N, S))
    assert concrete == ((S, N), (A, A), (A, A))


# ---- the zoo's blocks ------------------------------------------------------------------------------

_CHECKED: set[tuple] = set()  # block structures already compared (shared across zoo models)


def _structure(g: Graph) -> tuple:
    """What the mixing of a block depends on, up to widths: op kinds, kernels, strides, wiring."""
    keep = ("kernel", "strides", "window", "axes", "axis", "groups", "equation", "perm", "keepdims")
    return tuple((o.kind, o.inputs.__len__(), tuple((k, str(v)) for k, v in o.attrs if k in keep))
                 for o in g.ops)


def representative_blocks(name: str) -> list[Subject]:
    """The first instance of each block structure of zoo model `name` at its small size (batch 2,
    so that the batch dim is not a size-1 dim), skipping structures another model covered."""
    g = zoo.build(name, **{**zoo.ZOO[name].small, "batch": 2})
    out = []
    for block in g.blocks:
        sub = Subject.sub(g, block.ops)
        key = _structure(g.template(block.template).graph)
        if key not in _CHECKED:
            _CHECKED.add(key)
            out.append(sub)
    return out


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_blocks_match_the_definition(name: str) -> None:
    for sub in representative_blocks(name):
        analytic, concrete = infer_mixing(sub), concrete_mixing(sub.graph, draws=16)
        assert analytic == concrete, f"{name} {sub.graph.ops[0].name}: {text(analytic)} vs {text(concrete)}"


def test_a_zoo_block_with_stacked_windows_saturates() -> None:
    """ResNet-18's second stage-2 block: two 3x3 convs on 4x4 read the whole plane at the centre
    (see test_stacked_windows_spanning_a_dim_are_all_to_one_concretely)."""
    g = zoo.build("resnet18", image_size=32, batch=2)
    block = next(b for b in g.blocks if b.prefix == "stage2/block1")
    sub = Subject.sub(g, block.ops)
    (key,) = sub.pairs
    analytic, concrete = analytic_mixing(sub)[key], concrete_mixing(sub.graph, draws=16)[key]
    assert infer_mixing(sub)[key] == concrete
    assert analytic == ((S, N, N, N), (N, M, N, N), (N, N, M, N), (A, A, A, A))
    assert concrete == ((S, N, N, N), (A, A, A, A), (A, A, A, A), (A, A, A, A))


@pytest.mark.parametrize("name", zoo.names())
def test_infer_mixing_on_whole_zoo_models(name: str) -> None:
    """At the default (full) size: every pair present, matrices input rank x output rank."""
    g = zoo.build(name, batch=2)
    shapes = analyze(g).shapes
    m = infer_mixing(g)
    assert set(m) == set(Subject(g).pairs)
    for (i, o), mat in m.items():
        assert len(mat) == len(shapes[i]) and all(len(r) == len(shapes[o]) for r in mat)
        assert _rows_all_or_none_all(mat)
    (mat,) = m.values()
    assert mat[0][0] == S  # batch -> batch stays one-to-one through a whole classifier


# ---- the target -----------------------------------------------------------------------------------


def subjects() -> list[Subject]:
    g = zoo.build("cifar_cnn", image_size=8, batch=2)
    return [Subject.whole(g)] + [Subject.sub(g, b.ops) for b in g.blocks]


def test_read_off_is_satisfied() -> None:
    for s in subjects():
        t = MixingTarget.read_off(s)
        assert t.check(s) == [] and t.satisfied_by(s) and t.distance(s) == 0.0
        assert len(t.entries) == len(s.pairs)


LEVELS = st.sampled_from(list(Mix))


@settings(max_examples=max(20, _PROFILE))
@given(data=st.data())
def test_distance_is_zero_iff_satisfied(data: st.DataObject) -> None:
    s = data.draw(st.sampled_from(subjects()))
    got = dict(MixingTarget.read_off(s).entries)
    entries = tuple((p, tuple(tuple(data.draw(LEVELS) for _ in row) for row in m)) for p, m in got.items())
    t = MixingTarget(entries)
    want = [(f"{i}->{o}[{a},{b}]", v.label, got[(i, o)][a][b].label, float(v - got[(i, o)][a][b]))
            for (i, o), m in entries for a, row in enumerate(m) for b, v in enumerate(row)
            if v > got[(i, o)][a][b]]
    assert [(v.where, v.expected, v.got, v.amount) for v in t.check(s)] == want
    nonzero = sum(v > N for _, m in entries for row in m for v in row)
    assert (t.distance(s) == 0.0) == (want == []) == t.satisfied_by(s)
    assert t.distance(s) == (len(want) / nonzero if nonzero else 0.0)


def test_a_raised_target_reports_each_entry() -> None:
    s = Subject.whole(single(K.DENSE, [(3, 4)], features=5))
    t = MixingTarget(((("x0", "dense"), ((A, A), (A, A))),))  # the dense has ((S, N), (A, A))
    v1, v2 = t.check(s)
    assert (v1.where, v1.expected, v1.got, v1.amount) == ("x0->dense[0,0]", "all", "one", 2.0)
    assert (v2.where, v2.expected, v2.got, v2.amount) == ("x0->dense[0,1]", "all", "none", 3.0)
    assert str(v2) == "mixing at x0->dense[0,1]: expected all, got none"
    assert t.distance(s) == pytest.approx(2 / 4)
    assert MixingTarget(((("x0", "dense"), ((S, N), (N, N))),)).distance(s) == 0.0


def test_mutation_is_seeded_and_only_drops_pairs() -> None:
    net = Net("pairs")
    x0, x1, x2 = (net.input(f"x{k}", (2, 3)) for k in range(3))
    a = net.op(K.ADD, x0, x1)
    s = Subject.whole(net.b.build([a, net.op(K.DENSE, net.op(K.MUL, a, x2), features=3)]))
    t = MixingTarget.read_off(s)
    assert len(t.entries) == 6
    assert t.mutate(7) == t.mutate(7)
    assert len({t.mutate(seed) for seed in range(20)}) > 2
    assert t.mutate(3, p=0.0) == t
    assert all(v == N for _, m in t.mutate(3, p=1.0).entries for row in m for v in row)
    for seed in range(5):
        mutated = t.mutate(seed)
        assert mutated.satisfied_by(s)  # dropping pairs only weakens a lower bound
        for (p1, m1), (p2, m2) in zip(t.entries, mutated.entries, strict=True):
            assert p1 == p2 and (m2 == m1 or all(v == N for row in m2 for v in row))
    with pytest.raises(TypeError, match="unknown mutation options: q"):
        t.mutate(1, q=2)


def test_to_dict_round_trips() -> None:
    for s in subjects():
        t = MixingTarget.read_off(s)
        d = t.to_dict()
        assert MixingTarget.from_dict(d, "spec.toml: mixing") == t
        assert {v for p in d["pairs"] for row in p["matrix"] for v in row} <= {"none", "one", "many", "all"}


def one_pair(**item: Any) -> dict:
    """A spec with one pair x -> y, its fields overridden by `item` (None removes one)."""
    full = {"input": "x", "output": "y", "matrix": [], **item}
    return {"pairs": [{k: v for k, v in full.items() if v is not None}]}


@pytest.mark.parametrize("data, message", [
    ([], ": expected a table with keys pairs"),
    ({}, ".pairs: missing required key"),
    ({"pairs": [], "extra": 1}, ".extra: unknown key (accepted: pairs)"),
    ({"pairs": {"a": 1}}, ".pairs: expected a list of tables"),
    (one_pair(matrix=None), ".pairs[0].matrix: missing required key"),
    (one_pair(input=3), ".pairs[0].input: expected a tensor name"),
    (one_pair(matrix="all"), ".pairs[0].matrix: expected a list of rows"),
    (one_pair(matrix=[["all"], ["all", "one"]]), ".pairs[0].matrix: rows must have equal lengths"),
    (one_pair(matrix=[["all", "some"]]),
     ".pairs[0].matrix[0][1]: expected one of none, one, many, all; got 'some'"),
    (one_pair(matrix=[[["all"]]]), ".pairs[0].matrix[0][0]: expected one of none, one, many, all; got ['all']"),
    ({"pairs": one_pair()["pairs"] * 2}, ".pairs[1]: pair x -> y is listed twice"),
    (one_pair(kind=1), ".pairs[0].kind: unknown key (accepted: input, matrix, output)"),
])
def test_from_dict_rejects_malformed_specs(data: Any, message: str) -> None:
    with pytest.raises(SpecError) as e:
        MixingTarget.from_dict(data, "spec.toml: mixing")
    assert str(e.value).startswith("spec.toml: mixing" + message)


def test_from_dict_accepts_well_formed_specs() -> None:
    t = MixingTarget.from_dict({"pairs": [
        {"input": "x", "output": "y", "matrix": [["one", "none"], ["all", "all"]]},
        {"input": "a", "output": "y", "matrix": []}]}, "spec.toml: mixing")
    assert t.entries == ((("a", "y"), ()), (("x", "y"), ((S, N), (A, A))))
    assert MixingTarget.from_dict({"pairs": []}, "w").entries == ()
