"""Property benchmark: rule-based shape + depth + mixing inference vs. the concrete path.

For each model (default: ResNet-50, ViT-S/16, EfficientNet-B0 from the zoo) it times
- ours: `analyze` (every tensor's shape), `infer_depth` and `infer_mixing` on the whole model,
  with the analysis cache and the per-op mixing-table cache cleared before every repetition, at
  the model's default size (224) and at its small size (`zoo.ZOO[name].small`, e.g. 32x32);
- concrete: `jax.eval_shape` of the Flax lowering (shapes) plus the Jacobian-based mixing of
  `alphanas.properties.mixing_concrete` (the definition evaluated with vector-Jacobian products,
  compile included: that is what a user pays). The Jacobian path is far too big at 224 for
  ResNet-50, so it is measured at the small size only; the speed-up compares both paths at the
  small size, and ours at 224 is also compared with `jax.eval_shape` alone at 224 (a lower
  bound of the concrete path there).
- symbolic proofs: `prove_shape` for a ResNet-50 stage and whole-model claims over size ranges.
It prints median, min-max and interquartile range in ms, machine info, and the targets: whole
ResNet-50 <= 50 ms and >= 20x faster than the concrete path.

    python benchmarks/properties.py [--models resnet50 vit_s16 efficientnet_b0] [--reps 20]
        [--concrete-reps 1] [--draws 24] [--skip-concrete] [--json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import summary, timed  # noqa: E402

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # the concrete path is timed on the same CPU
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_MODELS = ("resnet50", "vit_s16", "efficientnet_b0")
TARGET_MS, TARGET_SPEEDUP = 50.0, 20.0


def optional(module: str, name: str, notes: list[str]) -> Any:
    """`module.name`, or None with a note when it does not exist (yet)."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        notes.append(f"{module}.{name} is unavailable ({e}); timing without it")
        return None


class Ours:
    """Shape + depth + mixing inference with every cache cleared before each repetition."""

    def __init__(self, notes: list[str]) -> None:
        from alphanas.ir.analysis import _analyze, analyze

        self.analyze, self.caches = analyze, [_analyze]
        self.depth = optional("alphanas.properties.depth", "infer_depth", notes)
        self.mixing = optional("alphanas.properties.mixing", "infer_mixing", notes)
        tables = optional("alphanas.properties.mixing", "_op_arrays", [])
        if tables is not None and hasattr(tables, "cache_clear"):
            self.caches.append(tables)

    def clear(self) -> None:
        for c in self.caches:
            c.cache_clear()

    def parts(self, graph: Any) -> dict[str, Callable[[], Any]]:
        from alphanas.properties.base import Subject

        out: dict[str, Callable[[], Any]] = {"shape": lambda: self.analyze(graph)}
        if self.depth is not None:
            out["depth"] = lambda: self.depth(Subject.whole(graph))
        if self.mixing is not None:
            out["mixing"] = lambda: self.mixing(graph)
        return out

    def run(self, graph: Any, reps: int) -> dict[str, Any]:
        """Median etc. of the whole inference, and the median of each part."""
        parts = self.parts(graph)
        every = lambda: [f() for f in parts.values()]  # noqa: E731
        self.clear()
        every()  # warm-up: imports, first-call overheads
        total = summary(timed(every, reps, self.clear))
        per_part = {name: statistics.median(timed(f, reps, self._before(name, graph)))
                    for name, f in parts.items()}
        return {**total, "parts_median_ms": per_part}

    def _before(self, part: str, graph: Any) -> Callable[[], None]:
        """Clear the caches; depth and mixing then read a fresh analysis, as they do in use."""
        def before() -> None:
            self.clear()
            if part != "shape":
                self.analyze(graph)

        return before


def concrete(graph: Any, reps: int, draws: int, notes: list[str]) -> dict[str, Any]:
    """`jax.eval_shape` (cold once, then warm) plus the Jacobian mixing (compile included)."""
    from alphanas.ir.lower import eval_shapes

    cold = timed(lambda: eval_shapes(graph), 1)[0]
    shapes = summary(timed(lambda: eval_shapes(graph), max(reps, 3)))
    out: dict[str, Any] = {"eval_shape": {**shapes, "cold_ms": cold}}
    mixing = optional("alphanas.properties.mixing_concrete", "concrete_mixing", notes)
    if mixing is not None:
        result: dict[str, Any] = {}
        ms = timed(lambda: result.update(m=mixing(graph, draws=draws)), reps)
        out["jacobian_mixing"] = {**summary(ms), "draws": draws}
        out["mixing_result"] = result["m"]
    total = shapes["median_ms"] + out.get("jacobian_mixing", {}).get("median_ms", 0.0)
    out["total_median_ms"] = total
    return out


