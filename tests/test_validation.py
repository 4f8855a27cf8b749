"""Every validator of the IR, on both sides: inputs it accepts and inputs it rejects (message checked).

User mistakes raise `alphanas.errors.*`, which also inherit the matching builtin (ValueError;
KeyError for an unknown op kind).
"""

from __future__ import annotations

import pytest

from alphanas.errors import AlphanasError, AttrError, GraphError, ShapeError, UnknownOpError
from alphanas.ir import Graph, GraphBuilder, OpKind, Size, TensorSpec, analyze, dim_of, make_op, rel

K = OpKind


def one(shape, kind, *more, **attrs) -> Graph:
    """x (+ extra inputs `more` given as shapes) -> one op of `kind`."""
    b = GraphBuilder("g")
    ins = [b.input("x", shape)] + [b.input(f"y{i}", s) for i, s in enumerate(more)]
    return b.build(b.op(kind, *ins, **attrs))


def shape_of(shape, kind, *more, **attrs):
    return analyze(one(shape, kind, *more, **attrs)).output_shapes[0]


def rejects(exc, match, fn, *args, **kw) -> AlphanasError:
    """Assert `fn` raises `exc` (also a builtin ValueError) with a message matching `match`."""
    with pytest.raises(exc, match=match) as info:
        fn(*args, **kw)
    assert isinstance(info.value, AlphanasError)
    if exc is not UnknownOpError:
        assert isinstance(info.value, ValueError)
    return info.value


# ---- op kinds and attributes --------------------------------------------------------------


def test_op_kind_known_and_unknown() -> None:
    assert make_op("a", "relu", ["x"]).kind is K.RELU
    e = rejects(UnknownOpError, r"unknown op 'convolution'; expected one of: conv, dense", make_op,
                "a", "convolution", ["x"])
    assert isinstance(e, KeyError) and str(e).startswith("unknown op")
    b = GraphBuilder()
    x = b.input("x", (1, 2))
    rejects(UnknownOpError, "unknown op 'relu6'", b.op, "relu6", x)


def test_unknown_attribute() -> None:
    assert make_op("c", K.CONV, ["x"], features=4, kernel=3).attr("strides") == 1
    rejects(AttrError, r"conv 'c': unknown attribute 'stride' \(accepted: dilation, features, groups, kernel, "
            r"padding, strides, use_bias\)", make_op, "c", K.CONV, ["x"], features=4, kernel=3, stride=2)
    rejects(AttrError, r"relu 'r': unknown attribute 'alpha' \(accepted: none\)", make_op, "r", K.RELU, ["x"], alpha=0.1)


def test_missing_required_attribute() -> None:
    assert make_op("d", K.DENSE, ["x"], features=3).attr("use_bias") is True
    rejects(AttrError, r"dense 'd': missing required attribute 'features' \(size \(int or Size\)\)",
            make_op, "d", K.DENSE, ["x"])
    rejects(AttrError, "missing required attribute 'equation'", make_op, "e", K.EINSUM, ["x"])


@pytest.mark.parametrize("kind, attrs, match", [
    (K.CONV, {"features": 4, "kernel": 3.0}, r"conv 'o': attribute 'kernel' expects int or list of ints, got 3.0"),
    (K.CONV, {"features": "4", "kernel": 3}, r"attribute 'features' expects size \(int or Size\), got '4'"),
    (K.CONV, {"features": 4, "kernel": 3, "padding": "FULL"}, r"attribute 'padding' expects one of SAME, VALID, got 'FULL'"),
    (K.CONV, {"features": 4, "kernel": 3, "use_bias": 1}, r"attribute 'use_bias' expects bool, got 1"),
    (K.CONV, {"features": 4, "kernel": True}, r"attribute 'kernel' expects int or list of ints, got True"),
    (K.BATCH_NORM, {"momentum": True}, r"attribute 'momentum' expects float, got True"),
    (K.SCALAR_ADD, {"value": "1"}, r"attribute 'value' expects float, got '1'"),
    (K.EINSUM, {"equation": 3}, r"attribute 'equation' expects string, got 3"),
    (K.RESHAPE, {"new_shape": 4}, r"attribute 'new_shape' expects list of sizes, got 4"),
    (K.TRANSPOSE, {"perm": (0, 1.0)}, r"attribute 'perm' expects list of ints"),
    (K.DENSE_GENERAL, {"features": (2, "a")}, r"attribute 'features' expects list of sizes"),
])
def test_wrong_attribute_type(kind, attrs, match) -> None:
    rejects(AttrError, match, make_op, "o", kind, ["x"], **attrs)


