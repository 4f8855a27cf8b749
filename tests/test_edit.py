"""Sub-graph selection, splicing and extraction (the NAS loop's edits)."""

from __future__ import annotations

import re

import pytest
from _ir_checks import assert_matches_flax

from alphanas.errors import GraphError, ShapeError
from alphanas.ir import (
    Graph,
    GraphBuilder,
    OpKind,
    analyze,
    dim_of,
    extract,
    prune_dead,
    rel,
    select,
    splice,
    template,
)

K = OpKind
CHAIN = ["conv1", "bn1", "relu1", "conv2", "bn2"]


def basic_block(b: GraphBuilder, x: str) -> str:
    """ResNet basic block: conv-bn-relu-conv-bn, plus the block input, then relu."""
    y = b.op(K.CONV, x, name="conv1", features=rel(), kernel=3, use_bias=False)
    y = b.op(K.BATCH_NORM, y, name="bn1")
    y = b.op(K.RELU, y, name="relu1")
    y = b.op(K.CONV, y, name="conv2", features=rel(), kernel=3, use_bias=False)
    y = b.op(K.BATCH_NORM, y, name="bn2")
    y = b.op(K.ADD, y, x, name="add")
    return b.op(K.RELU, y, name="relu2")


def resnet_block_graph(width: int = 8) -> Graph:
    b = GraphBuilder("net")
    x = b.input("x", (2, 6, 6, 3))
    x = b.op(K.CONV, x, name="stem", features=width, kernel=3)
    with b.scope("block1"):
        y = basic_block(b, x)
    y = b.op(K.MEAN, y, name="pool", axes=(1, 2))
    return b.build(b.op(K.DENSE, y, name="head", features=10))


def chain_graph(*steps: tuple[OpKind, dict]) -> Graph:
    """A one-input replacement graph applying `steps` in order."""
    b = GraphBuilder("repl")
    y = b.input("input")
    for kind, attrs in steps:
        y = b.op(kind, y, **attrs)
    return b.build(y)


def scoped(names: list[str], scope: str = "block1") -> list[str]:
    return [f"{scope}/{n}" for n in names]


# ---- (a) replace the residual branch of a basic block ---------------------------------------


@pytest.mark.parametrize("replacement", [
    chain_graph((K.CONV, {"features": rel(), "kernel": 3})),
    chain_graph((K.CONV, {"features": rel(2), "kernel": 3}), (K.RELU, {}),
                (K.CONV, {"features": rel(1, 2), "kernel": 1})),
    chain_graph((K.CONV, {"features": rel(1, 2), "kernel": 1}), (K.SWISH, {}),
                (K.CONV, {"features": rel(), "kernel": 3, "groups": rel()}),
                (K.CONV, {"features": dim_of("input"), "kernel": 1})),
], ids=["single-conv", "conv-relu-conv-wide", "bottleneck-dw"])
def test_splice_residual_branch(replacement: Graph) -> None:
    g = resnet_block_graph()
    sel = select(g, scoped(CHAIN))
    assert sel.inputs == ("stem",) and sel.outputs == ("block1/bn2",)
    new = splice(g, sel, replacement)
    assert not set(sel.ops) & {o.name for o in new.ops}
    add = new.op("block1/add")
    assert add.inputs[1] == "stem", "the residual input is kept"
    assert new.op(add.inputs[0]).name.startswith("block1/"), "new ops take the selection's scope"
    assert {o.kind for o in new.ops if o.name not in g.op_map} == {o.kind for o in replacement.ops}
    a = assert_matches_flax(new)
    assert a.shapes["block1/add"] == analyze(g).shapes["block1/add"]
    assert a.output_shapes == ((2, 10),)
    assert a.params != analyze(g).params


def test_splice_is_pure() -> None:
    g = resnet_block_graph()
    before = (g.ops, g.outputs)
    splice(g, select(g, scoped(CHAIN)), chain_graph((K.IDENTITY, {})))
    assert (g.ops, g.outputs) == before


