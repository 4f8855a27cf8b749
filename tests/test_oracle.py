"""The independent oracle (`alphanas.oracle`): exact mixing against the Jacobian definition, its
facts against the analytic rules on random compositions, and its verdicts.

The default suite runs a small sample; `make test-slow` runs the differential hunts at size
(>= 10^4 compositions for the rules-vs-oracle check, a few hundred Jacobian checks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_mixing import has_constant_values
from test_random_graphs import Net, chains, dags, op_for

from alphanas.ir import Graph, OpKind, analyze, rel
from alphanas.oracle import facts, judge
from alphanas.oracle.deps import exact_mixing
from alphanas.oracle.facts import traced
from alphanas.properties.base import Subject
from alphanas.properties.crosscheck import crosscheck
from alphanas.properties.depth import infer_depth
from alphanas.properties.mixing import (
    Mix,
    analytic_mixing,
    compose_is_exact,
    infer_mixing,
    op_mixing,
)
from alphanas.properties.mixing_concrete import concrete_mixing
from alphanas.properties.resources import peak_live_activation
from alphanas.properties.spec import parse_spec
from alphanas.properties.verify import verify

K = OpKind
Shape = tuple[int, ...]
Draw = Callable[[st.SearchStrategy[Any]], Any]
_PROFILE = settings().max_examples
FEW = settings(max_examples=max(4, _PROFILE // 4))


def ints(m: Any) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(v) for v in row) for row in m)


# ---- adversarial compositions: strides after large windows, spans, dilation, merges ------------


def window_op(draw: Draw, s: Shape) -> tuple[OpKind, dict]:
    """A conv or pool with a large window, a stride, dilation, SAME or VALID, fitted to `s`."""
    n = len(s) - 2
    k = tuple(draw(st.integers(1, 7)) for _ in range(n))
    d = tuple(draw(st.integers(1, 2)) for _ in range(n))
    fits = all((kk - 1) * dd + 1 <= x for kk, dd, x in zip(k, d, s[1:-1], strict=True))
    padding = draw(st.sampled_from(["SAME", "VALID"] if fits else ["SAME"]))
    strides = tuple(draw(st.integers(1, 3)) for _ in range(n))
    if draw(st.booleans()):
        groups = draw(st.sampled_from([1, rel()]))
        return K.CONV, {"features": rel() if groups != 1 else draw(st.integers(1, 4)), "kernel": k,
                        "strides": strides, "dilation": d, "padding": padding, "groups": groups}
    w = tuple(min(kk, x) for kk, x in zip(k, s[1:-1], strict=True))
    return draw(st.sampled_from([K.AVG_POOL, K.MAX_POOL])), {
        "window": w, "strides": strides, "padding": padding if all(w) else "SAME"}


def _broadcasts(a: Shape, b: Shape) -> bool:
    return len(a) == len(b) and all(p == q or 1 in (p, q) for p, q in zip(a, b, strict=True))


@st.composite
def compositions(draw: Draw) -> Graph:
    """x (batch 1-3, spatial 1-9, 1-4 channels) -> 2-5 ops: windows then strides, merges
    (add / concat on any axis) of two branches, and any op of the IR's random menu."""
    net = Net("comp")
    shape = (draw(st.integers(1, 3)), *(draw(st.integers(1, 9)) for _ in range(draw(st.integers(1, 2)))),
             draw(st.integers(1, 4)))
    x = net.input("x", shape)
    y = x
    for _ in range(draw(st.integers(1, 3))):
        windowed = len(net.shapes[y]) >= 3 and draw(st.integers(0, 2))
        kind, attrs = window_op(draw, net.shapes[y]) if windowed else op_for(draw, net.shapes[y])
        y = net.op(kind, y, **attrs)
    if draw(st.booleans()) and len(net.shapes[y]) == len(shape):
        branch = net.op(K.RELU, x)
        if net.shapes[branch][:-1] == net.shapes[y][:-1]:
            y = net.op(K.CONCAT, y, branch, axis=-1)
        elif _broadcasts(net.shapes[y][:-1], net.shapes[branch][:-1]):
            y = net.op(K.ADD, y, net.op(K.CONV, branch, features=net.shapes[y][-1], kernel=1))
    for _ in range(draw(st.integers(0, 2))):
        kind, attrs = window_op(draw, net.shapes[y]) if len(net.shapes[y]) >= 3 and draw(
            st.booleans()) else op_for(draw, net.shapes[y])
        y = net.op(kind, y, **attrs)
    return net.b.build(y)


