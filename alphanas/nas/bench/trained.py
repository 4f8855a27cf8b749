"""The trained track: mutators x strategies on real data at equal training compute.

Arms: synth-pareto, synth-aging, random-pareto, random-aging (mutator x strategy of
`alphanas search`) and sample (random mutations of the seed model, no evolution). Each
(dataset, arm, seed) is one `alphanas search` run in `OUT/trained/DATASET/ARM/seedK`, resumable
like any search. Compute is FLOP-weighted: a trained candidate costs 3 x its forward FLOPs x
training examples x epochs (forward + backward); every arm gets `budget_x` times the seed
model's cost, and a run stops at the first batch that reaches it (or at `max_trials`).

Noise floor: each run trains the seed model `seed_copies` (3) times with different training
seeds; their spread is the noise a difference must beat. Each arm's selected model (the best
validation accuracy over its runs) is retrained 3 more times and its test accuracy reported.

Metrics per run: hypervolume of the (test accuracy, params) front with the reference point
(seed test accuracy - 0.10, 2 x seed params), params in units of the seed's; params at the seed's accuracy (the fewest params
among candidates at >= the mean test accuracy of the run's seed copies) relative to the seed;
failed / rejected / duplicate fractions; time outside training; best-so-far against compute.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from alphanas.nas.bench.harness import BenchError

__all__ = ["ARMS", "PROFILES", "Profile", "main_trained", "run_trained"]

ARMS = {"synth-pareto": ("synth", "pareto"), "synth-aging": ("synth", "aging"),
        "random-pareto": ("random", "pareto"), "random-aging": ("random", "aging"),
        "sample": ("random", "sample")}


@dataclass(frozen=True)
class Profile:
    data_limit: int
    epochs: int
    batch_size: int
    budget_x: float
    max_trials: int
    seeds: int
    retrain: int = 3
    seed_copies: int = 3
    train: tuple[tuple[str, Any], ...] = ()   # other TrainConfig fields


PROFILES = {
    "quick": Profile(data_limit=3000, epochs=2, batch_size=64, budget_x=6.0, max_trials=11, seeds=5),
    "full": Profile(data_limit=0, epochs=10, batch_size=128, budget_x=20.0, max_trials=64, seeds=5),
}
QUICK = {
    # 1,295 training images: a few epochs leave the seed model near chance
    "digits": {"epochs": 15},
    # 2 epochs of 3,000 images at Adam 1e-3 leave the seed at 0.36 test accuracy (measured);
    # at 1e-2, batch 32, no augmentation it reaches 0.73 in the same time
    "fashion_mnist": {"train": (("learning_rate", 1e-2), ("batch_size", 32), ("augment", False))},
}


def profile_for(p: Profile, dataset: str, quick: bool) -> Profile:
    return replace(p, **QUICK[dataset]) if quick and dataset in QUICK else p


def _config(dataset: str, data_path: str | None, arm: str, seed: int, p: Profile,
            trials: int) -> Any:
    from alphanas.nas.config import SearchConfig

    mutator, strategy = ARMS[arm]
    return SearchConfig(dataset=dataset, data_path=data_path, data_limit=p.data_limit,
                        seed_model="resnet_narrow", trials=trials, seed_copies=p.seed_copies,
                        strategy=strategy, mutator=mutator, seed=seed, batch=2,
                        population=6, sample=2, top_k=6,
                        train={"epochs": p.epochs, "batch_size": p.batch_size, **dict(p.train)})


def _cost(c: Any, n_train: int, epochs: int) -> float:
    return 3.0 * float(c.flops or 0) * n_train * epochs if c.status == "ok" else 0.0


def run_one(dataset: str, data_path: str | None, arm: str, seed: int, p: Profile,
            out: Path) -> list[Any]:
    """Run (or resume) one search until its compute budget is spent; its candidates."""
    from alphanas.ir.analysis import analyze
    from alphanas.nas.evolve import dataset_of, run_search, seed_graph

    cfg = _config(dataset, data_path, arm, seed, p, p.seed_copies)
    n_train = len(dataset_of(cfg).y_train)
    budget = p.budget_x * _cost_of_graph(analyze(seed_graph(cfg)).flops, n_train, p.epochs)
    trials = p.seed_copies
    while True:
        store = run_search(replace(cfg, trials=trials), out)
        cands = store.candidates()
        store.close()
        spent = sum(_cost(c, n_train, p.epochs) for c in cands)
        if spent >= budget or trials >= p.max_trials:
            return cands
        trials = min(p.max_trials, trials + 2)


def _cost_of_graph(flops: int, n_train: int, epochs: int) -> float:
    return 3.0 * flops * n_train * epochs


def _hv(points: Sequence[tuple[float, float]], ref_acc: float, ref_params: float) -> float:
    from alphanas.nas.bench.stats import hypervolume

    if not points:
        return 0.0
    a = np.array([x for x, _ in points])
    c = np.array([y for _, y in points])
    return hypervolume(a, c, ref_acc, ref_params)


def metrics(cands: Sequence[Any], p: Profile, n_train: int) -> dict[str, Any]:
    ok = [c for c in cands if c.status == "ok" and c.test_accuracy is not None]
    seeds = [c for c in ok if c.trial < p.seed_copies]
    seed_acc = float(np.mean([c.test_accuracy for c in seeds])) if seeds else float("nan")
    seed_params = float(seeds[0].params) if seeds else float("nan")
    children = [c for c in cands if c.trial >= p.seed_copies]
    fps: set[str] = set()
    dup = 0
    for c in sorted(cands, key=lambda c: c.trial):
        if c.trial >= p.seed_copies and c.fingerprint in fps:
            dup += 1
        fps.add(c.fingerprint)
    at_seed = [c.params for c in ok if c.test_accuracy >= seed_acc]
    compute, best_val, curve = 0.0, -1.0, []
    best_test = float("nan")
    ok_trials = {c.trial for c in ok}
    for c in sorted(cands, key=lambda c: c.trial):
        compute += _cost(c, n_train, p.epochs)
        if c.trial in ok_trials and c.val_accuracy is not None and c.val_accuracy > best_val:
            best_val, best_test = c.val_accuracy, c.test_accuracy
        curve.append((compute, best_test))
    n = max(1, len(children))
    return {
        "trials": len(cands), "seed_test_acc": seed_acc, "seed_params": seed_params,
        "seed_copies_acc": [c.test_accuracy for c in seeds],
        "hv": _hv([(c.test_accuracy, c.params / seed_params) for c in ok], seed_acc - 0.10, 2.0),
        "params_at_seed_acc": (min(at_seed) / seed_params) if at_seed else float("nan"),
        "best_val": best_val, "best_test": best_test,
        "best_trial": max(ok, key=lambda c: c.val_accuracy).trial if ok else None,
        "failed": sum(c.status == "failed" for c in children) / n,
        "rejected": sum(c.status == "rejected" for c in children) / n,
        "duplicate": dup / n,
        "outside_training_s": float(sum((c.wall_time_s or 0) - (c.train_time_s or 0) for c in cands)),
        "compute": compute, "curve": curve,
        "max_child_params_x": max((c.params / seed_params for c in ok), default=float("nan")),
    }


def _retrain(run_dir: Path, trial: int, times: int) -> list[float]:
    """Test accuracy of `trial`'s graph retrained `times` times with fresh training seeds."""
    from alphanas.ir import serialize
    from alphanas.nas.config import SearchConfig
    from alphanas.nas.evolve import dataset_of
    from alphanas.nas.store import RunStore
    from alphanas.nas.train import train

    store = RunStore.open(run_dir, create=False)
    cfg = SearchConfig(**store.config())
    g = serialize.loads(store.get(trial).graph_json)
    store.close()
    data = dataset_of(cfg)
    out = []
    for r in range(times):
        res = train(g, data, replace(cfg.train_config(), seed=10_000 + r))
        out.append(float(res.test_accuracy) if res.test_accuracy is not None else float("nan"))
    return out