def test_splice_graph_outputs_and_explicit_prefix() -> None:
    g = resnet_block_graph()
    sel = select(g, ["pool", "head"])
    assert sel.outputs == ("head",)
    new = splice(g, sel, chain_graph((K.FLATTEN, {}), (K.DENSE, {"features": 10})), prefix="classifier")
    assert new.outputs == ("classifier/dense",)
    assert analyze(new).output_shapes == ((2, 10),)


# ---- (b) a selected tensor is also read outside ---------------------------------------------


def branching_graph() -> Graph:
    """x -> conv1 -> relu -> conv2 -> bn -> out; relu is also read by a side output."""
    b = GraphBuilder("branchy")
    x = b.input("x", (1, 5, 5, 4))
    y = b.op(K.CONV, x, name="conv1", features=8, kernel=3)
    r = b.op(K.RELU, y, name="relu")
    y = b.op(K.CONV, r, name="conv2", features=8, kernel=3)
    y = b.op(K.BATCH_NORM, y, name="bn")
    side = b.op(K.MEAN, r, name="side", axes=(1, 2))
    return b.build([y, side])


def test_middle_tensor_read_outside_needs_two_outputs() -> None:
    g = branching_graph()
    sel = select(g, ["conv1", "relu", "conv2", "bn"])
    assert sel.outputs == ("relu", "bn")
    one_out = chain_graph((K.CONV, {"features": 8, "kernel": 3}))
    with pytest.raises(GraphError, match=r"the replacement has 1 outputs but 2 tensors are replaced \(relu, bn\)"):
        splice(g, sel, one_out)
    b = GraphBuilder("two")
    x = b.input("input")
    h = b.op(K.CONV, x, name="c", features=8, kernel=1)
    h = b.op(K.GELU, h, name="act")
    new = splice(g, sel, b.build([h, b.op(K.CONV, h, name="c2", features=8, kernel=3)]))
    assert {o.name for o in new.ops} == {"c", "act", "c2", "side"}
    assert new.op("side").inputs == ("act",) and new.outputs == ("c2", "side")
    assert_matches_flax(new)


def test_outputs_subset_keeps_the_shared_op_and_prunes_dead_ones() -> None:
    g = branching_graph()
    sel = select(g, ["conv1", "relu", "conv2", "bn"])
    new = splice(g, sel, chain_graph((K.CONV, {"features": 8, "kernel": 1})), outputs=["bn"])
    names = [o.name for o in new.ops]
    assert "relu" in names and "conv1" in names, "the op read by 'side' survives"
    assert "conv2" not in names and "bn" not in names, "dead ops are removed"
    assert new.op("conv").inputs == ("x",)  # the replacement is wired to the selection's input
    assert new.outputs == ("conv", "side")
    assert_matches_flax(new)


def test_prune_dead() -> None:
    g = branching_graph()
    assert prune_dead(g) is g
    only_side = Graph(g.inputs, g.ops, ("side",))
    assert [o.name for o in prune_dead(only_side).ops] == ["conv1", "relu", "side"]


# ---- (c) rejections --------------------------------------------------------------------------


def test_reject_wrong_number_of_inputs() -> None:
    g = resnet_block_graph()
    sel = select(g, scoped(CHAIN))
    b = GraphBuilder("two_in")
    p, q = b.input("p"), b.input("q")
    with pytest.raises(GraphError, match=r"splicing into graph 'net': the replacement takes 2 inputs but "
                                         r"the selection reads 1 \(stem\)"):
        splice(g, sel, b.build(b.op(K.ADD, p, q)))


def test_reject_wrong_number_of_outputs() -> None:
    g = resnet_block_graph()
    sel = select(g, scoped(CHAIN))
    b = GraphBuilder("two_out")
    x = b.input("input")
    with pytest.raises(GraphError, match=r"the replacement has 2 outputs but 1 tensors are replaced \(block1/bn2\)"):
        splice(g, sel, b.build([b.op(K.RELU, x), b.op(K.TANH, x)]))


def test_reject_target_outside_selection() -> None:
    g = resnet_block_graph()
    sel = select(g, scoped(CHAIN))
    with pytest.raises(GraphError, match=r"'block1/add' is not an op of the selection"):
        splice(g, sel, chain_graph((K.RELU, {})), outputs=["block1/add"])
    b = GraphBuilder("two_out")
    x = b.input("input")
    with pytest.raises(GraphError, match=r"the replaced tensors \(block1/bn2, block1/bn2\) repeat a name"):
        splice(g, sel, b.build([b.op(K.RELU, x), b.op(K.TANH, x)]), outputs=["block1/bn2", "block1/bn2"])


