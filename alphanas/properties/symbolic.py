"""Symbolic shape inference, and proofs of shape claims "for all input sizes in range".

Input dims are named integer variables (B, H, W) with ranges (min, max, multiple_of). Walking
the graph in topological order, every tensor dim becomes a `Term` over them, by per-op rules
that mirror `alphanas.ir.rules` exactly:

- SAME windows give ceil(in/s), VALID ones floor((in - eff)/s) + 1 with the side condition
  in >= eff; strides and kernels are concrete, so a quotient is a fresh variable q defined by
  s*q <= p < s*q + s (linear). Quotients that divide exactly as polynomials (e.g. 32*h / 2)
  are folded, so ResNet-style stride chains over H = 32*h stay variable-free.
- relative sizes, reshape/flatten, broadcasting, concat, einsum labels, groups: products of
  terms and side conditions (divisibility, equality, "equal or 1").

Every definition of a fresh variable is total (defined for every size), so asserting the
definitions never hides an input size; side conditions are the *obligations*. `prove_shape`
proves "for all sizes in range: every obligation holds and every output dim equals its claim"
in `alphanas.properties.proof`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from alphanas.errors import AlphanasError, ShapeError
from alphanas.ir import rules as R
from alphanas.ir.attrs import OpKind, Shape, Size
from alphanas.ir.graph import Graph, Op
from alphanas.ir.registry import opdef
from alphanas.properties import smt
from alphanas.properties.smt import Constraint, Term

__all__ = [
    "RULES", "Definition", "Obligation", "Range", "SymAnalysis", "SymOpInfo", "SymbolicError",
    "infer_symbolic", "prod_terms",
]

SymShape = tuple[Term, ...]
K = OpKind


class SymbolicError(AlphanasError, ValueError):
    """Bad input to the symbolic layer: unknown dim names, empty ranges, malformed claims."""


@dataclass(frozen=True, slots=True)
class Range:
    """Sizes lo..hi (inclusive) that are multiples of `multiple_of`."""

    lo: int
    hi: int
    multiple_of: int = 1

    def __post_init__(self) -> None:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (self.lo, self.hi, self.multiple_of)):
            raise SymbolicError(f"a range needs ints (min, max, multiple_of), got {self}")
        if self.lo < 1 or self.multiple_of < 1 or self.unit_lo > self.unit_hi:
            raise SymbolicError(f"range {self.lo}..{self.hi} (multiple of {self.multiple_of}) holds "
                                "no size >= 1")

    @property
    def unit_lo(self) -> int:
        return -(-self.lo // self.multiple_of)

    @property
    def unit_hi(self) -> int:
        return self.hi // self.multiple_of


@dataclass(frozen=True, slots=True)
class Definition:
    """A fresh variable, total in its arguments: floor(a/b), ceil(a/b) (b a positive constant or a
    term; floor is 0 when b <= 0), or bcast: (b if a == 1 else a)."""

    var: str
    kind: str
    a: Term
    b: Term

    def evaluate(self, env: Mapping[str, int]) -> int:
        a, b = self.a.evaluate(env), self.b.evaluate(env)
        if self.kind == "bcast":
            return b if a == 1 else a
        if self.kind == "ceil":
            return -(-a // b)
        return a // b if b > 0 else 0

    def constraint(self) -> Constraint:
        v = Term.var(self.var)
        if self.kind == "bcast":
            return smt.is_ite(v, smt.eq(self.a, 1), self.b, self.a)
        if self.kind == "ceil":
            return smt.all_of(smt.ge(self.b * v, self.a), smt.lt(self.b * v - self.b, self.a))
        fl = smt.all_of(smt.le(self.b * v, self.a), smt.lt(self.a, self.b * v + self.b))
        if self.b.is_const:
            return fl
        return smt.all_of(smt.implies(smt.gt(self.b, 0), fl), smt.implies(smt.le(self.b, 0), smt.eq(v, 0)))


@dataclass(frozen=True, slots=True)
class Obligation:
    """A side condition of an op (or an output claim) that must hold for every size."""

    where: str
    what: str
    constraint: Constraint
    args: tuple[Term | tuple[Term, ...], ...] = ()

    def text(self, show: Callable[[Term], str] = str) -> str:
        """`where: what` with the `{}` slots of `what` filled by `args` rendered by `show`."""
        def one(a: Term | tuple[Term, ...]) -> str:
            return show(a) if isinstance(a, Term) else "(" + ", ".join(show(x) for x in a) + ")"

        return f"{self.where}: " + self.what.format(*(one(a) for a in self.args))

    def __str__(self) -> str:
        return self.text()


@dataclass(frozen=True)
class SymOpInfo:
    """What the symbolic rules say about one op: resolved attributes, input and output dims."""

    attrs: Mapping[str, Any]
    in_shapes: tuple[SymShape, ...]
    shape: SymShape
    labels: tuple[Mapping[str, Term], SymShape] | None = None  # einsum: label sizes, ellipsis


@dataclass(frozen=True)
class SymAnalysis:
    """Symbolic dims of every tensor of `graph`, over the named input dims."""

    graph: Graph
    dims: Mapping[str, Term]
    ranges: Mapping[str, Range]
    units: Mapping[str, tuple[str, int]]
    shapes: Mapping[str, SymShape]
    ops: Mapping[str, SymOpInfo]
    definitions: tuple[Definition, ...]
    obligations: tuple[Obligation, ...]

    @property
    def output_shapes(self) -> tuple[SymShape, ...]:
        return tuple(self.shapes[o] for o in self.graph.outputs)

    def domain(self) -> list[Constraint]:
        """Range constraints of the unit variables (dim = multiple_of * unit)."""
        out = []
        for name, (u, _) in self.units.items():
            r = self.ranges[name]
            out += [smt.ge(Term.var(u), r.unit_lo), smt.le(Term.var(u), r.unit_hi)]
        return out

    def env(self, sizes: Mapping[str, int]) -> dict[str, int]:
        """Values of every variable (units and fresh ones) for concrete named sizes."""
        e: dict[str, int] = {}
        for name, (u, m) in self.units.items():
            if sizes[name] % m:
                raise SymbolicError(f"dim {name}={sizes[name]} is not a multiple of {m}")
            e[u] = sizes[name] // m
        for d in self.definitions:
            e[d.var] = d.evaluate(e)
        return e

    def input_shapes(self, sizes: Mapping[str, int]) -> tuple[Shape, ...]:
        e = self.env(sizes)
        return tuple(tuple(d.evaluate(e) for d in self.shapes[n]) for n in self.graph.input_names)

    def show(self, t: Term) -> str:
        """`t` over the named dims, fresh variables spelled out: 'H/2', 'floor((H + 1)/2) - 1'."""
        inv = {u: (n, m) for n, (u, m) in self.units.items()}
        defs = {d.var: d for d in self.definitions}
        parts = []
        for mono, c in sorted(t.coeffs, key=lambda mc: (-len(mc[0]), mc[0])):
            den, names = 1, []
            for v in mono:
                if v in inv:
                    names.append(inv[v][0])
                    den *= inv[v][1]
                else:
                    names.append(self._show_def(defs[v]) if v in defs else v)
            g = math.gcd(c, den)
            c, den = c // g, den // g
            body = "*".join(names)
            text = body if body and abs(c) == 1 else (f"{abs(c)}*{body}" if body else str(abs(c)))
            parts.append(("-" if c < 0 else "+", text + (f"/{den}" if den > 1 else "")))
        if not parts:
            return "0"
        return ("-" if parts[0][0] == "-" else "") + parts[0][1] + "".join(f" {s} {x}" for s, x in parts[1:])

    def _show_def(self, d: Definition) -> str:
        if d.kind == "bcast":
            return f"bcast({self.show(d.a)}, {self.show(d.b)})"
        a = self.show(d.a)
        return f"{d.kind}({a if a.isidentifier() else f'({a})'}/{self.show(d.b)})"

    def concrete_shapes(self, sizes: Mapping[str, int]) -> dict[str, Shape]:
        """Every tensor's dims evaluated at `sizes` (meaningful where no obligation fails)."""
        e = self.env(sizes)
        return {t: tuple(d.evaluate(e) for d in s) for t, s in self.shapes.items()}


