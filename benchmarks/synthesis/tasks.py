"""Synthesis benchmark tasks: specs read off small sub-graphs of the model zoo, and perturbed.

Every task starts from a connected, convex selection of 1-8 ops with one output tensor, all of
synthesis-menu kinds, in a zoo model built at its small size (`zoo.ZOO[name].small`): a
contiguous window (host topological order) of a block instance, of a stem/head scope, or of the
whole model for the models without blocks worth the name (cifar_cnn, mlp, the fused ViTs).
Selections with the same structure, input shapes and input producers are kept once.

- witness: the spec the selection meets exactly (shape, depth, mixing, resources; search = the
  op kinds it uses, max_ops = its op count), so the source sub-graph is a solution;
- mutated: one seeded change of a witness, named in `Task.mutation` (e.g. "depth+1",
  "channels*2,budgets*2", "max_flops*0.70"); `Task.source_satisfies` says whether the source
  sub-graph still meets it.

A block template used at several input shapes also gives multi-context tasks: the same relative
window read off at up to `MAX_CONTEXTS` positions, one spec each; a solution must meet them all.

    python -m benchmarks.synthesis.tasks [--quick]    # counts and generation time
"""

from __future__ import annotations

import random
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from typing import Any

from alphanas.errors import GraphError
from alphanas.ir import zoo
from alphanas.ir.analysis import analyze
from alphanas.ir.attrs import OpKind, Shape
from alphanas.ir.graph import Graph, Op, size_refs
from alphanas.properties.base import Subject
from alphanas.properties.spec import Spec, parse_spec, read_off_spec, spec_to_toml
from benchmarks.synthesis.mutations import DRAW, MENU, MUTATIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib

__all__ = ["KINDS", "MENU", "SUITES", "Task", "make_tasks", "quick_tasks", "source_subjects",
           "task_from_dict", "task_to_dict"]

K = OpKind
SUITES = ("cifar_cnn", "mbconv", "mlp", "resnet_basic", "resnet_bottleneck", "resnet_downsample",
          "stem_head", "vit_attention", "vit_mlp")
KINDS = ("witness", "mutated")
MODELS = ("cifar_cnn", "mlp", "resnet18_cifar", "resnet18", "resnet50_cifar", "resnet50",
          "efficientnet_b0", "efficientnet_b1", "vit_ti16_fused", "vit_s16_fused")
_WHOLE = frozenset({"cifar_cnn", "mlp", "vit_ti16_fused", "vit_s16_fused"})
_TEMPLATE_SUITES = (("conv_layer", "cifar_cnn"), ("basic_down", "resnet_downsample"),
                    ("bottleneck_down", "resnet_downsample"), ("basic", "resnet_basic"),
                    ("bottleneck", "resnet_bottleneck"), ("mbconv", "mbconv"),
                    ("mlp_x", "vit_mlp"), ("mhdpa", "vit_attention"))
_ENCODER = re.compile(r"encoder\d+/")
MAX_OPS = 8
MAX_CONTEXTS = 3
WITNESSES_PER_SUITE = 9
MUTATED_PER_SUITE = 11
MULTI_PER_SUITE = 2
"""Multi-context tasks of each kind per suite, where the suite's templates allow them."""
QUICK_SIZE = 15


@dataclass(frozen=True)
class Task:
    """One synthesis problem: a sub-graph meeting every spec (one spec per context).

    `ops`/`n_ops`: the source selection in context 0 of `model` built with `model_options`;
    `contexts[k]`: its op names in context k. `mutation` is "" exactly for witnesses.
    """

    name: str
    suite: str
    kind: str
    mutation: str
    specs: tuple[Spec, ...]
    model: str
    ops: tuple[str, ...]
    n_ops: int
    model_options: tuple[tuple[str, Any], ...] = ()
    contexts: tuple[tuple[str, ...], ...] = ()
    source_satisfies: bool = True

    def __post_init__(self) -> None:
        where = f"task {self.name!r}"
        object.__setattr__(self, "ops", tuple(self.ops))
        object.__setattr__(self, "specs", tuple(self.specs))
        object.__setattr__(self, "contexts", tuple(tuple(c) for c in self.contexts or (self.ops,)))
        if self.suite not in SUITES:
            raise ValueError(f"{where}: unknown suite {self.suite!r} (accepted: {', '.join(SUITES)})")
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if (self.kind == "witness") != (self.mutation == ""):
            raise ValueError(f"{where}: a witness has mutation \"\" and a mutated task names one; "
                             f"got kind {self.kind!r} with mutation {self.mutation!r}")
        if len(self.specs) != len(self.contexts) or self.contexts[0] != self.ops:
            raise ValueError(f"{where}: expected one spec per context and contexts[0] == ops; got "
                             f"{len(self.specs)} specs for {len(self.contexts)} contexts")
        if self.n_ops != len(self.ops):
            raise ValueError(f"{where}: n_ops={self.n_ops} but ops lists {len(self.ops)} ops")


