"""NAS overhead benchmark.

1. Share of a search's wall time spent outside training (mutation = property inference +
   synthesis + re-verification, bookkeeping, the store): a small search on digits, measured as
   1 - sum(train time) / wall time. Target <= 5 %.
2. Step time of the lowered zoo ResNet-18 (CIFAR stem) vs. a hand-written Flax ResNet-18 of the
   same architecture: a jitted SGD train step (batch-norm statistics updated), median over
   steps after warm-up. Target ratio <= 1.05.

    python benchmarks/nas_overhead.py [--trials 8] [--epochs 2] [--batch 32] [--steps 20]
        [--skip-search] [--skip-step] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import summary  # noqa: E402


def resnet18_flax() -> Any:
    """ResNet-18 with the CIFAR stem, written directly in Flax (the zoo's architecture)."""
    import flax.linen as nn
    import jax.numpy as jnp

    class Block(nn.Module):
        features: int
        strides: int

        @nn.compact
        def __call__(self, x: Any, train: bool) -> Any:
            bn = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)  # noqa: E731
            y = nn.Conv(self.features, (3, 3), self.strides, padding="SAME", use_bias=False)(x)
            y = nn.relu(bn()(y))
            y = nn.Conv(self.features, (3, 3), 1, padding="SAME", use_bias=False)(y)
            y = bn()(y)
            if self.strides != 1 or x.shape[-1] != self.features:
                x = nn.Conv(self.features, (1, 1), self.strides, padding="SAME", use_bias=False)(x)
                x = bn()(x)
            return nn.relu(y + x)

    class ResNet18(nn.Module):
        @nn.compact
        def __call__(self, x: Any, train: bool = False) -> Any:
            x = nn.Conv(64, (3, 3), 1, padding="SAME", use_bias=False)(x)
            x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x))
            for i, f in enumerate((64, 128, 256, 512)):
                for j in range(2):
                    x = Block(f, 2 if (i > 0 and j == 0) else 1)(x, train)
            return nn.Dense(10)(jnp.mean(x, axis=(1, 2)))

    return ResNet18()


def step_time(module: Any, batch: int, steps: int) -> list[float]:
    """Milliseconds per jitted SGD train step (after two warm-up steps)."""
    import jax
    import jax.numpy as jnp
    import optax

    x = jnp.ones((batch, 32, 32, 3), jnp.float32)
    y = jnp.zeros((batch,), jnp.int32)
    variables = module.init(jax.random.PRNGKey(0), x)
    tx = optax.sgd(0.01, momentum=0.9)
    state = (variables["params"], variables["batch_stats"], tx.init(variables["params"]))

    @jax.jit
    def step(state: Any) -> Any:
        params, stats, opt = state

        def loss(p: Any) -> Any:
            out, upd = module.apply({"params": p, "batch_stats": stats}, x, train=True,
                                    mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(out, y).mean(), upd

        (_, upd), g = jax.value_and_grad(loss, has_aux=True)(params)
        u, opt = tx.update(g, opt, params)
        return optax.apply_updates(params, u), upd["batch_stats"], opt

    for _ in range(2):
        state = jax.block_until_ready(step(state))
    out = []
    for _ in range(steps):
        t = time.perf_counter()
        state = jax.block_until_ready(step(state))
        out.append((time.perf_counter() - t) * 1e3)
    return out


def compare_steps(batch: int, steps: int) -> dict[str, Any]:
    from alphanas.ir import zoo
    from alphanas.ir.lower import lower

    ours = lower(zoo.build("resnet18_cifar", batch=batch))
    ref = resnet18_flax()
    a, b = [], []
    for _ in range(2):  # interleave to spread machine noise over both
        a += step_time(ours, batch, steps // 2)
        b += step_time(ref, batch, steps // 2)
    sa, sb = summary(a), summary(b)
    return {"lowered": sa, "hand_written": sb, "ratio": sa["median_ms"] / sb["median_ms"]}


def overhead(trials: int, epochs: int, dataset: str = "digits", limit: int = 0) -> dict[str, Any]:
    from alphanas.nas.config import SearchConfig
    from alphanas.nas.evolve import run_search

    cfg = SearchConfig(dataset=dataset, data_limit=limit, seed_model="cifar_cnn", trials=trials,
                       batch=2, train={"epochs": epochs})
    with tempfile.TemporaryDirectory() as d:
        run_search(SearchConfig(dataset=dataset, data_limit=limit, trials=1,
                                train={"epochs": 1}), Path(d) / "warm")  # jax/z3 imports, caches
        t0 = time.perf_counter()
        store = run_search(cfg, Path(d) / "run")
        wall = time.perf_counter() - t0
        cands = store.candidates()
    train_s = sum(c.train_time_s or 0.0 for c in cands)
    return {"dataset": dataset, "epochs": epochs, "trials": len(cands), "wall_s": wall, "train_s": train_s,
            "outside_training_pct": 100 * (1 - train_s / wall),
            "statuses": {s: sum(c.status == s for c in cands) for s in ("ok", "failed", "rejected")}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--datasets", nargs="+", default=["digits", "synthetic"])
    ap.add_argument("--limit", type=int, default=2000, help="synthetic: training examples")
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--skip-step", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    import jax

    res: dict[str, Any] = {"machine": f"{platform.platform()}, {os.cpu_count()} CPUs, "
                           f"jax {jax.__version__} ({jax.default_backend()})"}
    if not a.skip_step:
        res["step_time"] = compare_steps(a.batch, a.steps)
    if not a.skip_search:
        res["search"] = [overhead(a.trials, a.epochs, ds, a.limit if ds != "digits" else 0)
                         for ds in a.datasets]
    if a.json:
        print(json.dumps(res, indent=1))
        return 0
    print(f"machine: {res['machine']}")
    if "step_time" in res:
        s = res["step_time"]
        f = lambda d: f"{d['median_ms']:.1f} ms [{d['min_ms']:.1f}-{d['max_ms']:.1f}]"  # noqa: E731
        print(f"ResNet-18 (CIFAR) train step, batch {a.batch}: lowered {f(s['lowered'])}, "
              f"hand-written {f(s['hand_written'])}; ratio {s['ratio']:.3f} (target <= 1.05)")
    for s in res.get("search", []):
        print(f"search on {s['dataset']}, {s['trials']} trials x {s['epochs']} epochs: wall "
              f"{s['wall_s']:.1f} s, training+evaluation {s['train_s']:.1f} s, outside training "
              f"{s['outside_training_pct']:.1f} % (target <= 5 %); {s['statuses']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
