"""Adversarial cases for every soundness bug class of the synthesizer and `verify` (issue 8).

Each case is aimed at one rule: mixing of compositions, ops that collapse a dim in one step,
kernel choices under budgets, constraints outside the encoding (peak activation, failed
re-verification, rules/oracle disagreements), unconstrained inputs, and the whole-call deadline.
Every "solved" here is also judged by the independent oracle; every "unsat" is a claim that the
brute-force tests (tests/test_bruteforce.py) and the benchmark cross-check.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from alphanas.ir import GraphBuilder, OpKind
from alphanas.oracle import judge
from alphanas.properties.spec import parse_spec
from alphanas.properties.verify import verify
from alphanas.synth import Problem, Settings, synthesize
from alphanas.synth import build as build_module
from alphanas.synth import search as search_module
from alphanas.synth.build import Recheck

K = OpKind
S = Settings(timeout_s=60)
ONE, NONE_ = "one", "none"


def spec(**sections: Any):
    return parse_spec(sections, "adversarial.toml")


def mixing(inp: str, out: str, rows: list[list[str]]) -> dict:
    return {"pairs": [{"input": inp, "output": out, "matrix": rows}]}


def spatial_all(rank: int = 4) -> list[list[str]]:
    """Batch one-to-one, every spatial row all-to-one, channels unconstrained."""
    rows = [[ONE] + [NONE_] * (rank - 1)]
    rows += [["all"] * rank for _ in range(rank - 2)]
    return rows + [[NONE_] * rank]


def solve(sp: Any, settings: Settings = S) -> Any:
    r = synthesize(Problem.of(sp, settings))
    if r.solved:
        v = judge(r.graph, sp)
        assert v.holds, f"the oracle rejects the solved program: {v}"
    return r


# ---- 1. mixing of compositions is exact ---------------------------------------------------------


def chain(shape: tuple[int, ...], *ops: tuple[OpKind, dict]) -> Any:
    b = GraphBuilder("chain")
    x = b.input("x", shape)
    for kind, attrs in ops:
        x = b.op(kind, x, **attrs)
    return b.build(b.op(K.IDENTITY, x, name="y"))


def test_verify_sees_a_strided_1x1_after_a_7x7_read_six_of_seven_rows() -> None:
    g = chain((1, 7, 7, 2), (K.CONV, {"features": 2, "kernel": 7}),
              (K.CONV, {"features": 2, "kernel": 1, "strides": 2}))
    sp = spec(inputs={"x": [1, 7, 7, 2]}, outputs={"y": [1, 4, 4, 2]}, mixing=mixing("x", "y", spatial_all()))
    assert not verify(g, sp).holds      # main said "holds" (ALL_TO_ONE by the composition rule)
    assert not judge(g, sp).holds


def test_verify_sees_two_5x5_span_nine_rows() -> None:
    g = chain((1, 9, 9, 2), (K.CONV, {"features": 2, "kernel": 5}), (K.CONV, {"features": 2, "kernel": 5}))
    sp = spec(inputs={"x": [1, 9, 9, 2]}, outputs={"y": [1, 9, 9, 2]}, mixing=mixing("x", "y", spatial_all()))
    assert verify(g, sp).holds          # main said "violated" (MANY_TO_ONE by the rule)
    assert judge(g, sp).holds


def test_synthesis_returns_a_program_whose_real_mixing_meets_the_spec() -> None:
    """7 rows to 4 with every row read at the centre: a 7x7 then a strided 1x1 looks right to
    the composition rule but reads 6 rows; a 7x7 then a strided 3x3 reads all 7."""
    sp = spec(inputs={"x": [1, 7, 7, 2]}, outputs={"y": [1, 4, 4, 2]}, mixing=mixing("x", "y", spatial_all()),
              search={"ops": ["conv"], "max_ops": 2})
    r = solve(sp)
    assert r.solved, r.reason
    assert "conv1x1/s2" not in r.skeleton


def test_two_kernels_that_span_the_input_are_found() -> None:
    sp = spec(inputs={"x": [1, 9, 9, 4]}, outputs={"y": [1, 9, 9, 4]}, mixing=mixing("x", "y", spatial_all()),
              search={"ops": ["conv"], "max_ops": 2})
    r = solve(sp)
    assert r.solved and len(r.skeleton) == 2, r.reason
    k = sorted(r.assignment.kernels.values())
    assert sum(k) - len(k) >= 8  # the two windows together span 9 rows


# ---- 2. ops that collapse a dim in one step -----------------------------------------------------


def test_a_keepdims_global_mean_collapses_8x8_in_one_op() -> None:
    sp = spec(inputs={"x": [1, 8, 8, 4]}, outputs={"y": [1, 1, 1, 4]}, search={"ops": ["mean", "conv"], "max_ops": 1})
    r = solve(sp)
    assert r.solved and r.skeleton == ("global_mean/keep",), r.reason


def test_strides_alone_need_three_ops_for_8x8_to_1x1() -> None:
    sp = spec(inputs={"x": [1, 8, 8, 4]}, outputs={"y": [1, 1, 1, 4]}, search={"ops": ["conv"], "max_ops": 2})
    r = solve(sp)
    assert r.status == "unsat" and "at least 3 ops" in r.reason, r.reason
    r = solve(spec(inputs={"x": [1, 8, 8, 4]}, outputs={"y": [1, 1, 1, 4]}, search={"ops": ["conv"], "max_ops": 3}))
    assert r.solved and len(r.skeleton) == 3


def test_a_3x3_stride_2_pool_takes_9_rows_to_5() -> None:
    sp = spec(inputs={"x": [1, 9, 9, 4]}, outputs={"y": [1, 5, 5, 4]}, search={"ops": ["max_pool"], "max_ops": 1})
    r = solve(sp)
    assert r.solved and r.skeleton == ("max_pool3/s2",), r.reason


# ---- 3. kernel sizes are Z3's cases, not a switch -----------------------------------------------


def test_a_depthwise_5x5_under_a_budget_that_excludes_7x7() -> None:
    """All 5 rows at the centre needs K >= 5; the budget fits a depthwise 5x5 (200 + bias) but
    not a 7x7 (392): main pinned every kernel to 7 and said unsat."""
    sp = spec(inputs={"x": [1, 5, 5, 8]}, outputs={"y": [1, 5, 5, 8]}, mixing=mixing("x", "y", spatial_all()),
              resources={"max_params": 8 * 25 + 8}, search={"ops": ["conv"], "max_ops": 1})
    r = solve(sp)
    assert r.solved and r.skeleton == ("dwconvKxK",) and r.assignment.kernels == {0: 5}, r.reason


def test_a_budget_below_every_kernel_that_reaches_is_unsat() -> None:
    sp = spec(inputs={"x": [1, 5, 5, 8]}, outputs={"y": [1, 5, 5, 8]}, mixing=mixing("x", "y", spatial_all()),
              resources={"max_params": 8 * 25 - 1}, search={"ops": ["conv"], "max_ops": 1})
    assert solve(sp).status == "unsat"


# ---- 4. every budget is in the encoding; anything outside it makes the answer unknown ------------


def _peak_spec(budget: int, max_ops: int = 3) -> Any:
    # x -> conv -> relu -> conv: peak = max(x + h, h + y) = 256 + 64 w for a hidden width w
    return spec(inputs={"x": [1, 8, 8, 4]}, outputs={"y": [1, 8, 8, 4]}, depth={"x->y": 3},
                resources={"max_peak_activation": budget}, search={"ops": ["conv", "relu"], "max_ops": max_ops})


def test_a_binding_peak_budget_is_solved_by_z3_directly() -> None:
    r = solve(_peak_spec(256 + 64 * 2))
    assert r.solved and r.stats.verify_failed == 0, (r.reason, r.stats.to_dict())


def test_a_peak_budget_below_every_width_is_a_certificate() -> None:
    r = solve(_peak_spec(256 + 63))
    assert r.status == "unsat", r.reason


def test_a_skeleton_abandoned_for_a_reason_outside_the_encoding_is_unknown(monkeypatch) -> None:
    monkeypatch.setattr(search_module, "recheck", lambda *a, **k: Recheck(False, "injected", ()))
    sp = spec(inputs={"x": [1, 8, 8, 4]}, outputs={"y": [1, 8, 8, 4]}, search={"ops": ["conv"], "max_ops": 1})
    r = synthesize(Problem.of(sp, Settings(models_per_skeleton=1)))
    assert r.status == "unknown" and r.stats.incomplete >= 1, r.reason


def test_a_rules_oracle_disagreement_is_counted_and_never_unsat(monkeypatch) -> None:
    real = build_module.recheck

    def disagree(*a: Any, **k: Any) -> Recheck:
        r = real(*a, **k)
        return Recheck(False, "injected", r.reports, ("context 0: params: rules 1, oracle 2",))

    monkeypatch.setattr(search_module, "recheck", disagree)
    sp = spec(inputs={"x": [1, 8, 8, 4]}, outputs={"y": [1, 8, 8, 4]}, search={"ops": ["conv"], "max_ops": 1})
    r = synthesize(Problem.of(sp, Settings()))
    assert r.status == "unknown" and r.stats.disagreements >= 1 and "params" in r.stats.notes[0]


# ---- 5. what the certificate claims is what the spec says --------------------------------------


def test_an_unconstrained_input_may_be_ignored() -> None:
    """The spec says nothing about z, so one batch norm of x is a program (main demanded that
    z be read and said unsat)."""
    sp = spec(inputs={"x": [1, 8, 8, 4], "z": [1, 3]}, outputs={"y": [1, 8, 8, 4]}, depth={"x->y": 1},
              search={"ops": ["batch_norm"], "max_ops": 1})
    r = solve(sp)
    assert r.solved and r.skeleton == ("batch_norm",), r.reason
    assert verify(r.graph, sp).holds


def test_an_input_with_a_depth_bound_must_be_read() -> None:
    sp = spec(inputs={"x": [1, 8, 8, 4], "z": [1, 8, 8, 4]}, outputs={"y": [1, 8, 8, 4]},
              depth={"value": 1}, search={"ops": ["batch_norm", "add"], "max_ops": 2})
    r = solve(sp)
    assert r.solved and "add" in r.skeleton, r.reason
    assert set(r.graph.input_names) <= {i for op in r.graph.ops for i in op.inputs}


# ---- 7. the deadline bounds the whole call ------------------------------------------------------


def test_a_passed_deadline_says_which_part_ran_out() -> None:
    sp = spec(inputs={"x": [1, 8, 8, 4]}, outputs={"y": [1, 8, 8, 4]}, depth={"x->y": 6},
              search={"ops": ["conv", "relu"], "max_ops": 6})
    r = synthesize(Problem.of(sp, Settings(timeout_s=1e-9)))
    assert r.status == "timeout" and "ran out during" in r.reason, r.reason


def test_z3_checks_get_the_time_left() -> None:
    from alphanas.synth.solve import _Limit

    past, soon, later = (time.perf_counter() + d for d in (-1.0, 0.5, 3600.0))
    assert _Limit(5000, None)() == 5000 and _Limit(5000, later)() == 5000
    assert _Limit(5000, past)() == 1      # Z3 reads 0 as "no limit"
    left = _Limit(5000, soon)()
    assert 1 <= left and left <= 500


@pytest.mark.parametrize("budget", [256 + 64, 256 + 64 * 4])
def test_peak_terms_match_the_definition(budget: int) -> None:
    """The peak-activation terms Z3 sees, evaluated at the returned widths, equal the rules'."""
    r = solve(_peak_spec(budget))
    assert r.solved
    assert verify(r.graph, _peak_spec(budget)).holds


