"""The `alphanas` console script.

Subcommands: `zoo` (the model zoo with params, FLOPs and reference counts) and `show MODEL`
(per-op table of a zoo model or a JSON graph file; `--dot`/`--json` export it). User errors
print `alphanas: error: ...` on stderr and exit with status 2, never with a traceback.
Heavy imports (rich, the zoo) happen inside the commands, so `import alphanas.cli` is cheap.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from alphanas.errors import AlphanasError

if TYPE_CHECKING:
    from rich.console import Console

    from alphanas.ir.analysis import Analysis
    from alphanas.ir.graph import Graph

__all__ = ["main"]

PROG = "alphanas"


class CLIError(AlphanasError):
    """A command-line mistake that argparse cannot see (e.g. an unknown model)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with `argv` (default: `sys.argv[1:]`); returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except AlphanasError as e:
        return _fail(str(e))
    except OSError as e:
        return _fail(_os_message(e))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


def _fail(message: str, code: int = 2) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return code


def _os_message(e: OSError) -> str:
    if e.filename is not None:
        return f"'{os.fsdecode(e.filename)}': {e.strerror or e}"
    return str(e)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Synthesis and verification of "
                                "neural-network sub-architectures from properties.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    z = sub.add_parser("zoo", help="list the model zoo with params, FLOPs and reference counts")
    z.set_defaults(func=cmd_zoo)
    s = sub.add_parser("show", help="per-op table of a zoo model or a JSON graph file")
    s.add_argument("model", metavar="MODEL", help="a zoo model name or a path to a JSON graph")
    s.add_argument("--dot", metavar="FILE", help="write Graphviz DOT to FILE")
    s.add_argument("--json", metavar="FILE", help="write the graph as JSON to FILE")
    s.add_argument("--input-shape", metavar="SHAPE", type=_shape, action="extend", nargs="+",
                   dest="input_shapes", help="shape of each graph input, e.g. 1,32,32,3")
    s.set_defaults(func=cmd_show)
    return p


def _shape(text: str) -> tuple[int, ...]:
    """Parse `1,32,32,3` into a shape of positive ints (an argparse type)."""
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(","))
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive ints like 1,32,32,3, got {text!r}")
    return dims


# -- formatting ------------------------------------------------------------------------------


def human(n: int) -> str:
    """`n` with a K/M/G/T suffix and two decimals (`25.56M`); exact below 1000."""
    for scale, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{suffix}"
    return str(n)


def human_flops(n: int) -> str:
    """FLOPs with a unit prefix: `4.11 GFLOPs`, `512 FLOPs`."""
    h = human(n)
    return f"{h[:-1]} {h[-1]}FLOPs" if h[-1:].isalpha() else f"{h} FLOPs"


def _console() -> Console:
    from rich.console import Console

    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(width=200 if wide else None, highlight=False, soft_wrap=False)


# -- zoo -------------------------------------------------------------------------------------


def cmd_zoo(args: argparse.Namespace) -> int:
    """Print every zoo model with computed and reference parameter counts."""
    from rich.table import Table

    from alphanas.ir import zoo
    from alphanas.ir.analysis import analyze

    table = Table(title="alphanas model zoo")
    for col in ("name", "description", "params", "FLOPs", "reference params", "match"):
        table.add_column(col, justify="right" if col in ("params", "FLOPs", "reference params")
                         else "left", no_wrap=col != "description")
    failed = []
    for name in zoo.names():
        entry = zoo.ZOO[name]
        ref = entry.reference_params
        try:
            a = analyze(zoo.build(name))
        except AlphanasError as e:
            failed.append(f"{name}: {e}")
            table.add_row(name, entry.doc, "error", "error", _count(ref), "✗")
            continue
        mark = "-" if ref is None else ("✓" if a.params == ref else "✗")
        table.add_row(name, entry.doc, f"{a.params:,}", human_flops(a.flops), _count(ref), mark)
    _console().print(table)
    if failed:
        return _fail("some zoo models failed to build:\n  " + "\n  ".join(failed))
    return 0


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


# -- show ------------------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    """Print the per-op table of MODEL and write the requested exports."""
    from alphanas.ir import serialize

    graph = load_model(args.model)
    if args.input_shapes:
        try:
            graph = graph.with_input_shapes(args.input_shapes)
        except AlphanasError as e:
            raise CLIError(f"--input-shape: {e}") from None
    analysis = _analyze(graph)
    _print_graph(graph, analysis)
    if args.dot:
        _write(args.dot, serialize.to_dot(graph, analysis), "DOT")
    if args.json:
        _write(args.json, serialize.dumps(graph), "JSON")
    return 0


def _write(path: str, text: str, what: str) -> None:
    from alphanas.ir.serialize import atomic_write_text

    try:
        atomic_write_text(path, text)
    except OSError as e:
        raise CLIError(f"cannot write {what} to '{path}': {e.strerror or e}") from None
    _console().print(f"wrote {what} to {path}", markup=False)


def load_model(model: str) -> Graph:
    """A zoo model by name, or the JSON graph at path `model` (anything path-like or existing)."""
    from alphanas.ir import serialize, zoo

    looks_like_path = model.endswith(".json") or os.sep in model or "/" in model
    if looks_like_path or os.path.exists(model):
        return serialize.load(model)
    if model in zoo.names():
        return zoo.build(model)
    raise CLIError(f"unknown model '{model}': not a zoo model and no such file "
                   f"(the zoo has: {', '.join(zoo.names())})")


def _analyze(graph: Graph) -> Analysis:
    from alphanas.errors import ShapeError
    from alphanas.ir.analysis import analyze

    missing = [t.name for t in graph.inputs if t.shape is None]
    if missing:
        raise ShapeError(f"input '{missing[0]}' of graph {graph.name!r} has no declared shape; "
                         f"pass --input-shape (one per input: {', '.join(graph.input_names)})")
    return analyze(graph)


def _print_graph(graph: Graph, a: Analysis) -> None:
    from rich.table import Table

    from alphanas.ir.registry import opdef

    table = Table(title=f"graph {graph.name or '<unnamed>'}")
    for col in ("#", "name", "kind", "inputs", "output shape", "params", "FLOPs", "depth"):
        right = col in ("#", "params", "FLOPs")
        table.add_column(col, justify="right" if right else "left", overflow="fold")
    for i, op in enumerate(graph.ops):
        info = a.ops[op.name]
        table.add_row(str(i), op.name, op.kind.value, ", ".join(op.inputs), _shape_text(info.shape),
                      human(info.params), human_flops(info.flops), opdef(op.kind).depth.value)
    con = _console()
    con.print(table, markup=False)
    ins = ", ".join(f"{t.name} {_shape_text(a.shapes[t.name])}" for t in graph.inputs)
    outs = ", ".join(f"{o} {_shape_text(a.shapes[o])}" for o in graph.outputs)
    con.print(f"inputs: {ins}", markup=False)
    con.print(f"outputs: {outs}", markup=False)
    con.print(f"totals: {len(graph.ops):,} ops, {a.params:,} params, {a.flops:,} FLOPs, "
              f"peak activation {a.peak_activation:,} elements", markup=False)


def _shape_text(shape: Sequence[Any]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"