@pytest.mark.parametrize("steps, got", [
    (((K.CONV, {"features": rel(2), "kernel": 3}),), (2, 6, 6, 16)),
    (((K.CONV, {"features": rel(), "kernel": 3, "strides": 2}),), (2, 3, 3, 8)),
    (((K.CONV, {"features": 1, "kernel": 1}),), (2, 6, 6, 1)),  # would still broadcast in the add
])
def test_reject_output_shape_mismatch(steps, got) -> None:
    g = resnet_block_graph()
    sel = select(g, scoped(CHAIN))
    msg = (f"splicing into graph 'net': replacement output 'block1/conv' has shape {got} but the "
           "replaced tensor 'block1/bn2' has shape (2, 6, 6, 8)")
    with pytest.raises(ShapeError, match=re.escape(msg)):
        splice(g, sel, chain_graph(*steps))


def test_reject_replacement_that_fails_on_the_selection_inputs() -> None:
    g = resnet_block_graph()
    sel = select(g, scoped(CHAIN))
    with pytest.raises(ShapeError, match=r"conv 'conv': input has 8 channels but groups=3 does not divide 8"):
        splice(g, sel, chain_graph((K.CONV, {"features": 9, "kernel": 1, "groups": 3})))


def test_reject_non_connected_selection() -> None:
    g = resnet_block_graph()
    with pytest.raises(GraphError, match=r"selection is not connected: \['block1/conv1'\] and \['block1/relu1'\] are separate"):
        select(g, scoped(["conv1", "relu1"]))


def test_reject_non_convex_selection() -> None:
    g = resnet_block_graph()
    # stem -> add is an edge (the residual), but conv1..bn2 lie on another path between them.
    with pytest.raises(GraphError, match=r"selection is not convex: 'block1/bn1' is outside it but on a path between its ops"):
        select(g, ["stem", "block1/add"])
    assert select(g, ["stem", *scoped(CHAIN), "block1/add"]).outputs == ("block1/add",)


def test_reject_unknown_or_empty_selection() -> None:
    g = resnet_block_graph()
    with pytest.raises(GraphError, match=r"graph net has no op 'block1/conv3'"):
        select(g, scoped(["conv1", "conv3"]))
    with pytest.raises(GraphError, match=r"a selection needs at least one op"):
        select(g, [])


# ---- (d) blocks bookkeeping ------------------------------------------------------------------


def two_block_graph() -> Graph:
    """stem(8) -> basic block b1 -> 1x1 conv to 16 -> basic block b2, from one template."""
    tpl = template("basic", basic_block)
    b = GraphBuilder("blocks")
    x = b.input("x", (1, 6, 6, 3))
    x = b.op(K.CONV, x, name="stem", features=8, kernel=3)
    (y,) = b.block(tpl, [x], prefix="b1")
    y = b.op(K.CONV, y, name="widen", features=16, kernel=1)
    (y,) = b.block(tpl, [y], prefix="b2")
    return b.build(y)


def test_new_ops_join_the_block() -> None:
    g = two_block_graph()
    sel = select(g, scoped(CHAIN, "b1"))
    new = splice(g, sel, chain_graph((K.CONV, {"features": rel(), "kernel": 3}), (K.GELU, {})))
    b1, b2 = new.blocks
    assert b1.prefix == "b1" and b1.template == "basic"
    assert set(b1.ops) == {"b1/conv", "b1/gelu", "b1/add", "b1/relu2"}
    assert b2 == g.blocks[1]
    assert all(n in new.op_map for b in new.blocks for n in b.ops)
    assert_matches_flax(new)


def test_splice_across_blocks_adds_to_none() -> None:
    g = two_block_graph()
    sel = select(g, ["b1/relu2", "widen"])
    new = splice(g, sel, chain_graph((K.CONV, {"features": 16, "kernel": 1})), prefix="bridge")
    assert "bridge/conv" not in {n for b in new.blocks for n in b.ops}
    assert "b1/relu2" not in new.blocks[0].ops
    assert analyze(new).output_shapes == analyze(g).output_shapes