# ---- the exact mixing plan against the programs themselves ----------------------------------------


@pytest.mark.parametrize("second", ["convKxK", "dwconvKxK"])
def test_the_mixing_plan_is_exact_for_a_concat_of_two_kernels(second: str) -> None:
    """concat(conv_a(x), conv_b(x)) on 5x5 rows: which operand holds the output's centre channel
    depends on the widths, so the plan enumerates them. For every width option and kernel
    choice, the plan's constraint admits it exactly when the built program's real mixing (by
    the definition) meets the spec."""
    from alphanas.oracle.deps import exact_mixing
    from alphanas.properties import smt
    from alphanas.synth.abstract import wvar
    from alphanas.synth.build import build_program
    from alphanas.synth.menu import KERNELS, menu
    from alphanas.synth.mixcheck import plan_mixing
    from alphanas.synth.solve import Assignment, width_options

    out_w = 4 if second == "convKxK" else 6
    sp = spec(inputs={"x": [1, 5, 5, 2]}, outputs={"y": [1, 5, 5, out_w]}, mixing=mixing("x", "y", spatial_all()),
              search={"ops": ["conv", "concat"], "max_ops": 3})
    p = Problem.of(sp, S)
    by = {v.key: v for v in menu(p.ops)}
    nodes = [(by["convKxK"], (0,)), (by[second], (0,)), (by["concat"], (1, 2))]
    plan = plan_mixing(p, nodes)
    assert plan.exact and not plan.prune and plan.cons
    opts, ctx = width_options(p), p.contexts[0]
    agree = admitted = 0
    for s0, o0 in enumerate(opts):
        w0 = o0.value(2)
        w1 = 2 if second == "dwconvKxK" else out_w - w0
        s1 = next((j for j, o in enumerate(opts) if o.value(2) == w1), None)
        if w0 + w1 != out_w or s1 is None:
            continue
        for k0 in KERNELS:
            for k1 in KERNELS:
                widths = {0: o0} if second == "dwconvKxK" else {0: o0, 1: opts[s1]}
                a = Assignment(widths, {0: k0, 1: k1}, {0: False, 1: False}, {})
                g = build_program(ctx, nodes, a)
                real = exact_mixing(g)[("x", "y")]
                meets = all(h >= int(w) for wr, hr in zip(ctx.mixing[0][1], real, strict=True)
                            for w, h in zip(wr, hr, strict=True))
                solver = smt.Solver()
                picks = [smt.eq(wvar("s", 0), s0), smt.eq(wvar("k", 0), k0), smt.eq(wvar("k", 1), k1)]
                if second == "convKxK":
                    picks.append(smt.eq(wvar("s", 1), s1))
                solver.add(*plan.cons, *picks)
                allowed = solver.check().sat
                assert allowed == meets, (w0, w1, k0, k1, real)
                agree += 1
                admitted += allowed
    assert agree >= 9 and 0 < admitted < agree


