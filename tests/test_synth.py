"""The synthesizer: pruning rules, Z3 attribute solving, certificates, re-verification."""

from __future__ import annotations

from typing import Any

import pytest

from alphanas.ir import OpKind, zoo
from alphanas.ir.analysis import analyze
from alphanas.properties.base import Subject
from alphanas.properties.spec import parse_spec, read_off_spec
from alphanas.synth import Problem, Settings, SynthError, synthesize
from alphanas.synth.abstract import apply
from alphanas.synth.build import reverify
from alphanas.synth.certify import INF, Caps, ShapeBounds, prune
from alphanas.synth.menu import menu
from alphanas.synth.search import _Search

K = OpKind
FAST = Settings(timeout_s=20)
ALL = ("shape", "depth", "mixing", "resources", "search")


def spec(inputs: dict[str, list[int]], outputs: dict[str, list[int]], **sections: Any):
    return parse_spec({"inputs": inputs, "outputs": outputs, **sections}, "test.toml")


def read_off(model: str, ops: list[str]) -> tuple[Problem, Subject]:
    g = zoo.build(model)
    sub = Subject.sub(g, ops)
    return Problem.of(read_off_spec(sub, properties=ALL), FAST, hosts=[(g, sub.selection)]), sub


# ---- pruning rules ----------------------------------------------------------------------------


def bounds(*kinds: OpKind, inputs: tuple = ((1, 8, 8, 16),)) -> ShapeBounds:
    return Caps.of(menu(frozenset(kinds)), inputs).bounds


def test_shape_bounds_follow_the_menu() -> None:
    full = bounds(K.CONV, K.ADD, K.MEAN, K.FLATTEN, K.RELU)
    assert full.need((1, 32, 32, 16), (1, 8, 8, 64)) == 2               # two stride-2 convs
    assert full.need((1, 32, 32, 16), (1, 32, 32, 64)) == 0
    assert full.need((1, 1, 1, 16), (1, 8, 8, 16)) == 1                 # broadcast
    assert bounds(K.ADD, inputs=((1, 4, 4, 2),)).need((1, 1, 1, 2), (1, 8, 8, 2)) == INF
    assert full.need((1, 8, 8, 16), (1, 16, 16, 16)) == INF             # no upsampling
    assert full.need((1, 8, 8, 16), (1, 16)) == 1                       # flatten / mean
    assert full.need((1, 16), (1, 8, 8, 16)) == 1      # add broadcasts it onto a rank-4 partner
    assert bounds(K.CONV, K.MEAN).need((1, 16), (1, 8, 8, 16)) == INF  # nothing raises the rank
    assert full.need((1, 8, 8, 16), (1, 1, 1, 16)) == 1                 # a keepdims global mean
    assert bounds(K.CONV).need((1, 8, 8, 16), (1, 1, 1, 16)) == 3       # 8 -> 4 -> 2 -> 1
    assert bounds(K.RESIZE).need((1, 8, 8, 16), (1, 32, 32, 16)) == 2
    assert bounds(K.MAX_POOL).need((1, 9, 9, 4), (1, 4, 4, 4)) == 1     # a 2x2 VALID pool: 9 -> 4
    assert bounds(K.MAX_POOL).need((1, 9, 9, 4), (1, 5, 5, 4)) == 1     # a 3/2 SAME pool: 9 -> 5
    assert bounds(K.RELU).need((1, 9, 9, 4), (1, 5, 5, 4)) == INF


def walk(problem: Problem, skeleton: list[tuple[str, tuple[int, ...]]], n: int | None = None) -> list[str]:
    """Push a skeleton op by op; the rule `prune` fires on each prefix ('' = kept)."""
    s = _Search(problem, None)
    variants = {v.key: v for v in menu(problem.ops)}
    out = []
    for key, ins in skeleton:
        v = variants[key]
        steps = tuple(apply(v, len(s.nodes), k, [s.vals[j][k] for j in ins])
                      for k in range(len(problem.contexts)))
        s._push(v, ins, steps, (key, *ins))
        out.append(prune(s, (n or problem.max_ops) - len(s.nodes)))
    return out


RESIDUAL = [("convKxK", (0,)), ("batch_norm", (1,)), ("relu", (2,)), ("convKxK", (3,)),
            ("batch_norm", (4,)), ("add", (5, 0))]


def residual_problem(**over: Any) -> Problem:
    sections = {"depth": {"mode": "at_least", "value": 3},
                "search": {"ops": ["conv", "batch_norm", "relu", "add"], "max_ops": 6}, **over}
    return Problem.of(spec({"x": [1, 8, 8, 16]}, {"y": [1, 8, 8, 16]}, **sections), FAST)


def test_rules_keep_every_prefix_of_a_feasible_program() -> None:
    assert walk(residual_problem(), RESIDUAL) == [""] * len(RESIDUAL)


