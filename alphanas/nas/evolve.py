"""The search loop: plan trials from a history snapshot, evaluate them (in process or on Ray),
store each result as it finishes, resume from the store.

Trial t's parent is chosen from the candidates of trials < batch_start(t) (a snapshot that does
not depend on how many workers run or in which order they finish), with an RNG seeded by
(seed, t); the mutation and the training are seeded by (seed, t) too. So a run is a pure
function of its config: the same architectures whatever the worker count, and a killed run
(even `kill -9`) rerun with the same command recomputes exactly the missing trials.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from alphanas.errors import AlphanasError
from alphanas.ir import serialize, zoo
from alphanas.ir.analysis import analyze
from alphanas.ir.graph import Graph
from alphanas.nas.config import SearchConfig
from alphanas.nas.select import Point, aging_parent, pareto_parent

__all__ = ["Job", "evaluate", "plan", "run_search", "seed_graph"]


@dataclass(frozen=True)
class Job:
    """One trial to evaluate: the parent's graph (JSON) or the seed model's."""

    trial: int
    parent: int | None       # None: the seed model
    graph_json: str
    config: dict[str, Any]
    mutate: bool = True      # False for the seed copies


# -- the seed model and data (cached per process: Ray workers load them once) ----------------


@lru_cache(maxsize=4)
def _dataset(name: str, path: str | None, seed: int, limit: int) -> Any:
    from alphanas.nas.data import load_dataset

    return load_dataset(name, path=path, seed=seed, limit=limit or None)


def dataset_of(cfg: SearchConfig) -> Any:
    """The run's dataset; flattened to (N, features) when the seed model takes flat input."""
    data = _dataset(cfg.dataset, cfg.data_path, cfg.seed, cfg.data_limit)
    return data.flattened() if _flat_input(cfg.seed_model) and data.is_image else data


@lru_cache(maxsize=8)
def _flat_input(seed_model: str) -> bool:
    if seed_model.endswith(".json"):
        shapes = serialize.load(seed_model).input_shapes
        return len(shapes) == 1 and shapes[0] is not None and len(shapes[0]) == 2
    entry = zoo.ZOO.get(seed_model)
    return entry is not None and "in_features" in inspect.signature(entry.builder).parameters


def seed_graph(cfg: SearchConfig) -> Graph:
    """The seed model: a JSON graph file, or a zoo model built for the dataset's input."""
    from alphanas.nas.data import adapt_graph

    data = dataset_of(cfg)
    if cfg.seed_model.endswith(".json"):
        g = serialize.load(cfg.seed_model)
    else:
        entry = zoo.ZOO.get(cfg.seed_model)
        if entry is None:
            raise AlphanasError(f"search.seed_model: unknown model '{cfg.seed_model}' (a zoo name: "
                                f"{', '.join(sorted(zoo.ZOO))}; or a .json graph)")
        shape = data.input_shape
        want = {"image_size": shape[0], "channels": shape[-1], "num_classes": data.num_classes,
                "in_features": int(np.prod(shape))}
        accepted = inspect.signature(entry.builder).parameters
        g = zoo.build(cfg.seed_model, **{k: v for k, v in want.items() if k in accepted})
    return adapt_graph(g, data)


# -- planning ---------------------------------------------------------------------------------


def plan(cfg: SearchConfig, trial: int, history: Sequence[Any], seed: Graph) -> Job:
    """The job of `trial` given the finished candidates of earlier batches."""
    cfgd = cfg.to_dict()
    ok = [c for c in history if c.status == "ok" and c.val_accuracy is not None]
    if trial < cfg.seed_copies or not ok or cfg.strategy == "sample":  # a seed copy or a child of it
        return Job(trial, None, serialize.dumps(seed), cfgd, mutate=trial >= cfg.seed_copies)
    rng = np.random.default_rng([cfg.seed, trial, 1])
    pts = [Point(c.trial, c.val_accuracy, float(c.params if cfg.objective == "params" else c.flops))
           for c in ok]
    parent = (pareto_parent(pts, rng, cfg.top_k) if cfg.strategy == "pareto"
              else aging_parent(pts, rng, cfg.population, cfg.sample))
    by = {c.trial: c for c in ok}
    return Job(trial, parent, by[parent].graph_json, cfgd)


# -- evaluation (runs in a worker) -----------------------------------------------------------


def evaluate(job: Job, parent_weights: Any = None) -> tuple[Any, Any]:
    """Mutate (unless a seed copy), train, and return (Candidate, trained variables or None)."""
    from alphanas.nas.mutate import MutationSettings, fingerprint, mutate, random_mutate
    from alphanas.nas.store import Candidate

    cfg = SearchConfig(**job.config)
    t0 = time.perf_counter()
    graph = serialize.loads(job.graph_json)
    mutation, spec, stats = "seed", "", {}
    if job.mutate:
        seed = int(np.random.default_rng([cfg.seed, job.trial, 2]).integers(2**31))
        m = (mutate(graph, seed, MutationSettings(synth_timeout_s=cfg.synth_timeout_s))
             if cfg.mutator == "synth" else random_mutate(graph, seed))
        mutation, spec, stats = f"{m.kind}: {m.description}", m.spec_toml, dict(m.synth_stats)
        if m.child is None:
            return Candidate(trial=job.trial, parent=job.parent, status="rejected", reason=m.reason,
                             mutation=mutation, graph_json=job.graph_json,
                             fingerprint=fingerprint(graph), spec_toml=spec, synth_stats=stats,
                             wall_time_s=time.perf_counter() - t0, created=time.time()), None
        graph = m.child
    return _train(cfg, job, graph, mutation, spec, stats, parent_weights, t0)