def run_trained(datasets: Sequence[str], arms: Sequence[str], seeds: int, base: Profile,
                out: Path, data_path: str | None = None, progress: Any = None,
                quick: bool = False) -> dict[str, Any]:
    """Every (dataset, arm, seed) search, then the retrains; returns the summary dict (also
    written as trained_summary.json)."""
    from alphanas.nas.config import SearchConfig
    from alphanas.nas.evolve import dataset_of

    for a in arms:
        if a not in ARMS:
            raise BenchError(f"--arms: unknown trained-track arm {a!r}; expected {', '.join(ARMS)}")
    summary: dict[str, Any] = {}
    total, done = len(datasets) * len(arms) * seeds, 0
    for d in datasets:
        p = profile_for(base, d, quick)
        n_train = len(dataset_of(SearchConfig(dataset=d, data_path=data_path,
                                              data_limit=p.data_limit)).y_train)
        per: dict[str, list[dict[str, Any]]] = {}
        for a in arms:
            for s in range(seeds):
                run_dir = out / "trained" / d / a / f"seed{s}"
                cands = run_one(d, data_path, a, s, p, run_dir)
                m = metrics(cands, p, n_train)
                m["seed"], m["run_dir"] = s, str(run_dir)
                per.setdefault(a, []).append(m)
                done += 1
                if progress:
                    progress(done, total)
        retrains: dict[str, Any] = {}
        for a, ms in per.items():
            best = max((m for m in ms if m["best_trial"] is not None), key=lambda m: m["best_val"],
                       default=None)
            if best is not None and p.retrain:
                accs = _retrain(Path(best["run_dir"]), best["best_trial"], p.retrain)
                retrains[a] = {"run": best["run_dir"], "trial": best["best_trial"], "test": accs}
        summary[d] = {"runs": per, "retrain": retrains, "n_train": n_train,
                      "profile": {**p.__dict__, "train": dict(p.train)}}
    from alphanas.ir.serialize import atomic_write_text

    atomic_write_text(out / "trained_summary.json", json.dumps(summary, indent=1, default=float))
    return summary


