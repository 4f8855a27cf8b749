"""The result store of a NAS run: one SQLite file, `<run_dir>/results.sqlite`.

Tables: `meta` (run config, schema version, creation time, as JSON values), `candidates` (one
row per trial: lineage, status, graph, metrics) and `weights` (msgpack of trained variables).
The database runs in WAL mode with `synchronous=FULL` and every write is one transaction, so a
process killed at any instant leaves a readable file holding exactly the committed trials; a
run resumes by reopening it. An existing file is never deleted or overwritten.
"""

from __future__ import annotations

import csv
import io
import json
import math
import operator
import os
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from alphanas.errors import AlphanasError
from alphanas.ir.serialize import atomic_write_text

__all__ = [
    "CANDIDATE_COLUMNS",
    "DB_NAME",
    "RESUMABLE_KEYS",
    "SCHEMA_VERSION",
    "STATUSES",
    "Candidate",
    "RunStore",
    "StoreError",
    "write_csv",
]

DB_NAME = "results.sqlite"
SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "rejected")
RESUMABLE_KEYS = frozenset({"trials", "workers"})
"""Config keys that may differ when a run is reopened (the stored config takes the new value)."""

_SQLITE_MAGIC = b"SQLite format 3\x00"
_ABSENT = "<absent>"


class StoreError(AlphanasError, ValueError):
    """The result store cannot be opened or written: names the path and expected vs. got."""


@dataclass(frozen=True)
class Candidate:
    """One trial of a run, mirroring a row of `candidates`; `created` is stamped on `add`."""

    trial: int
    status: str
    graph_json: str
    fingerprint: str
    parent: int | None = None
    reason: str = ""
    mutation: str = ""
    spec_toml: str | None = None
    synth_stats: Mapping[str, Any] = field(default_factory=dict, hash=False)
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    params: int | None = None
    flops: int | None = None
    train_time_s: float | None = None
    wall_time_s: float | None = None
    created: float | None = None

    def __post_init__(self) -> None:
        where = f"candidate {self.trial!r}"
        for name in ("trial", "parent"):
            v = getattr(self, name)
            if v is None and name == "parent":
                continue
            try:
                object.__setattr__(self, name, operator.index(v))
            except TypeError:
                raise StoreError(f"{where}: {name} must be an int, got {v!r}") from None
        if self.trial < 0:
            raise StoreError(f"{where}: trial must be >= 0")
        if self.status not in STATUSES:
            raise StoreError(f"{where}: status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        for name in ("graph_json", "fingerprint", "reason", "mutation"):
            if not isinstance(getattr(self, name), str):
                raise StoreError(f"{where}: {name} must be a string, got {getattr(self, name)!r}")
        if not isinstance(self.synth_stats, Mapping):
            raise StoreError(f"{where}: synth_stats must be a mapping, got {self.synth_stats!r}")
        for name, kind in _NUMERIC.items():  # NumPy/JAX scalars become plain Python numbers
            v = getattr(self, name)
            if v is not None:
                try:
                    x = kind(v)
                    if kind is int and x != v:
                        raise ValueError
                    object.__setattr__(self, name, x)
                except (TypeError, ValueError, OverflowError):
                    raise StoreError(f"{where}: {name} must be a number or None, got {v!r}") from None

    def to_row(self) -> dict[str, Any]:
        """The column values, `synth_stats` as JSON text."""
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        try:
            row["synth_stats"] = json.dumps(dict(self.synth_stats), sort_keys=True)
        except (TypeError, ValueError) as e:
            raise StoreError(f"candidate {self.trial}: synth_stats is not JSON-serializable: {e}") from None
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Candidate:
        """The candidate of a `candidates` row (a mapping of column name to value)."""
        values = dict(row)
        values["synth_stats"] = json.loads(values.get("synth_stats") or "{}")
        return cls(**values)


_NUMERIC: dict[str, type] = {"val_accuracy": float, "test_accuracy": float, "params": int,
                             "flops": int, "train_time_s": float, "wall_time_s": float,
                             "created": float}

CANDIDATE_COLUMNS: tuple[str, ...] = (
    "trial", "parent", "status", "reason", "mutation", "graph_json", "fingerprint", "spec_toml",
    "synth_stats", "val_accuracy", "test_accuracy", "params", "flops", "train_time_s",
    "wall_time_s", "created",
)
assert set(CANDIDATE_COLUMNS) == {f.name for f in fields(Candidate)}

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE candidates (
    trial INTEGER PRIMARY KEY, parent INTEGER NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'rejected')),
    reason TEXT NOT NULL, mutation TEXT NOT NULL, graph_json TEXT NOT NULL,
    fingerprint TEXT NOT NULL, spec_toml TEXT NULL, synth_stats TEXT NOT NULL,
    val_accuracy REAL, test_accuracy REAL, params INTEGER, flops INTEGER,
    train_time_s REAL, wall_time_s REAL, created REAL NOT NULL);
