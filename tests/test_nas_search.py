"""The NAS driver end to end: a tiny search, resume after kill -9, Ray workers, export, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alphanas.cli import main
from alphanas.ir import serialize
from alphanas.nas.config import ConfigError, SearchConfig, load_config
from alphanas.nas.evolve import run_search, seed_graph
from alphanas.nas.mutate import fingerprint
from alphanas.nas.store import RunStore

TINY = dict(dataset="digits", data_limit=300, seed_model="cifar_cnn", trials=5, batch=2,
            seed_copies=1, train={"epochs": 1, "batch_size": 32}, synth_timeout_s=120.0)
# synth_timeout_s is a wall-clock safety net: far above what these syntheses take, so that a
# loaded machine cannot change which child a seed gives (the candidate budget decides).


def tiny(**over) -> SearchConfig:
    return SearchConfig(**{**TINY, **over})


def test_tiny_search_end_to_end(tmp_path: Path) -> None:
    cfg = tiny()
    store = run_search(cfg, tmp_path)
    cands = store.candidates()
    assert [c.trial for c in cands] == list(range(cfg.trials))
    seed_fp = fingerprint(seed_graph(cfg))
    children = [c for c in cands if c.mutation != "seed"]
    assert children and all(c.status in ("ok", "failed", "rejected") for c in children)
    trained = [c for c in children if c.status == "ok"]
    assert trained and all(c.fingerprint != seed_fp for c in trained)
    for c in trained:
        assert c.val_accuracy is not None and 0 <= c.val_accuracy <= 1 and c.params > 0
        assert serialize.loads(c.graph_json).ops  # a valid graph
        if c.mutation.startswith("mutate_template"):
            assert c.spec_toml and c.synth_stats  # the synthesized spec and its stats are stored
    assert store.get_weights(trained[0].trial) is not None
    assert main(["runs", "show", str(tmp_path)]) == 0
    from alphanas.nas.outputs import write_outputs

    for p in write_outputs(tmp_path, cands):
        assert p.exists() and p.stat().st_size > 0


def test_same_seed_same_run(tmp_path: Path) -> None:
    a = run_search(tiny(trials=4), tmp_path / "a").candidates()
    b = run_search(tiny(trials=4), tmp_path / "b").candidates()
    assert [c.fingerprint for c in a] == [c.fingerprint for c in b]


def _count(run: Path) -> int:
    try:
        with RunStore.open(run, create=False) as s:
            return s.count()
    except Exception:
        return 0


def test_resume_after_kill_9(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "alphanas", "search", "--dataset", "digits", "--trials", "6",
           "--epochs", "1", "--mutator", "random", "--out", str(run)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _count(run) < 2 and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    p.send_signal(signal.SIGKILL)
    p.wait()
    with RunStore.open(run, create=False) as s:
        before = {c.trial: c.created for c in s.candidates()}
    assert 2 <= len(before) < 6
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with RunStore.open(run, create=False) as s:
        after = s.candidates()
    assert [c.trial for c in after] == list(range(6))
    assert all(c.created == before[c.trial] for c in after if c.trial in before)  # not retrained


def test_ray_workers_give_the_same_architectures(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    cfg = tiny(trials=4)   # synth mutator; trials 2-3 pick parents from trained results
    one = run_search(cfg, tmp_path / "one").candidates()
    two = run_search(cfg, tmp_path / "two", workers=2).candidates()
    assert sorted((c.trial, c.fingerprint) for c in one) == sorted((c.trial, c.fingerprint) for c in two)


def test_export_cli(tmp_path: Path, capsys) -> None:
    run_search(tiny(trials=2), tmp_path)
    assert main(["export", str(tmp_path), "--trial", "1", "-o", str(tmp_path / "ex")]) == 0
    for f in ("graph.json", "model.py", "params.msgpack"):
        assert (tmp_path / "ex" / f).exists()
    assert main(["export", str(tmp_path), "--trial", "9"]) == 2
    assert "no trial 9" in capsys.readouterr().err


def test_bad_input_is_exit_2_and_keeps_the_run(tmp_path: Path, capsys) -> None:
    assert main(["search", "--dataset", "mnist", "--out", str(tmp_path / "x")]) == 2
    assert "search.dataset: expected one of digits, cifar10, synthetic" in capsys.readouterr().err
    assert main(["search", "--seed-model", "resnet99", "--trials", "1", "--out", str(tmp_path / "y")]) == 2
    assert "unknown model 'resnet99'" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[search]\ntrials = 'many'\n")
    assert main(["search", "--config", str(bad), "--out", str(tmp_path / "z")]) == 2
    assert "search.trials: expected an integer" in capsys.readouterr().err
    bad.write_text("[search\n")
    assert main(["search", "--config", str(bad)]) == 2
    assert "malformed TOML" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["search", "--trials", "1", "--out", str(blocker / "run")]) == 2
    assert "run directory" in capsys.readouterr().err
    run = tmp_path / "run"
    assert main(["search", "--trials", "1", "--epochs", "1", "--out", str(run)]) == 0
    with RunStore.open(run, create=False) as s:
        before = s.candidates()
    assert main(["search", "--trials", "1", "--epochs", "2", "--out", str(run)]) == 2
    assert "train" in capsys.readouterr().err   # a different config: refused, nothing touched
    with RunStore.open(run, create=False) as s:
        assert s.candidates() == before
    with pytest.raises(ConfigError, match="train.epochz: unknown key"):
        SearchConfig(train={"epochz": 1})
    with pytest.raises(ConfigError, match="sample: 5 exceeds"):
        load_config(None, sample=5, population=3)


def test_weight_inheritance_keeps_unchanged_ops(tmp_path: Path) -> None:
    import numpy as np

    from alphanas.nas.evolve import inherit

    store = run_search(tiny(trials=4, inherit_weights=True, mutator="random"), tmp_path)
    cands = store.candidates()
    assert all(c.status == "ok" for c in cands)
    parent = store.get_weights(0)
    g = serialize.loads(cands[0].graph_json)
    merged = inherit(g, parent, seed=123)
    w = parent["params"]["fc/logits"]["kernel"]
    assert np.array_equal(merged["params"]["fc/logits"]["kernel"], w)   # same op, same shape: kept
