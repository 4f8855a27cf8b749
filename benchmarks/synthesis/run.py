"""Run the synthesis benchmark: every task x every synthesizer, a table per suite and overall.

Synthesizers: `ours` (alphanas.synth.synthesize), `greedy` (the paper-style progressive
baseline) and `plain` (plain enumeration over a concrete attribute grid, no pruning). Each run is
bounded by the same per-task time limit (`--timeout`, default 10 s); `plain` gets
`--plain-timeout` (default 2 s) because it is only there to count candidates and to serve as the
exhaustive oracle where it finishes.

Labels and soundness: a task whose source sub-graph meets its spec (every witness, and mutated
tasks marked `source_satisfies`) is satisfiable; an "unsat" answer on it is unsound. Where plain
enumeration finishes without a solution it is the exhaustive oracle ("unsat" for the grid); a
"solved" from it where `ours` said "unsat" is unsound too. Every "solved" is re-verified inside
the synthesizer before it is returned.

Oracle soundness (`benchmarks.synthesis.oracle_check`): every "solved" program is re-judged by
the independent oracle (`alphanas.oracle.judge`) and every "unsat" on a task of <= 3 ops is
cross-checked by brute force judged by the oracle; the report prints `solved N (oracle-confirmed
N), unsat M (brute-force-confirmed K of the <= 3-op ones), unknown U, unsound X` for `ours`.
`--suite adversarial` runs the hand-written adversarial specs (`benchmarks.synthesis.adversarial`,
labelled by brute force); it is not part of the default suites.

Rows are appended to a JSONL file as they finish (`--out`), so a killed run keeps its results and
`--resume` skips the tasks already there.

    python -m benchmarks.synthesis.run [--suite NAME] [--quick] [--synth ours,greedy,plain]
        [--timeout 10] [--plain-timeout 2] [--jobs 2] [--out results.jsonl] [--resume] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SYNTHS = ("ours", "greedy", "plain")


def _problem(task: Any, timeout: float) -> Any:
    from alphanas.synth import Problem, Settings
    from benchmarks.synthesis.tasks import source_subjects

    hosts = getattr(task, "hosts", None)  # standalone tasks (adversarial) say (None,)
    if hosts is None:
        hosts = [(s.host, s.selection) for s in source_subjects(task)]
    return Problem.of(task.specs, Settings(timeout_s=timeout), hosts=hosts)


def run_one(args: tuple[Any, str, float]) -> dict[str, Any]:
    """One (task, synthesizer) run as a JSON-ready row."""
    from alphanas.synth import synthesize
    from alphanas.synth.baselines import greedy_progressive, plain_enumerate
    from benchmarks.synthesis.oracle_check import check

    task, synth, timeout = args
    fn = {"ours": synthesize, "greedy": greedy_progressive, "plain": plain_enumerate}[synth]
    t0 = time.perf_counter()
    problem = r = None
    try:
        problem = _problem(task, timeout)
        r = fn(problem)
        status, reason, stats = r.status, r.reason, r.stats
    except Exception as e:  # a crash is a result too; it must not stop the suite
        status, reason, stats = "error", f"{type(e).__name__}: {e}", None
    wall = time.perf_counter() - t0
    row = {"task": task.name, "suite": task.suite, "kind": task.kind, "n_ops": task.n_ops,
           "contexts": len(task.specs), "known_sat": task.source_satisfies, "synth": synth,
           "status": status, "reason": reason[:300], "time_s": wall,
           "complete": stats.complete if stats else 0, "generated": stats.generated if stats else 0,
           "size": stats.size if stats else 0}
    try:  # the independent checks (oracle, brute force); not part of the timing
        row.update(check(task, problem, r, synth))
    except Exception as e:  # noqa: BLE001 - a checker crash is reported in the row
        row["check_error"] = f"{type(e).__name__}: {e}"[:300]
    return row


def _load(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.exists():
        for i, line in enumerate(path.read_text().splitlines(), 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                print(f"{path}:{i}: skipping a corrupted line (kept in the file)", file=sys.stderr)
    return rows


def run(tasks: Sequence[Any], synths: Sequence[str], timeout: float, plain_timeout: float,
        jobs: int, out: Path | None, resume: bool) -> list[dict[str, Any]]:
    done = _load(out) if (out is not None and resume) else []
    have = {(r["task"], r["synth"]) for r in done}
    todo = [(t, s, plain_timeout if s == "plain" else timeout)
            for t in tasks for s in synths if (t.name, s) not in have]
    if out is not None and not resume:
        out.write_text("")
    rows = list(done)
    for i, row in enumerate(_map(run_one, todo, jobs), 1):
        rows.append(row)
        if out is not None:
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
        print(f"\r[{i}/{len(todo)}] {row['synth']:6s} {row['status']:8s} {row['task'][:70]:70s}",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def warm_up() -> None:
    """Import jax and trace one tiny module, so the first task's re-verification (Flax
    eval_shape) does not pay the ~1 s import: the timings are of synthesis, not of imports."""
    from alphanas.ir import GraphBuilder, OpKind
    from alphanas.ir.lower import eval_shapes

    b = GraphBuilder("warm")
    eval_shapes(b.build(b.op(OpKind.RELU, b.input("x", (1, 4)))))


def _map(fn: Any, items: Sequence[Any], jobs: int) -> Iterable[Any]:
    if jobs <= 1:
        warm_up()
        yield from map(fn, items)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(jobs, initializer=warm_up) as pool:  # a Z3 context each
        yield from pool.imap(fn, items, chunksize=1)


def soundness(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every unsound answer: "unsat" on a known-satisfiable task or where the oracle solved,
    and what the independent oracle refutes (`oracle_check.unsound`)."""
    lines: dict[tuple[str, str], list[str]] = {}
    for key, line in _unsound(rows):
        lines.setdefault(key, []).append(line)
    return ["; ".join(v) for v in lines.values()]  # one line per unsound answer


