"""SMT encodings of shape, depth, mixing and resources for a given graph.

Acceptance: for random chains and DAGs (valid by construction), the Z3 model of the encoding
reproduces the inferred values (shapes from `analyze`, depth from a path-enumerating reference
and `infer_depth`, mixing from `analytic_mixing` (the rule the encoding states), params/FLOPs from `analyze`), and perturbed
targets (exact depth + 1, a shape dim + 1, a budget below the actual cost, a stronger mixing
entry) are UNSAT, with the failed target named in the core.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_random_graphs import chains, dags

from alphanas.ir import Graph, GraphBuilder, OpKind, analyze, opdef, zoo
from alphanas.ir.attrs import DepthClass
from alphanas.properties.base import Subject
from alphanas.properties.encodings import Encoding, EncodingError, encode
from alphanas.properties.smt import Status

K = OpKind
HAVE_MIXING = importlib.util.find_spec("alphanas.properties.mixing") is not None
HAVE_DEPTH = importlib.util.find_spec("alphanas.properties.depth") is not None
needs_mixing = pytest.mark.skipif(not HAVE_MIXING, reason="alphanas.properties.mixing (op_mixing, "
                                  "infer_mixing) is not written yet")
KINDS = ("shape", "depth", "mixing", "params", "flops") if HAVE_MIXING else ("shape", "depth", "params", "flops")


# ---- an independent depth reference: enumerate every path -------------------------------------


def paths(g: Graph, src: str, dst: str) -> Iterator[list[str]]:
    """Every data path src -> ... -> dst as a list of op names (iterative DFS backwards)."""
    stack: list[tuple[str, list[str]]] = [(dst, [])]
    while stack:
        t, tail = stack.pop()
        if t == src:
            yield tail
            continue
        if t in g.op_map:
            for i in dict.fromkeys(g.op_map[t].inputs):
                stack.append((i, [t, *tail]))


def reference_depth(g: Graph, linear_inputs: frozenset[str] = frozenset()) -> dict[tuple[str, str], int]:
    out = {}
    for i in g.input_names:
        for o in g.outputs:
            best = None
            for p in paths(g, i, o):
                last = DepthClass.LINEAR if i in linear_inputs else DepthClass.NONLINEAR
                switches = 0
                for name in p:
                    cls = opdef(g.op_map[name].kind).depth
                    if cls is not DepthClass.TRANSPARENT and cls is not last:
                        switches, last = switches + 1, cls
                best = switches if best is None else max(best, switches)
            if best is not None:
                out[(i, o)] = best
    return out


def as_ints(m) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(v) for v in row) for row in m)


# ---- differential: the model reproduces inference, perturbed targets are UNSAT ----------------


def assert_reproduces(g: Graph, enc: Encoding) -> None:
    r = enc.check()
    assert r.status is Status.SAT, r.reason
    v, a = enc.values(), analyze(g)
    assert v.shapes == dict(a.shapes)
    assert (v.params, v.flops) == (a.params, a.flops)
    depth = {p: v.depth[p] for p in reference_depth(g)}
    assert depth == reference_depth(g)
    assert {p for p in v.depth if p[1] in g.outputs} == set(depth)
    if HAVE_DEPTH:
        from alphanas.properties.depth import infer_depth

        assert depth == infer_depth(Subject.whole(g))
    if HAVE_MIXING:
        from alphanas.properties.mixing import analytic_mixing

        want = {p: as_ints(m) for p, m in analytic_mixing(g).items()}
        assert {p: v.mixing[p] for p in want} == want


def assert_rejects_perturbations(g: Graph, enc: Encoding) -> None:
    v, a = enc.values(), analyze(g)

    def verdict(kind: str, value, relation: str | None = None) -> Status:
        r = enc.check(enc.require(kind, value, relation))
        assert r.status is not Status.UNKNOWN, r.reason
        if r.status is Status.UNSAT:
            assert r.core and all(c.startswith(kind) for c in r.core), r.core
        return r.status

    SAT, UNSAT = Status.SAT, Status.UNSAT
    pairs = list(reference_depth(g).items())
    if pairs:
        (p, d), = pairs[:1]
        assert verdict("depth", {p: d + 1}, "==") is UNSAT
        assert verdict("depth", {p: d + 1}) is UNSAT  # default: a lower bound
        assert verdict("depth", {p: d}) is SAT
        assert verdict("depth", {p: d}, "<=") is SAT
    shape = [list(s) for s in a.output_shapes]
    assert verdict("shape", shape) is SAT
    shape[-1][-1] += 1
    assert verdict("shape", shape) is UNSAT
    assert verdict("params", a.params) is SAT
    if a.params:
        assert verdict("params", a.params - 1) is UNSAT
    if a.flops:
        assert verdict("flops", a.flops - 1) is UNSAT
        assert verdict("flops", a.flops, "==") is SAT
    if HAVE_MIXING:
        (pair, m), = list(v.mixing.items())[:1]
        assert verdict("mixing", {pair: m}, "==") is SAT
        weak = [(r, c) for r, row in enumerate(m) for c, x in enumerate(row) if x < 3]
        if weak:
            r, c = weak[0]
            stronger = [list(row) for row in m]
            stronger[r][c] += 1
            assert verdict("mixing", {pair: stronger}) is UNSAT


@given(st.one_of(chains(), dags()))
def test_model_reproduces_inference_and_rejects_perturbed_targets(g: Graph) -> None:
    enc = Encoding(g, KINDS)
    assert_reproduces(g, enc)
    assert_rejects_perturbations(g, enc)


def test_the_paper_cnn_has_depth_7_in_the_model() -> None:
    g = zoo.build("cifar_cnn")
    enc = encode(g, "depth", 7, "==")
    assert enc.check().sat
    r = encode(g, "depth", 8).check()
    assert r.unsat and r.core == ("depth(input->fc/logits) >= 8",)


@needs_mixing
def test_mixing_of_a_zoo_block_matches_analytic_mixing() -> None:
    from alphanas.ir import extract, select
    from alphanas.properties.mixing import analytic_mixing

    g = zoo.build("resnet18", **zoo.ZOO["resnet18"].small)
    block = extract(g, select(g, [o.name for o in g.ops if o.name.startswith("stage2/block0/")]))
    enc = Encoding(block, ("mixing",))
    assert enc.check().sat
    want = {p: as_ints(m) for p, m in analytic_mixing(block).items()}
    assert {p: enc.values().mixing[p] for p in want} == want


# ---- targets in detail --------------------------------------------------------------------------


def two_inputs() -> Graph:
    """x -> relu -> dense -> out; y (unused by out) -> identity -> aux."""
    b = GraphBuilder("two")
    x, y = b.input("x", (2, 4)), b.input("y", (2, 3))
    out = b.op(K.DENSE, b.op(K.RELU, x), features=5)
    return b.build([out, b.op(K.IDENTITY, y, name="aux")])


def test_depth_pairs_without_a_path_cannot_be_satisfied() -> None:
    enc = Encoding(two_inputs(), ("depth",))
    assert enc.check().sat
    assert enc.values().depth[("x", "dense")] == 1 and enc.values().depth[("y", "aux")] == 0
    r = enc.check(enc.require("depth", {("y", "dense"): 0}))
    assert r.unsat and r.core == ("depth(y->dense) >= 0",)


def test_linear_inputs_start_in_a_linear_run() -> None:
    g = two_inputs()
    enc = Encoding(g, ("depth",), linear_inputs=frozenset({"x"}))
    assert enc.check().sat
    assert enc.values().depth[("x", "dense")] == 2
    assert reference_depth(g, frozenset({"x"}))[("x", "dense")] == 2


@pytest.mark.skipif(not HAVE_DEPTH, reason="alphanas.properties.depth is not written yet")
def test_a_subject_in_context_counts_like_infer_depth() -> None:
    from alphanas.properties.depth import infer_depth

    b = GraphBuilder("host")
    x = b.input("x", (2, 4))
    y = b.op(K.DENSE, b.op(K.RELU, b.op(K.DENSE, x, features=4)), features=3)
    host = b.build(y)
    sub = Subject.sub(host, ["relu", "dense_1"])  # its input is a dense output: a linear run
    enc = Encoding(sub, ("depth",))
    assert enc.check().sat
    assert enc.values().depth[("dense", "dense_1")] == infer_depth(sub)[("dense", "dense_1")] == 2


@pytest.mark.skipif(not HAVE_DEPTH, reason="alphanas.properties.depth is not written yet")
def test_depth_targets_of_the_depth_module_are_accepted() -> None:
    from alphanas.properties.depth import DepthMode, DepthTarget

    g = two_inputs()
    enc = Encoding(g, ("depth",))
    exact = DepthTarget.of({("x", "dense"): 1}, mode=DepthMode.EXACTLY)
    assert enc.check(enc.require("depth", exact)).sat
    ranged = DepthTarget.of({("x", "dense"): (2, 4)}, mode=DepthMode.RANGE)
    r = enc.check(enc.require("depth", ranged))
    assert r.unsat and r.core == ("depth(x->dense) >= 2",)


def test_shape_targets_by_output_name_and_wildcards() -> None:
    g = two_inputs()
    enc = Encoding(g, ("shape",))
    assert enc.check(enc.require("shape", {"dense": [2, None], "aux": [2, 3]})).sat
    r = enc.check(enc.require("shape", {"dense": [2, 5, 1], "aux": [2, 3]}))
    assert r.unsat and r.core == ("shape(dense) has rank 3",)


def test_symbolic_input_sizes_answer_existence_queries() -> None:
    b = GraphBuilder("valid")
    x = b.input("x", (1, 16, 16, 3))
    g = b.build(b.op(K.CONV, x, features=4, kernel=3, strides=2, padding="VALID"))
    dims, rng = {"x": [1, "H", 16, 3]}, {"H": (3, 64)}
    enc = encode(g, "shape", [[1, 5, 7, 4]], input_dims=dims, ranges=rng)
    assert enc.check().sat
    h = enc.values().shapes["x"][1]
    assert h in (11, 12) and analyze(g.with_input_shapes([(1, h, 16, 3)])).output_shapes[0][1] == 5
    assert encode(g, "shape", [[1, 40, 7, 4]], input_dims=dims, ranges=rng).check().unsat
    # the budget binds the size: FLOPs grow with H
    flops = encode(g, "flops", analyze(g.with_input_shapes([(1, 20, 16, 3)])).flops,
                   input_dims=dims, ranges=rng)
    assert flops.check().sat and flops.values().shapes["x"][1] <= 20


@pytest.mark.parametrize("call,message", [
    (lambda g: Encoding(g, ("size",)), "unknown property 'size'"),
    (lambda g: encode(g, "size", 1), "unknown property 'size'"),
    (lambda g: encode(g, "params", 10, "<"), "relation must be one of ==, >=, <=; got '<'"),
    (lambda g: encode(g, "params", 1.5), "a params target must be an int, got 1.5"),
    (lambda g: Encoding(g, ("shape",)).require("depth", 1), "property 'depth' is not encoded"),
    (lambda g: encode(g, "shape", [[2, 5]]), "shape target has 1 shapes for 2 outputs"),
])
def test_bad_targets_are_rejected(call, message: str) -> None:
    with pytest.raises(EncodingError, match=message):
        call(two_inputs())


def test_inputs_need_shapes_or_symbolic_dims() -> None:
    b = GraphBuilder("t")
    x = b.input("x")
    g = b.build(b.op(K.RELU, x))
    with pytest.raises(EncodingError, match="input 'x' has no declared shape"):
        Encoding(g, ("shape",))
    enc = Encoding(g, ("shape",), input_dims={"x": ["B", 3]}, ranges={"B": (1, 4)})
    assert enc.check().sat and enc.values().shapes["relu"][1] == 3
    if HAVE_MIXING:
        with pytest.raises(EncodingError, match="mixing encoding needs the graph's declared input shapes"):
            Encoding(g, ("mixing",), input_dims={"x": ["B", 3]}, ranges={"B": (1, 4)})
