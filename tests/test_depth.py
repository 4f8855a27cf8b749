"""The depth property: inference (vs. the paper and a brute-force path walk), targets, distance,
seeded mutation, and spec-data parsing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from alphanas.errors import SpecError
from alphanas.ir import DepthClass, Graph, GraphBuilder, dim_of, opdef, zoo
from alphanas.ir import OpKind as K
from alphanas.properties.base import Subject
from alphanas.properties.depth import (
    DepthBound,
    DepthMode,
    DepthTarget,
    depth_map,
    infer_depth,
    input_classes,
)


def chain(*kinds: K, name: str = "chain") -> Graph:
    """x (1, 8) -> kinds... -> y; dense keeps 8 features."""
    b = GraphBuilder(name)
    h = b.input("x", (1, 8))
    for i, k in enumerate(kinds):
        last = i == len(kinds) - 1
        attrs = {"features": 8} if k is K.DENSE else {}
        h = b.op(k, h, name="y" if last else None, **attrs)
    return b.build(h)


def three_branch() -> Graph:
    """input -> dense_i -> relu_i (i = 0, 1, 2); add0 = relu0 + relu1, add1 = relu1 + relu2."""
    b = GraphBuilder("three_branch")
    x = b.input("input", (1, 16))
    rs = [b.op(K.RELU, b.op(K.DENSE, x, name=f"dense{i}", features=8), name=f"relu{i}")
          for i in range(3)]
    a0 = b.op(K.ADD, rs[0], rs[1], name="add0")
    a1 = b.op(K.ADD, rs[1], rs[2], name="add1")
    return b.build([a0, a1])


def depth_of(g: Graph) -> dict[tuple[str, str], int]:
    return infer_depth(Subject.whole(g))


# -- inference --------------------------------------------------------------------------------


def test_cifar_cnn_has_depth_7() -> None:
    # [proj conv] [relu] [pool conv] [relu] [pool flatten dense] [relu] [dense]
    assert depth_of(zoo.build("cifar_cnn")) == {("input", "fc/logits"): 7}


def test_cifar_block_in_context_counts_its_linear_input() -> None:
    host = zoo.build("cifar_cnn")
    # conv_layer1 reads conv_layer0/avg_pool (linear): [conv] continues that run, [relu], [pool]
    sub = Subject.sub(host, ["conv_layer1/conv", "conv_layer1/relu", "conv_layer1/avg_pool"])
    assert infer_depth(sub) == {("conv_layer0/avg_pool", "conv_layer1/avg_pool"): 2}
    # the same ops as a standalone graph start from a "non-linear" input: one more
    assert depth_of(sub.graph) == {("conv_layer0/avg_pool", "conv_layer1/avg_pool"): 3}


def test_three_branch_subgraph_has_depth_2_for_every_connected_pair() -> None:
    """The reference's multi-input case: the sub-graph relu_i/add_j reads dense0..2 (linear)."""
    host = three_branch()
    sub = Subject.sub(host, ["relu0", "relu1", "relu2", "add0", "add1"])
    assert sub.inputs == ("dense0", "dense1", "dense2")
    assert infer_depth(sub) == {("dense0", "add0"): 2, ("dense1", "add0"): 2,
                                ("dense1", "add1"): 2, ("dense2", "add1"): 2}
    # dense0 -> add1 and dense2 -> add0 have no path: no depth at all (not 0)
    assert ("dense0", "add1") not in infer_depth(sub)
    # the whole graph from its (non-linear) input: [dense] [relu] [add]
    assert depth_of(host) == {("input", "add0"): 3, ("input", "add1"): 3}