def test_depth_rule_prunes_a_prefix_that_cannot_reach_the_bound() -> None:
    p = residual_problem(depth={"mode": "at_least", "value": 5})
    assert walk(p, RESIDUAL[:3])[-1] == ""        # depth 2 + 3 ops left can reach 5
    p = residual_problem(depth={"mode": "at_least", "value": 6})
    assert walk(p, RESIDUAL[:3])[-1] == "depth"   # depth 2 + 3 ops left < 6
    p = residual_problem(depth={"mode": "exactly", "value": 1})
    assert walk(p, RESIDUAL[:3])[-1] == "depth"   # conv, bn, relu already has depth 2 > 1


def test_dangling_shape_and_budget_rules() -> None:
    p = residual_problem()
    two_branches = [("convKxK", (0,)), ("convKxK", (0,)), ("relu", (0,))]
    assert walk(p, two_branches)[-1] == ""            # 3 unread tensors, 3 ops left: 2 merges fit
    p5 = residual_problem(search={"ops": ["conv", "batch_norm", "relu", "add"], "max_ops": 4})
    assert walk(p5, two_branches)[-1] == "dangling"   # 3 unread, 1 op left
    strided = Problem.of(spec({"x": [1, 8, 8, 16]}, {"y": [1, 8, 8, 16]},
                              search={"ops": ["conv", "relu"], "max_ops": 3}), FAST)
    assert walk(strided, [("convKxK/s2", (0,))])[-1] == "shape"   # 4x4 cannot grow back
    tight = residual_problem(resources={"max_params": 500})
    assert walk(tight, RESIDUAL[:1])[-1] == "budget"  # a 3x3 conv 16->4 (the narrowest) is 576


# ---- end to end -------------------------------------------------------------------------------


@pytest.mark.parametrize("model,ops", [
    ("cifar_cnn", ["conv_layer1/conv", "conv_layer1/relu", "conv_layer1/avg_pool"]),
    ("resnet18_cifar", [f"stage1/block0/{n}" for n in ("conv1", "conv1_bn", "conv1_relu", "conv2",
                                                       "conv2_bn", "add")]),
    ("vit_ti16_fused", ["encoder0/mlp/dense0", "encoder0/mlp/gelu", "encoder0/mlp/dense1"]),
    ("efficientnet_b0", [f"stage1/block0/se/{n}" for n in ("squeeze", "reduce", "swish", "expand",
                                                           "gate", "scale")]),
])
def test_witness_tasks_are_solved_and_reverified(model: str, ops: list[str]) -> None:
    p, _ = read_off(model, ops)
    r = synthesize(p)
    assert r.solved, r.reason
    assert len(r.skeleton) <= len(ops)
    ok, why, reports = reverify(p, [(v, ins) for v, ins in _nodes(p, r)], r.assignment)
    assert ok, why
    assert r.stats.verified == 1 and r.stats.complete >= 1 and r.stats.smt_calls >= 1


def _nodes(p: Problem, r) -> list:
    variants = {v.key: v for v in menu(p.ops)}
    g = r.graph
    index = {n: i for i, n in enumerate((*g.input_names, *(o.name for o in g.ops)))}
    return [(variants[k], tuple(index[i] for i in o.inputs)) for k, o in zip(r.skeleton, g.ops, strict=True)]


def test_branching_programs_are_found() -> None:
    p = Problem.of(spec({"x": [1, 8, 8, 16]}, {"y": [1, 8, 8, 32]},
                        search={"ops": ["relu", "concat"], "max_ops": 3}), FAST)
    r = synthesize(p)  # concat(x, x) doubles the width in one op (a binary op may read one
    assert r.solved, r.reason  # tensor twice); it was "unsat in 1 op" while that was excluded
    assert r.skeleton == ("concat",) and r.graph.ops[0].inputs == ("x", "x")
    assert analyze(r.graph).output_shapes == ((1, 8, 8, 32),)
    deeper = Problem.of(spec({"x": [1, 8, 8, 16]}, {"y": [1, 8, 8, 32]}, depth={"x->y": 2},
                             search={"ops": ["relu", "concat"], "max_ops": 3}), FAST)
    r = synthesize(deeper)  # [concat] [relu] ... needs a linear run after a non-linear one
    assert r.solved and len(r.skeleton) == 2 and set(r.skeleton) == {"relu", "concat"}, r.reason


# ---- Z3: relative sizes over several contexts, budgets, objective ------------------------------


def two_contexts(out0: int, out1: int, **sections: Any) -> Problem:
    search = {"search": {"ops": ["conv", "relu"], "max_ops": 2}}
    return Problem.of([spec({"x": [1, 8, 8, 16]}, {"y": [1, 8, 8, out0]}, **search, **sections),
                       spec({"x": [1, 4, 4, 32]}, {"y": [1, 4, 4, out1]}, **search, **sections)], FAST)


