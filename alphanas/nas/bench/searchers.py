"""Searchers on a tabular NAS-Bench-201 table, all under one budget accounting.

Budget (`Budget`): "queries" counts table queries; "time" sums simulated training time, as
NAS-Bench-201's searchers do (its `train_and_eval`: the cost of a query is the training time of
the fidelity the searcher sees). NAS-Bench-201's published searchers saw the 12-epoch schedule's
validation accuracy (`hp="12"`) and paid its training time; the table here has the 200-epoch
schedule only (see `table`), so a query costs `train_time * time_scale` with
`time_scale = 12 / 200` by default: the 12-epoch schedule runs the same network and batches
for 12 of the 200 epochs. A query whose cost would overrun the time budget is not made and ends
the search (NAS-Bench-201's R_EA.py does the same).

Signal (`signal`): what a query returns. "seed" (default): the 200-epoch validation accuracy of
one of the cell's training seeds drawn at random per query, like NAS-Bench-201's
`is_random=True`; "mean": the mean over seeds (noise-free). The searcher's answer is the cell
with the best signal seen; it is reported by its mean 200-epoch validation accuracy over seeds
(NAS-Bench-201 reports the 200-epoch accuracy of the selected cell).

Every searcher takes a `numpy.random.Generator`; the same seed gives the same run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alphanas.nas.bench.table import N_CELLS, Table, all_keys

__all__ = ["ARMS", "Budget", "BudgetSpent", "Run", "TabularBench", "run_arm"]

_KEYS = all_keys()


class BudgetSpent(Exception):
    """Raised by `TabularBench.query` when the budget cannot pay for the query."""


@dataclass(frozen=True)
class Budget:
    kind: str = "time"           # "time" (simulated seconds) or "queries"
    limit: float = 12_000.0
    time_scale: float = 12 / 200

    def __post_init__(self) -> None:
        if self.kind not in ("time", "queries"):
            raise ValueError(f"budget kind must be 'time' or 'queries', got {self.kind!r}")
        if not (self.limit > 0 and self.time_scale > 0):
            raise ValueError(f"budget limit and time_scale must be > 0, got {self.limit}, "
                             f"{self.time_scale}")

    def text(self) -> str:
        if self.kind == "queries":
            return f"queries:{int(self.limit)}"
        return f"time:{self.limit:g}" + (f"@{self.time_scale:g}" if self.time_scale != 12 / 200 else "")


@dataclass
class TabularBench:
    """One run's access to the table: charges every query, records the history."""

    table: Table
    budget: Budget
    rng: np.random.Generator
    signal: str = "seed"
    spent: float = 0.0
    queries: int = 0
    history: list[tuple[float, int, float]] = field(default_factory=list)  # (spent, index, signal)
    best_index: int = -1
    best_signal: float = -np.inf

    def __post_init__(self) -> None:
        if self.signal not in ("seed", "mean"):
            raise ValueError(f"signal must be 'seed' or 'mean', got {self.signal!r}")
        self._seeds = [np.flatnonzero(~np.isnan(r)) for r in self.table.val_acc] \
            if np.isnan(self.table.val_acc).any() else None

    def cost(self, i: int) -> float:
        return 1.0 if self.budget.kind == "queries" else \
            float(self.table.train_time[i]) * self.budget.time_scale

    def query(self, key: str) -> float:
        """The signal of cell `key`, paid from the budget; raises `BudgetSpent` when it can't."""
        i = int(key, 5)
        c = self.cost(i)
        if self.spent + c > self.budget.limit + 1e-9:
            raise BudgetSpent
        self.spent += c
        self.queries += 1
        row = self.table.val_acc[i]
        if self.signal == "mean":
            s = float(np.nanmean(row))
        else:
            choices = self._seeds[i] if self._seeds is not None else range(len(row))
            s = float(row[choices[int(self.rng.integers(len(choices)))]])
        self.history.append((self.spent, i, s))
        if s > self.best_signal:
            self.best_signal, self.best_index = s, i
        return s


def random_key(rng: np.random.Generator) -> str:
    return _KEYS[int(rng.integers(N_CELLS))]


# -- searchers -----------------------------------------------------------------------------------


def random_search(bench: TabularBench, rng: np.random.Generator) -> dict[str, Any]:
    """Uniform samples with replacement until the budget is spent (NAS-Bench-201's RS)."""
    try:
        while True:
            bench.query(random_key(rng))
    except BudgetSpent:
        return {}


