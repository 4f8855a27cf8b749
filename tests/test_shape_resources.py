"""Shape (exact and symbolic) and resources properties: inference, checks, distance, mutation."""

from __future__ import annotations

import pytest

from alphanas.errors import SpecError
from alphanas.ir import Graph, GraphBuilder, analyze, rel, zoo
from alphanas.ir import OpKind as K
from alphanas.properties.base import Subject
from alphanas.properties.resources import (
    Resources,
    ResourceTarget,
    infer_resources,
    peak_live_activation,
)
from alphanas.properties.shape import (
    DimExpr,
    DimRange,
    ShapeTarget,
    SymbolicShapeTarget,
    parse_dim_expr,
    parse_input_shape,
)

CIFAR = Subject.whole(zoo.build("cifar_cnn"))


def downsample(shape: tuple[int, ...] = (2, 64, 64, 256), padding: str = "SAME") -> Graph:
    """x -> conv 3x3 stride 2 doubling the channels -> relu (named y)."""
    b = GraphBuilder("down")
    x = b.input("x", shape)
    h = b.op(K.CONV, x, name="conv", features=rel(2), kernel=3, strides=2, padding=padding)
    return b.build(b.op(K.RELU, h, name="y"))


# -- exact shapes -----------------------------------------------------------------------------


def test_read_off_and_satisfied() -> None:
    t = ShapeTarget.read_off(CIFAR)
    assert t == ShapeTarget((("fc/logits", (1, 10)),))
    assert t.satisfied_by(CIFAR) and t.distance(CIFAR) == 0.0


def test_mismatched_dim_says_which_and_by_how_much() -> None:
    t = ShapeTarget((("fc/logits", (1, 16)),))
    (v,) = t.check(CIFAR)
    assert (v.property, v.where, v.expected, v.got, v.amount) == ("shape", "output fc/logits dim 1", 16, 10, 6.0)
    assert t.distance(CIFAR) == 0.5


def test_rank_mismatch() -> None:
    t = ShapeTarget((("fc/logits", (1, 10, 1)),))
    (v,) = t.check(CIFAR)
    assert v.where == "output fc/logits" and v.expected == "rank 3 (1, 10, 1)" and v.got == "rank 2 (1, 10)"
    assert t.distance(CIFAR) == pytest.approx(1 / 3)


def test_missing_and_extra_outputs_count_1_each() -> None:
    t = ShapeTarget((("logits", (1, 10)),))
    got = {(v.where, v.expected, v.got) for v in t.check(CIFAR)}
    assert got == {("output logits", (1, 10), "no such output"),
                   ("output fc/logits", "no such output", (1, 10))}
    assert t.distance(CIFAR) == 1.0


def test_shape_mutation_doubles_or_halves_channels_seeded() -> None:
    t = ShapeTarget((("y", (1, 16, 16, 128)),))
    assert t.mutate(1) == t.mutate(1)
    seen = {t.mutate(s).outputs[0][1] for s in range(30)}
    assert seen == {(1, 16, 16, 256), (1, 16, 16, 64)}
    odd = ShapeTarget((("y", (1, 3)),))
    assert {odd.mutate(s).outputs[0][1] for s in range(10)} == {(1, 6)}


def test_shape_from_dict() -> None:
    assert ShapeTarget.from_dict({"outputs": {"y": [1, 10]}}, "") == ShapeTarget((("y", (1, 10)),))
    with pytest.raises(SpecError, match=r"^outputs\.y: exact shapes take ints only"):
        ShapeTarget.from_dict({"outputs": {"y": [1, "H"]}}, "")
    with pytest.raises(SpecError, match=r'^outputs\."fc/logits"\[1\]: expected a positive int'):
        ShapeTarget.from_dict({"outputs": {"fc/logits": [1, 0]}}, "")


