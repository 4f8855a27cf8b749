"""Parent selection: the paper's soft selection near the Pareto front, and regularized (aging)
evolution with tournaments. Both read only finished candidates and take an explicit RNG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Point", "aging_parent", "front_distance", "pareto_front", "pareto_parent"]


@dataclass(frozen=True)
class Point:
    """A finished candidate as selection sees it: higher accuracy and lower cost are better."""

    trial: int
    accuracy: float
    cost: float


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """The non-dominated points (no other is at least as accurate and at most as costly, and
    strictly better in one), sorted by cost."""
    front = []
    for p in points:
        dominated = any(q.accuracy >= p.accuracy and q.cost <= p.cost and
                        (q.accuracy > p.accuracy or q.cost < p.cost) for q in points)
        if not dominated:
            front.append(p)
    return sorted(front, key=lambda p: (p.cost, -p.accuracy, p.trial))


def front_distance(points: Sequence[Point]) -> dict[int, float]:
    """Per trial, the distance to the front in (accuracy, log10 cost) normalised by the ranges:
    0 on the front."""
    front = pareto_front(points)
    accs = [p.accuracy for p in points]
    logc = [math.log10(max(p.cost, 1.0)) for p in points]
    sa = (max(accs) - min(accs)) or 1.0
    sc = (max(logc) - min(logc)) or 1.0

    def d(p: Point) -> float:
        c = math.log10(max(p.cost, 1.0))
        return min(math.hypot(max(0.0, f.accuracy - p.accuracy) / sa,
                              max(0.0, c - math.log10(max(f.cost, 1.0))) / sc) for f in front)

    return {p.trial: d(p) for p in points}


def pareto_parent(points: Sequence[Point], rng: np.random.Generator, top_k: int = 10,
                  temperature: float = 0.1) -> int:
    """Soft selection among the `top_k` candidates closest to the front (weights
    exp(-distance / temperature)); ties broken by trial number."""
    dist = front_distance(points)
    ranked = sorted(points, key=lambda p: (dist[p.trial], p.trial))[:top_k]
    w = np.array([math.exp(-dist[p.trial] / temperature) for p in ranked])
    return ranked[int(rng.choice(len(ranked), p=w / w.sum()))].trial


def aging_parent(points: Sequence[Point], rng: np.random.Generator, population: int,
                 sample: int) -> int:
    """Regularized evolution: the population is the newest `population` candidates; the parent
    is the most accurate of `sample` drawn without replacement."""
    pop = sorted(points, key=lambda p: p.trial)[-population:]
    idx = rng.choice(len(pop), size=min(sample, len(pop)), replace=False)
    return max((pop[i] for i in idx), key=lambda p: (p.accuracy, -p.trial)).trial