# -- the pool of source selections ------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    """A selection to read specs off: one tuple of op names per context, all in `model`."""

    base: str
    suite: str
    model: str
    contexts: tuple[tuple[str, ...], ...]

    @property
    def n_ops(self) -> int:
        return len(self.contexts[0])


@dataclass(frozen=True)
class _Region:
    """Ops whose contiguous windows are selections: a block, a scope, or the whole model."""

    label: str
    template: str
    ops: tuple[str, ...]


@cache
def _build(model: str, options: tuple[tuple[str, Any], ...]) -> Graph:
    return zoo.build(model, **dict(options))


def _options(model: str) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(zoo.ZOO[model].small.items()))


def _host(model: str) -> Graph:
    return _build(model, _options(model))


def _refs(op: Op) -> list[str]:
    """Tensors `op` reads only for their sizes (`dim_of` attributes)."""
    return size_refs(op)


def _regions(model: str, g: Graph) -> list[_Region]:
    if model in _WHOLE:
        return [_Region("", "", tuple(o.name for o in g.ops))]
    regions = [_Region(b.prefix, b.template, b.ops) for b in g.blocks]
    in_blocks = {n for b in g.blocks for n in b.ops}
    scopes: dict[str, list[str]] = {}
    for o in g.ops:
        if o.name not in in_blocks and "/" in o.name:
            scopes.setdefault(o.name.split("/")[0], []).append(o.name)
    return regions + [_Region(s, "", tuple(ops)) for s, ops in scopes.items()]


def _usable(g: Graph, window: Sequence[str], index: Mapping[str, int]) -> bool:
    """Menu kinds only, one output tensor, every outside tensor read as data, connected, convex.

    (`Subject.sub` has the last word; this only keeps the pool free of obvious rejects.)
    """
    chosen = set(window)
    ops = [g.op_map[n] for n in window]
    if any(o.kind not in MENU for o in ops):
        return False
    data = {i for o in ops for i in o.inputs if i not in chosen}
    if any(r not in chosen and r not in data for o in ops for r in _refs(o)):
        return False
    outs = [n for n in window if n in g.outputs or any(c not in chosen for c in g.consumers[n])]
    return len(outs) == 1 and _connected(ops, chosen) and _convex(g, window, chosen, index)


def _connected(ops: Sequence[Op], chosen: set[str]) -> bool:
    parent = {o.name: o.name for o in ops}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = x = parent[parent[x]]
        return x

    for o in ops:
        for i in (*o.inputs, *_refs(o)):
            if i in chosen:
                parent[find(i)] = find(o.name)
    return len({find(n) for n in chosen}) == 1


def _convex(g: Graph, window: Sequence[str], chosen: set[str], index: Mapping[str, int]) -> bool:
    """No outside op on a path between chosen ops (such a path stays before the last one)."""
    last = max(index[n] for n in window)
    stack = [c for n in window for c in g.consumers[n] if c not in chosen and index[c] < last]
    seen = set(stack)
    while stack:
        for c in g.consumers[stack.pop()]:
            if c in chosen:
                return False
            if c not in seen and index[c] < last:
                seen.add(c)
                stack.append(c)
    return True


def _windows(g: Graph, region: _Region, index: Mapping[str, int]) -> Iterator[tuple[str, ...]]:
    ops = region.ops
    for start in range(len(ops)):
        for n in range(1, min(MAX_OPS, len(ops) - start) + 1):
            if _usable(g, ops[start:start + n], index):
                yield ops[start:start + n]


def _structure(g: Graph, window: Sequence[str], shapes: Mapping[str, Shape]) -> tuple:
    """What makes two selections the same task: renamed ops, input shapes and producers."""
    chosen = set(window)
    inputs = [i for n in window for i in (*g.op_map[n].inputs, *_refs(g.op_map[n]))
              if i not in chosen]
    inputs = list(dict.fromkeys(inputs))
    names = {t: f"in{k}" for k, t in enumerate(inputs)} | {n: f"op{k}" for k, n in enumerate(window)}
    producers = tuple(g.op_map[i].kind if i in g.op_map else "input" for i in inputs)
    return (tuple(g.op_map[n].renamed(names) for n in window),
            tuple(shapes[i] for i in inputs), producers)


