"""The quick subset of the synthesis benchmark (CI): every satisfiable task solved, no unsound
answer, the report and the resumable result file work."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.synthesis.run import main, run, soundness, summary, targets
from benchmarks.synthesis.tasks import quick_tasks


def test_quick_suite_ours_and_greedy(tmp_path: Path) -> None:
    tasks = quick_tasks()
    out = tmp_path / "rows.jsonl"
    rows = run(tasks, ["ours", "greedy"], 10.0, 2.0, 1, out, False)
    assert len(rows) == 2 * len(tasks) and not [r for r in rows if r["status"] == "error"]
    ours = [r for r in rows if r["synth"] == "ours"]
    assert all(r["status"] == "solved" for r in ours if r["known_sat"]), \
        [r["task"] for r in ours if r["known_sat"] and r["status"] != "solved"]
    assert soundness(rows) == []
    assert {s["suite"] for s in summary(rows)} >= {"all", *(t.suite for t in tasks)}
    names = [name for name, _, _ in targets(rows)]
    assert "0 unsound answers" in names and any("greedy" in n for n in names)
    # resume: a truncated file with a corrupted last line is completed, nothing rerun
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:5]) + "\n{not json\n")
    again = run(tasks, ["ours", "greedy"], 10.0, 2.0, 1, out, True)
    assert len(again) == len(rows)
    assert out.read_text().splitlines()[:5] == lines[:5]


def test_cli_entry_and_bad_flags(capsys, tmp_path: Path) -> None:
    import pytest

    with pytest.raises(SystemExit) as e:
        main(["--synth", "ours,bogus"])
    assert e.value.code == 2 and "unknown synthesizer 'bogus'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--suite", "nope"])
    assert e.value.code == 2 and "nope" in capsys.readouterr().err
    assert main(["--quick", "--synth", "ours", "--jobs", "1", "--limit", "3",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["unsound"] == [] and data["rows"]