# ---- the inference context --------------------------------------------------------------------


@dataclass
class _Ctx:
    defs: list[Definition] = field(default_factory=list)
    obls: list[Obligation] = field(default_factory=list)
    memo: dict[tuple[str, Term, Term], Term] = field(default_factory=dict)
    where: str = ""
    labels: tuple[Mapping[str, Term], SymShape] | None = None  # of the last einsum

    def fresh(self, kind: str, a: Term, b: Term) -> Term:
        """The variable defined as kind(a, b); one per distinct definition, so equal
        quotients (a block's shortcut and main path) stay syntactically equal."""
        key = (kind, a, b)
        if key not in self.memo:
            d = Definition(f"{kind}!{len(self.defs)}", kind, a, b)  # '!': never a dim name
            self.defs.append(d)
            self.memo[key] = Term.var(d.var)
        return self.memo[key]

    def require(self, c: Constraint, what: str, *args: Term | tuple[Term, ...]) -> None:
        if c != smt.TRUE:
            self.obls.append(Obligation(self.where, what, c, args))

    def floor_div(self, p: Term, d: Term | int) -> Term:
        d = smt.as_term(d)
        if d.value is not None:
            q, r = p.divmod_const(d.value)
            return q if r.value is not None else q + self.fresh("floor", r, d)
        exact = p.exact_div(d)
        return exact if exact is not None else self.fresh("floor", p, d)

    def ceil_div(self, p: Term, s: int) -> Term:
        q, r = p.divmod_const(s)
        if r.value is not None:
            return q + (1 if r.value else 0)
        return q + self.fresh("ceil", r, Term.const(s))

    def exact_div(self, p: Term, d: Term | int, what: str, *args: Term | tuple[Term, ...]) -> Term:
        """p / d, with the obligation that d divides p."""
        d = smt.as_term(d)
        if d.value is not None:
            self.require(smt.divides(d.value, p), what, *args)
            return self.floor_div(p, d)
        q = self.floor_div(p, d)
        self.require(smt.eq(p, d * q), what, *args)
        return q

    def equal(self, p: Term, q: Term, what: str, *args: Term | tuple[Term, ...]) -> None:
        self.require(smt.eq(p, q), what, *args)

    def bcast(self, p: Term, q: Term, what: str, *args: Term | tuple[Term, ...]) -> Term:
        if p == q or q.value == 1:
            return p
        if p.value == 1:
            return q
        self.require(smt.any_of(smt.eq(p, q), smt.eq(p, 1), smt.eq(q, 1)), what, *args)
        return self.fresh("bcast", p, q)


