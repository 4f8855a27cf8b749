"""The property interface shared by shape, depth, mixing and resources.

A property is inferred on a `Subject`: a whole graph, or a sub-graph in the context of its host
(its input shapes come from the host). A *target* of a property says what a candidate must
have; it can be read off a subject, checked (violations say where and by how much), measured
(distance: 0 when satisfied, larger = farther), mutated with an explicit seed, and written to /
read from the plain dicts of a TOML spec.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from alphanas.ir.analysis import Analysis, analyze
from alphanas.ir.edit import Selection, extract, select
from alphanas.ir.graph import Graph

__all__ = ["Subject", "Target", "Violation", "Pair"]

Pair = tuple[str, str]
"""(input tensor name, output tensor name) of a subject."""


@dataclass(frozen=True)
class Subject:
    """What properties are inferred on: `graph` is standalone, with declared input shapes.

    For a sub-graph, `graph` is the extracted selection (inputs named and shaped as the host's
    tensors) and `host`/`selection` record where it sits. Without a host, `linear_inputs` are
    the inputs declared (by a spec's [context]) as produced by a linear op; with one, the host's
    producers decide and `linear_inputs` is ignored.
    """

    graph: Graph
    host: Graph | None = None
    selection: Selection | None = None
    linear_inputs: frozenset[str] = frozenset()

    @classmethod
    def whole(cls, graph: Graph, linear_inputs: Iterable[str] = ()) -> Subject:
        """`graph` standalone; `linear_inputs` count as produced by a linear op (for depth)."""
        return cls(graph, linear_inputs=frozenset(linear_inputs))

    @classmethod
    def sub(cls, host: Graph, ops: Iterable[str]) -> Subject:
        sel = select(host, ops)
        return cls(extract(host, sel), host, sel)

    @cached_property
    def analysis(self) -> Analysis:
        return analyze(self.graph)

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.graph.input_names

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.graph.outputs

    @property
    def pairs(self) -> list[Pair]:
        return [(i, o) for i in self.inputs for o in self.outputs]


@dataclass(frozen=True)
class Violation:
    """One way a subject fails a target: which property, where, expected vs. got, how far."""

    property: str
    where: str
    expected: Any
    got: Any
    amount: float

    def __str__(self) -> str:
        return f"{self.property} at {self.where}: expected {self.expected}, got {self.got}"


class Target(abc.ABC):
    """A property target. Subclasses are frozen dataclasses (hashable, comparable)."""

    name: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def read_off(cls, subject: Subject) -> Target:
        """The target the subject has now (so the subject satisfies it)."""

    @abc.abstractmethod
    def check(self, subject: Subject) -> list[Violation]:
        """Every violation of this target by `subject`; empty when satisfied."""

    @abc.abstractmethod
    def distance(self, subject: Subject) -> float:
        """0 when satisfied, larger = farther (the paper's definitions where it has one)."""

    @abc.abstractmethod
    def mutate(self, seed: int, **options: Any) -> Target:
        """A perturbed copy; the same seed gives the same result."""

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Plain data for a TOML spec (the inverse of `from_dict`)."""

    @classmethod
    @abc.abstractmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Target:
        """Parse plain spec data; raise `alphanas.errors.SpecError` naming `where` (a key path)."""

    def satisfied_by(self, subject: Subject) -> bool:
        return not self.check(subject)