def markdown(summary: dict[str, Any]) -> str:
    from alphanas.nas.bench.stats import bootstrap_ci, paired_test

    lines = []
    for d, s in summary.items():
        runs = s["runs"]
        seed_accs = [a for ms in runs.values() for m in ms for a in m["seed_copies_acc"]]
        within = [np.std(m["seed_copies_acc"], ddof=1) for ms in runs.values() for m in ms
                  if len(m["seed_copies_acc"]) > 1]
        lines += [f"### trained track: {d} ({s['n_train']} training images)", "",
                  f"Noise floor: the seed model's test accuracy over {len(seed_accs)} trainings "
                  f"is {np.mean(seed_accs):.4f} ± {np.std(seed_accs, ddof=1):.4f} (sd); within "
                  f"one run (3 copies) the median sd is {np.median(within):.4f}.", "",
                  "| arm | runs | HV (mean, 95% CI) | params at seed acc (x seed) | best test acc | "
                  "failed | rejected | duplicate | outside training (s) | largest child (x params) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for a, ms in runs.items():
            hv = [m["hv"] for m in ms]
            lo, hi = bootstrap_ci(hv)
            pas = [m["params_at_seed_acc"] for m in ms]
            lines.append(
                f"| {a} | {len(ms)} | {np.mean(hv):.5f} [{lo:.5f}, {hi:.5f}] | "
                f"{np.nanmedian(pas) if not np.all(np.isnan(pas)) else float('nan'):.2f} (median) | "
                f"{np.nanmean([m['best_test'] for m in ms]):.4f} | "
                f"{np.mean([m['failed'] for m in ms]):.0%} | {np.mean([m['rejected'] for m in ms]):.0%} | "
                f"{np.mean([m['duplicate'] for m in ms]):.0%} | "
                f"{np.mean([m['outside_training_s'] for m in ms]):.0f} | "
                f"{np.nanmax([m['max_child_params_x'] for m in ms]):.2f} |")
        lines += ["", "| pair (paired by seed) | HV diff | 95% CI | Wilcoxon p | wins |", "|---|---|---|---|---|"]
        for a, b in (("synth-pareto", "random-pareto"), ("synth-aging", "random-aging"),
                     ("synth-pareto", "sample"), ("random-pareto", "sample")):
            if a in runs and b in runs:
                n = min(len(runs[a]), len(runs[b]))
                t = paired_test([m["hv"] for m in runs[a][:n]], [m["hv"] for m in runs[b][:n]])
                lines.append(f"| {a} vs {b} | {t['diff']:+.5f} | [{t['lo']:+.5f}, {t['hi']:+.5f}] | "
                             f"{t['p']:.2g} | {t['wins']:.0%} |")
        if s["retrain"]:
            lines += ["", "| arm | selected (run, trial) | retrained test acc (mean ± sd) |", "|---|---|---|"]
            for a, r in s["retrain"].items():
                lines.append(f"| {a} | {Path(r['run']).name}, {r['trial']} | "
                             f"{np.mean(r['test']):.4f} ± {np.std(r['test'], ddof=1):.4f} |")
        lines.append("")
    return "\n".join(lines)


def csv_text(summary: dict[str, Any]) -> str:
    from alphanas.nas.bench.report import table_csv

    keys = ("seed", "trials", "hv", "params_at_seed_acc", "best_val", "best_test",
            "seed_test_acc", "failed", "rejected", "duplicate", "outside_training_s", "compute")
    rows = [[d, a, *(m[k] for k in keys)] for d, s in summary.items()
            for a, ms in s["runs"].items() for m in ms]
    return table_csv(["dataset", "arm", *keys], rows)


def curves_png(summary: dict[str, Any], dataset: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alphanas.nas.bench.report import save_plot

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for a, ms in summary[dataset]["runs"].items():
        top = max(m["compute"] for m in ms) or 1.0
        grid = np.linspace(0, top, 50)
        ys = []
        for m in ms:
            xs = np.array([c[0] for c in m["curve"]])
            vs = np.array([np.nan if c[1] is None else c[1] for c in m["curve"]], float)
            idx = np.searchsorted(xs, grid, side="right") - 1
            ys.append(np.where(idx >= 0, vs[np.clip(idx, 0, None)], np.nan))
        y = np.array(ys)
        with warnings.catch_warnings():  # before a run's first trained model there is no best
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, lo, hi = np.nanmean(y, 0), np.nanmin(y, 0), np.nanmax(y, 0)
        ax.plot(grid, mean, label=f"{a} (n={len(ms)})")
        ax.fill_between(grid, lo, hi, alpha=0.15)
    ax.set_xlabel("training compute spent (FLOPs)")
    ax.set_ylabel("test accuracy of the best-validation model")
    ax.set_title(f"trained track, {dataset}: best so far (mean; band: min-max over seeds)")
    return save_plot(fig, ax, path)


def main_trained(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from alphanas.ir.serialize import atomic_write_text

    p = PROFILES["quick" if args.quick else "full"]
    if args.seeds:
        p = replace(p, seeds=args.seeds)
    if args.budget:
        kind, _, k = args.budget.partition(":")
        try:
            x = float(k)
        except ValueError:
            x = -1.0
        if kind != "seedx" or not x > 0:
            raise BenchError(f"--budget: the trained track takes seedx:K (K > 0 times the seed "
                             f"model's training compute), got {args.budget!r}")
        p = replace(p, budget_x=x)
    datasets = args.datasets or ("fashion_mnist",)
    arms = args.arms or tuple(ARMS)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("trained runs", total=None)
        summary = run_trained(datasets, arms, p.seeds, p, out, args.data_path,
                              lambda d, t: bar.update(task, completed=d, total=t), args.quick)
    md = markdown(summary)
    atomic_write_text(out / "trained_summary.md", md)
    atomic_write_text(out / "trained_summary.csv", csv_text(summary))
    for d in summary:
        curves_png(summary, d, out / f"trained_curves_{d}.png")
    print(md)
    print(f"wrote trained_summary.md, trained_summary.csv, trained_summary.json and "
          f"trained_curves_*.png in {out}")
    return 0
