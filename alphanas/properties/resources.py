"""The resources property: params, FLOPs and peak live activations, under budgets.

Params and FLOPs are those of `alphanas.ir.analysis.analyze` (FLOPs definition in
`alphanas.ir.rules`), summed over the subject's ops.

Peak activation (elements): run the ops in the graph's topological order; at each step the live
tensors are the graph inputs and op outputs that are still to be read by a later op or are graph
outputs, plus the op's own inputs and output. The peak is the largest total element count of
live tensors over the steps (and before the first step: all inputs). `param` outputs are weights,
not activations, and count 0. A chain's peak is thus its largest input+output pair.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from alphanas.errors import SpecError
from alphanas.ir.attrs import OpKind, Shape
from alphanas.ir.graph import Graph
from alphanas.properties.base import Subject, Target, Violation

__all__ = ["ResourceTarget", "Resources", "infer_resources", "peak_live_activation"]


@dataclass(frozen=True, slots=True)
class Resources:
    """What a subject costs: params, FLOPs (inference, batch included), peak live activations."""

    params: int
    flops: int
    peak_activation: int


def peak_live_activation(graph: Graph, shapes: Mapping[str, Shape]) -> int:
    """The peak total elements of live tensors over the topological execution order."""
    n = len(graph.ops)
    last_use: dict[str, int] = {}
    for k, op in enumerate(graph.ops):
        for i in op.inputs:
            last_use[i] = k
    for o in graph.outputs:
        last_use[o] = n
    params = {op.name for op in graph.ops if op.kind is OpKind.PARAM}

    def size(t: str) -> int:
        return 0 if t in params else math.prod(shapes[t])

    free_at: dict[int, list[str]] = {}
    for t, k in last_use.items():
        free_at.setdefault(k, []).append(t)
    peak = sum(size(t) for t in graph.input_names)
    live = sum(size(t) for t in graph.input_names if t in last_use)
    for k, op in enumerate(graph.ops):
        live += size(op.name)
        peak = max(peak, live)
        if op.name not in last_use:
            live -= size(op.name)
        live -= sum(size(t) for t in free_at.get(k, ()))
    return peak


def infer_resources(subject: Subject) -> Resources:
    """Params, FLOPs and peak live activations of the subject's ops at its input shapes."""
    a = subject.analysis
    return Resources(a.params, a.flops, peak_live_activation(subject.graph, a.shapes))


_KEYS = {"max_params": "params", "max_flops": "flops", "max_peak_activation": "peak_activation"}


@dataclass(frozen=True)
class ResourceTarget(Target):
    """Upper bounds (budgets); None = unconstrained."""

    name: ClassVar[str] = "resources"
    max_params: int | None = None
    max_flops: int | None = None
    max_peak_activation: int | None = None

    def budgets(self) -> list[tuple[str, int]]:
        """(budget key, bound) for every set budget."""
        return [(f.name, getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) is not None]

    @classmethod
    def read_off(cls, subject: Subject) -> ResourceTarget:
        r = infer_resources(subject)
        return cls(r.params, r.flops, r.peak_activation)

    def check(self, subject: Subject) -> list[Violation]:
        """A violation per exceeded budget; `amount` is the overshoot."""
        r = infer_resources(subject)
        out = []
        for key, b in self.budgets():
            c = getattr(r, _KEYS[key])
            if c > b:
                out.append(Violation("resources", _KEYS[key], f"<= {b:,}", c, float(c - b)))
        return out

    def distance(self, subject: Subject) -> float:
        """Sum over budgets of max(0, c/b - 1) (c itself for a zero budget)."""
        r = infer_resources(subject)
        total = 0.0
        for key, b in self.budgets():
            c = getattr(r, _KEYS[key])
            total += float(c) if b == 0 else max(0.0, c / b - 1)
        return total

    def mutate(self, seed: int, **options: Any) -> ResourceTarget:
        """Each budget times a factor drawn log-uniformly from [1/`factor`, `factor`] (2)."""
        rng = np.random.default_rng(seed)
        spread = math.log(float(options.get("factor", 2.0)))
        new = {key: max(0, round(b * math.exp(rng.uniform(-spread, spread))))
               for key, b in self.budgets()}
        return ResourceTarget(**new)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.budgets())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> ResourceTarget:
        """From {"max_params": n, "max_flops": n, "max_peak_activation": n} (any non-empty subset)."""
        if not isinstance(data, Mapping):
            raise SpecError(f"{where}: expected a table, got {data!r}")
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise SpecError(f"{where}: unknown key '{unknown[0]}' (accepted: {', '.join(sorted(_KEYS))})")
        if not data:
            raise SpecError(f"{where}: no budget given (accepted: {', '.join(sorted(_KEYS))})")
        return cls(**{k: _budget(v, f"{where}.{k}") for k, v in data.items()})


def _budget(v: Any, where: str) -> int:
    whole_float = isinstance(v, float) and math.isfinite(v) and v.is_integer()
    if (isinstance(v, int) and not isinstance(v, bool) or whole_float) and v >= 0:
        return int(v)
    shown = f'"{v}"' if isinstance(v, str) else repr(v)
    raise SpecError(f"{where}: expected a non-negative whole number (e.g. 100000 or 2e7), got {shown}")
