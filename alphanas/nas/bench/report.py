"""Summaries of stored NB201 runs: Markdown and CSV tables, paired tests, curves (PNG)."""

from __future__ import annotations

import csv
import io
import itertools
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from alphanas.nas.bench.stats import bootstrap_ci, paired_test

__all__ = ["PUBLISHED", "curves_png", "summarize", "write_summary"]

PUBLISHED = {
    # NAS-Bench-201 (Dong & Yang, ICLR 2020), Table 5, validation accuracy (mean ± sd) of the
    # non-weight-sharing searchers at about 12,000 s of simulated 12-epoch training; the optimum
    # is the best mean over seeds of the 200-epoch validation accuracy. CIFAR-10 is its
    # "cifar10-valid" split. The figures are as quoted in the project's issue; the protocol
    # (12-epoch signal of a random seed, cost = 12-epoch train time, population 10, sample 3)
    # is the official code's (D-X-Y/AutoDL-Projects, exps/algos/R_EA.py, random_wo_share.py).
    "cifar10": {"rea": (91.19, 0.31), "rs": (90.93, 0.36), "optimum": 91.61},
}


def summarize(runs: Sequence[dict[str, Any]], optimum: dict[str, float],
              seed: int = 0) -> dict[str, Any]:
    """Per dataset: per-arm statistics and paired tests (paired by seed, common seeds only)."""
    out: dict[str, Any] = {}
    for d in sorted({r["dataset"] for r in runs}):
        rows = [r for r in runs if r["dataset"] == d]
        arms = sorted({r["arm"] for r in rows}, key=_arm_order)
        by = {a: {r["seed"]: r for r in rows if r["arm"] == a} for a in arms}
        stats = {}
        for a in arms:
            f = np.array([r["final_acc"] for r in by[a].values()])
            g = np.array([r["regret"] for r in by[a].values()])
            stats[a] = {"n": len(f), "mean": float(f.mean()), "sd": float(f.std(ddof=1)) if len(f) > 1 else 0.0,
                        "ci": bootstrap_ci(f, seed), "regret": float(g.mean()),
                        "regret_ci": bootstrap_ci(g, seed),
                        "queries": float(np.mean([r["queries"] for r in by[a].values()])),
                        "hv": float(np.mean([r["hv_fraction"] for r in by[a].values()])),
                        "hv_ci": bootstrap_ci([r["hv_fraction"] for r in by[a].values()], seed),
                        "found_optimum": float(np.mean([r["regret"] <= 1e-9 for r in by[a].values()]))}
        tests = {}
        for a, b in itertools.combinations(arms, 2):
            common = sorted(set(by[a]) & set(by[b]))
            if len(common) >= 2:
                t = paired_test([by[a][s]["final_acc"] for s in common],
                                [by[b][s]["final_acc"] for s in common], seed)
                t["n"] = len(common)
                tests[f"{a} vs {b}"] = t
        out[d] = {"optimum": optimum.get(d), "arms": stats, "tests": tests}
    return out


_ORDER = ("rs", "rea", "ls", "random_mut", "alphanas")


def _arm_order(a: str) -> int:
    return _ORDER.index(a) if a in _ORDER else len(_ORDER)


