"""The SMT seam: the one module of alphanas that talks to Z3.

Everything else builds formulas from this small vocabulary and never imports z3:

- `Term`: a polynomial with integer coefficients over named integer variables, kept in a
  canonical form (so equal terms compare and hash equal, and `x - x` folds to 0). Linear terms
  are the common case; products of variables are allowed (Z3's non-linear arithmetic, bounded
  by the check's resource limit like everything else).
- `Constraint`: comparisons of terms, divisibility by a constant, Boolean literals and the
  connectives; built with `eq`, `le`, `divides`, `all_of`, `any_of`, ... which fold constants
  (`eq(x + 1, x + 1)` is `TRUE`), and evaluable in plain Python (`c.evaluate(env)`).
- `Solver`: a Z3 solver whose every check is bounded by a deterministic `rlimit` and a
  wall-clock `timeout_ms`; `check(assumptions=...)` returns SAT/UNSAT/UNKNOWN with a reason
  (and the failed assumptions on UNSAT), `model()` gives Python ints, `track(c)` makes an
  assumption literal for cheap re-checks, and `stats` counts checks and SMT time.

z3 is imported lazily, on the first solver, so importing this module (and `alphanas.properties`)
needs no z3. Solvers share Z3's default context unless given a `fresh_context()`. Z3 contexts are not
thread-safe: this module serialises every call into Z3 with one process-wide lock, so threads
may share it (without parallel speed-up); use processes for parallel solving.
"""

from __future__ import annotations

import enum
import operator
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from alphanas.errors import AlphanasError, InternalError

__all__ = [
    "FALSE", "TRUE", "BoolLit", "CheckResult", "Constraint", "SmtError", "SmtSettings",
    "SmtStats", "Solver", "Status", "Term", "all_of", "any_of", "as_term", "bool_var",
    "divides", "eq", "fresh_context", "ge", "gt", "implies", "is_ite", "is_max", "le", "lt", "ne", "negate",
    "total_stats", "var",
]

Monomial = tuple[str, ...]
"""Sorted variable names (repeated for powers); () is the constant monomial."""
Env = Mapping[str, Any]


class SmtError(AlphanasError, ValueError):
    """A formula cannot be built as asked (e.g. a name used both as an int and a Bool)."""


