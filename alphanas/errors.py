"""The one error hierarchy of alphanas.

User mistakes (bad specs, malformed graphs, wrong shapes) derive from `AlphanasError` and the
matching builtin; internal bugs derive from `InternalError`. The CLI maps `AlphanasError` to
exit code 2 with the message and never shows a traceback for it.
"""

from __future__ import annotations

__all__ = [
    "AlphanasError",
    "AttrError",
    "GraphError",
    "InternalError",
    "SerializationError",
    "ShapeError",
    "SpecError",
    "UnknownOpError",
]


class AlphanasError(Exception):
    """Root of every error caused by user input."""


class GraphError(AlphanasError, ValueError):
    """A graph is ill-formed: cycle, dangling reference, arity, duplicate names."""


class ShapeError(AlphanasError, ValueError):
    """An op cannot be applied to the shapes it receives (names the op, expected vs. got)."""


class AttrError(AlphanasError, ValueError):
    """An op attribute is missing, unknown or of the wrong type/range."""


class UnknownOpError(AlphanasError, KeyError):
    """An op kind is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SerializationError(AlphanasError, ValueError):
    """A JSON graph file is malformed; names the file and the field path."""


class InternalError(Exception):
    """A bug in alphanas, not a user mistake."""


class SpecError(AlphanasError, ValueError):
    """A spec file is malformed: names the file, the key path and the accepted values."""