def markdown(summary: dict[str, Any], budget: str, signal: str,
             locality: dict[str, Any] | None = None) -> str:
    lines = [f"NB201 track: budget {budget}, signal {signal}; validation accuracy (%) of the "
             "selected cell, mean over its training seeds.", ""]
    for d, s in summary.items():
        pub = PUBLISHED.get(d, {})
        lines += [f"### {d} (optimum {s['optimum']:.2f})", "",
                  "| arm | runs | mean ± sd | 95% CI | regret | queries | HV fraction | optimum found | published |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for a, st in s["arms"].items():
            p = pub.get(a)
            lines.append(f"| {a} | {st['n']} | {st['mean']:.2f} ± {st['sd']:.2f} | "
                         f"[{st['ci'][0]:.2f}, {st['ci'][1]:.2f}] | {st['regret']:.2f} | "
                         f"{st['queries']:.0f} | {st['hv']:.3f} | {st['found_optimum']:.0%} | "
                         f"{f'{p[0]:.2f} ± {p[1]:.2f}' if p else ''} |")
        lines += ["", "| pair (paired by seed) | mean diff | 95% CI | Wilcoxon p | wins | ties |",
                  "|---|---|---|---|---|---|"]
        for k, t in s["tests"].items():
            lines.append(f"| {k} | {t['diff']:+.3f} | [{t['lo']:+.3f}, {t['hi']:+.3f}] | "
                         f"{t['p']:.2g} | {t['wins']:.0%} | {t['ties']:.0%} |")
        lines.append("")
    if locality:
        lines += ["### Locality (Kendall τ between distance and |Δ accuracy|)", "",
                  "| dataset | property τ | edit τ | property+edit τ | property τ at edit 1 |",
                  "|---|---|---|---|---|"]
        for d, loc in locality.items():
            lines.append(f"| {d} | {loc['property']['tau']:.3f} | {loc['edit']['tau']:.3f} | "
                         f"{loc['property+edit']['tau']:.3f} | "
                         f"{loc.get('property | edit=1', {}).get('tau', float('nan')):.3f} |")
        lines.append("")
    return "\n".join(lines)


def table_csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV text of a header and rows."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def csv_text(summary: dict[str, Any]) -> str:
    rows = [[d, a, st["n"], f"{st['mean']:.4f}", f"{st['sd']:.4f}", f"{st['ci'][0]:.4f}",
             f"{st['ci'][1]:.4f}", f"{st['regret']:.4f}", f"{st['queries']:.1f}",
             f"{st['hv']:.4f}", f"{st['found_optimum']:.4f}"]
            for d, s in summary.items() for a, st in s["arms"].items()]
    return table_csv(["dataset", "arm", "runs", "mean", "sd", "ci_lo", "ci_hi", "regret",
                      "queries", "hv_fraction", "found_optimum"], rows)


def curves_png(runs: Sequence[dict[str, Any]], dataset: str, limit: float, path: Path,
               points: int = 100) -> Path:
    """Best-so-far (mean accuracy of the incumbent) against budget, mean over seeds with a
    95% bootstrap band of the mean, one line per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, limit, points)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rows = [r for r in runs if r["dataset"] == dataset]
    for a in sorted({r["arm"] for r in rows}, key=_arm_order):
        ys = []
        for r in rows:
            if r["arm"] != a or not r["curve"]:
                continue
            spent = np.array([c[0] for c in r["curve"]])
            acc = np.array([c[1] for c in r["curve"]])
            idx = np.searchsorted(spent, grid, side="right") - 1
            ys.append(np.where(idx >= 0, acc[np.clip(idx, 0, None)], np.nan))
        if not ys:
            continue
        y = np.array(ys)
        rng = np.random.default_rng(0)
        with warnings.catch_warnings():  # before a run's first query its incumbent is NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(y, axis=0)
            boot = np.array([np.nanmean(y[rng.integers(0, len(y), len(y))], axis=0)
                             for _ in range(300)])
            lo, hi = np.nanquantile(boot, [0.025, 0.975], axis=0)
        ax.plot(grid, mean, label=f"{a} (n={len(y)})")
        ax.fill_between(grid, lo, hi, alpha=0.2)
    ax.set_xlabel("budget spent (simulated seconds)" if limit > 1000 else "budget spent")
    ax.set_ylabel("validation accuracy of the incumbent (%)")
    ax.set_title(f"NAS-Bench-201 {dataset}: best so far (mean, 95% band)")
    finite = [r["final_acc"] for r in rows if np.isfinite(r["final_acc"])]
    if finite:
        ax.set_ylim(np.quantile(finite, 0.02) - 1.0, max(finite) + 0.2)
    return save_plot(fig, ax, path)


def save_plot(fig: Any, ax: Any, path: Path) -> Path:
    """Legend, grid, tight layout, PNG at `path`; the figure is closed."""
    import matplotlib.pyplot as plt

    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_summary(out: Path, text_md: str, text_csv: str) -> tuple[Path, Path]:
    from alphanas.ir.serialize import atomic_write_text

    md, cs = out / "summary.md", out / "summary.csv"
    atomic_write_text(md, text_md)
    atomic_write_text(cs, text_csv)
    return md, cs
