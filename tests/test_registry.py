"""The registry holds every facet of every op kind, and `import alphanas.ir` stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

from alphanas.ir import (
    ELEMENTWISE,
    LINEAR,
    NONLINEAR,
    REGISTRY,
    RESHAPING,
    DepthClass,
    OpKind,
    opdef,
)
from alphanas.ir.attrs import REQUIRED, AttrSpec, AttrType


@pytest.mark.parametrize("kind", list(OpKind), ids=lambda k: k.value)
def test_every_facet_present(kind: OpKind) -> None:
    import alphanas.ir._lowering as lowering

    d = opdef(kind)
    assert d.kind is kind
    lo, hi = d.arity
    assert isinstance(lo, int) and lo >= 0 and (hi is None or hi >= lo)
    assert isinstance(d.attrs, tuple) and all(isinstance(s, AttrSpec) for s in d.attrs)
    assert len({s.name for s in d.attrs}) == len(d.attrs), "attribute names repeat"
    for s in d.attrs:
        assert isinstance(s.type, AttrType)
        if s.type is AttrType.CHOICE:
            assert s.choices and (s.default is REQUIRED or s.default in s.choices)
    for facet in (d.shape, d.params, d.flops, d.norm):
        assert callable(facet)
    assert isinstance(d.depth, DepthClass)
    assert d.lower == f"lower_{kind.value}"
    assert callable(getattr(lowering, d.lower, None)), f"_lowering has no {d.lower}"
    assert isinstance(d.doc, str) and d.doc.strip() and "\n" not in d.doc


def test_registry_is_exactly_the_enum() -> None:
    assert set(REGISTRY) == set(OpKind)
    assert all(REGISTRY[k].kind is k for k in REGISTRY)


def test_categories() -> None:
    assert LINEAR | NONLINEAR | {OpKind.IDENTITY} == set(OpKind)
    assert not LINEAR & NONLINEAR
    assert opdef(OpKind.IDENTITY).depth is DepthClass.TRANSPARENT
    assert {OpKind.RELU, OpKind.GELU, OpKind.SWISH, OpKind.SIGMOID, OpKind.TANH, OpKind.SOFTMAX,
            OpKind.SELF_ATTENTION} <= NONLINEAR
    assert {OpKind.CONV, OpKind.DENSE, OpKind.ADD, OpKind.BATCH_NORM, OpKind.AVG_POOL,
            OpKind.MEAN, OpKind.RESHAPE, OpKind.DROPOUT, OpKind.EINSUM, OpKind.PARAM} <= LINEAR
    assert ELEMENTWISE <= set(OpKind) and RESHAPING <= set(OpKind)
    assert RESHAPING == {OpKind.RESHAPE, OpKind.FLATTEN, OpKind.TRANSPOSE}


def test_kind_parse_round_trips_and_rejects() -> None:
    from alphanas.errors import UnknownOpError

    for k in OpKind:
        assert OpKind.parse(k.value) is k
    with pytest.raises(UnknownOpError, match=r"unknown op 'convolution'; expected one of: conv, dense"):
        OpKind.parse("convolution")


def test_lowering_has_no_orphans() -> None:
    """Every `lower_*` function in _lowering belongs to an op kind (no dead or misnamed ones)."""
    import alphanas.ir._lowering as lowering

    defined = {n for n in dir(lowering) if n.startswith("lower_")}
    assert defined == {d.lower for d in REGISTRY.values()}


def test_import_ir_needs_neither_jax_nor_z3() -> None:
    code = ("import alphanas.ir, sys; "
            "assert 'jax' not in sys.modules and 'z3' not in sys.modules, "
            "sorted(m for m in ('jax', 'z3', 'flax') if m in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
