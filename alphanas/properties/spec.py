"""Spec files: what a sub-network must be, in TOML.

Schema (every section but `inputs` is optional; unknown keys are errors)::

    name = "downsample block"           # free text
    [inputs]                            # name = shape, in order; ints or dim names
    x = [1, 32, 32, 64]
    [context]                           # what produces each input in its host, for depth:
    x = "linear"                        #   "linear" or "non-linear"; an input not listed counts
                                        #   as non-linear standalone and as its host producer in
                                        #   a host (where a listed class must match the host's)
    [outputs]                           # name = shape: ints, or with symbolic inputs
    y = [1, 16, 16, 128]                #   expressions int | N | N*k | N/k | N+k | N-k
    [ranges]                            # one per dim name of the inputs (symbolic specs)
    H = {min = 32, max = 1024, multiple_of = 32}
    [depth]
    mode = "at_least"                   # or "exactly", "range"
    value = 3                           # default for every (input, output) pair not listed
    "x->y" = 3                          # per pair; {min = 2, max = 4} in range mode
    [mixing]                            # MixingTarget's form: [[mixing.pairs]] input/output/matrix
    [resources]                         # budgets (upper bounds)
    max_params = 100000
    max_flops = 2e7
    max_peak_activation = 1000000
    [search]                            # synthesis constraints, also checked by verify
    ops = ["conv", "relu", "batch_norm", "add"]
    max_ops = 6

Errors are `SpecError`s naming the file, the key path and the accepted values.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from alphanas.errors import SpecError, UnknownOpError
from alphanas.ir.attrs import DepthClass, OpKind, Shape
from alphanas.properties.base import Subject, Target
from alphanas.properties.depth import DepthTarget, input_classes
from alphanas.properties.resources import ResourceTarget
from alphanas.properties.shape import (
    InputDim,
    ShapeTarget,
    SymbolicShapeTarget,
    parse_input_shape,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib

__all__ = ["PROPERTIES", "SearchSpace", "Spec", "load_spec", "parse_spec", "read_off_spec",
           "spec_pairs", "spec_to_toml"]

PROPERTIES = ("shape", "depth", "mixing", "resources")
"""The properties `read_off_spec` reads by default (mixing when its module is available)."""

_TOP_KEYS = ("context", "depth", "inputs", "mixing", "name", "outputs", "ranges", "resources", "search")
_SEARCH_KEYS = ("max_ops", "ops")
_CONTEXT_CLASSES = (DepthClass.LINEAR, DepthClass.NONLINEAR)


@dataclass(frozen=True)
class SearchSpace:
    """Synthesis constraints: the allowed op kinds (None = all) and the most ops (None = any)."""

    ops: tuple[OpKind, ...] | None = None
    max_ops: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.ops is not None:
            d["ops"] = [k.value for k in self.ops]
        if self.max_ops is not None:
            d["max_ops"] = self.max_ops
        return d


@dataclass(frozen=True)
class Spec:
    """A parsed spec: input shapes and the targets a (sub-)network must meet."""

    inputs: tuple[tuple[str, tuple[InputDim, ...]], ...]
    shape: ShapeTarget | SymbolicShapeTarget | None = None
    depth: DepthTarget | None = None
    mixing: Target | None = None
    resources: ResourceTarget | None = None
    search: SearchSpace = field(default_factory=SearchSpace)
    name: str = ""
    source: str = field(default="<spec>", compare=False)
    context: tuple[tuple[str, DepthClass], ...] = ()   # declared producer class, input order

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.inputs)

    def linear_inputs(self) -> frozenset[str]:
        """The inputs the [context] declares as produced by a linear op."""
        return frozenset(n for n, c in self.context if c is DepthClass.LINEAR)

    @property
    def output_names(self) -> tuple[str, ...] | None:
        """The declared outputs, or None when the spec declares none."""
        if self.shape is None or not self.shape.outputs:
            return None
        return tuple(n for n, _ in self.shape.outputs)

    @property
    def is_symbolic(self) -> bool:
        return isinstance(self.shape, SymbolicShapeTarget)

    def concrete_inputs(self) -> dict[str, Shape] | None:
        """Input name -> shape when every input dim is an int; None for symbolic inputs."""
        if any(isinstance(d, str) for _, dims in self.inputs for d in dims):
            return None
        return {n: tuple(int(d) for d in dims) for n, dims in self.inputs}

    def example_inputs(self) -> dict[str, Shape]:
        """Concrete input shapes: the declared ones, or every dim name at its smallest value."""
        concrete = self.concrete_inputs()
        if concrete is not None:
            return concrete
        assert isinstance(self.shape, SymbolicShapeTarget)
        return self.shape.input_shapes_at(self.shape.example_bindings())

    def targets(self) -> list[Target]:
        """The property targets the spec sets, in the order shape, depth, mixing, resources."""
        return [t for t in (self.shape, self.depth, self.mixing, self.resources) if t is not None]


# -- parsing ----------------------------------------------------------------------------------


def load_spec(path: str | os.PathLike[str]) -> Spec:
    """Read and validate the TOML spec at `path`."""
    source = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise SpecError(f"{source}: cannot read: {e.strerror or e}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise SpecError(f"{source}: not UTF-8 text (byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{source}: invalid TOML: {e}") from None
    return parse_spec(data, source)


def parse_spec(data: Mapping[str, Any], source: str = "<spec>") -> Spec:
    """Validate plain spec data (as `tomllib` gives it); errors name `source` and the key path."""
    try:
        return _parse(data, source)
    except SpecError as e:
        raise SpecError(f"{source}: {e}") from None


def _parse(data: Mapping[str, Any], source: str) -> Spec:
    if not isinstance(data, Mapping):
        raise SpecError(f"expected a table of sections, got {_show(data)}")
    _no_unknown(data, _TOP_KEYS, "")
    name = data.get("name", "")
    if not isinstance(name, str):
        raise SpecError(f"name: expected a string, got {_show(name)}")
    if "inputs" not in data:
        raise SpecError("missing section [inputs] (input name = shape, e.g. x = [1, 32, 32, 64])")
    ins = _table(data["inputs"], "inputs", "input name = shape")
    inputs = tuple((n, parse_input_shape(v, f"inputs.{_k(n)}")) for n, v in ins.items())
    shape = _parse_shape(data, inputs)
    spec = Spec(inputs, shape, _optional(data, "depth", DepthTarget.from_dict),
                _optional(data, "mixing", _mixing_from_dict),
                _optional(data, "resources", ResourceTarget.from_dict),
                _parse_search(data.get("search", {})), name, source,
                _parse_context(data.get("context", {}), tuple(n for n, _ in inputs)))
    _check_pair_names(spec)
    return spec


def _parse_shape(data: Mapping[str, Any], inputs: Sequence[tuple[str, tuple[InputDim, ...]]],
                 ) -> ShapeTarget | SymbolicShapeTarget | None:
    outs = _table(data.get("outputs", {}), "outputs", "output name = shape")
    ranges = data.get("ranges")
    symbolic_in = any(isinstance(d, str) for _, dims in inputs for d in dims)
    symbolic_out = any(not isinstance(d, int) for v in outs.values() if isinstance(v, list) for d in v)
    if symbolic_in or ranges is not None:
        raw = {n: list(dims) for n, dims in inputs}
        return SymbolicShapeTarget.from_dict({"inputs": raw, "outputs": outs,
                                              "ranges": {} if ranges is None else ranges}, "")
    if symbolic_out:
        for n, v in outs.items():
            for i, d in enumerate(v):
                if isinstance(d, str):
                    raise SpecError(f'outputs.{_k(n)}[{i}]: "{d}" names a dim but the inputs have '
                                    "no dim names (write them as e.g. [\"B\", \"H\", \"W\", 64])")
    return ShapeTarget.from_dict({"outputs": outs}, "") if outs else None


def _optional(data: Mapping[str, Any], key: str, parse: Any) -> Any:
    if key not in data:
        return None
    return parse(_table(data[key], key), key)


def _mixing_from_dict(data: Mapping[str, Any], where: str) -> Target:
    try:
        from alphanas.properties.mixing import MixingTarget
    except ImportError as e:
        raise SpecError(f"{where}: mixing targets are not available in this build ({e})") from None
    return MixingTarget.from_dict(data, where)


def _parse_search(v: Any) -> SearchSpace:
    t = _table(v, "search")
    _no_unknown(t, _SEARCH_KEYS, "search")
    ops = None
    if "ops" in t:
        if not isinstance(t["ops"], list) or not t["ops"]:
            raise SpecError(f"search.ops: expected a non-empty list of op names, got {_show(t['ops'])}")
        ops = tuple(_op_kind(x, f"search.ops[{i}]") for i, x in enumerate(t["ops"]))
    max_ops = t.get("max_ops")
    if max_ops is not None and (not isinstance(max_ops, int) or isinstance(max_ops, bool) or max_ops < 1):
        raise SpecError(f"search.max_ops: expected a positive int, got {_show(max_ops)}")
    return SearchSpace(ops, max_ops)


def _parse_context(v: Any, names: tuple[str, ...]) -> tuple[tuple[str, DepthClass], ...]:
    """[context]: input name = "linear" | "non-linear", kept in the order of the inputs."""
    t = _table(v, "context", 'input name = "linear" or "non-linear"')
    accepted = ", ".join(c.value for c in _CONTEXT_CLASSES)
    classes: dict[str, DepthClass] = {}
    for n, x in t.items():
        if n not in names:
            raise SpecError(f"context.{_k(n)}: '{n}' is not an input of the spec "
                            f"(inputs: {', '.join(names)})")
        if x not in [c.value for c in _CONTEXT_CLASSES]:
            raise SpecError(f"context.{_k(n)}: expected one of {accepted}; got {_show(x)}")
        classes[n] = DepthClass(x)
    return tuple((n, classes[n]) for n in names if n in classes)


def _op_kind(x: Any, where: str) -> OpKind:
    if not isinstance(x, str):
        raise SpecError(f"{where}: expected an op name, got {_show(x)}")
    try:
        return OpKind.parse(x)
    except UnknownOpError as e:
        raise SpecError(f"{where}: {e}") from None


def _check_pair_names(spec: Spec) -> None:
    """Depth/mixing pairs must name declared inputs (and declared outputs, if any)."""
    outs = spec.output_names
    for section, where, (i, o) in spec_pairs(spec):
        if i not in spec.input_names:
            raise SpecError(f"{section}.{where}: '{i}' is not an input of the spec "
                            f"(inputs: {', '.join(spec.input_names)})")
        if outs is not None and o not in outs:
            raise SpecError(f"{section}.{where}: '{o}' is not an output of the spec "
                            f"(outputs: {', '.join(outs)})")


def spec_pairs(spec: Spec) -> list[tuple[str, str, tuple[str, str]]]:
    """(section, key path, (input, output)) of every pair the depth and mixing targets name."""
    out = []
    if spec.depth is not None:
        out += [("depth", f'"{i}->{o}"', (i, o)) for (i, o), _ in spec.depth.pairs]
    if spec.mixing is not None:
        entries = spec.mixing.to_dict().get("pairs", [])
        out += [("mixing", f"pairs[{k}]", (e["input"], e["output"])) for k, e in enumerate(entries)
                if isinstance(e, Mapping) and "input" in e and "output" in e]
    return out


def _table(v: Any, where: str, what: str = "") -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise SpecError(f"{where}: expected a table{f' ({what})' if what else ''}, got {_show(v)}")
    return v


def _no_unknown(t: Mapping[str, Any], accepted: Iterable[str], where: str) -> None:
    accepted = tuple(accepted)
    unknown = [k for k in t if k not in accepted]
    if unknown:
        prefix = f"{where}: " if where else ""
        raise SpecError(f"{prefix}unknown key '{unknown[0]}' (accepted: {', '.join(accepted)})")


def _show(v: Any) -> str:
    return f'"{v}"' if isinstance(v, str) else repr(v)


def _k(key: str) -> str:
    """A key as written in a TOML key path: bare when it can be, else quoted."""
    return key if _BARE.match(key) else _string(key)


# -- reading off ------------------------------------------------------------------------------


def read_off_spec(subject: Subject, properties: Iterable[str] | None = None, name: str = "",
                  ) -> Spec:
    """The spec `subject` meets exactly: its input/output shapes and its property values, and
    (for a sub-graph) the producer class of each input in the host ([context]).

    `properties` picks from shape, depth, mixing, resources and search (the op kinds used and
    their count); the default is `PROPERTIES`, with mixing left out if it is not available.
    """
    wanted = list(PROPERTIES if properties is None else properties)
    unknown = [p for p in wanted if p not in (*PROPERTIES, "search")]
    if unknown:
        raise ValueError(f"unknown property '{unknown[0]}'; expected one of "
                         f"{', '.join((*PROPERTIES, 'search'))}")
    shapes = subject.analysis.shapes
    inputs = tuple((i, shapes[i]) for i in subject.inputs)
    mixing = None
    if "mixing" in wanted:
        try:
            from alphanas.properties.mixing import MixingTarget
        except ImportError:
            if properties is not None:
                raise
        else:
            mixing = MixingTarget.read_off(subject)
    search = SearchSpace()
    if "search" in wanted:
        kinds = {o.kind for o in subject.graph.ops}
        search = SearchSpace(tuple(k for k in OpKind if k in kinds), len(subject.graph.ops))
    return Spec(inputs,
                ShapeTarget.read_off(subject) if "shape" in wanted else None,
                DepthTarget.read_off(subject) if "depth" in wanted else None,
                mixing,
                ResourceTarget.read_off(subject) if "resources" in wanted else None,
                search, name, context=_read_off_context(subject))


def _read_off_context(subject: Subject) -> tuple[tuple[str, DepthClass], ...]:
    """Every input's producer class for a sub-graph (or a subject with declared linear
    inputs); nothing for a plain standalone graph, whose inputs are non-linear by default."""
    if subject.host is None and not subject.linear_inputs:
        return ()
    return tuple(input_classes(subject).items())


# -- writing ----------------------------------------------------------------------------------


def spec_to_toml(spec: Spec) -> str:
    """The spec as a TOML document that `load_spec` reads back to an equal `Spec`."""
    doc: dict[str, Any] = {}
    if spec.name:
        doc["name"] = spec.name
    doc["inputs"] = {n: list(dims) for n, dims in spec.inputs}
    if spec.context:
        doc["context"] = {n: c.value for n, c in spec.context}
    if spec.shape is not None:
        d = spec.shape.to_dict()
        if d.get("outputs"):
            doc["outputs"] = d["outputs"]
        if d.get("ranges"):
            doc["ranges"] = d["ranges"]
    for key, t in (("depth", spec.depth), ("mixing", spec.mixing), ("resources", spec.resources)):
        if t is not None:
            doc[key] = t.to_dict()
    if spec.search.to_dict():
        doc["search"] = spec.search.to_dict()
    title = f"alphanas spec{': ' + spec.name if spec.name else ''}"
    return f"# {_comment(title)}\n" + toml_dumps(doc)


def _comment(text: str) -> str:
    return text.replace("\n", " ").replace("\r", " ")


_BARE = re.compile(r"[A-Za-z0-9_-]+\Z")


def toml_dumps(doc: Mapping[str, Any]) -> str:
    """A TOML document for plain data: top-level scalars, then one [table] per mapping, with
    lists of mappings as [[arrays of tables]] and deeper mappings as inline tables."""
    lines = [f"{_k(k)} = {_value(v)}" for k, v in doc.items() if not isinstance(v, Mapping)]
    for k, v in doc.items():
        if isinstance(v, Mapping):
            lines += _toml_table(_k(k), v)
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_table(path: str, table: Mapping[str, Any]) -> list[str]:
    lines = ["", f"[{path}]"]
    arrays = []
    for k, v in table.items():
        if isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
            arrays.append((k, v))
        else:
            lines.append(f"{_k(k)} = {_value(v)}")
    for k, items in arrays:
        for item in items:
            lines += ["", f"[[{path}.{_k(k)}]]"]
            lines += [f"{_k(ik)} = {_value(iv)}" for ik, iv in item.items()]
    return lines


def _value(v: Any) -> str:
    if isinstance(v, Enum):
        v = v.value
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")) if not math.isfinite(v) else repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_k(k)} = {_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        items = [_value(x) for x in v]
        if len(v) > 1 and all(isinstance(x, (list, tuple)) for x in v):
            return "[\n" + "".join(f"  {x},\n" for x in items) + "]"
        return "[" + ", ".join(items) + "]"
    raise TypeError(f"cannot write {type(v).__name__} {v!r} to TOML")


def _string(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
