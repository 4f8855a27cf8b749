"""The NAS commands of the CLI: `search`, `runs show`, `export`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from alphanas.errors import AlphanasError

__all__ = ["add_parsers"]


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("search", help="run (or resume) a property-guided architecture search")
    s.add_argument("--config", metavar="FILE.toml", help="search and training settings")
    s.add_argument("--dataset", help="digits (default), cifar10, synthetic or fashion_mnist")
    s.add_argument("--data-path", help="cifar10: the directory of its python-pickle batches; "
                   "fashion_mnist: of its IDX files (default /usr/share/datasets/fashion-mnist)")
    s.add_argument("--seed-model", help="a zoo model name or a JSON graph (default cifar_cnn)")
    s.add_argument("--trials", type=_positive_int, help="number of trials (default 20)")
    s.add_argument("--population", type=_positive_int, help="aging evolution population")
    s.add_argument("--strategy", help="pareto (default) or aging")
    s.add_argument("--mutator", help="synth (default) or random")
    s.add_argument("--epochs", type=_positive_int, help="training epochs per child")
    s.add_argument("--workers", type=_positive_int, default=1, help="evaluate N children at a "
                   "time on a local Ray instance (default 1: no Ray)")
    s.add_argument("--ray-address", help="join an existing Ray cluster")
    s.add_argument("--seed", type=int, help="the run's seed (default 0)")
    s.add_argument("--out", metavar="DIR", default="runs/search", help="run directory")
    s.add_argument("--resume", action="store_true", help="continue the run in --out with its "
                   "stored settings (rerunning the same command also continues it)")
    s.set_defaults(func=cmd_search)
    r = sub.add_parser("runs", help="inspect runs")
    rs = r.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    show = rs.add_parser("show", help="summarise a run directory")
    show.add_argument("dir", metavar="DIR")
    show.set_defaults(func=cmd_runs_show)
    e = sub.add_parser("export", help="export a trained candidate: graph JSON, standalone Flax "
                       "module source, parameters")
    e.add_argument("run", metavar="RUN")
    e.add_argument("--trial", type=int, required=True)
    e.add_argument("-o", "--out", metavar="DIR", help="default: RUN/export_trialN")
    e.set_defaults(func=cmd_export)


def _config(args: argparse.Namespace) -> Any:
    from alphanas.nas.config import SearchConfig, load_config
    from alphanas.nas.store import RunStore

    if args.resume:
        if not (Path(args.out) / "results.sqlite").exists():
            raise AlphanasError(f"--resume: {args.out} holds no run (results.sqlite is missing)")
        stored = RunStore.open(args.out, create=False).config()
        cfg = SearchConfig(**stored)
        return cfg.with_overrides(trials=args.trials)
    train = {"epochs": args.epochs} if args.epochs else None
    cfg = load_config(args.config, dataset=args.dataset, data_path=args.data_path,
                      seed_model=args.seed_model, trials=args.trials, population=args.population,
                      strategy=args.strategy, mutator=args.mutator, seed=args.seed)
    if train:
        cfg = cfg.with_overrides(train={**cfg.train, **train})
    return cfg


def cmd_search(args: argparse.Namespace) -> int:
    from alphanas.nas.evolve import run_search
    from alphanas.nas.outputs import front_table, write_outputs

    cfg = _config(args)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise AlphanasError(f"--out: cannot create the run directory {out}: {e.strerror or e}") from None
    console = Console(stderr=True)
    t0 = time.perf_counter()
    with _progress(console, cfg.trials) as update:
        store = run_search(cfg, out, args.workers, args.ray_address,
                           progress=lambda done, total, c: update(done, total, c, t0))
    cands = store.candidates()
    Console().print(front_table(cands, cfg.objective))
    paths = write_outputs(out, cands, cfg.objective)
    print(f"{len(cands)} trials in {out}: {', '.join(p.name for p in paths)}")
    return 0


class _progress:
    """A rich progress bar on stderr: trials done, best validation accuracy, ETA."""

    def __init__(self, console: Console, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.p = Progress(TextColumn("search"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("best val {task.fields[best]}"), TimeRemainingColumn(),
                          console=console, disable=not console.is_terminal)
        self.task = self.p.add_task("search", total=total, best="-")
        self.best = None

    def __enter__(self) -> Any:
        self.p.__enter__()
        return self.update

    def __exit__(self, *exc: Any) -> None:
        self.p.__exit__(*exc)

    def update(self, done: int, total: int, c: Any, t0: float) -> None:
        if c.status == "ok" and c.val_accuracy is not None:
            self.best = max(self.best or 0.0, c.val_accuracy)
        self.p.update(self.task, completed=done, best=f"{self.best:.4f}" if self.best else "-")
        if not self.p.console.is_terminal:
            acc = f"{c.val_accuracy:.4f}" if c.val_accuracy is not None else "-"
            print(f"trial {c.trial}: {c.status} val {acc} ({done}/{total}, "
                  f"{time.perf_counter() - t0:.0f} s)", file=sys.stderr)


def cmd_runs_show(args: argparse.Namespace) -> int:
    from alphanas.nas.outputs import front_table
    from alphanas.nas.store import RunStore

    store = RunStore.open(args.dir, create=False)
    cfg = store.config()
    cands = store.candidates()
    by = {s: sum(c.status == s for c in cands) for s in ("ok", "failed", "rejected")}
    ok = [c for c in cands if c.status == "ok" and c.val_accuracy is not None]
    best = max(ok, key=lambda c: c.val_accuracy, default=None)
    print(f"{args.dir}: {len(cands)}/{cfg.get('trials')} trials ({by['ok']} trained, {by['failed']} "
          f"failed, {by['rejected']} rejected); dataset {cfg.get('dataset')}, seed model "
          f"{cfg.get('seed_model')}, strategy {cfg.get('strategy')}, mutator {cfg.get('mutator')}")
    if best is not None:
        print(f"best validation accuracy {best.val_accuracy:.4f} (trial {best.trial}, test "
              f"{best.test_accuracy:.4f}, {best.params:,} params)")
    Console().print(front_table(cands, cfg.get("objective", "params")))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from alphanas.nas.outputs import export_trial

    paths = export_trial(args.run, args.trial, args.out)
    for name, p in paths.items():
        print(f"{name}: {p}")
    return 0