def mixing_agrees(graph: Any, concrete_result: Any) -> bool | None:
    try:
        from alphanas.properties.mixing import infer_mixing
    except ImportError:
        return None
    ours = infer_mixing(graph)
    return all(tuple(map(tuple, ours[p])) == tuple(map(tuple, m)) for p, m in concrete_result.items())


def bench_model(name: str, ours: Ours, reps: int, concrete_reps: int, draws: int,
                skip_concrete: bool, notes: list[str]) -> dict[str, Any]:
    from alphanas.ir import analyze, zoo

    full, small = zoo.build(name), zoo.build(name, **zoo.ZOO[name].small)
    res: dict[str, Any] = {
        "model": name, "ops": len(full.ops), "full_input": list(full.input_shapes[0] or ()),
        "small_input": list(small.input_shapes[0] or ()), "params": analyze(full).params,
        "ours_full": ours.run(full, reps), "ours_small": ours.run(small, reps)}
    if skip_concrete:
        return res
    res["concrete_small"] = c = concrete(small, concrete_reps, draws, notes)
    res["mixing_agrees_small"] = mixing_agrees(small, c.pop("mixing_result", {})) if "jacobian_mixing" in c else None
    res["speedup_small"] = c["total_median_ms"] / res["ours_small"]["median_ms"]
    from alphanas.ir.lower import eval_shapes

    eval_shapes(full)
    res["eval_shape_full"] = summary(timed(lambda: eval_shapes(full), 3))
    res["speedup_full_vs_eval_shape"] = res["eval_shape_full"]["median_ms"] / res["ours_full"]["median_ms"]
    return res


def bench_proofs(reps: int) -> list[dict[str, Any]]:
    """prove_shape on a ResNet-50 stage and on whole models, over size ranges."""
    from alphanas.ir import extract, select, zoo
    from alphanas.properties.proof import prove_shape

    r50 = zoo.build("resnet50")
    stage = extract(r50, select(r50, [o.name for o in r50.ops if o.name.startswith("stage2/")]))
    img = {"input": ["B", "H", "W", 3]}
    cases: list[tuple[str, Any, Any, Any, Any]] = [
        ("resnet50 stage2: (B,H,W,256) -> (B,H/2,W/2,512), H,W even in [8,1024]", stage,
         {stage.input_names[0]: ["B", "H", "W", 256]},
         {"B": (1, 64), "H": (8, 1024, 2), "W": (8, 1024, 2)}, [["B", "H/2", "W/2", 512]]),
        ("resnet50: (B,H,W,3) -> (B,1000), H,W multiples of 32 up to 1024", r50, img,
         {"B": (1, 64), "H": (32, 1024, 32), "W": (32, 1024, 32)}, [["B", 1000]]),
        ("resnet50: (B,H,W,3) -> (B,1000), any H,W in [1,1024]", r50, img,
         {"B": (1, 64), "H": (1, 1024), "W": (1, 1024)}, [["B", 1000]]),
        ("vit_s16: (B,H,W,3) -> (B,1000), H,W multiples of 16 up to 512", zoo.build("vit_s16"), img,
         {"B": (1, 64), "H": (16, 512, 16), "W": (16, 512, 16)}, [["B", 1000]]),
        ("efficientnet_b0: (B,H,W,3) -> (B,1000), H,W multiples of 32 up to 1024",
         zoo.build("efficientnet_b0"), img, {"B": (1, 64), "H": (32, 1024, 32), "W": (32, 1024, 32)},
         [["B", 1000]]),
    ]
    out = []
    for label, g, dims, rng, claim in cases:
        def prove(g: Any = g, dims: Any = dims, rng: Any = rng, claim: Any = claim) -> Any:
            return prove_shape(g, dims, rng, claim)

        ms = timed(prove, reps)
        r = prove_shape(g, dims, rng, claim)
        out.append({"claim": label, "holds": r.holds, "smt_checks": r.smt_checks,
                    "obligations": r.obligations, "residual": r.residual, **summary(ms)})
    return out


