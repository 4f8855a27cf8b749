"""Symbolic shape inference and "for all sizes" proofs.

Acceptance: a ResNet-50 stage maps (B, H, W, 256) to (B, H/2, W/2, 512) for all even H, W in
[8, 1024]; the whole ResNet-50 gives (B, 1000) for H, W multiples of 32 up to 1024; claims that
fail for odd sizes under VALID padding are refuted with a concretely checked counterexample.
The differential tests evaluate the symbolic dims of random graphs at random sizes and compare
them with `analyze` (same shapes where it succeeds; a failed side condition where it raises).
"""

from __future__ import annotations

import random
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_random_graphs import chains, dags

from alphanas.errors import ShapeError
from alphanas.ir import Graph, GraphBuilder, OpKind, analyze, extract, select, zoo
from alphanas.properties.proof import Counterexample, SymbolicResult, parse_dim, prove_shape
from alphanas.properties.smt import SmtSettings
from alphanas.properties.symbolic import RULES, Range, SymbolicError, infer_symbolic

K = OpKind
BHW = {"B": (1, 64), "H": (8, 1024, 2), "W": (8, 1024, 2)}


@pytest.fixture(scope="module")
def resnet50() -> Graph:
    return zoo.build("resnet50")


def one_op(kind: OpKind, channels: int = 3, **attrs) -> Graph:
    b = GraphBuilder(kind.value)
    x = b.input("x", (1, 8, 8, channels))
    return b.build(b.op(kind, x, **attrs))


def refuted(r: SymbolicResult) -> Counterexample:
    assert r.holds is False and r.counterexample is not None, r.reason
    return r.counterexample


def image_dims(channels: int = 3) -> dict[str, list[str | int]]:
    return {"x": ["B", "H", "W", channels]}


# ---- acceptance ---------------------------------------------------------------------------------


def test_resnet50_stage2_halves_and_doubles_for_all_even_sizes(resnet50: Graph) -> None:
    ops = [o.name for o in resnet50.ops if o.name.startswith("stage2/")]
    stage = extract(resnet50, select(resnet50, ops))
    (inp,) = stage.input_names
    assert stage.input_shapes == ((1, 56, 56, 256),)
    r = prove_shape(stage, {inp: ["B", "H", "W", 256]}, BHW, [["B", "H/2", "W/2", 512]])
    assert r.holds is True and r.counterexample is None
    assert r.output_dims == (("B", "H/2", "W/2", "512"),)
    wrong = prove_shape(stage, {inp: ["B", "H", "W", 256]}, BHW, [["B", "H/2", "W/2", 256]])
    assert wrong.holds is False and "dim 3" in refuted(wrong).failed


def test_whole_resnet50_gives_logits_for_multiples_of_32(resnet50: Graph) -> None:
    rng = {"B": (1, 64), "H": (32, 1024, 32), "W": (32, 1024, 32)}
    r = prove_shape(resnet50, {"input": ["B", "H", "W", 3]}, rng, [["B", 1000]])
    assert r.holds is True and r.output_dims == (("B", "1000"),)
    sym = infer_symbolic(resnet50, {"input": ["B", "H", "W", 3]}, rng)
    assert [sym.show(d) for d in sym.shapes["stage4/block2/relu"]] == ["B", "H/32", "W/32", "2048"]


def test_whole_resnet50_needs_smt_for_arbitrary_sizes(resnet50: Graph) -> None:
    # ceil(ceil(H/2)/2) on the main path vs. the shortcut: only SMT (or ranges) can settle them
    r = prove_shape(resnet50, {"input": ["B", "H", "W", 3]},
                    {"B": (1, 8), "H": (1, 1024), "W": (1, 1024)}, [["B", 1000]])
    assert r.holds is True


