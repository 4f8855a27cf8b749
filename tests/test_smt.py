"""The SMT seam: term algebra, constraint folding, bounded checks, models, assumptions, stats.

The differential tests tie Python evaluation of terms and constraints to Z3's: a random formula
with its variables pinned is SAT exactly when it evaluates to True in Python.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphanas.errors import InternalError
from alphanas.properties import smt
from alphanas.properties.smt import FALSE, TRUE, SmtError, SmtSettings, Solver, Status, Term

x, y, z = smt.var("x"), smt.var("y"), smt.var("z")


# ---- terms --------------------------------------------------------------------------------------


def test_terms_are_canonical_and_hashable() -> None:
    assert 2 * x + 3 - x == x + 3
    assert (x + y) * (x - y) == x * x - y * y
    assert x - x == Term() and (x - x).value == 0
    assert hash(x + y) == hash(y + x)
    assert len({x + 1, 1 + x, x + 2}) == 2
    assert (x * 4).value is None and Term.const(7).value == 7


def test_term_inspection_and_printing() -> None:
    t = 3 * x * y - 2 * x + 5
    assert t.degree == 2 and t.variables == {"x", "y"} and not t.is_const
    assert str(t) == "3*x*y - 2*x + 5"
    assert str(-x) == "-x" and str(Term()) == "0"
    assert t.evaluate({"x": 2, "y": 3}) == 18 - 4 + 5


def test_divmod_const_uses_floor_semantics() -> None:
    q, r = (5 * x - 3).divmod_const(2)
    assert q == 2 * x - 2 and r == x + 1
    for v in range(-5, 6):
        assert (5 * v - 3) == 2 * q.evaluate({"x": v}) + r.evaluate({"x": v})


def test_exact_division_by_monomials_and_multiples() -> None:
    assert (384 * x * y * z).exact_div(384 * x) == y * z
    assert (6 * x + 4 * x * y).exact_div(2 * x) == 3 + 2 * y
    assert (6 * x + 3).exact_div(2) is None
    assert (x * y).exact_div(z) is None
    assert (2 * x + 2).exact_div(x + 1) == Term.const(2)
    assert (x + 2).exact_div(x + 1) is None
    assert x.exact_div(0) is None


def test_as_term_rejects_non_ints() -> None:
    with pytest.raises(SmtError, match="expected an int or a Term, got 1.5"):
        smt.as_term(1.5)  # type: ignore[arg-type]
    with pytest.raises(SmtError, match="got True"):
        smt.as_term(True)


# ---- constraints --------------------------------------------------------------------------------


def test_constraints_fold_constants() -> None:
    assert smt.eq(x + 1, 1 + x) is TRUE
    assert smt.le(3, 2) is FALSE and smt.gt(x + 1, x) is TRUE
    assert smt.divides(4, 8 * x + 12) is TRUE
    assert smt.divides(4, 8 * x + 2) is FALSE
    assert smt.divides(4, 2 * x) == smt.Divides(4, 2 * x)
    assert smt.all_of(TRUE, smt.eq(x, 1), [TRUE]) == smt.eq(x, 1)
    assert smt.all_of(smt.eq(x, 1), FALSE) is FALSE and smt.all_of() is TRUE
    assert smt.any_of(smt.eq(x, 1), TRUE) is TRUE and smt.any_of() is FALSE
    assert smt.negate(smt.le(x, 2)) == smt.gt(x, 2)
    assert smt.implies(FALSE, smt.eq(x, 1)) is TRUE


def test_divides_rejects_bad_divisors() -> None:
    with pytest.raises(SmtError, match="positive constant divisor, got 0"):
        smt.divides(0, x)


def test_constraints_evaluate_in_python() -> None:
    env = {"x": 3, "y": 4, "b": True}
    assert smt.all_of(smt.eq(x * x + y * y, 25), smt.bool_var("b")).evaluate(env)
    assert not smt.any_of(smt.lt(x, 0), smt.divides(2, x)).evaluate(env)
    assert smt.is_max(smt.var("m"), [x, y]).evaluate({**env, "m": 4})
    assert not smt.is_max(smt.var("m"), [x, y]).evaluate({**env, "m": 5})
    assert smt.is_ite(smt.var("m"), smt.eq(x, 3), y, 0).evaluate({**env, "m": 4})
    assert str(smt.all_of(smt.ge(x, 1), smt.divides(3, y))) == "(x >= 1) and (3 divides y)"


def test_is_max_needs_terms() -> None:
    with pytest.raises(SmtError, match="at least one term"):
        smt.is_max(x, [])


# ---- the solver ---------------------------------------------------------------------------------


def test_sat_model_and_term_values() -> None:
    s = Solver()
    s.add(smt.ge(x, 3), smt.le(x, 5), smt.eq(y, x * x), smt.gt(y, 10))
    r = s.check()
    assert r.status is Status.SAT and r.sat and r.reason == "sat"
    m = s.model(["x", "y"])
    assert m["y"] == m["x"] ** 2 and m["x"] in (4, 5)
    assert s.value(y - x) == m["y"] - m["x"]


def test_unsat_and_assumption_literals_name_the_core() -> None:
    s = Solver()
    s.add(smt.ge(x, 0), smt.le(x, 10))
    big, odd = s.track(smt.ge(x, 11), "big"), s.track(smt.divides(2, x + 1), "odd")
    assert s.check([odd]).sat and s.model(["x"])["x"] % 2 == 1
    r = s.check([big, odd])
    assert r.unsat and r.core == ("big",)
    assert s.check().sat  # the literals only bind when assumed


def test_push_pop_and_stats() -> None:
    s = Solver()
    s.add(smt.eq(x, 1))
    s.push()
    s.add(smt.eq(x, 2))
    assert s.check().unsat
    s.pop()
    assert s.check().sat
    st_ = s.stats
    assert (st_.checks, st_.sat, st_.unsat, st_.unknown) == (2, 1, 1, 0) and st_.time_s > 0
    before = smt.total_stats().checks
    s.check()
    assert smt.total_stats().checks == before + 1


def test_rlimit_bounds_a_check_deterministically() -> None:
    s = Solver(SmtSettings(rlimit=50_000, timeout_ms=60_000))
    s.add(smt.gt(x, 0), smt.gt(y, 0), smt.gt(z, 0), smt.eq(x * x * x + y * y * y, z * z * z))
    r = s.check()
    assert r.status is Status.UNKNOWN and "resource limit (rlimit=50000)" in r.reason
    assert s.check(rlimit=60_000).status is Status.UNKNOWN  # per-check override


def test_timeout_bounds_a_check() -> None:
    s = Solver(SmtSettings(rlimit=0, timeout_ms=50))  # rlimit 0: unlimited
    s.add(smt.gt(x, 0), smt.gt(y, 0), smt.gt(z, 0), smt.eq(x * x * x + y * y * y, z * z * z))
    r = s.check()
    assert r.status is Status.UNKNOWN and r.reason == "timeout after 50 ms"


def test_model_needs_a_sat_check() -> None:
    s = Solver()
    s.add(FALSE)
    assert s.check().unsat
    with pytest.raises(InternalError, match="preceding check that returned SAT"):
        s.model()
    with pytest.raises(InternalError, match="preceding check that returned SAT"):
        s.value(x)


def test_a_name_is_either_an_int_or_a_bool() -> None:
    s = Solver()
    s.add(smt.ge(smt.var("v"), 0))
    with pytest.raises(SmtError, match="'v' is used both as an integer and as a Boolean"):
        s.add(smt.bool_var("v"))


def test_solvers_in_threads_are_serialised_safely() -> None:
    results: list[bool] = []

    def work(k: int) -> None:
        s = Solver()
        v = smt.var(f"t{k}")
        s.add(smt.eq(3 * v, 3 * k))
        results.append(s.check().sat and s.model([f"t{k}"])[f"t{k}"] == k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 4


def test_importing_the_properties_package_does_not_import_z3() -> None:
    code = ("import sys, alphanas.properties, alphanas.properties.smt, alphanas.properties.symbolic, "
            "alphanas.properties.encodings; assert 'z3' not in sys.modules; "
            "from alphanas.properties.smt import Solver; Solver(); assert 'z3' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- differential: Python evaluation vs Z3 ------------------------------------------------------

NAMES = ("x", "y", "z")


@st.composite
def terms(draw: st.DrawFn) -> Term:
    t = Term.const(draw(st.integers(-5, 5)))
    for _ in range(draw(st.integers(1, 3))):
        mono = Term.const(draw(st.integers(-4, 4)))
        for _ in range(draw(st.integers(1, 2))):
            mono = mono * smt.var(draw(st.sampled_from(NAMES)))
        t = t + mono
    return t


@st.composite
def constraints(draw: st.DrawFn, depth: int = 2) -> smt.Constraint:
    kind = draw(st.sampled_from(["cmp", "cmp", "div"] + (["and", "or", "not"] if depth else [])))
    if kind == "cmp":
        op = draw(st.sampled_from([smt.eq, smt.ne, smt.le, smt.lt, smt.ge, smt.gt]))
        return op(draw(terms()), draw(terms()))
    if kind == "div":
        return smt.divides(draw(st.integers(1, 4)), draw(terms()))
    if kind == "not":
        return smt.negate(draw(constraints(depth - 1)))
    parts = [draw(constraints(depth - 1)) for _ in range(draw(st.integers(1, 3)))]
    return smt.all_of(parts) if kind == "and" else smt.any_of(parts)


envs = st.fixed_dictionaries({n: st.integers(-6, 6) for n in NAMES})


@given(terms(), envs)
def test_term_values_agree_with_z3(t: Term, env: dict[str, int]) -> None:
    s = Solver()
    s.add(*(smt.eq(smt.var(n), v) for n, v in env.items()))
    assert s.check().sat
    assert s.value(t) == t.evaluate(env)


@given(constraints(), envs)
def test_constraint_truth_agrees_with_z3(c: smt.Constraint, env: dict[str, int]) -> None:
    s = Solver()
    s.add(*(smt.eq(smt.var(n), v) for n, v in env.items()), c)
    assert s.check().sat is c.evaluate(env)