def test_one_template_fits_every_context_with_relative_widths() -> None:
    r = synthesize(two_contexts(32, 64))
    assert r.solved, r.reason
    conv = next(o for o in r.graph.ops if o.kind.value == "conv")
    assert conv.attr("features").mul == 2   # twice the input's channels, in both contexts
    for shape, want in (((1, 8, 8, 16), (1, 8, 8, 32)), ((1, 4, 4, 32), (1, 4, 4, 64))):
        assert analyze(r.graph.with_input_shapes([shape])).output_shapes == (want,)


def test_contexts_with_no_common_width_are_unsat() -> None:
    r = synthesize(two_contexts(24, 40))   # 3/2 vs 5/4 of the input, 24 vs 40 absolute
    assert r.status == "unsat", r.reason
    assert "widths/budgets" in r.reason


def test_budget_and_minimize() -> None:
    base = dict(search={"ops": ["conv", "relu"], "max_ops": 2})
    p = Problem.of(spec({"x": [1, 8, 8, 16]}, {"y": [1, 8, 8, 32]}, **base), FAST)
    free = synthesize(p)
    small = synthesize(Problem.of(p.contexts[0].spec, Settings(minimize="params")))
    assert free.solved and small.solved
    pf, ps = analyze(free.graph).params, analyze(small.graph).params
    assert ps <= pf and ps == 16 * 32   # 1x1 conv without bias is the cheapest
    bottleneck = Problem.of(spec({"x": [1, 8, 8, 16]}, {"y": [1, 8, 8, 32]}, **base,
                                 resources={"max_params": 16 * 32 - 1}), FAST)
    r = synthesize(bottleneck)   # 16 -> 4 -> 32 fits where one conv does not
    assert r.solved and len(r.skeleton) == 2 and analyze(r.graph).params <= 511
    tight = Problem.of(spec({"x": [1, 8, 8, 16]}, {"y": [1, 8, 8, 32]}, **base,
                            resources={"max_params": 150}), FAST)
    r = synthesize(tight)
    assert r.status == "unsat" and "budget" in r.reason


# ---- certificates and bad input ---------------------------------------------------------------


def test_quick_certificates_name_the_property() -> None:
    deep = residual_problem(depth={"mode": "at_least", "value": 9},
                            search={"ops": ["conv", "relu"], "max_ops": 4})
    r = synthesize(deep)
    assert r.status == "unsat" and r.reason.startswith("depth:") and r.stats.generated == 0
    up = Problem.of(spec({"x": [1, 8, 8, 16]}, {"y": [1, 16, 16, 16]},
                         search={"ops": ["conv", "relu"], "max_ops": 4}), FAST)
    r = synthesize(up)
    assert r.status == "unsat" and r.reason.startswith("shape:") and "no allowed op" in r.reason


def test_exhaustive_certificate_and_timeout() -> None:
    p = Problem.of(spec({"x": [1, 8, 8, 16]}, {"y": [1, 8, 8, 16]}, depth={"mode": "exactly", "value": 2},
                        search={"ops": ["relu", "tanh"], "max_ops": 3}), FAST)
    r = synthesize(p)   # only non-linear ops: depth stays 1
    assert r.status == "unsat" and "depth" in r.reason and "<= 3 ops" in r.reason
    hard = Problem.of(spec({"x": [1, 8, 8, 16]}, {"y": [1, 8, 8, 24]},   # concat makes 32, 48, ...
                           search={"ops": ["batch_norm", "relu", "add", "concat"], "max_ops": 6}),
                      Settings(timeout_s=0.2))
    r = synthesize(hard)
    assert r.status == "timeout" and "0.2 s" in r.reason and "ran out during" in r.reason


def test_bad_specs_are_clear_errors() -> None:
    with pytest.raises(SynthError, match="test.toml: outputs: synthesis needs the output shape"):
        Problem.of(parse_spec({"inputs": {"x": [1, 8]}}, "test.toml"))
    with pytest.raises(SynthError, match="supports one output"):
        Problem.of(spec({"x": [1, 8]}, {"a": [1, 8], "b": [1, 8]}))
    with pytest.raises(SynthError, match="search.ops: none of .*einsum"):
        Problem.of(spec({"x": [1, 8]}, {"y": [1, 8]}, search={"ops": ["einsum"]}))
    with pytest.raises(SynthError, match="minimize: expected one of params, flops"):
        Settings(minimize="latency")
    with pytest.raises(SynthError, match="same number and ranks"):
        Problem.of([spec({"x": [1, 8]}, {"y": [1, 8]}), spec({"x": [1, 8, 8]}, {"y": [1, 8, 8]})])


def test_same_problem_same_program_in_one_process() -> None:
    p, _ = read_off("resnet18_cifar", [f"stage1/block0/{n}" for n in ("conv1", "conv1_bn", "conv1_relu")])
    first = synthesize(p)
    synthesize(two_contexts(32, 64))   # other Z3 work in between must not change the answer
    again = synthesize(p)
    assert first.solved and again.solved
    assert first.graph == again.graph and first.assignment == again.assignment
