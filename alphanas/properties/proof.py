"""Proofs of shape claims "for all input sizes in range" over `alphanas.properties.symbolic`.

A claim is one dim expression per output dim (ints, dim names, + - *, / by an int). `prove_shape`
proves "for all sizes in range: every obligation holds and every output dim equals its claim" by
checking the negation UNSAT with `alphanas.properties.smt`; a SAT model is a counterexample,
re-checked concretely with `alphanas.ir.analysis.analyze` before it is returned.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from alphanas.errors import InternalError, ShapeError
from alphanas.ir.analysis import analyze
from alphanas.ir.attrs import Shape
from alphanas.ir.graph import Graph
from alphanas.properties import smt
from alphanas.properties.smt import Constraint, Term
from alphanas.properties.symbolic import (
    Definition,
    Obligation,
    Range,
    SymAnalysis,
    SymbolicError,
    check_dims,
    dim_units,
    infer_symbolic,
)

__all__ = ["Counterexample", "SymbolicResult", "parse_dim", "prove_shape"]


# ---- claims -------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z_0-9]*)|(\S))")
Frac = tuple[Term, int]  # numerator, positive denominator


def _norm(n: Term, d: int) -> Frac:
    g = math.gcd(d, *(c for _, c in n.coeffs))
    return (n.divmod_const(g)[0], d // g) if g > 1 else (n, d)


class _Parser:
    """expr := ['-'] term (('+'|'-') term)*; term := factor (('*' factor) | ('/' int))*;
    factor := int | name | '(' expr ')'."""

    def __init__(self, text: str, dims: Mapping[str, Term]) -> None:
        self.text, self.dims, self.i = text, dims, 0
        self.toks = [m.groups() for m in _TOKEN.finditer(text)]

    def fail(self, msg: str) -> SymbolicError:
        return SymbolicError(f"claimed dim {self.text!r}: {msg} (accepted: ints, dim names "
                             f"{sorted(self.dims)}, + - *, / by an int, parentheses)")

    def peek(self) -> str | None:
        if self.i >= len(self.toks):
            return None
        num, name, sym = self.toks[self.i]
        return num or name or sym

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise self.fail("unexpected end")
        self.i += 1
        return tok

    def expr(self) -> Frac:
        neg = self.peek() == "-" and bool(self.take())
        n, d = self.term()
        if neg:
            n = -n
        while self.peek() in ("+", "-"):
            op = self.take()
            n2, d2 = self.term()
            n = n * d2 + (n2 if op == "+" else -n2) * d
            n, d = _norm(n, d * d2)
        return n, d

    def term(self) -> Frac:
        n, d = self.factor()
        while self.peek() in ("*", "/"):
            if self.take() == "*":
                n2, d2 = self.factor()
                n, d = _norm(n * n2, d * d2)
            else:
                k = self.take()
                if not k.isdigit() or int(k) == 0:
                    raise self.fail(f"'/' must be followed by a positive int, got {k!r}")
                n, d = _norm(n, d * int(k))
        return n, d

    def factor(self) -> Frac:
        tok = self.take()
        if tok.isdigit():
            return Term.const(int(tok)), 1
        if tok == "(":
            f = self.expr()
            if self.take() != ")":
                raise self.fail("missing ')'")
            return f
        if tok in self.dims:
            return self.dims[tok], 1
        raise self.fail(f"unknown name or symbol {tok!r}")


def parse_dim(expr: str | int, dims: Mapping[str, Term]) -> tuple[Term, int]:
    """A claimed dim as (numerator, denominator): the dim d satisfies it iff den * d == num."""
    if isinstance(expr, int) and not isinstance(expr, bool):
        return Term.const(expr), 1
    if not isinstance(expr, str):
        raise SymbolicError(f"claimed dim {expr!r} must be an int or an expression string")
    p = _Parser(expr, dims)
    out = p.expr()
    if p.peek() is not None:
        raise p.fail(f"unexpected {p.peek()!r}")
    return out


# ---- proofs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counterexample:
    """Sizes for which the claim fails, the first failing condition, and what the concrete rules
    (`analyze`) say there."""

    sizes: Mapping[str, int]
    input_shapes: tuple[Shape, ...]
    failed: str
    concrete: str
    output_shapes: tuple[Shape, ...] | None
    claimed_shapes: tuple[tuple[str, ...], ...]

    def __str__(self) -> str:
        return f"at {_sizes(self.sizes)}: {self.failed}; concretely: {self.concrete}"


def _sizes(sizes: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sizes.items())


@dataclass(frozen=True)
class SymbolicResult:
    """`holds` is True (proved), False (refuted: see `counterexample`) or None (unknown/unsupported)."""

    holds: bool | None
    reason: str
    counterexample: Counterexample | None = None
    output_dims: tuple[tuple[str, ...], ...] = ()
    obligations: int = 0
    residual: int = 0
    time_s: float = 0.0
    smt_checks: int = 0
    smt_time_s: float = 0.0
    settings: smt.SmtSettings | None = None  # the bounds of the SMT check, when one ran


@dataclass(frozen=True)
class _Claim:
    claims: tuple[tuple[Frac, ...], ...]
    texts: tuple[tuple[str, ...], ...]

    def values(self, env: Mapping[str, int]) -> tuple[tuple[str, ...], ...]:
        def show(n: Term, d: int) -> str:
            v = n.evaluate(env)
            return str(v // d) if v % d == 0 else f"{v}/{d}"

        return tuple(tuple(show(n, d) for n, d in out) for out in self.claims)


def prove_shape(graph: Graph, input_dims: Mapping[str, Sequence[str | int]],
                ranges: Mapping[str, Range | tuple[int, ...]],
                claimed_outputs: Sequence[Sequence[str | int]],
                settings: smt.SmtSettings | None = None) -> SymbolicResult:
    """Prove that for all sizes in `ranges` the graph's outputs have the claimed dims (and no op
    fails), or refute it with a concretely checked counterexample."""
    t0 = time.perf_counter()
    rng = check_dims(graph, input_dims, ranges)
    dims = {n: Term.var(u) * m for n, (u, m) in dim_units(rng).items()}
    if len(claimed_outputs) != len(graph.outputs):
        raise SymbolicError(f"graph has {len(graph.outputs)} outputs but {len(claimed_outputs)} "
                            "output shapes are claimed")
    claim = _Claim(tuple(tuple(parse_dim(c, dims) for c in out) for out in claimed_outputs),
                   tuple(tuple(str(c) for c in out) for out in claimed_outputs))
    try:
        sym = infer_symbolic(graph, input_dims, rng)
    except ShapeError as e:
        return _structural(graph, input_dims, rng, claim, f"fails for every size: {e}", t0)
    goals = list(sym.obligations)
    for j, (got, want) in enumerate(zip(sym.output_shapes, claim.claims, strict=True)):
        if len(got) != len(want):
            return _structural(graph, input_dims, rng, claim, f"output {j} has rank {len(got)} "
                               f"but the claim has rank {len(want)}", t0)
        goals += [Obligation(f"output {j} ('{graph.outputs[j]}') dim {k}",
                             f"{sym.show(g)} == {claim.texts[j][k]}", smt.eq(g * d, n))
                  for k, (g, (n, d)) in enumerate(zip(got, want, strict=True))]
    return _decide(sym, goals, claim, settings or smt.SmtSettings(), t0)


Interval = tuple[float, float]


def _bounds(sym: SymAnalysis) -> dict[str, Interval]:
    """Interval bounds of every variable: unit ranges, then each definition in order."""
    b: dict[str, Interval] = {u: (sym.ranges[n].unit_lo, sym.ranges[n].unit_hi)
                              for n, (u, _) in sym.units.items()}
    for d in sym.definitions:
        (alo, ahi), (blo, bhi) = _interval(d.a, b), _interval(d.b, b)
        if d.kind == "bcast":
            b[d.var] = (min(alo, blo), max(ahi, bhi))
        elif blo == bhi and blo > 0 and math.isfinite(alo) and math.isfinite(ahi):
            f = math.floor if d.kind == "floor" else math.ceil
            b[d.var] = (f(alo / blo), f(ahi / blo))
        else:
            b[d.var] = (-math.inf, math.inf)
    return b


def _interval(t: Term, b: Mapping[str, Interval]) -> Interval:
    lo = hi = 0.0
    for mono, c in t.coeffs:
        plo, phi = float(c), float(c)
        for v in mono:
            vlo, vhi = b[v]
            cands = [x * y for x in (plo, phi) for y in (vlo, vhi) if not (x == 0 and math.isinf(y))]
            plo, phi = min(cands, default=0.0), max(cands, default=0.0)
        lo, hi = lo + plo, hi + phi
    return lo, hi


def _implied(c: Constraint, b: Mapping[str, Interval]) -> bool:
    """True when interval reasoning alone shows `c` holds for every size in range."""
    if isinstance(c, smt.Cmp):
        lo, hi = _interval(c.lhs - c.rhs, b)
        return {"==": lo == hi == 0, "!=": lo > 0 or hi < 0, "<=": hi <= 0, "<": hi < 0,
                ">=": lo >= 0, ">": lo > 0}[c.op]
    if isinstance(c, smt.Or):
        return any(_implied(a, b) for a in c.args)
    if isinstance(c, smt.And):
        return all(_implied(a, b) for a in c.args)
    return c == smt.TRUE


def _needed(sym: SymAnalysis, goals: Sequence[Obligation]) -> list[Definition]:
    """The definitions the goals depend on (transitively), in order."""
    need: set[str] = set()
    for g in goals:
        need |= _vars(g.constraint)
    out = []
    for d in reversed(sym.definitions):
        if d.var in need:
            out.append(d)
            need |= d.a.variables | d.b.variables
    return out[::-1]


def _vars(c: Constraint) -> set[str]:
    if isinstance(c, smt.Cmp):
        return set(c.lhs.variables | c.rhs.variables)
    if isinstance(c, smt.Divides):
        return set(c.term.variables)
    if isinstance(c, smt.Not):
        return _vars(c.arg)
    if isinstance(c, (smt.And, smt.Or)):
        return set().union(*(_vars(a) for a in c.args))
    return set()


def _decide(sym: SymAnalysis, goals: list[Obligation], claim: _Claim,
            settings: smt.SmtSettings, t0: float) -> SymbolicResult:
    bounds = _bounds(sym)
    residual = [g for g in goals if not _implied(g.constraint, bounds)]
    dims = tuple(tuple(sym.show(d) for d in s) for s in sym.output_shapes)
    common: dict[str, Any] = {"output_dims": dims, "obligations": len(goals), "residual": len(residual)}
    if not residual:
        return SymbolicResult(True, "proved: every side condition and output dim reduces to an "
                              "identity or follows from the ranges (no SMT check needed)", None,
                              **common, time_s=time.perf_counter() - t0)
    solver = smt.Solver(settings)
    solver.add(*sym.domain(), *(d.constraint() for d in _needed(sym, residual)))
    solver.add(smt.any_of(smt.negate(g.constraint) for g in residual))
    r = solver.check()
    st: dict[str, Any] = {"smt_checks": solver.stats.checks, "smt_time_s": solver.stats.time_s,
                          "settings": settings}
    if r.unsat:
        return SymbolicResult(True, f"proved: the negation of {len(residual)} residual condition(s) "
                              "is unsatisfiable", None, **common, **st, time_s=time.perf_counter() - t0)
    if not r.sat:
        return SymbolicResult(None, f"unknown: {r.reason}", None, **common, **st,
                              time_s=time.perf_counter() - t0)
    model = solver.model([u for u, _ in sym.units.values()])
    sizes = {n: m * int(model[u]) for n, (u, m) in sym.units.items()}
    cex = _counterexample(sym, goals, claim, sizes)
    return SymbolicResult(False, f"refuted at {_sizes(sizes)}: {cex.failed}", cex, **common, **st,
                          time_s=time.perf_counter() - t0)


def _counterexample(sym: SymAnalysis, goals: list[Obligation], claim: _Claim,
                    sizes: dict[str, int]) -> Counterexample:
    env = sym.env(sizes)
    failed = next((g for g in goals if not g.constraint.evaluate(env)), None)
    if failed is None:
        raise InternalError(f"SMT model {sizes} violates no side condition or claim when evaluated")
    shapes = sym.input_shapes(sizes)
    cex = _confirm(sym.graph, shapes, claim.values(env), sizes, failed.text(sym.show))
    if cex is None:
        raise InternalError(f"symbolic rules disagree with analyze at {sizes}: {failed} fails "
                            "symbolically but the concrete shapes satisfy the claim")
    return cex


def _confirm(graph: Graph, shapes: tuple[Shape, ...], claimed: tuple[tuple[str, ...], ...],
             sizes: Mapping[str, int], failed: str) -> Counterexample | None:
    """The counterexample if `analyze` confirms it (a ShapeError or a mismatching output)."""
    try:
        outs = analyze(graph.with_input_shapes(shapes)).output_shapes
    except ShapeError as e:
        return Counterexample(dict(sizes), shapes, failed, f"ShapeError: {e}", None, claimed)
    for j, (got, want) in enumerate(zip(outs, claimed, strict=True)):
        if tuple(str(d) for d in got) != want:
            msg = f"output {j} ('{graph.outputs[j]}') has shape {got}, claimed ({', '.join(want)})"
            return Counterexample(dict(sizes), shapes, failed, msg, outs, claimed)
    return None


def _structural(graph: Graph, input_dims: Mapping[str, Sequence[str | int]], rng: Mapping[str, Range],
                claim: _Claim, why: str, t0: float) -> SymbolicResult:
    """A failure independent of the sizes: the smallest sizes are a counterexample."""
    sizes = {n: r.unit_lo * r.multiple_of for n, r in rng.items()}
    shapes = tuple(tuple(sizes[d] if isinstance(d, str) else d for d in input_dims[n])
                   for n in graph.input_names)
    env = {u: sizes[n] // m for n, (u, m) in dim_units(rng).items()}
    cex = _confirm(graph, shapes, claim.values(env), sizes, why)
    if cex is None:
        raise InternalError(f"structural failure not confirmed concretely at {sizes}: {why}")
    return SymbolicResult(False, f"refuted at {_sizes(sizes)}: {why}", cex, time_s=time.perf_counter() - t0)
