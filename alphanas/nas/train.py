"""Training of a graph on a `Dataset` with JAX/Flax/optax, on whatever backend JAX defaults to.

`train` adapts the graph to the dataset, initializes it on the host (or inherits `variables`),
runs a jitted train step (params + batch statistics, a dropout rng, optional augmentation) and
reports validation and test accuracy. A non-finite loss ends training with status "failed";
it never raises. Shapes stay static (train batches drop the remainder, eval batches are
padded), so a graph compiles one train step and one eval step; both are cached per graph.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from alphanas.errors import AlphanasError
from alphanas.ir.graph import Graph
from alphanas.nas.data import Dataset, adapt_graph, augment

__all__ = ["OPTIMIZERS", "SCHEDULES", "TrainConfig", "TrainError", "TrainResult", "evaluate",
           "predict", "train"]

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine")
_NAN_CHECK_EVERY = 32  # steps between host checks of the loss (each check syncs the device)


class TrainError(AlphanasError, ValueError):
    """A training configuration or the variables passed to `train` are invalid."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class TrainConfig:
    """How to train one candidate. weight_decay is L2 for adam/sgd, decoupled for adamw."""

    epochs: int = 1
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "cosine"
    weight_decay: float = 0.0
    augment: bool = True
    seed: int = 0
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise TrainError(f"TrainConfig.{name} must be an int >= 1, got {v!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise TrainError(f"TrainConfig.seed must be an int >= 0, got {self.seed!r}")
        if self.optimizer not in OPTIMIZERS:
            raise TrainError(f"TrainConfig.optimizer must be one of {', '.join(OPTIMIZERS)}; "
                             f"got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise TrainError(f"TrainConfig.schedule must be one of {', '.join(SCHEDULES)}; "
                             f"got {self.schedule!r}")
        if not _is_num(self.learning_rate) or self.learning_rate <= 0:
            raise TrainError(f"TrainConfig.learning_rate must be a finite number > 0, "
                             f"got {self.learning_rate!r}")
        if not _is_num(self.weight_decay) or self.weight_decay < 0:
            raise TrainError(f"TrainConfig.weight_decay must be a finite number >= 0, "
                             f"got {self.weight_decay!r}")
        if not isinstance(self.augment, bool):
            raise TrainError(f"TrainConfig.augment must be a bool, got {self.augment!r}")


@dataclass
class TrainResult:
    """Outcome of `train`. Accuracies are None when training failed; `variables` has NumPy
    leaves (None on failure); `final_loss` is the mean train loss of the last epoch run."""

    status: str
    reason: str
    val_accuracy: float | None
    test_accuracy: float | None
    train_time_s: float
    steps: int
    final_loss: float | None
    variables: dict[str, Any] | None
    history: list[dict[str, float]] = field(default_factory=list)
    compile_time_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def steps_per_s(self) -> float:
        """Train steps per second after the first (compiling) step."""
        run = self.train_time_s - self.compile_time_s
        return (self.steps - 1) / run if self.steps > 1 and run > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """Everything but the variables, as plain JSON-able values."""
        return {"status": self.status, "reason": self.reason, "val_accuracy": self.val_accuracy,
                "test_accuracy": self.test_accuracy, "train_time_s": self.train_time_s,
                "compile_time_s": self.compile_time_s, "steps": self.steps,
                "final_loss": self.final_loss, "history": list(self.history)}


# -- jitted functions, cached per graph -------------------------------------------------------


def _transform(optimizer: str, weight_decay: float) -> Any:
    """The optimizer without its learning rate (applied in the step, so it may vary)."""
    import optax

    parts = []
    if weight_decay and optimizer != "adamw":
        parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(optax.trace(decay=0.9) if optimizer == "sgd" else optax.scale_by_adam())
    if weight_decay and optimizer == "adamw":
        parts.append(optax.add_decayed_weights(weight_decay))
    return optax.chain(*parts)


@lru_cache(maxsize=16)
def _train_step(graph: Graph, optimizer: str, weight_decay: float, aug: str | None) -> Any:
    """jit of (state, x_all, y_all, idx, t, lr, base_key) -> (state, loss).

    state = (params, batch_stats, opt_state); idx (B,) picks the batch out of the device-resident
    data; `aug` is None, "crop" or "crop+flip".
    """
    import jax
    import optax

    from alphanas.ir.lower import lower

    module = lower(graph)
    tx = _transform(optimizer, weight_decay)

    def step(state: Any, x_all: Any, y_all: Any, idx: Any, t: Any, lr: Any, base_key: Any) -> Any:
        params, stats, opt_state = state
        x, y = x_all[idx], y_all[idx]
        k_aug, k_drop = jax.random.split(jax.random.fold_in(base_key, t))
        if aug is not None:
            x = augment(x, k_aug, flip=aug == "crop+flip")

        def loss_fn(p: Any) -> Any:
            v = {"params": p, "batch_stats": stats} if stats else {"params": p}
            logits, new = module.apply(v, x, train=True, mutable=["batch_stats"],
                                       rngs={"dropout": k_drop})
            loss = optax.softmax_cross_entropy_with_integer_labels(logits.astype("float32"), y)
            return loss.mean(), new.get("batch_stats", stats)

        (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = jax.tree_util.tree_map(lambda p, u: p - lr * u, params, updates)
        return (params, new_stats, opt_state), loss

    return jax.jit(step, donate_argnums=(0,))


@lru_cache(maxsize=32)
def _eval_apply(graph: Graph) -> Any:
    """jit of (variables, x) -> logits in eval mode (running statistics, no dropout)."""
    import jax

    from alphanas.ir.lower import lower

    module = lower(graph)
    return jax.jit(lambda variables, x: module.apply(variables, x, train=False))


def _predict_device(graph: Graph, variables: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Logits (N, classes) over batches padded to `batch_size`, so one shape is compiled."""
    import jax.numpy as jnp

    if len(graph.inputs) == 1 and len(x):  # share the compiled step with train()'s graph
        graph = graph.with_input_shapes([(1, *x.shape[1:])])
    fn = _eval_apply(graph)
    outs = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        n = len(xb)
        if n < batch_size:
            xb = np.concatenate([xb, np.zeros((batch_size - n, *xb.shape[1:]), xb.dtype)])
        outs.append(fn(variables, jnp.asarray(xb))[:n])
    if not outs:
        return np.zeros((0, 0), np.float32)
    return np.concatenate([np.asarray(o) for o in outs])


def _check_batch(batch_size: int) -> None:
    if not _is_int(batch_size) or batch_size < 1:
        raise TrainError(f"batch_size must be an int >= 1, got {batch_size!r}")


def predict(graph: Graph, variables: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits (N, classes) of `graph` in eval mode on x (N, *input_shape)."""
    import jax

    _check_batch(batch_size)
    return _predict_device(graph, jax.device_put(variables), np.asarray(x), batch_size)


def evaluate(graph: Graph, variables: Any, x: np.ndarray, y: np.ndarray,
             batch_size: int = 256) -> float:
    """Top-1 accuracy of `graph` in eval mode on (x, y)."""
    if len(x) != len(y):
        raise TrainError(f"x has {len(x)} examples but y has {len(y)}")
    if len(y) == 0:
        raise TrainError("cannot evaluate on an empty split")
    logits = predict(graph, variables, x, batch_size)
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(y)))


# -- training ---------------------------------------------------------------------------------


def _initial_variables(graph: Graph, seed: int, variables: Any) -> Any:
    """host_init variables, or `variables` checked against their structure and shapes."""
    import jax

    from alphanas.ir.init import host_init

    fresh = host_init(graph, seed)
    if variables is None:
        return fresh
    want = jax.tree_util.tree_flatten_with_path(fresh)[0]
    got = jax.tree_util.tree_flatten_with_path(variables)[0]
    want_shapes = {jax.tree_util.keystr(p): tuple(v.shape) for p, v in want}
    got_shapes = {jax.tree_util.keystr(p): tuple(np.shape(v)) for p, v in got}
    gname = graph.name or "<unnamed>"
    for k, s in want_shapes.items():
        if k not in got_shapes:
            raise TrainError(f"variables for graph {gname!r} lack {k} (shape {s})")
        if got_shapes[k] != s:
            raise TrainError(f"variables for graph {gname!r}: {k} has shape {got_shapes[k]}, "
                             f"expected {s}")
    extra = sorted(set(got_shapes) - set(want_shapes))
    if extra:
        raise TrainError(f"variables for graph {gname!r} have {extra[0]}, which the graph lacks")
    return variables


def _learning_rate(config: TrainConfig, t: int, total: int) -> np.float32:
    if config.schedule == "constant":
        return np.float32(config.learning_rate)
    return np.float32(config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * t / total)))