@pytest.mark.parametrize("kind,attrs,channels", [
    (K.AVG_POOL, {"window": 2, "strides": 2, "padding": "VALID"}, 3),
    (K.MAX_POOL, {"window": 2, "padding": "VALID"}, 3),
])
def test_valid_2x2_pool_fails_halving_claim_for_odd_sizes(kind: OpKind, attrs: dict, channels: int) -> None:
    g = one_op(kind, **attrs)
    rng = {"B": (1, 4), "H": (8, 64), "W": (8, 64)}
    r = prove_shape(g, image_dims(), rng, [["B", "H/2", "W/2", 3]])
    assert r.holds is False
    cex = refuted(r)
    assert cex.sizes["H"] % 2 == 1 or cex.sizes["W"] % 2 == 1
    got = analyze(g.with_input_shapes(cex.input_shapes)).output_shapes[0]
    assert got == (cex.sizes["B"], cex.sizes["H"] // 2, cex.sizes["W"] // 2, 3)
    assert "has shape" in cex.concrete and "/2" in cex.concrete
    assert prove_shape(g, image_dims(), {**rng, "H": (8, 64, 2), "W": (8, 64, 2)},
                       [["B", "H/2", "W/2", 3]]).holds is True


def test_valid_strided_conv_counterexample_is_checked_concretely() -> None:
    g = one_op(K.CONV, features=4, kernel=3, strides=2, padding="VALID")
    r = prove_shape(g, image_dims(), {"B": (1, 4), "H": (8, 64), "W": (8, 64)}, [["B", "H/2", "W/2", 4]])
    assert r.holds is False and r.smt_checks == 1
    cex = refuted(r)
    got = analyze(g.with_input_shapes(cex.input_shapes)).output_shapes[0]
    assert cex.output_shapes is not None and got == cex.output_shapes[0]
    assert got[1:3] != (cex.sizes["H"] / 2, cex.sizes["W"] / 2)
    assert "floor" in cex.failed and str(cex).startswith("at B=")


def test_a_window_that_does_not_fit_is_a_counterexample() -> None:
    g = one_op(K.CONV, features=4, kernel=5, padding="VALID")
    r = prove_shape(g, image_dims(), {"B": (1, 2), "H": (1, 64), "W": (8, 64)}, [["B", "H-4", "W-4", 4]])
    assert r.holds is False
    assert refuted(r).sizes["H"] < 5
    assert "VALID window of extent 5 fits in axis 1 (size H)" in refuted(r).failed
    assert refuted(r).concrete.startswith("ShapeError: conv 'conv': VALID window")
    ok = prove_shape(g, image_dims(), {"B": (1, 2), "H": (5, 64), "W": (8, 64)}, [["B", "H-4", "W-4", 4]])
    assert ok.holds is True


def reduced(second: dict) -> Graph:
    """x -> conv 3x3/2 -> conv 3x3/2 (SAME), plus x -> conv(**second), added, then mean over H, W:
    the output is (B, 8) whenever the add's broadcast side conditions hold."""
    b = GraphBuilder("branches")
    x = b.input("x", (1, 16, 16, 3))
    y = b.op(K.CONV, b.op(K.CONV, x, features=8, kernel=3, strides=2), features=8, kernel=3, strides=2)
    y = b.op(K.ADD, y, b.op(K.CONV, x, features=8, **second))
    return b.build(b.op(K.MEAN, y, axes=(1, 2)))


ANY = {"B": (1, 8), "H": (1, 4096), "W": (1, 4096)}


def test_smt_proves_a_ceiling_identity() -> None:
    g = reduced({"kernel": 1, "strides": 4})  # ceil(ceil(H/2)/2) == ceil(H/4) for every H
    r = prove_shape(g, image_dims(), ANY, [["B", 8]])
    assert r.holds is True and r.smt_checks == 1 and r.residual == 2
    assert "unsatisfiable" in r.reason


def test_a_broadcast_side_condition_is_refuted_concretely() -> None:
    g = reduced({"kernel": 4, "strides": 4, "padding": "VALID"})  # floor(H/4) vs ceil(H/4)
    r = prove_shape(g, image_dims(), {**ANY, "H": (4, 4096), "W": (4, 4096)}, [["B", 8]])
    assert r.holds is False
    cex = refuted(r)
    assert cex.sizes["H"] % 4 or cex.sizes["W"] % 4
    assert "broadcast on axis" in cex.failed and cex.concrete.startswith("ShapeError: add 'add'")
    with pytest.raises(ShapeError, match="do not broadcast"):
        analyze(g.with_input_shapes(cex.input_shapes))
    fours = {"B": (1, 8), "H": (4, 4096, 4), "W": (4, 4096, 4)}
    ok = prove_shape(g, image_dims(), fours, [["B", 8]])
    assert ok.holds is True and ok.smt_checks == 0


def test_equal_quotients_share_one_variable() -> None:
    g = reduced({"kernel": 1, "strides": 4})
    assert len(infer_symbolic(g, image_dims(), ANY).obligations) == 2
    b = GraphBuilder("twins")
    x = b.input("x", (1, 16, 16, 3))
    y = b.op(K.ADD, b.op(K.CONV, x, features=8, kernel=3, strides=2),
             b.op(K.CONV, x, features=8, kernel=1, strides=2))
    sym = infer_symbolic(b.build(y), image_dims(), ANY)
    assert sym.obligations == () and len(sym.definitions) == 2  # ceil(H/2), ceil(W/2)


def test_undecided_proof_reports_unknown() -> None:
    g = reduced({"kernel": 1, "strides": 4})
    r = prove_shape(g, image_dims(), ANY, [["B", 8]], settings=SmtSettings(rlimit=1))
    assert r.holds is None and r.reason.startswith("unknown: resource limit")


def test_whole_vit_s16_gives_logits_for_multiples_of_16() -> None:
    g = zoo.build("vit_s16")
    r = prove_shape(g, {"input": ["B", "H", "W", 3]},
                    {"B": (1, 8), "H": (16, 512, 16), "W": (16, 512, 16)}, [["B", 1000]])
    assert r.holds is True
    sym = infer_symbolic(g, {"input": ["B", "H", "W", 3]}, {"B": (1, 8), "H": (16, 512, 16), "W": (16, 512, 16)})
    assert [sym.show(d) for d in sym.shapes["encoder0/attention/attn_weight"]] == ["B", "6", "H*W/256", "H*W/256"]


def test_structural_failures_refute_at_the_smallest_sizes() -> None:
    g = one_op(K.TRANSPOSE, perm=(0, 2, 1))
    r = prove_shape(g, image_dims(), {"B": (2, 4), "H": (3, 9), "W": (8, 64, 8)}, [["B", "W", "H", 3]])
    assert r.holds is False and refuted(r).sizes == {"B": 2, "H": 3, "W": 8}
    assert "fails for every size" in r.reason and "ShapeError" in refuted(r).concrete
    g = one_op(K.RELU)
    r = prove_shape(g, image_dims(), {"B": (2, 4), "H": (3, 9), "W": (3, 9)}, [["B", "H", "W"]])
    assert r.holds is False and "rank 4 but the claim has rank 3" in r.reason


def test_a_mismatch_for_every_size_is_refuted_by_any_size() -> None:
    b = GraphBuilder("mismatch")
    x = b.input("x", (1, 8, 8, 3))
    g = b.build(b.op(K.ADD, b.op(K.CONV, x, features=3, kernel=1), b.op(K.CONV, x, features=4, kernel=1)))
    r = prove_shape(g, image_dims(), {"B": (1, 4), "H": (1, 64), "W": (1, 64)}, [["B", "H", "W", 4]])
    assert r.holds is False and "broadcast on axis -1 (3 vs 4)" in refuted(r).failed
    assert "do not broadcast" in refuted(r).concrete


def test_relative_sizes_of_symbolic_dims_carry_divisibility_conditions() -> None:
    from alphanas.ir import rel

    g = one_op(K.DENSE, features=rel(3, 4), channels=8)  # 3C/4 channels
    dims = {"x": ["B", "H", "W", "C"]}
    rng = {"B": (1, 2), "H": (1, 4), "W": (1, 4), "C": (4, 64)}
    r = prove_shape(g, dims, rng, [["B", "H", "W", "C*3/4"]])
    assert r.holds is False and refuted(r).sizes["C"] % 4
    assert "is whole" in refuted(r).failed and "ShapeError" in refuted(r).concrete
    ok = prove_shape(g, dims, {**rng, "C": (4, 64, 4)}, [["B", "H", "W", "C*3/4"]])
    assert ok.holds is True


# ---- claims and validation ----------------------------------------------------------------------


def test_claim_parser_accepts_the_documented_forms() -> None:
    from alphanas.properties.smt import var

    dims = {"H": var("H"), "W": var("W")}
    assert parse_dim(7, dims) == (var("H") * 0 + 7, 1)
    assert parse_dim("H", dims) == (var("H"), 1)
    assert parse_dim("H*2", dims) == (2 * var("H"), 1)
    assert parse_dim("H/2", dims) == (var("H"), 2)
    assert parse_dim("H+1", dims) == (var("H") + 1, 1)
    assert parse_dim("H-1", dims) == (var("H") - 1, 1)
    assert parse_dim("(H+2)/4*2", dims) == (var("H") + 2, 2)
    assert parse_dim("H/4*W/4*512", dims) == (32 * var("H") * var("W"), 1)
    assert parse_dim("-H + 2*W", dims) == (2 * var("W") - var("H"), 1)


@pytest.mark.parametrize("text,message", [
    ("Q", "unknown name or symbol 'Q'"),
    ("H/W", "'/' must be followed by a positive int, got 'W'"),
    ("H/0", "'/' must be followed by a positive int"),
    ("H+", "unexpected end"),
    ("H 2", "unexpected '2'"),
    ("(H", "unexpected end"),
    ("H^2", "unexpected '^'"),
])
def test_claim_parser_rejects_with_a_clear_message(text: str, message: str) -> None:
    from alphanas.properties.smt import var

    with pytest.raises(SymbolicError, match=message.replace("(", r"\(").replace("^", r"\^")):
        parse_dim(text, {"H": var("H"), "W": var("W")})


@pytest.mark.parametrize("dims,ranges,message", [
    ({}, {}, r"missing \['x'\]"),
    ({"x": ["B", "H", "W", 3], "y": [1]}, BHW, r"unknown \['y'\]"),
    ({"x": ["B", "H", "W", 3]}, {"B": (1, 2), "H": (1, 2)}, "dim 'W' needs a range"),
    ({"x": ["B", "H", "W", 3]}, {**BHW, "C": (1, 2)}, "range given for 'C'"),
    ({"x": ["B", "H", "W", 0]}, BHW, "dim 0 must be a name or a positive int"),
    ({"x": ["B", "H", "2W", 3]}, BHW, "dim name '2W' must be an identifier"),
    ({"x": ["B", "H", "W", 3]}, {**BHW, "W": (9, 15, 16)}, "holds no size"),
    ({"x": ["B", "H", "W", 3]}, {**BHW, "W": (0, 15)}, "holds no size >= 1"),
])
def test_bad_dims_and_ranges_are_rejected(dims: dict, ranges: dict, message: str) -> None:
    with pytest.raises(SymbolicError, match=message):
        prove_shape(one_op(K.RELU), dims, ranges, [["B", "H", "W", 3]])


def test_claims_must_cover_every_output() -> None:
    with pytest.raises(SymbolicError, match="1 outputs but 2 output shapes"):
        prove_shape(one_op(K.RELU), image_dims(), BHW, [["B"], ["B"]])


def test_ranges_and_multiples() -> None:
    r = Range(8, 1024, 32)
    assert (r.unit_lo, r.unit_hi) == (1, 32)
    sym = infer_symbolic(one_op(K.RELU), image_dims(), {"B": (1, 2), "H": r, "W": (3, 5)})
    assert sym.input_shapes({"B": 2, "H": 64, "W": 4}) == ((2, 64, 4, 3),)
    with pytest.raises(SymbolicError, match="H=65 is not a multiple of 32"):
        sym.env({"B": 1, "H": 65, "W": 4})


def test_every_op_kind_has_a_symbolic_rule() -> None:
    assert set(RULES) == set(OpKind)


# ---- differential: symbolic dims at random sizes vs analyze ------------------------------------


def symbolic_dims(g: Graph, spread: int) -> tuple[dict, dict]:
    """Every input dim a named dim ranging around its declared value (batch and channels too)."""
    dims, ranges = {}, {}
    for i, t in enumerate(g.inputs):
        names = [f"d{i}_{k}" for k in range(len(t.shape or ()))]
        dims[t.name] = names
        ranges.update({n: (max(1, v - spread), v + spread) for n, v in zip(names, t.shape or (), strict=True)})
    return dims, ranges


def assert_agrees_with_analyze(g: Graph, sizes: Mapping[str, int], sym) -> None:
    env = sym.env(sizes)
    failed = [o for o in sym.obligations if not o.constraint.evaluate(env)]
    try:
        a = analyze(g.with_input_shapes(sym.input_shapes(sizes)))
    except ShapeError as e:
        assert failed, f"analyze raised {e} at {sizes} but every side condition holds"
        return
    assert not failed, f"{failed[0]} fails at {sizes} but analyze succeeds"
    got = sym.concrete_shapes(sizes)
    assert got == dict(a.shapes), f"at {sizes}"


@given(st.one_of(chains(), dags()), st.integers(0, 2**32 - 1))
def test_symbolic_dims_agree_with_analyze_at_random_sizes(g: Graph, seed: int) -> None:
    dims, ranges = symbolic_dims(g, spread=3)
    try:
        sym = infer_symbolic(g, dims, ranges)
    except ShapeError:
        return  # rank-level failure: independent of the sizes (checked below at declared sizes)
    rnd = random.Random(seed)
    declared = {n: v for t in g.inputs for n, v in zip(dims[t.name], t.shape or (), strict=True)}
    assert_agrees_with_analyze(g, declared, sym)
    for _ in range(5):
        assert_agrees_with_analyze(g, {n: rnd.randint(lo, hi) for n, (lo, hi) in ranges.items()}, sym)


@given(st.one_of(chains(), dags()))
def test_declared_shapes_are_proved_and_perturbed_claims_refuted(g: Graph) -> None:
    dims, ranges = symbolic_dims(g, spread=0)
    out = analyze(g).output_shapes
    r = prove_shape(g, dims, ranges, [list(s) for s in out])
    assert r.holds is True, r.reason
    wrong = [list(s) for s in out]
    wrong[0][-1] += 1
    r = prove_shape(g, dims, ranges, wrong)
    assert r.holds is False and refuted(r).output_shapes == out
