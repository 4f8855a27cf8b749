"""Mutation: fingerprints up to naming, the property-guided operator (duplicate / delete /
synthesized template rewrite, re-verified independently from the recorded specs), the random
baseline, settings validation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from alphanas.ir import serialize, zoo
from alphanas.ir.analysis import analyze
from alphanas.ir.attrs import OpKind, dim_of
from alphanas.ir.graph import Graph, GraphBuilder, Op, TensorSpec, make_op
from alphanas.nas.mutate import (
    Mutation,
    MutationError,
    MutationSettings,
    _tidy_blocks,
    fingerprint,
    mutate,
    random_mutate,
)
from alphanas.properties.spec import load_spec
from alphanas.properties.verify import verify


def small(name: str) -> Graph:
    return zoo.build(name, **zoo.ZOO[name].small)


def renamed(g: Graph, tag: str = "q_") -> Graph:
    """`g` with every input and op renamed, ops listed in reverse, no blocks, another name."""
    m = {n: tag + n.replace("/", ".") for n in (*g.input_names, *g.op_map)}
    return Graph(tuple(TensorSpec(m[t.name], t.shape) for t in g.inputs),
                 tuple(o.renamed(m) for o in reversed(g.ops)), tuple(m[n] for n in g.outputs),
                 "other")


def with_op(g: Graph, name: str, op: Op) -> Graph:
    return Graph(g.inputs, tuple(op if o.name == name else o for o in g.ops), g.outputs, g.name,
                 g.templates, g.blocks)


def two_branches(merge: str = "add", swap: bool = False, tanh_of: str = "x") -> Graph:
    b = GraphBuilder("branches")
    x = b.input("x", (1, 8))
    a = b.op(OpKind.RELU, x, name="a")
    t = b.op(OpKind.TANH, a if tanh_of == "a" else x, name="t")
    ins = (t, a) if swap else (a, t)
    return b.build(b.op(merge, *ins, name="out"))


# ---- fingerprints ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["cifar_cnn", "resnet18_cifar", "mlp"])
def test_fingerprint_ignores_names_order_blocks(model: str) -> None:
    g = small(model)
    assert fingerprint(renamed(g)) == fingerprint(g)
    assert fingerprint(serialize.loads(serialize.dumps(g))) == fingerprint(g)


def test_fingerprint_sees_attributes_wiring_inputs_and_dead_ops() -> None:
    g = small("cifar_cnn")
    fp = fingerprint(g)
    proj = g.op("proj")
    wider = make_op("proj", OpKind.CONV, proj.inputs, **{**proj.attr_dict, "kernel": 3})
    assert fingerprint(with_op(g, "proj", wider)) != fp
    assert fingerprint(g.with_input_shapes([(1, 16, 16, 3)])) != fp
    dead = make_op("dead", OpKind.RELU, ["proj"])
    assert fingerprint(Graph(g.inputs, (*g.ops, dead), g.outputs)) != fp
    assert fingerprint(two_branches(tanh_of="a")) != fingerprint(two_branches())
    assert fingerprint(two_branches("concat", swap=True)) != fingerprint(two_branches("concat"))
    # add and mul commute; a size of the first input may name it or not
    assert fingerprint(two_branches("add", swap=True)) == fingerprint(two_branches("add"))
    conv = g.op("conv_layer0/conv")
    named = make_op(conv.name, OpKind.CONV, conv.inputs,
                    **{**conv.attr_dict, "features": dim_of("proj", mul=2)})
    assert fingerprint(with_op(g, conv.name, named)) == fp
    absolute = make_op(conv.name, OpKind.CONV, conv.inputs, **{**conv.attr_dict, "features": 64})
    assert fingerprint(with_op(g, conv.name, absolute)) != fp


def test_fingerprint_is_stable_across_processes() -> None:
    code = ("from alphanas.ir import zoo; from alphanas.nas.mutate import fingerprint; "
            "print(fingerprint(zoo.build('resnet18_cifar', image_size=8)))")
    outs = {run_fresh(code, s) for s in (1, 2)}
    assert outs == {fingerprint(small("resnet18_cifar"))}


# ---- the property-guided operator -----------------------------------------------------------


def check_blocks(g: Graph) -> None:
    """Every block instance is its template's ops under its prefix, wired as in the template."""
    for b in g.blocks:
        t = g.template(b.template).graph
        assert sorted(b.ops) == sorted(f"{b.prefix}/{o.name}" for o in t.ops), b.prefix
        for o in t.ops:
            h = g.op(f"{b.prefix}/{o.name}")
            assert h.kind is o.kind and len(h.inputs) == len(o.inputs)
            for ti, hi in zip(o.inputs, h.inputs, strict=True):
                if ti in t.op_map:
                    assert hi == f"{b.prefix}/{ti}"
    assert {t.name for t in g.templates} == {b.template for b in g.blocks}