def test_attribute_types_accepted_and_normalized() -> None:
    o = make_op("o", K.CONV, ["x"], features=rel(2), kernel=[3, 3], strides=(2, 1), groups=rel())
    assert o.attr("kernel") == (3, 3) and o.attr("strides") == (2, 1) and o.attr("features") == rel(2)
    assert make_op("s", K.SCALAR_MUL, ["x"], value=2).attr("value") == 2.0  # ints widen to float
    assert make_op("m", K.MEAN, ["x"], axes=1).attr("axes") == (1,)
    assert make_op("r", K.RESHAPE, ["x"], new_shape=[1, -1, Size()]).attr("new_shape") == (1, -1, Size())


@pytest.mark.parametrize("kind, attrs, match", [
    (K.DROPOUT, {"rate": 1.5}, r"dropout 'o': attribute 'rate' must be <= 0.999, got 1.5"),
    (K.DROPOUT, {"rate": -0.1}, r"attribute 'rate' must be >= 0, got -0.1"),
    (K.STOCHASTIC_DEPTH, {"rate": 1.0}, r"attribute 'rate' must be <= 0.999"),
    (K.CONV, {"features": 4, "kernel": 0}, r"conv 'o': attribute 'kernel' must be >= 1, got 0"),
    (K.CONV, {"features": 4, "kernel": (3, 0)}, r"attribute 'kernel' must be >= 1, got \(3, 0\)"),
    (K.CONV, {"features": 0, "kernel": 3}, r"attribute 'features' must be >= 1, got 0"),
    (K.CONV, {"features": 4, "kernel": 3, "strides": 0}, r"attribute 'strides' must be >= 1"),
    (K.CONV, {"features": 4, "kernel": 3, "groups": 0}, r"attribute 'groups' must be >= 1"),
    (K.MAX_POOL, {"window": -1}, r"attribute 'window' must be >= 0, got -1"),
    (K.BATCH_NORM, {"momentum": 1.1}, r"attribute 'momentum' must be <= 1"),
    (K.SELF_ATTENTION, {"num_heads": 0}, r"attribute 'num_heads' must be >= 1"),
    (K.GROUP_NORM, {"num_groups": 0}, r"attribute 'num_groups' must be >= 1"),
])
def test_attribute_out_of_range(kind, attrs, match) -> None:
    rejects(AttrError, match, make_op, "o", kind, ["x"], **attrs)


def test_attribute_range_boundaries_accepted() -> None:
    assert make_op("d", K.DROPOUT, ["x"], rate=0.0).attr("rate") == 0.0
    assert make_op("d", K.DROPOUT, ["x"], rate=0.999).attr("rate") == 0.999
    assert make_op("p", K.AVG_POOL, ["x"], window=0).attr("window") == 0
    assert make_op("c", K.CONV, ["x"], features=1, kernel=1).attr("kernel") == 1


def test_size_values_validated() -> None:
    assert Size(axis=1, mul=2, div=3).resolve((4, 6), "here") == 4
    rejects(AttrError, r"Size needs mul >= 1 and div >= 1, got mul=0 div=1", Size, mul=0)
    rejects(AttrError, r"Size needs mul >= 1 and div >= 1, got mul=1 div=-2", rel, 1, -2)
    rejects(AttrError, r"Size.axis must be an int, got 1.0", Size, axis=1.0)
    rejects(AttrError, r"Size.mul must be an int, got True", Size, mul=True)


