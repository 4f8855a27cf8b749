"""Properties of (sub-)graphs: shape, depth, mixing, resources; specs and verification.

Importing this package needs neither jax nor z3. The mixing names (`Mix`, `MixingTarget`,
`infer_mixing`) are loaded from `alphanas.properties.mixing` on first use.
"""

from __future__ import annotations

from typing import Any

from alphanas.properties.base import Pair, Subject, Target, Violation
from alphanas.properties.depth import DepthBound, DepthMode, DepthTarget, infer_depth
from alphanas.properties.resources import (
    Resources,
    ResourceTarget,
    infer_resources,
    peak_live_activation,
)
from alphanas.properties.shape import DimExpr, DimRange, ShapeTarget, SymbolicShapeTarget
from alphanas.properties.spec import (
    SearchSpace,
    Spec,
    load_spec,
    parse_spec,
    read_off_spec,
    spec_to_toml,
)
from alphanas.properties.verify import PropertyReport, Report, resolve_ops, verify

_MIXING = ("Mix", "MixingTarget", "infer_mixing")

__all__ = [
    "DepthBound",
    "DepthMode",
    "DepthTarget",
    "DimExpr",
    "DimRange",
    "Mix",
    "MixingTarget",
    "Pair",
    "PropertyReport",
    "Report",
    "ResourceTarget",
    "Resources",
    "SearchSpace",
    "ShapeTarget",
    "Spec",
    "Subject",
    "SymbolicShapeTarget",
    "Target",
    "Violation",
    "infer_depth",
    "infer_mixing",
    "infer_resources",
    "load_spec",
    "parse_spec",
    "peak_live_activation",
    "read_off_spec",
    "resolve_ops",
    "spec_to_toml",
    "verify",
]


def __getattr__(name: str) -> Any:
    if name in _MIXING:
        from alphanas.properties import mixing

        return getattr(mixing, name)
    raise AttributeError(f"module 'alphanas.properties' has no attribute '{name}'")