def check_child(parent: Graph, m: Mutation, tmp_path: Path) -> None:
    assert m.ok and m.child is not None and m.attempts >= 1 and not m.reason
    assert fingerprint(m.child) != fingerprint(parent)
    analyze(m.child)
    check_blocks(m.child)
    assert fingerprint(serialize.loads(serialize.dumps(m.child))) == fingerprint(m.child)
    if m.kind != "mutate_template":
        assert not m.verified
        return
    assert m.verified and m.synth_stats["exit"] == "solved"
    assert m.spec_toml == m.context_specs[0] and len(m.context_specs) == len(m.new_ops)
    for k, (text, ops) in enumerate(zip(m.context_specs, m.new_ops, strict=True)):
        path = tmp_path / f"context{k}.toml"
        path.write_text(text)
        report = verify(m.child, load_spec(path), subgraph=ops)
        assert report.holds, str(report)


@pytest.mark.parametrize("seed", range(5))
def test_mutate_cifar_cnn(seed: int, tmp_path: Path) -> None:
    g = small("cifar_cnn")
    m = mutate(g, seed)
    assert m.kind == "mutate_template"  # no block keeps its shape: nothing to copy or delete
    check_child(g, m, tmp_path)
    assert len(m.new_ops) == 2  # both instances of conv_layer were rewritten


@pytest.mark.parametrize("seed", range(12))
def test_mutate_resnet18(seed: int, tmp_path: Path) -> None:
    g = small("resnet18_cifar")
    check_child(g, mutate(g, seed), tmp_path)


def test_mutate_reaches_every_kind_on_resnet18() -> None:
    g = small("resnet18_cifar")
    assert {mutate(g, s).kind for s in range(12)} == {"duplicate_block", "delete_block",
                                                      "mutate_template"}


def test_mutate_a_graph_without_blocks(tmp_path: Path) -> None:
    g = small("mlp")
    m = mutate(g, 0)
    check_child(g, m, tmp_path)
    assert "the whole graph" in m.description and len(m.new_ops) == 1


