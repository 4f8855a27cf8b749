"""What the synthesizer is asked: one spec per context, and the search settings.

A *context* is one place the program must fit: a spec (input shapes, output shape, depth,
mixing, budgets, allowed ops, max ops) and, when it was read off a model, the host graph and
the selection it replaces (depth then counts sub-graph inputs as their host producers do, and
the result is re-verified spliced into the host). A block template used at several positions
gives several contexts; the program is one template with relative sizes that fits all of them.

Validation happens here, at the edge: every error is a `SynthError` naming the spec (file) and
what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from alphanas.errors import SpecError
from alphanas.ir.attrs import DepthClass, OpKind, Shape
from alphanas.ir.edit import Selection
from alphanas.ir.graph import Graph
from alphanas.properties.base import Subject
from alphanas.properties.depth import DepthBound, input_classes
from alphanas.properties.shape import SymbolicShapeTarget
from alphanas.properties.spec import Spec

__all__ = ["OBJECTIVES", "Context", "Problem", "Settings", "SynthError", "context_of"]

OBJECTIVES = ("params", "flops")
MAX_OPS = 12


class SynthError(SpecError):
    """A spec the synthesizer cannot take (malformed, contradictory or unsupported)."""


@dataclass(frozen=True)
class Settings:
    """Search settings. `max_ops=None` takes the spec's `search.max_ops` (else 6).

    The search is deterministic: `seed` only names the run (there is no random choice), so the
    same settings give the same program.
    """

    max_ops: int | None = None
    timeout_s: float = 10.0
    rlimit: int = 20_000_000          # per Z3 check (deterministic)
    check_timeout_ms: int = 5_000     # per Z3 check (wall clock)
    seed: int = 0
    minimize: str | None = None       # "params" | "flops" | None
    models_per_skeleton: int = 4      # Z3 models tried per skeleton before moving on
    max_candidates: int | None = None  # partial programs generated at most (a deterministic budget)

    def __post_init__(self) -> None:
        if self.minimize is not None and self.minimize not in OBJECTIVES:
            raise SynthError(f"minimize: expected one of {', '.join(OBJECTIVES)}, got {self.minimize!r}")
        if self.max_ops is not None and not 1 <= self.max_ops <= MAX_OPS:
            raise SynthError(f"max_ops: expected 1..{MAX_OPS}, got {self.max_ops}")
        if self.timeout_s <= 0:
            raise SynthError(f"timeout: expected > 0 seconds, got {self.timeout_s}")
        if self.max_candidates is not None and self.max_candidates < 1:
            raise SynthError(f"max_candidates: expected >= 1, got {self.max_candidates}")
        if self.models_per_skeleton < 1:
            raise SynthError(f"models_per_skeleton: expected >= 1, got {self.models_per_skeleton}")


@dataclass(frozen=True)
class Context:
    """One spec the program must meet, with its concrete input shapes and (optional) host."""

    spec: Spec
    inputs: tuple[tuple[str, Shape], ...]
    output: str
    out_shape: Shape
    depth: tuple[tuple[int, DepthBound], ...]        # (input index, bound) on the single output
    mixing: tuple[tuple[int, tuple[tuple[int, ...], ...]], ...]  # (input index, lower bounds)
    linear_inputs: frozenset[int]                    # inputs produced by a linear host op
    budgets: tuple[tuple[str, int], ...]             # ("params" | "flops" | "peak", bound)
    host: Graph | None = None
    selection: Selection | None = None

    @property
    def ref_channels(self) -> int:
        """The last dim of the first input: relative widths are multiples of it."""
        return self.inputs[0][1][-1]


@dataclass(frozen=True)
class Problem:
    contexts: tuple[Context, ...]
    ops: frozenset[OpKind]
    max_ops: int
    settings: Settings = field(default_factory=Settings)
    ignored: tuple[str, ...] = ()    # op kinds the specs allow but the synthesizer cannot place:
    # an exhaustive search over the others is then no certificate ("unknown", not "unsat")

    @property
    def n_inputs(self) -> int:
        return len(self.contexts[0].inputs)

    @property
    def source(self) -> str:
        return self.contexts[0].spec.source

    @classmethod
    def of(cls, specs: Spec | Sequence[Spec], settings: Settings | None = None,
           hosts: Sequence[tuple[Graph, Selection] | None] | None = None) -> Problem:
        """Validate specs (one per context) and settings into a problem."""
        settings = settings or Settings()
        specs = (specs,) if isinstance(specs, Spec) else tuple(specs)
        if not specs:
            raise SynthError("synthesis needs at least one spec")
        if settings.max_ops is not None:  # the flag overrides the specs' search.max_ops
            specs = tuple(replace(s, search=replace(s.search, max_ops=settings.max_ops)) for s in specs)
        hosts = tuple(hosts) if hosts is not None else (None,) * len(specs)
        if len(hosts) != len(specs):
            raise SynthError(f"{len(specs)} specs but {len(hosts)} host contexts")
        ctxs = tuple(context_of(s, h) for s, h in zip(specs, hosts, strict=True))
        first = ctxs[0]
        for c in ctxs[1:]:
            if len(c.inputs) != len(first.inputs) or [len(s) for _, s in c.inputs] != [
                    len(s) for _, s in first.inputs] or len(c.out_shape) != len(first.out_shape):
                raise SynthError(f"{c.spec.source}: every context must have the same number and ranks "
                                 f"of inputs and output as {first.spec.source}")
        ops = _allowed_ops(specs)
        max_ops = settings.max_ops or min((s.search.max_ops for s in specs if s.search.max_ops),
                                          default=6)
        if not 1 <= max_ops <= MAX_OPS:
            raise SynthError(f"{first.spec.source}: search.max_ops: expected 1..{MAX_OPS}, got {max_ops}")
        every = set(OpKind)
        for s in specs:  # what every spec allows (no [search] ops: every op kind)
            every &= set(s.search.ops) if s.search.ops is not None else set(OpKind)
        ignored = tuple(sorted(k.value for k in every if k not in ops))
        return cls(ctxs, ops, max_ops, settings, ignored)


def _allowed_ops(specs: Sequence[Spec]) -> frozenset[OpKind]:
    from alphanas.synth.menu import SYNTH_OPS

    allowed = set(SYNTH_OPS)
    for s in specs:
        if s.search.ops is not None:
            allowed &= set(s.search.ops)
    if not allowed:
        kinds = sorted({k.value for s in specs for k in (s.search.ops or ())})
        raise SynthError(f"{specs[0].source}: search.ops: none of {kinds} can be synthesized; "
                         f"accepted: {', '.join(sorted(k.value for k in SYNTH_OPS))}")
    return frozenset(allowed)


def context_of(spec: Spec, host: tuple[Graph, Selection] | None = None) -> Context:
    """The context of one spec: concrete shapes, the single output and its targets by index;
    inputs count as linear-produced per the host when given, else per the spec's [context]."""
    src = spec.source
    if spec.shape is None or not spec.shape.outputs:
        raise SynthError(f"{src}: outputs: synthesis needs the output shape (an [outputs] table)")
    if len(spec.shape.outputs) != 1:
        raise SynthError(f"{src}: outputs: synthesis supports one output, the spec has "
                         f"{len(spec.shape.outputs)} ({', '.join(n for n, _ in spec.shape.outputs)})")
    inputs = tuple(spec.example_inputs().items())
    out_name, out_dims = spec.shape.outputs[0]
    if isinstance(spec.shape, SymbolicShapeTarget):
        env = spec.shape.example_bindings()
        out_shape = tuple(spec.shape.output_shapes_at(env)[out_name])
    else:
        out_shape = tuple(out_dims)
    if any(d is None for d in out_shape):
        raise SynthError(f"{src}: outputs.{out_name}: every output dim must be known")
    names = [n for n, _ in inputs]
    # the host's producers decide; standalone, the spec's [context] declares them
    linear = frozenset(i for i, n in enumerate(names) if n in spec.linear_inputs())
    if host is not None:
        linear = _host_linear_inputs(spec, host)
    return Context(spec, inputs, out_name, tuple(int(d) for d in out_shape),
                   _depth_bounds(spec, names, out_name), _mixing_bounds(spec, names, out_name),
                   linear, _budgets(spec), *(host or (None, None)))