graphs = st.one_of(compositions(), chains(), dags())


# ---- exact mixing is the Jacobian definition ------------------------------------------------------


@FEW
@given(graphs)
def test_exact_mixing_matches_the_jacobian_definition(g: Graph) -> None:
    assume(not has_constant_values(g))
    want = {k: ints(v) for k, v in concrete_mixing(g).items()}
    assert exact_mixing(g) == want, g.ops


@pytest.mark.slow
@settings(max_examples=400)
@given(graphs)
def test_exact_mixing_matches_the_jacobian_definition_at_size(g: Graph) -> None:
    test_exact_mixing_matches_the_jacobian_definition.hypothesis.inner_test(g)  # type: ignore[attr-defined]


@pytest.mark.parametrize("shape,ops,row,want", [
    # a 7x7 conv then a strided 1x1 on 7 rows: the output centre reads 6 of the 7 rows
    ((2, 7, 7, 3), [(K.CONV, {"features": 4, "kernel": 7}),
                    (K.CONV, {"features": 4, "kernel": 1, "strides": 2})], 1, (0, 2, 0, 0)),
    # two 5x5 convs on 9 rows: together they span all 9 rows
    ((2, 9, 9, 3), [(K.CONV, {"features": 4, "kernel": 5}), (K.CONV, {"features": 4, "kernel": 5})],
     1, (3, 3, 3, 3)),
    # a 3x3 conv then a stride-3 3x3 conv on 8 rows (off-centre windows)
    ((1, 8, 8, 2), [(K.CONV, {"features": 2, "kernel": 3}),
                    (K.CONV, {"features": 2, "kernel": 3, "strides": 3})], 1, (0, 2, 0, 0)),
    # dilation 2 reads every other row: the slice covers all rows only with the next window
    ((1, 9, 9, 1), [(K.CONV, {"features": 1, "kernel": 3, "dilation": 2})], 1, (0, 2, 0, 0)),
    # a keepdims global mean collapses the plane in one op
    ((2, 8, 8, 2), [(K.MEAN, {"axes": (1, 2), "keepdims": True})], 1, (3, 3, 3, 3)),
])
def test_known_compositions(shape: Shape, ops: list, row: int, want: tuple[int, ...]) -> None:
    net = Net("known")
    y = net.input("x", shape)
    for kind, attrs in ops:
        y = net.op(kind, y, **attrs)
    g = net.b.build(y)
    got = exact_mixing(g)[("x", y)]
    assert got[row] == want
    assert got == ints(concrete_mixing(g)[("x", y)])
    assert ints(infer_mixing(g)[("x", y)]) == got  # what verify and props use


def test_concat_then_strided_1x1_pairs_where_the_rule_finds_nothing() -> None:
    """Concat on H, then a strided 1x1: the output's H slice reads rows of both inputs, so x's
    batch dim pairs with the output's H (ONE_TO_ONE), where the composition rule gives NONE."""
    net = Net("concat")
    x, w = net.input("x", (1, 2, 2, 2)), net.input("w", (1, 2, 2, 2))
    y = net.op(K.CONCAT, x, w, axis=1)
    g = net.b.build(net.op(K.CONV, y, features=2, kernel=1, strides=2))
    got = exact_mixing(g)
    assert got == {k: ints(v) for k, v in concrete_mixing(g).items()}
    assert got[("x", g.outputs[0])][0] == (0, 1, 0, 0)
    assert ints(analytic_mixing(g)[("x", g.outputs[0])])[0] == (0, 0, 0, 0)
    assert not compose_is_exact(g)