def run_fresh(code: str, hash_seed: int) -> str:
    env = {"PYTHONHASHSEED": str(hash_seed), "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=env).stdout.strip()


def test_mutate_is_deterministic() -> None:
    # Each run in a fresh process: Z3 models of the synthesizer depend on the history of the
    # process's Z3 context, so repeats inside one process may pick another free kernel size.
    code = ("from alphanas.ir import zoo; from alphanas.nas.mutate import fingerprint, mutate; "
            "g = zoo.build('resnet18_cifar', image_size=8); "
            "print([(m.kind, fingerprint(m.child)) for m in (mutate(g, s) for s in (2, 3, 0, 1))])")
    a, b = run_fresh(code, 1), run_fresh(code, 2)
    assert a == b and "mutate_template" in a and "duplicate_block" in a and "delete_block" in a
    g = small("resnet18_cifar")
    for seed in (0, 1):  # duplicate / delete involve no solver
        x, y = mutate(g, seed), mutate(g, seed)
        assert x.child is not None and y.child is not None
        assert (x.kind, fingerprint(x.child)) == (y.kind, fingerprint(y.child))
    assert mutate(g, 2).description == mutate(g, 2).description  # same sub-graph and skeleton


def test_duplicate_and_delete_change_the_block_count_and_params(tmp_path: Path) -> None:
    g = small("resnet18_cifar")
    params = analyze(g).params
    dup = mutate(g, 0, MutationSettings(p_duplicate=1.0, p_delete=0.0))
    assert dup.kind == "duplicate_block" and dup.child is not None
    check_child(g, dup, tmp_path)
    assert len(dup.child.blocks) == len(g.blocks) + 1 and analyze(dup.child).params > params
    assert analyze(dup.child).output_shapes == analyze(g).output_shapes
    gone = mutate(g, 0, MutationSettings(p_duplicate=0.0, p_delete=1.0))
    assert gone.kind == "delete_block" and gone.child is not None
    check_child(g, gone, tmp_path)
    assert len(gone.child.blocks) == len(g.blocks) - 1 and analyze(gone.child).params < params
    assert len(gone.child.ops) < len(g.ops)


def test_mutate_shape_changes_a_hidden_width_not_the_logits(tmp_path: Path) -> None:
    # a seed whose sub-graph ends at the logits keeps every width, so look over a few seeds
    g = small("mlp")
    before, changed = analyze(g).shapes, []
    for seed in range(3):
        m = mutate(g, seed, MutationSettings(mutate_shape=True))
        check_child(g, m, tmp_path)
        assert m.child is not None
        after = analyze(m.child).shapes
        assert analyze(m.child).output_shapes == analyze(g).output_shapes
        changed.append(any(after[n] != s for n, s in before.items() if n in after))
    assert any(changed)


def test_mutate_reports_why_every_attempt_failed() -> None:
    # relu alone can neither change widths nor add depth: each child is unsat or the parent
    m = mutate(small("mlp"), 0, MutationSettings(ops=("relu",), retries=3))
    assert m.child is None and m.attempts == 3 and not m.verified
    assert m.reason.startswith("all 3 attempts failed: mutate_template: ")
    assert "unsat" in m.reason or "identical to parent" in m.reason


def test_mutate_rejects_graphs_it_cannot_analyze() -> None:
    template = zoo.build("cifar_cnn").templates[0].graph  # inputs without shapes
    with pytest.raises(MutationError, match="must analyze before it is mutated"):
        mutate(template, 0)


@pytest.mark.parametrize(("over", "message"), [
    ({"p_delete": 1.5}, r"p_delete: expected a probability in \[0, 1\], got 1.5"),
    ({"p_duplicate": 0.6, "p_delete": 0.6}, "p_duplicate \\+ p_delete must be <= 1"),
    ({"max_fraction": 0.0}, r"max_fraction: expected \(0, 1\], got 0.0"),
    ({"retries": 0}, "expected retries >= 1"),
    ({"properties": ("depth",)}, "synthesis needs 'shape'"),
    ({"ops": ("conv", "relux")}, "unknown op 'relux'"),
])
def test_settings_are_validated(over: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MutationSettings(**over)
    MutationSettings(ops=("conv", "relu"))  # and accepted when well-formed


# ---- the random baseline --------------------------------------------------------------------


@pytest.mark.parametrize("model", ["cifar_cnn", "resnet18_cifar", "mlp"])
def test_random_mutate_gives_valid_different_graphs(model: str, tmp_path: Path) -> None:
    g = small(model)
    kinds = set()
    for seed in range(12):
        m = random_mutate(g, seed)
        check_child(g, m, tmp_path)
        assert m.kind.startswith("random:") and m.description
        kinds.add(m.kind)
        assert random_mutate(g, seed).description == m.description
    assert len(kinds) >= 3, kinds


def test_random_edits_dissolve_only_the_blocks_they_break() -> None:
    g = small("cifar_cnn")
    inner = make_op("conv_layer0/relu", OpKind.GELU, ["conv_layer0/conv"])
    tidy = _tidy_blocks(with_op(g, inner.name, inner))
    assert [b.prefix for b in tidy.blocks] == ["conv_layer1"]
    assert _tidy_blocks(g) == g