# ---- terms ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class Term:
    """sum(coef * prod(vars)) in canonical form: sorted monomials, no zero coefficients."""

    coeffs: tuple[tuple[Monomial, int], ...] = ()

    @staticmethod
    def _of(d: Mapping[Monomial, int]) -> Term:
        return Term(tuple(sorted((m, c) for m, c in d.items() if c)))

    @staticmethod
    def const(c: int) -> Term:
        return Term((((), int(c)),) if c else ())

    @staticmethod
    def var(name: str) -> Term:
        return Term((((name,), 1),))

    # -- inspection ----------------------------------------------------------------------

    @property
    def is_const(self) -> bool:
        return all(not m for m, _ in self.coeffs)

    @property
    def value(self) -> int | None:
        """The constant this term is, or None when it has variables."""
        if not self.coeffs:
            return 0
        if len(self.coeffs) == 1 and not self.coeffs[0][0]:
            return self.coeffs[0][1]
        return None

    @property
    def degree(self) -> int:
        return max((len(m) for m, _ in self.coeffs), default=0)

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(v for m, _ in self.coeffs for v in m)

    def evaluate(self, env: Env) -> int:
        total = 0
        for m, c in self.coeffs:
            p = c
            for v in m:
                p *= env[v]
            total += p
        return total

    # -- arithmetic ----------------------------------------------------------------------

    def __add__(self, other: Term | int) -> Term:
        d = dict(self.coeffs)
        for m, c in as_term(other).coeffs:
            d[m] = d.get(m, 0) + c
        return Term._of(d)

    __radd__ = __add__

    def __neg__(self) -> Term:
        return Term(tuple((m, -c) for m, c in self.coeffs))

    def __sub__(self, other: Term | int) -> Term:
        return self + (-as_term(other))

    def __rsub__(self, other: Term | int) -> Term:
        return as_term(other) - self

    def __mul__(self, other: Term | int) -> Term:
        if isinstance(other, int):
            return Term(tuple((m, c * other) for m, c in self.coeffs)) if other else Term()
        d: dict[Monomial, int] = {}
        for m1, c1 in self.coeffs:
            for m2, c2 in other.coeffs:
                m = tuple(sorted(m1 + m2))
                d[m] = d.get(m, 0) + c1 * c2
        return Term._of(d)

    __rmul__ = __mul__

    def divmod_const(self, s: int) -> tuple[Term, Term]:
        """(q, r) with self == s*q + r and every coefficient of r in [0, s) (floor semantics)."""
        q: dict[Monomial, int] = {}
        r: dict[Monomial, int] = {}
        for m, c in self.coeffs:
            q[m], r[m] = divmod(c, s)
        return Term._of(q), Term._of(r)

    def exact_div(self, d: Term | int) -> Term | None:
        """self / d as a term when it divides exactly as polynomials (d a constant times a
        monomial, or a constant multiple of self), else None."""
        d = as_term(d)
        if not d.coeffs:
            return None
        if len(d.coeffs) == 1:
            (dm, dc), out = d.coeffs[0], {}
            for m, c in self.coeffs:
                rest = _mono_minus(m, dm)
                if rest is None or c % dc:
                    return None
                out[rest] = c // dc
            return Term._of(out)
        ratio = self.coeffs[0][1] // d.coeffs[0][1] if self.coeffs else 0
        return Term.const(ratio) if ratio and d * ratio == self else None

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        if not self.coeffs:
            return "0"
        parts = []
        for m, c in sorted(self.coeffs, key=lambda mc: (-len(mc[0]), mc[0])):
            body = "*".join(m)
            mag = abs(c)
            text = body if body and mag == 1 else (f"{mag}*{body}" if body else str(mag))
            parts.append(("-" if c < 0 else "+", text))
        first = ("-" if parts[0][0] == "-" else "") + parts[0][1]
        return first + "".join(f" {s} {t}" for s, t in parts[1:])


def _mono_minus(m: Monomial, d: Monomial) -> Monomial | None:
    rest = list(m)
    for v in d:
        if v not in rest:
            return None
        rest.remove(v)
    return tuple(rest)


def as_term(x: Term | int) -> Term:
    if isinstance(x, Term):
        return x
    if isinstance(x, int) and not isinstance(x, bool):
        return Term.const(x)
    raise SmtError(f"expected an int or a Term, got {x!r}")


def var(name: str) -> Term:
    """The integer variable `name` as a term."""
    return Term.var(name)


# ---- constraints ----------------------------------------------------------------------------

_PY_OPS = {"==": operator.eq, "!=": operator.ne, "<=": operator.le, "<": operator.lt,
           ">=": operator.ge, ">": operator.gt}
_NEG = {"==": "!=", "!=": "==", "<=": ">", "<": ">=", ">=": "<", ">": "<="}


@dataclass(frozen=True, slots=True)
class Const:
    """TRUE or FALSE."""

    val: bool

    def evaluate(self, env: Env) -> bool:
        return self.val

    def __str__(self) -> str:
        return "true" if self.val else "false"


@dataclass(frozen=True, slots=True)
class Cmp:
    """lhs op rhs over integer terms."""

    op: str
    lhs: Term
    rhs: Term

    def evaluate(self, env: Env) -> bool:
        return _PY_OPS[self.op](self.lhs.evaluate(env), self.rhs.evaluate(env))

    def __str__(self) -> str:
        return f"{self.lhs} {self.op} {self.rhs}"


@dataclass(frozen=True, slots=True)
class Divides:
    """d divides term (d a positive constant)."""

    d: int
    term: Term

    def evaluate(self, env: Env) -> bool:
        return self.term.evaluate(env) % self.d == 0

    def __str__(self) -> str:
        return f"{self.d} divides {self.term}"


@dataclass(frozen=True, slots=True)
class BoolLit:
    """A Boolean variable (e.g. an assumption literal)."""

    name: str

    def evaluate(self, env: Env) -> bool:
        return bool(env[self.name])

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Not:
    arg: Constraint

    def evaluate(self, env: Env) -> bool:
        return not self.arg.evaluate(env)

    def __str__(self) -> str:
        return f"not ({self.arg})"