def _suite(g: Graph, model: str, template: str, window: Sequence[str]) -> str | None:
    if template:
        return next((s for prefix, s in _TEMPLATE_SUITES if template.startswith(prefix)), None)
    if model in ("cifar_cnn", "mlp"):
        return model
    if not model.startswith("vit"):
        return "stem_head"
    if any(g.op_map[n].kind is K.SELF_ATTENTION for n in window):
        return "vit_attention"
    if not all(_ENCODER.match(n) for n in window):
        return "stem_head"
    mlp_side = ("ln1", "mlp", "residual1")
    return "vit_mlp" if any(n.split("/")[1] in mlp_side for n in window) else "vit_attention"


def _rel(label: str, window: Sequence[str]) -> list[str]:
    """Op names relative to a region's label (a block prefix or scope; "" for the model)."""
    return [n[len(label) + 1:] if label else n for n in window]


def _base(model: str, label: str, rel: Sequence[str]) -> str:
    """The task name without its kind: model[/label]:first..last (relative op names)."""
    span = rel[0] if len(rel) == 1 else f"{rel[0]}..{rel[-1]}"
    return f"{model}/{label}:{span}" if label else f"{model}:{span}"


def _multi_context(model: str, g: Graph, index: Mapping[str, int]) -> Iterator[_Candidate]:
    """Per template met at >= 2 input shapes: each window at its first instance per shape."""
    shapes = analyze(g).shapes
    reps: dict[str, dict[Shape, Any]] = {}
    for b in g.blocks:
        reps.setdefault(b.template, {}).setdefault(shapes[g.op_map[b.ops[0]].inputs[0]], b)
    for template, by_shape in reps.items():
        blocks = list(by_shape.values())[:MAX_CONTEXTS]
        suite = _suite(g, model, template, ())
        if len(blocks) < 2 or suite is None:
            continue
        first = blocks[0]
        for w in _windows(g, _Region(first.prefix, template, first.ops), index):
            rel = _rel(first.prefix, w)
            contexts = tuple(tuple(f"{b.prefix}/{r}" for r in rel) for b in blocks)
            if all(_usable(g, c, index) for c in contexts[1:]):
                base = _base(model, f"{template}@{len(blocks)}ctx", rel)
                yield _Candidate(base, suite, model, contexts)


@lru_cache(maxsize=1)
def _pool() -> dict[str, tuple[_Candidate, ...]]:
    """Every distinct usable selection of the zoo models, by suite (deterministic order)."""
    seen: set[tuple] = set()
    pool: dict[str, list[_Candidate]] = {s: [] for s in SUITES}
    for model in MODELS:
        g = _host(model)
        shapes, index = analyze(g).shapes, {o.name: k for k, o in enumerate(g.ops)}
        found = [(_base(model, r.label, _rel(r.label, w)), _suite(g, model, r.template, w), (w,))
                 for r in _regions(model, g) for w in _windows(g, r, index)]
        found += [(c.base, c.suite, c.contexts) for c in _multi_context(model, g, index)]
        for base, suite, contexts in found:
            key = tuple(_structure(g, c, shapes) for c in contexts)
            if suite is not None and key not in seen:
                seen.add(key)
                pool[suite].append(_Candidate(base, suite, model, contexts))
    return {s: tuple(c) for s, c in pool.items()}


@cache
def _subjects(c: _Candidate) -> tuple[Subject, ...] | None:
    """The candidate's sub-graph in each context; None when `Subject.sub` rejects one."""
    try:
        subs = tuple(Subject.sub(_host(c.model), ops) for ops in c.contexts)
    except GraphError:
        return None
    return subs if all(len(s.outputs) == 1 for s in subs) else None


@cache
def _read_off(c: _Candidate) -> tuple[Spec, ...] | None:
    subs = _subjects(c)
    if subs is None:
        return None
    props = ("shape", "depth", "mixing", "resources", "search")
    return tuple(read_off_spec(s, props) for s in subs)


# -- tasks ------------------------------------------------------------------------------------


def _meets(subject: Subject, spec: Spec) -> bool:
    """Whether `subject` satisfies every target and the search constraints of `spec`."""
    kinds = {o.kind for o in subject.graph.ops}
    s = spec.search
    if s.ops is not None and not kinds <= set(s.ops):
        return False
    if s.max_ops is not None and len(subject.graph.ops) > s.max_ops:
        return False
    return all(t.satisfied_by(subject) for t in spec.targets())