# -- dim expressions --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expr", "at_64"), [
    (3, DimExpr(None, "", 3), 3),
    ("512", DimExpr(None, "", 512), 512),
    ("H", DimExpr("H", "", 0), 64),
    ("H/2", DimExpr("H", "/", 2), 32),
    (" H / 3 ", DimExpr("H", "/", 3), None),   # not whole at 64
    ("H*2", DimExpr("H", "*", 2), 128),
    ("H+1", DimExpr("H", "+", 1), 65),
    ("H - 4", DimExpr("H", "-", 4), 60),
])
def test_dim_expressions(text: object, expr: DimExpr, at_64: int | None) -> None:
    e = parse_dim_expr(text, "d")
    assert e == expr and e.evaluate({"H": 64}) == at_64
    assert parse_dim_expr(e.to_toml(), "d") == e


@pytest.mark.parametrize("bad", [0, -2, True, 1.5, "", "H**2", "2*H", "H/0", "H*0", "H/x", "H/2/2",
                                 "(H)", "H^2", [1]])
def test_dim_expressions_rejected(bad: object) -> None:
    with pytest.raises(SpecError) as info:
        parse_dim_expr(bad, "outputs.y[1]")
    assert str(info.value).startswith("outputs.y[1]: expected a positive int, a dim name, or "
                                      "name*int, name/int, name+int, name-int")


def test_input_shapes_parse() -> None:
    assert parse_input_shape(["B", 32, "W_1", 3], "inputs.x") == ("B", 32, "W_1", 3)
    with pytest.raises(SpecError, match=r"^inputs\.x\[1\]: expected a positive int or a dim name"):
        parse_input_shape(["B", "H/2"], "inputs.x")
    with pytest.raises(SpecError, match=r"^inputs\.x: expected a non-empty list"):
        parse_input_shape([], "inputs.x")


# -- symbolic shapes, checked concretely ------------------------------------------------------


SYM = {"inputs": {"x": ["B", "H", "W", 256]}, "outputs": {"y": ["B", "H/2", "W/2", 512]},
       "ranges": {"B": {"min": 1, "max": 64}, "H": {"min": 32, "max": 1024, "multiple_of": 32},
                  "W": {"min": 32, "max": 1024, "multiple_of": 32}}}


def sym_target(**changes: object) -> SymbolicShapeTarget:
    return SymbolicShapeTarget.from_dict({**SYM, **changes}, "")


def test_symbolic_parse() -> None:
    t = sym_target()
    assert t.dim_names == ("B", "H", "W")
    assert t.range_map["H"] == DimRange(32, 1024, 32)
    assert t.example_bindings() == {"B": 1, "H": 32, "W": 32}
    assert t.output_shapes_at({"B": 2, "H": 64, "W": 96}) == {"y": (2, 32, 48, 512)}
    assert SymbolicShapeTarget.from_dict(t.to_dict(), "") == t


def test_symbolic_holds_at_concrete_shapes() -> None:
    t = sym_target()
    s = Subject.whole(downsample((2, 64, 96, 256)))
    assert t.check(s) == [] and t.distance(s) == 0.0


def test_symbolic_wrong_output_names_the_expression() -> None:
    s = Subject.whole(downsample((2, 64, 64, 256), padding="VALID"))  # 31, not 32
    got = [(v.where, v.expected, v.got) for v in sym_target().check(s)]
    assert got == [("output y dim 1", "H/2 = 32", 31), ("output y dim 2", "W/2 = 32", 31)]
    assert sym_target().distance(s) == 0.5


@pytest.mark.parametrize(("shape", "where", "expected", "got"), [
    ((2, 64, 64, 128), "input x dim 3", 256, 128),
    ((128, 64, 64, 256), "input x dim 0", "B in [1, 64]", 128),
    ((2, 48, 64, 256), "input x dim 1", "H in [32, 1024], multiple of 32", 48),
    ((2, 64, 64), "input x", "rank 4 (B, H, W, 256)", "rank 3 (2, 64, 64)"),
])
def test_symbolic_input_pattern_violations(shape: tuple[int, ...], where: str, expected: object,
                                           got: object) -> None:
    b = GraphBuilder("id")
    g = b.build(b.op(K.IDENTITY, b.input("x", shape), name="y"))
    vs = [v for v in sym_target(outputs={}).check(Subject.whole(g))]
    assert [(v.where, v.expected, v.got) for v in vs] == [(where, expected, got)]
    assert sym_target(outputs={}).distance(Subject.whole(g)) == 1.0


