"""The depth property: alternations of linear and non-linear ops between inputs and outputs.

Ops are classified by `opdef(kind).depth` (linear / non-linear / transparent). The depth from an
input to an output is the largest number of linear<->non-linear switches on any path, where the
input counts as produced by a non-linear op, so a path that starts with a linear op counts 1 for
its first run: the paper's CIFAR CNN is [conv conv] [relu] [pool conv] [relu]
[pool flatten dense] [relu] [dense] = 7.

Decisions:
- Only data inputs are edges: a size read off another tensor (`dim_of`) is no path, and an op
  without inputs (`param`) starts none.
- A pair with no path has no depth: it is absent from `infer_depth`, and a target that names it
  (or applies a default to every pair) is violated ("no path", distance 1 for that pair).
- A sub-graph input counts as produced by its producer in the host (looking through transparent
  ops; a host input counts as non-linear), as in the reference implementation, so a sub-graph
  relu -> add fed by a dense counts 2. A standalone subject's inputs count as non-linear unless
  declared linear (`Subject.linear_inputs`, from a spec's [context]: the host it was read off).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from alphanas.errors import SpecError
from alphanas.ir.attrs import DepthClass
from alphanas.ir.graph import Graph
from alphanas.ir.registry import opdef
from alphanas.properties.base import Pair, Subject, Target, Violation

__all__ = ["NO_PATH", "DepthBound", "DepthMode", "DepthTarget", "depth_map", "depth_step", "infer_depth", "input_classes",
           "pair_key", "parse_pair_key"]

_NONE = NO_PATH = -1  # "no path" in the DP tables (depths are >= 0)


class DepthMode(enum.Enum):
    """How a depth target bounds the candidate's depth."""

    AT_LEAST = "at_least"
    EXACTLY = "exactly"
    RANGE = "range"


# -- inference --------------------------------------------------------------------------------


def input_classes(subject: Subject) -> dict[str, DepthClass]:
    """What each subject input counts as produced by: its host producer; without a host, linear
    for the subject's declared `linear_inputs` and non-linear for the others."""
    host = subject.host
    out: dict[str, DepthClass] = {}
    for name in subject.inputs:
        declared = host is None and name in subject.linear_inputs
        cls = DepthClass.LINEAR if declared else DepthClass.NONLINEAR
        t = name
        while host is not None and t in host.op_map:
            op = host.op_map[t]
            cls = opdef(op.kind).depth
            if cls is not DepthClass.TRANSPARENT or not op.inputs:
                break
            t, cls = op.inputs[0], DepthClass.NONLINEAR
        out[name] = DepthClass.NONLINEAR if cls is DepthClass.TRANSPARENT else cls
    return out


def depth_map(graph: Graph, linear_inputs: frozenset[str] = frozenset()) -> dict[Pair, int]:
    """Depth of every connected (input, output) pair of `graph`, in input-then-output order.

    A DP over the topological order: for each tensor and input, the largest depth of a path
    ending in a linear run and of one ending in a non-linear run. `linear_inputs` count as
    produced by a linear op, the other inputs by a non-linear one.
    """
    n = len(graph.inputs)
    state: dict[str, tuple[list[int], list[int]]] = {}
    for k, name in enumerate(graph.input_names):
        lin, non = [_NONE] * n, [_NONE] * n
        (lin if name in linear_inputs else non)[k] = 0
        state[name] = (lin, non)
    for op in graph.ops:
        ins = [state[i] for i in dict.fromkeys(op.inputs) if i in state]
        if ins:
            state[op.name] = depth_step(opdef(op.kind).depth, ins, n)
    out: dict[Pair, int] = {}
    for k, i in enumerate(graph.input_names):
        for o in graph.outputs:
            if o in state:
                d = max(state[o][0][k], state[o][1][k])
                if d != _NONE:
                    out[(i, o)] = d
    return out


def depth_step(cls: DepthClass, ins: Sequence[tuple[list[int], list[int]]],
          n: int) -> tuple[list[int], list[int]]:
    lin = [max(s[0][k] for s in ins) for k in range(n)]
    non = [max(s[1][k] for s in ins) for k in range(n)]
    if cls is DepthClass.TRANSPARENT:
        return lin, non
    if cls is DepthClass.LINEAR:
        return [max(a, b + 1 if b != _NONE else _NONE) for a, b in zip(lin, non, strict=True)], [_NONE] * n
    return [_NONE] * n, [max(b, a + 1 if a != _NONE else _NONE) for a, b in zip(lin, non, strict=True)]


