"""Export of standalone Flax source: the generated model, run in a fresh interpreter, must equal
`lower(graph)` (outputs in eval and train mode, parameter tree), for zoo models and a graph
holding every op kind."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

from alphanas.errors import AlphanasError
from alphanas.ir import GraphBuilder, OpKind, Size, dim_of, rel, zoo
from alphanas.ir.graph import Graph
from alphanas.ir.init import host_init
from alphanas.ir.lower import eval_shapes, lower
from alphanas.ir.serialize import load
from alphanas.nas.export import ExportError, emitted_kinds, export_candidate, flax_source

K = OpKind
ZOO_NAMES = ("cifar_cnn", "mlp", "resnet18_cifar", "vit_ti16", "vit_ti16_fused")
OTHER_BATCH = ("vit_ti16", "all_ops")  # also run at batch 3: batch-relative sizes stay symbolic
TRAIN = ("resnet18_cifar", "all_ops")  # the graphs where train mode differs (batch norm, dropout)
DROPOUT_SEED = 7


def all_ops_graph() -> Graph:
    """Two inputs, three outputs, every op kind of the IR at least once."""
    b = GraphBuilder("all_ops")
    img = b.input("img", (2, 8, 8, 4))
    seq = b.input("seq", (2, 6, 8))
    x = b.op(K.CONV, img, name="conv", features=rel(2), kernel=3, dilation=2, groups=2, use_bias=False)
    x = b.op(K.BATCH_NORM, x, name="bn")
    x = b.op(K.RELU, x, name="relu")
    x = b.op(K.GROUP_NORM, x, name="gn", num_groups=4)
    x = b.op(K.SWISH, x, name="swish")
    p = b.op(K.MAX_POOL, x, name="max_pool", window=2, padding="SAME")
    up = b.op(K.RESIZE, p, name="up/linear", size=(rel(2, axis=1), rel(2, axis=2)), method="linear")
    near = b.op(K.RESIZE, p, name="up/nearest", size=(8, 8))
    up = b.op(K.ADD, up, near, name="up/add")
    x = b.op(K.CONCAT, up, x, name="concat", axis=-1)
    x = b.op(K.AVG_POOL, x, name="avg_pool", window=2)
    x = b.op(K.FLATTEN, x, name="flatten")
    x = b.op(K.DENSE, x, name="head/dense", features=16)
    x = b.op(K.SIGMOID, x, name="head/sigmoid")
    x = b.op(K.DROPOUT, x, name="head/dropout", rate=0.3)
    img_out = b.op(K.TANH, x, name="head/tanh")

    y = b.op(K.LAYER_NORM, seq, name="ln")
    y = b.op(K.SELF_ATTENTION, y, name="attn", num_heads=2, qkv_features=8, out_features=rel())
    y = b.op(K.STOCHASTIC_DEPTH, y, name="drop_path", rate=0.4)
    y = b.op(K.ADD, seq, y, name="residual")
    y = b.op(K.DENSE_GENERAL, y, name="heads", features=(2, 4), axis=(-1,))
    y = b.op(K.TRANSPOSE, y, name="transpose", perm=(0, 2, 1, 3))
    e = b.op(K.EINSUM, y, y, name="scores", equation="bhqd,bhkd->bhqk")
    y = b.op(K.SOFTMAX, e, name="softmax", axis=-1)
    y = b.op(K.SCALAR_MUL, y, name="scale", value=0.5)
    y = b.op(K.SCALAR_ADD, y, name="shift", value=-0.25)
    w = b.op(K.PARAM, name="bias_table", shape=(1, 2, dim_of(e, axis=2), dim_of(e, axis=3)), stddev=0.5)
    y = b.op(K.MUL, y, w, name="mul")
    y = b.op(K.GELU, y, name="gelu")
    flat = b.op(K.RESHAPE, y, name="reshape", new_shape=(Size(axis=0), -1))
    z = b.op(K.MEAN, y, name="mean", axes=(1,), keepdims=True)
    z = b.op(K.IDENTITY, z, name="identity")
    return b.build([img_out, flat, z])


def _graphs() -> dict[str, Graph]:
    out = {n: zoo.build(n, batch=2, **zoo.ZOO[n].small) for n in ZOO_NAMES}
    out["all_ops"] = all_ops_graph()
    return out


def _perturbed(variables: dict, seed: int) -> dict:
    """host_init variables with noise on every leaf, so zero biases and unit scales matter."""
    rng = np.random.default_rng(seed)

    def walk(tree: Any, path: tuple[str, ...]) -> Any:
        if isinstance(tree, dict):
            return {k: walk(v, (*path, k)) for k, v in tree.items()}
        x = tree + 0.1 * rng.standard_normal(tree.shape)
        return (np.abs(x) + 0.5 if path[-1] == "var" else x).astype(np.float32)

    return walk(variables, ())


def _flat(tree: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(tree, dict) or hasattr(tree, "items"):
        out: dict[tuple[str, ...], Any] = {}
        for k, v in tree.items():
            out.update(_flat(v, (*path, k)))
        return out
    return {path: tree}


def _outs(y: Any) -> list[np.ndarray]:
    return [np.asarray(o) for o in (y if isinstance(y, tuple) else (y,))]


def _npz_list(path: Path) -> list[np.ndarray]:
    data = np.load(path)
    return [data[f"arr_{i}"] for i in range(len(data.files))]


# The fresh interpreter: loads model.py, params.msgpack and the saved inputs; no alphanas.
_RUNNER = textwrap.dedent('''
    import importlib.util, json, sys
    from pathlib import Path
    import jax, numpy as np
    from flax.serialization import msgpack_restore

    def flat(tree, path=()):
        if hasattr(tree, "items"):
            return [kv for k, v in tree.items() for kv in flat(v, (*path, k))]
        return [(list(path), tree)]

    def outs(y):
        return [np.asarray(o) for o in (y if isinstance(y, tuple) else (y,))]

    for i, d in enumerate(map(Path, sys.argv[2:])):
        spec = importlib.util.spec_from_file_location(f"exported{i}", d / "model.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        variables = msgpack_restore((d / "params.msgpack").read_bytes())
        data = np.load(d / "inputs.npz")
        xs = [data[f"arr_{j}"] for j in range(len(data.files))]
        m = mod.Model()
        np.savez(d / "out_eval.npz", *outs(jax.jit(m.apply)(variables, *xs)))
        if (d / "train").exists():
            y, upd = jax.jit(lambda v, *xs: m.apply(
                v, *xs, train=True, mutable=["batch_stats"],
                rngs={"dropout": jax.random.PRNGKey(int(sys.argv[1]))}))(variables, *xs)
            np.savez(d / "out_train.npz", *outs(y))
            stats = flat(upd.get("batch_stats", {}))
            np.savez(d / "stats_train.npz", *[np.asarray(v) for _, v in stats])
            (d / "stats_paths.json").write_text(json.dumps([p for p, _ in stats]))
        shapes = jax.eval_shape(m.init, jax.random.PRNGKey(0), *xs)
        (d / "tree.json").write_text(json.dumps([[p, list(v.shape)] for p, v in flat(shapes)]))
        if (d / "inputs_b3.npz").exists():
            data = np.load(d / "inputs_b3.npz")
            xs = [data[f"arr_{j}"] for j in range(len(data.files))]
            np.savez(d / "out_b3.npz", *outs(jax.jit(m.apply)(variables, *xs)))
    print(json.dumps({"imported_alphanas": any(k.split(".")[0] == "alphanas" for k in sys.modules)}))
''')


def _eval_apply(g: Graph, variables: dict, xs: list[np.ndarray]) -> list[np.ndarray]:
    return _outs(jax.jit(lower(g).apply)(variables, *xs))


def _train_apply(g: Graph, variables: dict, xs: list[np.ndarray]) -> tuple[Any, Any]:
    return jax.jit(lambda v, *xs: lower(g).apply(
        v, *xs, train=True, mutable=["batch_stats"],
        rngs={"dropout": jax.random.PRNGKey(DROPOUT_SEED)}))(variables, *xs)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, dict[str, Any]]:
    """Export every test graph and run all exports in one fresh interpreter, computing the
    in-process `lower(graph)` results meanwhile; per graph: graph, variables, inputs, export
    paths and the reference results."""
    root = tmp_path_factory.mktemp("export")
    cases: dict[str, dict[str, Any]] = {}
    for i, (name, g) in enumerate(_graphs().items()):
        variables = _perturbed(host_init(g, seed=i), seed=100 + i)
        rng = np.random.default_rng(i)
        xs = [rng.standard_normal(s).astype(np.float32) for s in g.input_shapes]
        d = root / name
        paths = export_candidate(g, variables, d)
        np.savez(d / "inputs.npz", *xs)
        cases[name] = {"graph": g, "variables": variables, "xs": xs, "dir": d, "paths": paths}
        if name in OTHER_BATCH:
            xs_b3 = [rng.standard_normal((3, *s[1:])).astype(np.float32) for s in g.input_shapes]
            np.savez(d / "inputs_b3.npz", *xs_b3)
            cases[name]["xs_b3"] = xs_b3
        if name in TRAIN:
            (d / "train").touch()
    script = root / "runner.py"
    script.write_text(_RUNNER)
    dirs = [str(c["dir"]) for c in cases.values()]
    proc = subprocess.Popen([sys.executable, str(script), str(DROPOUT_SEED), *dirs], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for name, c in cases.items():  # the references, while the fresh interpreter runs
            c["want_eval"] = _eval_apply(c["graph"], c["variables"], c["xs"])
            if name in TRAIN:
                c["want_train"] = _train_apply(c["graph"], c["variables"], c["xs"])
            if name in OTHER_BATCH:
                c["want_b3"] = _eval_apply(c["graph"], c["variables"], c["xs_b3"])
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1]) == {"imported_alphanas": False}
    return cases


NAMES = (*ZOO_NAMES, "all_ops")


@pytest.mark.parametrize("name", NAMES)
def test_eval_outputs_match_lowering(exported, name):
    c = exported[name]
    want = c["want_eval"]
    got = _npz_list(c["dir"] / "out_eval.npz")
    assert [w.shape for w in want] == [g.shape for g in got]
    for w, g in zip(want, got, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", TRAIN)
def test_train_outputs_and_batch_stats_match_lowering(exported, name):
    c = exported[name]
    y, upd = c["want_train"]
    for w, g in zip(_outs(y), _npz_list(c["dir"] / "out_train.npz"), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    want = _flat(upd.get("batch_stats", {}))
    paths = [tuple(p) for p in json.loads((c["dir"] / "stats_paths.json").read_text())]
    got = dict(zip(paths, _npz_list(c["dir"] / "stats_train.npz"), strict=True))
    assert set(got) == set(want) and want
    for p, w in want.items():
        np.testing.assert_allclose(got[p], w, rtol=1e-5, atol=1e-5, err_msg=str(p))


def test_train_mode_is_really_exercised(exported):
    """Dropout and stochastic depth are active in train mode, so the comparison above bites."""
    c = exported["all_ops"]
    train = _outs(c["want_train"][0])
    assert not np.allclose(train[0], c["want_eval"][0]) and not np.allclose(train[1], c["want_eval"][1])


@pytest.mark.parametrize("name", NAMES)
def test_parameter_trees_are_identical(exported, name):
    c = exported[name]
    want = {p: list(v.shape) for p, v in _flat(eval_shapes(c["graph"])[0]).items()}
    got = {tuple(p): s for p, s in json.loads((c["dir"] / "tree.json").read_text())}
    assert got == want
    assert got == {p: list(v.shape) for p, v in _flat(c["variables"]).items()}


@pytest.mark.parametrize("name", OTHER_BATCH)
def test_other_batch_size(exported, name):
    c = exported[name]
    for w, g in zip(c["want_b3"], _npz_list(c["dir"] / "out_b3.npz"), strict=True):
        assert g.shape[0] == 3
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def test_every_op_kind_is_exported_and_tested():
    assert emitted_kinds() == frozenset(OpKind)
    assert {o.kind for o in all_ops_graph().ops} == set(OpKind)


@pytest.mark.parametrize("name", NAMES)
def test_generated_source_imports_only_jax_and_flax(exported, name):
    tree = ast.parse(exported[name]["paths"]["model"].read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported <= {"jax", "jax.numpy", "flax.linen", "math", "typing"}


def test_export_files(exported):
    c = exported["all_ops"]
    paths = c["paths"]
    assert set(paths) == {"graph", "model", "params", "readme"}
    assert all(p.parent == c["dir"] and p.is_file() for p in paths.values())
    assert load(paths["graph"]) == c["graph"]
    readme = paths["readme"].read_text()
    assert "Model().apply(variables, *xs)" in readme and "msgpack_restore" in readme
    assert "[(2, 8, 8, 4), (2, 6, 8)]" in readme
    source = paths["model"].read_text()
    assert "def __call__(self, img, seq, train: bool = False)" in source
    assert "return (head_tanh, reshape, identity)" in source
    assert sorted(p.name for p in c["dir"].iterdir() if p.name.startswith(".")) == []  # no temporaries


def _exec_source(source: str, class_name: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(source, "<exported>", "exec"), namespace)
    return namespace[class_name]


def test_awkward_names_and_class_name():
    """Op names that are keywords, reserved or not identifiers still give valid, equal code."""
    b = GraphBuilder('we"""ird\\name')
    x = b.input("x", (2, 5))
    y = b.op(K.DENSE, x, name="class", features=4)
    y = b.op(K.RELU, y, name="1st/relu-a")
    z = b.op(K.DENSE, x, name="x ", features=4)
    y = b.op(K.ADD, y, z, name="jnp")
    y = b.op(K.MUL, y, z, name="train")
    g = b.build([y, x])
    cls = _exec_source(flax_source(g, "Net"), "Net")
    variables = _perturbed(host_init(g, seed=3), seed=4)
    xs = np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)
    for w, got in zip(_outs(lower(g).apply(variables, xs)), _outs(cls().apply(variables, xs)), strict=True):
        np.testing.assert_allclose(got, w, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bad", ["not valid", "class", "jnp", "Any"])
def test_bad_class_name(bad):
    with pytest.raises(ExportError, match=f"class_name must be a Python identifier .*got '{bad}'"):
        flax_source(zoo.build("mlp"), bad)


def test_unwritable_export_dir(tmp_path):
    g = zoo.build("mlp")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match=f"cannot export graph 'mlp' to {blocker / 'out'}"):
        export_candidate(g, host_init(g), blocker / "out")
    assert isinstance(ExportError("x"), AlphanasError)


def test_variables_must_match_the_graph(tmp_path):
    g = zoo.build("mlp")
    good = host_init(g)
    first = next(iter(good["params"]))
    missing = {"params": {k: v for k, v in good["params"].items() if k != first}}
    with pytest.raises(ExportError, match=rf"lack params\['{first}'\]\['bias'\]"):
        export_candidate(g, missing, tmp_path / "a")
    wrong = {"params": {**good["params"], first: {**good["params"][first], "bias": np.zeros(3)}}}
    with pytest.raises(ExportError, match=rf"params\['{first}'\]\['bias'\] has shape \(3,\), the graph expects"):
        export_candidate(g, wrong, tmp_path / "b")
    extra = {**good, "batch_stats": {"bn": {"mean": np.zeros(2)}}}
    with pytest.raises(ExportError, match=r"have batch_stats\['bn'\]\['mean'\], which the graph does not use"):
        export_candidate(g, extra, tmp_path / "c")
    assert not (tmp_path / "a").exists()  # nothing is written for rejected variables