def _need_rank(s: SymShape, lo: int, what: str) -> None:
    if len(s) < lo:
        raise ShapeError(f"{what} needs a rank >= {lo} input, got rank {len(s)}")


def _t(x: Term | int) -> Term:
    return smt.as_term(x)


def _int(x: Term | int) -> int | None:
    return x if isinstance(x, int) else x.value


def prod_terms(xs: Sequence[Term | int]) -> Term:
    """The product of terms (ints allowed), 1 for none."""
    out = Term.const(1)
    for x in xs:
        out = out * smt.as_term(x)
    return out


# ---- per-op symbolic shape rules (mirroring alphanas.ir.rules) ------------------------------

Attrs = dict[str, Any]
Rule = Callable[[_Ctx, Attrs, list[SymShape]], SymShape]


def _window(ctx: _Ctx, size: Term, k: int, s: int, d: int, padding: str, axis: int) -> Term:
    if padding == "SAME":
        return ctx.ceil_div(size, s)
    eff = (k - 1) * d + 1
    ctx.require(smt.ge(size, eff), f"VALID window of extent {eff} fits in axis {axis} (size {{}})", size)
    return ctx.floor_div(size - eff, s) + 1


def _conv(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    x = ins[0]
    c, f, g = x[-1], _t(a["features"]), _t(a["groups"])
    _divisible(ctx, c, g, "groups={} divides the {} input channels", g, c)
    _divisible(ctx, f, g, "groups={} divides features={}", g, f)
    sp = tuple(_window(ctx, x[1 + i], a["kernel"][i], a["strides"][i], a["dilation"][i],
                       a["padding"], 1 + i) for i in range(len(x) - 2))
    return (x[0], *sp, f)


def _divisible(ctx: _Ctx, p: Term, d: Term, what: str, *args: Term) -> None:
    if d.value is not None:
        ctx.require(smt.divides(d.value, p), what, *args)
    elif p.exact_div(d) is None:
        ctx.exact_div(p, d, what, *args)


def _pool(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    x = ins[0]
    out = []
    for i in range(len(x) - 2):
        w, s = _int(a["window"][i]), _int(a["strides"][i])
        if w is not None and s is not None:
            out.append(_window(ctx, x[1 + i], w, s, 1, a["padding"], 1 + i))
        elif a["padding"] == "VALID" or s is None:  # a global window: (x - x)//s + 1 or ceil(x/x)
            out.append(Term.const(1))
        else:
            out.append(ctx.ceil_div(x[1 + i], s))
    return (x[0], *out, x[-1])


def _dense(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    _need_rank(ins[0], 1, "dense")
    return (*ins[0][:-1], _t(a["features"]))


def _dense_general(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    kept = tuple(d for i, d in enumerate(ins[0]) if i not in a["axis"])
    return (*kept, *(_t(f) for f in a["features"]))


def _broadcast(ctx: _Ctx, x: SymShape, y: SymShape) -> SymShape:
    r = max(len(x), len(y))
    one = Term.const(1)
    xs, ys = (one,) * (r - len(x)) + x, (one,) * (r - len(y)) + y
    return tuple(ctx.bcast(p, q, f"{{}} and {{}} broadcast on axis {i - r} ({{}} vs {{}})", x, y, p, q)
                 for i, (p, q) in enumerate(zip(xs, ys, strict=True)))


def _binary(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    return _broadcast(ctx, ins[0], ins[1])


def _same(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    return ins[0]


def _softmax(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    r = len(ins[0])
    if not -r <= a["axis"] < r:
        raise ShapeError(f"axis {a['axis']} is out of range for a rank-{r} input")
    return ins[0]


def _concat(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    x, r, ax = ins[0], len(ins[0]), a["axis"]
    if not -r <= ax < r:
        raise ShapeError(f"axis {ax} is out of range for rank-{r} inputs")
    ax %= r
    for i, s in enumerate(ins[1:], 1):
        if len(s) != r:
            raise ShapeError(f"input {i} has rank {len(s)} but concat needs rank {r}")
        for j in range(r):
            if j != ax:
                ctx.equal(s[j], x[j], f"input {i} matches input 0 on axis {j} ({{}} vs {{}})", s[j], x[j])
    return (*x[:ax], sum((s[ax] for s in ins), Term()), *x[ax + 1:])


def _einsum(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    sizes, ell = ctx.labels = einsum_labels(a["equation"], ins, ctx)
    _, rhs = R.parse_einsum(a["equation"], len(ins))
    out: list[Term] = []
    for ch in rhs:
        out.extend(ell if ch == "." else (sizes[ch],))
    return tuple(out)


def einsum_labels(eq: str, ins: Sequence[SymShape], ctx: _Ctx) -> tuple[dict[str, Term], SymShape]:
    """Size of each einsum label (first occurrence) and the broadcast ellipsis dims; equal-label
    and broadcast side conditions go to `ctx`."""
    terms, _ = R.parse_einsum(eq, len(ins))
    sizes: dict[str, Term] = {}
    ell: SymShape = ()
    for t, s in zip(terms, ins, strict=True):
        n_named = len(t) - ("." in t)
        if len(s) < n_named or ("." not in t and len(s) != n_named):
            raise ShapeError(f"einsum term '{t}' does not fit an operand of rank {len(s)}")
        k = len(s) - n_named
        if "." in t:
            i = t.index(".")
            ell = _broadcast(ctx, ell, s[i:i + k])
            named = list(zip(t[:i], s[:i], strict=False)) + list(zip(t[i + 1:], s[i + k:], strict=False))
        else:
            named = list(zip(t, s, strict=False))
        for ch, d in named:
            if ch in sizes:
                ctx.equal(sizes[ch], d, f"einsum label '{ch}' has one size ({{}} vs {{}})", sizes[ch], d)
            else:
                sizes[ch] = d
    return sizes, ell


def _attention(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    _need_rank(ins[0], 3, "self_attention")
    q = _t(a["qkv_features"])
    _divisible(ctx, q, Term.const(a["num_heads"]), f"num_heads={a['num_heads']} divides qkv_features={{}}", q)
    return (*ins[0][:-1], _t(a["out_features"]))


def _group_norm(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    _need_rank(ins[0], 2, "group_norm")
    g = a["num_groups"]
    ctx.require(smt.divides(g, ins[0][-1]), f"num_groups={g} divides the {{}} channels", ins[0][-1])
    return ins[0]


def _reshape(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    x, new = ins[0], list(a["new_shape"])
    wild = [i for i, d in enumerate(new) if isinstance(d, int) and d == -1]
    if len(wild) > 1:
        raise ShapeError(f"new_shape {tuple(new)} has more than one -1")
    if any(isinstance(d, int) and (d < -1 or d == 0) for d in new):
        raise ShapeError(f"new_shape {tuple(new)} must hold positive sizes or a single -1")
    total = prod_terms(x)
    known = prod_terms([_t(d) for i, d in enumerate(new) if i not in wild])
    shown = tuple(Term.const(-1) if i in wild else _t(d) for i, d in enumerate(new))
    what = "{} ({} elements) reshapes to {} ({} elements)"
    if wild:
        new[wild[0]] = ctx.exact_div(total, known, what, x, total, shown, known)
    else:
        ctx.equal(known, total, what, x, total, shown, known)
    return tuple(_t(d) for d in new)


def _flatten(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    _need_rank(ins[0], 1, "flatten")
    return (ins[0][0], prod_terms(ins[0][1:]))


def _transpose(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    perm = a["perm"]
    if sorted(perm) != list(range(len(ins[0]))):
        raise ShapeError(f"perm {perm} is not a permutation of the {len(ins[0])} axes")
    return tuple(ins[0][p] for p in perm)


def _mean(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    if a["keepdims"]:
        return tuple(Term.const(1) if i in a["axes"] else d for i, d in enumerate(ins[0]))
    return tuple(d for i, d in enumerate(ins[0]) if i not in a["axes"])


def _resize(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    _need_rank(ins[0], 3, "resize")
    n = len(ins[0]) - 2
    if len(a["size"]) != n:
        raise ShapeError(f"size has {len(a['size'])} entries but the input has {n} spatial dims")
    return (ins[0][0], *(_t(s) for s in a["size"]), ins[0][-1])


def _param(ctx: _Ctx, a: Attrs, ins: list[SymShape]) -> SymShape:
    dims = tuple(_t(d) for d in a["shape"])
    for d in dims:
        if d.value is not None and d.value < 1:
            raise ShapeError(f"param shape {a['shape']} must hold positive sizes")
        ctx.require(smt.ge(d, 1), "param dim {} is positive", d)
    return dims


_RULES: dict[OpKind, Rule] = {
    K.CONV: _conv, K.DENSE: _dense, K.DENSE_GENERAL: _dense_general, K.ADD: _binary,
    K.MUL: _binary, K.CONCAT: _concat, K.EINSUM: _einsum, K.SELF_ATTENTION: _attention,
    K.SOFTMAX: _softmax, K.GROUP_NORM: _group_norm, K.RESHAPE: _reshape, K.FLATTEN: _flatten,
    K.TRANSPOSE: _transpose, K.AVG_POOL: _pool, K.MAX_POOL: _pool, K.MEAN: _mean,
    K.RESIZE: _resize, K.PARAM: _param,
    **{k: _same for k in (K.SCALAR_ADD, K.SCALAR_MUL, K.RELU, K.GELU, K.SWISH, K.SIGMOID, K.TANH,
                          K.BATCH_NORM, K.LAYER_NORM, K.DROPOUT, K.STOCHASTIC_DEPTH, K.IDENTITY)},
}
RULES: Mapping[OpKind, Rule] = _RULES
"""The symbolic shape rule of every op kind."""


# ---- inference ----------------------------------------------------------------------------------


def _resolve(ctx: _Ctx, v: Any, first: SymShape | None, shapes: Mapping[str, SymShape]) -> Any:
    if isinstance(v, Size):
        ref = shapes[v.tensor] if v.tensor is not None else first
        if ref is None:
            raise ShapeError(f"relative size {v} needs an input to be relative to")
        if not -len(ref) <= v.axis < len(ref):
            raise ShapeError(f"{v} refers to axis {v.axis} of a rank-{len(ref)} tensor")
        n = ref[v.axis] * v.mul
        return n if v.div == 1 else ctx.exact_div(n, v.div, f"{v} is whole ({{}} / {v.div})", n)
    if isinstance(v, tuple):
        return tuple(_resolve(ctx, x, first, shapes) for x in v)
    return v


def _infer_op(ctx: _Ctx, op: Op, shapes: Mapping[str, SymShape]) -> SymOpInfo:
    ctx.where, ctx.labels = f"{op.kind.value} '{op.name}'", None
    ins = [shapes[i] for i in op.inputs]
    try:
        a = {k: _resolve(ctx, v, ins[0] if ins else None, shapes) for k, v in op.attrs}
        a = opdef(op.kind).norm(a, list(ins))  # type: ignore[arg-type]  # norms only index shapes
        out = _RULES[op.kind](ctx, a, ins)
    except ShapeError as e:
        raise ShapeError(f"{ctx.where}: {e}") from None
    return SymOpInfo(a, tuple(ins), tuple(out), ctx.labels)


def check_dims(graph: Graph, input_dims: Mapping[str, Sequence[str | int]],
                ranges: Mapping[str, Any]) -> dict[str, Range]:
    names = graph.input_names
    missing = [n for n in names if n not in input_dims]
    extra = [n for n in input_dims if n not in names]
    if missing or extra:
        raise SymbolicError(f"input_dims must name the graph's inputs {list(names)}; "
                            f"missing {missing}, unknown {extra}")
    used: set[str] = set()
    for n, dims in input_dims.items():
        for d in dims:
            if isinstance(d, str):
                if not d.isidentifier():
                    raise SymbolicError(f"input '{n}': dim name {d!r} must be an identifier")
                used.add(d)
            elif not (isinstance(d, int) and not isinstance(d, bool) and d >= 1):
                raise SymbolicError(f"input '{n}': dim {d!r} must be a name or a positive int")
    bad, unranged = sorted(set(ranges) - used), sorted(used - set(ranges))
    if bad:
        raise SymbolicError(f"range given for {bad[0]!r}, which names no input dim (dims: {sorted(used)})")
    if unranged:
        raise SymbolicError(f"dim {unranged[0]!r} needs a range (min, max[, multiple_of])")
    return {k: v if isinstance(v, Range) else Range(*v) for k, v in ranges.items()}


def dim_units(rng: Mapping[str, Range]) -> dict[str, tuple[str, int]]:
    """Named dim -> (its SMT unit variable, multiple): dim = multiple * unit."""
    return {n: (n if r.multiple_of == 1 else f"{n}#{r.multiple_of}", r.multiple_of)
            for n, r in rng.items()}


def infer_symbolic(graph: Graph, input_dims: Mapping[str, Sequence[str | int]],
                   ranges: Mapping[str, Range | tuple[int, ...]]) -> SymAnalysis:
    """Symbolic dims of every tensor; a size-independent shape error raises `ShapeError`."""
    rng = check_dims(graph, input_dims, ranges)
    units = dim_units(rng)
    dims = {n: Term.var(u) * m for n, (u, m) in units.items()}
    shapes: dict[str, SymShape] = {
        n: tuple(dims[d] if isinstance(d, str) else Term.const(d) for d in input_dims[n])
        for n in graph.input_names}
    ctx, ops = _Ctx(), {}
    for op in graph.ops:
        info = _infer_op(ctx, op, shapes)
        ops[op.name] = info
        shapes[op.name] = info.shape
    return SymAnalysis(graph, dims, rng, units, shapes, ops, tuple(ctx.defs), tuple(ctx.obls))