def _random_program(rng: Any, p: Problem, n: int) -> tuple[list, Any] | None:
    """A random skeleton of `n` menu variants on p's input (each applied at a rank it accepts)
    and a random assignment of it, or None when the draw is not a valid program."""
    from alphanas.errors import AlphanasError
    from alphanas.ir.analysis import analyze
    from alphanas.synth.build import build_program
    from alphanas.synth.menu import KERNELS, menu
    from alphanas.synth.solve import Assignment, width_options

    variants = menu(p.ops)
    opts = [o for o in width_options(p) if o.value(p.contexts[0].ref_channels)]
    m = p.n_inputs
    nodes: list = []
    for i in range(n):
        v = rng.choice(variants)
        ins = (rng.randrange(m + i),) if v.arity == 1 else (rng.randrange(m + i), rng.randrange(m + i))
        nodes.append((v, ins))
    used = {j for _, ins in nodes for j in ins}
    if any(j not in used for j in range(m, m + n - 1)):
        return None
    a = Assignment({i: rng.choice(opts) for i, (v, _) in enumerate(nodes) if v.width == "new"},
                   {i: rng.choice(KERNELS) for i, (v, _) in enumerate(nodes) if v.kernel},
                   {i: False for i, (v, _) in enumerate(nodes) if v.bias},
                   {i: 1 for i, (v, _) in enumerate(nodes) if v.heads})
    try:
        g = build_program(p.contexts[0], nodes, a)
        shapes = analyze(g).shapes
    except AlphanasError:
        return None
    names = [*g.input_names, *(o.name for o in g.ops)]
    if any(len(shapes[names[j]]) not in v.ranks for v, ins in nodes for j in ins):
        return None  # outside the menu: each variant lists the ranks it is applied at
    return nodes, (a, g)


