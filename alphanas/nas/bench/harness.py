"""The NB201 track's runner: datasets x arms x seeds, stored in SQLite as each run ends.

`results.sqlite` in the output directory holds one row per (dataset, arm, seed) and the run's
settings; rerunning the same command skips what is stored (a run killed with -9 loses at most
the runs in flight), and a rerun with other settings is refused with the difference named.
Workers (`jobs`) are processes; only the parent writes the database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alphanas.errors import AlphanasError
from alphanas.nas.bench.searchers import ARMS, Budget, Run, run_arm
from alphanas.nas.bench.table import DATASETS, Table, load_table

__all__ = ["BenchError", "NB201Config", "ResultStore", "run_nb201"]


class BenchError(AlphanasError, ValueError):
    """A bad benchmark option or result file; names the option or file."""


@dataclass(frozen=True)
class NB201Config:
    datasets: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16")
    arms: tuple[str, ...] = tuple(ARMS)
    seeds: int = 100
    budget: Budget = Budget()
    signal: str = "seed"
    table: str | None = None       # a path for every dataset (only with one dataset)
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        for d in self.datasets:
            if d not in DATASETS:
                raise BenchError(f"--datasets: unknown NAS-Bench-201 dataset {d!r}; expected "
                                 f"{', '.join(DATASETS)}")
        for a in self.arms:
            if a not in ARMS:
                raise BenchError(f"--arms: unknown arm {a!r}; expected {', '.join(ARMS)}")
        if not self.datasets or not self.arms:
            raise BenchError("--datasets and --arms need at least one value each")
        if not (isinstance(self.seeds, int) and self.seeds >= 1):
            raise BenchError(f"--seeds: expected a positive int, got {self.seeds!r}")
        if self.signal not in ("seed", "mean"):
            raise BenchError(f"--signal: expected seed or mean, got {self.signal!r}")
        if self.table is not None and len(self.datasets) != 1:
            raise BenchError("--table names one file; give exactly one --datasets with it")

    def identity(self) -> dict[str, Any]:
        """What a stored row depends on (a resume must match it)."""
        return {"budget": asdict(self.budget), "signal": self.signal}


class ResultStore:
    """SQLite rows of runs; every write is its own transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.execute("create table if not exists meta (key text primary key, value text)")
            self.db.execute("""create table if not exists runs (
                suite text, dataset text, arm text, seed integer, final_index integer,
                final_acc real, regret real, queries integer, spent real, hv_fraction real,
                curve text, info text, primary key (suite, dataset, arm, seed))""")
            self.db.commit()
        except sqlite3.DatabaseError as e:
            raise BenchError(f"{self.path}: not a benchmark result database ({e}); move it "
                             "away or choose another --out") from None

    def check_identity(self, suite: str, ident: dict[str, Any]) -> None:
        key = f"identity:{suite}"
        row = self.db.execute("select value from meta where key = ?", (key,)).fetchone()
        text = json.dumps(ident, sort_keys=True)
        if row is None:
            with self.db:
                self.db.execute("insert into meta values (?, ?)", (key, text))
            return
        try:
            stored = json.loads(row[0])
        except ValueError:
            raise BenchError(f"{self.path}: meta {key} is not JSON; the file is damaged") from None
        if stored != ident:
            diff = [k for k in sorted(set(stored) | set(ident)) if stored.get(k) != ident.get(k)]
            raise BenchError(f"{self.path}: holds {suite} runs made with other settings "
                             f"({', '.join(f'{k}: stored {stored.get(k)}, now {ident.get(k)}' for k in diff)}); "
                             "use another --out or the same settings")

    def done(self, suite: str) -> set[tuple[str, str, int]]:
        return {(d, a, int(s)) for d, a, s in self.db.execute(
            "select dataset, arm, seed from runs where suite = ?", (suite,))}

    def add(self, suite: str, dataset: str, r: Run) -> None:
        with self.db:
            self.db.execute("insert or replace into runs values (?,?,?,?,?,?,?,?,?,?,?,?)", (
                suite, dataset, r.arm, r.seed, r.final_index, r.final_acc, r.regret, r.queries,
                r.spent, r.hv_fraction, json.dumps(r.curve), json.dumps(r.info)))

    def runs(self, suite: str) -> list[dict[str, Any]]:
        cur = self.db.execute("select dataset, arm, seed, final_index, final_acc, regret, queries, "
                              "spent, hv_fraction, curve, info from runs where suite = ? "
                              "order by dataset, arm, seed", (suite,))
        out = []
        for row in cur:
            d = dict(zip(("dataset", "arm", "seed", "final_index", "final_acc", "regret",
                          "queries", "spent", "hv_fraction", "curve", "info"), row, strict=True))
            try:
                d["curve"], d["info"] = json.loads(d["curve"]), json.loads(d["info"])
            except (TypeError, ValueError):
                raise BenchError(f"{self.path}: run {d['dataset']}/{d['arm']}/{d['seed']} is "
                                 "damaged (curve or info is not JSON); delete the row or the "
                                 "file and rerun") from None
            out.append(d)
        return out

    def close(self) -> None:
        self.db.close()