CREATE INDEX candidates_fingerprint ON candidates (fingerprint);
CREATE TABLE weights (trial INTEGER PRIMARY KEY, blob BLOB NOT NULL);
"""
_TABLES = {"meta": ("key", "value"), "candidates": CANDIDATE_COLUMNS, "weights": ("trial", "blob")}
_MAXIMIZE = {"val_accuracy": True, "test_accuracy": True, "params": False, "flops": False,
             "train_time_s": False, "wall_time_s": False}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _json_norm(config: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`config` as plain JSON values (tuples become lists), or a StoreError naming `where`."""
    try:
        return json.loads(json.dumps(dict(config), sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise StoreError(f"{where}: run config is not JSON-serializable: {e}") from None


def _first_difference(old: Any, new: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The dotted key path and both values of the first difference of two JSON values."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            sub = f"{path}.{k}" if path else k
            if k not in old or k not in new:
                return sub, old.get(k, _ABSENT), new.get(k, _ABSENT)
            d = _first_difference(old[k], new[k], sub)
            if d is not None:
                return d
        return None
    return None if old == new else (path, old, new)


class RunStore:
    """An open result store; use `RunStore.open(run_dir, ...)`, close it (or use `with`)."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, run_dir: str | os.PathLike[str], create: bool = True,
             config: Mapping[str, Any] | None = None,
             resumable: Iterable[str] = RESUMABLE_KEYS) -> RunStore:
        """Open (or with `create`, start) the store of `run_dir`; a given `config` is checked
        against the stored one, keys in `resumable` excepted (those are updated)."""
        run = Path(run_dir)
        path = run / DB_NAME
        norm = None if config is None else _json_norm(config, str(path))
        if not path.exists():
            if not create:
                raise StoreError(f"{path}: no result store here (expected an existing {DB_NAME})")
            _make_dir(run)
            _create_db(path, norm or {})
        store = cls(path, _connect(path))
        try:
            store._check_schema()
            if norm is not None:
                store.check_config(norm, resumable)
        except BaseException:
            store.close()
            raise
        return store

    def _check_schema(self) -> None:
        rows = self._query("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = {r["name"] for r in rows}
        if "meta" not in tables:
            raise StoreError(f"{self.path}: not an alphanas result store (no 'meta' table; "
                             f"tables: {', '.join(sorted(tables)) or 'none'})")
        version = self._meta("schema_version")
        if version != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {version!r}, expected {SCHEMA_VERSION}")
        for table, cols in _TABLES.items():
            got = tuple(r["name"] for r in self._query(f"PRAGMA table_info({table})"))
            if set(got) != set(cols):
                raise StoreError(f"{self.path}: table '{table}' has columns {', '.join(got) or 'none'}; "
                                 f"expected {', '.join(cols)}")

    # -- config -------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The run config stored at creation (resumable keys as last reopened)."""
        return self._meta("config")

    def created(self) -> float:
        """When the store was created (seconds since the epoch)."""
        return self._meta("created")

    def check_config(self, config: Mapping[str, Any],
                     resumable: Iterable[str] = RESUMABLE_KEYS) -> None:
        """Raise unless `config` equals the stored one outside `resumable` keys; then store the
        new values of the resumable keys."""
        new = _json_norm(config, str(self.path))
        old = self.config()
        keep = frozenset(resumable)
        fixed_old = {k: v for k, v in old.items() if k not in keep}
        fixed_new = {k: v for k, v in new.items() if k not in keep}
        d = _first_difference(fixed_old, fixed_new)
        if d is not None:
            key, was, now = d
            raise StoreError(f"{self.path}: run config key '{key}' differs: the run was started with "
                             f"{json.dumps(was)}, reopened with {json.dumps(now)} "
                             f"(only {', '.join(sorted(keep)) or 'no keys'} may change on resume)")
        if new != old:
            with self._tx() as c:
                c.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(new),))

    # -- writing ------------------------------------------------------------------------------

    def add(self, candidate: Candidate, weights: Any = None) -> Candidate:
        """Insert `candidate` (and its trained `weights`, if given) in one transaction; returns
        it as stored. A trial number already present is a StoreError."""
        if candidate.created is None:
            candidate = replace(candidate, created=time.time())
        row = candidate.to_row()
        blob = None if weights is None else _to_msgpack(weights)
        cols = ", ".join(CANDIDATE_COLUMNS)
        marks = ", ".join("?" for _ in CANDIDATE_COLUMNS)
        try:
            with self._tx() as c:
                c.execute(f"INSERT INTO candidates ({cols}) VALUES ({marks})",
                          [row[k] for k in CANDIDATE_COLUMNS])
                if blob is not None:
                    c.execute("INSERT INTO weights (trial, blob) VALUES (?, ?)", (candidate.trial, blob))
        except sqlite3.IntegrityError:
            raise StoreError(f"{self.path}: trial {candidate.trial} is already stored "
                             f"(next free trial: {self.next_trial()})") from None
        return candidate

    def put_weights(self, trial: int, variables: Any, replace_existing: bool = False) -> None:
        """Store trained `variables` (a pytree of arrays) of `trial` as msgpack."""
        blob = _to_msgpack(variables)
        verb = "INSERT OR REPLACE" if replace_existing else "INSERT"
        try:
            with self._tx() as c:
                c.execute(f"{verb} INTO weights (trial, blob) VALUES (?, ?)", (trial, blob))
        except sqlite3.IntegrityError:
            raise StoreError(f"{self.path}: weights of trial {trial} are already stored") from None

    # -- reading ------------------------------------------------------------------------------

    def get_weights(self, trial: int, template: Any = None) -> Any:
        """The stored variables of `trial`: nested dicts of NumPy arrays, or `template`'s
        structure filled with them when a template is given."""
        rows = self._query("SELECT blob FROM weights WHERE trial = ?", (trial,))
        if not rows:
            raise StoreError(f"{self.path}: no weights stored for trial {trial}")
        from flax import serialization

        restored = serialization.msgpack_restore(rows[0]["blob"])
        return restored if template is None else serialization.from_state_dict(template, restored)

    def has_weights(self, trial: int) -> bool:
        return bool(self._query("SELECT 1 FROM weights WHERE trial = ?", (trial,)))

    def candidates(self, status: str | None = None) -> list[Candidate]:
        """Every stored candidate (with `status`, if given), ordered by trial."""
        where, args = self._status_filter(status)
        rows = self._query(f"SELECT * FROM candidates{where} ORDER BY trial", args)
        return [Candidate.from_row(r) for r in rows]

    def get(self, trial: int) -> Candidate:
        """The candidate of `trial`; a StoreError when it is not stored."""
        rows = self._query("SELECT * FROM candidates WHERE trial = ?", (trial,))
        if not rows:
            raise StoreError(f"{self.path}: no trial {trial} (stored: {self.count()} trials)")
        return Candidate.from_row(rows[0])

    def __contains__(self, trial: object) -> bool:
        return bool(self._query("SELECT 1 FROM candidates WHERE trial = ?", (trial,)))

    def count(self, status: str | None = None) -> int:
        where, args = self._status_filter(status)
        return int(self._query(f"SELECT COUNT(*) AS n FROM candidates{where}", args)[0]["n"])

    def next_trial(self) -> int:
        """One past the largest stored trial number (0 for an empty store)."""
        n = self._query("SELECT MAX(trial) AS m FROM candidates")[0]["m"]
        return 0 if n is None else int(n) + 1

    def fingerprints(self) -> set[str]:
        """The fingerprints of every stored candidate, whatever its status."""
        return {r["fingerprint"] for r in self._query("SELECT DISTINCT fingerprint FROM candidates")}

    def best(self, k: int, key: str = "val_accuracy", maximize: bool | None = None) -> list[Candidate]:
        """The `k` best 'ok' candidates by `key` (accuracies maximized, costs minimized unless
        `maximize` says otherwise); ties go to the earlier trial."""
        if key not in _MAXIMIZE:
            raise StoreError(f"best: unknown key '{key}'; expected one of {', '.join(_MAXIMIZE)}")
        if not _is_int(k) or k < 0:
            raise StoreError(f"best: k must be an int >= 0, got {k!r}")
        order = "DESC" if (_MAXIMIZE[key] if maximize is None else maximize) else "ASC"
        rows = self._query(f"SELECT * FROM candidates WHERE status = 'ok' AND {key} IS NOT NULL "
                           f"ORDER BY {key} {order}, trial ASC LIMIT ?", (k,))
        return [Candidate.from_row(r) for r in rows]

    def integrity_check(self) -> str:
        """SQLite's `PRAGMA integrity_check` verdict ('ok' when the file is sound)."""
        return "; ".join(str(r[0]) for r in self._query("PRAGMA integrity_check"))

    def write_csv(self, path: str | os.PathLike[str],
                  columns: Sequence[str] = tuple(c for c in CANDIDATE_COLUMNS
                                                 if c not in ("graph_json", "spec_toml")),
                  status: str | None = None) -> None:
        """Every candidate (with `status`) as a CSV table of `columns`, written atomically."""
        write_csv(path, [c.to_row() for c in self.candidates(status)], columns)

    # -- plumbing -----------------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _status_filter(self, status: str | None) -> tuple[str, tuple[Any, ...]]:
        if status is None:
            return "", ()
        if status not in STATUSES:
            raise StoreError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        return " WHERE status = ?", (status,)

    def _meta(self, key: str) -> Any:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else None

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: cannot read the result store: {e}") from None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        c = self._conn
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise StoreError(f"{self.path}: cannot start a write: {e}") from None
        try:
            yield c
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise


def _make_dir(run: Path) -> None:
    try:
        run.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"run directory {run} cannot be created: {e.strerror or e}") from None
    if not os.access(run, os.W_OK | os.X_OK):
        raise StoreError(f"run directory {run} is not writable")