def _train(cfg: SearchConfig, job: Job, graph: Graph, mutation: str, spec: str, stats: dict,
           parent_weights: Any, t0: float) -> tuple[Any, Any]:
    from alphanas.nas.mutate import fingerprint
    from alphanas.nas.store import Candidate
    from alphanas.nas.train import TrainResult, train

    a = analyze(graph)
    init = inherit(graph, parent_weights, cfg.seed + job.trial) if parent_weights is not None else None
    tc = replace(cfg.train_config(), seed=cfg.seed + job.trial)
    t_train = time.perf_counter()
    try:
        r = train(graph, dataset_of(cfg), tc, variables=init)
    except AlphanasError as e:  # e.g. a child that does not compile at the training batch size
        r = TrainResult("failed", f"training could not start: {e}", None, None, 0.0, 0, None, None)
    cand = Candidate(trial=job.trial, parent=job.parent, status=r.status, reason=r.reason,
                     mutation=mutation, graph_json=serialize.dumps(graph),
                     fingerprint=fingerprint(graph), spec_toml=spec, synth_stats=stats,
                     val_accuracy=r.val_accuracy, test_accuracy=r.test_accuracy, params=a.params,
                     flops=a.flops, train_time_s=time.perf_counter() - t_train,  # incl. evaluation
                     wall_time_s=time.perf_counter() - t0, created=time.time())
    return cand, (r.variables if r.status == "ok" else None)


def inherit(graph: Graph, parent: Any, seed: int) -> Any:
    """Fresh variables for `graph`, with the parent's trained values wherever an op of the same
    name has a parameter of the same shape (unchanged ops keep their weights)."""
    from alphanas.ir.init import host_init

    fresh = host_init(graph, seed)

    def merge(a: Any, b: Any) -> Any:
        if isinstance(a, dict):
            return {k: merge(v, b.get(k)) if isinstance(b, dict) else v for k, v in a.items()}
        return b if b is not None and np.shape(b) == np.shape(a) else a

    return merge(fresh, parent)


# -- the loop --------------------------------------------------------------------------------


def run_search(cfg: SearchConfig, out_dir: str | Path, workers: int = 1,
               ray_address: str | None = None,
               progress: Callable[[int, int, Any], None] | None = None) -> Any:
    """Run (or resume) the search of `cfg` in `out_dir`; returns the store."""
    from alphanas.nas.store import RunStore

    store = RunStore.open(out_dir, create=True, config=cfg.to_dict())
    seed = seed_graph(cfg)
    done = {c.trial for c in store.candidates()}
    executor = _executor(workers, ray_address)
    try:
        for start in range(0, cfg.trials, cfg.batch):
            todo = [t for t in range(start, min(start + cfg.batch, cfg.trials)) if t not in done]
            if not todo:
                continue
            history = [c for c in store.candidates() if c.trial < start]
            jobs = [plan(cfg, t, history, seed) for t in todo]
            weights = [store.get_weights(j.parent) if cfg.inherit_weights and j.parent is not None
                       else None for j in jobs]
            for cand, variables in executor(jobs, weights):
                store.add(cand)
                if variables is not None:
                    store.put_weights(cand.trial, variables)
                if progress is not None:
                    progress(store.count(), cfg.trials, cand)
    finally:
        _shutdown(executor)
    return store


def _executor(workers: int, address: str | None) -> Callable[[Sequence[Job], Sequence[Any]], Iterable[Any]]:
    if workers <= 1 and address is None:
        def local(jobs: Sequence[Job], weights: Sequence[Any]) -> Iterator[Any]:
            for j, w in zip(jobs, weights, strict=True):
                yield evaluate(j, w)
        return local
    return _ray_executor(workers, address)


def _ray_executor(workers: int, address: str | None) -> Callable[..., Iterable[Any]]:
    try:
        import ray
    except ImportError:
        raise AlphanasError("--workers/--ray-address need Ray: pip install 'alphanas[ray]'") from None
    if not ray.is_initialized():
        try:
            if address is not None:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise AlphanasError(f"cannot start or join Ray ({address or 'local'}): {e}") from None
    remote = ray.remote(evaluate)

    def run(jobs: Sequence[Job], weights: Sequence[Any]) -> Iterator[Any]:
        pending = [remote.remote(j, w) for j, w in zip(jobs, weights, strict=True)]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            yield ray.get(ready[0])
    run.ray = ray  # type: ignore[attr-defined]
    return run


def _shutdown(executor: Any) -> None:
    ray = getattr(executor, "ray", None)
    if ray is not None and ray.is_initialized():
        ray.shutdown()