_TABLES: dict[tuple[str, str | None, str | None], Table] = {}


def _table(dataset: str, path: str | None, cache_dir: str | None) -> Table:
    k = (dataset, path, cache_dir)
    if k not in _TABLES:
        _TABLES[k] = load_table(dataset, path, cache_dir)
    return _TABLES[k]


def _work(dataset: str, arm: str, seeds: Sequence[int], cfg: NB201Config) -> list[Run]:
    t = _table(dataset, cfg.table, cfg.cache_dir)
    return [run_arm(t, arm, s, cfg.budget, cfg.signal) for s in seeds]


def _chunks(todo: Iterable[tuple[str, str, int]], size: int) -> list[tuple[str, str, list[int]]]:
    """Consecutive seeds of one (dataset, arm) in chunks (αNAS workers keep their caches)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for d, a, s in todo:
        groups.setdefault((d, a), []).append(s)
    out = []
    for (d, a), seeds in groups.items():
        n = size if a == "alphanas" else max(size, 25)
        out += [(d, a, seeds[i:i + n]) for i in range(0, len(seeds), n)]
    # the slow arm first, so the cheap ones fill the gaps
    return sorted(out, key=lambda c: c[1] != "alphanas")


def run_nb201(cfg: NB201Config, out: str | Path, jobs: int = 1,
              progress: Callable[[int, int], None] | None = None) -> ResultStore:
    """Run every missing (dataset, arm, seed) and store it; returns the open store."""
    out = Path(out)
    store = ResultStore(out / "results.sqlite")
    store.check_identity("nb201", cfg.identity())
    for d in cfg.datasets:  # load (and convert) once here: a bad table fails before any work
        _table(d, cfg.table, cfg.cache_dir)
    want = [(d, a, s) for d in cfg.datasets for a in cfg.arms for s in range(cfg.seeds)]
    done = store.done("nb201")
    todo = [w for w in want if w not in done]
    total, finished = len(want), len(want) - len(todo)
    if progress:
        progress(finished, total)
    chunks = _chunks(todo, 5)
    if jobs <= 1:
        for d, a, seeds in chunks:
            for s in seeds:
                store.add("nb201", d, _work(d, a, [s], cfg)[0])
                finished += 1
                if progress:
                    progress(finished, total)
        return store
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        pending: dict[Future, str] = {ex.submit(_work, d, a, seeds, cfg): d for d, a, seeds in chunks}
        while pending:
            ready, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in ready:
                d = pending.pop(f)
                for r in f.result():
                    store.add("nb201", d, r)
                    finished += 1
                if progress:
                    progress(finished, total)
    return store