def _host_linear_inputs(spec: Spec, host: tuple[Graph, Selection]) -> frozenset[int]:
    """Indices of the inputs a linear host op produces; a [context] class that differs is an error."""
    classes = input_classes(Subject(_sub_graph(host), host[0], host[1]))
    for n, c in spec.context:
        if n in classes and classes[n] is not c:
            raise SynthError(f"{spec.source}: context.\"{n}\": the spec declares \"{c.value}\" but its "
                             f"producer in the host is {classes[n].value}")
    return frozenset(i for i, n in enumerate(host[1].inputs) if classes.get(n) is DepthClass.LINEAR)


def _sub_graph(host: tuple[Graph, Selection]) -> Graph:
    from alphanas.ir.edit import extract

    return extract(*host)


def _depth_bounds(spec: Spec, names: list[str], out: str) -> tuple[tuple[int, DepthBound], ...]:
    t = spec.depth
    if t is None:
        return ()
    listed = dict(t.pairs)
    bounds = []
    for k, n in enumerate(names):
        b = listed.get((n, out), t.default)
        if b is not None:
            bounds.append((k, b))
    for (i, o), _ in t.pairs:
        if i not in names or o != out:
            raise SynthError(f"{spec.source}: depth.\"{i}->{o}\": not an (input, output) pair of the spec")
    return tuple(bounds)


def _mixing_bounds(spec: Spec, names: list[str], out: str) -> tuple[tuple[int, tuple[tuple[int, ...], ...]], ...]:
    t = spec.mixing
    if t is None:
        return ()
    out_bounds = []
    for (i, o), m in getattr(t, "entries", ()):
        if i not in names or o != out:
            raise SynthError(f"{spec.source}: mixing.pairs: ({i}, {o}) is not an (input, output) pair "
                             f"of the spec (inputs: {', '.join(names)}; output: {out})")
        out_bounds.append((names.index(i), tuple(tuple(int(v) for v in row) for row in m)))
    return tuple(out_bounds)


def _budgets(spec: Spec) -> tuple[tuple[str, int], ...]:
    r = spec.resources
    if r is None:
        return ()
    pairs = (("params", r.max_params), ("flops", r.max_flops), ("peak", r.max_peak_activation))
    return tuple((k, int(v)) for k, v in pairs if v is not None)
