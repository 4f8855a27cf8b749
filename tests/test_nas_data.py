"""Datasets: digits splits, the CIFAR-10 pickle and Fashion-MNIST IDX formats (fixture round
trips and bad files), synthetic data, batching, augmentation and adapting graphs to a dataset."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alphanas.errors import AlphanasError
from alphanas.ir import GraphBuilder, OpKind, zoo
from alphanas.nas import data as nas_data
from alphanas.nas.data import (
    FASHION_MNIST_DIR,
    DataError,
    Dataset,
    adapt_graph,
    augment,
    batches,
    load_dataset,
    write_cifar10_fixture,
    write_fashion_mnist_fixture,
)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def _assert_same(a: Dataset, b: Dataset) -> None:
    for f in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


# -- digits -----------------------------------------------------------------------------------


def test_digits_shapes_and_ranges(digits):
    assert digits.input_shape == (8, 8, 1)
    assert digits.num_classes == 10 and not digits.hflip
    n_tr, n_va, n_te = len(digits.y_train), len(digits.y_val), len(digits.y_test)
    assert n_tr + n_va + n_te == 1797
    assert digits.x_train.shape == (n_tr, 8, 8, 1) and digits.x_test.shape == (n_te, 8, 8, 1)
    for x in (digits.x_train, digits.x_val, digits.x_test):
        assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
    for y in (digits.y_train, digits.y_val, digits.y_test):
        assert y.dtype == np.int32 and set(np.unique(y)) == set(range(10))
    assert 0.19 < n_te / 1797 < 0.21
    assert 0.09 < n_va / (n_tr + n_va) < 0.11


def test_digits_split_is_stratified(digits):
    counts = np.bincount(digits.y_test, minlength=10)
    assert counts.max() - counts.min() <= 3


def test_digits_is_deterministic_per_seed(digits):
    _assert_same(digits, load_dataset("digits", seed=0))
    other = load_dataset("digits", seed=1)
    assert not np.array_equal(other.y_train, digits.y_train)
    assert len(other.y_train) == len(digits.y_train)


def test_digits_splits_do_not_overlap(digits):
    def keys(x: np.ndarray) -> set[bytes]:
        return {row.tobytes() for row in x.reshape(len(x), -1)}

    full = load_dataset("digits", limit=None)
    # digits has a handful of duplicate images; overlap must stay at that level, not ~20%.
    assert len(keys(full.x_test) & keys(full.x_train)) < 5


def test_limit_caps_train_only(digits):
    small = load_dataset("digits", limit=50)
    assert len(small.y_train) == 50
    np.testing.assert_array_equal(small.x_train, digits.x_train[:50])
    assert len(small.y_test) == len(digits.y_test)


def test_flattened(digits):
    flat = digits.flattened()
    assert flat.input_shape == (64,) and not flat.is_image
    np.testing.assert_array_equal(flat.x_val[3], digits.x_val[3].ravel())


# -- CIFAR-10 ---------------------------------------------------------------------------------


def test_cifar10_fixture_round_trip(tmp_path):
    root = write_cifar10_fixture(tmp_path / "c", n_train_per_batch=10, n_test=7, seed=3)
    with (root / "test_batch").open("rb") as f:
        raw = pickle.load(f, encoding="bytes")
    ds = load_dataset("cifar10", path=root, val_fraction=0.2)
    assert ds.input_shape == (32, 32, 3) and ds.num_classes == 10 and ds.hflip
    assert len(ds.y_train) + len(ds.y_val) == 50 and len(ds.y_test) == 7
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    np.testing.assert_array_equal(ds.y_test, raw[b"labels"])
    data = raw[b"data"]
    # channel-major rows: 1024 red, 1024 green, 1024 blue; pixel (row 1, col 2) is index 34.
    np.testing.assert_allclose(ds.x_test[0, 1, 2], data[0, [34, 1024 + 34, 2048 + 34]] / 255.0)
    np.testing.assert_allclose(ds.x_test.reshape(7, -1).sum(), data.sum() / 255.0, rtol=1e-5)
    _assert_same(ds, load_dataset("cifar10", path=root, val_fraction=0.2))


def test_cifar10_accepts_the_parent_of_cifar_10_batches_py(tmp_path):
    write_cifar10_fixture(tmp_path / "cifar-10-batches-py")
    a = load_dataset("cifar10", path=tmp_path)
    b = load_dataset("cifar10", path=tmp_path / "cifar-10-batches-py")
    _assert_same(a, b)
    assert len(a.y_train) + len(a.y_val) == 100


def test_cifar10_limit(tmp_path):
    root = write_cifar10_fixture(tmp_path)
    assert len(load_dataset("cifar10", path=root, limit=13).y_train) == 13


def test_cifar10_missing_directory(tmp_path):
    with pytest.raises(DataError, match=r"directory '.*nowhere' does not exist.*data_batch_1"):
        load_dataset("cifar10", path=tmp_path / "nowhere")


def test_cifar10_needs_a_path():
    with pytest.raises(DataError, match="needs path="):
        load_dataset("cifar10")


def test_cifar10_missing_batch(tmp_path):
    root = write_cifar10_fixture(tmp_path)
    (root / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"'.*data_batch_3' is missing"):
        load_dataset("cifar10", path=root)


def test_cifar10_corrupted_pickle(tmp_path):
    root = write_cifar10_fixture(tmp_path)
    (root / "test_batch").write_bytes(b"\x80\x02}q\x00garbage")
    with pytest.raises(DataError, match=r"'.*test_batch' is not a valid pickle"):
        load_dataset("cifar10", path=root)


def test_cifar10_truncated_pickle(tmp_path):
    root = write_cifar10_fixture(tmp_path)
    f = root / "data_batch_2"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(DataError, match=r"'.*data_batch_2' is not a valid pickle"):
        load_dataset("cifar10", path=root)


def _dump(path, obj) -> None:
    with path.open("wb") as f:
        pickle.dump(obj, f, protocol=2)


def test_cifar10_wrong_data_size(tmp_path):
    root = write_cifar10_fixture(tmp_path)
    _dump(root / "data_batch_1", {b"data": np.zeros((4, 1000), np.uint8), b"labels": [0] * 4})
    with pytest.raises(DataError, match=r"data_batch_1': b'data' should be uint8 of shape "
                                        r"\(N, 3072\), got uint8 \(4, 1000\)"):
        load_dataset("cifar10", path=root)


def test_cifar10_wrong_keys_and_labels(tmp_path):
    root = write_cifar10_fixture(tmp_path)
    _dump(root / "data_batch_4", {b"images": np.zeros((2, 3072), np.uint8)})
    with pytest.raises(DataError, match=r"data_batch_4': expected a dict with keys b'data'"):
        load_dataset("cifar10", path=root)
    _dump(root / "data_batch_4", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]})
    with pytest.raises(DataError, match=r"data_batch_4': b'labels' should be 2 ints"):
        load_dataset("cifar10", path=root)
    _dump(root / "data_batch_4", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]})
    with pytest.raises(DataError, match=r"labels should be in 0..9, got 0..12"):
        load_dataset("cifar10", path=root)


class _Evil:
    def __reduce__(self):
        import os

        return (os.getcwd, ())


def test_cifar10_pickle_may_not_reference_other_globals(tmp_path):
    root = write_cifar10_fixture(tmp_path)
    _dump(root / "test_batch", {b"data": _Evil(), b"labels": []})
    with pytest.raises(DataError, match=r"test_batch' is not a valid pickle: refuses to load "
                                        r"global '(posix|nt|os)\.getcwd'"):
        load_dataset("cifar10", path=root)


# -- synthetic and errors ---------------------------------------------------------------------


def test_synthetic_is_deterministic_and_cifar_shaped():
    a = load_dataset("synthetic", limit=200, seed=5)
    assert a.input_shape == (32, 32, 3) and a.num_classes == 10
    assert len(a.y_train) == 200 and len(a.y_val) > 0 and len(a.y_test) > 0
    assert a.x_train.dtype == np.float32 and 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0
    _assert_same(a, load_dataset("synthetic", limit=200, seed=5))
    assert not np.array_equal(a.x_train, load_dataset("synthetic", limit=200, seed=6).x_train)


def test_synthetic_classes_differ_in_colour():
    s = load_dataset("synthetic", limit=500)
    means = np.stack([s.x_train[s.y_train == c].mean(axis=(0, 1, 2)) for c in range(5)])
    # five distinct mean colours (classes c and c + 5 share one and differ in stripe frequency)
    dists = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert dists[~np.eye(5, dtype=bool)].min() > 0.1


def test_default_synthetic_size():
    assert len(load_dataset("synthetic").y_train) == 5000


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "mnist"}, "unknown dataset 'mnist'; expected one of: digits, cifar10, synthetic"),
    ({"name": "digits", "val_fraction": 0.0}, r"val_fraction must be in \(0, 1\), got 0.0"),
    ({"name": "digits", "val_fraction": 1}, r"val_fraction must be in \(0, 1\), got 1"),
    ({"name": "digits", "limit": 0}, "limit must be a positive int or None, got 0"),
    ({"name": "digits", "seed": -1}, "seed must be a non-negative int, got -1"),
])
def test_load_dataset_rejects(kwargs, message):
    name = kwargs.pop("name")
    with pytest.raises(DataError, match=message) as e:
        load_dataset(name, **kwargs)
    assert isinstance(e.value, AlphanasError) and isinstance(e.value, ValueError)


# -- batches and augmentation -----------------------------------------------------------------


def test_batches_cover_every_example_once():
    x = np.arange(10, dtype=np.float32)[:, None]
    y = np.arange(10, dtype=np.int32)
    got = list(batches(x, y, 4, seed=1))
    assert [len(b[1]) for b in got] == [4, 4, 2]
    assert sorted(np.concatenate([b[1] for b in got]).tolist()) == list(range(10))
    for xb, yb in got:
        np.testing.assert_array_equal(xb[:, 0], yb)
    assert [len(b[1]) for b in batches(x, y, 4, seed=1, drop_last=True)] == [4, 4]
    again = np.concatenate([b[1] for b in batches(x, y, 4, seed=1)])
    np.testing.assert_array_equal(again, np.concatenate([b[1] for b in got]))
    ordered = np.concatenate([b[1] for b in batches(x, y, 3, seed=1, shuffle=False)])
    np.testing.assert_array_equal(ordered, y)


def test_batches_reject_bad_arguments():
    with pytest.raises(DataError, match="batch_size must be >= 1, got 0"):
        next(batches(np.zeros((2, 1)), np.zeros(2), 0, seed=0))
    with pytest.raises(DataError, match="x has 2 examples but y has 3"):
        next(batches(np.zeros((2, 1)), np.zeros(3), 1, seed=0))


def _shifts(img: np.ndarray, pad: int) -> list[np.ndarray]:
    """Every crop of `img` zero-padded by `pad`, and its mirror image."""
    h, w, _ = img.shape
    p = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))
    crops = [p[i:i + h, j:j + w] for i in range(2 * pad + 1) for j in range(2 * pad + 1)]
    return crops + [c[:, ::-1] for c in crops]


@pytest.mark.parametrize("size, pad", [(8, 1), (32, 2)])
def test_augment_is_a_padded_crop_and_flip_under_jit(size, pad):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1.0, (6, size, size, 3)).astype(np.float32)
    f = jax.jit(lambda x, k: augment(x, k, mode="constant"))
    out = np.asarray(f(jnp.asarray(x), jax.random.PRNGKey(0)))
    assert out.shape == x.shape and out.dtype == np.float32
    for img, aug in zip(x, out, strict=True):
        assert any(np.array_equal(aug, c) for c in _shifts(img, pad))
    again = np.asarray(f(jnp.asarray(x), jax.random.PRNGKey(0)))
    np.testing.assert_array_equal(out, again)
    many = np.asarray(f(jnp.asarray(np.repeat(x[:1], 64, 0)), jax.random.PRNGKey(1)))
    assert len({m.tobytes() for m in many}) > 5  # crops and flips actually vary


def test_augment_reflect_keeps_values_and_flip_off_never_mirrors():
    x = jnp.asarray(np.random.default_rng(1).uniform(size=(16, 8, 8, 1)), jnp.float32)
    out = np.asarray(augment(x, jax.random.PRNGKey(3), flip=False))
    assert out.shape == x.shape
    assert out.min() > 0  # reflect padding brings in no zeros
    for img, aug in zip(np.asarray(x), out, strict=True):
        p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="reflect")
        assert any(np.array_equal(aug, p[i:i + 8, j:j + 8]) for i in range(3) for j in range(3))


# -- adapt_graph ------------------------------------------------------------------------------


def test_adapt_graph_sets_the_input_shape(digits):
    g = adapt_graph(zoo.build("mlp"), digits.flattened())
    assert g.input_shapes == ((1, 64),)
    s = load_dataset("synthetic", limit=10)
    g = adapt_graph(zoo.build("cifar_cnn", batch=4, image_size=8), s)
    assert g.input_shapes == ((1, 32, 32, 3),)


def test_adapt_graph_rejects_a_wrong_output(digits):
    with pytest.raises(DataError, match=r"graph 'mlp' maps input \(1, 8, 8, 1\) of dataset "
                                        r"'digits' to output \(1, 8, 8, 10\); expected \(1, 10\)"
                                        r".*use dataset.flattened\(\)"):
        adapt_graph(zoo.build("mlp"), digits)
    with pytest.raises(DataError, match=r"output \(1, 5\); expected \(1, 10\)"):
        adapt_graph(zoo.build("mlp", num_classes=5), digits.flattened())


def test_adapt_graph_rejects_an_input_the_graph_cannot_take(digits):
    b = GraphBuilder("fixed")
    x = b.input("input", (1, 32, 32, 3))
    x = b.op(OpKind.RESHAPE, x, name="to_vector", new_shape=(1, 3072))
    g = b.build(b.op(OpKind.DENSE, x, name="logits", features=10))
    with pytest.raises(DataError, match=r"graph 'fixed' cannot take input \(1, 8, 8, 1\) of "
                                        r"dataset 'digits': reshape 'to_vector'"):
        adapt_graph(g, digits)


def test_adapt_graph_needs_one_input_and_output(digits):
    b = GraphBuilder("two_out")
    x = b.input("input", (1, 64))
    g = b.build([b.op(OpKind.DENSE, x, name="a", features=10), b.op(OpKind.RELU, x, name="b")])
    with pytest.raises(DataError, match="graph 'two_out' has 1 inputs and 2 outputs"):
        adapt_graph(g, digits.flattened())


# -- Fashion-MNIST ----------------------------------------------------------------------------

TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


def _idx(path: Path, magic: int, dims: tuple[int, ...], payload: bytes) -> None:
    path.write_bytes(magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
                     + payload)


def _fashion(tmp_path: Path, **kw) -> Path:
    return write_fashion_mnist_fixture(tmp_path / "f", **{"n_train": 200, "n_test": 30, **kw})


def test_fashion_mnist_fixture_round_trip(tmp_path):
    root = _fashion(tmp_path, seed=3)
    raw_labels = (root / TEST_LABELS).read_bytes()
    raw_images = (root / TEST_IMAGES).read_bytes()
    assert raw_labels[:8] == bytes.fromhex("00000801 0000001e")
    assert raw_images[:16] == bytes.fromhex("00000803 0000001e 0000001c 0000001c")
    assert len(raw_images) == 16 + 30 * 28 * 28
    ds = load_dataset("fashion_mnist", path=root)
    assert ds.name == "fashion_mnist" and ds.input_shape == (28, 28, 1)
    assert ds.num_classes == 10 and ds.hflip and ds.is_image
    # fewer than 10,000 train images: about half of them (rounded per class) are held out
    assert len(ds.y_train) + len(ds.y_val) == 200 and abs(len(ds.y_val) - 100) <= 5
    assert len(ds.y_test) == 30
    for x in (ds.x_train, ds.x_val, ds.x_test):
        assert x.dtype == np.float32 and x.ndim == 4 and x.min() >= 0.0 and x.max() <= 1.0
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert y.dtype == np.int32 and y.min() >= 0 and y.max() <= 9
    np.testing.assert_array_equal(ds.y_test, np.frombuffer(raw_labels, np.uint8, offset=8))
    pixels = np.frombuffer(raw_images, np.uint8, offset=16).reshape(30, 28, 28)
    np.testing.assert_allclose(ds.x_test[..., 0], pixels / 255.0, rtol=1e-6)
    # train and validation partition the 200 train images
    train = np.concatenate([ds.x_train, ds.x_val]).reshape(200, -1)
    assert len(np.unique(train, axis=0)) == 200
    _assert_same(ds, load_dataset("fashion_mnist", path=root))
    other = load_dataset("fashion_mnist", path=root, seed=1)
    assert not np.array_equal(ds.y_train, other.y_train)
    np.testing.assert_array_equal(ds.y_test, other.y_test)


def test_fashion_mnist_gzipped_fixture_reads_the_same(tmp_path):
    plain = write_fashion_mnist_fixture(tmp_path / "plain", n_train=50, n_test=10, seed=4)
    zipped = write_fashion_mnist_fixture(tmp_path / "gz", n_train=50, n_test=10, seed=4, gzip=True)
    assert sorted(p.name for p in zipped.iterdir()) == sorted(
        f"{f}.gz" for f in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS))
    assert (zipped / f"{TEST_IMAGES}.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress((zipped / f"{TEST_IMAGES}.gz").read_bytes()) == \
        (plain / TEST_IMAGES).read_bytes()
    _assert_same(load_dataset("fashion_mnist", path=plain),
                 load_dataset("fashion_mnist", path=zipped))


def test_fashion_mnist_validation_holds_at_least_5000(tmp_path):
    root = _fashion(tmp_path, n_train=12_000, n_test=10)
    ds = load_dataset("fashion_mnist", path=root)  # 10% would be 1,200
    assert len(ds.y_val) >= 5000 and len(ds.y_train) + len(ds.y_val) == 12_000
    assert len(ds.y_val) <= 5010
    counts = np.bincount(ds.y_val, minlength=10) / np.bincount(
        np.concatenate([ds.y_train, ds.y_val]), minlength=10)
    assert counts.max() - counts.min() < 0.01  # stratified
    more = load_dataset("fashion_mnist", path=root, val_fraction=0.6)
    assert abs(len(more.y_val) - 7200) <= 5


@pytest.mark.parametrize("n, val_fraction, expected", [
    (60_000, 0.1, 0.1), (60_000, 0.05, 5005 / 60_000), (60_000, 0.5, 0.5),
    (20_000, 0.1, 5005 / 20_000), (10_010, 0.1, 0.5), (8_000, 0.1, 0.5), (100, 0.1, 0.5),
    (100, 0.7, 0.7),
])
def test_fashion_mnist_validation_fraction(n, val_fraction, expected):
    frac = nas_data._fashion_val_fraction(n, val_fraction)
    assert frac == pytest.approx(expected)
    # _stratified_split rounds each of the 10 classes, losing at most 0.5 images in each
    assert frac * n - 5 >= min(5000, n // 2 - 5) - 1e-6


def test_fashion_mnist_limit_caps_train_only(tmp_path):
    root = _fashion(tmp_path)
    full = load_dataset("fashion_mnist", path=root)
    ds = load_dataset("fashion_mnist", path=root, limit=13)
    assert len(ds.y_train) == 13
    np.testing.assert_array_equal(ds.x_train, full.x_train[:13])
    np.testing.assert_array_equal(ds.y_val, full.y_val)
    np.testing.assert_array_equal(ds.y_test, full.y_test)


def test_fashion_mnist_missing_directory_names_the_debian_package(tmp_path, monkeypatch):
    where = tmp_path / "nowhere"
    with pytest.raises(DataError, match=r"directory '.*nowhere' does not exist; install the "
                                        r"Debian package dataset-fashion-mnist \(apt-get install "
                                        r"dataset-fashion-mnist\) or pass .*--data-path"):
        load_dataset("fashion_mnist", path=where)
    monkeypatch.setattr(nas_data, "FASHION_MNIST_DIR", str(tmp_path / "default"))
    with pytest.raises(DataError, match=r"directory '.*default' does not exist.*dataset-fashion"):
        load_dataset("fashion_mnist")


def test_fashion_mnist_missing_file(tmp_path):
    root = _fashion(tmp_path)
    (root / TEST_LABELS).unlink()
    with pytest.raises(DataError, match=r"file '.*t10k-labels-idx1-ubyte' \(or "
                                        r"'t10k-labels-idx1-ubyte.gz'\) is missing; install"):
        load_dataset("fashion_mnist", path=root)


def test_fashion_mnist_truncated_payload(tmp_path):
    root = _fashion(tmp_path)
    f = root / TRAIN_IMAGES
    f.write_bytes(f.read_bytes()[:-100])
    n = 200 * 28 * 28
    with pytest.raises(DataError, match=rf"'.*{TRAIN_IMAGES}' is truncated: its header says "
                                        rf"200x28x28 uint8, so expected 16 \+ {n} = {16 + n} "
                                        rf"bytes, the file has {16 + n - 100}"):
        load_dataset("fashion_mnist", path=root)


def test_fashion_mnist_truncated_header_and_too_long_file(tmp_path):
    root = _fashion(tmp_path)
    (root / TRAIN_LABELS).write_bytes(bytes.fromhex("00000801 0000"))
    with pytest.raises(DataError, match=rf"'.*{TRAIN_LABELS}' is truncated: expected an IDX "
                                        r"header with 1 dims of 4 bytes, got 2"):
        load_dataset("fashion_mnist", path=root)
    root = _fashion(tmp_path / "b")
    f = root / TEST_LABELS
    f.write_bytes(f.read_bytes() + b"\x00")
    with pytest.raises(DataError, match=rf"'.*{TEST_LABELS}' is too long: .* expected 8 \+ 30 "
                                        r"= 38 bytes, the file has 39"):
        load_dataset("fashion_mnist", path=root)


def test_fashion_mnist_wrong_magic(tmp_path):
    root = _fashion(tmp_path)
    _idx(root / TRAIN_LABELS, 0x00000803, (200, 28, 28), bytes(200 * 784))
    with pytest.raises(DataError, match=rf"'.*{TRAIN_LABELS}': expected IDX magic 0x00000801 "
                                        r"\(labels: uint8, 1 dim\), got 0x00000803"):
        load_dataset("fashion_mnist", path=root)


def test_fashion_mnist_wrong_dims_and_huge_count_are_refused_before_the_payload(tmp_path):
    root = _fashion(tmp_path)
    _idx(root / TRAIN_IMAGES, 0x00000803, (2, 32, 32), bytes(2 * 32 * 32))
    with pytest.raises(DataError, match=rf"'.*{TRAIN_IMAGES}': expected 28x28 images, the "
                                        r"header says 32x32"):
        load_dataset("fashion_mnist", path=root)
    _idx(root / TRAIN_IMAGES, 0x00000803, (2**31, 28, 28), b"")  # would be 1.7 TB
    with pytest.raises(DataError, match=r"expected at most 1000000 items, the header says "
                                        r"2147483648"):
        load_dataset("fashion_mnist", path=root)


def test_fashion_mnist_label_image_count_mismatch(tmp_path):
    root = _fashion(tmp_path)
    _idx(root / TRAIN_LABELS, 0x00000801, (199,), bytes(199))
    with pytest.raises(DataError, match=rf"train split: '.*{TRAIN_LABELS}' holds 199 labels but "
                                        rf"'.*{TRAIN_IMAGES}' holds 200 images"):
        load_dataset("fashion_mnist", path=root)


def test_fashion_mnist_label_out_of_range(tmp_path):
    root = _fashion(tmp_path)
    _idx(root / TEST_LABELS, 0x00000801, (30,), bytes([3] * 29 + [12]))
    with pytest.raises(DataError, match=rf"'.*{TEST_LABELS}': labels should be in 0..9, got "
                                        r"3..12"):
        load_dataset("fashion_mnist", path=root)


def test_fashion_mnist_corrupt_and_truncated_gzip(tmp_path):
    root = _fashion(tmp_path, gzip=True)
    f = root / f"{TEST_IMAGES}.gz"
    good = f.read_bytes()
    f.write_bytes(good[:-8] + bytes(b ^ 0xFF for b in good[-8:-4]) + good[-4:])  # bad CRC32
    with pytest.raises(DataError, match=rf"'.*{TEST_IMAGES}.gz' is not a valid gzip file: "
                                        r".*CRC"):
        load_dataset("fashion_mnist", path=root)
    f.write_bytes(good[:len(good) // 2])
    with pytest.raises(DataError, match=rf"'.*{TEST_IMAGES}.gz' is a truncated gzip file"):
        load_dataset("fashion_mnist", path=root)
    f.write_bytes(gzip.compress(good and gzip.decompress(good)[:-50], mtime=0))
    with pytest.raises(DataError, match=rf"'.*{TEST_IMAGES}.gz' is truncated: its header says "
                                        r"30x28x28 uint8, so expected 23520 bytes after the "
                                        r"16-byte header, got 23470"):
        load_dataset("fashion_mnist", path=root)


def test_fashion_mnist_plain_file_wins_over_gzip(tmp_path):
    root = _fashion(tmp_path)
    (root / f"{TEST_LABELS}.gz").write_bytes(b"not gzip at all")
    assert len(load_dataset("fashion_mnist", path=root).y_test) == 30


@pytest.mark.skipif(not Path(FASHION_MNIST_DIR).exists(),
                    reason="the Debian package dataset-fashion-mnist is not installed")
def test_real_fashion_mnist():
    root = Path(FASHION_MNIST_DIR)
    for base, dims in ((TRAIN_IMAGES, (60_000, 28, 28)), (TRAIN_LABELS, (60_000,)),
                       (TEST_IMAGES, (10_000, 28, 28)), (TEST_LABELS, (10_000,))):
        f = nas_data._fashion_file(root, base)
        magic = 0x800 + len(dims) if len(dims) == 1 else 0x803
        with nas_data._open_idx(f) as stream:
            assert nas_data._idx_header(stream, f, magic) == dims
    ds = load_dataset("fashion_mnist", limit=100)
    assert len(ds.y_train) == 100 and len(ds.y_val) == 6000 and len(ds.y_test) == 10_000
    assert ds.input_shape == (28, 28, 1) and ds.x_val.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(ds.y_test), [1000] * 10)
    np.testing.assert_array_equal(np.bincount(ds.y_val), [600] * 10)
