"""The synthesis baselines: plain enumeration over a concrete grid, and greedy progressive
synthesis. Both must return `synthesize`'s result types, re-verifying solutions, honest
statuses and respected timeouts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from alphanas.ir import zoo
from alphanas.properties.base import Subject
from alphanas.properties.spec import Spec, read_off_spec
from alphanas.synth import Problem, Result, Settings, synthesize
from alphanas.synth.baselines import greedy_progressive, plain_enumerate
from alphanas.synth.build import reverify
from alphanas.synth.menu import menu

FAST = Settings(timeout_s=60)
ALL = ("shape", "depth", "mixing", "resources", "search")
CIFAR_BLOCK = ["conv_layer1/conv", "conv_layer1/relu", "conv_layer1/avg_pool"]


def read_off(model: str, ops: list[str], settings: Settings = FAST,
             depth_plus: int = 0) -> Problem:
    """The spec of sub-graph `ops` of a zoo model, read off in its host; `depth_plus` raises
    every depth lower bound."""
    g = zoo.build(model)
    sub = Subject.sub(g, ops)
    spec = read_off_spec(sub, properties=ALL)
    if depth_plus:
        spec = _deeper(spec, depth_plus)
    return Problem.of(spec, settings, hosts=[(g, sub.selection)])


def _deeper(spec: Spec, k: int) -> Spec:
    assert spec.depth is not None
    pairs = tuple((pair, replace(b, lo=b.lo + k)) for pair, b in spec.depth.pairs)
    return replace(spec, depth=replace(spec.depth, pairs=pairs))


def nodes_of(problem: Problem, r: Result) -> list[tuple]:
    """The (variant, inputs) program of a solved result, read back from its graph."""
    assert r.graph is not None
    variants = {v.key: v for v in menu(problem.ops)}
    names = [*r.graph.input_names]
    out = []
    for key, op in zip(r.skeleton, r.graph.ops, strict=True):
        out.append((variants[key], tuple(names.index(i) for i in op.inputs)))
        names.append(op.name)
    return out


def assert_reverifies(problem: Problem, r: Result) -> None:
    assert r.solved and r.assignment is not None and r.stats.exit == "solved"
    ok, why, reports = reverify(problem, nodes_of(problem, r), r.assignment)
    assert ok, why
    assert reports and all(rep.holds for rep in r.reports)
    assert not r.stats.pruned


@pytest.fixture(scope="module")
def cifar_block() -> Problem:
    return read_off("cifar_cnn", CIFAR_BLOCK)


# ---- plain enumeration ------------------------------------------------------------------------


def test_plain_solves_the_cifar_block_with_far_more_candidates(cifar_block: Problem) -> None:
    seen: list[int] = []
    plain = plain_enumerate(cifar_block, progress=lambda s: seen.append(s.complete))
    ref = synthesize(cifar_block)
    assert plain.solved and ref.solved
    assert_reverifies(cifar_block, plain)
    assert len(plain.skeleton) <= len(ref.skeleton)       # sizes are searched in order
    assert plain.stats.complete >= 100 * ref.stats.complete
    assert plain.stats.verified == 1
    assert plain.stats.complete > plain.stats.verify_failed > 0
    assert seen == list(range(1000, plain.stats.complete, 1000))   # a report per 1000 candidates


def test_plain_is_deterministic() -> None:
    p = read_off("vit_ti16_fused", ["encoder0/mlp/dense0", "encoder0/mlp/gelu", "encoder0/mlp/dense1"])
    a, b = plain_enumerate(p), plain_enumerate(p)
    assert a.solved and (a.skeleton, a.assignment) == (b.skeleton, b.assignment)
    assert a.stats.complete == b.stats.complete
    assert_reverifies(p, a)


def test_plain_reports_unsat_once_the_grid_is_exhausted() -> None:
    p = read_off("cifar_cnn", ["conv_layer1/relu"], depth_plus=1)   # one relu, depth + 1
    r = plain_enumerate(p)
    assert r.status == "unsat" and r.graph is None
    assert "exhausted the grid" in r.reason
    assert r.stats.complete == r.stats.generated == 1


def test_plain_respects_the_timeout(cifar_block: Problem) -> None:
    p = replace(cifar_block, settings=replace(FAST, timeout_s=0.2))
    r = plain_enumerate(p)
    assert r.status == "timeout" and "within 0.2 s" in r.reason  # (the deadline itself is
    assert 0 < r.stats.complete                                 # benchmarked: benchmarks/oracle.py)


# ---- greedy progressive synthesis ---------------------------------------------------------


@pytest.mark.parametrize("ops", [["conv_layer1/relu"], ["conv_layer1/conv", "conv_layer1/relu"]])
def test_greedy_solves_easy_cifar_sub_graphs(ops: list[str]) -> None:
    p = read_off("cifar_cnn", ops)
    r = greedy_progressive(p)
    assert r.solved, r.reason
    assert_reverifies(p, r)
    assert len(r.skeleton) <= len(ops)
    assert r.stats.complete >= r.stats.verified == 1


def test_greedy_is_deterministic() -> None:
    p = read_off("resnet18_cifar", ["stage1/block0/conv1", "stage1/block0/conv1_bn",
                                    "stage1/block0/conv1_relu"])
    a, b = greedy_progressive(p), greedy_progressive(p)
    assert a.solved and (a.skeleton, a.assignment) == (b.skeleton, b.assignment)
    assert_reverifies(p, a)


def test_greedy_gives_up_with_a_reason_where_it_cannot_solve() -> None:
    p = read_off("cifar_cnn", ["conv_layer1/conv", "conv_layer1/relu"], depth_plus=2)
    seen: list[int] = []
    r = greedy_progressive(p, progress=lambda s: seen.append(s.size))
    assert r.status == "timeout" and r.graph is None and r.assignment is None
    assert f"after {p.max_ops} ops" in r.reason and "cannot prove unsat" in r.reason
    assert seen == list(range(1, p.max_ops + 1))       # one report per step taken
    assert synthesize(p).status == "unsat"             # the certificate greedy cannot give


def test_greedy_respects_the_timeout(cifar_block: Problem) -> None:
    p = replace(cifar_block, settings=replace(FAST, timeout_s=1e-6))
    r = greedy_progressive(p)
    assert r.status == "timeout" and "greedy chain of 0 ops" in r.reason
