"""SMT encodings of the properties of a given graph, related to targets.

`Encoding(graph)` puts one integer variable per fact into a bounded `smt.Solver`:

- shape: every dim of every tensor (`shape!<tensor>!<axis>`), tied to the input dims by the
  symbolic shape rules of `alphanas.properties.symbolic` (their definitions and side conditions).
  By default the input dims are variables pinned to the declared shapes; with `input_dims` and
  `ranges` they range over sizes (then the side conditions constrain the sizes).
- depth (DESIGN §4): per (input, tensor) the longest number of linear<->non-linear switches, as
  a max over predecessors, with one variable for paths ending in a linear run and one for paths
  ending in a non-linear run (the input counts as produced by a non-linear op unless listed in
  `linear_inputs`; transparent ops pass both through).
- mixing (DESIGN §4): per (input, tensor) a matrix of ints 0..3 (NONE < ONE_TO_ONE <
  MANY_TO_ONE < ALL_TO_ONE) composed through the per-op tables of
  `alphanas.properties.mixing.op_mixing` (imported lazily) by the rule of `infer_mixing`: a row
  holding ALL_TO_ONE stays ALL_TO_ONE, otherwise the stronger relation through each paired
  intermediate dim; paths and op inputs join by max; an all-NONE table passes nothing on.
  The tables depend on sizes, so mixing is encoded at the declared input shapes.
- resources: params and FLOPs as sums of per-op terms over the shape variables (mirroring
  `alphanas.ir.rules`).

`require(kind, value, relation)` adds a target ("candidate == / >= / <= target") under an
assumption literal, so `check()` names the failed targets in its UNSAT core.
`encode(graph, kind, value)` does both in one call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from alphanas.errors import AlphanasError
from alphanas.ir.analysis import analyze
from alphanas.ir.attrs import DepthClass, OpKind, Shape
from alphanas.ir.graph import Graph
from alphanas.ir.registry import opdef
from alphanas.properties import smt
from alphanas.properties.base import Subject
from alphanas.properties.smt import BoolLit, CheckResult, Constraint, Term
from alphanas.properties.symbolic import Range, SymAnalysis, SymOpInfo, infer_symbolic, prod_terms

__all__ = ["KINDS", "EncodedValues", "Encoding", "EncodingError", "encode"]

Pair = tuple[str, str]
Matrix = tuple[tuple[int, ...], ...]
MatrixTerms = tuple[tuple[Term, ...], ...]
KINDS = ("shape", "depth", "mixing", "params", "flops")
_DEFAULT_RELATION = {"shape": "==", "depth": ">=", "mixing": ">=", "params": "<=", "flops": "<="}
K = OpKind


class EncodingError(AlphanasError, ValueError):
    """A target that the encoding cannot express (unknown kind, relation, pair or rank)."""


@dataclass(frozen=True)
class EncodedValues:
    """The values of the encoded properties in a model (empty or None where not encoded)."""

    shapes: dict[str, Shape]
    depth: dict[Pair, int]
    mixing: dict[Pair, Matrix]
    params: int | None
    flops: int | None


class Encoding:
    """The properties of `graph` as SMT variables and constraints in one solver.

    `graph` may be a `Subject`: its inputs produced by linear ops in the host then start in a
    linear run for depth (as `infer_depth` counts them).
    """

    def __init__(self, graph: Graph | Subject, kinds: Sequence[str] = KINDS, *,
                 input_dims: Mapping[str, Sequence[str | int]] | None = None,
                 ranges: Mapping[str, Range | tuple[int, ...]] | None = None,
                 linear_inputs: frozenset[str] = frozenset(),
                 settings: smt.SmtSettings | None = None) -> None:
        if isinstance(graph, Subject):
            from alphanas.properties.depth import input_classes

            linear = {n for n, c in input_classes(graph).items() if c is DepthClass.LINEAR}
            graph, linear_inputs = graph.graph, linear_inputs | linear
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise EncodingError(f"unknown property '{bad[0]}' (accepted: {', '.join(KINDS)})")
        self.graph, self.kinds = graph, tuple(kinds)
        self.solver = smt.Solver(settings)
        self.targets: list[BoolLit] = []
        self._n = 0
        self.sym = self._symbolic(input_dims, ranges)
        self.shapes = self._encode_shapes()
        self.depth = self._encode_depth(linear_inputs) if "depth" in kinds else {}
        self.mixing: dict[Pair, MatrixTerms] = self._encode_mixing() if "mixing" in kinds else {}
        self.params = self._total("params", params_term) if "params" in kinds else None
        self.flops = self._total("flops", flops_term) if "flops" in kinds else None

    # -- shapes ------------------------------------------------------------------------------

    def _symbolic(self, input_dims: Mapping[str, Sequence[str | int]] | None,
                  ranges: Mapping[str, Any] | None) -> SymAnalysis:
        if input_dims is not None:
            return infer_symbolic(self.graph, input_dims, ranges or {})
        dims: dict[str, list[str | int]] = {}
        pins: dict[str, Range] = {}
        for i, t in enumerate(self.graph.inputs):
            if t.shape is None:
                raise EncodingError(f"input '{t.name}' has no declared shape; pass input_dims and ranges")
            dims[t.name] = [f"in{i}_{k}" for k in range(len(t.shape))]
            pins.update({f"in{i}_{k}": Range(d, d) for k, d in enumerate(t.shape)})
        return infer_symbolic(self.graph, dims, pins)

    def _encode_shapes(self) -> dict[str, tuple[Term, ...]]:
        s, sym = self.solver, self.sym
        s.add(*sym.domain(), *(d.constraint() for d in sym.definitions))
        s.add(*(o.constraint for o in sym.obligations))
        out = {}
        for t, dims in sym.shapes.items():
            out[t] = tuple(smt.var(f"shape!{t}!{k}") for k in range(len(dims)))
            s.add(*(smt.eq(v, d) for v, d in zip(out[t], dims, strict=True)))
        return out

    def _fresh(self, what: str) -> Term:
        self._n += 1
        return smt.var(f"{what}!{self._n}")

    # -- depth -------------------------------------------------------------------------------

    def _encode_depth(self, linear_inputs: frozenset[str]) -> dict[Pair, Term]:
        """One variable per (input, tensor, last class) that some path realises."""
        out: dict[Pair, Term] = {}
        for inp in self.graph.input_names:
            first = DepthClass.LINEAR if inp in linear_inputs else DepthClass.NONLINEAR
            ends: dict[str, dict[DepthClass, Term]] = {inp: {first: Term.const(0)}}
            for op in self.graph.ops:
                preds = [ends[i] for i in dict.fromkeys(op.inputs) if i in ends]
                if preds:
                    ends[op.name] = self._depth_step(opdef(op.kind).depth, preds)
            for t, e in ends.items():
                out[(inp, t)] = self._max(f"depth!{inp}!{t}", list(e.values()))
        return out

    def _depth_step(self, cls: DepthClass, preds: list[dict[DepthClass, Term]]) -> dict[DepthClass, Term]:
        if cls is DepthClass.TRANSPARENT:
            classes = [c for c in (DepthClass.LINEAR, DepthClass.NONLINEAR) if any(c in p for p in preds)]
            return {c: self._max("depth", [p[c] for p in preds if c in p]) for c in classes}
        cands = [v if c is cls else v + 1 for p in preds for c, v in p.items()]
        return {cls: self._max("depth", cands)}

    def _max(self, what: str, terms: list[Term]) -> Term:
        v = self._fresh(what)
        self.solver.add(smt.is_max(v, terms))
        return v

    # -- mixing ------------------------------------------------------------------------------

    def _encode_mixing(self) -> dict[Pair, MatrixTerms]:
        """Per input, a matrix variable per reachable tensor, composed through the op tables;
        an op whose table for an input is all NONE passes nothing on (as `infer_mixing`)."""
        from alphanas.properties.mixing import identity_mixing, op_mixing

        if any(t.shape is None for t in self.graph.inputs):
            raise EncodingError("mixing tables depend on sizes: the mixing encoding needs the "
                                "graph's declared input shapes")
        a = analyze(self.graph)
        out: dict[Pair, MatrixTerms] = {}
        for inp in self.graph.input_names:
            rank = len(a.shapes[inp])  # the neutral start state, as in `infer_mixing`
            mats = {inp: tuple(tuple(Term.const(int(r == c)) for c in range(rank)) for r in range(rank))}
            for op in self.graph.ops:
                tables = op_mixing(op, a.ops[op.name])
                parts = [(mats[i], t) for i, t in zip(op.inputs, tables, strict=True)
                         if i in mats and any(int(v) for row in t for v in row)]
                if parts:
                    mats[op.name] = self._join(f"mix!{inp}!{op.name}", len(a.shapes[op.name]), parts)
            out.update({(inp, t): m for t, m in mats.items()})
            for o in self.graph.outputs:
                dead = tuple((Term(),) * len(a.shapes[o]) for _ in a.shapes[inp])
                out[(inp, o)] = mats.get(o, dead)
            if inp in self.graph.outputs:  # an input returned as is
                out[(inp, inp)] = tuple(tuple(Term.const(int(v)) for v in row)
                                        for row in identity_mixing(a.shapes[inp]))
        return out

    def _join(self, name: str, cols: int, parts: list[tuple[MatrixTerms, Any]]) -> MatrixTerms:
        """M[a][b] = max over parts of: ALL_TO_ONE (3) if row a of M_in holds a 3, else the max
        over paired dims k of max(M_in[a][k], T[k][b])."""
        rows = len(parts[0][0])
        out = []
        for a in range(rows):
            row = []
            for b in range(cols):
                v = self._fresh(f"{name}!{a}!{b}")
                self.solver.add(smt.ge(v, 0), smt.le(v, 3),
                                smt.is_max(v, [self._via(m[a], t, b) for m, t in parts]))
                row.append(v)
            out.append(tuple(row))
        return tuple(out)

    def _via(self, row: tuple[Term, ...], table: Any, b: int) -> Term:
        cands = [self._comp(x, int(table[k][b])) for k, x in enumerate(row) if int(table[k][b]) > 0]
        e = self._fresh("mixvia")
        rowall = smt.any_of(smt.eq(x, 3) for x in row)
        self.solver.add(smt.is_ite(e, rowall, 3, 0) if not cands else
                        smt.any_of(smt.all_of(rowall, smt.eq(e, 3)),
                                   smt.all_of(smt.negate(rowall), smt.is_max(e, [Term(), *cands]))))
        return e

    def _comp(self, x: Term, y: int) -> Term:
        """0 if x is NONE, else max(x, y)."""
        if x.value is not None:
            return Term.const(0 if x.value == 0 else max(x.value, y))
        e = self._fresh("comp")
        self.solver.add(smt.any_of(
            smt.all_of(smt.eq(x, 0), smt.eq(e, 0)),
            smt.all_of(smt.ge(x, 1), smt.ge(x, y), smt.eq(e, x)),
            smt.all_of(smt.ge(x, 1), smt.lt(x, y), smt.eq(e, y))))
        return e

    # -- resources ---------------------------------------------------------------------------

    def _total(self, what: str, rule: Any) -> Term:
        total = Term()
        for op in self.graph.ops:
            info = self.sym.ops[op.name]
            total = total + rule(op.kind, info, self._div)
        v = smt.var(what)
        self.solver.add(smt.eq(v, total))
        return v

    def _div(self, p: Term, d: Term) -> Term:
        """p // d (d >= 1 by the shape side conditions)."""
        q = p.exact_div(d)
        if q is not None:
            return q
        q = self._fresh("div")
        self.solver.add(smt.le(d * q, p), smt.lt(p, d * q + d))
        return q

    # -- targets -----------------------------------------------------------------------------

    def require(self, kind: str, value: Any, relation: str | None = None) -> list[BoolLit]:
        """Add "candidate <relation> target" for property `kind`; returns its assumption literals."""
        rel = relation or _DEFAULT_RELATION.get(kind, "==")
        if kind not in self.kinds:
            raise EncodingError(f"property '{kind}' is not encoded (encoded: {', '.join(self.kinds)})")
        if rel not in ("==", ">=", "<="):
            raise EncodingError(f"relation must be one of ==, >=, <=; got {rel!r}")
        reqs = {"shape": self._shape_reqs, "depth": self._depth_reqs, "mixing": self._mixing_reqs,
                "params": self._budget_reqs, "flops": self._budget_reqs}[kind](kind, value, rel)
        lits = [self.solver.track(c, name) for name, c in reqs]
        self.targets += lits
        return lits

    def _shape_reqs(self, kind: str, value: Any, rel: str) -> list[tuple[str, Constraint]]:
        outs = self.graph.outputs
        shapes = [value[o] for o in outs] if isinstance(value, Mapping) else list(value)
        if len(shapes) != len(outs):
            raise EncodingError(f"shape target has {len(shapes)} shapes for {len(outs)} outputs")
        reqs: list[tuple[str, Constraint]] = []
        for o, want in zip(outs, shapes, strict=True):
            got = self.shapes[o]
            if len(want) != len(got):
                reqs.append((f"shape({o}) has rank {len(want)}", smt.FALSE))
                continue
            reqs += [(f"shape({o})[{k}] {rel} {w}", _rel(rel, g, w))
                     for k, (g, w) in enumerate(zip(got, want, strict=True)) if w is not None]
        return reqs

    def _depth_reqs(self, kind: str, value: Any, rel: str) -> list[tuple[str, Constraint]]:
        pairs = [(i, o) for i in self.graph.input_names for o in self.graph.outputs]
        if hasattr(value, "required"):  # a properties.depth.DepthTarget: per-pair [lo, hi] bounds
            bounds = [(p, b.lo, b.hi) for p, b in value.required(Subject.whole(self.graph))]
            return [req for p, lo, hi in bounds for req in self._bounded(p, lo, hi)]
        want = value if isinstance(value, Mapping) else {p: value for p in pairs}
        return [(f"depth({p[0]}->{p[1]}) {rel} {w}",
                 _rel(rel, self.depth[p], w) if p in self.depth else smt.FALSE)
                for p, w in want.items()]

    def _bounded(self, p: Pair, lo: int, hi: int | None) -> list[tuple[str, Constraint]]:
        d = self.depth.get(p)
        if d is None:
            return [(f"depth({p[0]}->{p[1]}) exists", smt.FALSE)]
        reqs = [(f"depth({p[0]}->{p[1]}) >= {lo}", smt.ge(d, lo))]
        return reqs + ([(f"depth({p[0]}->{p[1]}) <= {hi}", smt.le(d, hi))] if hi is not None else [])

    def _mixing_reqs(self, kind: str, value: Any, rel: str) -> list[tuple[str, Constraint]]:
        reqs: list[tuple[str, Constraint]] = []
        for p, want in value.items():
            got = self.mixing.get(tuple(p))
            if got is None or len(want) != len(got) or any(len(w) != len(g) for w, g in zip(want, got, strict=False)):
                reqs.append((f"mixing({p[0]}->{p[1]}) exists with shape of {want}", smt.FALSE))
                continue
            reqs += [(f"mixing({p[0]}->{p[1]})[{a}][{b}] {rel} {int(w)}", _rel(rel, g, int(w)))
                     for a, (wr, gr) in enumerate(zip(want, got, strict=True))
                     for b, (w, g) in enumerate(zip(wr, gr, strict=True)) if rel != ">=" or int(w) > 0]
        return reqs

    def _budget_reqs(self, kind: str, value: Any, rel: str) -> list[tuple[str, Constraint]]:
        if not isinstance(value, int) or isinstance(value, bool):
            raise EncodingError(f"a {kind} target must be an int, got {value!r}")
        return [(f"{kind} {rel} {value}", _rel(rel, getattr(self, kind), value))]

    # -- solving -----------------------------------------------------------------------------

    def check(self, targets: Sequence[BoolLit] | None = None, **limits: int) -> CheckResult:
        """SAT iff the graph meets `targets` (default: every target added so far); UNSAT names
        the failed ones in its core. `limits`: `rlimit`, `timeout_ms` for this check."""
        return self.solver.check(self.targets if targets is None else targets, **limits)

    def values(self) -> EncodedValues:
        """The encoded properties in the model of the last SAT check."""
        v = self.solver.value
        shapes = {t: tuple(v(d) for d in dims) for t, dims in self.shapes.items()}
        depth = {p: v(d) for p, d in self.depth.items()}
        mixing = {p: tuple(tuple(v(x) for x in row) for row in m) for p, m in self.mixing.items()}
        return EncodedValues(shapes, depth, mixing, None if self.params is None else v(self.params),
                             None if self.flops is None else v(self.flops))