def _aug_mode(config: TrainConfig, dataset: Dataset) -> str | None:
    if not (config.augment and dataset.is_image):
        return None
    return "crop+flip" if dataset.hflip else "crop"


def _first_bad(losses: list[Any]) -> tuple[int, str] | None:
    """(index, "nan" or "inf") of the first non-finite loss in `losses`, or None."""
    vals = np.asarray([np.asarray(v) for v in losses], np.float64)
    bad = np.flatnonzero(~np.isfinite(vals))
    if not len(bad):
        return None
    return int(bad[0]), "nan" if np.isnan(vals[bad[0]]) else "inf"


@dataclass
class _Run:
    """Mutable state of one training run."""

    state: Any
    step: Any
    x_all: Any
    y_all: Any
    base_key: Any
    batch: int
    total: int
    t: int = 0
    compile_s: float = 0.0
    failure: str | None = None


def _run_epoch(run: _Run, config: TrainConfig, epoch: int, n: int, t0: float,
               where: str) -> list[Any]:
    """One epoch of steps; returns its losses. Sets `run.failure` at a non-finite loss."""
    import jax

    per_epoch = n // run.batch
    order = np.random.default_rng([config.seed, epoch]).permutation(n)[:per_epoch * run.batch]
    order = order.reshape(per_epoch, run.batch).astype(np.int32)
    losses: list[Any] = []
    checked = 0
    for i in range(per_epoch):
        lr = _learning_rate(config, run.t, run.total)
        try:
            run.state, loss = run.step(run.state, run.x_all, run.y_all, order[i],
                                       np.int32(run.t), lr, run.base_key)
        except Exception as e:
            if run.t:
                raise
            raise TrainError(f"{where} failed to compile: {e}") from e
        losses.append(loss)
        run.t += 1
        if run.t == 1:
            jax.block_until_ready(loss)
            run.compile_s = time.perf_counter() - t0
        if len(losses) - checked >= _NAN_CHECK_EVERY or i == per_epoch - 1:
            bad = _first_bad(losses[checked:])
            if bad is not None:
                k = run.t - len(losses) + checked + bad[0] + 1
                run.t, run.failure = k, f"loss became {bad[1]} at step {k}"
                return losses
            checked = len(losses)
    return losses


