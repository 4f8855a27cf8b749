"""The SQLite result store: writes, reopening, config checks, corruption, crash safety, CSV."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from alphanas.errors import AlphanasError
from alphanas.nas.store import (
    DB_NAME,
    SCHEMA_VERSION,
    Candidate,
    RunStore,
    StoreError,
    write_csv,
)

CONFIG = {"seed": 0, "trials": 10, "train": {"lr": 0.1, "epochs": 2}, "model": "cifar_cnn"}


def _cand(trial: int, status: str = "ok", **kw) -> Candidate:
    kw.setdefault("val_accuracy", 0.5 if status == "ok" else None)
    return Candidate(trial=trial, status=status, graph_json='{"ops": []}',
                     fingerprint=kw.pop("fingerprint", f"fp{trial}"), **kw)


@pytest.fixture
def store(tmp_path):
    with RunStore.open(tmp_path / "run", config=CONFIG) as s:
        yield s


def test_add_and_query(store):
    store.add(_cand(0, val_accuracy=0.3, params=100, synth_stats={"smt_calls": 3}))
    store.add(_cand(1, parent=0, mutation="widen", val_accuracy=0.7, params=50))
    store.add(_cand(2, "failed", parent=0, reason="nan loss", fingerprint="fp0"))
    store.add(_cand(3, "rejected", parent=1, reason="depth > 12"))
    assert store.count() == 4 and store.count("ok") == 2 and store.next_trial() == 4
    assert [c.trial for c in store.candidates()] == [0, 1, 2, 3]
    assert [c.trial for c in store.candidates("failed")] == [2]
    got = store.get(0)
    assert got.synth_stats == {"smt_calls": 3} and got.params == 100 and got.created > 0
    assert store.get(2).reason == "nan loss" and store.get(1).parent == 0
    assert store.fingerprints() == {"fp0", "fp1", "fp3"}
    assert [c.trial for c in store.best(5)] == [1, 0]  # accuracy: higher first, ok rows only
    assert [c.trial for c in store.best(1, key="params")] == [1]  # costs: lower first
    assert [c.trial for c in store.best(1, key="params", maximize=True)] == [0]
    assert 3 in store and 7 not in store
    with pytest.raises(StoreError, match="no trial 7"):
        store.get(7)


def test_best_breaks_ties_by_trial_and_skips_missing_metrics(store):
    for t, acc in enumerate([0.5, 0.9, 0.9, None]):
        store.add(_cand(t, val_accuracy=acc))
    assert [c.trial for c in store.best(10)] == [1, 2, 0]
    with pytest.raises(StoreError, match="unknown key 'graph_json'"):
        store.best(1, key="graph_json")


def test_empty_store(store):
    assert store.count() == 0 and store.next_trial() == 0 and store.fingerprints() == set()
    assert store.candidates() == [] and store.best(3) == []


def test_duplicate_trial_is_rejected_and_changes_nothing(store):
    store.add(_cand(0, val_accuracy=0.25))
    with pytest.raises(StoreError, match=r"trial 0 is already stored \(next free trial: 1\)"):
        store.add(_cand(0, val_accuracy=0.99, fingerprint="other"))
    assert store.count() == 1 and store.get(0).val_accuracy == 0.25
    assert isinstance(StoreError("x"), AlphanasError) and isinstance(StoreError("x"), ValueError)


def test_candidate_validation_and_row_round_trip():
    c = Candidate(trial=np.int64(4), status="ok", graph_json="{}", fingerprint="f",
                  val_accuracy=np.float32(0.5), params=np.int64(7), synth_stats={"a": [1, 2]})
    assert type(c.trial) is int and type(c.val_accuracy) is float and type(c.params) is int
    assert Candidate.from_row(c.to_row()) == c
    with pytest.raises(StoreError, match="status must be one of ok, failed, rejected, got 'done'"):
        Candidate(trial=0, status="done", graph_json="{}", fingerprint="f")
    with pytest.raises(StoreError, match="trial must be >= 0"):
        Candidate(trial=-1, status="ok", graph_json="{}", fingerprint="f")
    with pytest.raises(StoreError, match="params must be a number or None, got 2.5"):
        Candidate(trial=0, status="ok", graph_json="{}", fingerprint="f", params=2.5)
    with pytest.raises(StoreError, match="not JSON-serializable"):
        Candidate(trial=0, status="ok", graph_json="{}", fingerprint="f",
                  synth_stats={"x": object()}).to_row()


def test_reopen_keeps_rows_and_config(tmp_path):
    run = tmp_path / "run"
    with RunStore.open(run, config=CONFIG) as s:
        s.add(_cand(0))
        s.add(_cand(1))
        created = s.created()
    with RunStore.open(run, create=False, config=CONFIG) as s:
        assert [c.trial for c in s.candidates()] == [0, 1]
        assert s.config() == CONFIG and s.created() == created
    with RunStore.open(run) as s:  # no config: no check
        assert s.next_trial() == 2


def test_resumable_keys_may_change_and_are_recorded(tmp_path):
    run = tmp_path / "run"
    RunStore.open(run, config=CONFIG).close()
    with RunStore.open(run, config={**CONFIG, "trials": 50}) as s:
        assert s.config()["trials"] == 50
    with RunStore.open(run, config={**CONFIG, "trials": 50}, resumable=()) as s:
        assert s.config() == {**CONFIG, "trials": 50}


def test_config_mismatch_names_the_key_and_both_values(tmp_path):
    run = tmp_path / "run"
    RunStore.open(run, config=CONFIG).close()
    with pytest.raises(StoreError, match=r"key 'seed' differs: .* started with 0, reopened with 1"):
        RunStore.open(run, config={**CONFIG, "seed": 1})
    with pytest.raises(StoreError, match=r"key 'train.lr' differs: .* with 0.1, reopened with 0.2"):
        RunStore.open(run, config={**CONFIG, "train": {"lr": 0.2, "epochs": 2}})
    with pytest.raises(StoreError, match=r"key 'extra' differs: .* with \"<absent>\", reopened with 3"):
        RunStore.open(run, config={**CONFIG, "extra": 3})
    with pytest.raises(StoreError, match=r"key 'trials' differs"):
        RunStore.open(run, config={**CONFIG, "trials": 11}, resumable=())
    with RunStore.open(run, config={**CONFIG, "model": "cifar_cnn"}) as s:  # tuples vs lists, etc.
        assert s.config() == CONFIG
    with pytest.raises(StoreError, match="not JSON-serializable"):
        RunStore.open(tmp_path / "other", config={"f": object()})


def test_missing_store_without_create(tmp_path):
    with pytest.raises(StoreError, match=f"{tmp_path / 'nope' / DB_NAME}: no result store here"):
        RunStore.open(tmp_path / "nope", create=False)
    assert not (tmp_path / "nope").exists()


def test_not_sqlite_is_refused_and_left_alone(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    db = run / DB_NAME
    db.write_bytes(b"these are my precious notes\n" * 10)
    before = db.read_bytes()
    with pytest.raises(StoreError, match=rf"{db}: not a SQLite database \(expected header"):
        RunStore.open(run, config=CONFIG)
    assert db.read_bytes() == before and sorted(p.name for p in run.iterdir()) == [DB_NAME]
    db.write_bytes(b"")
    with pytest.raises(StoreError, match="not a SQLite database"):
        RunStore.open(run)
    assert db.read_bytes() == b""


def test_foreign_sqlite_and_wrong_version_are_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    db = run / DB_NAME
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE foo (x INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=rf"{db}: not an alphanas result store \(no 'meta' table; tables: foo\)"):
        RunStore.open(run)
    assert db.exists()

    other = tmp_path / "run2"
    RunStore.open(other, config=CONFIG).close()
    conn = sqlite3.connect(other / DB_NAME)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=rf"schema version 99, expected {SCHEMA_VERSION}"):
        RunStore.open(other)

    third = tmp_path / "run3"
    RunStore.open(third).close()
    conn = sqlite3.connect(third / DB_NAME)
    conn.execute("ALTER TABLE candidates DROP COLUMN flops")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"table 'candidates' has columns .*; expected .*flops"):
        RunStore.open(third)


def test_unwritable_run_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match=f"run directory {blocker / 'run'} cannot be created"):
        RunStore.open(blocker / "run")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_run_dir(tmp_path):
    run = tmp_path / "ro"
    run.mkdir()
    run.chmod(0o500)
    try:
        with pytest.raises(StoreError, match=f"run directory {run} is not writable"):
            RunStore.open(run)
    finally:
        run.chmod(0o700)


def test_weights_round_trip(store):
    import flax
    import jax.numpy as jnp

    variables = flax.core.freeze({
        "params": {"stage1/conv": {"kernel": jnp.arange(12.0).reshape(3, 4), "bias": jnp.zeros(4)},
                   "pos": np.ones((1, 2, 3), np.float32)},
        "batch_stats": {"bn": {"mean": np.full(4, 0.5, np.float32)}},
    })
    store.add(_cand(0), weights=variables)
    assert store.has_weights(0) and not store.has_weights(1)
    got = store.get_weights(0)
    assert isinstance(got["params"]["stage1/conv"]["kernel"], np.ndarray)
    np.testing.assert_array_equal(got["params"]["stage1/conv"]["kernel"], np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(got["batch_stats"]["bn"]["mean"], np.full(4, 0.5))
    templated = store.get_weights(0, template=variables)
    assert isinstance(templated, flax.core.FrozenDict)
    np.testing.assert_array_equal(templated["params"]["pos"], np.ones((1, 2, 3)))
    with pytest.raises(StoreError, match="weights of trial 0 are already stored"):
        store.put_weights(0, variables)
    store.put_weights(0, {"params": {"w": np.zeros(2)}}, replace_existing=True)
    assert set(store.get_weights(0)["params"]) == {"w"}
    with pytest.raises(StoreError, match="no weights stored for trial 5"):
        store.get_weights(5)


def test_add_with_weights_is_one_transaction(store):
    store.put_weights(3, {"w": np.zeros(1)})
    with pytest.raises(StoreError, match="trial 3 is already stored"):
        store.add(_cand(3), weights={"w": np.ones(1)})  # the weights insert fails...
    assert 3 not in store  # ...and the candidate insert is rolled back with it


_WRITER = textwrap.dedent("""
    import sys
    from alphanas.nas.store import Candidate, RunStore
    store = RunStore.open(sys.argv[1], config={"trials": 10**9})
    blob = "x" * 200_000
    t = store.next_trial()
    while True:
        store.add(Candidate(trial=t, status="ok", graph_json=blob + str(t), fingerprint=str(t),
                            val_accuracy=t / 1e6))
        print(t, flush=True)
        t += 1
