"""Shared timing helpers of the benchmark scripts (run as `python benchmarks/<name>.py`)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any], reps: int, before: Callable[[], None] = lambda: None) -> list[float]:
    """Wall-clock milliseconds of `reps` calls of `fn` (`before` runs untimed ahead of each)."""
    out = []
    for _ in range(reps):
        before()
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    """Median, min, max and quartiles of a list of milliseconds."""
    q = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0]] * 3
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms),
            "q1_ms": q[0], "q3_ms": q[2], "reps": len(ms)}