# ---- the analytic rules agree with the oracle wherever they claim to be exact ---------------------


def assert_rules_agree(g: Graph, linear: frozenset[str] = frozenset()) -> None:
    a = analyze(g)
    f = facts(g, linear)
    assert {k: tuple(v) for k, v in a.shapes.items()} == dict(f.shapes)
    assert (a.params, a.flops, peak_live_activation(g, a.shapes)) == (f.params, f.flops, f.peak)
    sub = Subject(g, linear_inputs=linear) if linear else Subject(g)
    assert infer_depth(sub) == dict(f.depth)
    for op in g.ops:  # every per-op table is exact
        one = _alone(g, op.name)
        assert {k: ints(v) for k, v in _tables(one).items()} == exact_mixing(one), op
    if compose_is_exact(g):
        assert {k: ints(v) for k, v in analytic_mixing(g).items()} == exact_mixing(g)


def _alone(g: Graph, name: str) -> Graph:
    """Op `name` as a graph of its own, its inputs shaped as in `g`."""
    from alphanas.ir import GraphBuilder

    shapes, op = analyze(g).shapes, g.op_map[name]
    b = GraphBuilder("alone")
    for i in dict.fromkeys(op.inputs):
        b.input(i, shapes[i])
    return b.build(b.op(op.kind, *op.inputs, name=op.name, **dict(op.attrs)))


def _tables(g: Graph) -> dict:
    """The op's own tables; an input read twice joins its two tables by entry-wise max."""
    (op,) = g.ops
    info = analyze(g).ops[op.name]
    out: dict = {}
    for i, m in zip(op.inputs, op_mixing(op, info), strict=True):
        m = ints(m)
        old = out.get((i, op.name))
        out[(i, op.name)] = m if old is None else tuple(
            tuple(max(p, q) for p, q in zip(r, t, strict=True)) for r, t in zip(old, m, strict=True))
    return out


@given(graphs, st.booleans())
def test_rules_agree_with_the_oracle(g: Graph, linear: bool) -> None:
    assert_rules_agree(g, frozenset(g.input_names) if linear else frozenset())


@pytest.mark.slow
@settings(max_examples=10_000)
@given(graphs, st.booleans())
def test_rules_agree_with_the_oracle_at_size(g: Graph, linear: bool) -> None:
    assert_rules_agree(g, frozenset(g.input_names) if linear else frozenset())


def test_traced_shapes_and_params_come_from_flax() -> None:
    net = Net("t")
    y = net.op(K.CONV, net.input("x", (1, 8, 8, 3)), features=5, kernel=3, use_bias=True)
    g = net.b.build(net.op(K.DENSE, y, features=2))
    shapes, params = traced(g)
    assert shapes[g.outputs[0]] == (1, 8, 8, 2) and params == 3 * 3 * 3 * 5 + 5 + 5 * 2 + 2


# ---- verdicts -------------------------------------------------------------------------------------


def spec(**sections: Any):
    return parse_spec(sections, "oracle.toml")


def test_judge_checks_every_claim() -> None:
    net = Net("j")
    y = net.op(K.RELU, net.op(K.CONV, net.input("x", (1, 7, 7, 3)), features=4, kernel=7))
    g = net.b.build(net.b.op(K.CONV, y, features=4, kernel=1, strides=2, name="y"))
    ok = spec(inputs={"x": [1, 7, 7, 3]}, outputs={"y": [1, 4, 4, 4]}, depth={"x->y": 3},
              mixing={"pairs": [{"input": "x", "output": "y", "matrix": [
                  ["one", "none", "none", "none"], ["none", "many", "none", "none"],
                  ["none", "none", "many", "none"], ["all", "all", "all", "all"]]}]},
              resources={"max_params": 10_000, "max_peak_activation": 400})
    v = judge(g, ok)
    assert v.holds, v
    too_much = spec(inputs={"x": [1, 7, 7, 3]}, outputs={"y": [1, 4, 4, 4]}, depth={"x->y": 4},
                    mixing={"pairs": [{"input": "x", "output": "y", "matrix": [
                        ["one", "none", "none", "none"], ["all", "all", "all", "all"],
                        ["none", "none", "many", "none"], ["all", "all", "all", "all"]]}]},
                    resources={"max_params": 600, "max_peak_activation": 100})
    v = judge(g, too_much)
    assert not v.holds
    text = "; ".join(v.failures)
    for part in ("depth x->y: 3", "mixing x->y[1,0]", "params", "peak activation"):
        assert part in text, text
    # the rules (verify) now say the same: 7x7 then a strided 1x1 reads 6 of 7 rows
    rep = verify(g, too_much)
    assert not rep.holds and crosscheck(Subject(g), too_much, rep).agrees


