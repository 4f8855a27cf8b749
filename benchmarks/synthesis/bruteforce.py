"""Brute-force labelling of small synthesis problems, judged by the independent oracle only.

`brute_force(spec)` enumerates *every* SSA program of 1..n ops (n = min(spec max_ops, 3)) over
the synthesis menu variants of the spec's allowed ops (`spec.search.ops` & `SYNTH_OPS`), with no
pruning rule of the synthesizer:

- op i reads any earlier tensors (the inputs first); a binary op may read the same tensor twice
  and both operand orders of a commutative op are enumerated;
- the last op is the output; every intermediate tensor must be read (a program with dead code
  only makes a costlier copy of a smaller program, which is enumerated too); inputs may be unread;
- a variant applies to the input ranks its `ranks` declares (part of the menu table); binary
  ops broadcast as the IR allows (also across ranks; see `witness_notes`);
- per variant: every kernel K in {3, 5, 7} (`kernel=True` variants), `use_bias=False` (params,
  FLOPs and peak are monotone in the bias and nothing else depends on it, so a program with a
  bias meets a spec only if the same program without it does), `num_heads=1`, and for
  `width == "new"` variants every width of `widths(spec)`: {the output width, the first input's
  channels x 1/2, 1, 2, and 8, 16} (positive ints only); the output op's width, when it makes a
  new width, is the spec's output width (the output shape fixes it).

A candidate the IR rejects (an `AlphanasError` while building/inferring: the op does not apply)
is skipped and not counted. Every complete candidate is decided by the oracle: cheap oracle facts
first (the IR's output shape, `oracle_depth`, per-op parameter counts from the oracle's own Flax
trace `traced` of each op alone, `oracle_flops`, `oracle_peak`, `exact_mixing`), each an
implied-by check of what `judge` requires, then `alphanas.oracle.judge(...).holds` is the final
word on any candidate that passes them.

Returns `("sat", graph)` on the first accepted candidate (fewest ops first), `("unsat", count)`
when none of the `count` complete candidates meets the spec, `("capped", count)` when the
candidate cap (or the time limit) is hit first, and `("undecided", count)` when no candidate was
accepted but the oracle could not decide some (`OracleUnsupported`): then unsat is not claimed.

    python -m benchmarks.synthesis.bruteforce SPEC.toml [--cap N]
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from alphanas.errors import AlphanasError
from alphanas.ir.analysis import infer_op
from alphanas.ir.attrs import OpKind, Shape
from alphanas.ir.graph import Graph, GraphBuilder, make_op
from alphanas.oracle import OracleUnsupported, exact_mixing, judge
from alphanas.oracle.facts import oracle_depth, oracle_flops, oracle_peak, traced
from alphanas.properties.spec import Spec
from alphanas.synth.menu import KERNELS, SYNTH_OPS, Variant, menu

__all__ = ["MAX_OPS", "Choice", "Outcome", "allowed_ops", "brute_force", "choices", "describe",
           "search", "widths", "witness_notes"]

MAX_OPS = 3
DEFAULT_CAP = 400_000


@dataclass(frozen=True)
class Choice:
    """One concrete op: a menu variant with every attribute fixed."""

    key: str                                   # e.g. "convKxK/s2 k5 w16"
    kind: OpKind
    arity: int
    attrs: tuple[tuple[str, Any], ...]
    new_width: int | None = None               # the width a "new"-width variant makes
    ranks: tuple[int, ...] = (2, 3, 4)         # the input ranks the variant applies to


@dataclass
class Outcome:
    """The verdict and how it was reached."""

    status: str                                 # "sat" | "unsat" | "capped" | "undecided"
    count: int                                  # complete candidates considered
    graph: Graph | None = None
    wall_s: float = 0.0
    rejected: dict[str, int] = field(default_factory=dict)   # first failing check -> count
    undecided: int = 0
    note: str = ""

    @property
    def space_notes(self) -> tuple[str, ...]:
        """Features of the witness outside a stricter search space: a binary op reading one
        tensor twice ("self-pair"), or inputs of different ranks ("rank-broadcast")."""
        return witness_notes(self.graph) if self.graph is not None else ()

    def pair(self) -> tuple[str, Any]:
        return (self.status, self.graph if self.status == "sat" else self.count)


def allowed_ops(spec: Spec) -> frozenset[OpKind]:
    ops = SYNTH_OPS if spec.search.ops is None else SYNTH_OPS & frozenset(spec.search.ops)
    return frozenset(ops)


def _io(spec: Spec) -> tuple[tuple[tuple[str, Shape], ...], str, Shape]:
    if spec.shape is None or len(spec.shape.outputs) != 1:
        raise ValueError(f"{spec.source}: brute force needs exactly one declared output")
    inputs = tuple(spec.example_inputs().items())
    name, dims = spec.shape.outputs[0]
    if hasattr(spec.shape, "output_shapes_at"):
        dims = spec.shape.output_shapes_at(spec.shape.example_bindings())[name]
    if any(d is None for d in dims):
        raise ValueError(f"{spec.source}: brute force needs every output dim")
    return inputs, name, tuple(int(d) for d in dims)


def widths(spec: Spec) -> tuple[int, ...]:
    """{output width, first input's channels x 1/2, 1, 2, 8, 16}, positive ints, in that order."""
    inputs, _, out = _io(spec)
    ref = inputs[0][1][-1]
    cands = [out[-1], ref / 2, ref, 2 * ref, 8, 16]
    return tuple(dict.fromkeys(int(w) for w in cands if w >= 1 and float(w).is_integer()))


def choices(variants: Sequence[Variant], ws: Sequence[int]) -> tuple[Choice, ...]:
    """Every concrete op of `variants` (kernels x widths; no bias; one head)."""
    out = []
    for v in variants:
        base = dict(v.attrs)
        if v.bias:
            base["use_bias"] = False
        if v.heads:
            base["num_heads"] = 1
        for k in (KERNELS if v.kernel else (None,)):
            a = dict(base)
            if k is not None:
                a["kernel"] = (k, k)
            for w in (ws if v.width == "new" else (None,)):
                b = dict(a)
                if w is not None:
                    b["features"] = w
                key = v.key + (f" k{k}" if k is not None else "") + (f" w{w}" if w is not None else "")
                out.append(Choice(key, v.kind, v.arity, tuple(sorted(b.items())), w, v.ranks))
    return tuple(out)


class _Enum:
    def __init__(self, spec: Spec, linear_inputs: frozenset[str] | None, cap: int,
                 time_limit_s: float | None, max_ops: int | None, prechecks: bool,
                 width_set: Sequence[int] | None = None) -> None:
        self.spec = spec
        self.inputs, self.out_name, self.out_shape = _io(spec)
        self.linear = frozenset(spec.linear_inputs() if linear_inputs is None else linear_inputs)
        self.cap, self.prechecks = cap, prechecks
        self.deadline = None if time_limit_s is None else time.perf_counter() + time_limit_s
        n = min(spec.search.max_ops or MAX_OPS, MAX_OPS)
        self.n_max = min(n, max_ops) if max_ops is not None else n
        ws = widths(spec) if width_set is None else tuple(width_set)
        self.choices = choices(menu(allowed_ops(spec)), ws)
        self.last = tuple(c for c in self.choices if c.new_width in (None, self.out_shape[-1]))
        self.infer: dict[tuple[Choice, tuple[Shape, ...]], Shape | None] = {}
        self.op_params: dict[tuple[Choice, tuple[Shape, ...]], int] = {}
        self.count = 0
        self.rejected: dict[str, int] = {}
        self.undecided = 0
        self.undecided_note = ""
        # the program being built: tensor shapes (inputs first), ops as (choice, input indices)
        self.shapes: list[Shape] = [s for _, s in self.inputs]
        self.prog: list[tuple[Choice, tuple[int, ...]]] = []
        self.reads: list[int] = [0] * len(self.inputs)
        self._bounds()

    def _bounds(self) -> None:
        s = self.spec
        names = [n for n, _ in self.inputs]
        self.depth: list[tuple[str, Any]] = []
        if s.depth is not None:
            listed = dict(s.depth.pairs)
            for i in names:
                b = listed.get((i, self.out_name), s.depth.default)
                if b is not None:
                    self.depth.append((i, b))
        self.mixing = tuple(getattr(s.mixing, "entries", ()) if s.mixing is not None else ())
        r = s.resources
        self.max_params = None if r is None or r.max_params is None else r.max_params
        self.max_flops = None if r is None or r.max_flops is None else r.max_flops
        self.max_peak = None if r is None or r.max_peak_activation is None else r.max_peak_activation

    # -- enumeration --------------------------------------------------------------------------

    def run(self) -> Outcome:
        t0 = time.perf_counter()
        found: Graph | None = None
        status = "unsat"
        try:
            for n in range(1, self.n_max + 1):
                found = self._dfs(n)
                if found is not None:
                    status = "sat"
                    break
        except _Capped:
            status = "capped"
        if status == "unsat" and self.undecided:
            status = "undecided"
        return Outcome(status, self.count, found, time.perf_counter() - t0, dict(self.rejected),
                       self.undecided, self.undecided_note)

    def _shape(self, c: Choice, ins: tuple[int, ...]) -> Shape | None:
        key = (c, tuple(self.shapes[j] for j in ins))
        if key not in self.infer:
            if any(len(s) not in c.ranks for s in key[1]):
                self.infer[key] = None
                return None
            try:
                op = make_op("op", c.kind, tuple(f"t{j}" for j in range(len(ins))), **dict(c.attrs))
                shapes = {f"t{j}": s for j, s in enumerate(key[1])}
                self.infer[key] = infer_op(op, key[1], shapes).shape
            except AlphanasError:
                self.infer[key] = None
        return self.infer[key]

    def _dfs(self, n: int) -> Graph | None:
        k = len(self.prog)
        last = k == n - 1
        total = len(self.shapes)
        for c in (self.last if last else self.choices):
            for ins in itertools.product(range(total), repeat=c.arity):
                shape = self._shape(c, ins)
                if shape is None:
                    continue
                if last:
                    # complete: every intermediate tensor read (this op reads too)
                    if any(self.reads[j] == 0 and j not in ins
                           for j in range(len(self.inputs), total)):
                        continue
                    self.count += 1
                    if self.count > self.cap or (self.deadline is not None and self.count % 256 == 0
                                                 and time.perf_counter() > self.deadline):
                        raise _Capped
                    g = self._complete(c, ins, shape)
                    if g is not None:
                        return g
                    continue
                self._push(c, ins, shape)
                try:
                    g = self._dfs(n)
                finally:
                    self._pop(ins)
                if g is not None:
                    return g
        return None

    def _push(self, c: Choice, ins: tuple[int, ...], shape: Shape) -> None:
        for j in ins:
            self.reads[j] += 1
        self.prog.append((c, ins))
        self.shapes.append(shape)
        self.reads.append(0)

    def _pop(self, ins: tuple[int, ...]) -> None:
        for j in ins:
            self.reads[j] -= 1
        self.prog.pop()
        self.shapes.pop()
        self.reads.pop()

    # -- one complete candidate ---------------------------------------------------------------

    def _reject(self, why: str) -> None:
        self.rejected[why] = self.rejected.get(why, 0) + 1

    def _complete(self, c: Choice, ins: tuple[int, ...], shape: Shape) -> Graph | None:
        prog = [*self.prog, (c, ins)]
        if self.prechecks:
            if shape != self.out_shape:
                self._reject("shape")
                return None
            if self.max_params is not None:
                shapes = [*self.shapes, shape]
                p = sum(self._op_params(ch, tuple(shapes[j] for j in js)) for ch, js in prog)
                if p > self.max_params:
                    self._reject("params")
                    return None
        try:
            g = self._build(prog)
        except AlphanasError:
            self._reject("ir")
            return None
        if self.prechecks:
            why = self._cheap(g)
            if why:
                self._reject(why)
                return None
        v = judge(g, self.spec, self.linear)
        if v.holds:
            return g
        if v.undecided:
            self.undecided += 1
            self.undecided_note = self.undecided_note or v.undecided
            self._reject("undecided")
        else:
            self._reject("judge")
        return None

    def _build(self, prog: Sequence[tuple[Choice, tuple[int, ...]]]) -> Graph:
        b = GraphBuilder("bruteforce")
        names = [b.input(n, s) for n, s in self.inputs]
        for i, (c, js) in enumerate(prog):
            last = i == len(prog) - 1
            names.append(b.op(c.kind, *(names[j] for j in js),
                              name=self.out_name if last else f"t{i}", **dict(c.attrs)))
        return b.build(names[-1])

    def _op_params(self, c: Choice, in_shapes: tuple[Shape, ...]) -> int:
        """Parameters of one op alone, from the oracle's Flax trace (params add up over ops)."""
        key = (c, in_shapes)
        if key not in self.op_params:
            b = GraphBuilder("one")
            xs = [b.input(f"a{j}", s) for j, s in enumerate(in_shapes)]
            g = b.build(b.op(c.kind, *xs, name="y", **dict(c.attrs)))
            try:
                self.op_params[key] = traced(g)[1]
            except Exception:  # noqa: BLE001 - judge decides such a candidate; 0 is a lower bound
                self.op_params[key] = 0
        return self.op_params[key]

    def _cheap(self, g: Graph) -> str:
        """The first check `judge` would also fail, from the cheap oracle facts; "" if none."""
        if self.depth:
            d = oracle_depth(g, self.linear)
            for i, b in self.depth:
                got = d.get((i, self.out_name))
                if got is None or got < b.lo or (b.hi is not None and got > b.hi):
                    return "depth"
        if self.max_flops is not None and oracle_flops(g) > self.max_flops:
            return "flops"
        if self.max_peak is not None:
            shapes = {n: s for n, s in self.inputs}
            shapes.update({op.name: s for op, s in zip(g.ops, self.shapes[len(self.inputs):] +
                                                       [self.out_shape], strict=True)})
            if oracle_peak(g, shapes) > self.max_peak:
                return "peak"
        if self.mixing:
            try:
                m = exact_mixing(g)
            except OracleUnsupported:
                return ""  # judge decides (and reports it undecided)
            for (i, o), want in self.mixing:
                got = m.get((i, o))
                for a, row in enumerate(want):
                    for bb, w in enumerate(row):
                        have = got[a][bb] if got is not None and a < len(got) and bb < len(got[a]) else 0
                        if int(w) > have:
                            return "mixing"
        return ""


class _Capped(Exception):
    pass


def brute_force(spec: Spec, linear_inputs: frozenset[str] | None = None, cap: int = DEFAULT_CAP,
                time_limit_s: float | None = None, max_ops: int | None = None,
                prechecks: bool = True) -> tuple[str, Any]:
    """("sat", graph) | ("unsat", count) | ("capped", count) | ("undecided", count); see the
    module docstring. `linear_inputs`: inputs produced by a linear op (None: the spec's
    [context]); `max_ops` lowers n further; `prechecks=False` sends every candidate with a
    built graph to `judge` (slow; a check of the cheap checks)."""
    return search(spec, linear_inputs, cap, time_limit_s, max_ops, prechecks).pair()


def search(spec: Spec, linear_inputs: frozenset[str] | None = None, cap: int = DEFAULT_CAP,
           time_limit_s: float | None = None, max_ops: int | None = None,
           prechecks: bool = True, width_set: Sequence[int] | None = None) -> Outcome:
    """`brute_force` with the details (`Outcome`); `width_set` replaces `widths(spec)` (the
    output op still makes exactly the output width)."""
    return _Enum(spec, linear_inputs, cap, time_limit_s, max_ops, prechecks, width_set).run()


def witness_notes(g: Graph) -> tuple[str, ...]:
    """"self-pair" / "rank-broadcast" when some binary op of `g` reads one tensor twice / has
    inputs of different ranks."""
    from alphanas.ir.analysis import analyze

    shapes = analyze(g).shapes
    notes = []
    if any(len(op.inputs) == 2 and op.inputs[0] == op.inputs[1] for op in g.ops):
        notes.append("self-pair")
    if any(len(op.inputs) == 2 and len(shapes[op.inputs[0]]) != len(shapes[op.inputs[1]])
           for op in g.ops):
        notes.append("rank-broadcast")
    return tuple(notes)


def describe(g: Graph) -> str:
    """One line: `y = conv(x, kernel=(5, 5), ...)` per op, joined by "; "."""
    parts = []
    for op in g.ops:
        attrs = ", ".join(f"{k}={v}" for k, v in op.attrs if k not in ("padding",))
        parts.append(f"{op.name} = {op.kind.value}({', '.join((*op.inputs, attrs) if attrs else op.inputs)})")
    return "; ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from alphanas.properties.spec import load_spec

    ap = argparse.ArgumentParser(prog="python -m benchmarks.synthesis.bruteforce",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("spec")
    ap.add_argument("--cap", type=int, default=DEFAULT_CAP)
    a = ap.parse_args(argv)
    o = search(load_spec(a.spec), cap=a.cap)
    print(f"{o.status} after {o.count:,} candidates in {o.wall_s:.1f} s; rejected {o.rejected}")
    if o.graph is not None:
        print(describe(o.graph))
    return 0 if o.status == "sat" else 1


if __name__ == "__main__":
    sys.exit(main())