# ---- (e) extract ------------------------------------------------------------------------------


def test_extract_standalone_with_host_shapes() -> None:
    g = resnet_block_graph(width=8)
    sel = select(g, scoped([*CHAIN, "add"]))
    sub = extract(g, sel)
    assert sub.input_names == ("stem",) and sub.input_shapes == ((2, 6, 6, 8),)
    assert sub.outputs == ("block1/add",)
    assert [o.name for o in sub.ops] == scoped([*CHAIN, "add"])
    a = assert_matches_flax(sub)
    host = analyze(g)
    assert a.params == sum(host.ops[n].params for n in sel.ops)
    assert a.shapes["block1/add"] == host.shapes["block1/add"]


def test_extract_with_size_reference_from_outside() -> None:
    b = GraphBuilder("refs")
    x = b.input("x", (1, 4, 4, 6))
    y = b.op(K.CONV, x, name="wide", features=12, kernel=1)
    y = b.op(K.RELU, y, name="act")
    y = b.op(K.CONV, y, name="narrow", features=dim_of("x"), kernel=1)
    g = b.build(y)
    sel = select(g, ["act", "narrow"])
    assert sel.inputs == ("wide", "x")
    sub = extract(g, sel)
    assert sub.input_shapes == ((1, 4, 4, 12), (1, 4, 4, 6))
    assert analyze(sub).output_shapes == ((1, 4, 4, 6),)


# ---- (f) one relative-size replacement fits two widths ---------------------------------------


def test_relative_replacement_fits_both_positions() -> None:
    g = two_block_graph()
    widths = {p: analyze(g).shapes[f"{p}/bn2"][-1] for p in ("b1", "b2")}
    assert widths == {"b1": 8, "b2": 16}
    repl = chain_graph((K.CONV, {"features": rel(2), "kernel": 1}), (K.RELU, {}),
                       (K.CONV, {"features": rel(), "kernel": 3, "groups": rel()}),
                       (K.CONV, {"features": dim_of("input"), "kernel": 1}))
    new = g
    for p in ("b1", "b2"):
        new = splice(new, select(new, scoped(CHAIN, p)), repl)
    a = assert_matches_flax(new)
    assert a.output_shapes == analyze(g).output_shapes
    # The same template op got different concrete widths at the two positions.
    assert a.ops["b1/conv"].attrs["features"] == 16 and a.ops["b2/conv"].attrs["features"] == 32
    assert a.ops["b1/conv_2"].attrs["features"] == 8 and a.ops["b2/conv_2"].attrs["features"] == 16
    # A fixed-width replacement fits only one of them.
    fixed = chain_graph((K.CONV, {"features": 8, "kernel": 3}))
    splice(g, select(g, scoped(CHAIN, "b1")), fixed)
    with pytest.raises(ShapeError, match=r"has shape \(1, 6, 6, 8\) but the replaced tensor 'b2/bn2' has shape \(1, 6, 6, 16\)"):
        splice(g, select(g, scoped(CHAIN, "b2")), fixed)


def test_splice_inside_a_template_without_shapes() -> None:
    """Templates have no input shapes: the splice skips the shape check; analysis happens later."""
    tpl = template("basic", basic_block).graph
    sel = select(tpl, CHAIN)
    assert sel.inputs == ("input",)
    new = splice(tpl, sel, chain_graph((K.CONV, {"features": rel(), "kernel": 3})))
    assert [o.kind for o in new.ops] == [K.CONV, K.ADD, K.RELU]
    assert analyze(new, [(1, 4, 4, 5)]).output_shapes == ((1, 4, 4, 5),)
    bad = splice(tpl, sel, chain_graph((K.CONV, {"features": rel(2), "kernel": 3})))
    with pytest.raises(ShapeError, match=r"add 'add': shapes \(1, 4, 4, 10\) and \(1, 4, 4, 5\) do not broadcast"):
        analyze(bad, [(1, 4, 4, 5)])