def _accuracy(graph: Graph, variables: Any, x: np.ndarray, y: np.ndarray, batch: int) -> float:
    return float(np.mean(np.argmax(_predict_device(graph, variables, x, batch), -1) == y))


def _check_dataset(dataset: Dataset) -> None:
    for split in ("train", "val", "test"):
        if len(getattr(dataset, f"y_{split}")) == 0:
            raise TrainError(f"dataset {dataset.name!r} has an empty {split} split")


def train(graph: Graph, dataset: Dataset, config: TrainConfig | None = None,
          variables: Any = None) -> TrainResult:
    """Train `graph` on `dataset`; `variables` (e.g. a parent's) replace the fresh init.

    train_time_s covers the train steps (compilation included, per-epoch validation not).
    """
    import jax
    import jax.numpy as jnp

    config = config or TrainConfig()
    _check_dataset(dataset)
    g = adapt_graph(graph, dataset)
    init = _initial_variables(g, config.seed, variables)
    params = jax.tree_util.tree_map(jnp.array, init.get("params", {}))  # copies: donated below
    stats = jax.tree_util.tree_map(jnp.array, init.get("batch_stats", {}))
    n = len(dataset.y_train)
    bs = min(config.batch_size, n)
    opt = _transform(config.optimizer, config.weight_decay)
    run = _Run((params, stats, opt.init(params)),
               _train_step(g, config.optimizer, float(config.weight_decay),
                           _aug_mode(config, dataset)),
               jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train),
               jax.random.PRNGKey(config.seed), bs, (n // bs) * config.epochs)
    where = f"graph {g.name or '<unnamed>'!r} on batch {(bs, *dataset.input_shape)}"
    history: list[dict[str, float]] = []
    t0, eval_s, loss = time.perf_counter(), 0.0, float("nan")
    for epoch in range(config.epochs):
        losses = _run_epoch(run, config, epoch, n, t0, where)
        if run.failure:
            return TrainResult("failed", run.failure, None, None,
                               time.perf_counter() - t0 - eval_s, run.t, None, None, history,
                               run.compile_s)
        loss = float(np.mean([np.asarray(v) for v in losses]))
        e0 = time.perf_counter()
        val = _accuracy(g, _variables(run.state), dataset.x_val, dataset.y_val,
                        config.eval_batch_size)
        eval_s += time.perf_counter() - e0
        history.append({"epoch": epoch + 1, "loss": loss, "val_accuracy": val})
    train_s = time.perf_counter() - t0 - eval_s
    v = _variables(run.state)
    test = _accuracy(g, v, dataset.x_test, dataset.y_test, config.eval_batch_size)
    return TrainResult("ok", "", history[-1]["val_accuracy"], test, train_s, run.t, loss,
                       jax.device_get(v), history, run.compile_s)


def _variables(state: Any) -> dict[str, Any]:
    params, stats, _ = state
    out: dict[str, Any] = {"params": params}
    if stats:
        out["batch_stats"] = stats
    return out
