"""The shape property: exact output shapes, and symbolic shapes over declared input ranges.

`ShapeTarget` asks for exact output shapes at the subject's (concrete) input shapes.
`SymbolicShapeTarget` states output dims as expressions of input dim names, for every input
in declared ranges, e.g. inputs x = (B, H, W, 256), outputs y = (B, H/2, W/2, 512) with
H in [32, 1024] and a multiple of 32. It is checked concretely here (at the subject's shapes);
`alphanas.properties.proof.prove_shape` proves it for the whole range.

Dim expressions are deliberately tiny: `int`, `name`, `name*int`, `name/int`, `name+int`,
`name-int`. `name/k` is exact division: at a value of `name` that k does not divide the claim
fails (declare `multiple_of` in the range to rule such values out).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from alphanas.errors import SpecError
from alphanas.ir.attrs import Shape
from alphanas.properties.base import Subject, Target, Violation

__all__ = [
    "DimExpr",
    "DimRange",
    "InputDim",
    "ShapeTarget",
    "SymbolicShapeTarget",
    "parse_dim_expr",
    "parse_input_shape",
    "parse_ranges",
    "shape_distance",
    "shape_violations",
    "toml_key",
]

InputDim = int | str
"""A dim of a declared input: a positive int, or a dim name bound by the subject's shape."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_EXPR = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:([-+*/])\s*([0-9]+))?\s*\Z")
_EXPR_HELP = "expected a positive int, a dim name, or name*int, name/int, name+int, name-int"


@dataclass(frozen=True, slots=True)
class DimExpr:
    """`name op value`, or the constant `value` when `name` is None (`op` is then '')."""

    name: str | None
    op: str
    value: int

    def evaluate(self, env: Mapping[str, int]) -> int | None:
        """The dim at the bindings `env`; None when `name/k` is not whole."""
        if self.name is None:
            return self.value
        x = env[self.name]
        if self.op == "*":
            return x * self.value
        if self.op == "/":
            return x // self.value if x % self.value == 0 else None
        if self.op == "+":
            return x + self.value
        if self.op == "-":
            return x - self.value
        return x

    def __str__(self) -> str:
        if self.name is None:
            return str(self.value)
        return f"{self.name}{self.op}{self.value}" if self.op else self.name

    def to_toml(self) -> int | str:
        return self.value if self.name is None else str(self)