@pytest.mark.parametrize(("kinds", "depth"), [
    ((K.IDENTITY,), 0),
    ((K.RELU,), 0),                      # continues the input's non-linear run
    ((K.DENSE,), 1),
    ((K.RELU, K.DENSE), 1),
    ((K.DENSE, K.RELU), 2),
    ((K.DENSE, K.IDENTITY, K.RELU, K.IDENTITY), 2),
    ((K.DENSE, K.DENSE, K.BATCH_NORM, K.GELU, K.SOFTMAX, K.DENSE), 3),
])
def test_chains(kinds: tuple[K, ...], depth: int) -> None:
    assert depth_of(chain(*kinds)) == {("x", "y"): depth}


def test_input_returned_as_output_has_depth_0_and_unconnected_inputs_no_depth() -> None:
    b = GraphBuilder("pass")
    x, z = b.input("x", (1, 8)), b.input("z", (1, 8))
    y = b.op(K.RELU, b.op(K.DENSE, z, features=8), name="y")
    g = b.build([x, y])
    assert depth_of(g) == {("x", "x"): 0, ("z", "y"): 2}


def test_size_references_and_params_are_not_paths() -> None:
    b = GraphBuilder("refs")
    x = b.input("x", (1, 4, 4, 3))
    b.input("w", (1, 4, 4, 16))
    h = b.op(K.CONV, x, name="conv", features=dim_of("w"), kernel=1)  # reads w's shape only
    p = b.op(K.PARAM, name="pos", shape=(1, 4, 4, 16))
    y = b.op(K.RELU, b.op(K.ADD, h, p), name="y")
    assert depth_of(b.build(y)) == {("x", "y"): 2}


def test_subgraph_input_class_looks_through_identity() -> None:
    b = GraphBuilder("ctx")
    x = b.input("x", (1, 8))
    i1 = b.op(K.IDENTITY, b.op(K.DENSE, x, name="d", features=8), name="id")
    i2 = b.op(K.IDENTITY, x, name="id_x")
    y = b.op(K.ADD, b.op(K.RELU, i1, name="r1"), b.op(K.RELU, i2, name="r2"), name="y")
    host = b.build(y)
    sub = Subject.sub(host, ["r1", "r2", "y"])
    assert input_classes(sub) == {"id": DepthClass.LINEAR, "id_x": DepthClass.NONLINEAR}
    assert infer_depth(sub) == {("id", "y"): 2, ("id_x", "y"): 1}


def _brute_force(g: Graph, linear_inputs: frozenset[str] = frozenset()) -> dict[tuple[str, str], int]:
    """Enumerate every data path and count class switches (reference for the DP)."""
    succ: dict[str, list[str]] = {n: [] for n in (*g.input_names, *(o.name for o in g.ops))}
    for o in g.ops:
        for i in set(o.inputs):
            succ[i].append(o.name)
    cls = {o.name: opdef(o.kind).depth for o in g.ops}
    out: dict[tuple[str, str], int] = {}
    for i in g.input_names:
        start = DepthClass.LINEAR if i in linear_inputs else DepthClass.NONLINEAR
        stack = [(i, start, 0)]
        while stack:
            t, cur, d = stack.pop()
            if t in g.outputs:
                out[(i, t)] = max(out.get((i, t), -1), d)
            for s in succ[t]:
                c = cls[s]
                if c is DepthClass.TRANSPARENT or c is cur:
                    stack.append((s, cur, d))
                else:
                    stack.append((s, c, d + 1))
    return out


def _random_graph(rng: np.random.Generator, n_ops: int) -> Graph:
    b = GraphBuilder("random")
    tensors = [b.input("a", (1, 4)), b.input("b", (1, 4))]
    unary = [K.DENSE, K.RELU, K.IDENTITY, K.GELU, K.LAYER_NORM, K.SCALAR_MUL]
    for _ in range(n_ops):
        if rng.random() < 0.3:
            x, y = rng.choice(len(tensors), 2)
            tensors.append(b.op(K.ADD if rng.random() < 0.5 else K.MUL, tensors[x], tensors[y]))
            continue
        k = unary[int(rng.integers(len(unary)))]
        attrs = {"features": 4} if k is K.DENSE else {"value": 2.0} if k is K.SCALAR_MUL else {}
        tensors.append(b.op(k, tensors[int(rng.integers(len(tensors)))], **attrs))
    outs = list(dict.fromkeys(tensors[int(j)] for j in rng.choice(len(tensors), 3)))
    return b.build(outs)