def _task(c: _Candidate, kind: str, mutation: str, specs: Sequence[Spec], ok: bool) -> Task:
    name = f"{c.base}/{kind}" + (f":{mutation}" if mutation else "")
    named = tuple(replace(s, name=name if k == 0 else f"{name} #{k}") for k, s in enumerate(specs))
    return Task(name, c.suite, kind, mutation, named, c.model, c.contexts[0], c.n_ops,
                _options(c.model), c.contexts, ok)


def _witness(c: _Candidate) -> Task | None:
    specs = _read_off(c)
    return None if specs is None else _task(c, "witness", "", specs, True)


def _mutated(c: _Candidate, kind: str, rng: random.Random) -> Task | None:
    specs, subs = _read_off(c), _subjects(c)
    if specs is None or subs is None:
        return None
    drawn = DRAW[kind](specs[0], rng)
    if drawn is None:
        return None
    text, change = drawn
    new = [change(s) for s in specs]
    if any(s is None for s in new) or tuple(new) == specs:
        return None
    ok = all(_meets(sub, s) for sub, s in zip(subs, new, strict=True))
    return _task(c, "mutated", text, new, ok)


def _spread(cands: Sequence[_Candidate], rng: random.Random) -> list[_Candidate]:
    """The candidates cycling through op counts (from a random one), shuffled within each."""
    buckets: dict[int, list[_Candidate]] = {}
    for c in cands:
        buckets.setdefault(c.n_ops, []).append(c)
    sizes = sorted(buckets)
    for n in sizes:
        rng.shuffle(buckets[n])
    if sizes:
        k = rng.randrange(len(sizes))
        sizes = sizes[k:] + sizes[:k]
    out: list[_Candidate] = []
    while len(out) < len(cands):
        out += [buckets[n].pop() for n in sizes if buckets[n]]
    return out


def _witnesses(cands: Sequence[_Candidate], k: int) -> list[Task]:
    out: list[Task] = []
    for c in cands:
        if len(out) == k:
            break
        t = _witness(c)
        if t is not None:
            out.append(t)
    return out


def _mutants(cands: Sequence[_Candidate], k: int, kinds: Sequence[str], rng: random.Random,
             ) -> list[Task]:
    """Up to `k` mutated tasks, one per candidate, the mutation kinds taken in turn."""
    out: list[Task] = []
    turn = 0
    for c in cands:
        if len(out) == k:
            break
        for j in range(len(kinds)):
            t = _mutated(c, kinds[(turn + j) % len(kinds)], rng)
            if t is not None:
                out.append(t)
                turn += j + 1
                break
    return out


def _suite_tasks(seed: int, suite: str) -> list[Task]:
    """The suite's witnesses and mutated tasks (multi-context ones first, up to their quota)."""
    rng = random.Random(f"alphanas-synth-tasks:{seed}:{suite}")
    pool = _pool()[suite]
    single = [c for c in pool if len(c.contexts) == 1]
    multi = [c for c in pool if len(c.contexts) > 1]
    kinds = list(MUTATIONS)
    rng.shuffle(kinds)
    tasks = _witnesses(_spread(multi, rng), MULTI_PER_SUITE)
    tasks += _witnesses(_spread(single, rng), WITNESSES_PER_SUITE - len(tasks))
    mutated = _mutants(_spread(multi, rng), MULTI_PER_SUITE, kinds, rng)
    mutated += _mutants(_spread(single, rng), MUTATED_PER_SUITE - len(mutated), kinds, rng)
    return tasks + mutated


def _check_suites(suites: Sequence[str] | None) -> tuple[str, ...]:
    if suites is None:
        return SUITES
    if isinstance(suites, str):
        suites = (suites,)
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise ValueError(f"unknown suite {unknown[0]!r}; accepted suites: {', '.join(SUITES)}")
    return tuple(dict.fromkeys(suites))


def _spread_over_suites(tasks: Sequence[Task], limit: int, seed: int) -> list[Task]:
    """`limit` tasks taken round-robin over the suites, at random within each."""
    rng = random.Random(f"alphanas-synth-tasks:limit:{seed}")
    by_suite: dict[str, list[Task]] = {}
    for t in sorted(tasks, key=lambda t: t.name):
        by_suite.setdefault(t.suite, []).append(t)
    for ts in by_suite.values():
        rng.shuffle(ts)
    out: list[Task] = []
    while len(out) < limit:
        out += [by_suite[s].pop() for s in sorted(by_suite) if by_suite[s]][:limit - len(out)]
    return out


