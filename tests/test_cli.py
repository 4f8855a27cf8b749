"""The `alphanas` console script: zoo and show, exports, and exit status 2 on user errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from alphanas.cli import human, human_flops, main
from alphanas.ir import analyze, zoo
from alphanas.ir.serialize import load, save, to_json


@pytest.fixture(autouse=True)
def _wide_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # tables 200 wide when not on a terminal


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- formatting ------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "text"), [(0, "0"), (999, "999"), (1000, "1.00K"), (17_226, "17.23K"),
                                         (25_557_032, "25.56M"), (4_110_000_000, "4.11G"),
                                         (3 * 10**12, "3.00T")])
def test_human(n: int, text: str) -> None:
    assert human(n) == text


def test_human_flops() -> None:
    assert human_flops(4_109_000_000) == "4.11 GFLOPs"
    assert human_flops(512) == "512 FLOPs"
    assert human_flops(34_240) == "34.24 KFLOPs"


# -- zoo -------------------------------------------------------------------------------------


def test_zoo_lists_every_model_with_counts(capsys) -> None:
    code, out, err = run(capsys, "zoo")
    assert (code, err) == (0, "")
    for name in zoo.names():
        a = analyze(zoo.build(name))
        row = next(line for line in out.splitlines() if f" {name} " in line)
        assert f"{a.params:,}" in row and human_flops(a.flops) in row
        ref = zoo.ZOO[name].reference_params
        if ref is not None:
            assert ("✓" if ref == a.params else "✗") in row


# -- show ------------------------------------------------------------------------------------


def test_show_zoo_model(capsys) -> None:
    code, out, err = run(capsys, "show", "cifar_cnn")
    assert (code, err) == (0, "")
    g = zoo.build("cifar_cnn")
    for op in g.ops:
        assert f" {op.name} " in out
    row = next(line for line in out.splitlines() if " fc/dense " in line)
    assert all(x in row for x in ("dense", "flatten", "(1, 256)", "2.10M", "4.19 MFLOPs", "linear"))
    assert "non-linear" in next(line for line in out.splitlines() if " fc/relu " in line)
    assert "totals: 11 ops, 2,192,458 params, 80,090,368 FLOPs, peak activation 65,536 elements" in out
    assert "outputs: fc/logits (1, 10)" in out


def test_show_json_file_and_exports(capsys, tmp_path) -> None:
    src, dot, js = tmp_path / "mlp.json", tmp_path / "mlp.dot", tmp_path / "copy.json"
    save(zoo.build("mlp"), src)
    code, out, err = run(capsys, "show", str(src), "--dot", str(dot), "--json", str(js))
    assert (code, err) == (0, "")
    assert "totals: 5 ops, 17,226 params, 34,240 FLOPs" in out
    text = dot.read_text()
    assert text.startswith('digraph "mlp" {') and '"layer0/dense" -> "layer0/relu";' in text
    assert load(js) == zoo.build("mlp")


def test_show_with_input_shape(capsys, tmp_path) -> None:
    js = tmp_path / "batch4.json"
    code, out, _ = run(capsys, "show", "mlp", "--input-shape", "4,64", "--json", str(js))
    assert code == 0
    assert "34,240 FLOPs" not in out and f"{4 * 34_240:,} FLOPs" in out
    assert json.loads(js.read_text())["inputs"][0]["shape"] == [4, 64]


def test_show_template_without_shapes_asks_for_them(capsys, tmp_path) -> None:
    path = tmp_path / "block.json"
    save(zoo.build("cifar_cnn").template("conv_layer").graph, path)
    code, out, err = run(capsys, "show", str(path))
    assert code == 2 and out == ""
    assert err.startswith("alphanas: error: input 'input' of graph 'conv_layer' has no declared shape")
    assert "--input-shape" in err
    code, out, _ = run(capsys, "show", str(path), "--input-shape", "1,8,8,3")
    assert code == 0 and "(1, 4, 4, 6)" in out


# -- errors ----------------------------------------------------------------------------------


def test_unknown_model_exits_2_naming_it(capsys) -> None:
    code, out, err = run(capsys, "show", "resnet51")
    assert (code, out) == (2, "")
    assert err.startswith("alphanas: error: unknown model 'resnet51': not a zoo model and no such file")
    assert "resnet50" in err and "Traceback" not in err


def test_malformed_json_file_exits_2_naming_the_path(capsys, tmp_path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{\n  \"format\": \"alphanas-graph\",\n  oops\n}\n")
    code, out, err = run(capsys, "show", str(path))
    assert (code, out) == (2, "")
    assert err == f"alphanas: error: {path}: invalid JSON at line 3, column 3: Expecting property name enclosed in double quotes\n"


def test_invalid_graph_file_exits_2_with_field_path(capsys, tmp_path) -> None:
    obj = to_json(zoo.build("mlp"))
    obj["ops"][1]["kind"] = "rleu"
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(obj))
    code, _, err = run(capsys, "show", str(path))
    assert code == 2
    assert err.startswith(f"alphanas: error: {path}: ops[1].kind: unknown op 'rleu'; expected one of: ")


def test_missing_json_file_exits_2(capsys, tmp_path) -> None:
    path = tmp_path / "absent.json"
    code, _, err = run(capsys, "show", str(path))
    assert code == 2
    assert err == f"alphanas: error: {path}: cannot read: No such file or directory\n"


def test_unwritable_export_exits_2(capsys, tmp_path) -> None:
    target = tmp_path / "no-dir" / "g.dot"
    code, _, err = run(capsys, "show", "mlp", "--dot", str(target))
    assert code == 2
    assert err == f"alphanas: error: cannot write DOT to '{target}': No such file or directory\n"
    assert not (tmp_path / "no-dir").exists()


def test_wrong_number_of_input_shapes_exits_2(capsys) -> None:
    code, _, err = run(capsys, "show", "mlp", "--input-shape", "1,64", "1,64")
    assert code == 2
    assert err == "alphanas: error: --input-shape: graph has 1 inputs, got 2 shapes\n"


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["show"], ["show", "mlp", "--input-shape", "1,x"],
                                  ["show", "mlp", "--input-shape", "0,64"]])
def test_usage_errors_exit_2(capsys, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: alphanas" in capsys.readouterr().err


def test_module_entry_point_exits_2_without_traceback_or_jax() -> None:
    """`python -m alphanas` in a fresh interpreter: clean error, exit 2, and jax never imported."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "alphanas", "show", "no_such_model"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert "alphanas: error: unknown model 'no_such_model'" in proc.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")]
    assert "alphanas.cli" in imported
    assert not [m for m in imported if m == "jax" or m.startswith(("jax.", "flax"))]