def _rel(rel: str, got: Term, want: int | Term) -> Constraint:
    return {"==": smt.eq, ">=": smt.ge, "<=": smt.le}[rel](got, want)


def encode(graph: Graph | Subject, target_kind: str, target_value: Any, relation: str | None = None,
           **options: Any) -> Encoding:
    """The encoding of `graph`'s `target_kind` property with "value <relation> target" added
    (default relations: shape ==, depth >=, mixing >= (elementwise), params/flops <=)."""
    if target_kind not in KINDS:
        raise EncodingError(f"unknown property '{target_kind}' (accepted: {', '.join(KINDS)})")
    enc = Encoding(graph, (target_kind,), **options)
    enc.require(target_kind, target_value, relation)
    return enc


# ---- per-op cost terms (mirroring alphanas.ir.rules) -------------------------------------------


def params_term(kind: OpKind, info: SymOpInfo, div: Any) -> Term:
    a, x, out = info.attrs, info.in_shapes[0] if info.in_shapes else (), info.shape
    bias = a.get("use_bias", False)
    if kind is K.CONV:
        f = smt.as_term(a["features"])
        return prod_terms(a["kernel"]) * div(x[-1], smt.as_term(a["groups"])) * f + (f if bias else 0)
    if kind is K.DENSE:
        f = smt.as_term(a["features"])
        return x[-1] * f + (f if bias else 0)
    if kind is K.DENSE_GENERAL:
        fout = prod_terms(a["features"])
        return prod_terms([x[i] for i in a["axis"]]) * fout + (fout if bias else 0)
    if kind is K.SELF_ATTENTION:
        d, q, o = x[-1], smt.as_term(a["qkv_features"]), smt.as_term(a["out_features"])
        return 3 * (d * q + (q if bias else 0)) + q * o + (o if bias else 0)
    if kind in (K.BATCH_NORM, K.LAYER_NORM, K.GROUP_NORM):
        return 2 * x[-1]
    if kind is K.PARAM:
        return prod_terms(out)
    return Term()


