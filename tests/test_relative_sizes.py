"""Relative sizes: `Size`, `rel`, `dim_of` resolve against actual shapes, so templates scale."""

from __future__ import annotations

import pytest
from _ir_checks import assert_matches_flax

from alphanas.errors import GraphError, ShapeError
from alphanas.ir import GraphBuilder, OpKind, Size, analyze, dim_of, make_op, rel, template
from alphanas.ir.analysis import resolve_attrs

K = OpKind


@pytest.mark.parametrize("size, shape, want", [
    (Size(), (2, 5, 5, 12), 12),
    (rel(2), (2, 5, 5, 12), 24),
    (rel(1, 4), (2, 5, 5, 12), 3),
    (rel(3, 2), (2, 5, 5, 12), 18),
    (rel(axis=1), (2, 5, 7, 12), 5),
    (rel(2, axis=-2), (2, 5, 7, 12), 14),
    (rel(axis=0), (2, 5, 7, 12), 2),
    (dim_of("t", 2, mul=3, div=7), (2, 5, 7, 12), 3),
])
def test_resolve(size: Size, shape, want: int) -> None:
    assert size.resolve(shape, "here") == want


def test_constructors() -> None:
    assert rel() == Size() == Size(axis=-1, mul=1, div=1, tensor=None)
    assert rel(2, 3, axis=1) == Size(axis=1, mul=2, div=3)
    assert dim_of("x") == Size(tensor="x")
    assert dim_of("x", 1, 2, 3) == Size(axis=1, mul=2, div=3, tensor="x")
    assert hash(rel(2)) == hash(Size(mul=2)) and rel(2) != rel(1, 2)
    assert str(rel(2)) == "dim(input, -1)*2"
    assert str(dim_of("x", 1, div=4)) == "dim('x', 1)/4"


def test_indivisible_is_a_shape_error() -> None:
    with pytest.raises(ShapeError, match=r"here: dim\(input, -1\)/4 is not whole: 6\*1 is not divisible by 4"):
        rel(1, 4).resolve((1, 6), "here")
    with pytest.raises(ShapeError, match=r"here: dim\('x', 1\)\*3/2 is not whole: 5\*3 is not divisible by 2"):
        dim_of("x", 1, 3, 2).resolve((1, 5), "here")
    with pytest.raises(ShapeError, match=r"here: dim\(input, 3\) refers to axis 3 of a rank-2 tensor \(1, 5\)"):
        rel(axis=3).resolve((1, 5), "here")


def test_sizes_resolve_in_a_graph() -> None:
    b = GraphBuilder("g")
    x = b.input("x", (2, 6, 6, 8))
    y = b.op(K.CONV, x, name="expand", features=rel(4), kernel=1)
    y = b.op(K.CONV, y, name="dw", features=rel(), kernel=3, groups=rel())
    z = b.op(K.CONV, y, name="project", features=dim_of("x", mul=3, div=2), kernel=1)
    s = b.op(K.DENSE, z, name="spatial", features=dim_of("x", axis=1))
    g = b.build(s)
    a = assert_matches_flax(g)
    assert a.ops["expand"].attrs["features"] == 32
    assert (a.ops["dw"].attrs["features"], a.ops["dw"].attrs["groups"]) == (32, 32)
    assert a.ops["project"].attrs["features"] == 12
    assert a.shapes["spatial"] == (2, 6, 6, 6)
    # dim_of makes the referenced tensor a dependency of the op.
    assert "project" in g.consumers["x"] and "spatial" in g.consumers["x"]


def test_size_in_a_list_attribute() -> None:
    b = GraphBuilder("g")
    x = b.input("x", (2, 3, 4, 6))
    y = b.op(K.RESHAPE, x, new_shape=(rel(axis=0), rel(axis=1), -1, rel(1, 2)))
    y = b.op(K.RESIZE, y, size=(rel(2, axis=1), dim_of("x", 2, 3)))
    a = assert_matches_flax(b.build(y))
    assert a.shapes["reshape"] == (2, 3, 8, 3)
    assert a.output_shapes == ((2, 6, 12, 3),)