def parse_dim_expr(value: Any, where: str) -> DimExpr:
    """A `DimExpr` from a spec value (an int or an expression string)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise SpecError(f"{where}: {_EXPR_HELP}; got {value}")
        return DimExpr(None, "", value)
    if not isinstance(value, str):
        raise SpecError(f"{where}: {_EXPR_HELP}; got {_show(value)}")
    m = _EXPR.match(value)
    if m is None:
        if value.strip().isdigit():
            return parse_dim_expr(int(value), where)
        raise SpecError(f"{where}: {_EXPR_HELP}; got {_show(value)}")
    name, op, k = m.group(1), m.group(2) or "", int(m.group(3) or 0)
    if op in ("*", "/") and k < 1:
        raise SpecError(f"{where}: {_EXPR_HELP} (int >= 1 after '{op}'); got {_show(value)}")
    return DimExpr(name, op, k)


def parse_input_shape(value: Any, where: str) -> tuple[InputDim, ...]:
    """A declared input shape: a non-empty list of positive ints and dim names."""
    if not isinstance(value, list) or not value:
        raise SpecError(f"{where}: expected a non-empty list of positive ints or dim names, "
                        f"got {_show(value)}")
    dims: list[InputDim] = []
    for i, d in enumerate(value):
        if isinstance(d, int) and not isinstance(d, bool) and d >= 1:
            dims.append(d)
        elif isinstance(d, str) and _NAME.match(d):
            dims.append(d)
        else:
            raise SpecError(f"{where}[{i}]: expected a positive int or a dim name "
                            f"(letters, digits, '_'), got {_show(d)}")
    return tuple(dims)


def _show(v: Any) -> str:
    return f'"{v}"' if isinstance(v, str) else repr(v)


_BARE = re.compile(r"[A-Za-z0-9_-]+\Z")


def toml_key(key: str) -> str:
    """`key` as written in a TOML key path: bare when it can be, else quoted."""
    if _BARE.match(key):
        return key
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class DimRange:
    """The values a dim name takes: `min <= x <= max` and `x % multiple_of == 0`."""

    min: int
    max: int
    multiple_of: int = 1

    def contains(self, x: int) -> bool:
        return self.min <= x <= self.max and x % self.multiple_of == 0

    def smallest(self) -> int:
        """The least value in the range (ranges are validated to be non-empty)."""
        return -(-self.min // self.multiple_of) * self.multiple_of

    def __str__(self) -> str:
        m = f", multiple of {self.multiple_of}" if self.multiple_of != 1 else ""
        return f"[{self.min}, {self.max}]{m}"

    def to_dict(self) -> dict[str, int]:
        d = {"min": self.min, "max": self.max}
        if self.multiple_of != 1:
            d["multiple_of"] = self.multiple_of
        return d


_RANGE_KEYS = ("max", "min", "multiple_of")


def _parse_range(value: Any, where: str) -> DimRange:
    if not isinstance(value, dict):
        raise SpecError(f"{where}: expected a table {{min = int, max = int[, multiple_of = int]}}, "
                        f"got {_show(value)}")
    unknown = sorted(set(value) - set(_RANGE_KEYS))
    if unknown:
        raise SpecError(f"{where}: unknown key '{unknown[0]}' (accepted: {', '.join(_RANGE_KEYS)})")
    for key in ("min", "max"):
        if key not in value:
            raise SpecError(f"{where}: missing '{key}' (a range needs min and max)")
    vals = {k: value.get(k, 1) for k in _RANGE_KEYS}
    for k, v in vals.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise SpecError(f"{where}.{k}: expected a positive int, got {_show(v)}")
    r = DimRange(vals["min"], vals["max"], vals["multiple_of"])
    if r.max < r.min or r.smallest() > r.max:
        raise SpecError(f"{where}: the range {r} is empty")
    return r


def parse_ranges(value: Any, where: str) -> tuple[tuple[str, DimRange], ...]:
    """`{name: {min, max[, multiple_of]}}` as sorted (name, range) pairs."""
    if not isinstance(value, dict):
        raise SpecError(f"{where}: expected a table of dim name = {{min, max}}, got {_show(value)}")
    out = []
    for name, r in value.items():
        if not _NAME.match(name):
            raise SpecError(f"{where}: '{name}' is not a dim name (letters, digits, '_')")
        out.append((name, _parse_range(r, f"{where}.{name}")))
    return tuple(out)


# -- exact shapes ---------------------------------------------------------------------------


def shape_violations(where: str, want: Sequence[int], got: Shape,
                     label: Sequence[str] | None = None) -> list[Violation]:
    """A violation per mismatched dim (amount: the difference), or one for a rank mismatch."""
    if len(want) != len(got):
        return [Violation("shape", where, f"rank {len(want)} {tuple(want)}", f"rank {len(got)} {got}",
                          float(abs(len(want) - len(got))))]
    return [Violation("shape", f"{where} dim {i}", label[i] if label else w, g, float(abs(w - g)))
            for i, (w, g) in enumerate(zip(want, got, strict=True)) if w != g]


def shape_distance(want: Sequence[int | None], got: Shape) -> float:
    """Fraction of mismatched dims; a rank difference counts its extra dims as mismatched."""
    n = max(len(want), len(got))
    if n == 0:
        return 0.0
    bad = sum(1 for w, g in zip(want, got, strict=False) if w != g) + abs(len(want) - len(got))
    return bad / n


@dataclass(frozen=True)
class ShapeTarget(Target):
    """Exact output shapes, by output name; every output of the subject must be listed."""

    name: ClassVar[str] = "shape"
    outputs: tuple[tuple[str, Shape], ...]

    @classmethod
    def read_off(cls, subject: Subject) -> ShapeTarget:
        shapes = subject.analysis.shapes
        return cls(tuple((o, shapes[o]) for o in subject.outputs))

    def check(self, subject: Subject) -> list[Violation]:
        shapes = subject.analysis.shapes
        out: list[Violation] = []
        for name, want in self.outputs:
            if name not in subject.outputs:
                out.append(Violation("shape", f"output {name}", want, "no such output", 1.0))
            else:
                out += shape_violations(f"output {name}", want, shapes[name])
        listed = {n for n, _ in self.outputs}
        out += [Violation("shape", f"output {o}", "no such output", shapes[o], 1.0)
                for o in subject.outputs if o not in listed]
        return out

    def distance(self, subject: Subject) -> float:
        """Mean over the union of output names: mismatched-dim fraction, 1 if missing/extra."""
        shapes = subject.analysis.shapes
        want = dict(self.outputs)
        names = list(want) + [o for o in subject.outputs if o not in want]
        if not names:
            return 0.0
        total = sum(shape_distance(want[n], shapes[n])
                    if n in want and n in subject.outputs else 1.0 for n in names)
        return total / len(names)

    def mutate(self, seed: int, **options: Any) -> ShapeTarget:
        """Double or halve (when even) the channel dim (`axis`, default -1) of one output."""
        rng = np.random.default_rng(seed)
        axis = int(options.get("axis", -1))
        k = int(rng.integers(len(self.outputs)))
        name, shape = self.outputs[k]
        dims = list(shape)
        c = dims[axis]
        halve = c % 2 == 0 and bool(rng.random() < 0.5)
        dims[axis] = c // 2 if halve else c * 2
        outs = list(self.outputs)
        outs[k] = (name, tuple(dims))
        return ShapeTarget(tuple(outs))

    def to_dict(self) -> dict[str, Any]:
        return {"outputs": {n: list(s) for n, s in self.outputs}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> ShapeTarget:
        """From {"outputs": {name: [int, ...]}}."""
        p = f"{where}." if where else ""
        outs = data.get("outputs")
        if not isinstance(outs, Mapping) or not outs:
            raise SpecError(f"{p}outputs: expected a table of output name = shape")
        parsed = []
        for n, v in outs.items():
            dims = [parse_dim_expr(d, f"{p}outputs.{toml_key(n)}[{i}]")
                    for i, d in enumerate(_list(v, f"{p}outputs.{toml_key(n)}"))]
            if any(d.name is not None for d in dims):
                raise SpecError(f"{p}outputs.{toml_key(n)}: exact shapes take ints only "
                                f"(declare symbolic inputs to use dim names)")
            parsed.append((n, tuple(d.value for d in dims)))
        return cls(tuple(parsed))


def _list(v: Any, where: str) -> list[Any]:
    if not isinstance(v, list) or not v:
        raise SpecError(f"{where}: expected a non-empty list of dims, got {_show(v)}")
    return v


# -- symbolic shapes ------------------------------------------------------------------------


@dataclass(frozen=True)
class SymbolicShapeTarget(Target):
    """Output dims as expressions of input dim names, for all names in their ranges.

    `inputs`: (name, dims) with ints and dim names; `outputs`: (name, dim expressions) (may be
    empty: then only the inputs' pattern and ranges are claimed); `ranges`: one per dim name.
    """

    name: ClassVar[str] = "shape"
    inputs: tuple[tuple[str, tuple[InputDim, ...]], ...]
    outputs: tuple[tuple[str, tuple[DimExpr, ...]], ...]
    ranges: tuple[tuple[str, DimRange], ...]

    @property
    def dim_names(self) -> tuple[str, ...]:
        """Dim names in order of first appearance in the inputs."""
        names = [d for _, dims in self.inputs for d in dims if isinstance(d, str)]
        return tuple(dict.fromkeys(names))

    @property
    def range_map(self) -> dict[str, DimRange]:
        return dict(self.ranges)

    def example_bindings(self) -> dict[str, int]:
        """Every dim name at the smallest value of its range."""
        r = self.range_map
        return {n: r[n].smallest() for n in self.dim_names}

    def input_shapes_at(self, env: Mapping[str, int]) -> dict[str, Shape]:
        """The concrete input shapes at the bindings `env`."""
        return {n: tuple(env[d] if isinstance(d, str) else d for d in dims) for n, dims in self.inputs}

    def output_shapes_at(self, env: Mapping[str, int]) -> dict[str, tuple[int | None, ...]]:
        """The claimed output shapes at `env` (None where a division is not whole)."""
        return {n: tuple(e.evaluate(env) for e in dims) for n, dims in self.outputs}

    def bind(self, subject: Subject) -> tuple[dict[str, int], list[Violation]]:
        """Bind the dim names to the subject's input shapes; violations where they do not fit."""
        shapes, env, out = subject.analysis.shapes, {}, []
        ranges = self.range_map
        for name, dims in self.inputs:
            if name not in subject.inputs:
                out.append(Violation("shape", f"input {name}", _text(dims), "no such input", 1.0))
                continue
            got = shapes[name]
            if len(got) != len(dims):
                out.append(Violation("shape", f"input {name}", f"rank {len(dims)} {_text(dims)}",
                                     f"rank {len(got)} {got}", float(abs(len(got) - len(dims)))))
                continue
            for i, (d, g) in enumerate(zip(dims, got, strict=True)):
                out += self._bind_dim(env, ranges, f"input {name} dim {i}", d, g)
        return env, out

    @staticmethod
    def _bind_dim(env: dict[str, int], ranges: Mapping[str, DimRange], where: str,
                  d: InputDim, g: int) -> list[Violation]:
        if isinstance(d, int):
            return [] if d == g else [Violation("shape", where, d, g, float(abs(d - g)))]
        if d in env:
            return [] if env[d] == g else [Violation("shape", where, f"{d} = {env[d]}", g,
                                                     float(abs(env[d] - g)))]
        env[d] = g
        r = ranges[d]
        return [] if r.contains(g) else [Violation("shape", where, f"{d} in {r}", g, 1.0)]

    def check(self, subject: Subject) -> list[Violation]:
        """Checked at the subject's concrete input shapes (not a proof for the whole range)."""
        env, out = self.bind(subject)
        if out:
            return out
        shapes = subject.analysis.shapes
        for name, dims in self.outputs:
            if name not in subject.outputs:
                out.append(Violation("shape", f"output {name}", _text(dims), "no such output", 1.0))
                continue
            want = [e.evaluate(env) for e in dims]
            labels = [f"{e} = {w if w is not None else 'not whole'}" for e, w in zip(dims, want, strict=True)]
            out += shape_violations(f"output {name}", [-1 if w is None else w for w in want],
                                    shapes[name], labels)
        return out

    def distance(self, subject: Subject) -> float:
        env, bad = self.bind(subject)
        if bad:
            return 1.0
        shapes = subject.analysis.shapes
        ds = [shape_distance([e.evaluate(env) for e in dims], shapes[n]) if n in subject.outputs else 1.0
              for n, dims in self.outputs]
        return sum(ds) / len(ds) if ds else 0.0

    @classmethod
    def read_off(cls, subject: Subject) -> SymbolicShapeTarget:
        """The subject's concrete shapes as a (name-free) symbolic claim."""
        shapes = subject.analysis.shapes
        return cls(tuple((i, shapes[i]) for i in subject.inputs),
                   tuple((o, tuple(DimExpr(None, "", d) for d in shapes[o])) for o in subject.outputs),
                   ())

    def mutate(self, seed: int, **options: Any) -> SymbolicShapeTarget:
        """Double or halve (when even) a constant last dim of one output; else unchanged."""
        if not self.outputs:
            return self
        rng = np.random.default_rng(seed)
        k = int(rng.integers(len(self.outputs)))
        name, dims = self.outputs[k]
        last = dims[-1]
        if last.name is not None:
            return self
        halve = last.value % 2 == 0 and bool(rng.random() < 0.5)
        new = DimExpr(None, "", last.value // 2 if halve else last.value * 2)
        outs = list(self.outputs)
        outs[k] = (name, (*dims[:-1], new))
        return SymbolicShapeTarget(self.inputs, tuple(outs), self.ranges)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"inputs": {n: list(s) for n, s in self.inputs},
                             "outputs": {n: [e.to_toml() for e in s] for n, s in self.outputs}}
        if self.ranges:
            d["ranges"] = {n: r.to_dict() for n, r in self.ranges}
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> SymbolicShapeTarget:
        """From {"inputs": {...}, "outputs": {...}, "ranges": {...}}; names must be declared."""
        p = f"{where}." if where else ""
        ins = data.get("inputs")
        if not isinstance(ins, Mapping) or not ins:
            raise SpecError(f"{p}inputs: expected a table of input name = shape")
        inputs = tuple((n, parse_input_shape(v, f"{p}inputs.{toml_key(n)}")) for n, v in ins.items())
        ranges = parse_ranges(data.get("ranges", {}), f"{p}ranges")
        outs = data.get("outputs", {})
        if not isinstance(outs, Mapping):
            raise SpecError(f"{p}outputs: expected a table of output name = shape")
        outputs = tuple((n, tuple(parse_dim_expr(d, f"{p}outputs.{toml_key(n)}[{i}]")
                                  for i, d in enumerate(_list(v, f"{p}outputs.{toml_key(n)}"))))
                        for n, v in outs.items())
        t = cls(inputs, outputs, ranges)
        t._validate_names(p)
        return t

    def _validate_names(self, p: str) -> None:
        names, ranged = set(self.dim_names), dict(self.ranges)
        for n in self.dim_names:
            if n not in ranged:
                raise SpecError(f"{p}ranges: missing a range for dim '{n}' "
                                f"(e.g. {n} = {{min = 1, max = 64}})")
        extra = sorted(set(ranged) - names)
        if extra:
            raise SpecError(f"{p}ranges.{extra[0]}: '{extra[0]}' is not a dim name of the inputs "
                            f"(names: {', '.join(self.dim_names) or 'none'})")
        for o, dims in self.outputs:
            for i, e in enumerate(dims):
                if e.name is not None and e.name not in names:
                    raise SpecError(f"{p}outputs.{toml_key(o)}[{i}]: '{e.name}' is not a dim name of the "
                                    f"inputs (names: {', '.join(self.dim_names) or 'none'})")


def _text(dims: Sequence[Any]) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"