def infer_depth(subject: Subject) -> dict[Pair, int]:
    """Depth of every connected (input, output) pair of the subject (in its host's context)."""
    linear = frozenset(n for n, c in input_classes(subject).items() if c is DepthClass.LINEAR)
    return depth_map(subject.graph, linear)


# -- targets ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DepthBound:
    """`lo <= depth <= hi` (`hi=None`: no upper bound)."""

    lo: int
    hi: int | None = None

    def gap(self, c: int) -> float:
        """Distance from `c` to the interval, normalised by the violated bound (max 1 of it)."""
        if c < self.lo:
            return (self.lo - c) / max(self.lo, 1)
        if self.hi is not None and c > self.hi:
            return (c - self.hi) / max(self.hi, 1)
        return 0.0

    def __str__(self) -> str:
        if self.hi is None:
            return f">= {self.lo}"
        return f"= {self.lo}" if self.hi == self.lo else f"in [{self.lo}, {self.hi}]"


def pair_key(pair: Pair) -> str:
    """`"x->y"`, the spec-file key of an (input, output) pair."""
    return f"{pair[0]}->{pair[1]}"


def parse_pair_key(key: str, where: str) -> Pair:
    """The (input, output) pair named by `"input->output"`."""
    parts = key.split("->")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise SpecError(f'{where}: expected a key "input->output", got "{key}"')
    return parts[0], parts[1]


@dataclass(frozen=True)
class DepthTarget(Target):
    """Per-pair depth bounds; `default` applies to every (input, output) pair not listed."""

    name: ClassVar[str] = "depth"
    pairs: tuple[tuple[Pair, DepthBound], ...] = ()
    default: DepthBound | None = None
    mode: DepthMode = field(default=DepthMode.AT_LEAST)

    def __post_init__(self) -> None:
        for b in self._bounds():
            ok = (b.hi is None if self.mode is DepthMode.AT_LEAST else
                  b.hi == b.lo if self.mode is DepthMode.EXACTLY else b.hi is None or b.hi >= b.lo)
            if not ok or b.lo < 0:
                raise ValueError(f"depth bound {b} does not fit mode {self.mode.value}")

    def _bounds(self) -> list[DepthBound]:
        return [b for _, b in self.pairs] + ([self.default] if self.default else [])

    @classmethod
    def of(cls, depths: Mapping[Pair, int | tuple[int, int | None]],
           mode: DepthMode = DepthMode.AT_LEAST, default: int | tuple[int, int | None] | None = None,
           ) -> DepthTarget:
        """A target from plain values: ints (at_least/exactly) or (lo, hi) tuples (range)."""
        return cls(tuple((p, _bound(v, mode)) for p, v in depths.items()),
                   None if default is None else _bound(default, mode), mode)

    @classmethod
    def read_off(cls, subject: Subject, mode: DepthMode = DepthMode.AT_LEAST) -> DepthTarget:
        """The subject's depths as lower bounds (or exact values / one-point ranges)."""
        upper = mode is not DepthMode.AT_LEAST
        return cls(tuple((p, DepthBound(d, d if upper else None))
                         for p, d in infer_depth(subject).items()), None, mode)

    def required(self, subject: Subject) -> list[tuple[Pair, DepthBound]]:
        """The (pair, bound) requirements on `subject`: listed pairs, then defaulted ones."""
        req = list(self.pairs)
        if self.default is not None:
            listed = {p for p, _ in self.pairs}
            req += [(p, self.default) for p in subject.pairs if p not in listed]
        return req

    def check(self, subject: Subject) -> list[Violation]:
        depths, out = infer_depth(subject), []
        for pair, b in self.required(subject):
            c = depths.get(pair)
            if c is None:
                out.append(Violation("depth", pair_key(pair), f"depth {b}", "no path", float(max(b.lo, 1))))
            elif b.gap(c) > 0:
                amount = b.lo - c if c < b.lo else c - (b.hi or 0)
                out.append(Violation("depth", pair_key(pair), f"depth {b}", c, float(amount)))
        return out

    def distance(self, subject: Subject) -> float:
        """Mean over required pairs of the normalised gap (the paper's max(0, t-c)/max(t, 1))."""
        depths = infer_depth(subject)
        req = self.required(subject)
        if not req:
            return 0.0
        gaps = [1.0 if depths.get(p) is None else b.gap(depths[p]) for p, b in req]
        return sum(gaps) / len(gaps)

    def mutate(self, seed: int, **options: Any) -> DepthTarget:
        """Each bound moves by up to `delta_max` (2), drawn by repeated Bernoulli(`p`=0.5) with a
        random sign, clamped at 0 (a range moves as a whole); listed pairs first, then default."""
        rng = np.random.default_rng(seed)
        p, delta_max = float(options.get("p", 0.5)), int(options.get("delta_max", 2))
        pairs = tuple((pair, _shift(b, _delta(rng, p, delta_max))) for pair, b in self.pairs)
        default = None if self.default is None else _shift(self.default, _delta(rng, p, delta_max))
        return DepthTarget(pairs, default, self.mode)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mode": self.mode.value}
        if self.default is not None:
            d["value"] = self._value(self.default)
        d.update({pair_key(p): self._value(b) for p, b in self.pairs})
        return d

    def _value(self, b: DepthBound) -> Any:
        if self.mode is not DepthMode.RANGE:
            return b.lo
        return {"min": b.lo} if b.hi is None else {"min": b.lo, "max": b.hi}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> DepthTarget:
        """From {"mode": ..., "value": v, "in->out": v, ...}; v an int, or {min, max} in range mode."""
        if not isinstance(data, Mapping):
            raise SpecError(f"{where}: expected a table, got {data!r}")
        mode_text = data.get("mode", DepthMode.AT_LEAST.value)
        modes = [m.value for m in DepthMode]
        if mode_text not in modes:
            raise SpecError(f"{where}.mode: expected one of {', '.join(modes)}; got {_show(mode_text)}")
        mode = DepthMode(mode_text)
        pairs, default = [], None
        for key, v in data.items():
            if key == "mode":
                continue
            if key == "value":
                default = _parse_bound(v, mode, f"{where}.value")
            elif "->" in key:
                pairs.append((parse_pair_key(key, f'{where}."{key}"'),
                              _parse_bound(v, mode, f'{where}."{key}"')))
            else:
                raise SpecError(f"{where}: unknown key '{key}' (accepted: mode, value, "
                                f'and "input->output" pairs)')
        if not pairs and default is None:
            raise SpecError(f'{where}: no depth given; add "input->output" = N or value = N')
        return cls(tuple(pairs), default, mode)


