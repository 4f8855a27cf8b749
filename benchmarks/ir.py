"""IR benchmark: our rule-based shape + cost inference vs. `jax.eval_shape` of the Flax lowering.

For each model (default: ResNet-50 and ViT-S/16 from the zoo) it times
- ours: `alphanas.ir.analysis._analyze` with its cache bypassed (every tensor's shape, params
  and FLOPs of every op, relative sizes resolved), `--reps` times;
- jax:  `alphanas.ir.lower.eval_shapes` (abstract tracing of the lowered module's init and
  apply, no compute), one cold call then `--jax-reps` warm calls;
and prints median, min-max and interquartile range in ms, and the speed-up (jax / ours).
The issue's target is ours >= 20x faster than jax.

    python benchmarks/ir.py [--models resnet50 vit_s16] [--reps 30] [--jax-reps 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import summary, timed  # noqa: E402

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # eval_shape computes nothing; skip device start-up
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_MODELS = ("resnet50", "vit_s16")
FALLBACK_MODELS = ("cifar_cnn", "mlp")


def pick_models(wanted: list[str]) -> tuple[list[str], list[str]]:
    """The wanted models the zoo has (else the fallbacks), and notes on what was replaced."""
    from alphanas.ir import zoo

    have = set(zoo.names())
    found = [m for m in wanted if m in have]
    notes = [f"model '{m}' is not in the zoo (have: {', '.join(sorted(have))})" for m in wanted if m not in have]
    if not found:
        found = [m for m in FALLBACK_MODELS if m in have]
        notes.append(f"falling back to {', '.join(found)}")
    return found, notes


def bench_model(name: str, reps: int, jax_reps: int) -> dict[str, Any]:
    from alphanas.ir import analyze, zoo
    from alphanas.ir.analysis import _analyze
    from alphanas.ir.lower import eval_shapes

    g = zoo.build(name)
    shapes = g.input_shapes
    a = analyze(g)
    ours_fn = lambda: _analyze.__wrapped__(g, shapes)  # noqa: E731  (bypass the lru cache)
    ours_fn()  # warm-up
    ours = timed(ours_fn, reps)
    cold = timed(lambda: eval_shapes(g), 1)[0]
    variables, out = eval_shapes(g)
    outs = out if isinstance(out, tuple) else (out,)
    agree = tuple(tuple(o.shape) for o in outs) == a.output_shapes
    jx = timed(lambda: eval_shapes(g), jax_reps)
    o, j = summary(ours), summary(jx)
    return {"model": name, "ops": len(g.ops), "params": a.params, "flops": a.flops,
            "input_shapes": [list(s) for s in shapes], "output_shapes_agree": agree,
            "ours": o, "jax": {**j, "cold_ms": cold},
            "speedup_median": j["median_ms"] / o["median_ms"],
            "speedup_worst": j["min_ms"] / o["max_ms"]}


def machine() -> dict[str, Any]:
    import jax

    return {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or "unknown", "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0], "jax": jax.__version__,
            "jax_backend": jax.default_backend()}


def report(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [f"machine: {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}, "
             f"jax {m['jax']} ({m['jax_backend']})"]
    lines += [f"note: {n}" for n in res["notes"]]
    lines.append(f"{'model':<14}{'ops':>5}{'params':>12}  {'ours median [min-max] (IQR) ms':<34}"
                 f"{'jax median [min-max] (IQR) ms':<44}{'cold ms':>9}{'speed-up':>10}")

    def cell(s: dict[str, float]) -> str:
        return (f"{s['median_ms']:.3f} [{s['min_ms']:.3f}-{s['max_ms']:.3f}] "
                f"({s['q1_ms']:.3f}-{s['q3_ms']:.3f})")

    for r in res["models"]:
        lines.append(f"{r['model']:<14}{r['ops']:>5}{r['params']:>12,}  {cell(r['ours']):<34}"
                     f"{cell(r['jax']):<44}{r['jax']['cold_ms']:>9.1f}{r['speedup_median']:>9.1f}x")
        if not r["output_shapes_agree"]:
            lines.append(f"  WARNING: {r['model']}: rule output shapes differ from jax.eval_shape")
    target = res["target_speedup"]
    verdict = "met" if res["target_met"] else "NOT met"
    lines.append(f"target: ours >= {target}x faster than jax.eval_shape (median): {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="zoo model names")
    p.add_argument("--reps", type=int, default=30, help="timed repetitions of our inference")
    p.add_argument("--jax-reps", type=int, default=5, help="timed repetitions of jax.eval_shape (after one cold call)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    if args.reps < 1 or args.jax_reps < 1:
        p.error("--reps and --jax-reps must be >= 1")
    models, notes = pick_models(args.models)
    if not models:
        p.error("no benchmark model is available in the zoo")
    results = [bench_model(m, args.reps, args.jax_reps) for m in models]
    res = {"benchmark": "ir: rule-based shape+cost inference vs jax.eval_shape",
           "machine": machine(), "notes": notes, "target_speedup": 20,
           "target_met": all(r["speedup_median"] >= 20 for r in results), "models": results}
    print(json.dumps(res, indent=2) if args.json else report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
