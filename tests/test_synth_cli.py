"""`alphanas synth`: exit codes, rendering, JSON, written files, and input errors."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from alphanas import cli
from alphanas.cli import main
from alphanas.ir import serialize
from alphanas.ir.analysis import analyze
from alphanas.properties.spec import load_spec
from alphanas.properties.verify import verify
from alphanas.synth import Result, Stats
from alphanas.synth.problem import OBJECTIVES
from alphanas.synth.report import progress_line, render, to_json

EXAMPLES = Path(__file__).parent.parent / "examples" / "specs"
RESIDUAL = str(EXAMPLES / "synth_residual.toml")
DOWNSAMPLE = str(EXAMPLES / "synth_downsample.toml")
UNSAT = str(EXAMPLES / "synth_unsat.toml")
FAST = "--timeout=60"


@pytest.fixture(autouse=True)
def _wide_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["synth", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def synth_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, *argv, "--json")
    assert err == ""
    return code, json.loads(out)


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# -- solved, unsat, JSON ----------------------------------------------------------------------


def test_solved_prints_the_program_and_writes_json_and_dot(capsys, tmp_path: Path) -> None:
    out_json, out_dot = tmp_path / "prog.json", tmp_path / "prog.dot"
    code, out, err = run(capsys, RESIDUAL, FAST, "-o", str(out_json), "--dot", str(out_dot))
    assert code == 0, err
    assert err == ""
    for text in ("solved: 2 ops", "program synthesized", "output shape", "pseudo-code",
                 "def synthesized(x):", "satisfies", "candidates generated", "SMT calls",
                 f"wrote JSON to {out_json}", f"wrote DOT to {out_dot}"):
        assert text in out
    graph = serialize.load(out_json)
    assert analyze(graph).output_shapes == ((1, 8, 8, 16),)
    assert verify(graph, load_spec(RESIDUAL)).holds  # independent of the search's own check
    dot = out_dot.read_text()
    assert dot.startswith('digraph "synthesized"') and '"y"' in dot


def test_json_output_with_the_oracle_verdict(capsys, tmp_path: Path) -> None:
    """JSON output; every solved program is re-checked by the rules and the oracle."""
    out_json = tmp_path / "prog.json"
    code, doc = synth_json(capsys, DOWNSAMPLE, "-o", str(out_json))
    assert code == 0
    assert set(doc) == {"status", "reason", "stats", "program", "pseudo_code", "verification"}
    assert doc["status"] == "solved" and doc["stats"]["exit"] == "solved"
    assert doc["stats"]["verified"] >= 1 and doc["stats"]["smt_calls"] >= 1
    assert [r["holds"] for r in doc["verification"]] == [True]
    assert [r["oracle"]["holds"] and r["oracle"]["agrees"] for r in doc["verification"]] == [True]
    assert doc["stats"]["disagreements"] == 0 and doc["stats"]["incomplete"] == 0
    graph = serialize.from_json(doc["program"])
    assert graph == serialize.load(out_json)
    a = analyze(graph)
    assert a.output_shapes == ((1, 8, 8, 32),) and a.params <= 10_000
    assert doc["pseudo_code"].startswith("def synthesized(x):")


def test_unsat_exits_1_with_the_reason_and_writes_nothing(capsys, tmp_path: Path) -> None:
    out_json = tmp_path / "prog.json"
    code, out, err = run(capsys, UNSAT, FAST, "-o", str(out_json), "--dot", str(tmp_path / "p.dot"))
    assert code == 1
    assert err == ""
    assert "unsat: depth: x->y must be >= 9" in out and "4 ops (max_ops)" in out
    assert "exit" in out and "program" not in out
    assert list(tmp_path.iterdir()) == []


def test_unsat_json(capsys) -> None:
    code, doc = synth_json(capsys, UNSAT, FAST)
    assert code == 1
    assert doc["status"] == "unsat" and "must be >= 9" in doc["reason"]
    assert doc["program"] is None and doc["pseudo_code"] is None and doc["verification"] == []
    assert doc["stats"]["exit"] == "unsat"


def test_max_ops_flag_overrides_the_spec(capsys) -> None:
    code, doc = synth_json(capsys, UNSAT, FAST, "--max-ops", "3")
    assert code == 1
    assert "3 ops (max_ops)" in doc["reason"]


def test_minimize_params_is_no_worse(capsys) -> None:
    plain = synth_json(capsys, RESIDUAL, FAST)[1]
    best = synth_json(capsys, RESIDUAL, FAST, "--minimize", "params", "--seed", "3")[1]
    assert plain["status"] == best["status"] == "solved"
    assert "minimal" in best["reason"]
    p_plain = analyze(serialize.from_json(plain["program"])).params
    p_best = analyze(serialize.from_json(best["program"])).params
    assert p_best <= p_plain
    assert f"params {p_best:,}" in best["reason"]


# -- bad input: exit 2 ------------------------------------------------------------------------

ONE_OUT = '[inputs]\nx = [1, 8, 8, 16]\n[outputs]\ny = [1, 8, 8, 16]\n'


@pytest.mark.parametrize("text, message", [
    ('[inputs]\nx = [1, 8, 8, 16\n', "invalid TOML"),
    ('[inputs]\nx = [1, 8, 8, 16]\n',
     "outputs: synthesis needs the output shape (an [outputs] table)"),
    (ONE_OUT + 'z = [1, 8, 8, 16]\n', "outputs: synthesis supports one output, the spec has 2 (y, z)"),
    (ONE_OUT + '[search]\nops = ["conv", "convolution"]\n', "search.ops[1]: unknown op 'convolution'"),
    (ONE_OUT + '[search]\nops = ["einsum"]\n', "search.ops: none of ['einsum'] can be synthesized"),
])
def test_bad_spec_exits_2(capsys, tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    code, out, err = run(capsys, path, FAST)
    assert code == 2
    assert out == ""
    assert err.startswith(f"alphanas: error: {path}: ") and message in err
    assert "Traceback" not in err


def test_missing_spec_exits_2(capsys, tmp_path: Path) -> None:
    path = str(tmp_path / "nope.toml")
    code, out, err = run(capsys, path)
    assert (code, out) == (2, "")
    assert err == f"alphanas: error: {path}: cannot read: No such file or directory\n"


@pytest.mark.parametrize("argv, message", [
    (["--minimize", "bogus"], "argument --minimize: invalid choice: 'bogus'"),
    (["--timeout", "0"], "argument --timeout: expected a positive number of seconds, got '0'"),
    (["--timeout", "nan"], "argument --timeout: expected a positive number of seconds"),
    (["--max-ops", "two"], "argument --max-ops: invalid int value: 'two'"),
])
def test_bad_flags_are_usage_errors(capsys, argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(["synth", RESIDUAL, *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: alphanas synth" in err and message in err


@pytest.mark.parametrize("value", ["0", "13"])
def test_max_ops_out_of_range_names_the_flag(capsys, value: str) -> None:
    code, out, err = run(capsys, RESIDUAL, "--max-ops", value)
    assert (code, out) == (2, "")
    assert err == f"alphanas: error: --max-ops: expected 1..12, got {value}\n"


def test_unwritable_output_fails_before_the_search(capsys, tmp_path: Path) -> None:
    path = str(tmp_path / "missing" / "prog.json")
    code, out, err = run(capsys, RESIDUAL, FAST, "-o", path)
    assert (code, out) == (2, "")
    assert err == f"alphanas: error: cannot write to '{path}': no such directory\n"


# -- pieces -----------------------------------------------------------------------------------


def test_objectives_match_the_synthesizer() -> None:
    assert cli.OBJECTIVES == OBJECTIVES


@pytest.mark.parametrize("name", ["synth_residual", "synth_downsample", "synth_unsat"])
def test_example_specs_load(name: str) -> None:
    spec = load_spec(EXAMPLES / f"{name}.toml")
    assert spec.output_names is not None and len(spec.output_names) == 1
    assert spec.search.max_ops is not None


def test_render_timeout_without_a_program() -> None:
    stats = Stats(generated=12, pruned=Counter({"depth": 5, "shape": 2}), complete=3,
                  failed=Counter({"widths/budgets (Z3 unsat)": 3}), smt_calls=3, size=4,
                  wall_s=1.5, exit="timeout")
    result = Result("timeout", "no program found within 1 s", stats)
    con = Console(record=True, width=120)
    con.print(render(result))
    text = con.export_text()
    assert "timeout: no program found within 1 s" in text
    for row in ("pruned", "depth", "rejected: widths/budgets (Z3 unsat)", "largest size searched"):
        assert row in text
    assert "pseudo-code" not in text
    doc = to_json(result)
    assert doc["program"] is None and doc["stats"]["pruned"] == {"depth": 5, "shape": 2}
    assert json.loads(json.dumps(doc)) == doc
    line = progress_line(stats, 2.0)
    assert "size 4" in line and "7 pruned" in line and "3 complete" in line


def test_progress_only_on_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with cli._progress() as callback:
        assert callback is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with cli._progress() as callback:
        assert callback is not None
        callback(Stats(generated=1))
