"""The synthesis benchmark tasks: reproducible, spread over suites and sizes, and true to source.

Witness specs are checked against sub-graphs rebuilt here from the zoo (not the generator's
cached ones); mutated specs against the witness read off the same sub-graph, mutation by mutation.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from alphanas.errors import SpecError
from alphanas.ir import zoo
from alphanas.ir.attrs import OpKind
from alphanas.ir.graph import Graph
from alphanas.properties.base import Subject
from alphanas.properties.mixing import Mix
from alphanas.properties.spec import Spec, read_off_spec, spec_to_toml

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # `benchmarks` is not installed; plain `pytest` may not see the root
    sys.path.insert(0, _ROOT)

from benchmarks.synthesis.tasks import (  # noqa: E402
    MENU,
    SUITES,
    Task,
    make_tasks,
    quick_tasks,
    task_from_dict,
    task_to_dict,
)

PROPS = ("shape", "depth", "mixing", "resources", "search")


@pytest.fixture(scope="module")
def tasks() -> list[Task]:
    return make_tasks()


@pytest.fixture(scope="module")
def read_off() -> Callable[[Task, int], tuple[Subject, Spec]]:
    """(task, context) -> the sub-graph rebuilt from the zoo and its read-off spec (memoized)."""
    hosts: dict[str, Graph] = {}
    memo: dict[tuple[str, tuple[str, ...]], tuple[Subject, Spec]] = {}

    def get(task: Task, k: int) -> tuple[Subject, Spec]:
        key = (task.model, task.contexts[k])
        if key not in memo:
            if task.model not in hosts:
                hosts[task.model] = zoo.build(task.model, **dict(task.model_options))
            sub = Subject.sub(hosts[task.model], task.contexts[k])
            memo[key] = (sub, read_off_spec(sub, PROPS))
        return memo[key]

    return get


def _text(tasks: list[Task]) -> list[tuple[str, list[str]]]:
    return [(t.name, [spec_to_toml(s) for s in t.specs]) for t in tasks]


def _meets(sub: Subject, spec: Spec) -> bool:
    kinds = {o.kind for o in sub.graph.ops}
    return (kinds <= set(spec.search.ops) and len(sub.graph.ops) <= spec.search.max_ops
            and all(t.satisfied_by(sub) for t in spec.targets()))


def test_same_seed_gives_the_same_tasks_and_another_seed_others(tasks):
    assert _text(make_tasks(0)) == _text(tasks)
    assert _text(make_tasks(1)) != _text(tasks)


def test_size_suites_names_kinds_and_op_counts(tasks):
    assert len(tasks) >= 120
    assert {t.suite for t in tasks} == set(SUITES)
    names = [t.name for t in tasks]
    assert len(set(names)) == len(names) and names == sorted(names)
    assert all(1 <= t.n_ops == len(t.ops) <= 8 for t in tasks)
    assert {t.n_ops for t in tasks} == set(range(1, 9))
    assert all((t.kind == "witness") == (t.mutation == "") for t in tasks)
    share = Counter(t.kind for t in tasks)["witness"] / len(tasks)
    assert 0.35 <= share <= 0.55
    assert sum(len(t.specs) > 1 for t in tasks) >= 5


def test_witness_specs_are_exactly_what_their_source_has(tasks, read_off):
    for t in (t for t in tasks if t.kind == "witness"):
        for k, spec in enumerate(t.specs):
            sub, exact = read_off(t, k)
            assert len(sub.outputs) == 1 and spec.input_names == sub.inputs, t.name
            for target in spec.targets():
                assert target.satisfied_by(sub), (t.name, k, target.check(sub))
            kinds = {o.kind for o in sub.graph.ops}
            assert kinds <= MENU and set(spec.search.ops) == kinds, t.name
            assert spec.search.max_ops == t.n_ops, t.name
            assert replace(spec, name="") == exact, t.name
            assert t.source_satisfies


def test_multi_context_tasks_read_one_relative_window_at_different_shapes(tasks):
    multi = [t for t in tasks if len(t.specs) > 1]
    assert {t.kind for t in multi} == {"witness", "mutated"}
    for t in multi:
        rel = {tuple(re.sub(r"^stage\d+/block\d+/|^conv_layer\d+/", "", n) for n in ops)
               for ops in t.contexts}
        assert len(rel) == 1, t.name
        shapes = {tuple(dims for _, dims in s.inputs) for s in t.specs}
        assert len(shapes) == len(t.specs), t.name


def _check_mutation(t: Task, spec: Spec, w: Spec) -> None:
    """The mutated spec differs from the witness `w` exactly as `t.mutation` says."""
    head = t.mutation.split(",")[0]
    if m := re.fullmatch(r"depth([+-]\d)", head):
        want = tuple((p, max(0, b.lo + int(m[1]))) for p, b in w.depth.pairs)
        assert tuple((p, b.lo) for p, b in spec.depth.pairs) == want
    elif m := re.fullmatch(r"(channels|spatial)([*/])2", head):
        (_, got), (_, was) = spec.shape.outputs[0], w.shape.outputs[0]
        axes = [len(was) - 1] if m[1] == "channels" else [1, 2]
        scale = (lambda d: d * 2) if m[2] == "*" else (lambda d: d // 2)
        assert got == tuple(scale(d) if a in axes else d for a, d in enumerate(was))
    elif m := re.fullmatch(r"(max_params|max_flops)\*(0\.\d+)", head):
        before = getattr(w.resources, m[1])
        assert getattr(spec.resources, m[1]) == int(before * float(m[2])) < before
        assert 0.5 <= float(m[2]) <= 0.9
    elif m := re.fullmatch(r"max_ops\+(\d)", head):
        extra = OpKind(t.mutation.split(",+")[1])
        assert spec.search.max_ops == w.search.max_ops + int(m[1])
        assert set(spec.search.ops) == {*w.search.ops, extra} and extra not in w.search.ops
    elif m := re.fullmatch(r"mixing-(drop|raise):(.*)", t.mutation):
        pairs = [p for p, _ in w.mixing.entries]
        new, old = dict(spec.mixing.entries), dict(w.mixing.entries)
        for k, a, b in re.findall(r"p(\d+)\[(\d+),(\d+)\]", m[2]):
            order = [(i, o) for i in w.input_names for o in w.output_names if (i, o) in pairs]
            p, a, b = order[int(k)], int(a), int(b)
            want = Mix.NONE if m[1] == "drop" else min(old[p][a][b] + 1, Mix.ALL_TO_ONE)
            assert new[p][a][b] == want
    else:
        raise AssertionError(f"{t.name}: unknown mutation {t.mutation!r}")


def test_mutated_specs_differ_from_their_witness_as_stated(tasks, read_off):
    mutated = [t for t in tasks if t.kind == "mutated"]
    families = Counter(re.split(r"[+\-*/:,]", t.mutation)[0] for t in mutated)
    assert set(families) >= {"depth", "mixing", "channels", "spatial", "max_ops"}
    assert families["max_params"] + families["max_flops"] > 0
    for t in mutated:
        pairs = [(s, *read_off(t, k)) for k, s in enumerate(t.specs)]
        assert any(spec_to_toml(replace(s, name="")) != spec_to_toml(w) for s, _, w in pairs), t.name
        assert t.source_satisfies == all(_meets(sub, s) for s, sub, _ in pairs), t.name
        for s, _, w in pairs:
            _check_mutation(t, s, w)


def test_tasks_round_trip_through_json(tasks):
    for t in tasks:
        back = task_from_dict(json.loads(json.dumps(task_to_dict(t))))
        assert back == t
        assert [spec_to_toml(s) for s in back.specs] == [spec_to_toml(s) for s in t.specs]


def test_task_from_dict_rejects_malformed_data(tasks):
    d = task_to_dict(next(t for t in tasks if len(t.specs) == 1))
    with pytest.raises(ValueError, match="missing key 'specs'"):
        task_from_dict({k: v for k, v in d.items() if k != "specs"})
    with pytest.raises(ValueError, match="unknown key 'extra'"):
        task_from_dict({**d, "extra": 1})
    with pytest.raises(ValueError, match=r"\.n_ops: expected int, got '3'"):
        task_from_dict({**d, "n_ops": "3"})
    with pytest.raises(ValueError, match="unknown suite 'nope'"):
        task_from_dict({**d, "suite": "nope"})
    with pytest.raises(ValueError, match="one spec per context"):
        task_from_dict({**d, "specs": d["specs"] * 2})
    with pytest.raises(ValueError, match=r"specs\[0\]: invalid TOML"):
        task_from_dict({**d, "specs": ["= ="]})
    with pytest.raises(SpecError, match=r"specs\[0\]: inputs\.x: expected a non-empty list"):
        task_from_dict({**d, "specs": ["[inputs]\nx = 3\n"]})


def test_suites_pick_tasks_and_unknown_suites_are_rejected(tasks):
    picked = make_tasks(suites=["mlp", "vit_mlp"])
    assert _text(picked) == _text([t for t in tasks if t.suite in ("mlp", "vit_mlp")])
    with pytest.raises(ValueError, match=r"unknown suite 'resnet'; accepted suites: cifar_cnn, "):
        make_tasks(suites=["mlp", "resnet"])


def test_limit_keeps_a_spread_subset(tasks):
    few = make_tasks(limit=18)
    assert len(few) == 18 and {t.suite for t in few} == set(SUITES)
    assert {t.name for t in few} <= {t.name for t in tasks}
    assert make_tasks(limit=0) == []
    with pytest.raises(ValueError, match="limit must be a non-negative int"):
        make_tasks(limit=-1)


def test_quick_tasks_are_small_and_cover_the_suites(tasks):
    quick = quick_tasks()
    assert 12 <= len(quick) <= 18
    assert {t.suite for t in quick} == set(SUITES)
    assert all(t.n_ops <= 4 and len(t.specs) == 1 for t in quick)
    assert {t.name for t in quick} <= {t.name for t in tasks}
    assert {t.kind for t in quick} == {"witness", "mutated"}