""")


def _run_and_kill(script: Path, run: Path, rows: int) -> int:
    """Start the writer, SIGKILL it after it has reported `rows` commits; the last reported."""
    p = subprocess.Popen([sys.executable, str(script), str(run)], stdout=subprocess.PIPE, text=True)
    last = -1
    try:
        assert p.stdout is not None
        for _ in range(rows):
            line = p.stdout.readline()
            assert line, f"writer died early with code {p.poll()}"
            last = int(line)
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    assert p.returncode == -signal.SIGKILL
    return last


def test_sigkill_mid_write_leaves_a_committed_prefix(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    run = tmp_path / "run"
    for _ in range(3):  # each round resumes where the killed one stopped
        last = _run_and_kill(script, run, rows=15)
        with RunStore.open(run, create=False) as s:
            assert s.integrity_check() == "ok"
            trials = [c.trial for c in s.candidates()]
            assert trials == list(range(len(trials)))  # exactly a prefix 0..k-1
            assert len(trials) > last  # every acknowledged commit survived
            assert all(c.graph_json.endswith(str(c.trial)) for c in s.candidates())
    assert len(trials) >= 45


def test_write_csv(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old")
    write_csv(path, [{"a": 1, "b": None, "c": "x,y"}, {"a": 2.5, "b": {"k": 1}, "c": ""}],
              ["a", "b", "c"])
    rows = list(csv.reader(path.open()))
    assert rows == [["a", "b", "c"], ["1", "", "x,y"], ["2.5", '{"k": 1}', ""]]
    write_csv(path, [(1, 2)], ["p", "q"])
    assert path.read_text() == "p,q\n1,2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary left behind
    with pytest.raises(StoreError, match="row 0 has no column 'b'"):
        write_csv(path, [{"a": 1}], ["a", "b"])
    with pytest.raises(StoreError, match="row 0 has 1 values, expected 2"):
        write_csv(path, [(1,)], ["a", "b"])
    assert path.read_text() == "p,q\n1,2\n"  # a failed write leaves the old file
    with pytest.raises(StoreError, match="cannot write the CSV file"):
        write_csv(tmp_path / "missing" / "x.csv", [], ["a"])


def test_store_write_csv(store, tmp_path):
    store.add(_cand(0, val_accuracy=0.5))
    store.add(_cand(1, "failed", reason="oom"))
    store.write_csv(tmp_path / "all.csv", columns=["trial", "status", "reason", "val_accuracy"])
    rows = list(csv.DictReader((tmp_path / "all.csv").open()))
    assert rows == [{"trial": "0", "status": "ok", "reason": "", "val_accuracy": "0.5"},
                    {"trial": "1", "status": "failed", "reason": "oom", "val_accuracy": ""}]