@pytest.mark.parametrize("seed", range(4))
def test_the_mixing_plan_never_prunes_a_program_that_meets_it(seed: int) -> None:
    """Random programs of the menu (concats, flattens, strides, kernels, pools, means): the
    spec is each program's own shape and exact mixing, so the plan must neither prune its
    skeleton nor exclude its widths and kernels."""
    import random

    from alphanas.oracle.deps import exact_mixing
    from alphanas.properties import smt
    from alphanas.synth.abstract import wvar
    from alphanas.synth.mixcheck import plan_mixing
    from alphanas.synth.solve import width_options

    rng = random.Random(seed)
    ops = ["conv", "relu", "concat", "add", "max_pool", "avg_pool", "mean", "flatten", "dense", "batch_norm"]
    checked = 0
    for _ in range(400):
        base = Problem.of(spec(inputs={"x": [2, 6, 6, 4]}, outputs={"y": [2, 6, 6, 4]},
                               search={"ops": ops, "max_ops": 3}), S)
        made = _random_program(rng, base, rng.randint(1, 3))
        if made is None:
            continue
        nodes, (a, g) = made
        from alphanas.ir.analysis import analyze

        out = analyze(g).output_shapes[0]
        real = exact_mixing(g)[("x", g.outputs[0])]
        rows = [[["none", "one", "many", "all"][v] for v in row] for row in real]
        p = Problem.of(spec(inputs={"x": [2, 6, 6, 4]}, outputs={g.outputs[0]: list(out)},
                            mixing=mixing("x", g.outputs[0], rows), search={"ops": ops, "max_ops": 3}), S)
        plan = plan_mixing(p, nodes)
        assert not plan.prune, (nodes, rows)
        if plan.cons:
            opts = width_options(p)
            picks = [smt.eq(wvar("s", i), opts.index(o)) for i, o in a.widths.items() if o in opts]
            picks += [smt.eq(wvar("k", i), k) for i, k in a.kernels.items()]
            solver = smt.Solver()
            solver.add(*plan.cons, *picks)
            assert solver.check().sat, (nodes, a, rows)
        checked += 1
    assert checked >= 50


