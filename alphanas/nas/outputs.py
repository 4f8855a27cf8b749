"""What a run directory shows: the Pareto front (table + CSV), every candidate (CSV), plots
(PNG), a summary for `alphanas runs show`, and the export of one trial."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from alphanas.errors import AlphanasError
from alphanas.nas.select import Point, pareto_front

__all__ = ["export_trial", "front_table", "write_outputs"]

COLUMNS = ("trial", "parent", "status", "val_accuracy", "test_accuracy", "params", "flops",
           "train_time_s", "mutation", "reason")


def _points(cands: Sequence[Any], objective: str) -> list[Point]:
    return [Point(c.trial, c.val_accuracy, float(getattr(c, objective)))
            for c in cands if c.status == "ok" and c.val_accuracy is not None]


def front(cands: Sequence[Any], objective: str = "params") -> list[Any]:
    by = {c.trial: c for c in cands}
    return [by[p.trial] for p in pareto_front(_points(cands, objective))]


def front_table(cands: Sequence[Any], objective: str = "params", title: str = "Pareto front") -> Table:
    t = Table(title=f"{title} (validation accuracy vs. {objective})")
    for col in ("trial", "parent", "val acc", "test acc", "params", "FLOPs", "mutation"):
        t.add_column(col, justify="left" if col == "mutation" else "right", no_wrap=True,
                     min_width=len(col), overflow="ellipsis")
    for c in front(cands, objective):
        t.add_row(str(c.trial), "-" if c.parent is None else str(c.parent), f"{c.val_accuracy:.4f}",
                  f"{c.test_accuracy:.4f}" if c.test_accuracy is not None else "-",
                  _si(c.params), _si(c.flops), (c.mutation or "").split(":")[0])
    return t


def _si(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, k in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= k:
            return f"{n / k:.1f}{unit}"
    return str(n)


def _rows(cands: Sequence[Any]) -> list[list[Any]]:
    return [[getattr(c, k) for k in COLUMNS] for c in cands]


def write_outputs(run_dir: str | Path, cands: Sequence[Any], objective: str = "params") -> list[Path]:
    """pareto.csv, candidates.csv and the PNG plots; returns the paths written."""
    from alphanas.nas.store import write_csv

    d = Path(run_dir)
    paths = [d / "candidates.csv", d / "pareto.csv"]
    write_csv(paths[0], _rows(cands), COLUMNS)
    write_csv(paths[1], _rows(front(cands, objective)), COLUMNS)
    paths += _plots(d, cands)
    return paths


def _plots(d: Path, cands: Sequence[Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    for objective in ("params", "flops"):
        pts, fr = _points(cands, objective), front(cands, objective)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter([p.cost for p in pts], [p.accuracy for p in pts], s=14, label="candidates")
        ax.plot([getattr(c, objective) for c in fr], [c.val_accuracy for c in fr], "r-o", ms=4,
                label="Pareto front")
        if pts and min(p.cost for p in pts) > 0:
            ax.set_xscale("log")
        ax.set_xlabel(objective)
        ax.set_ylabel("validation accuracy")
        ax.legend()
        out.append(_save(fig, d / f"accuracy_vs_{objective}.png"))
    ok = sorted((c.trial, c.val_accuracy) for c in cands if c.status == "ok" and c.val_accuracy is not None)
    fig, ax = plt.subplots(figsize=(6, 4))
    best, xs, ys = -1.0, [], []
    for t, a in ok:
        best = max(best, a)
        xs.append(t)
        ys.append(best)
    ax.step(xs, ys, where="post")
    ax.set_xlabel("trial")
    ax.set_ylabel("best validation accuracy so far")
    out.append(_save(fig, d / "best_accuracy.png"))
    return out


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    tmp = path.with_suffix(".tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path


def export_trial(run_dir: str | Path, trial: int, out_dir: str | Path | None = None) -> dict[str, Path]:
    """graph.json, model.py (standalone Flax) and params.msgpack of one trained candidate."""
    from alphanas.ir import serialize
    from alphanas.nas.export import export_candidate
    from alphanas.nas.store import RunStore

    store = RunStore.open(run_dir, create=False)
    c = store.get(trial)
    if c is None:
        raise AlphanasError(f"{run_dir}: no trial {trial} (the run has {store.count()} trials)")
    variables = store.get_weights(trial)
    if variables is None:
        raise AlphanasError(f"{run_dir}: trial {trial} has no trained weights (status {c.status}: "
                            f"{c.reason or 'not trained'})")
    return export_candidate(serialize.loads(c.graph_json), variables,
                            Path(out_dir) if out_dir else Path(run_dir) / f"export_trial{trial}")