def _unsound(rows: Sequence[dict[str, Any]]) -> list[tuple[tuple[str, str], str]]:
    """((synth, task), reason) per unsound answer, in row order."""
    from benchmarks.synthesis.oracle_check import unsound

    plain = {r["task"]: r for r in rows if r["synth"] == "plain"}
    bad = []
    for r in rows:
        key = (r["synth"], r["task"])
        bad += [(key, line) for line in unsound([r])]
        if r["status"] != "unsat" or r["synth"] == "greedy":
            continue
        if r["known_sat"]:
            bad.append((key, f"{r['synth']} said unsat on satisfiable {r['task']}"))
        elif r["synth"] == "ours" and plain.get(r["task"], {}).get("status") == "solved":
            bad.append((key, f"ours said unsat but plain enumeration solved {r['task']}"))
    return bad


def oracle_line(rows: Sequence[dict[str, Any]], synth: str = "ours") -> str:
    """`solved N (oracle-confirmed N), unsat M (brute-force-confirmed K of the <= 3-op ones),
    unknown U, unsound X` for `synth`; X counts its unsound rows by every rule."""
    from benchmarks.synthesis.oracle_check import oracle_summary

    n = len({key for key, _ in _unsound(rows) if key[0] == synth})
    return oracle_summary(rows, synth, n)