def _witness_spec(g: Any, ops: list[str], n: int, linear: frozenset[str] = frozenset()) -> Any:
    """Everything a program has, as a spec: its output shape, exact depth (its inputs produced
    as `linear` says, recorded in [context]), exact mixing of every input, its params/FLOPs/peak
    as budgets, its op kinds, its size."""
    from alphanas.ir.analysis import analyze
    from alphanas.oracle import facts

    f = facts(g, linear)
    out = g.outputs[0]
    pairs = [{"input": i, "output": out,
              "matrix": [[["none", "one", "many", "all"][v] for v in row] for row in f.mixing[(i, out)]]}
             for i in g.input_names]
    depth = {"mode": "exactly", **{f"{i}->{o}": d for (i, o), d in f.depth.items()}}
    sections: dict[str, Any] = {"mixing": {"pairs": pairs},
                                "resources": {"max_params": max(f.params, 1), "max_flops": max(f.flops, 1),
                                              "max_peak_activation": f.peak},
                                "search": {"ops": ops, "max_ops": n}}
    if len(depth) > 1:
        sections["depth"] = depth
    if linear:
        sections["context"] = {i: "linear" for i in sorted(linear)}
    return spec(inputs={i: list(sh) for i, sh in zip(g.input_names, g.input_shapes, strict=True)},
                outputs={out: list(analyze(g).shapes[out])}, **sections)