def _show(v: Any) -> str:
    return f'"{v}"' if isinstance(v, str) else repr(v)


def _bound(v: int | tuple[int, int | None], mode: DepthMode) -> DepthBound:
    if isinstance(v, tuple):
        return DepthBound(v[0], v[1])
    return DepthBound(v, v if mode is not DepthMode.AT_LEAST else None)


def _is_depth(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _parse_bound(v: Any, mode: DepthMode, where: str) -> DepthBound:
    if mode is not DepthMode.RANGE:
        if not _is_depth(v):
            raise SpecError(f"{where}: expected a non-negative int (mode {mode.value}), got {_show(v)}")
        return _bound(v, mode)
    if not isinstance(v, Mapping) or not v:
        raise SpecError(f"{where}: expected a table {{min = int, max = int}} (mode range), got {_show(v)}")
    unknown = sorted(set(v) - {"min", "max"})
    if unknown:
        raise SpecError(f"{where}: unknown key '{unknown[0]}' (accepted: max, min)")
    for k in ("min", "max"):
        if k in v and not _is_depth(v[k]):
            raise SpecError(f"{where}.{k}: expected a non-negative int, got {_show(v[k])}")
    b = DepthBound(v.get("min", 0), v.get("max"))
    if b.hi is not None and b.hi < b.lo:
        raise SpecError(f"{where}: max {b.hi} is less than min {b.lo}")
    return b


def _delta(rng: np.random.Generator, p: float, delta_max: int) -> int:
    delta = 0
    while delta < delta_max and rng.random() < p:
        delta += 1
    return -delta if rng.random() > 0.5 else delta


def _shift(b: DepthBound, delta: int) -> DepthBound:
    lo = max(0, b.lo + delta)
    if b.hi is None:
        return DepthBound(lo)
    return DepthBound(lo, lo if b.hi == b.lo else max(lo, b.hi + delta))