def make_tasks(seed: int = 0, limit: int | None = None, suites: Sequence[str] | None = None,
               ) -> list[Task]:
    """The benchmark tasks for `seed`, sorted by name; `limit` keeps that many, spread over the
    suites; `suites` picks suites (each suite's tasks do not depend on which others are asked)."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    tasks = [t for s in _check_suites(suites) for t in _suite_tasks(seed, s)]
    if limit is not None and limit < len(tasks):
        tasks = _spread_over_suites(tasks, limit, seed)
    return sorted(tasks, key=lambda t: t.name)


def quick_tasks(seed: int = 0) -> list[Task]:
    """A CI-sized subset of `make_tasks(seed)`: single-context tasks of at most 4 ops, one
    witness per suite, then one mutated task per suite (suites in random order) up to 15; the
    k-th pick has k % 4 + 1 ops where the suite has such a task."""
    rng = random.Random(f"alphanas-synth-tasks:quick:{seed}")
    small = [t for t in make_tasks(seed) if t.n_ops <= 4 and len(t.specs) == 1]
    out: list[Task] = []
    for kind in KINDS:
        order = list(SUITES)
        rng.shuffle(order)
        for suite in order:
            pick = [t for t in small if t.suite == suite and t.kind == kind]
            sized = [t for t in pick if t.n_ops == len(out) % 4 + 1]
            if pick and len(out) < QUICK_SIZE:
                out.append(rng.choice(sized or pick))
    return sorted(out, key=lambda t: t.name)


def source_subjects(task: Task) -> tuple[Subject, ...]:
    """The task's source sub-graph in each context, rebuilt from the zoo."""
    host = _build(task.model, tuple(task.model_options))
    return tuple(Subject.sub(host, ops) for ops in task.contexts)


# -- persistence ------------------------------------------------------------------------------

_FIELDS = {"name": str, "suite": str, "kind": str, "mutation": str, "model": str,
           "model_options": dict, "ops": list, "n_ops": int, "contexts": list,
           "source_satisfies": bool, "specs": list}


def task_to_dict(task: Task) -> dict[str, Any]:
    """Plain JSON-ready data; specs as TOML text (`spec_to_toml`)."""
    return {"name": task.name, "suite": task.suite, "kind": task.kind, "mutation": task.mutation,
            "model": task.model, "model_options": dict(task.model_options),
            "ops": list(task.ops), "n_ops": task.n_ops, "contexts": [list(c) for c in task.contexts],
            "source_satisfies": task.source_satisfies,
            "specs": [spec_to_toml(s) for s in task.specs]}


def task_from_dict(data: Mapping[str, Any]) -> Task:
    """The task `task_to_dict` wrote; errors name the task and the key."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a task must be a table with keys {', '.join(_FIELDS)}, got {data!r}")
    where = f"task {data.get('name', '<unnamed>')!r}"
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ValueError(f"{where}: unknown key '{unknown[0]}' (accepted: {', '.join(_FIELDS)})")
    for key, typ in _FIELDS.items():
        if key not in data:
            raise ValueError(f"{where}: missing key '{key}'")
        v = data[key]
        if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
            raise ValueError(f"{where}.{key}: expected {typ.__name__}, got {v!r}")
    for key in ("ops", "specs"):
        if not all(isinstance(x, str) for x in data[key]):
            raise ValueError(f"{where}.{key}: expected a list of strings, got {data[key]!r}")
    specs = []
    for k, text in enumerate(data["specs"]):
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{where}.specs[{k}]: invalid TOML: {e}") from None
        specs.append(parse_spec(doc, f"{where}.specs[{k}]"))
    contexts = tuple(tuple(c) for c in data["contexts"])
    return Task(data["name"], data["suite"], data["kind"], data["mutation"], tuple(specs),
                data["model"], tuple(data["ops"]), data["n_ops"],
                tuple(sorted(data["model_options"].items())), contexts, data["source_satisfies"])


if __name__ == "__main__":
    t0 = time.perf_counter()
    tasks = quick_tasks() if "--quick" in sys.argv else make_tasks()
    print(f"{len(tasks)} tasks in {time.perf_counter() - t0:.2f} s; "
          f"{sum(len(t.specs) > 1 for t in tasks)} multi-context; "
          f"{sum(t.kind == 'mutated' and t.source_satisfies for t in tasks)} mutated ones the "
          "source still satisfies")
    for key in ("suite", "kind", "n_ops"):
        print(f"by {key}:", dict(sorted(Counter(getattr(t, key) for t in tasks).items())))
