"""The `alphanas` console script.

Subcommands: `zoo` (the model zoo with params, FLOPs and reference counts), `show MODEL`
(per-op table of a zoo model or a JSON graph file; `--dot`/`--json` export it), `verify MODEL
--spec SPEC.toml` (exit 0 when every property holds, 1 when one is violated) and `props MODEL`
(the inferred properties; `--spec-out` writes them as a spec) and `synth SPEC.toml` (search for
a program meeting the spec: exit 0 solved, 1 unsat or timeout). `--subgraph OPS` picks a
sub-graph: comma-separated op names and/or prefixes ending in '/'. User errors print
`alphanas: error: ...` on stderr and exit with status 2, never with a traceback.
Heavy imports (rich, the zoo) happen inside the commands, so `import alphanas.cli` is cheap.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alphanas.errors import AlphanasError

if TYPE_CHECKING:
    from rich.console import Console

    from alphanas.ir.analysis import Analysis
    from alphanas.ir.graph import Graph
    from alphanas.properties.base import Subject
    from alphanas.synth import Settings, Stats

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
    v = sub.add_parser("verify", help="check a model or a sub-graph against a spec "
                       "(exit 0: holds, 1: violated, 2: bad input, 3: --oracle disagrees)")
    v.add_argument("model", metavar="MODEL", help="a zoo model name or a path to a JSON graph")
    v.add_argument("--spec", metavar="SPEC.toml", required=True, help="the spec to check")
    v.add_argument("--symbolic", action="store_true",
                   help="also prove a symbolic shape claim for every input size in its ranges")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.add_argument("--subgraph", metavar="OPS", help=_SUBGRAPH_HELP)
    v.add_argument("--oracle", action="store_true",
                   help="also judge with the independent oracle (Flax trace, exact mixing, its own "
                        "depth and cost) and report any disagreement with the rules (exit 3)")
    v.set_defaults(func=cmd_verify)
    r = sub.add_parser("props", help="the inferred properties of a model or a sub-graph")
    r.add_argument("model", metavar="MODEL", help="a zoo model name or a path to a JSON graph")
    r.add_argument("--subgraph", metavar="OPS", help=_SUBGRAPH_HELP)
    r.add_argument("--json", action="store_true", help="print the properties as JSON")
    r.add_argument("--spec-out", metavar="FILE", help="write the properties as a spec (TOML)")
    r.add_argument("--input-shape", metavar="SHAPE", type=_shape, action="extend", nargs="+",
                   dest="input_shapes", help="shape of each graph input, e.g. 1,32,32,3")
    r.set_defaults(func=cmd_props)
    _synth_parser(sub)
    b = sub.add_parser("bench", help="run a benchmark suite (nas: `alphanas bench nas --help`; "
                       "synth, from the source checkout: `alphanas bench synth --help`)")
    b.add_argument("which", choices=("nas", "synth"), help="the suite")
    b.add_argument("rest", nargs=argparse.REMAINDER, help="the suite's own options")
    b.set_defaults(func=cmd_bench)
    from alphanas.nas.commands import add_parsers

    add_parsers(sub)
    return p


def cmd_bench(args: argparse.Namespace) -> int:
    """`alphanas bench nas ...` runs the packaged NAS suite; `alphanas bench synth ...` runs
    benchmarks/synthesis/run.py of the source checkout."""
    if args.which == "nas":
        from alphanas.nas.bench.cli import main as nas_main

        return nas_main(args.rest)
    root = Path(__file__).resolve().parents[1]
    if not (root / "benchmarks" / "synthesis" / "run.py").is_file():
        return _fail(f"the benchmark suite lives in the source checkout (benchmarks/synthesis/); "
                     f"it is not next to this installation ({root})")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks.synthesis.run import main as bench_main

    return bench_main(args.rest)


OBJECTIVES = ("params", "flops")
"""`alphanas.synth.problem.OBJECTIVES`, repeated: importing alphanas.synth takes 0.25 s."""


def _synth_parser(sub: Any) -> None:
    y = sub.add_parser("synth", help="synthesize a program meeting a spec "
                       "(exit 0: solved, 1: unsat or timeout, 2: bad input)")
    y.add_argument("spec", metavar="SPEC.toml", help="the spec to synthesize for")
    y.add_argument("-o", "--output", metavar="OUT.json", help="write the program as a JSON graph")
    y.add_argument("--dot", metavar="OUT.dot", help="write the program as Graphviz DOT")
    y.add_argument("--minimize", choices=OBJECTIVES,
                   help="find the cheapest program of the smallest size, not the first")
    y.add_argument("--timeout", metavar="S", type=_positive_float, default=10.0,
                   help="wall-clock budget of the search in seconds (default: 10)")
    y.add_argument("--max-ops", metavar="K", type=int,
                   help="the most ops (overrides the spec's search.max_ops; default 6)")
    y.add_argument("--seed", metavar="N", type=int, default=0, help="names the run (default: 0)")
    y.add_argument("--json", action="store_true", help="print the result as JSON")
    y.set_defaults(func=cmd_synth)


_SUBGRAPH_HELP = ("the sub-graph: comma-separated op names and/or prefixes ending in '/' "
                  "(e.g. conv_layer1/)")


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


def _positive_float(text: str) -> float:
    """A finite number of seconds > 0 (an argparse type)."""
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0 < v < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return v


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

    graph = _with_shapes(load_model(args.model), args.input_shapes)
    analysis = _analyze(graph)
    _print_graph(graph, analysis)
    if args.dot:
        _write(args.dot, serialize.to_dot(graph, analysis), "DOT")
    if args.json:
        _write(args.json, serialize.dumps(graph), "JSON")
    return 0


def _with_shapes(graph: Graph, shapes: Sequence[tuple[int, ...]] | None) -> Graph:
    if not shapes:
        return graph
    try:
        return graph.with_input_shapes(shapes)
    except AlphanasError as e:
        raise CLIError(f"--input-shape: {e}") from None


def _write(path: str, text: str, what: str, quiet: bool = False) -> None:
    from alphanas.ir.serialize import atomic_write_text

    try:
        atomic_write_text(path, text)
    except OSError as e:
        raise CLIError(f"cannot write {what} to '{path}': {e.strerror or e}") from None
    if not quiet:
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


# -- verify and props ------------------------------------------------------------------------


def _subgraph_ops(graph: Graph, text: str | None) -> list[str] | None:
    """The op names `--subgraph` picks, checked to form a connected, convex selection."""
    if text is None:
        return None
    from alphanas.ir.edit import select
    from alphanas.properties.verify import resolve_ops

    try:
        ops = resolve_ops(graph, text)
        select(graph, ops)
    except AlphanasError as e:
        raise CLIError(f"--subgraph: {e}") from None
    return ops


def cmd_verify(args: argparse.Namespace) -> int:
    """Check MODEL against SPEC; exit 0 when every property holds, 1 when one is violated, 3 when
    `--oracle` finds the rules and the oracle disagree (an internal error)."""
    from alphanas.properties.spec import load_spec
    from alphanas.properties.verify import verify

    graph = load_model(args.model)
    spec = load_spec(args.spec)
    report = verify(graph, spec, _subgraph_ops(graph, args.subgraph), symbolic=args.symbolic,
                    oracle=args.oracle)
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        _console().print(report)
    if report.oracle is not None and not report.oracle.agrees:
        return 3
    return 0 if report.holds else 1


def cmd_props(args: argparse.Namespace) -> int:
    """Print the inferred properties of MODEL (or a sub-graph); optionally write them as a spec."""
    from alphanas.properties.base import Subject
    from alphanas.properties.verify import properties_of

    graph = _with_shapes(load_model(args.model), args.input_shapes)
    _analyze(graph)
    ops = _subgraph_ops(graph, args.subgraph)
    subject = Subject.whole(graph) if ops is None else Subject.sub(graph, ops)
    props = properties_of(subject)
    if args.json:
        doc = {"model": graph.name, "subgraph": ops, **props}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        _print_props(graph.name, ops, props)
    if args.spec_out:
        _write_spec(args.spec_out, subject, graph.name, ops, quiet=args.json)
    return 0


def _write_spec(path: str, subject: Subject, model: str, ops: list[str] | None, quiet: bool) -> None:
    from alphanas.ir.serialize import atomic_write_text
    from alphanas.properties.spec import read_off_spec, spec_to_toml

    where = f"{len(ops)} ops of {model}" if ops else model
    text = spec_to_toml(read_off_spec(subject, name=f"read off {where}"))
    try:
        atomic_write_text(path, text)
    except OSError as e:
        raise CLIError(f"cannot write the spec to '{path}': {e.strerror or e}") from None
    if not quiet:
        _console().print(f"wrote the spec to {path}", markup=False)


_MIX_SYMBOLS = {"none": "-", "one_to_one": "1", "many_to_one": "m", "all_to_one": "A"}


def _print_props(model: str, ops: list[str] | None, props: dict[str, Any]) -> None:
    from rich.table import Table

    con = _console()
    what = f"sub-graph of {len(ops)} ops of {model}" if ops else model
    con.print(f"properties of {what}", markup=False)
    shapes = Table()
    for col in ("tensor", "role", "shape"):
        shapes.add_column(col)
    for role in ("inputs", "outputs"):
        for name, shape in props[role].items():
            shapes.add_row(name, role[:-1], _shape_text(shape))
    con.print(shapes, markup=False)
    con.print("depth: linear/non-linear alternations per (input, output) pair; no row: no path",
              markup=False)
    if ops:
        produced = ", ".join(f"{i} {c}" for i, c in props["context"].items())
        con.print(f"context (the class of the host op producing each input): {produced}", markup=False)
    depth = Table()
    for col in ("input", "output", "depth"):
        depth.add_column(col, justify="right" if col == "depth" else "left")
    for d in props["depth"]:
        depth.add_row(d["input"], d["output"], str(d["depth"]))
    con.print(depth, markup=False)
    r = props["resources"]
    con.print(f"resources: {r['params']:,} params, {r['flops']:,} FLOPs ({human_flops(r['flops'])}), "
              f"peak live activations {r['peak_activation']:,} elements", markup=False)
    _print_mixing(props["mixing"], props["mixing_note"])


def _print_mixing(mixing: list[dict[str, Any]] | None, note: str) -> None:
    from rich.table import Table

    con = _console()
    if mixing is None:
        con.print(f"mixing: {note}", markup=False)
        return
    con.print("mixing (rows: input dims, columns: output dims; - none, 1 one-to-one, "
              "m many-to-one, A all-to-one)", markup=False)
    for entry in mixing:
        matrix = entry["matrix"]
        con.print(f"{entry['input']} -> {entry['output']}", markup=False)
        t = Table()
        t.add_column("in\\out", justify="right")
        for j in range(len(matrix[0]) if matrix else 0):
            t.add_column(str(j), justify="center")
        for i, row in enumerate(matrix):
            t.add_row(str(i), *(_MIX_SYMBOLS.get(v, v) for v in row))
        con.print(t, markup=False)


# -- synth -----------------------------------------------------------------------------------

_FLAGS = {"max_ops": "--max-ops", "timeout": "--timeout", "minimize": "--minimize"}


def cmd_synth(args: argparse.Namespace) -> int:
    """Synthesize a program for SPEC; exit 0 when solved, 1 when unsat, unknown or timed out."""
    from alphanas.ir import serialize
    from alphanas.properties.spec import load_spec
    from alphanas.synth import Problem, synthesize
    from alphanas.synth.report import render, to_json

    for path in (args.output, args.dot):  # fail before a long search, not after it
        if path is not None and not os.path.isdir(os.path.dirname(path) or "."):
            raise CLIError(f"cannot write to '{path}': no such directory")
    problem = Problem.of(load_spec(args.spec), _synth_settings(args))
    with _progress() as progress:
        result = synthesize(problem, progress)
    if args.json:
        sys.stdout.write(json.dumps(to_json(result), indent=2) + "\n")
    else:
        _console().print(render(result))
    if result.graph is not None:
        if args.output:
            _write(args.output, serialize.dumps(result.graph), "JSON", quiet=args.json)
        if args.dot:
            _write(args.dot, serialize.to_dot(result.graph), "DOT", quiet=args.json)
    return 0 if result.solved else 1


def _synth_settings(args: argparse.Namespace) -> Settings:
    from alphanas.synth import Settings, SynthError

    try:
        return Settings(max_ops=args.max_ops, timeout_s=args.timeout, seed=args.seed,
                        minimize=args.minimize)
    except SynthError as e:  # name the flag, not the settings field
        msg = str(e)
        field = msg.split(":", 1)[0]
        raise CLIError(f"{_FLAGS[field]}{msg[len(field):]}" if field in _FLAGS else msg) from None


@contextmanager
def _progress() -> Iterator[Callable[[Stats], None] | None]:
    """A spinner on stderr fed by the search's progress callback, when stderr is a TTY."""
    if not sys.stderr.isatty():
        yield None
        return
    import time

    from rich.console import Console

    from alphanas.synth.report import progress_line

    t0 = time.perf_counter()
    with Console(stderr=True).status("synthesizing ...") as status:
        yield lambda stats: status.update(progress_line(stats, time.perf_counter() - t0))
