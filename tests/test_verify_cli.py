"""`verify` (the API and its report) and the `alphanas verify` / `alphanas props` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alphanas.cli import main
from alphanas.errors import SpecError
from alphanas.ir import Graph, GraphBuilder, rel, zoo
from alphanas.ir import OpKind as K
from alphanas.ir.serialize import save
from alphanas.properties.base import Subject
from alphanas.properties.spec import load_spec, parse_spec, read_off_spec, spec_to_toml
from alphanas.properties.verify import resolve_ops, verify

EXAMPLES = Path(__file__).parent.parent / "examples" / "specs"
CIFAR = zoo.build("cifar_cnn")
BLOCK1 = ["conv_layer1/conv", "conv_layer1/relu", "conv_layer1/avg_pool"]


@pytest.fixture(autouse=True)
def _wide_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cifar_spec(**sections: object) -> dict:
    return {"inputs": {"input": [1, 32, 32, 3]}, **sections}


def downsample(padding: str = "SAME") -> Graph:
    b = GraphBuilder("down_" + padding.lower())
    x = b.input("x", (2, 64, 64, 256))
    h = b.op(K.CONV, x, name="conv", features=rel(2), kernel=3, strides=2, padding=padding)
    return b.build(b.op(K.RELU, h, name="y"))


# -- the API ----------------------------------------------------------------------------------


def test_read_off_spec_verifies() -> None:
    spec = read_off_spec(Subject.whole(CIFAR))
    report = verify(CIFAR, spec)
    assert report.holds and report.violations == []
    assert [p.property for p in report.properties] == ["shape", "depth", "mixing", "resources"]
    assert json.loads(json.dumps(report.to_dict()))["holds"] is True
    assert "satisfies" in str(report)


def test_violations_say_where_and_by_how_much() -> None:
    spec = parse_spec(cifar_spec(outputs={"fc/logits": [1, 16]}, depth={"value": 9},
                                 resources={"max_params": 2_000_000},
                                 search={"ops": ["conv", "dense", "relu", "flatten"], "max_ops": 10}))
    report = verify(CIFAR, spec)
    assert not report.holds
    got = {p.property: [(v.where, v.expected, v.got, v.amount) for v in p.violations]
           for p in report.properties}
    assert got["shape"] == [("output fc/logits dim 1", 16, 10, 6.0)]
    assert got["depth"] == [("input->fc/logits", "depth >= 9", 7, 2.0)]
    assert got["resources"] == [("params", "<= 2,000,000", 2_192_458, 192_458.0)]
    assert got["search"] == [("op conv_layer0/avg_pool", "one of conv, dense, relu, flatten", "avg_pool", 1.0),
                             ("op conv_layer1/avg_pool", "one of conv, dense, relu, flatten", "avg_pool", 1.0),
                             ("op count", "<= 10", 11, 1.0)]
    assert report.result("depth").distance == pytest.approx(2 / 9)
    text = str(report)
    assert "violates" in text and "input->fc/logits: expected depth >= 9, got 7 (by 2)" in text
    d = json.loads(json.dumps(report.to_dict()))
    assert d["properties"][0]["violations"][0] == {"where": "output fc/logits dim 1", "expected": 16,
                                                   "got": 10, "amount": 6.0}


def test_spec_input_shapes_override_the_models() -> None:
    mlp = zoo.build("mlp")
    spec = parse_spec({"inputs": {"input": [4, 64]}, "outputs": {"logits": [4, 10]},
                       "resources": {"max_flops": 4 * 34_240}})
    assert verify(mlp, spec).holds
    tight = parse_spec({"inputs": {"input": [4, 64]}, "resources": {"max_flops": 34_240}})
    (v,) = verify(mlp, tight).violations
    assert (v.got, v.amount) == (4 * 34_240, 3 * 34_240)


def test_model_that_rejects_the_spec_shapes() -> None:
    b = GraphBuilder("fixed")
    g = b.build(b.op(K.RESHAPE, b.input("x", (1, 64)), name="y", new_shape=(1, 8, 8)))
    with pytest.raises(SpecError, match=r"^<spec>: inputs: the model does not accept these shapes: reshape 'y'"):
        verify(g, parse_spec({"inputs": {"x": [1, 32]}}))


def test_name_mismatches_are_spec_errors() -> None:
    with pytest.raises(SpecError) as info:
        verify(CIFAR, parse_spec({"inputs": {"image": [1, 32, 32, 3]}}, "s.toml"))
    assert str(info.value) == "s.toml: inputs: the spec names image but the model's inputs are input"
    with pytest.raises(SpecError) as info:
        verify(CIFAR, parse_spec(cifar_spec(outputs={"logits": [1, 10]}), "s.toml"))
    assert str(info.value) == "s.toml: outputs: the spec names logits but the model's outputs are fc/logits"
    with pytest.raises(SpecError) as info:
        verify(CIFAR, parse_spec(cifar_spec(depth={"input->logits": 3}), "s.toml"))
    assert str(info.value) == ("s.toml: depth.\"input->logits\": 'logits' is not an output of the model "
                               "(outputs: fc/logits)")


def test_subgraph_in_context() -> None:
    spec = read_off_spec(Subject.sub(CIFAR, BLOCK1))
    assert verify(CIFAR, spec, BLOCK1).holds
    assert [p.property for p in verify(CIFAR, spec, BLOCK1).properties][0] == "inputs"
    with pytest.raises(SpecError, match="the spec names conv_layer0/avg_pool but the sub-graph's inputs are proj"):
        verify(CIFAR, spec, ["conv_layer0/conv", "conv_layer0/relu", "conv_layer0/avg_pool"])


def test_subgraph_input_shapes_come_from_the_host() -> None:
    data = {"inputs": {"conv_layer0/avg_pool": [1, 8, 8, 64]}, "depth": {"value": 2}}
    report = verify(CIFAR, parse_spec(data), BLOCK1)
    got = [(v.where, v.expected, v.got) for v in report.result("inputs").violations]
    assert got == [("input conv_layer0/avg_pool dim 1", 8, 16), ("input conv_layer0/avg_pool dim 2", 8, 16)]
    assert report.result("depth").holds and not report.holds


def test_symbolic_concrete_check_and_proof() -> None:
    spec = load_spec(EXAMPLES / "symbolic_downsample.toml")
    good = verify(downsample(), spec, symbolic=True)
    assert good.holds, str(good)
    assert [p.property for p in good.properties] == ["shape", "shape (symbolic)"]
    bad = verify(downsample("VALID"), spec, symbolic=True)
    sym = bad.result("shape (symbolic)")
    assert not sym.holds and "H=32" in str(sym.violations[0].got)
    assert not verify(downsample("VALID"), spec).holds   # concrete check alone fails too


def test_symbolic_spec_on_a_model_without_declared_shapes() -> None:
    g = downsample()
    template = Graph(tuple(type(t)(t.name, None) for t in g.inputs), g.ops, g.outputs, "t")
    report = verify(template, load_spec(EXAMPLES / "symbolic_downsample.toml"))
    assert report.holds   # analysed at the smallest sizes in range


def test_symbolic_without_dim_names_has_nothing_to_prove() -> None:
    spec = read_off_spec(Subject.whole(CIFAR), properties=("shape",))
    (p,) = verify(CIFAR, spec, symbolic=True).properties[1:]
    assert p.holds and "nothing symbolic to prove" in p.note


def test_resolve_ops() -> None:
    assert resolve_ops(CIFAR, "conv_layer1/") == BLOCK1
    assert resolve_ops(CIFAR, "fc/relu, fc/logits,fc/relu") == ["fc/relu", "fc/logits"]
    assert resolve_ops(CIFAR, "flatten,fc/") == ["flatten", "fc/dense", "fc/relu", "fc/logits"]
    with pytest.raises(Exception, match=r"has no op 'fc/rleu'; did you mean fc/relu"):
        resolve_ops(CIFAR, "fc/rleu")
    with pytest.raises(Exception, match=r"no op of graph 'cifar_cnn' is under 'stage1/' "
                                        r"\(top-level prefixes: conv_layer0/, conv_layer1/, fc/\)"):
        resolve_ops(CIFAR, "stage1/")
    with pytest.raises(Exception, match="expected comma-separated op names"):
        resolve_ops(CIFAR, " , ")


# -- alphanas verify --------------------------------------------------------------------------


def test_cli_verify_holds_exit_0(capsys) -> None:
    code, out, err = run(capsys, "verify", "cifar_cnn", "--spec", str(EXAMPLES / "cifar_cnn.toml"))
    assert (code, err) == (0, "")
    assert "cifar_cnn satisfies" in out and "all 3 properties hold" in out


def test_cli_verify_violated_exit_1(capsys, tmp_path: Path) -> None:
    spec = tmp_path / "deep.toml"
    spec.write_text('[inputs]\ninput = [1, 32, 32, 3]\n[depth]\n"input->fc/logits" = 9\n')
    code, out, err = run(capsys, "verify", "cifar_cnn", "--spec", str(spec))
    assert (code, err) == (1, "")
    assert "violates" in out and "input->fc/logits" in out and "depth >= 9" in out
    code, out, _ = run(capsys, "verify", "cifar_cnn", "--spec", str(spec), "--json")
    d = json.loads(out)
    assert code == 1 and d["holds"] is False and d["model"] == "cifar_cnn"
    assert d["properties"][0]["violations"] == [{"where": "input->fc/logits", "expected": "depth >= 9",
                                                 "got": 7, "amount": 2.0}]


def test_cli_verify_subgraph_and_symbolic(capsys, tmp_path: Path) -> None:
    model = tmp_path / "down.json"
    save(downsample("VALID"), model)
    code, out, _ = run(capsys, "verify", str(model), "--spec", str(EXAMPLES / "symbolic_downsample.toml"),
                       "--symbolic", "--json")
    d = json.loads(out)
    assert code == 1 and [p["property"] for p in d["properties"]] == ["shape", "shape (symbolic)"]
    spec = tmp_path / "block.toml"
    spec.write_text(spec_to_toml(read_off_spec(Subject.sub(CIFAR, BLOCK1))))
    code, out, err = run(capsys, "verify", "cifar_cnn", "--spec", str(spec), "--subgraph", "conv_layer1/")
    assert (code, err) == (0, "") and "sub-graph of 3 ops" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["verify", "resnet51", "--spec", "x.toml"], "unknown model 'resnet51': not a zoo model"),
    (["verify", "mlp", "--spec", "/no/such/spec.toml"], "/no/such/spec.toml: cannot read: No such file"),
    (["verify", "cifar_cnn", "--spec", str(EXAMPLES / "downsample_block.toml")],
     f"{EXAMPLES / 'downsample_block.toml'}: inputs: the spec names x but the model's inputs are input"),
    (["verify", "cifar_cnn", "--spec", str(EXAMPLES / "cifar_cnn.toml"), "--subgraph", "fc/rleu"],
     "--subgraph: graph 'cifar_cnn' has no op 'fc/rleu'; did you mean fc/relu"),
    (["verify", "cifar_cnn", "--spec", str(EXAMPLES / "cifar_cnn.toml"), "--subgraph", "proj,flatten"],
     "--subgraph: selection is not connected"),
    (["props", "cifar_cnn", "--subgraph", "proj,conv_layer0/avg_pool"], "--subgraph: selection is not"),
])
def test_cli_bad_input_exit_2_without_traceback(capsys, argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith(f"alphanas: error: {message}") and "Traceback" not in err


def test_cli_bad_spec_exit_2(capsys, tmp_path: Path) -> None:
    spec = tmp_path / "typo.toml"
    spec.write_text('[inputs]\ninput = [1, 32, 32, 3]\n[depth]\nmode = "atleast"\nvalue = 3\n')
    code, out, err = run(capsys, "verify", "cifar_cnn", "--spec", str(spec))
    assert (code, out) == (2, "")
    assert err == (f'alphanas: error: {spec}: depth.mode: expected one of at_least, exactly, range; '
                   f'got "atleast"\n')
    spec.write_text("[inputs\n")
    code, _, err = run(capsys, "verify", "cifar_cnn", "--spec", str(spec))
    assert code == 2 and err.startswith(f"alphanas: error: {spec}: invalid TOML: ") and "line 1" in err


def test_cli_props_zoo_model(capsys) -> None:
    code, out, err = run(capsys, "props", "cifar_cnn")
    assert (code, err) == (0, "")
    row = next(line for line in out.splitlines() if " fc/logits " in line and "input " in line)
    assert row.split()[-2] == "7"
    assert "2,192,458 params, 80,090,368 FLOPs" in out and "131,072 elements" in out
    assert "input -> fc/logits" in out   # a mixing matrix


def test_cli_props_json_and_subgraph(capsys) -> None:
    code, out, _ = run(capsys, "props", "cifar_cnn", "--subgraph", "conv_layer1/", "--json")
    d = json.loads(out)
    assert code == 0 and d["subgraph"] == BLOCK1
    assert d["inputs"] == {"conv_layer0/avg_pool": [1, 16, 16, 64]}
    assert d["outputs"] == {"conv_layer1/avg_pool": [1, 8, 8, 128]}
    assert d["depth"] == [{"input": "conv_layer0/avg_pool", "output": "conv_layer1/avg_pool", "depth": 2}]
    assert d["resources"]["params"] == 3 * 3 * 64 * 128 + 128
    m = d["mixing"][0]["matrix"]
    assert len(m) == 4 and len(m[0]) == 4


def test_cli_props_comma_list_and_mixing_symbols(capsys) -> None:
    code, out, _ = run(capsys, "props", "mlp", "--subgraph", "layer0/dense,layer0/relu",
                       "--input-shape", "4,64")
    assert code == 0
    assert "input -> layer0/relu" in out
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines()
            if line.startswith("│") and line.count("│") == 4]
    # dense: batch -> batch one-to-one, features -> features all-to-one
    assert rows[-2:] == [["0", "1", "-"], ["1", "A", "A"]]


def test_cli_props_spec_out_round_trip(capsys, tmp_path: Path) -> None:
    path = tmp_path / "block.toml"
    code, out, err = run(capsys, "props", "cifar_cnn", "--subgraph", "conv_layer1/", "--spec-out", str(path))
    assert (code, err) == (0, "") and f"wrote the spec to {path}" in out
    spec = load_spec(path)
    expected = read_off_spec(Subject.sub(CIFAR, BLOCK1), name=spec.name)
    assert spec == expected and spec.name == "read off 3 ops of cifar_cnn"
    code, _, _ = run(capsys, "verify", "cifar_cnn", "--spec", str(path), "--subgraph", "conv_layer1/")
    assert code == 0
    code, _, _ = run(capsys, "props", "mlp", "--input-shape", "8,64", "--spec-out", str(path), "--json")
    assert code == 0 and load_spec(path).inputs == (("input", (8, 64)),)


def test_cli_props_unwritable_spec_out(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "props", "mlp", "--spec-out", str(tmp_path / "no" / "s.toml"))
    assert code == 2 and err.startswith("alphanas: error: cannot write the spec to")


def test_cli_import_and_plain_verify_need_no_jax_or_z3(tmp_path: Path) -> None:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    argv = [sys.executable, "-X", "importtime", "-m", "alphanas", "verify", "cifar_cnn",
            "--spec", str(EXAMPLES / "cifar_cnn.toml")]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "alphanas.properties.verify" in imported
    assert not [m for m in imported if m in ("jax", "z3", "flax") or m.startswith(("jax.", "z3."))]