def test_symbolic_repeated_name_must_bind_consistently() -> None:
    t = SymbolicShapeTarget.from_dict({"inputs": {"x": ["N", "N"]}, "outputs": {"y": ["N", "N"]},
                                       "ranges": {"N": {"min": 1, "max": 8}}}, "")
    b = GraphBuilder("sq")
    g = b.build(b.op(K.RELU, b.input("x", (2, 3)), name="y"))
    (v,) = t.check(Subject.whole(g))
    assert (v.where, v.expected, v.got) == ("input x dim 1", "N = 2", 3)


def test_symbolic_not_whole_division() -> None:
    t = sym_target(outputs={"y": ["B", "H/3", "W/2", 512]})
    v = t.check(Subject.whole(downsample()))[0]
    assert (v.where, v.expected, v.got) == ("output y dim 1", "H/3 = not whole", 32)


@pytest.mark.parametrize(("changes", "message"), [
    ({"ranges": {"B": {"min": 1, "max": 64}, "H": {"min": 32, "max": 64}}},
     "ranges: missing a range for dim 'W' (e.g. W = {min = 1, max = 64})"),
    ({"ranges": {**SYM["ranges"], "C": {"min": 1, "max": 2}}},
     "ranges.C: 'C' is not a dim name of the inputs (names: B, H, W)"),
    ({"outputs": {"y": ["B", "K/2", "W/2", 512]}},
     "outputs.y[1]: 'K' is not a dim name of the inputs (names: B, H, W)"),
    ({"ranges": {**SYM["ranges"], "H": {"min": 33, "max": 60, "multiple_of": 32}}},
     "ranges.H: the range [33, 60], multiple of 32 is empty"),
    ({"ranges": {**SYM["ranges"], "H": {"min": 32}}},
     "ranges.H: missing 'max' (a range needs min and max)"),
    ({"ranges": {**SYM["ranges"], "H": {"min": 0, "max": 4}}},
     "ranges.H.min: expected a positive int, got 0"),
    ({"ranges": {**SYM["ranges"], "H": {"min": 1, "max": 4, "step": 2}}},
     "ranges.H: unknown key 'step' (accepted: max, min, multiple_of)"),
    ({"ranges": {**SYM["ranges"], "H": [32, 64]}},
     "ranges.H: expected a table {min = int, max = int[, multiple_of = int]}, got [32, 64]"),
])
def test_symbolic_validation(changes: dict, message: str) -> None:
    with pytest.raises(SpecError) as info:
        sym_target(**changes)
    assert str(info.value) == message


def test_symbolic_mutation_changes_a_constant_channel_dim() -> None:
    t = sym_target()
    outs = {t.mutate(s).outputs[0][1][-1] for s in range(20)}
    assert outs == {DimExpr(None, "", 1024), DimExpr(None, "", 256)}
    assert t.mutate(3) == t.mutate(3)


# -- resources --------------------------------------------------------------------------------


def test_params_and_flops_are_the_analysis_totals() -> None:
    a = analyze(zoo.build("cifar_cnn"))
    r = infer_resources(CIFAR)
    assert (r.params, r.flops) == (a.params, a.flops) == (2_192_458, 80_090_368)
    # peak: conv_layer0's conv output and its relu output are both live, 2 x 32*32*64
    assert r.peak_activation == 2 * 32 * 32 * 64


def test_subgraph_resources_are_its_ops_only() -> None:
    host = zoo.build("cifar_cnn")
    ops = ["conv_layer1/conv", "conv_layer1/relu", "conv_layer1/avg_pool"]
    a = analyze(host)
    r = infer_resources(Subject.sub(host, ops))
    assert r.params == sum(a.ops[o].params for o in ops)
    assert r.flops == sum(a.ops[o].flops for o in ops)
    assert r.peak_activation == 2 * 16 * 16 * 128


def _fork_join() -> Graph:
    b = GraphBuilder("fork")
    x = b.input("x", (1, 10))
    a1 = b.op(K.DENSE, x, name="a", features=20)
    a2 = b.op(K.DENSE, x, name="b", features=20)
    return b.build(b.op(K.ADD, a1, a2, name="y"))