@dataclass(frozen=True, slots=True)
class And:
    args: tuple[Constraint, ...]

    def evaluate(self, env: Env) -> bool:
        return all(a.evaluate(env) for a in self.args)

    def __str__(self) -> str:
        return " and ".join(f"({a})" for a in self.args)


@dataclass(frozen=True, slots=True)
class Or:
    args: tuple[Constraint, ...]

    def evaluate(self, env: Env) -> bool:
        return any(a.evaluate(env) for a in self.args)

    def __str__(self) -> str:
        return " or ".join(f"({a})" for a in self.args)


Constraint = Const | Cmp | Divides | BoolLit | Not | And | Or
TRUE = Const(True)
FALSE = Const(False)


def _cmp(op: str, a: Term | int, b: Term | int) -> Constraint:
    a, b = as_term(a), as_term(b)
    diff = (a - b).value
    if diff is not None:
        return TRUE if _PY_OPS[op](diff, 0) else FALSE
    return Cmp(op, a, b)


def eq(a: Term | int, b: Term | int) -> Constraint:
    return _cmp("==", a, b)


def ne(a: Term | int, b: Term | int) -> Constraint:
    return _cmp("!=", a, b)


def le(a: Term | int, b: Term | int) -> Constraint:
    return _cmp("<=", a, b)


def lt(a: Term | int, b: Term | int) -> Constraint:
    return _cmp("<", a, b)


def ge(a: Term | int, b: Term | int) -> Constraint:
    return _cmp(">=", a, b)


def gt(a: Term | int, b: Term | int) -> Constraint:
    return _cmp(">", a, b)


def divides(d: int, t: Term | int) -> Constraint:
    """`d` divides `t`, for a constant d >= 1 (folded when every coefficient is a multiple)."""
    if not isinstance(d, int) or d < 1:
        raise SmtError(f"divides needs a positive constant divisor, got {d!r}")
    _, r = as_term(t).divmod_const(d)
    if r.value is not None:
        return TRUE if r.value == 0 else FALSE
    return Divides(d, r)


def bool_var(name: str) -> BoolLit:
    return BoolLit(name)


def negate(c: Constraint) -> Constraint:
    if isinstance(c, Const):
        return FALSE if c.val else TRUE
    if isinstance(c, Cmp):
        return Cmp(_NEG[c.op], c.lhs, c.rhs)
    if isinstance(c, Not):
        return c.arg
    return Not(c)


def all_of(*cs: Constraint | Iterable[Constraint]) -> Constraint:
    flat = _flatten(cs, And)
    if any(c == FALSE for c in flat):
        return FALSE
    kept = tuple(dict.fromkeys(c for c in flat if c != TRUE))
    return kept[0] if len(kept) == 1 else (And(kept) if kept else TRUE)


def any_of(*cs: Constraint | Iterable[Constraint]) -> Constraint:
    flat = _flatten(cs, Or)
    if any(c == TRUE for c in flat):
        return TRUE
    kept = tuple(dict.fromkeys(c for c in flat if c != FALSE))
    return kept[0] if len(kept) == 1 else (Or(kept) if kept else FALSE)


def _flatten(cs: Iterable[Any], kind: type) -> list[Constraint]:
    out: list[Constraint] = []
    for c in cs:
        if isinstance(c, kind):
            out.extend(c.args)  # type: ignore[attr-defined]
        elif isinstance(c, (Const, Cmp, Divides, BoolLit, Not, And, Or)):
            out.append(c)
        else:
            out.extend(_flatten(c, kind))
    return out


def implies(a: Constraint, b: Constraint) -> Constraint:
    return any_of(negate(a), b)


def is_max(v: Term | int, terms: Sequence[Term | int]) -> Constraint:
    """v == max(terms) (terms non-empty)."""
    if not terms:
        raise SmtError("is_max needs at least one term")
    return all_of(all_of(ge(v, t) for t in terms), any_of(eq(v, t) for t in terms))


