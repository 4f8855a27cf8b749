"""alphanas: synthesis and verification of neural-network sub-architectures from properties."""

from alphanas.errors import (
    AlphanasError,
    AttrError,
    GraphError,
    SerializationError,
    ShapeError,
    UnknownOpError,
)

__version__ = "0.1.0"

__all__ = [
    "AlphanasError",
    "AttrError",
    "GraphError",
    "SerializationError",
    "ShapeError",
    "UnknownOpError",
    "__version__",
]