# ---- graph structure ------------------------------------------------------------------------


def test_arity() -> None:
    assert len(make_op("c", K.CONCAT, ["x", "y", "z"]).inputs) == 3
    assert make_op("p", K.PARAM, [], shape=(2,)).inputs == ()
    rejects(GraphError, r"add 'a': takes 2 inputs, got 1", make_op, "a", K.ADD, ["x"])
    rejects(GraphError, r"add 'a': takes 2 inputs, got 3", make_op, "a", K.ADD, ["x", "y", "z"])
    rejects(GraphError, r"relu 'r': takes 1 inputs, got 0", make_op, "r", K.RELU, [])
    rejects(GraphError, r"concat 'c': takes at least 2 inputs, got 1", make_op, "c", K.CONCAT, ["x"])
    rejects(GraphError, r"param 'p': takes 0 inputs, got 1", make_op, "p", K.PARAM, ["x"], shape=(2,))
    # An op built without make_op is checked again when the graph is built.
    bad = make_op("a", K.RELU, ["x"])
    bad = type(bad)("a", K.ADD, ("x",), ())
    rejects(GraphError, r"add 'a': takes 2 inputs, got 1", Graph, (TensorSpec("x", (1,)),), (bad,), ("a",))


def test_op_names_must_be_nonempty() -> None:
    rejects(GraphError, r"op names must be non-empty strings, got ''", make_op, "", K.RELU, ["x"])


def test_duplicate_names() -> None:
    x = TensorSpec("x", (1, 2))
    ok = Graph((x,), (make_op("a", K.RELU, ["x"]), make_op("b", K.RELU, ["a"])), ("b",))
    assert [o.name for o in ok.ops] == ["a", "b"]
    rejects(GraphError, r"graph 'g': duplicate name 'a'", Graph, (x,),
            (make_op("a", K.RELU, ["x"]), make_op("a", K.TANH, ["x"])), ("a",), "g")
    rejects(GraphError, r"duplicate name 'x'", Graph, (x,), (make_op("x", K.RELU, ["x"]),), ("x",))
    rejects(GraphError, r"duplicate name 'x'", Graph, (x, TensorSpec("x")), (make_op("a", K.ADD, ["x", "x"]),), ("a",))
    b = GraphBuilder()
    b.input("x", (1, 2))
    rejects(GraphError, r"duplicate name 'x'", b.input, "x", (1, 2))


def test_builder_numbers_repeated_names() -> None:
    b = GraphBuilder()
    x = b.input("x", (1, 2))
    assert [b.op(K.RELU, x), b.op(K.RELU, x), b.op(K.RELU, x, name="relu")] == ["relu", "relu_1", "relu_2"]


def test_dangling_reference() -> None:
    x = TensorSpec("x", (1, 2))
    rejects(GraphError, r"relu 'a': input 'y' is not an input or op of the graph 'g'", Graph, (x,),
            (make_op("a", K.RELU, ["y"]),), ("a",), "g")
    rejects(GraphError, r"dense 'd': input 'nowhere' is not an input or op", Graph, (x,),
            (make_op("d", K.DENSE, ["x"], features=dim_of("nowhere")),), ("d",))


def test_cycle_message_shows_the_path() -> None:
    x = TensorSpec("x", (1, 2))
    ops = (make_op("a", K.ADD, ["x", "c"]), make_op("b", K.RELU, ["a"]), make_op("c", K.RELU, ["b"]),
           make_op("d", K.RELU, ["x"]))
    rejects(GraphError, r"graph 'loop': has a cycle: a -> b -> c -> a", Graph, (x,), ops, ("d",), "loop")
    rejects(GraphError, r"has a cycle: s -> s", Graph, (x,), (make_op("s", K.ADD, ["x", "s"]),), ("s",))
    # Out-of-order but acyclic ops are sorted, not rejected.
    g = Graph((x,), (make_op("b", K.RELU, ["a"]), make_op("a", K.RELU, ["x"])), ("b",))
    assert [o.name for o in g.ops] == ["a", "b"]