def is_ite(v: Term | int, cond: Constraint, a: Term | int, b: Term | int) -> Constraint:
    """v == (a if cond else b)."""
    return any_of(all_of(cond, eq(v, a)), all_of(negate(cond), eq(v, b)))


# ---- solving --------------------------------------------------------------------------------


class Status(enum.Enum):
    SAT = "sat"
    UNSAT = "unsat"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SmtSettings:
    """Bounds of every check: `rlimit` is Z3's deterministic resource count per check (roughly
    1-2 M per second of search on one core); `timeout_ms` is wall-clock. 0 lifts a bound."""

    rlimit: int = 20_000_000
    timeout_ms: int = 20_000


@dataclass(frozen=True)
class CheckResult:
    """A check's outcome; `core` holds the names of the failed assumptions on UNSAT."""

    status: Status
    reason: str
    time_s: float
    core: tuple[str, ...] = ()

    @property
    def sat(self) -> bool:
        return self.status is Status.SAT

    @property
    def unsat(self) -> bool:
        return self.status is Status.UNSAT


@dataclass
class SmtStats:
    """Counters of checks and seconds spent in Z3."""

    checks: int = 0
    sat: int = 0
    unsat: int = 0
    unknown: int = 0
    time_s: float = 0.0

    def record(self, r: CheckResult) -> None:
        self.checks += 1
        self.time_s += r.time_s
        setattr(self, r.status.name.lower(), getattr(self, r.status.name.lower()) + 1)

    def copy(self) -> SmtStats:
        return SmtStats(self.checks, self.sat, self.unsat, self.unknown, self.time_s)


_LOCK = threading.RLock()
_TOTAL = SmtStats()


def fresh_context() -> Any:
    """A new Z3 context: solvers built on it see nothing solved before, so their models do not
    depend on the process's history (the synthesizer makes one per call)."""
    import z3

    with _LOCK:
        return z3.Context()


def total_stats() -> SmtStats:
    """A snapshot of the process-wide counters over every solver."""
    with _LOCK:
        return _TOTAL.copy()


@dataclass
class _Vars:
    z3: Any
    ctx: Any = None
    ints: dict[str, Any] = field(default_factory=dict)
    bools: dict[str, Any] = field(default_factory=dict)

    def int(self, name: str) -> Any:
        if name not in self.ints:
            if name in self.bools:
                raise SmtError(f"'{name}' is used both as a Boolean and as an integer")
            self.ints[name] = self.z3.Int(name, self.ctx)
        return self.ints[name]

    def bool(self, name: str) -> Any:
        if name not in self.bools:
            if name in self.ints:
                raise SmtError(f"'{name}' is used both as an integer and as a Boolean")
            self.bools[name] = self.z3.Bool(name, self.ctx)
        return self.bools[name]