def test_judge_counts_a_linear_producer() -> None:
    net = Net("lin")
    g = net.b.build(net.op(K.RELU, net.op(K.CONV, net.input("x", (1, 4, 4, 2)), features=2, kernel=1)))
    s = spec(inputs={"x": [1, 4, 4, 2]}, outputs={g.outputs[0]: [1, 4, 4, 2]}, depth={"value": 2})
    assert judge(g, s).holds                          # x from a non-linear op: [conv] [relu] = 2
    assert not judge(g, s, frozenset({"x"})).holds    # from a linear op: the conv continues its run
    assert facts(g, frozenset({"x"})).depth[("x", g.outputs[0])] == 1


def test_mix_names_match_the_lattice() -> None:
    assert (int(Mix.NONE), int(Mix.ONE_TO_ONE), int(Mix.MANY_TO_ONE), int(Mix.ALL_TO_ONE)) == (0, 1, 2, 3)


# ---- verify --oracle ------------------------------------------------------------------------------


def test_verify_oracle_cli_agrees_and_reports_in_json(capsys, tmp_path) -> None:
    import json
    from pathlib import Path

    from alphanas.cli import main

    spec_path = Path(__file__).parent.parent / "examples" / "specs" / "cifar_cnn.toml"
    assert main(["verify", "cifar_cnn", "--spec", str(spec_path), "--oracle"]) == 0
    assert "the oracle agrees with the rules" in capsys.readouterr().out
    assert main(["verify", "cifar_cnn", "--spec", str(spec_path), "--oracle", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["oracle"]["holds"] and doc["oracle"]["agrees"] and doc["oracle"]["disagreements"] == []
    assert main(["verify", "cifar_cnn", "--spec", str(spec_path)]) == 0
    assert "oracle" not in capsys.readouterr().out


def test_verify_oracle_disagreement_exits_3(capsys, monkeypatch) -> None:
    from pathlib import Path

    from alphanas.cli import main
    from alphanas.properties import crosscheck as cc

    real = cc.crosscheck

    def broken(*a: Any, **k: Any) -> Any:
        r = real(*a, **k)
        return cc.Crosscheck(r.verdict, ("params: rules 1, oracle 2",))

    monkeypatch.setattr(cc, "crosscheck", broken)
    spec_path = Path(__file__).parent.parent / "examples" / "specs" / "cifar_cnn.toml"
    assert main(["verify", "cifar_cnn", "--spec", str(spec_path), "--oracle"]) == 3
    assert "DISAGREES" in capsys.readouterr().out


def test_verify_oracle_sees_a_violation_the_same_way() -> None:
    net = Net("v")
    y = net.op(K.CONV, net.input("x", (1, 9, 9, 2)), features=2, kernel=5)
    g = net.b.build(net.b.op(K.CONV, y, features=2, kernel=5, name="y"))
    rows = [["one", "none", "none", "none"], ["all"] * 4, ["all"] * 4, ["none"] * 4]
    sp = spec(inputs={"x": [1, 9, 9, 2]}, outputs={"y": [1, 9, 9, 2]},
              mixing={"pairs": [{"input": "x", "output": "y", "matrix": rows}]}, resources={"max_params": 50})
    rep = verify(g, sp, oracle=True)
    assert not rep.holds and rep.oracle is not None and rep.oracle.agrees and not rep.oracle.verdict.holds