def test_peak_live_activation_by_hand() -> None:
    g = _fork_join()
    # x=10; a: 10+20; b: 10+20+20 (x freed after b); y: 20+20+20
    assert peak_live_activation(g, analyze(g).shapes) == 60
    assert analyze(g).peak_activation == 20   # the largest single tensor is a different measure
    b = GraphBuilder("chain")
    h = b.op(K.RELU, b.op(K.DENSE, b.input("x", (1, 8)), features=32), name="y")
    g = b.build(h)
    assert peak_live_activation(g, analyze(g).shapes) == 64   # dense out + relu out


def test_params_and_unused_inputs_in_peak() -> None:
    b = GraphBuilder("p")
    x, _ = b.input("x", (1, 8)), b.input("big", (1, 100))
    p = b.op(K.PARAM, name="pos", shape=(1, 8))
    g = b.build(b.op(K.ADD, x, p, name="y"))
    # all inputs exist before the first op (108); afterwards the unused one is gone; params are 0
    assert peak_live_activation(g, analyze(g).shapes) == 108


def test_budgets_overshoot_and_distance() -> None:
    t = ResourceTarget(max_params=2_000_000, max_flops=10**8, max_peak_activation=100_000)
    vs = t.check(CIFAR)
    assert [(v.where, v.expected, v.got, v.amount) for v in vs] == [
        ("params", "<= 2,000,000", 2_192_458, 192_458.0),
        ("peak_activation", "<= 100,000", 131_072, 31_072.0)]
    assert t.distance(CIFAR) == pytest.approx(2_192_458 / 2_000_000 - 1 + 131_072 / 100_000 - 1)
    assert ResourceTarget.read_off(CIFAR).satisfied_by(CIFAR)
    assert ResourceTarget(max_flops=10**8).distance(CIFAR) == 0.0


def test_zero_budget() -> None:
    t = ResourceTarget(max_params=0)
    assert t.distance(CIFAR) == 2_192_458.0
    relu_only = Subject.sub(zoo.build("cifar_cnn"), ["fc/relu"])
    assert t.satisfied_by(relu_only)


def test_resource_mutation_is_seeded_within_the_factor() -> None:
    t = ResourceTarget(max_params=100_000, max_flops=10**7)
    assert t.mutate(0) == t.mutate(0) and t.mutate(0) != t.mutate(1)
    for s in range(20):
        m = t.mutate(s, factor=4.0)
        assert m.max_peak_activation is None
        assert 25_000 <= m.max_params <= 400_000 and 2_500_000 <= m.max_flops <= 4 * 10**7


def test_resources_dict_round_trip_and_errors() -> None:
    t = ResourceTarget(max_params=5, max_flops=20_000_000)
    assert ResourceTarget.from_dict(t.to_dict(), "resources") == t
    assert ResourceTarget.from_dict({"max_flops": 2e7}, "resources").max_flops == 20_000_000
    cases = [({"max_param": 1}, "resources: unknown key 'max_param' (accepted: max_flops, "
                                "max_params, max_peak_activation)"),
             ({}, "resources: no budget given (accepted: max_flops, max_params, max_peak_activation)"),
             ({"max_params": -1}, "resources.max_params: expected a non-negative whole number "
                                  "(e.g. 100000 or 2e7), got -1"),
             ({"max_flops": 1.5}, "resources.max_flops: expected a non-negative whole number "
                                  "(e.g. 100000 or 2e7), got 1.5"),
             ({"max_flops": "1M"}, "resources.max_flops: expected a non-negative whole number "
                                   '(e.g. 100000 or 2e7), got "1M"')]
    for data, message in cases:
        with pytest.raises(SpecError) as info:
            ResourceTarget.from_dict(data, "resources")
        assert str(info.value) == message


def test_resources_dataclass() -> None:
    assert infer_resources(Subject.whole(_fork_join())) == Resources(2 * (10 * 20 + 20), 2 * 2 * 200 + 20, 60)