def test_sizes_follow_input_shapes() -> None:
    b = GraphBuilder("g")
    x = b.input("x")
    g = b.build(b.op(K.DENSE, x, features=rel(1, 2)))
    assert analyze(g, [(1, 8)]).output_shapes == ((1, 4),)
    assert analyze(g, [(1, 10)]).output_shapes == ((1, 5),)
    with pytest.raises(ShapeError, match=r"dense 'dense': dim\(input, -1\)/2 is not whole: 7\*1 is not divisible by 2"):
        analyze(g, [(1, 7)])


def test_relative_size_needs_an_input() -> None:
    b = GraphBuilder("g")
    b.input("x", (1, 4))
    g = b.build(b.op(K.PARAM, shape=(1, rel())))
    with pytest.raises(ShapeError, match=r"param 'param': relative size dim\(input, -1\) needs an input to be relative to"):
        analyze(g)


def test_dim_of_unknown_tensor() -> None:
    b = GraphBuilder("g")
    x = b.input("x", (1, 4))
    with pytest.raises(GraphError, match=r"dense 'dense': input 'ghost' is not an input or op"):
        b.build(b.op(K.DENSE, x, features=dim_of("ghost")))
    o = make_op("dense", K.DENSE, [x], features=dim_of("ghost"))
    with pytest.raises(GraphError, match=r"dense 'dense': size refers to unknown tensor 'ghost'"):
        resolve_attrs(o, [(1, 4)], {"x": (1, 4)})


def bottleneck(b: GraphBuilder, x: str) -> str:
    """1x1 reduce to a quarter, 3x3, 1x1 back to the block input's width, residual add."""
    y = b.op(K.CONV, x, name="reduce", features=rel(1, 4), kernel=1, use_bias=False)
    y = b.op(K.BATCH_NORM, y, name="bn1")
    y = b.op(K.RELU, y, name="relu1")
    y = b.op(K.CONV, y, name="conv", features=rel(), kernel=3, use_bias=False)
    y = b.op(K.RELU, y, name="relu2")
    y = b.op(K.CONV, y, name="expand", features=dim_of("input"), kernel=1, use_bias=False)
    y = b.op(K.ADD, y, x, name="add")
    return b.op(K.RELU, y, name="out")


def test_template_at_widths_32_and_64() -> None:
    tpl = template("bottleneck", bottleneck)
    assert tpl.graph.input_shapes == (None,)
    b = GraphBuilder("two_widths")
    x = b.input("x", (1, 4, 4, 32))
    (y,) = b.block(tpl, [x], prefix="s1")
    y = b.op(K.CONV, y, name="widen", features=64, kernel=1)
    (y,) = b.block(tpl, [y], prefix="s2")
    g = b.build(y)
    a = assert_matches_flax(g)
    assert a.shapes["s1/reduce"][-1] == 8 and a.shapes["s2/reduce"][-1] == 16
    assert a.shapes["s1/out"] == (1, 4, 4, 32) and a.shapes["s2/out"] == (1, 4, 4, 64)
    # Ops of both instances share the template's relative attributes, but not the params.
    assert g.op("s1/reduce").attrs == g.op("s2/reduce").attrs
    assert g.op("s1/expand").attr("features") == dim_of("x")
    assert g.op("s2/expand").attr("features") == dim_of("widen")
    p1 = sum(a.ops[o].params for o in g.blocks[0].ops)
    p2 = sum(a.ops[o].params for o in g.blocks[1].ops)
    w1, w2 = 32, 64
    expected = [w * (w // 4) + 2 * (w // 4) + 9 * (w // 4) ** 2 + (w // 4) * w for w in (w1, w2)]
    assert [p1, p2] == expected
    # The standalone template resolves at whatever width it is given.
    assert analyze(tpl.graph, [(1, 4, 4, 32)]).output_shapes == ((1, 4, 4, 32),)
    assert analyze(tpl.graph, [(1, 4, 4, 64)]).output_shapes == ((1, 4, 4, 64),)
    with pytest.raises(ShapeError, match=r"conv 'reduce': dim\(input, -1\)/4 is not whole: 30\*1 is not divisible by 4"):
        analyze(tpl.graph, [(1, 4, 4, 30)])