def _create_db(path: Path, config: dict[str, Any]) -> None:
    """Build a fresh store in a temporary file and link it into place, so `path` either does
    not exist or holds a complete schema, and an existing file is never replaced."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN")
            for statement in _statements(_SCHEMA):
                conn.execute(statement)
            meta = {"schema_version": SCHEMA_VERSION, "config": config, "created": time.time()}
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                             [(k, json.dumps(v)) for k, v in meta.items()])
            conn.execute("COMMIT")
        finally:
            conn.close()
        try:
            os.link(tmp, path)  # fails if `path` appeared meanwhile: never overwrite
        except FileExistsError:
            raise StoreError(f"{path}: appeared while this store was being created") from None
    except (OSError, sqlite3.Error) as e:
        raise StoreError(f"run directory {path.parent} is not writable: cannot create {path.name}: {e}") from None
    finally:
        for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            p.unlink(missing_ok=True)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _connect(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise StoreError(f"{path}: expected a SQLite result store, found a directory or special file")
    with open(path, "rb") as f:
        head = f.read(len(_SQLITE_MAGIC))
    if head != _SQLITE_MAGIC:
        raise StoreError(f"{path}: not a SQLite database (expected header {_SQLITE_MAGIC!r}, "
                         f"got {head!r}); refusing to touch it")
    if not os.access(path.parent, os.W_OK | os.X_OK) or not os.access(path, os.W_OK):
        raise StoreError(f"run directory {path.parent} is not writable (WAL needs to write next to {path.name})")
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        conn.row_factory = sqlite3.Row
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous=FULL")
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path}: cannot open the result store: {e}") from None
    if str(mode).lower() != "wal":
        conn.close()
        raise StoreError(f"{path}: cannot switch to WAL journal mode (got {mode!r})")
    return conn


def _to_msgpack(variables: Any) -> bytes:
    """msgpack of `variables` converted to nested dicts of NumPy arrays."""
    import jax
    import numpy as np
    from flax import serialization

    state = serialization.to_state_dict(variables)
    return serialization.msgpack_serialize(jax.tree_util.tree_map(np.asarray, state))


def write_csv(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any] | Sequence[Any]],
              columns: Sequence[str]) -> None:
    """Write `rows` (mappings keyed by column, or sequences in column order) as CSV with a header,
    atomically (a temporary file, then `os.replace`); None becomes an empty cell."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for i, row in enumerate(rows):
        if isinstance(row, Mapping):
            missing = [c for c in columns if c not in row]
            if missing:
                raise StoreError(f"{path}: row {i} has no column '{missing[0]}' "
                                 f"(it has {', '.join(map(str, row))})")
            values = [row[c] for c in columns]
        else:
            values = list(row)
            if len(values) != len(columns):
                raise StoreError(f"{path}: row {i} has {len(values)} values, expected {len(columns)}")
        w.writerow(["" if v is None else _cell(v) for v in values])
    try:
        atomic_write_text(path, buf.getvalue())
    except OSError as e:
        raise StoreError(f"{path}: cannot write the CSV file: {e.strerror or e}") from None


def _cell(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return v
