"""The model zoo, written in the IR from block templates.

`build(name, **options)` returns a `Graph`; `ZOO` lists every model with its defaults and, where
one exists, the reference parameter count of the documented variant (DESIGN §3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alphanas.errors import AlphanasError
from alphanas.ir.graph import Graph

__all__ = ["ZOO", "ZooEntry", "build", "names"]


class UnknownModelError(AlphanasError, KeyError):
    """A model name that is neither in the zoo nor a file."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ZooEntry:
    """A zoo model: its builder, default options, and the reference param count they give."""

    name: str
    builder: Callable[..., Graph]
    doc: str
    defaults: dict[str, Any] = field(default_factory=dict)
    reference_params: int | None = None
    small: dict[str, Any] = field(default_factory=dict)  # options for a quick CPU forward pass


ZOO: dict[str, ZooEntry] = {}


def register(entry: ZooEntry) -> None:
    ZOO[entry.name] = entry


def names() -> list[str]:
    return sorted(ZOO)


def build(name: str, **options: Any) -> Graph:
    """The zoo model `name`, built with its defaults overridden by `options`."""
    if name not in ZOO:
        raise UnknownModelError(f"unknown model '{name}'; the zoo has: {', '.join(sorted(ZOO))}")
    e = ZOO[name]
    return e.builder(**{**e.defaults, **options})


# The families register themselves on import; imported last so `register` exists.
from alphanas.ir.zoo import cnn, efficientnet, nb201, resnet, vit  # noqa: E402, F401