def test_outputs() -> None:
    x = TensorSpec("x", (1, 2))
    assert Graph((x,), (make_op("a", K.RELU, ["x"]),), ("a", "x")).outputs == ("a", "x")
    rejects(GraphError, r"graph 'g': needs at least one output", Graph, (x,), (make_op("a", K.RELU, ["x"]),), (), "g")
    rejects(GraphError, r"output 'zz' is not an input or op of the graph", Graph, (x,),
            (make_op("a", K.RELU, ["x"]),), ("zz",))


def test_unknown_op_lookup() -> None:
    g = one((1, 2), K.RELU)
    assert g.op("relu").kind is K.RELU
    rejects(GraphError, r"graph g has no op 'nope'", g.op, "nope")


# ---- shapes -------------------------------------------------------------------------------


def test_missing_input_shapes() -> None:
    b = GraphBuilder("g")
    x = b.input("x")
    g = b.build(b.op(K.RELU, x))
    assert analyze(g, [(2, 3)]).output_shapes == ((2, 3),)
    rejects(ShapeError, r"input 'x' of graph 'g' has no declared shape", analyze, g)
    rejects(ShapeError, r"graph 'g' has 1 inputs, got 2 shapes", analyze, g, [(2, 3), (2, 3)])
    rejects(ShapeError, r"input 'x' has shape \(2, 0\); every dim must be a positive int", analyze, g, [(2, 0)])


def test_size_resolution_indivisible() -> None:
    assert shape_of((1, 4, 4, 8), K.CONV, features=rel(1, 4), kernel=1) == (1, 4, 4, 2)
    rejects(ShapeError, r"conv 'conv': dim\(input, -1\)/4 is not whole: 6\*1 is not divisible by 4",
            shape_of, (1, 4, 4, 6), K.CONV, features=rel(1, 4), kernel=1)
    rejects(ShapeError, r"dense 'dense': dim\(input, 7\) refers to axis 7 of a rank-4 tensor",
            shape_of, (1, 4, 4, 6), K.DENSE, features=rel(axis=7))


def test_conv_groups_must_divide_channels() -> None:
    assert shape_of((1, 4, 4, 6), K.CONV, features=9, kernel=1, groups=3) == (1, 4, 4, 9)
    rejects(ShapeError, r"conv 'conv': input has 6 channels but groups=4 does not divide 6 \(input shapes: \(1, 4, 4, 6\)\)",
            shape_of, (1, 4, 4, 6), K.CONV, features=8, kernel=1, groups=4)
    rejects(ShapeError, r"features=7 is not divisible by groups=6",
            shape_of, (1, 4, 4, 6), K.CONV, features=7, kernel=1, groups=rel())


def test_conv_rank_and_kernel_entries() -> None:
    rejects(ShapeError, r"conv 'conv': conv needs a rank >= 3 input, got shape \(1, 6\)",
            shape_of, (1, 6), K.CONV, features=6, kernel=3)
    rejects(ShapeError, r"conv 'conv': 'kernel' has 3 entries but the input has 2 spatial dims",
            shape_of, (1, 4, 4, 6), K.CONV, features=6, kernel=(3, 3, 3))