def test_dp_matches_brute_force_on_random_graphs() -> None:
    rng = np.random.default_rng(0)
    for trial in range(60):
        g = _random_graph(rng, int(rng.integers(1, 24)))
        for linear in (frozenset(), frozenset({"a"})):
            assert depth_map(g, linear) == _brute_force(g, linear), f"trial {trial}"


# -- targets ----------------------------------------------------------------------------------


DEEP = chain(K.DENSE, K.RELU, K.DENSE, K.RELU, K.DENSE)       # 5
SHALLOW = chain(K.DENSE, K.RELU, K.DENSE)                     # 3


def test_lower_bound_deeper_satisfies_shallower_not_vice_versa() -> None:
    shallow = DepthTarget.read_off(Subject.whole(SHALLOW))
    deep = DepthTarget.read_off(Subject.whole(DEEP))
    assert shallow == DepthTarget(((("x", "y"), DepthBound(3)),))
    assert shallow.satisfied_by(Subject.whole(DEEP))
    assert deep.satisfied_by(Subject.whole(DEEP))
    (v,) = deep.check(Subject.whole(SHALLOW))
    assert (v.property, v.where, v.expected, v.got, v.amount) == ("depth", "x->y", "depth >= 5", 3, 2.0)
    assert deep.distance(Subject.whole(SHALLOW)) == pytest.approx(2 / 5)
    assert shallow.distance(Subject.whole(DEEP)) == 0.0


def test_exactly_and_range_modes() -> None:
    exact = DepthTarget.of({("x", "y"): 3}, DepthMode.EXACTLY)
    assert exact.satisfied_by(Subject.whole(SHALLOW))
    (v,) = exact.check(Subject.whole(DEEP))
    assert (v.expected, v.got, v.amount) == ("depth = 3", 5, 2.0)
    assert exact.distance(Subject.whole(DEEP)) == pytest.approx(2 / 3)
    rng = DepthTarget.of({("x", "y"): (4, 6)}, DepthMode.RANGE)
    assert rng.satisfied_by(Subject.whole(DEEP))
    assert rng.distance(Subject.whole(SHALLOW)) == pytest.approx(1 / 4)
    upper = DepthTarget.of({("x", "y"): (0, 4)}, DepthMode.RANGE)
    (v,) = upper.check(Subject.whole(DEEP))
    assert (v.expected, v.got, v.amount) == ("depth in [0, 4]", 5, 1.0)
    assert upper.distance(Subject.whole(DEEP)) == pytest.approx(1 / 4)


def test_distance_is_the_mean_over_pairs_and_no_path_counts_1() -> None:
    sub = Subject.sub(three_branch(), ["relu0", "relu1", "relu2", "add0", "add1"])
    t = DepthTarget.of({}, default=4)   # every pair, connected or not
    gaps = {p: (0.5 if p in infer_depth(sub) else 1.0) for p in sub.pairs}
    assert t.distance(sub) == pytest.approx(sum(gaps.values()) / 6)
    viol = {v.where: v for v in t.check(sub)}
    assert len(viol) == 6
    assert viol["dense0->add1"].got == "no path" and viol["dense0->add0"].got == 2
    listed = DepthTarget.of({("dense0", "add0"): 2, ("dense2", "add1"): 4})
    assert listed.distance(sub) == pytest.approx((0 + 0.5) / 2)


def test_target_zero_normalises_by_one() -> None:
    t = DepthTarget.of({("x", "y"): 0}, DepthMode.EXACTLY)
    assert t.distance(Subject.whole(SHALLOW)) == 3.0


