"""Brute-force labelling judged by the oracle (benchmarks/synthesis/bruteforce.py), the adversarial
suite's stored labels, and the oracle soundness line of the synthesis benchmark."""

from __future__ import annotations

from typing import Any

import pytest

from alphanas.ir.attrs import OpKind
from alphanas.oracle import judge
from alphanas.properties.spec import parse_spec
from benchmarks.synthesis.adversarial import adversarial_tasks, label, labels, mix, spec
from benchmarks.synthesis.bruteforce import brute_force, search, widths, witness_notes

X8 = {"x": [1, 8, 8, 16]}


def _spec(data: dict[str, Any], name: str = "t") -> Any:
    return parse_spec(data, name)


def test_global_mean_keepdims_collapses_8x8_in_one_op() -> None:
    s = _spec(spec(X8, [1, 1, 1, 16], ("conv", "mean"), 3,
                   [mix("x", "y", 4, 4, c11="all", c22="all")]))
    status, g = brute_force(s)
    assert status == "sat" and len(g.ops) == 1
    op = g.ops[0]
    assert op.kind is OpKind.MEAN and dict(op.attrs)["keepdims"] is True
    assert judge(g, s).holds


def test_depth_beyond_one_op_is_unsat() -> None:
    s = _spec(spec(X8, [1, 8, 8, 16], ("conv", "relu", "batch_norm"), 1,
                   depth={"mode": "at_least", "value": 2}))
    status, count = brute_force(s)
    assert status == "unsat" and count > 0


def test_params_budget_picks_5x5_over_7x7() -> None:
    """All 5 rows/cols and every channel mixed: 3x3 reads 3 rows, 5x5 (400 params) fits the
    budget, 7x7 (784) does not."""
    s = _spec(spec({"x": [1, 5, 5, 4]}, [1, 5, 5, 4], ("conv",), 1,
                   [mix("x", "y", 4, 4, c11="all", c22="all", c33="all")], max_params=500))
    status, g = brute_force(s)
    assert status == "sat"
    assert dict(g.ops[0].attrs)["kernel"] == (5, 5) and dict(g.ops[0].attrs)["groups"] == 1
    s7 = _spec(spec({"x": [1, 7, 7, 4]}, [1, 7, 7, 4], ("conv",), 1,
                    [mix("x", "y", 4, 4, c11="all", c22="all", c33="all")], max_params=783))
    assert brute_force(s7)[0] == "unsat"


def test_self_pairs_and_unread_inputs() -> None:
    s = _spec(spec({"x": [1, 8, 8, 4]}, [1, 8, 8, 8], ("concat",), 1))
    status, g = brute_force(s)
    assert status == "sat" and g.ops[0].inputs == ("x", "x") and witness_notes(g) == ("self-pair",)
    two = _spec(spec({"x": [1, 8, 8, 16], "z": [1, 4, 4, 3]}, [1, 8, 8, 16], ("relu",), 1,
                     depth={"mode": "at_least", "x->y": 0}))
    status, g = brute_force(two)
    assert status == "sat" and g.input_names == ("x", "z") and g.ops[0].inputs == ("x",)


def test_widths_cap_and_context() -> None:
    s = _spec(spec({"x": [1, 8, 8, 6]}, [1, 8, 8, 32], ("conv",), 2))
    assert widths(s) == (32, 3, 6, 12, 8, 16)
    assert widths(_spec(spec({"x": [1, 8, 8, 5]}, [1, 8, 8, 5], ("conv",), 1))) == (5, 10, 8, 16)
    big = _spec(spec(X8, [1, 8, 8, 16], ("conv", "relu"), 3, depth={"mode": "exactly", "value": 9}))
    assert brute_force(big, cap=10) == ("capped", 11)
    relu = spec(X8, [1, 8, 8, 16], ("relu",), 1, depth={"mode": "at_least", "value": 1})
    assert brute_force(_spec(relu))[0] == "unsat"                      # a non-linear input
    assert brute_force(_spec({**relu, "context": {"x": "linear"}}))[0] == "sat"
    assert brute_force(_spec(relu), linear_inputs=frozenset({"x"}))[0] == "sat"


@pytest.mark.parametrize("name", ["dw5_over_budget_one_op", "s2_on_8_7x7_reads_6",
                                  "seven_rows_3x3_then_5x5", "upsample_needs_conv_for_many",
                                  "concat_uneven_channels", "softmax_over_one_is_constant"])