def machine() -> dict[str, Any]:
    import jax
    import z3

    return {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or "unknown", "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0], "jax": jax.__version__,
            "jax_backend": jax.default_backend(), "z3": z3.get_version_string()}


def cell(s: dict[str, float]) -> str:
    return (f"{s['median_ms']:.2f} [{s['min_ms']:.2f}-{s['max_ms']:.2f}] "
            f"({s['q1_ms']:.2f}-{s['q3_ms']:.2f})")


def report(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [f"machine: {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}, "
             f"jax {m['jax']} ({m['jax_backend']}), z3 {m['z3']}"]
    lines += [f"note: {n}" for n in res["notes"]]
    lines.append("ours = analyze + infer_depth + infer_mixing, caches cleared each rep; "
                 "median [min-max] (IQR) ms")
    for r in res["models"]:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in r["ours_full"]["parts_median_ms"].items())
        lines.append(f"{r['model']} ({r['ops']} ops, {r['params']:,} params)")
        lines.append(f"  ours  @{r['full_input']}: {cell(r['ours_full'])}   parts: {parts}")
        lines.append(f"  ours  @{r['small_input']}: {cell(r['ours_small'])}")
        if "concrete_small" in r:
            c = r["concrete_small"]
            jac = c.get("jacobian_mixing")
            lines.append(f"  concrete @{r['small_input']}: eval_shape {cell(c['eval_shape'])} "
                         f"(cold {c['eval_shape']['cold_ms']:.0f})"
                         + (f", Jacobian mixing ({jac['draws']} draws, compile incl.) {cell(jac)}" if jac else ""))
            lines.append(f"  speed-up @small: {r['speedup_small']:.0f}x; mixing agrees: "
                         f"{r['mixing_agrees_small']}; ours@full vs eval_shape@full alone "
                         f"({r['eval_shape_full']['median_ms']:.1f} ms): {r['speedup_full_vs_eval_shape']:.0f}x")
    lines.append("symbolic proofs (prove_shape): median [min-max] (IQR) ms")
    for p in res["proofs"]:
        lines.append(f"  {p['claim']}: holds={p['holds']}, SMT checks {p['smt_checks']}, "
                     f"residual {p['residual']}/{p['obligations']}: {cell(p)}")
    t = res["targets"]
    lines.append(f"target: whole resnet50 <= {TARGET_MS:.0f} ms: {t['resnet50_ms']}; "
                 f">= {TARGET_SPEEDUP:.0f}x faster than the concrete path: {t['resnet50_speedup']}")
    return "\n".join(lines)


def targets(models: list[dict[str, Any]]) -> dict[str, Any]:
    r50 = next((r for r in models if r["model"] == "resnet50"), None)
    if r50 is None:
        return {"resnet50_ms": "not measured", "resnet50_speedup": "not measured"}
    ms = r50["ours_full"]["median_ms"]
    out = {"resnet50_ms": f"{'met' if ms <= TARGET_MS else 'NOT met'} ({ms:.1f} ms)"}
    if "speedup_small" in r50:
        s = r50["speedup_small"]
        out["resnet50_speedup"] = f"{'met' if s >= TARGET_SPEEDUP else 'NOT met'} ({s:.0f}x at the small size)"
    else:
        out["resnet50_speedup"] = "not measured (--skip-concrete)"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="zoo model names")
    p.add_argument("--reps", type=int, default=20, help="timed repetitions of our inference and proofs")
    p.add_argument("--concrete-reps", type=int, default=1, help="repetitions of the Jacobian mixing")
    p.add_argument("--draws", type=int, default=24, help="random draws of the Jacobian mixing")
    p.add_argument("--skip-concrete", action="store_true", help="time only our inference and proofs")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    if min(args.reps, args.concrete_reps, args.draws) < 1:
        p.error("--reps, --concrete-reps and --draws must be >= 1")
    from alphanas.ir import zoo

    unknown = [m for m in args.models if m not in zoo.ZOO]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; the zoo has {', '.join(zoo.names())}")
    notes: list[str] = []
    ours = Ours(notes)
    models = [bench_model(m, ours, args.reps, args.concrete_reps, args.draws, args.skip_concrete, notes)
              for m in args.models]
    res = {"benchmark": "properties: shape+depth+mixing inference vs jax.eval_shape + Jacobian mixing",
           "machine": machine(), "notes": notes, "models": models,
           "proofs": bench_proofs(args.reps), "targets": targets(models)}
    print(json.dumps(res, indent=2, default=str) if args.json else report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