def label_mismatches(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Adversarial rows whose answer differs from the stored brute-force label (a solved row on
    a brute-force-unsat task is not unsound when the oracle confirms it: a width outside brute
    force's small set)."""
    out = []
    for r in rows:
        lab = r.get("label")
        if lab in ("sat", "unsat") and r["status"] in ("solved", "unsat") and \
                (r["status"] == "solved") != (lab == "sat"):
            ok = {True: "oracle-confirmed", False: "oracle-REJECTED", None: "oracle undecided"}
            extra = f" ({ok[r.get('oracle_ok')]})" if r["status"] == "solved" else ""
            out.append(f"{r['synth']} {r['status']}{extra} on {r['task']}, brute-force label {lab}")
    return out


def summary(rows: Sequence[dict[str, Any]], group: str = "suite") -> list[dict[str, Any]]:
    """Per (group, synthesizer): counts, solved/unsat %, timeouts, median/p95 time, candidates."""
    out = []
    keys = sorted({(r[group], r["synth"]) for r in rows})
    for g, s in [*keys, *sorted({("all", r["synth"]) for r in rows})]:
        rs = [r for r in rows if r["synth"] == s and (g == "all" or r[group] == g)]
        solved = [r for r in rs if r["status"] == "solved"]
        times = sorted(r["time_s"] for r in solved)
        out.append({group: g, "synth": s, "tasks": len(rs),
                    "solved_pct": 100 * len(solved) / len(rs),
                    "unsat_pct": 100 * sum(r["status"] == "unsat" for r in rs) / len(rs),
                    "timeouts": sum(r["status"] == "timeout" for r in rs),
                    "errors": sum(r["status"] == "error" for r in rs),
                    "median_s": statistics.median(times) if times else None,
                    "p95_s": times[min(len(times) - 1, int(0.95 * len(times)))] if times else None,
                    "candidates_median": statistics.median([r["complete"] for r in rs]) if rs else 0})
    return out


def targets(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """The issue's targets, as (target, measured, met)."""
    ours = [r for r in rows if r["synth"] == "ours"]
    wit = [r for r in ours if r["kind"] == "witness"]
    msat = [r for r in ours if r["kind"] == "mutated" and r["known_sat"]]
    solved = sorted(r["time_s"] for r in ours if r["status"] == "solved")
    out = [("witness: 100% solved, each <= 1 s",
            f"{sum(r['status'] == 'solved' for r in wit)}/{len(wit)} solved, "
            f"{sum(r['status'] == 'solved' and r['time_s'] <= 1 for r in wit)} within 1 s",
            all(r["status"] == "solved" and r["time_s"] <= 1 for r in wit)),
           ("mutated satisfiable: >= 95% solved within 10 s",
            f"{sum(r['status'] == 'solved' for r in msat)}/{len(msat)}",
            bool(msat) and sum(r["status"] == "solved" and r["time_s"] <= 10 for r in msat) >= 0.95 * len(msat)),
           ("0 unsound answers", f"{len(soundness(rows))} unsound", not soundness(rows)),
           ("median time per solved task <= 50 ms",
            f"{1000 * statistics.median(solved):.1f} ms" if solved else "-",
            bool(solved) and statistics.median(solved) <= 0.05)]
    out += _vs_baselines(rows)
    return out


def _vs_baselines(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    by = {(r["task"], r["synth"]): r for r in rows}
    out = []
    both = [(by[(t, "ours")], p) for (t, s), p in by.items() if s == "plain" and (t, "ours") in by
            and p["n_ops"] <= 6 and p["status"] == "solved"]
    if both:
        missed = sum(o["status"] != "solved" for o, _ in both)
        total = sum(p["complete"] for _, p in both) / max(sum(o["complete"] for o, _ in both), 1)
        median = statistics.median(max(p["complete"], 1) / max(o["complete"], 1) for o, p in both)
        out.append(("<= 6 ops: >= 100x fewer fully evaluated candidates than plain (in total over "
                    "the tasks plain solves), solving whenever plain does",
                    f"{total:,.0f}x fewer in total (per-task median {median:,.0f}x) on {len(both)} "
                    f"tasks plain solved; ours missed {missed}", total >= 100 and not missed))
    g = [r for r in rows if r["synth"] == "greedy"]
    if g:
        n_g = sum(r["status"] == "solved" for r in g)
        n_o = sum(by.get((r["task"], "ours"), {}).get("status") == "solved" for r in g)
        out.append(("strictly more solved than greedy (same limit)", f"ours {n_o} vs greedy {n_g}", n_o > n_g))
    return out


def print_report(rows: Sequence[dict[str, Any]]) -> None:
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    cols = ("tasks", "solved_pct", "unsat_pct", "timeouts", "errors", "median_s", "p95_s", "candidates_median")
    for group in ("suite", "kind"):
        print(f"\nby {group}: " + " | ".join(("synth", *cols)))
        for s in summary(rows, group):
            vals = [f"{s[c]:.1f}" if isinstance(s[c], float) and c.endswith("pct") else
                    f"{1000 * s[c]:.1f}ms" if isinstance(s[c], float) and c.endswith("_s") else
                    str(s[c] if s[c] is not None else "-") for c in cols]
            print(f"  {s[group]:18s} {s['synth']:6s} " + " ".join(f"{v:>9s}" for v in vals))
    print("\ntargets:")
    for name, got, met in targets(rows):
        print(f"  [{'met' if met else 'NOT MET'}] {name}: {got}")
    for line in soundness(rows):
        print(f"  UNSOUND: {line}")
    synths = [s for s in SYNTHS if any(r["synth"] == s for r in rows)]
    if synths:
        print(f"\noracle soundness ({synths[0]}):")
        print(oracle_line(rows, synths[0]))
        for line in label_mismatches(rows):
            print(f"  label mismatch: {line}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="alphanas bench synth", description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", action="append", help="a suite name (repeatable; default all but adversarial)")
    ap.add_argument("--quick", action="store_true", help="the ~15-task CI subset")
    ap.add_argument("--synth", default="ours,greedy,plain", help="comma list of ours, greedy, plain")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--plain-timeout", type=float, default=2.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="append rows to this JSONL file")
    ap.add_argument("--resume", action="store_true", help="skip rows already in --out")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    synths = [s.strip() for s in a.synth.split(",") if s.strip()]
    bad = [s for s in synths if s not in SYNTHS]
    if bad:
        ap.error(f"--synth: unknown synthesizer '{bad[0]}' (accepted: {', '.join(SYNTHS)})")
    if a.resume and a.out is None:
        ap.error("--resume needs --out FILE")
    from benchmarks.synthesis.adversarial import SUITE as ADVERSARIAL
    from benchmarks.synthesis.adversarial import adversarial_tasks
    from benchmarks.synthesis.tasks import make_tasks, quick_tasks

    others = [s for s in (a.suite or []) if s != ADVERSARIAL] or None
    try:
        if a.quick:
            tasks: list[Any] = list(quick_tasks(a.seed))
        elif a.suite and others is None:  # only the adversarial suite
            tasks = []
        else:
            tasks = list(make_tasks(a.seed, a.limit, others))
    except ValueError as e:
        ap.error(str(e))
    if not a.quick and a.suite and ADVERSARIAL in a.suite:
        tasks += adversarial_tasks(a.limit)
    rows = run(tasks, synths, a.timeout, a.plain_timeout, a.jobs, a.out, a.resume)
    if a.json:
        print(json.dumps({"rows": rows, "summary": summary(rows), "targets": targets(rows),
                          "unsound": soundness(rows), "oracle": oracle_line(rows),
                          "label_mismatches": label_mismatches(rows)}, indent=1))
    else:
        print_report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