_SHAPES = [[2, 6, 6, 4], [1, 7, 7, 3], [2, 5, 5, 2], [1, 9, 9, 1], [2, 6, 8], [4, 8]]
_OPS = ["conv", "relu", "concat", "add", "mul", "max_pool", "avg_pool", "mean", "flatten", "dense",
        "batch_norm", "resize", "layer_norm", "softmax", "self_attention", "gelu"]


def _witness_round(seed: int, programs: int) -> int:
    """Random programs (one or two inputs, the first sometimes from a linear producer) must
    never be called unsat on the spec read off them."""
    import random

    rng = random.Random(seed)
    shape = _SHAPES[seed % len(_SHAPES)]
    two = seed % 2 == 1
    inputs = {"x": shape, **({"z": shape[:-1] + [rng.choice([1, shape[-1]])]} if two else {})}
    base = Problem.of(spec(inputs=inputs, outputs={"y": shape}, search={"ops": _OPS, "max_ops": 3}), S)
    done = 0
    while done < programs:
        n = rng.randint(1, 3)
        made = _random_program(rng, base, n)
        if made is None:
            continue
        nodes, (_, g) = made
        linear = frozenset({"x"}) if rng.random() < 0.3 else frozenset()
        sp = _witness_spec(g, sorted({v.kind.value for v, _ in nodes}), n, linear)
        r = synthesize(Problem.of(sp, Settings(timeout_s=60, max_candidates=200_000)))
        assert r.status != "unsat", (seed, [(v.key, ins) for v, ins in nodes], sorted(linear), r.reason)
        done += 1
    return done


@pytest.mark.parametrize("seed", range(3))
def test_random_witnesses_are_never_unsat(seed: int) -> None:
    """A random program of <= 3 menu ops is a witness of the spec read off it (shape, exact
    depth, exact mixing, its own costs as budgets): no pruning rule may call that unsat."""
    assert _witness_round(seed, 8) == 8


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 13))
def test_random_witnesses_are_never_unsat_at_size(seed: int) -> None:
    assert _witness_round(seed, 40) == 40


@pytest.mark.parametrize("seed", range(2))
def test_random_two_context_witnesses_are_never_unsat(seed: int) -> None:
    """One random template (relative widths) at two positions of different sizes: the specs
    read off both positions must not be called unsat together."""
    import random

    from alphanas.errors import AlphanasError
    from alphanas.synth.build import build_program

    rng = random.Random(100 + seed)
    shapes = ([2, 6, 6, 4], [2, 3, 3, 8])
    base = Problem.of([spec(inputs={"x": sh}, outputs={"y": sh}, search={"ops": _OPS, "max_ops": 3})
                       for sh in shapes], S)
    done = 0
    while done < 6:
        n = rng.randint(1, 3)
        made = _random_program(rng, base, n)
        if made is None:
            continue
        nodes, (a, _) = made
        try:
            graphs = [build_program(c, nodes, a) for c in base.contexts]
            kinds = sorted({v.kind.value for v, _ in nodes})
            specs = [_witness_spec(g, kinds, n) for g in graphs]
        except AlphanasError:
            continue
        r = synthesize(Problem.of(specs, Settings(timeout_s=60, max_candidates=200_000)))
        assert r.status != "unsat", (seed, [(v.key, ins) for v, ins in nodes], r.reason)
        done += 1