@pytest.mark.parametrize("kind, attrs", [
    (K.CONV, {"features": 6, "kernel": 5, "padding": "VALID"}),
    (K.CONV, {"features": 6, "kernel": 3, "dilation": 2, "padding": "VALID"}),
    (K.MAX_POOL, {"window": 5}),
    (K.AVG_POOL, {"window": (2, 5)}),
])
def test_valid_window_too_large(kind, attrs) -> None:
    extent = 5
    rejects(ShapeError, rf"{kind.value} '{kind.value}': VALID window of extent {extent} does not fit in a dim of size 4",
            shape_of, (1, 4, 4, 6), kind, **attrs)
    # The same window fits with SAME padding, or on a big enough input.
    assert shape_of((1, 5, 5, 6), kind, **attrs)[2] == 1
    assert shape_of((1, 4, 4, 6), kind, **{**attrs, "padding": "SAME"})[2] >= 1


def test_reshape_element_count() -> None:
    assert shape_of((1, 4, 4, 6), K.RESHAPE, new_shape=(1, 16, -1)) == (1, 16, 6)
    rejects(ShapeError, r"reshape 'reshape': cannot reshape \(1, 4, 4, 6\) \(96 elements\) to \(1, 5, 20\) \(100 elements\)",
            shape_of, (1, 4, 4, 6), K.RESHAPE, new_shape=(1, 5, 20))
    rejects(ShapeError, r"cannot reshape \(1, 4, 4, 6\) \(96 elements\) to \(1, 5, -1\)",
            shape_of, (1, 4, 4, 6), K.RESHAPE, new_shape=(1, 5, -1))
    rejects(ShapeError, r"new_shape \(-1, -1\) has more than one -1", shape_of, (1, 4), K.RESHAPE, new_shape=(-1, -1))
    rejects(ShapeError, r"new_shape \(0, -1\) must hold positive sizes", shape_of, (1, 4), K.RESHAPE, new_shape=(0, -1))


def test_concat_dims_must_match() -> None:
    assert shape_of((1, 4, 4), K.CONCAT, (1, 4, 3), axis=-1) == (1, 4, 7)
    rejects(ShapeError, r"concat 'concat': input 1 has shape \(1, 5, 3\) but concat on axis 2 needs the other dims of \(1, 4, 4\)",
            shape_of, (1, 4, 4), K.CONCAT, (1, 5, 3), axis=-1)
    rejects(ShapeError, r"input 1 has shape \(4, 4\) but concat on axis 2", shape_of, (1, 4, 4), K.CONCAT, (4, 4))
    rejects(ShapeError, r"axis 3 is out of range for rank-3 inputs", shape_of, (1, 4, 4), K.CONCAT, (1, 4, 4), axis=3)


def test_add_and_mul_broadcasting() -> None:
    assert shape_of((2, 1, 4), K.ADD, (3, 1)) == (2, 3, 4)
    assert shape_of((2, 5, 5, 4), K.MUL, (2, 1, 1, 4)) == (2, 5, 5, 4)
    rejects(ShapeError, r"add 'add': shapes \(1, 4, 4\) and \(1, 5, 4\) do not broadcast \(axis -2: 4 vs 5\)",
            shape_of, (1, 4, 4), K.ADD, (1, 5, 4))
    rejects(ShapeError, r"mul 'mul': shapes \(2, 3\) and \(2,\) do not broadcast \(axis -1: 3 vs 2\)",
            shape_of, (2, 3), K.MUL, (2,))


def test_transpose_perm() -> None:
    assert shape_of((1, 2, 3, 4), K.TRANSPOSE, perm=(0, 3, 1, 2)) == (1, 4, 2, 3)
    rejects(ShapeError, r"transpose 'transpose': perm \(0, 1, 1, 2\) is not a permutation of the 4 axes of \(1, 4, 4, 6\)",
            shape_of, (1, 4, 4, 6), K.TRANSPOSE, perm=(0, 1, 1, 2))
    rejects(ShapeError, r"perm \(0, 2, 1\) is not a permutation of the 4 axes", shape_of, (1, 4, 4, 6), K.TRANSPOSE, perm=(0, 2, 1))


