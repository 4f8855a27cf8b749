"""Spec [context]: each input's producer class in its host, so depth read off a sub-graph keeps
its meaning when the spec is used standalone (synthesis, verify on the program alone)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import tomllib

from alphanas.cli import main
from alphanas.errors import SpecError
from alphanas.ir import Graph, GraphBuilder, serialize, zoo
from alphanas.ir import OpKind as K
from alphanas.ir.attrs import DepthClass
from alphanas.ir.edit import splice
from alphanas.properties.base import Subject
from alphanas.properties.depth import DepthMode, DepthTarget, infer_depth, input_classes
from alphanas.properties.spec import Spec, load_spec, parse_spec, read_off_spec, spec_to_toml
from alphanas.properties.verify import verify
from alphanas.synth import Problem, Settings, synthesize
from alphanas.synth.problem import SynthError, context_of

LIN, NON = DepthClass.LINEAR, DepthClass.NONLINEAR
CIFAR = zoo.build("cifar_cnn")
BLOCK1 = ["conv_layer1/conv", "conv_layer1/relu", "conv_layer1/avg_pool"]
FAST = Settings(timeout_s=20)


def conv_host() -> Graph:
    """x -> conv c0 -> conv c1 -> relu y: the sub-graph [c1, y] reads c0, made by a linear op."""
    b = GraphBuilder("conv_host")
    x = b.input("x", (1, 8, 8, 4))
    c0 = b.op(K.CONV, x, name="c0", features=8, kernel=3)
    return b.build(b.op(K.RELU, b.op(K.CONV, c0, name="c1", features=8, kernel=1), name="y"))


def exact_read_off(sub: Subject, props: tuple[str, ...] = ("shape", "depth", "mixing", "resources"),
                   ) -> Spec:
    spec = read_off_spec(sub, props)
    return replace(spec, depth=DepthTarget.read_off(sub, DepthMode.EXACTLY))


def data(**sections: object) -> dict:
    return {"inputs": {"x": [1, 4], "y": [1, 4]}, "outputs": {"z": [1, 4]},
            "depth": {"value": 1}, **sections}


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- the section ------------------------------------------------------------------------------


def test_context_parses_in_input_order_and_round_trips(tmp_path: Path) -> None:
    spec = parse_spec(data(context={"y": "non-linear", "x": "linear"}))
    assert spec.context == (("x", LIN), ("y", NON))
    assert spec.linear_inputs() == frozenset({"x"})
    text = spec_to_toml(spec)
    assert '[context]\nx = "linear"\ny = "non-linear"\n' in text
    assert load_spec(write(tmp_path, text)) == spec
    hash(spec)


def test_no_context_means_nothing_declared() -> None:
    spec = parse_spec(data())
    assert spec.context == () and spec.linear_inputs() == frozenset()
    assert "[context]" not in spec_to_toml(spec)
    assert parse_spec(data(context={})) == spec


BAD = [
    ('context = "linear"', 'context: expected a table (input name = "linear" or "non-linear"), '
                           'got "linear"'),
    ('[context]\nw = "linear"', "context.w: 'w' is not an input of the spec (inputs: x, y)"),
    ('[context]\n"a/b" = "linear"', "context.\"a/b\": 'a/b' is not an input of the spec "
                                    "(inputs: x, y)"),
    ('[context]\nx = "relu"', 'context.x: expected one of linear, non-linear; got "relu"'),
    ('[context]\nx = "transparent"', 'context.x: expected one of linear, non-linear; '
                                     'got "transparent"'),
    ("[context]\nx = 1", "context.x: expected one of linear, non-linear; got 1"),
]


@pytest.mark.parametrize(("section", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_context_names_file_key_and_accepted_values(tmp_path: Path, section: str,
                                                        message: str) -> None:
    inputs = '[inputs]\nx = [1, 4]\ny = [1, 4]\n'
    top = section.startswith("context =")  # a top-level key must come before the tables
    text = f"{section}\n{inputs}" if top else f"{inputs}{section}\n"
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: {message}"


# -- reading off ------------------------------------------------------------------------------


def test_read_off_records_the_host_producers(tmp_path: Path) -> None:
    host = conv_host()
    spec = read_off_spec(Subject.sub(host, ["c1", "y"]))
    assert spec.context == (("c0", LIN),) and spec.linear_inputs() == frozenset({"c0"})
    assert '[context]\nc0 = "linear"\n' in spec_to_toml(spec)
    assert load_spec(write(tmp_path, spec_to_toml(spec))) == spec
    after_relu = read_off_spec(Subject.sub(CIFAR, ["conv_layer1/avg_pool", "flatten"]))
    assert after_relu.context == (("conv_layer1/relu", NON),)
    assert '[context]\n"conv_layer1/relu" = "non-linear"\n' in spec_to_toml(after_relu)


def test_read_off_of_a_whole_graph_declares_nothing() -> None:
    assert read_off_spec(Subject.whole(conv_host())).context == ()
    declared = read_off_spec(Subject.whole(Subject.sub(conv_host(), ["c1", "y"]).graph, ["c0"]))
    assert declared.context == (("c0", LIN),)


def test_standalone_subject_uses_declared_classes_and_a_host_ignores_them() -> None:
    host = conv_host()
    sub = Subject.sub(host, ["c1", "y"])
    assert input_classes(Subject.whole(sub.graph)) == {"c0": NON}
    assert input_classes(Subject.whole(sub.graph, ["c0"])) == {"c0": LIN}
    assert infer_depth(Subject.whole(sub.graph, ["c0"])) == infer_depth(sub) == {("c0", "y"): 1}
    assert input_classes(replace(Subject.sub(CIFAR, ["conv_layer1/avg_pool"]),
                                 linear_inputs=frozenset({"conv_layer1/relu"}))) == {
        "conv_layer1/relu": NON}


# -- the read-off spec standalone -------------------------------------------------------------


@pytest.mark.parametrize(("host", "ops"), [
    (conv_host(), ["c1", "y"]),
    (CIFAR, BLOCK1),
    (CIFAR, ["conv_layer1/conv", "conv_layer1/relu"]),
], ids=["conv_host", "cifar_block1", "cifar_conv_relu"])
def test_subgraph_meets_its_exact_read_off_spec_standalone(host: Graph, ops: list[str],
                                                          tmp_path: Path) -> None:
    sub = Subject.sub(host, ops)
    spec = load_spec(write(tmp_path, spec_to_toml(exact_read_off(sub))))
    assert verify(host, spec, ops).holds
    standalone = verify(sub.graph, spec)
    assert standalone.holds, str(standalone)


@pytest.mark.parametrize("ops", [
    BLOCK1,
    ["conv_layer1/conv", "conv_layer1/relu"],
    ["conv_layer0/conv", "conv_layer0/relu"],
    ["conv_layer0/relu", "conv_layer0/avg_pool", "conv_layer1/conv"],
    ["conv_layer1/avg_pool", "flatten", "fc/dense", "fc/relu"],
])
@pytest.mark.parametrize("seed", range(4))
def test_standalone_depth_verdict_matches_the_host(ops: list[str], seed: int) -> None:
    sub = Subject.sub(CIFAR, ops)
    spec = read_off_spec(sub, ("shape", "depth"))
    for mode in DepthMode:
        target = DepthTarget.read_off(sub, mode).mutate(seed)
        s = replace(spec, depth=target)
        in_host, alone = verify(CIFAR, s, ops).result("depth"), verify(sub.graph, s).result("depth")
        assert (in_host.holds, in_host.distance) == (alone.holds, alone.distance), mode


# -- contradictions with the host -------------------------------------------------------------


def test_declared_context_contradicting_the_host_is_an_inputs_violation() -> None:
    host = conv_host()
    spec = replace(exact_read_off(Subject.sub(host, ["c1", "y"])), context=(("c0", NON),))
    report = verify(host, spec, ["c1", "y"])
    inputs = report.result("inputs")
    assert not report.holds and not inputs.holds
    assert [(v.where, v.expected, v.got) for v in inputs.violations] == [
        ("context c0", "\"non-linear\" (the spec's [context])", "\"linear\" (its producer in the host)")]
    assert report.result("depth").holds          # depth is still counted with the host's producer
    assert "context c0: expected \"non-linear\"" in str(report)
    assert verify(Subject.sub(host, ["c1", "y"]).graph, spec).result("depth").holds is False


def test_an_unlisted_input_makes_no_claim_in_a_host() -> None:
    host = conv_host()
    spec = replace(exact_read_off(Subject.sub(host, ["c1", "y"])), context=())
    report = verify(host, spec, ["c1", "y"])
    assert report.holds and report.result("inputs").violations == ()


# -- synthesis --------------------------------------------------------------------------------


def test_context_of_takes_the_host_else_the_declared_context() -> None:
    host = conv_host()
    sub = Subject.sub(host, ["c1", "y"])
    spec = read_off_spec(sub, ("shape", "depth"))
    assert context_of(spec).linear_inputs == frozenset({0})
    assert context_of(replace(spec, context=())).linear_inputs == frozenset()
    assert context_of(replace(spec, context=()), (host, sub.selection)).linear_inputs == frozenset({0})
    contradicting = replace(spec, context=(("c0", NON),), source="s.toml")
    with pytest.raises(SynthError) as info:
        Problem.of(contradicting, FAST, hosts=[(host, sub.selection)])
    assert str(info.value) == ('s.toml: context."c0": the spec declares "non-linear" but its '
                               "producer in the host is linear")


def _depth_in_host(host: Graph, sub: Subject, program: Graph, target: DepthTarget) -> bool:
    """Whether `program`, spliced into `host` in place of `sub`, meets `target` there."""
    spliced = splice(host, sub.selection, program, prefix="synth")
    new = [o.name for o in spliced.ops if o.name.startswith("synth/")]
    (_, bound), = target.pairs
    return DepthTarget((), bound, target.mode).satisfied_by(Subject.sub(spliced, new))


@pytest.mark.parametrize("mode", [DepthMode.AT_LEAST, DepthMode.EXACTLY])
def test_standalone_synthesis_meets_the_depth_in_the_host(mode: DepthMode) -> None:
    host = conv_host()
    sub = Subject.sub(host, ["c1", "y"])
    spec = replace(read_off_spec(sub, ("shape", "depth", "search")),
                   depth=DepthTarget.read_off(sub, mode))
    r = synthesize(Problem.of(spec, FAST))
    assert r.solved and r.graph is not None, r.reason
    assert _depth_in_host(host, sub, r.graph, spec.depth)
    assert verify(r.graph, spec).holds


def test_cli_spec_out_verifies_standalone_and_synthesizes(capsys, tmp_path: Path) -> None:
    spec_path, sub_path, prog = tmp_path / "block.toml", tmp_path / "sub.json", tmp_path / "p.json"
    code = main(["props", "cifar_cnn", "--subgraph", "conv_layer1/", "--spec-out", str(spec_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "conv_layer0/avg_pool linear" in " ".join(out.split())  # rich may wrap the line
    text = spec_path.read_text()
    assert '[context]\n"conv_layer0/avg_pool" = "linear"\n' in text
    exact = text.replace('mode = "at_least"', 'mode = "exactly"')
    assert exact != text
    spec_path.write_text(exact)
    sub = Subject.sub(CIFAR, BLOCK1)
    serialize.save(sub.graph, sub_path)
    assert main(["verify", str(sub_path), "--spec", str(spec_path)]) == 0
    assert main(["verify", "cifar_cnn", "--spec", str(spec_path), "--subgraph", "conv_layer1/"]) == 0
    capsys.readouterr()
    spec = load_spec(spec_path)
    tight = replace(spec, mixing=None, resources=None)
    spec_path.write_text(spec_to_toml(tight))
    code = main(["synth", str(spec_path), "-o", str(prog)])
    assert code == 0, capsys.readouterr()
    assert _depth_in_host(CIFAR, sub, serialize.load(prog), tight.depth)


def test_context_section_in_the_spec_toml_is_plain_toml() -> None:
    spec = read_off_spec(Subject.sub(conv_host(), ["c1", "y"]), ("shape", "depth"))
    assert tomllib.loads(spec_to_toml(spec))["context"] == {"c0": "linear"}