def evolution(bench: TabularBench, rng: np.random.Generator,
              mutate: Callable[[str, np.random.Generator], Any], population: int = 10,
              sample: int = 3) -> dict[str, Any]:
    """Regularized (aging) evolution, Real et al. 2019, as in NAS-Bench-201's R_EA.py: a random
    population, then: sample `sample`, mutate the best, evaluate, push, drop the oldest."""
    from collections import deque

    pop: deque[tuple[str, float]] = deque()
    info: dict[str, Any] = {"mutations": 0, "fallbacks": 0, "same": 0}
    try:
        while len(pop) < population:
            k = random_key(rng)
            pop.append((k, bench.query(k)))
        while True:
            picks = rng.choice(len(pop), size=min(sample, len(pop)), replace=False)
            parent = max((pop[int(i)] for i in picks), key=lambda p: p[1])[0]
            out = mutate(parent, rng)
            child = out if isinstance(out, str) else out.child
            info["mutations"] += 1
            if not isinstance(out, str) and out.fallback:
                info["fallbacks"] += 1
            if child == parent:
                info["same"] += 1
            pop.append((child, bench.query(child)))
            pop.popleft()
    except BudgetSpent:
        return info


def local_search(bench: TabularBench, rng: np.random.Generator) -> dict[str, Any]:
    """Local search (White et al. 2021): from a random cell, query its 24 neighbours in random
    order, move to the best if it beats the centre, else restart from a new random cell. A cell
    already queried is not queried (or paid) again."""
    from alphanas.nas.bench.space import neighbours

    known: dict[str, float] = {}

    def q(k: str) -> float:
        if k not in known:
            known[k] = bench.query(k)
        return known[k]

    info = {"restarts": 0}
    try:
        while True:
            centre = random_key(rng)
            best = q(centre)
            while True:
                nb = neighbours(centre)
                order = rng.permutation(len(nb))
                scores = [(q(nb[int(j)]), nb[int(j)]) for j in order]
                top, key = max(scores)
                if top <= best:
                    break
                centre, best = key, top
            info["restarts"] += 1
    except BudgetSpent:
        return info


def _alpha(settings: Any = None) -> Callable[[str, np.random.Generator], Any]:
    from alphanas.nas.bench.space import alpha_mutation

    return lambda k, rng: alpha_mutation(k, rng, settings)


def _random_mut(k: str, rng: np.random.Generator) -> str:
    from alphanas.nas.bench.space import random_mutation

    return random_mutation(k, rng)


def _nb201_mut(k: str, rng: np.random.Generator) -> str:
    from alphanas.nas.bench.space import nb201_mutation

    return nb201_mutation(k, rng)


ARMS: dict[str, str] = {
    "rs": "random search (NB201's RS)",
    "rea": "regularized evolution, NB201's one-edge mutation (population 10, sample 3)",
    "ls": "local search over one-edge neighbours, random restarts",
    "alphanas": "regularized evolution, αNAS property-guided mutation (sketch synthesis)",
    "random_mut": "regularized evolution, property-blind mutation of the same edge sets",
}


@dataclass(frozen=True)
class Run:
    """The outcome of one (arm, seed) run."""

    arm: str
    seed: int
    final_index: int
    final_acc: float        # mean 200-epoch validation accuracy of the selected cell
    regret: float           # optimum - final_acc
    queries: int
    spent: float
    hv_fraction: float      # hypervolume of the queried cells' (acc, params) front / the table's
    curve: list[tuple[float, float]]   # (spent, mean acc of the incumbent) after each query
    info: dict[str, Any]


def run_arm(table: Table, arm: str, seed: int, budget: Budget, signal: str = "seed",
            population: int = 10, sample: int = 3) -> Run:
    """One run of `arm` with `seed` (arms are paired by seed: the same seed number)."""
    from alphanas.nas.bench.stats import hv_fraction

    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; expected one of {', '.join(ARMS)}")
    rng = np.random.default_rng([seed, 201])
    bench = TabularBench(table, budget, np.random.default_rng([seed, 202]), signal)
    if arm == "rs":
        info = random_search(bench, rng)
    elif arm == "ls":
        info = local_search(bench, rng)
    else:
        mutate = {"rea": _nb201_mut, "random_mut": _random_mut}.get(arm) or _alpha()
        info = evolution(bench, rng, mutate, population, sample)
    mean = table.mean_acc
    curve, best_s, best_i = [], -np.inf, -1
    for spent, i, s in bench.history:
        if s > best_s:
            best_s, best_i = s, i
        curve.append((round(spent, 3), round(float(mean[best_i]), 4)))
    final = float(mean[bench.best_index]) if bench.best_index >= 0 else float("nan")
    seen = np.unique([i for _, i, _ in bench.history])
    return Run(arm, seed, int(bench.best_index), final, table.optimum - final, bench.queries,
               bench.spent, hv_fraction(table, seen), curve, info)