def test_cheap_prechecks_agree_with_judge_alone(name: str) -> None:
    """The cheap oracle facts only skip candidates `judge` rejects: without them (every
    candidate judged) the verdict and the count are the same."""
    task = next(t for t in adversarial_tasks() if t.name == name)
    fast, slow = search(task.spec), search(task.spec, prechecks=False)
    assert (fast.status, fast.count) == (slow.status, slow.count)
    assert set(slow.rejected) <= {"judge", "undecided"}


def test_adversarial_tasks_are_labelled() -> None:
    tasks = adversarial_tasks()
    assert len(tasks) >= 60 and len({t.name for t in tasks}) == len(tasks)
    assert all(t.label in ("sat", "unsat") for t in tasks), [t.name for t in tasks if t.label is None]
    assert sum(t.label == "sat" for t in tasks) >= 20 and sum(t.label == "unsat" for t in tasks) >= 20
    assert all(t.n_ops <= 3 and t.specs[0].search.max_ops == t.n_ops for t in tasks)
    stored = labels()
    assert all(stored[t.name].get("wide_label", "unsat") == "unsat" for t in tasks if t.label == "unsat")
    families = {t.family for t in tasks}
    picked = adversarial_tasks(len(families))  # round-robin: one per family first
    assert {t.family for t in picked} == families


@pytest.mark.parametrize("name", ["gm_keep_8x8_to_1x1", "strided_convs_8_to_1_in_2",
                                  "peak_1600_two_ops", "two_dw3_fit_where_dw5_not",
                                  "s2_on_6_needs_7x7", "ctx_mixed_swapped", "range2_nine_rows_2ops",
                                  "head_params_bottleneck_25"])
def test_stored_labels_recompute(name: str) -> None:
    task = next(t for t in adversarial_tasks() if t.name == name)
    got, want = label(task), labels()[name]
    assert (got["label"], got["count"], got["program"]) == (want["label"], want["count"], want["program"])


def _row(**kw: Any) -> dict[str, Any]:
    base = {"task": "t", "suite": "adversarial", "kind": "adversarial", "n_ops": 1, "contexts": 1,
            "known_sat": False, "synth": "ours", "status": "solved", "reason": "", "time_s": 0.01,
            "complete": 1, "generated": 1, "size": 1}
    return {**base, **kw}


def test_summary_line_for_two_fake_rows() -> None:
    from benchmarks.synthesis.run import oracle_line, soundness

    rows = [_row(task="a", status="solved", oracle_ok=True),
            _row(task="b", status="unsat", bf_status="unsat", bf_complete=True, bf_count=5)]
    assert oracle_line(rows) == ("solved 1 (oracle-confirmed 1), unsat 1 (brute-force-confirmed 1 "
                                 "of the <= 3-op ones), unknown 0, unsound 0")
    bad = [_row(task="a", status="solved", oracle_ok=False, oracle_why="depth x->y: 1, spec 2"),
           _row(task="b", status="unsat", known_sat=True, bf_status="sat", bf_program="y = relu(x)"),
           _row(task="c", status="timeout")]
    assert oracle_line(bad) == ("solved 1 (oracle-confirmed 0), unsat 1 (brute-force-confirmed 0 "
                                "of the <= 3-op ones), unknown 1, unsound 2")
    lines = soundness(bad)
    assert len(lines) == 2 and "oracle rejects" in lines[0] and "brute force found" in lines[1]


def test_run_one_checks_adversarial_rows() -> None:
    """Through the benchmark's own runner: a solved row is re-judged by the oracle, an unsat row
    is cross-checked by brute force (whatever the engine answers, the checks are recorded)."""
    from benchmarks.synthesis.run import run_one

    tasks = {t.name: t for t in adversarial_tasks()}
    for name in ("gm_keep_8x8_to_1x1", "strided_convs_8_to_1_in_2"):
        row = run_one((tasks[name], "ours", 10.0))
        assert row["label"] == tasks[name].label and "check_error" not in row, row
        if row["status"] == "solved":
            assert row["oracle_ok"] is not None and row["program_json"]["ops"]
        if row["status"] == "unsat":
            assert row["bf_status"] == labels()[name]["label"] and row["bf_complete"]