_PER_ELEMENT = {K.ADD: 1, K.MUL: 1, K.SCALAR_ADD: 1, K.SCALAR_MUL: 1, K.RELU: 1, K.GELU: 1,
                K.SWISH: 1, K.SIGMOID: 1, K.TANH: 1, K.SOFTMAX: 3, K.BATCH_NORM: 2,
                K.LAYER_NORM: 5, K.GROUP_NORM: 5}


def flops_term(kind: OpKind, info: SymOpInfo, div: Any) -> Term:
    a, ins, out = info.attrs, info.in_shapes, info.shape
    if kind in _PER_ELEMENT:
        return _PER_ELEMENT[kind] * prod_terms(out)
    x = ins[0] if ins else ()
    if kind is K.CONV:
        return 2 * prod_terms(out) * prod_terms(a["kernel"]) * div(x[-1], smt.as_term(a["groups"]))
    if kind is K.DENSE:
        return 2 * prod_terms(out) * x[-1]
    if kind is K.DENSE_GENERAL:
        return 2 * prod_terms(out) * prod_terms([x[i] for i in a["axis"]])
    if kind is K.EINSUM:
        sizes, ell = info.labels  # type: ignore[misc]
        return 2 * prod_terms(list(sizes.values())) * prod_terms(ell)
    if kind is K.SELF_ATTENTION:
        d, q, o = x[-1], smt.as_term(a["qkv_features"]), smt.as_term(a["out_features"])
        return 2 * prod_terms(x[:-1]) * (3 * d * q + 2 * x[-2] * q + q * o)
    if kind in (K.AVG_POOL, K.MAX_POOL):
        return prod_terms(out) * prod_terms(a["window"])
    if kind is K.MEAN:
        return prod_terms(x)
    if kind is K.RESIZE and a["method"] != "nearest":
        return 2 * 2 ** (len(out) - 2) * prod_terms(out)
    return Term()
