"""Mutations of a witness spec, for the synthesis benchmark's mutated tasks.

`DRAW[kind](spec, rng)` draws one seeded change of kind `kind` (one of `MUTATIONS`) from the
context-0 spec: None when the kind does not apply, else `(text, change)`, where `text` names the
change (e.g. "depth+1", "max_flops*0.70") and `change` applies it to the spec of any context
(None where it cannot).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from alphanas.ir.attrs import OpKind, Shape
from alphanas.properties.depth import DepthBound
from alphanas.properties.mixing import Mix, MixingTarget, MixMatrix
from alphanas.properties.shape import ShapeTarget
from alphanas.properties.spec import SearchSpace, Spec

__all__ = ["DRAW", "MENU", "MUTATIONS", "Change", "Drawn"]

K = OpKind
MENU = frozenset({
    K.CONV, K.DENSE, K.ADD, K.MUL, K.CONCAT, K.RELU, K.GELU, K.SWISH, K.SIGMOID, K.TANH,
    K.SOFTMAX, K.BATCH_NORM, K.LAYER_NORM, K.AVG_POOL, K.MAX_POOL, K.MEAN, K.FLATTEN,
    K.DROPOUT, K.IDENTITY, K.SELF_ATTENTION, K.RESIZE,
})
"""The op kinds a synthesized sub-graph may use; selections with any other kind are skipped."""

MUTATIONS = ("depth", "mixing_drop", "mixing_raise", "channels", "stride", "budget", "max_ops")
"""The mutation kinds, keys of `DRAW`."""
Change = Callable[[Spec], "Spec | None"]
Drawn = tuple[str, Change] | None


def _shift(b: DepthBound, delta: int) -> DepthBound:
    lo = max(0, b.lo + delta)
    if b.hi is None:
        return DepthBound(lo)
    return DepthBound(lo, lo if b.hi == b.lo else max(lo, b.hi + delta))


def _draw_depth(spec: Spec, rng: random.Random) -> Drawn:
    """Every depth bound moved by the same delta in {-2, -1, +1, +2} (clamped at 0)."""
    if spec.depth is None or not spec.depth.pairs:
        return None
    delta = rng.choice((-2, -1, 1, 2))
    if delta < 0 and all(b.lo == 0 for _, b in spec.depth.pairs):
        delta = -delta

    def change(s: Spec) -> Spec | None:
        if s.depth is None:
            return None
        pairs = tuple((p, _shift(b, delta)) for p, b in s.depth.pairs)
        return replace(s, depth=replace(s.depth, pairs=pairs))

    return f"depth{delta:+d}", change


def _mix_entries(spec: Spec) -> list[tuple[tuple[str, str], MixMatrix]]:
    """Mixing entries by input position, then output position (names differ by context)."""
    if spec.mixing is None:
        return []
    have = dict(spec.mixing.entries)  # type: ignore[attr-defined]
    return [((i, o), have[(i, o)]) for i in spec.input_names for o in spec.output_names or ()
            if (i, o) in have]


def _cells(spec: Spec, keep: Callable[[Mix], bool]) -> list[tuple[int, int, int]]:
    return [(k, a, b) for k, (_, m) in enumerate(_mix_entries(spec))
            for a, row in enumerate(m) for b, v in enumerate(row) if keep(v)]


def _set_cells(spec: Spec, cells: Sequence[tuple[int, int, int]], f: Callable[[Mix], Mix],
               ) -> Spec | None:
    entries = _mix_entries(spec)
    rows = [[list(r) for r in m] for _, m in entries]
    for k, a, b in cells:
        if k >= len(rows) or a >= len(rows[k]) or b >= len(rows[k][a]):
            return None
        rows[k][a][b] = f(rows[k][a][b])
    new = tuple((p, tuple(tuple(r) for r in m)) for (p, _), m in zip(entries, rows, strict=True))
    return replace(spec, mixing=MixingTarget(new))


def _cell_text(cells: Sequence[tuple[int, int, int]]) -> str:
    return ",".join(f"p{k}[{a},{b}]" for k, a, b in cells)


def _draw_mixing_drop(spec: Spec, rng: random.Random) -> Drawn:
    """One or two mixing entries above NONE lowered to NONE (pair k = input-major position)."""
    cells = _cells(spec, lambda v: v > Mix.NONE)
    if not cells:
        return None
    picked = sorted(rng.sample(cells, min(len(cells), rng.choice((1, 2)))))
    return f"mixing-drop:{_cell_text(picked)}", lambda s: _set_cells(s, picked, lambda v: Mix.NONE)


def _draw_mixing_raise(spec: Spec, rng: random.Random) -> Drawn:
    """One mixing entry raised a lattice level: ONE or MANY if any, else a NONE."""
    cells = (_cells(spec, lambda v: Mix.NONE < v < Mix.ALL_TO_ONE)
             or _cells(spec, lambda v: v == Mix.NONE))
    if not cells:
        return None
    cell = [rng.choice(cells)]
    return (f"mixing-raise:{_cell_text(cell)}",
            lambda s: _set_cells(s, cell, lambda v: Mix(min(v + 1, Mix.ALL_TO_ONE))))


def _output(spec: Spec) -> tuple[str, Shape] | None:
    if not isinstance(spec.shape, ShapeTarget) or len(spec.shape.outputs) != 1:
        return None
    return spec.shape.outputs[0]


def _scale_budgets(spec: Spec, factor: int, keys: Sequence[str]) -> Spec:
    r = spec.resources
    if r is None:
        return spec
    new = {k: getattr(r, k) * factor for k in keys if getattr(r, k) is not None}
    return replace(spec, resources=replace(r, **new))


def _widen_search(spec: Spec, kind: OpKind, extra: int) -> Spec:
    """`kind` allowed too (when the op kinds are restricted) and `extra` more ops."""
    s = spec.search
    ops = None if s.ops is None else tuple(k for k in OpKind if k in {*s.ops, kind})
    return replace(spec, search=SearchSpace(ops, None if s.max_ops is None else s.max_ops + extra))


def _draw_channels(spec: Spec, rng: random.Random) -> Drawn:
    """The output's last dim (channels / features) doubled, budgets x2, or halved when even."""
    out = _output(spec)
    if out is None or len(out[1]) not in (2, 3, 4):
        return None
    halve = out[1][-1] % 2 == 0 and rng.random() < 0.5

    def change(s: Spec) -> Spec | None:
        o = _output(s)
        if o is None or (halve and o[1][-1] % 2):
            return None
        c = o[1][-1]
        s = replace(s, shape=ShapeTarget(((o[0], (*o[1][:-1], c // 2 if halve else c * 2)),)))
        return s if halve else _scale_budgets(s, 2, ("max_params", "max_flops", "max_peak_activation"))

    return ("channels/2" if halve else "channels*2,budgets*2"), change


def _draw_stride(spec: Spec, rng: random.Random) -> Drawn:
    """The output's spatial dims (NHWC) halved when even, else or by chance doubled.

    Halving needs a conv or pool among the allowed kinds (else max_pool and one op more);
    doubling needs resize (added with one op more) and gets flops/activation budgets x4.
    """
    out = _output(spec)
    if out is None or len(out[1]) != 4:
        return None
    halve = out[1][1] % 2 == 0 and out[1][2] % 2 == 0 and rng.random() < 0.5
    kinds = set(spec.search.ops or ())
    if halve:
        need = None if kinds & {K.CONV, K.AVG_POOL, K.MAX_POOL} else K.MAX_POOL
    else:
        need = None if K.RESIZE in kinds else K.RESIZE

    def change(s: Spec) -> Spec | None:
        o = _output(s)
        if o is None or (halve and (o[1][1] % 2 or o[1][2] % 2)):
            return None
        b, h, w, c = o[1]
        h, w = (h // 2, w // 2) if halve else (h * 2, w * 2)
        s = replace(s, shape=ShapeTarget(((o[0], (b, h, w, c)),)))
        s = s if need is None else _widen_search(s, need, 1)
        return s if halve else _scale_budgets(s, 4, ("max_flops", "max_peak_activation"))

    text = "spatial/2" if halve else "spatial*2"
    text += f",+{need.value},max_ops+1" if need is not None else ""
    return text + ("" if halve else ",budgets*4"), change


def _draw_budget(spec: Spec, rng: random.Random) -> Drawn:
    """max_params or max_flops cut to 50-90% of the read-off value."""
    r = spec.resources
    keys = [k for k in ("max_params", "max_flops") if r is not None and getattr(r, k)]
    if not keys:
        return None
    key, f = rng.choice(keys), round(rng.uniform(0.5, 0.9), 2)

    def change(s: Spec) -> Spec | None:
        v = getattr(s.resources, key, None)
        return None if not v else replace(s, resources=replace(s.resources, **{key: int(v * f)}))

    return f"{key}*{f:.2f}", change


def _draw_max_ops(spec: Spec, rng: random.Random) -> Drawn:
    """max_ops raised by 1 or 2, with one more allowed op kind from the menu."""
    have = set(spec.search.ops or ())
    extra = [k for k in OpKind if k in MENU and k not in have]
    if spec.search.ops is None or spec.search.max_ops is None or not extra:
        return None
    n, kind = rng.choice((1, 2)), rng.choice(extra)
    return f"max_ops+{n},+{kind.value}", lambda s: _widen_search(s, kind, n)


DRAW: dict[str, Callable[[Spec, random.Random], Any]] = {
    "depth": _draw_depth, "mixing_drop": _draw_mixing_drop, "mixing_raise": _draw_mixing_raise,
    "channels": _draw_channels, "stride": _draw_stride, "budget": _draw_budget,
    "max_ops": _draw_max_ops,
}
