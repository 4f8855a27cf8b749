"""Soundness of benchmark answers judged independently of the engine's own rules.

- every "solved" row: the returned program is re-judged by `alphanas.oracle.judge` in every
  context (the host's producers give the linear inputs); `oracle_ok` is True / False (the oracle
  names a failing claim: UNSOUND) / None (the oracle could not decide);
- every "unsat" row on a task with <= 3 ops (the problem's max_ops <= 3, or the task's n_ops
  <= 3): brute force (`benchmarks.synthesis.bruteforce`, judged by the oracle) per context. A
  brute-force program refutes a single-context unsat (UNSOUND); a brute-force "unsat" in some
  context confirms it when the problem allows <= 3 ops (brute force then saw the whole space);
- adversarial rows also carry the stored brute-force label (`label`).

`oracle_summary` gives the line `solved N (oracle-confirmed N), unsat M (brute-force-confirmed K
of the <= 3-op ones), unknown U, unsound X`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["BF_CAP", "BF_TIME_S", "check", "judge_result", "oracle_summary", "unsound"]

BF_CAP = 400_000
BF_TIME_S = 60.0
UNKNOWN = ("timeout", "unknown", "budget")


def _linear(ctx: Any) -> frozenset[str] | None:
    """The context's inputs produced by a linear op: from the host, else the spec's [context]."""
    from alphanas.oracle import host_linear_inputs

    if ctx.host is None:
        return None
    names = [n for n, _ in ctx.inputs]
    if ctx.selection is not None and len(ctx.selection.inputs) == len(names):
        lin = host_linear_inputs(ctx.host, ctx.selection.inputs)
        return frozenset(n for n, h in zip(names, ctx.selection.inputs, strict=True) if h in lin)
    return host_linear_inputs(ctx.host, names)


def _context_graphs(problem: Any, result: Any) -> list[Any]:
    """The returned program rebuilt in every context (context 0: the result's own graph)."""
    from alphanas.synth.build import build_program
    from alphanas.synth.menu import menu

    g0 = result.graph
    graphs = [g0]
    if len(problem.contexts) == 1:
        return graphs
    by_key = {v.key: v for v in menu(problem.ops)}
    names = list(g0.input_names)
    nodes = []
    for op, key in zip(g0.ops, result.skeleton, strict=True):
        nodes.append((by_key[key], tuple(names.index(i) for i in op.inputs)))
        names.append(op.name)
    graphs += [build_program(ctx, nodes, result.assignment) for ctx in problem.contexts[1:]]
    return graphs


def judge_result(problem: Any, result: Any) -> tuple[bool | None, str]:
    """(True: the oracle confirms every context | False: it refutes one | None: undecided, why)."""
    from alphanas.oracle import judge

    if result.graph is None:
        return False, "solved without a program"
    try:
        graphs = _context_graphs(problem, result)
    except Exception as e:  # noqa: BLE001 - a program that cannot be rebuilt is reported, not raised
        return None, f"cannot rebuild the program per context: {type(e).__name__}: {e}"
    undecided = ""
    for k, (ctx, g) in enumerate(zip(problem.contexts, graphs, strict=True)):
        try:
            v = judge(g, ctx.spec, _linear(ctx))
        except Exception as e:  # noqa: BLE001
            undecided = undecided or f"context {k}: oracle error {type(e).__name__}: {e}"
            continue
        if v.failures:
            return False, f"context {k}: " + "; ".join(v.failures)
        if not v.holds:
            undecided = undecided or f"context {k}: {v.undecided}"
    return (None, undecided) if undecided else (True, "")


def _host_shape(ctx: Any) -> tuple[int, ...] | None:
    """The shape of the host tensor the context replaces, by the IR (None without a host)."""
    from alphanas.ir.analysis import analyze

    if ctx.host is None or ctx.selection is None or len(ctx.selection.outputs) != 1:
        return None
    return tuple(analyze(ctx.host).shapes[ctx.selection.outputs[0]])


def _host_shape_note(problem: Any) -> str:
    """Spliced into its host a program must keep the replaced tensor's shape: when a context's
    spec asks another, no program exists (the shapes themselves confirm the unsat, and no
    standalone brute-force program refutes it)."""
    for k, ctx in enumerate(problem.contexts):
        kept = _host_shape(ctx)
        if kept is not None and kept != tuple(ctx.out_shape):
            return f"context {k}: the host keeps {kept}, the spec asks {tuple(ctx.out_shape)}"
    return ""


def _brute_force(task: Any, problem: Any) -> dict[str, Any]:
    from dataclasses import replace

    from benchmarks.synthesis.bruteforce import MAX_OPS, describe, search

    complete = problem.max_ops <= MAX_OPS
    out: dict[str, Any] = {"bf_complete": complete, "bf_count": 0}
    statuses = []
    for k, ctx in enumerate(problem.contexts):
        spec = ctx.spec
        if spec.search.max_ops != problem.max_ops:  # the problem's bound (e.g. the --max-ops flag)
            spec = replace(spec, search=replace(spec.search, max_ops=problem.max_ops))
        try:
            o = search(spec, _linear(ctx), cap=BF_CAP, time_limit_s=BF_TIME_S)
        except Exception as e:  # noqa: BLE001
            statuses.append("error")
            out["bf_error"] = f"context {k}: {type(e).__name__}: {e}"[:300]
            break
        out["bf_count"] += o.count
        statuses.append(o.status)
        if o.status == "unsat":
            break  # one context without a program: the whole problem has none
        if o.status == "sat" and len(problem.contexts) == 1:
            out["bf_program"] = describe(o.graph)
            out["bf_notes"] = list(o.space_notes)
        elif o.status != "sat":
            break
    last = statuses[-1] if statuses else "error"
    if last == "sat" and len(problem.contexts) > 1:
        last = "sat-per-context"  # each context alone has a program: no refutation
    out["bf_status"] = last
    return out


def check(task: Any, problem: Any, result: Any, synth: str) -> dict[str, Any]:
    """The extra row fields for one run (see the module docstring)."""
    from alphanas.ir.serialize import to_json

    row: dict[str, Any] = {}
    if getattr(task, "suite", "") == "adversarial":
        row["label"] = getattr(task, "label", None)
        row["family"] = getattr(task, "family", "")
    if result is None:
        return row
    if result.status == "solved":
        ok, why = judge_result(problem, result)
        row["oracle_ok"], row["oracle_why"] = ok, why[:300]
        if result.graph is not None:
            row["program_json"] = to_json(result.graph)
    elif result.status == "unsat" and synth != "greedy":
        shape = _host_shape_note(problem)
        if shape:
            row.update(bf_status="host-shape", bf_complete=True, bf_note=shape)
        elif problem.max_ops <= 3 or getattr(task, "n_ops", 99) <= 3:
            row.update(_brute_force(task, problem))
    return row


def unsound(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Answers the oracle or brute force refutes: a solved program the oracle rejects, an unsat
    where brute force found a program (single context)."""
    bad = []
    for r in rows:
        if r["status"] == "solved" and r.get("oracle_ok") is False:
            bad.append(f"{r['synth']} solved {r['task']} but the oracle rejects the program: "
                       f"{r.get('oracle_why', '')}")
        elif r["status"] == "unsat" and r.get("bf_status") == "sat":
            notes = f" [{', '.join(r['bf_notes'])}]" if r.get("bf_notes") else ""
            bad.append(f"{r['synth']} said unsat on {r['task']} but brute force found: "
                       f"{r.get('bf_program', '?')}{notes}")
    return bad


def oracle_summary(rows: Sequence[dict[str, Any]], synth: str = "ours",
                   unsound_rows: int | None = None) -> str:
    """`solved N (oracle-confirmed N), unsat M (brute-force-confirmed K of the <= 3-op ones),
    unknown U, unsound X` over the rows of `synth`; X counts unsound rows (`unsound_rows` when
    the caller counts them with more rules, else by `unsound`)."""
    rs = [r for r in rows if r["synth"] == synth]
    solved = [r for r in rs if r["status"] == "solved"]
    unsat = [r for r in rs if r["status"] == "unsat"]
    confirmed = sum(r.get("oracle_ok") is True for r in solved)
    bf = sum(r.get("bf_status") == "unsat" and r.get("bf_complete", False) for r in unsat)
    host = sum(r.get("bf_status") == "host-shape" for r in unsat)
    unknown = sum(r["status"] in UNKNOWN for r in rs)
    x = unsound_rows if unsound_rows is not None else len(unsound(rs))
    extra = f"; {host} more where the host keeps another shape" if host else ""
    return (f"solved {len(solved)} (oracle-confirmed {confirmed}), unsat {len(unsat)} "
            f"(brute-force-confirmed {bf} of the <= 3-op ones{extra}), unknown {unknown}, "
            f"unsound {x}")
