"""Training: accuracy on digits, determinism, train/eval modes, divergence, weight inheritance,
configuration checks."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alphanas.errors import AlphanasError
from alphanas.ir import Graph, GraphBuilder, OpKind, zoo
from alphanas.ir.init import host_init
from alphanas.nas.data import DataError, Dataset, load_dataset
from alphanas.nas.train import TrainConfig, TrainError, TrainResult, evaluate, predict, train

K = OpKind
NO_AUG = TrainConfig(epochs=2, augment=False)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def tiny_cnn(norm: bool = False) -> Graph:
    """8x8x1 -> conv 3x3 (16) -> [batch norm] -> relu -> [dropout] -> flatten -> dense 10."""
    b = GraphBuilder("tiny_cnn_bn" if norm else "tiny_cnn")
    x = b.input("input", (1, 8, 8, 1))
    x = b.op(K.CONV, x, name="conv", features=16, kernel=3)
    if norm:
        x = b.op(K.BATCH_NORM, x, name="bn")
    x = b.op(K.RELU, x, name="relu")
    if norm:
        x = b.op(K.DROPOUT, x, name="drop", rate=0.3)
    x = b.op(K.FLATTEN, x, name="flatten")
    return b.build(b.op(K.DENSE, x, name="logits", features=10))


@pytest.fixture(scope="module")
def cnn_run(digits) -> TrainResult:
    return train(tiny_cnn(), digits, NO_AUG)


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(v) for v in jax.tree_util.tree_leaves(tree)]


def test_mlp_learns_digits(digits):
    r = train(zoo.build("mlp"), digits.flattened(), TrainConfig(epochs=3))
    assert r.status == "ok" and r.reason == ""
    assert r.val_accuracy > 0.5 and r.test_accuracy > 0.5
    assert r.steps == 3 * (len(digits.y_train) // 64)
    assert [h["epoch"] for h in r.history] == [1, 2, 3]
    assert r.history[-1]["loss"] < r.history[0]["loss"] and r.final_loss == r.history[-1]["loss"]
    assert all(isinstance(v, np.ndarray) for v in jax.tree_util.tree_leaves(r.variables))
    assert r.train_time_s >= r.compile_time_s > 0
    assert evaluate(zoo.build("mlp"), r.variables, digits.flattened().x_val,
                    digits.y_val) == pytest.approx(r.val_accuracy)


def test_tiny_cnn_learns_digits(cnn_run, digits):
    assert cnn_run.status == "ok"
    assert cnn_run.val_accuracy > 0.5 and cnn_run.test_accuracy > 0.5
    logits = predict(tiny_cnn(), cnn_run.variables, digits.x_test[:300], batch_size=128)
    assert logits.shape == (300, 10)
    acc = float(np.mean(logits.argmax(-1) == digits.y_test[:300]))
    assert acc == pytest.approx(evaluate(tiny_cnn(), cnn_run.variables, digits.x_test[:300],
                                         digits.y_test[:300], batch_size=64))


def test_same_seed_same_result(cnn_run, digits):
    again = train(tiny_cnn(), digits, NO_AUG)
    assert again.val_accuracy == cnn_run.val_accuracy
    assert again.history == cnn_run.history
    for a, b in zip(_leaves(again.variables), _leaves(cnn_run.variables), strict=True):
        np.testing.assert_array_equal(a, b)
    other = train(tiny_cnn(), digits, TrainConfig(epochs=2, augment=False, seed=1))
    assert any(not np.array_equal(a, b)
               for a, b in zip(_leaves(other.variables), _leaves(cnn_run.variables), strict=True))


def test_augmented_training_is_deterministic(digits):
    cfg = TrainConfig(epochs=1, augment=True, optimizer="sgd", learning_rate=0.05)
    a, b = train(tiny_cnn(), digits, cfg), train(tiny_cnn(), digits, cfg)
    assert a.status == "ok" and a.history == b.history


def test_batch_norm_and_dropout_train_and_eval(digits):
    g = tiny_cnn(norm=True)
    cfg = TrainConfig(epochs=2, augment=False, optimizer="adamw", weight_decay=1e-4,
                      schedule="constant")
    r = train(g, digits, cfg)
    assert r.status == "ok" and r.val_accuracy > 0.5
    stats = r.variables["batch_stats"]["bn"]
    assert not np.allclose(stats["mean"], 0.0) and not np.allclose(stats["var"], 1.0)
    # eval mode: running statistics and no dropout, so predictions repeat exactly
    p1 = predict(g, r.variables, digits.x_val)
    np.testing.assert_array_equal(p1, predict(g, r.variables, digits.x_val))
    assert evaluate(g, r.variables, digits.x_val, digits.y_val) == pytest.approx(r.val_accuracy)
    # with the initial (unit) statistics the same parameters predict differently
    fresh = {**r.variables, "batch_stats": host_init(g.with_input_shapes([(1, 8, 8, 1)]))
             ["batch_stats"]}
    assert not np.allclose(predict(g, fresh, digits.x_val), p1)


def test_divergence_is_a_failed_result_not_an_exception(digits):
    r = train(zoo.build("mlp"), digits.flattened(),
              TrainConfig(epochs=2, optimizer="sgd", learning_rate=1e6))
    assert r.status == "failed" and not r.ok
    m = re.fullmatch(r"loss became (nan|inf) at step (\d+)", r.reason)
    assert m is not None, r.reason
    assert r.steps == int(m.group(2)) and 1 <= r.steps < 2 * (len(digits.y_train) // 64)
    assert r.val_accuracy is None and r.variables is None and r.final_loss is None


def test_nan_in_the_inherited_variables_fails_at_step_one(digits):
    g = tiny_cnn().with_input_shapes([(1, 8, 8, 1)])
    v = host_init(g, 0)
    v["params"]["logits"]["kernel"][0, 0] = np.nan
    r = train(g, digits, NO_AUG, variables=v)
    assert (r.status, r.reason, r.steps) == ("failed", "loss became nan at step 1", 1)


def test_nan_step_is_exact_beyond_the_first_check_window(digits):
    # train() shuffles epoch e with default_rng([seed, e]); batches of 16 -> 80 steps per epoch
    order = np.random.default_rng([0, 0]).permutation(len(digits.y_train))
    x = digits.x_train.copy()
    x[order[50 * 16 + 5]] = np.nan  # in the 51st batch, past the first host check (32 steps)
    ds = Dataset("poisoned", x, digits.y_train, digits.x_val, digits.y_val, digits.x_test,
                 digits.y_test, 10, hflip=False)
    r = train(tiny_cnn(), ds, TrainConfig(epochs=1, batch_size=16, augment=False))
    assert (r.status, r.reason, r.steps) == ("failed", "loss became nan at step 51", 51)
    assert r.history == []


def test_weight_inheritance_continues_from_the_variables(cnn_run, digits):
    g = tiny_cnn()
    # an (almost) zero learning rate keeps the inherited variables: same accuracy
    frozen = train(g, digits, TrainConfig(epochs=1, augment=False, optimizer="sgd",
                                          learning_rate=1e-12, schedule="constant"),
                   variables=cnn_run.variables)
    assert frozen.val_accuracy == cnn_run.val_accuracy
    for a, b in zip(_leaves(frozen.variables), _leaves(cnn_run.variables), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-9)
    # and continued training starts at the parent's loss, not at a fresh init's
    more = train(g, digits, TrainConfig(epochs=1, augment=False), variables=cnn_run.variables)
    assert more.history[0]["loss"] < cnn_run.history[0]["loss"]


def test_inherited_jax_arrays_are_not_consumed(cnn_run, digits):
    v = jax.tree_util.tree_map(jnp.asarray, cnn_run.variables)
    train(tiny_cnn(), digits, TrainConfig(epochs=1, augment=False), variables=v)
    assert all(not leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(v))
    np.testing.assert_array_equal(np.asarray(v["params"]["conv"]["kernel"]),
                                  cnn_run.variables["params"]["conv"]["kernel"])


def test_mismatched_variables_are_rejected(cnn_run, digits):
    v = jax.tree_util.tree_map(np.array, cnn_run.variables)
    v["params"]["logits"]["kernel"] = np.zeros((5, 10), np.float32)
    with pytest.raises(TrainError, match=r"graph 'tiny_cnn': \['params'\]\['logits'\]\['kernel'\] "
                                         r"has shape \(5, 10\), expected \(1024, 10\)"):
        train(tiny_cnn(), digits, NO_AUG, variables=v)
    del v["params"]["logits"]
    with pytest.raises(TrainError, match=r"lack \['params'\]\['logits'\]\['bias'\] \(shape \(10,\)\)"):
        train(tiny_cnn(), digits, NO_AUG, variables=v)


def test_graph_that_does_not_fit_the_dataset(digits):
    with pytest.raises(DataError, match="graph 'mlp' maps input"):
        train(zoo.build("mlp"), digits, NO_AUG)


def test_graph_that_fails_at_the_training_batch_size(digits):
    b = GraphBuilder("batch_one")
    x = b.input("input", (1, 8, 8, 1))
    x = b.op(K.RESHAPE, x, name="vec", new_shape=(1, 64))  # hard-codes a batch of one
    g = b.build(b.op(K.DENSE, x, name="logits", features=10))
    with pytest.raises(TrainError, match=r"graph 'batch_one' on batch \(64, 8, 8, 1\) failed to "
                                         r"compile"):
        train(g, digits, NO_AUG)


def test_empty_split_is_rejected(digits):
    ds = Dataset("no_val", digits.x_train, digits.y_train, digits.x_val[:0], digits.y_val[:0],
                 digits.x_test, digits.y_test, 10)
    with pytest.raises(TrainError, match="dataset 'no_val' has an empty val split"):
        train(tiny_cnn(), ds, NO_AUG)


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "TrainConfig.epochs must be an int >= 1, got 0"),
    ({"batch_size": 2.5}, "TrainConfig.batch_size must be an int >= 1, got 2.5"),
    ({"eval_batch_size": True}, "TrainConfig.eval_batch_size must be an int >= 1, got True"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of adam, adamw, sgd; got 'rmsprop'"),
    ({"schedule": "step"}, "schedule must be one of constant, cosine; got 'step'"),
    ({"learning_rate": 0}, "learning_rate must be a finite number > 0, got 0"),
    ({"learning_rate": float("nan")}, "learning_rate must be a finite number > 0, got nan"),
    ({"weight_decay": -1e-4}, "weight_decay must be a finite number >= 0, got -0.0001"),
    ({"augment": "yes"}, "augment must be a bool, got 'yes'"),
    ({"seed": -3}, "seed must be an int >= 0, got -3"),
])
def test_bad_config_is_rejected(kwargs, message):
    with pytest.raises(TrainError, match=re.escape(message)) as e:
        TrainConfig(**kwargs)
    assert isinstance(e.value, AlphanasError)


def test_good_configs_are_accepted():
    for opt in ("adam", "adamw", "sgd"):
        for schedule in ("constant", "cosine"):
            c = TrainConfig(optimizer=opt, schedule=schedule, weight_decay=0.01, learning_rate=1)
            assert c.optimizer == opt and c.schedule == schedule


def test_summary_is_plain_data(cnn_run):
    s = cnn_run.summary()
    assert "variables" not in s and s["status"] == "ok" and s["steps"] == cnn_run.steps
    assert cnn_run.steps_per_s > 0
