"""Statistics for the NAS benchmark suite: hypervolume, bootstrap intervals, paired tests and
the locality of the NB201 space. Every random choice takes an explicit seed."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["bootstrap_ci", "hv_fraction", "hypervolume", "locality", "paired_test"]


def hypervolume(acc: np.ndarray, cost: np.ndarray, ref_acc: float, ref_cost: float) -> float:
    """Area dominated by the points (maximise acc, minimise cost) inside the reference box
    [ref_acc, ...] x [..., ref_cost]; points outside the box add nothing."""
    acc, cost = np.asarray(acc, float), np.asarray(cost, float)
    keep = (acc > ref_acc) & (cost < ref_cost)
    if not keep.any():
        return 0.0
    a, c = acc[keep], cost[keep]
    order = np.lexsort((-a, c))        # by cost ascending, best accuracy first on ties
    area, best = 0.0, ref_acc
    for i in order:
        if a[i] > best:  # a horizontal strip from best to a[i], from c[i] to the reference
            area += (a[i] - best) * (ref_cost - c[i])
            best = a[i]
    return float(area)


@functools.lru_cache(maxsize=8)
def _table_front(table_id: int, acc_bytes: bytes, cost_bytes: bytes) -> tuple[float, float, float]:
    acc = np.frombuffer(acc_bytes)
    cost = np.frombuffer(cost_bytes)
    ref_acc, ref_cost = float(np.median(acc)), float(cost.max()) * 1.001
    return hypervolume(acc, cost, ref_acc, ref_cost), ref_acc, ref_cost


def hv_fraction(table: Any, indices: Sequence[int] | np.ndarray) -> float:
    """Hypervolume of the (mean accuracy, params) front of the queried cells over the whole
    table's. Reference point: the table's median accuracy and 1.001 x its largest params (with
    the worst accuracy, ~10 %, any decent cell would cover > 0.95 of the front)."""
    acc = np.ascontiguousarray(table.mean_acc, float)
    cost = np.ascontiguousarray(table.params, float)
    total, ref_acc, ref_cost = _table_front(id(table), acc.tobytes(), cost.tobytes())
    idx = np.asarray(indices, int)
    if total <= 0 or len(idx) == 0:
        return 0.0
    return hypervolume(acc[idx], cost[idx], ref_acc, ref_cost) / total


def bootstrap_ci(x: Sequence[float], seed: int = 0, n: int = 10_000,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean."""
    a = np.asarray(x, float)
    if len(a) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, len(a), size=(n, len(a)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_test(a: Sequence[float], b: Sequence[float], seed: int = 0) -> dict[str, float]:
    """Paired comparison of two arms over the same seeds: mean difference a - b with a bootstrap
    95% interval, the Wilcoxon signed-rank p-value (two-sided; 1.0 when every pair ties), and
    how often a beats / ties b."""
    from scipy.stats import wilcoxon

    x, y = np.asarray(a, float), np.asarray(b, float)
    d = x - y
    lo, hi = bootstrap_ci(d, seed)
    nz = d[np.abs(d) > 1e-9]
    p = 1.0 if len(nz) == 0 else float(wilcoxon(nz).pvalue)
    return {"diff": float(d.mean()), "lo": lo, "hi": hi, "p": p,
            "wins": float((d > 1e-9).mean()), "ties": float((np.abs(d) <= 1e-9).mean())}


def locality(table: Any, pairs: int = 200_000, seed: int = 0) -> dict[str, Any]:
    """Kendall's tau between distance and |delta accuracy| over random pairs of distinct cells:
    property distance (|delta depth| + lattice steps between the mixing matrices, our
    properties at the first stage's context) against edit distance (edges whose op differs),
    and their sum. Larger tau: nearby cells (in that distance) have closer accuracy."""
    from scipy.stats import kendalltau

    from alphanas.nas.bench.space import signature
    from alphanas.nas.bench.table import N_CELLS, all_keys

    keys = all_keys()
    sig = [signature(k) for k in keys]
    depth = np.array([s[0] for s in sig], float)
    mix = np.array([np.array(s[1], float).ravel() for s in sig])
    digits = np.array([[int(c) for c in k] for k in keys])
    rng = np.random.default_rng(seed)
    i = rng.integers(0, N_CELLS, pairs)
    j = rng.integers(0, N_CELLS, pairs)
    keep = i != j
    i, j = i[keep], j[keep]
    dacc = np.abs(table.mean_acc[i] - table.mean_acc[j])
    prop = np.abs(depth[i] - depth[j]) + np.abs(mix[i] - mix[j]).sum(axis=1)
    edit = (digits[i] != digits[j]).sum(axis=1).astype(float)
    out: dict[str, Any] = {"pairs": int(len(i)), "seed": seed}
    for name, dist in (("property", prop), ("edit", edit), ("property+edit", prop + edit)):
        tau, p = kendalltau(dist, dacc)
        out[name] = {"tau": float(tau), "p": float(p)}
    # among cells one edit apart, does a property change predict a larger accuracy change?
    one = edit == 1
    if one.any():
        tau, p = kendalltau(prop[one], dacc[one])
        out["property | edit=1"] = {"tau": float(tau), "p": float(p), "pairs": int(one.sum())}
    return out