def test_mutation_is_seeded_and_bounded() -> None:
    t = DepthTarget.of({("x", "y"): 7, ("x", "z"): 1}, default=3)
    assert t.mutate(5) == t.mutate(5)
    seen = {t.mutate(s) for s in range(40)}
    assert len(seen) > 5
    for m in seen:
        assert m.mode is t.mode and [p for p, _ in m.pairs] == [p for p, _ in t.pairs]
        for (_, b0), (_, b1) in zip(t.pairs, m.pairs, strict=True):
            assert abs(b1.lo - b0.lo) <= 2 and b1.lo >= 0 and b1.hi is None
    always = t.mutate(3, p=1.0, delta_max=5)   # like the reference test: |delta| = delta_max
    assert abs(always.pairs[0][1].lo - 7) == 5
    assert always.pairs[1][1].lo in (0, 6)     # 1 - 5 clamps at 0
    assert t.mutate(3, p=0.0) == t


def test_range_mutation_moves_the_interval() -> None:
    t = DepthTarget.of({("x", "y"): (3, 5)}, DepthMode.RANGE)
    for s in range(20):
        b = t.mutate(s, p=1.0, delta_max=1).pairs[0][1]
        assert (b.lo, b.hi) in ((2, 4), (4, 6))


# -- spec data --------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [
    DepthTarget.of({("x", "y"): 3}),
    DepthTarget.of({("x", "y"): 3, ("x", "z"): 0}, DepthMode.EXACTLY, default=2),
    DepthTarget.of({("x", "y"): (2, 4), ("w", "y"): (1, None)}, DepthMode.RANGE),
])
def test_dict_round_trip(t: DepthTarget) -> None:
    assert DepthTarget.from_dict(t.to_dict(), "depth") == t


def test_dict_form() -> None:
    t = DepthTarget.of({("x", "y"): (2, 4)}, DepthMode.RANGE, default=(1, None))
    assert t.to_dict() == {"mode": "range", "value": {"min": 1}, "x->y": {"min": 2, "max": 4}}


@pytest.mark.parametrize(("data", "message"), [
    ({"mode": "atleast", "x->y": 3},
     'depth.mode: expected one of at_least, exactly, range; got "atleast"'),
    ({"x->y": -1}, 'depth."x->y": expected a non-negative int (mode at_least), got -1'),
    ({"x->y": True}, 'depth."x->y": expected a non-negative int (mode at_least), got True'),
    ({"value": "3"}, 'depth.value: expected a non-negative int (mode at_least), got "3"'),
    ({"mode": "range", "x->y": 3},
     'depth."x->y": expected a table {min = int, max = int} (mode range), got 3'),
    ({"mode": "range", "x->y": {"min": 5, "max": 2}}, 'depth."x->y": max 2 is less than min 5'),
    ({"mode": "range", "x->y": {"lo": 1}}, "depth.\"x->y\": unknown key 'lo' (accepted: max, min)"),
    ({"x->": 3}, 'depth."x->": expected a key "input->output", got "x->"'),
    ({"x->y->z": 3}, 'depth."x->y->z": expected a key "input->output", got "x->y->z"'),
    ({"xy": 3}, "depth: unknown key 'xy' (accepted: mode, value, and \"input->output\" pairs)"),
    ({"mode": "exactly"}, 'depth: no depth given; add "input->output" = N or value = N'),
])
def test_from_dict_rejects(data: dict, message: str) -> None:
    with pytest.raises(SpecError) as info:
        DepthTarget.from_dict(data, "depth")
    assert str(info.value) == message


def test_every_pair_of_a_multi_io_graph() -> None:
    g = three_branch()
    sub = Subject.sub(g, ["relu0", "relu1", "relu2", "add0", "add1"])
    pairs = list(itertools.product(sub.inputs, sub.outputs))
    assert sub.pairs == pairs
    t = DepthTarget.read_off(sub)
    assert [p for p, _ in t.pairs] == [p for p in pairs if p in infer_depth(sub)]
    assert t.satisfied_by(sub) and t.distance(sub) == 0.0
