"""Variable initialization: `host_init` (NumPy, no compile) vs. `jax.jit(module.init)`.

Usage: python benchmarks/init.py [--models resnet50 efficientnet_b0] [--reps 5] [--json]
The jit path is timed once per model (compile + run, a fresh process cache each model).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp

from alphanas.ir import zoo
from alphanas.ir.init import host_init
from alphanas.ir.lower import lower


def _time_host(name: str, reps: int) -> list[float]:
    g = zoo.build(name)
    out = []
    for r in range(reps):
        t = time.perf_counter()
        host_init(g, seed=r)
        out.append(time.perf_counter() - t)
    return out


def _time_jit(name: str) -> float:
    g = zoo.build(name)
    x = jnp.zeros(g.input_shapes[0], jnp.float32)
    t = time.perf_counter()
    jax.block_until_ready(jax.jit(lower(g).init)(jax.random.PRNGKey(0), x))
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["resnet50", "efficientnet_b0"])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = []
    for name in args.models:
        host = _time_host(name, args.reps)
        jit = _time_jit(name)
        rows.append({"model": name, "host_median_s": statistics.median(host),
                     "host_min_s": min(host), "host_max_s": max(host), "jit_init_s": jit,
                     "speedup": jit / statistics.median(host)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"machine: {platform.platform()}, jax {jax.__version__} ({jax.default_backend()})")
    for r in rows:
        print(f"{r['model']:16s} host_init {r['host_median_s']*1e3:8.1f} ms "
              f"[{r['host_min_s']*1e3:.1f}-{r['host_max_s']*1e3:.1f}]   "
              f"jit(init) {r['jit_init_s']:6.1f} s   {r['speedup']:6.0f}x")


if __name__ == "__main__":
    main()