class Solver:
    """A bounded Z3 solver over our vocabulary. Not for concurrent use from several threads
    without the module lock (taken internally), see the module docstring."""

    def __init__(self, settings: SmtSettings | None = None, context: Any = None) -> None:
        """`context`: a `fresh_context()` to isolate this solver's terms (and its choices) from
        everything solved before in the process; None shares Z3's default context."""
        import z3

        self.settings = settings or SmtSettings()
        self.stats = SmtStats()
        self._z3 = z3
        self._vars = _Vars(z3, context)
        self._ctx = context
        self._terms: dict[Term, Any] = {}
        self._n_lits = 0
        with _LOCK:
            self._s = z3.Solver(ctx=context)
        self._model: Any = None

    def add(self, *constraints: Constraint) -> None:
        with _LOCK:
            for c in constraints:
                if c != TRUE:
                    self._s.add(self._expr(c))
        self._model = None

    def track(self, c: Constraint, name: str | None = None) -> BoolLit:
        """A fresh assumption literal `lit` with `lit -> c` asserted; pass it to `check`."""
        self._n_lits += 1
        lit = BoolLit(name or f"_lit{self._n_lits}")
        self.add(implies(lit, c))
        return lit

    def push(self) -> None:
        with _LOCK:
            self._s.push()

    def pop(self) -> None:
        with _LOCK:
            self._s.pop()
        self._model = None

    def check(self, assumptions: Sequence[BoolLit | Constraint] = (), *, rlimit: int | None = None,
              timeout_ms: int | None = None) -> CheckResult:
        """SAT/UNSAT/UNKNOWN under `assumptions`, within `rlimit` and `timeout_ms`."""
        rl = self.settings.rlimit if rlimit is None else rlimit
        ms = self.settings.timeout_ms if timeout_ms is None else timeout_ms
        with _LOCK:
            lits = [self._expr(a) for a in assumptions]
            self._s.set("rlimit", int(rl))
            self._s.set("timeout", int(ms))
            t0 = time.perf_counter()
            r = self._s.check(*lits)
            dt = time.perf_counter() - t0
            res = self._result(r, dt, rl, ms, assumptions)
            self.stats.record(res)
            _TOTAL.record(res)
        return res

    def _result(self, r: Any, dt: float, rl: int, ms: int, assumptions: Sequence[Any]) -> CheckResult:
        z3 = self._z3
        if r == z3.sat:
            self._model = self._s.model()
            return CheckResult(Status.SAT, "sat", dt)
        self._model = None
        if r == z3.unsat:
            core = tuple(str(c) for c in self._s.unsat_core()) if assumptions else ()
            return CheckResult(Status.UNSAT, "unsat", dt, core)
        why = self._s.reason_unknown()
        if "resource limit" in why or (why == "canceled" and dt * 1000 < 0.9 * ms):
            why = f"resource limit (rlimit={rl}) exhausted"
        elif why in ("timeout", "canceled"):
            why = f"timeout after {ms} ms"
        return CheckResult(Status.UNKNOWN, why, dt)

    def model(self, names: Iterable[str] | None = None) -> dict[str, int | bool]:
        """Values of the named variables (default: every variable seen) in the last SAT model."""
        if self._model is None:
            raise InternalError("Solver.model() needs a preceding check that returned SAT")
        with _LOCK:
            ints = self._vars.ints if names is None else {n: self._vars.int(n) for n in names
                                                          if n not in self._vars.bools}
            out: dict[str, int | bool] = {
                n: self._model.eval(v, model_completion=True).as_long() for n, v in ints.items()}
            if names is None:
                for n, v in self._vars.bools.items():
                    out[n] = self._z3.is_true(self._model.eval(v, model_completion=True))
        return out

    def value(self, t: Term | int) -> int:
        """The value of a term in the last SAT model."""
        if self._model is None:
            raise InternalError("Solver.value() needs a preceding check that returned SAT")
        with _LOCK:
            return self._model.eval(self._term(as_term(t)), model_completion=True).as_long()

    # -- translation ---------------------------------------------------------------------

    def _term(self, t: Term) -> Any:
        hit = self._terms.get(t)
        if hit is not None:
            return hit
        z3 = self._z3
        parts = []
        for m, c in t.coeffs:
            factors = [self._vars.int(v) for v in m]
            if not factors:
                parts.append(z3.IntVal(c, self._ctx))
                continue
            p = factors[0]
            for f in factors[1:]:
                p = p * f
            parts.append(p if c == 1 else z3.IntVal(c, self._ctx) * p)
        e = z3.IntVal(0, self._ctx) if not parts else (parts[0] if len(parts) == 1 else z3.Sum(parts))
        self._terms[t] = e
        return e

    def _expr(self, c: Constraint) -> Any:
        z3 = self._z3
        if isinstance(c, Cmp):
            return _PY_OPS[c.op](self._term(c.lhs), self._term(c.rhs))
        if isinstance(c, Const):
            return z3.BoolVal(c.val, self._ctx)
        if isinstance(c, BoolLit):
            return self._vars.bool(c.name)
        if isinstance(c, Divides):
            return self._term(c.term) % c.d == 0
        if isinstance(c, Not):
            return z3.Not(self._expr(c.arg))
        if isinstance(c, And):
            return z3.And([self._expr(a) for a in c.args]) if c.args else z3.BoolVal(True, self._ctx)
        if isinstance(c, Or):
            return z3.Or([self._expr(a) for a in c.args]) if c.args else z3.BoolVal(False, self._ctx)
        raise SmtError(f"not a constraint: {c!r}")