@pytest.mark.parametrize("equation, more, match", [
    ("abcd", (), r"einsum equation 'abcd' must be explicit \(contain '->'\)"),
    ("abc->a", (), r"einsum term 'abc' does not fit an operand of shape \(1, 4, 4, 6\)"),
    ("abcd->e", (), r"einsum output label 'e' in 'abcd->e' appears in no operand"),
    ("abcd,abcd->aab", ((1, 4, 4, 6),), r"einsum term 'aab' in 'abcd,abcd->aab' must use distinct letters"),
    ("a....->a", (), r"einsum term 'a\.\.' in 'a....->a' must use distinct letters and at most one '\.\.\.'"),
    ("abcd,abcd->abcd", (), r"einsum equation 'abcd,abcd->abcd' has 2 operands but the op has 1 inputs"),
    ("abcd,adce->abde", ((1, 4, 4, 6),), r"einsum label 'd' has size 6 in one operand and 4 in another"),
])
def test_einsum_bad_equation(equation, more, match) -> None:
    rejects(ShapeError, "einsum 'einsum': " + match, shape_of, (1, 4, 4, 6), K.EINSUM, *more, equation=equation)


def test_einsum_good_equations() -> None:
    assert shape_of((2, 3, 4), K.EINSUM, (2, 4, 5), equation="bij,bjk->bik") == (2, 3, 5)
    assert shape_of((2, 6, 2, 4), K.EINSUM, (2, 6, 2, 4), equation="...qhd,...khd->...hqk") == (2, 2, 6, 6)
    assert shape_of((2, 3, 4), K.EINSUM, equation="b i j -> b j i") == (2, 4, 3)


def test_attention_qkv_divisible_by_heads() -> None:
    assert shape_of((1, 4, 6), K.SELF_ATTENTION, num_heads=3) == (1, 4, 6)
    rejects(ShapeError, r"self_attention 'self_attention': qkv_features=6 is not divisible by num_heads=4",
            shape_of, (1, 4, 6), K.SELF_ATTENTION, num_heads=4)
    rejects(ShapeError, r"self_attention needs a rank >= 3 input, got shape \(4, 6\)",
            shape_of, (4, 6), K.SELF_ATTENTION, num_heads=2)


def test_axis_attributes_in_range() -> None:
    assert shape_of((1, 4, 6), K.SOFTMAX, axis=-3) == (1, 4, 6)
    assert shape_of((1, 4, 6), K.MEAN, axes=(-1, 1)) == (1,)
    rejects(ShapeError, r"softmax 'softmax': axis 3 is out of range for a rank-3 input", shape_of, (1, 4, 6), K.SOFTMAX, axis=3)
    rejects(ShapeError, r"mean 'mean': axis 4 is out of range for a rank-4 input", shape_of, (1, 4, 4, 6), K.MEAN, axes=(4,))
    rejects(ShapeError, r"axes \(1, -2\) must be non-empty and distinct", shape_of, (1, 4, 6), K.MEAN, axes=(1, -2))
    rejects(ShapeError, r"dense_general 'dense_general': axis must not include the batch axis 0",
            shape_of, (1, 4, 6), K.DENSE_GENERAL, features=(2,), axis=(0, 1))


def test_group_norm_and_resize() -> None:
    assert shape_of((1, 4, 4, 6), K.GROUP_NORM, num_groups=3) == (1, 4, 4, 6)
    rejects(ShapeError, r"group_norm 'group_norm': input has 6 channels but num_groups=4 does not divide it",
            shape_of, (1, 4, 4, 6), K.GROUP_NORM, num_groups=4)
    assert shape_of((1, 4, 4, 6), K.RESIZE, size=(8, 2)) == (1, 8, 2, 6)
    rejects(ShapeError, r"resize 'resize': size has 1 entries but the input has 2 spatial dims",
            shape_of, (1, 4, 4, 6), K.RESIZE, size=(3,))
