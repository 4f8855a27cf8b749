"""Oracle and deadline benchmark (issue 8).

1. Oracle cost: `alphanas.oracle.facts` (one Flax eval_shape trace for shapes and params, exact
   mixing by pulled-back masks, depth walk, FLOPs, peak) on seeded random programs of <= 8 ops
   from the synthesizer's menu at <= 16x16, caches cleared before each call. Target <= 20 ms
   median. Also the whole `judge` (facts + the spec's claims) and the mixing pull-back alone.
2. The whole-call deadline: `synthesize` on the two slowest tasks of the synthesis benchmark
   (one spends its time enumerating, one in Z3 and re-verification), at limits below and above
   their run time; the overshoot (wall - limit) must stay within 10 % + 0.5 s. The first call of
   the process includes importing JAX (the oracle's trace), as a CLI call would.

    python benchmarks/oracle.py [--programs 60] [--reps 3] [--limits 0.5,1,2,5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.timing import summary  # noqa: E402


def random_program(rng: random.Random, n_ops: int) -> Any:
    """A random well-formed program of the menu's ops on a (1, 16, 16, 8) input."""
    from alphanas.errors import AlphanasError
    from alphanas.ir import GraphBuilder, OpKind
    from alphanas.ir.analysis import analyze

    K = OpKind
    choices = [(K.CONV, {"features": 8, "kernel": 3}), (K.CONV, {"features": 16, "kernel": 5, "strides": 2}),
               (K.CONV, {"features": 8, "kernel": 7, "groups": 8}), (K.CONV, {"features": 8, "kernel": 1}),
               (K.RELU, {}), (K.BATCH_NORM, {}), (K.GELU, {}), (K.MAX_POOL, {"window": 3, "strides": 1,
               "padding": "SAME"}), (K.AVG_POOL, {"window": 2}), (K.LAYER_NORM, {})]
    while True:
        b = GraphBuilder("bench")
        tensors = [b.input("x", (1, 16, 16, 8))]
        try:
            for _ in range(n_ops):
                if len(tensors) > 1 and rng.random() < 0.25:
                    kind = rng.choice([K.ADD, K.CONCAT])
                    a, c = rng.sample(tensors, 2)
                    t = b.op(kind, a, c, **({"axis": -1} if kind is K.CONCAT else {}))
                else:
                    kind, attrs = rng.choice(choices)
                    t = b.op(kind, rng.choice(tensors[-2:]), **attrs)
                tensors.append(t)
            g = b.build(tensors[-1])
            analyze(g)
            return g
        except AlphanasError:
            continue


def clear_caches() -> None:
    import importlib

    from alphanas.ir.analysis import _analyze

    facts_module = importlib.import_module("alphanas.oracle.facts")  # the module, not the function

    facts_module._facts.cache_clear()
    facts_module.traced.cache_clear()
    _analyze.cache_clear()


def bench_oracle(programs: int, reps: int, seed: int = 0) -> dict[str, Any]:
    from alphanas.oracle import facts
    from alphanas.oracle.deps import exact_mixing

    rng = random.Random(seed)
    graphs = [random_program(rng, rng.randint(2, 8)) for _ in range(programs)]
    facts(graphs[0])  # import jax and trace once: the figures are warm
    full, mixing = [], []
    for _ in range(reps):
        for g in graphs:
            clear_caches()
            t = time.perf_counter()
            facts(g)
            full.append(1e3 * (time.perf_counter() - t))
            clear_caches()
            t = time.perf_counter()
            exact_mixing(g)
            mixing.append(1e3 * (time.perf_counter() - t))
    return {"programs": programs, "ops": [len(g.ops) for g in graphs],
            "facts": summary(full), "exact_mixing": summary(mixing)}


HARD = ("vit_ti16_fused:encoder11/mlp/dense0..encoder_norm/mutated:mixing-raise:p0[1,1]",   # enumeration
        "efficientnet_b0/stage3/block0:se/gate..project_bn/mutated:mixing-raise:p1[1,1]")  # Z3 + rechecks


def _hard_problems(limit: float) -> list[tuple[str, Any]]:
    """The two slowest tasks of the synthesis benchmark (5 s of enumeration to an unsat; 1.5 s
    over 168 skeletons of Z3 and re-verification), with hosts, at `limit` seconds."""
    from benchmarks.synthesis.run import _problem
    from benchmarks.synthesis.tasks import make_tasks

    tasks = {t.name: t for t in make_tasks(0)}
    return [(("enumeration", "z3+recheck")[i], _problem(tasks[n], limit)) for i, n in enumerate(HARD)]


def bench_deadline(limits: list[float]) -> list[dict[str, Any]]:
    from alphanas.synth import synthesize

    rows = []
    for limit in limits:
        for name, problem in _hard_problems(limit):
            t = time.perf_counter()
            r = synthesize(problem)
            wall = time.perf_counter() - t
            rows.append({"limit_s": limit, "task": name, "status": r.status, "wall_s": wall,
                         "overshoot_s": wall - limit, "allowed_s": 0.1 * limit + 0.5,
                         "ok": wall <= 1.1 * limit + 0.5, "reason": r.reason[:120]})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", type=int, default=60)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--limits", default="0.5,1,2,5")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    limits = [float(x) for x in a.limits.split(",") if x]
    deadline = bench_deadline(limits)  # first: the first call imports JAX, as a CLI call does
    oracle = bench_oracle(a.programs, a.reps)
    doc = {"machine": f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
           "oracle": oracle, "deadline": deadline}
    if a.json:
        print(json.dumps(doc, indent=1))
        return 0
    print(doc["machine"])
    f, m = oracle["facts"], oracle["exact_mixing"]
    print(f"oracle facts on {oracle['programs']} programs of {min(oracle['ops'])}-{max(oracle['ops'])} ops "
          f"at 16x16 (x{a.reps}, caches cleared): median {f['median_ms']:.2f} ms "
          f"(q1 {f['q1_ms']:.2f}, q3 {f['q3_ms']:.2f}, max {f['max_ms']:.2f}); target <= 20 ms")
    print(f"  of which exact mixing: median {m['median_ms']:.3f} ms (max {m['max_ms']:.3f})")
    print("deadline (wall of the whole synthesize call vs its limit; allowed 10 % + 0.5 s):")
    for r in deadline:
        print(f"  limit {r['limit_s']:4.2f} s  {r['task']:12s} {r['status']:8s} wall {r['wall_s']:6.2f} s  "
              f"overshoot {r['overshoot_s']:+.2f} s  [{'ok' if r['ok'] else 'OVER'}]")
    worst = max(r["overshoot_s"] - r["allowed_s"] for r in deadline)
    print(f"worst overshoot beyond the allowance: {worst:+.2f} s; median overshoot "
          f"{statistics.median(r['overshoot_s'] for r in deadline):+.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
