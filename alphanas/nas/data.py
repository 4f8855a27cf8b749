"""Datasets for NAS training: sklearn's digits, CIFAR-10 and Fashion-MNIST from a local
directory, synthetic data.

Nothing is downloaded (DESIGN §7). Images are float32 NHWC in [0, 1], labels int32; every split
is drawn from an explicit seed, so the same arguments give identical arrays. `augment` is a pure
jax function (random crop + horizontal flip) meant to run inside a jitted train step.
"""

from __future__ import annotations

import gzip
import pickle
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from math import prod
from pathlib import Path
from typing import Any

import numpy as np

from alphanas.errors import AlphanasError
from alphanas.ir.graph import Graph

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "adapt_graph",
    "augment",
    "batches",
    "load_dataset",
    "write_cifar10_fixture",
    "write_fashion_mnist_fixture",
]

DATASETS = ("digits", "cifar10", "synthetic", "fashion_mnist")
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch"
CIFAR_SUBDIR = "cifar-10-batches-py"
_CIFAR_PIXELS = 32 * 32 * 3
_SYNTHETIC_TRAIN = 5_000


class DataError(AlphanasError, ValueError):
    """A dataset cannot be loaded or does not fit a graph; names the file or graph."""


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Train/validation/test splits: x float32 (N, *input_shape), y int32 (N,) in [0, num_classes).

    `hflip` says whether a horizontal flip keeps the label (false for digits).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    hflip: bool = True

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. (32, 32, 3)."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        """True for (H, W, C) examples, which `augment` applies to."""
        return len(self.input_shape) == 3

    def flattened(self) -> Dataset:
        """The same data with each example flattened to (prod(input_shape),), for MLPs."""

        def flat(x: np.ndarray) -> np.ndarray:
            return x.reshape(len(x), -1)

        return replace(self, name=f"{self.name}-flat", x_train=flat(self.x_train),
                       x_val=flat(self.x_val), x_test=flat(self.x_test))

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, input_shape={self.input_shape}, "
                f"classes={self.num_classes}, train={len(self.y_train)}, val={len(self.y_val)}, "
                f"test={len(self.y_test)})")


# -- loading ----------------------------------------------------------------------------------


def load_dataset(name: str, *, path: str | Path | None = None, seed: int = 0,
                 val_fraction: float = 0.1, limit: int | None = None) -> Dataset:
    """The dataset `name` (one of `DATASETS`); `limit` caps the number of train examples.

    cifar10 reads `path` (the `cifar-10-batches-py` directory or its parent); fashion_mnist
    reads the four IDX files (plain or gzipped) in `path`, by default `FASHION_MNIST_DIR`
    (where the Debian package dataset-fashion-mnist installs them); its validation split has at
    least `FASHION_MNIST_MIN_VAL` images when the data allows.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; expected one of: {', '.join(DATASETS)}")
    if not (isinstance(val_fraction, (int, float)) and 0 < val_fraction < 1):
        raise DataError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise DataError(f"limit must be a positive int or None, got {limit!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise DataError(f"seed must be a non-negative int, got {seed!r}")
    if name == "digits":
        ds = _digits(seed, val_fraction)
    elif name == "cifar10":
        if path is None:
            raise DataError("dataset 'cifar10' needs path= (a directory holding data_batch_1..5 "
                            "and test_batch in the CIFAR-10 python format)")
        ds = _cifar10(Path(path), seed, val_fraction)
    elif name == "fashion_mnist":
        ds = _fashion_mnist(Path(FASHION_MNIST_DIR if path is None else path), seed, val_fraction,
                            limit)
    else:
        ds = _synthetic(seed, val_fraction, limit or _SYNTHETIC_TRAIN)
    if limit is not None and limit < len(ds.y_train):
        ds = replace(ds, x_train=ds.x_train[:limit], y_train=ds.y_train[:limit])
    return ds


def _stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (rest, held_out): about `fraction` of each class held out; both shuffled."""
    held: list[np.ndarray] = []
    rest: list[np.ndarray] = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(fraction * len(idx)))
        held.append(idx[:k])
        rest.append(idx[k:])
    return rng.permutation(np.concatenate(rest)), rng.permutation(np.concatenate(held))


def _digits(seed: int, val_fraction: float) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[..., None]
    y = d.target.astype(np.int32)
    rng = np.random.default_rng(seed)
    rest, test = _stratified_split(y, 0.2, rng)
    tr, va = _stratified_split(y[rest], val_fraction, rng)
    train, val = rest[tr], rest[va]
    return Dataset("digits", x[train], y[train], x[val], y[val], x[test], y[test], 10,
                   hflip=False)


# -- CIFAR-10 ---------------------------------------------------------------------------------

# What a CIFAR-10 batch pickle may reference: numpy array reconstruction, nothing else.
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refuses to load global '{module}.{name}'")


def _cifar_dir(path: Path) -> Path:
    if not path.is_dir():
        raise DataError(f"CIFAR-10 directory '{path}' does not exist; expected a directory with "
                        f"{', '.join(CIFAR_TRAIN_FILES)} and {CIFAR_TEST_FILE} (the python version)")
    nested = path / CIFAR_SUBDIR
    if not (path / CIFAR_TEST_FILE).exists() and nested.is_dir():
        return nested
    return path


def _read_batch(file: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 32, 32, 3) float32 in [0, 1], labels (N,) int32) of one batch file."""
    if not file.is_file():
        raise DataError(f"CIFAR-10 batch file '{file}' is missing")
    try:
        with file.open("rb") as f:
            d = _BatchUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError, OverflowError, MemoryError) as e:
        raise DataError(f"CIFAR-10 batch file '{file}' is not a valid pickle: {e}") from None
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        keys = sorted(map(repr, d)) if isinstance(d, dict) else type(d).__name__
        raise DataError(f"CIFAR-10 batch file '{file}': expected a dict with keys b'data' and "
                        f"b'labels', got {keys}")
    data, labels = np.asarray(d[b"data"]), np.asarray(d[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _CIFAR_PIXELS:
        raise DataError(f"CIFAR-10 batch file '{file}': b'data' should be uint8 of shape "
                        f"(N, {_CIFAR_PIXELS}), got {data.dtype} {data.shape}")
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"CIFAR-10 batch file '{file}': b'labels' should be {len(data)} ints, got "
                        f"{labels.dtype} {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"CIFAR-10 batch file '{file}': labels should be in 0..9, got "
                        f"{labels.min()}..{labels.max()}")
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float32) / 255.0
    return x, labels.astype(np.int32)


def _cifar10(path: Path, seed: int, val_fraction: float) -> Dataset:
    root = _cifar_dir(path)
    parts = [_read_batch(root / f) for f in CIFAR_TRAIN_FILES]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    x_test, y_test = _read_batch(root / CIFAR_TEST_FILE)
    tr, va = _stratified_split(y, val_fraction, np.random.default_rng(seed))
    return Dataset("cifar10", x[tr], y[tr], x[va], y[va], x_test, y_test, 10)


def write_cifar10_fixture(directory: str | Path, n_train_per_batch: int = 20, n_test: int = 20,
                          seed: int = 0) -> Path:
    """Write random data in the exact CIFAR-10 python format into `directory`; returns it."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    files = [(f, n_train_per_batch) for f in CIFAR_TRAIN_FILES] + [(CIFAR_TEST_FILE, n_test)]
    for i, (fname, n) in enumerate(files):
        labels = [int(v) for v in rng.integers(0, 10, n)]
        d = {
            b"batch_label": f"batch {i + 1} of {len(files)}".encode(),
            b"labels": labels,
            b"data": rng.integers(0, 256, (n, _CIFAR_PIXELS), dtype=np.uint8),
            b"filenames": [f"img_{i}_{j}.png".encode() for j in range(n)],
        }
        with (out / fname).open("wb") as f:
            pickle.dump(d, f, protocol=2)
    return out


# -- Fashion-MNIST ----------------------------------------------------------------------------

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
"""Where the Debian package dataset-fashion-mnist installs the four gzipped IDX files."""
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FASHION_MNIST_MIN_VAL = 5_000
"""Fashion-MNIST's validation split, drawn stratified from the train images, holds
max(val_fraction, min(0.5, (5000 + 5) / n)) of them: at least 5,000 when there are 10,010 or
more (6,000 of the real 60,000 at the default 0.1), else about half. The test split is always
the separate 10,000 t10k images."""
_IDX_IMAGES = 0x00000803  # uint8, 3 dims (N, rows, cols)
_IDX_LABELS = 0x00000801  # uint8, 1 dim (N,)
_IDX_MAX_ITEMS = 1_000_000  # bounds the work a corrupt header can ask for (the real data: 60,000)
_FASHION_SIDE = 28
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 22
_INSTALL_HINT = ("install the Debian package dataset-fashion-mnist (apt-get install "
                 "dataset-fashion-mnist) or pass the directory as path= (--data-path)")


def _fashion_file(root: Path, base: str) -> Path:
    """`root/base`, or `root/base.gz` when only that exists."""
    for f in (root / base, root / f"{base}.gz"):
        if f.is_file():
            return f
    raise DataError(f"Fashion-MNIST file '{root / base}' (or '{base}.gz') is missing; "
                    f"{_INSTALL_HINT}")


def _read_exactly(f: Any, n: int, file: Path, what: str) -> bytes:
    """n bytes of the stream f, or a DataError saying the file is truncated."""
    data = f.read(n)
    if len(data) != n:
        raise DataError(f"Fashion-MNIST file '{file}' is truncated: expected {what} of {n} bytes, "
                        f"got {len(data)}")
    return data


def _idx_header(f: Any, file: Path, magic: int) -> tuple[int, ...]:
    """The dims of the IDX stream f (positioned at its start) after checking its magic."""
    head = _read_exactly(f, 4, file, "an IDX magic number")
    got = int.from_bytes(head, "big")
    if got != magic:
        kind = "images: uint8, 3 dims" if magic == _IDX_IMAGES else "labels: uint8, 1 dim"
        raise DataError(f"Fashion-MNIST file '{file}': expected IDX magic 0x{magic:08x} ({kind}), "
                        f"got 0x{got:08x}")
    ndim = magic & 0xFF
    raw = _read_exactly(f, 4 * ndim, file, f"an IDX header with {ndim} dims")
    dims = tuple(int.from_bytes(raw[4 * i:4 * i + 4], "big") for i in range(ndim))
    if dims[0] > _IDX_MAX_ITEMS:
        raise DataError(f"Fashion-MNIST file '{file}': expected at most {_IDX_MAX_ITEMS} items, "
                        f"the header says {dims[0]}")
    if magic == _IDX_IMAGES and dims[1:] != (_FASHION_SIDE, _FASHION_SIDE):
        raise DataError(f"Fashion-MNIST file '{file}': expected {_FASHION_SIDE}x{_FASHION_SIDE} "
                        f"images, the header says {dims[1]}x{dims[2]}")
    return dims


def _open_idx(file: Path) -> Any:
    """A binary stream of the (decompressed) file; gzip is recognised by its magic bytes."""
    with file.open("rb") as f:
        zipped = f.read(2) == _GZIP_MAGIC
    return gzip.open(file, "rb") if zipped else file.open("rb")


def _read_idx(file: Path, magic: int) -> np.ndarray:
    """The uint8 array of one IDX file, its magic, dims and exact size checked before the
    payload is read (a plain file by its size on disk, a gzipped one while decompressing)."""
    try:
        with _open_idx(file) as f:
            dims = _idx_header(f, file, magic)
            header = 4 + 4 * len(dims)
            n = prod(dims)
            if not isinstance(f, gzip.GzipFile):
                size = file.stat().st_size
                if size != header + n:
                    state = "truncated" if size < header + n else "too long"
                    raise DataError(f"Fashion-MNIST file '{file}' is {state}: its header says "
                                    f"{'x'.join(map(str, dims))} uint8, so expected {header} + {n} "
                                    f"= {header + n} bytes, the file has {size}")
            out = np.empty(n, np.uint8)
            view = memoryview(out)
            done = 0
            while done < n:
                got = f.readinto(view[done:done + _CHUNK])
                if not got:
                    raise DataError(f"Fashion-MNIST file '{file}' is truncated: its header says "
                                    f"{'x'.join(map(str, dims))} uint8, so expected {n} bytes after "
                                    f"the {header}-byte header, got {done}")
                done += got
            if f.read(1):  # for gzip this also reaches the end of stream and checks the CRC
                raise DataError(f"Fashion-MNIST file '{file}' is too long: expected exactly "
                                f"{header + n} bytes (header + {'x'.join(map(str, dims))} uint8)")
    except (gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"Fashion-MNIST file '{file}' is not a valid gzip file: {e}") from None
    except EOFError as e:
        raise DataError(f"Fashion-MNIST file '{file}' is a truncated gzip file: {e}") from None
    except OSError as e:
        raise DataError(f"Fashion-MNIST file '{file}' cannot be read: {e}") from None
    return out.reshape(dims)


def _read_fashion_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,) int32) of the train or test split."""
    fimg, flab = (_fashion_file(root, b) for b in FASHION_MNIST_FILES[split])
    labels = _read_idx(flab, _IDX_LABELS)
    images = _read_idx(fimg, _IDX_IMAGES)
    if len(labels) != len(images):
        raise DataError(f"Fashion-MNIST {split} split: '{flab}' holds {len(labels)} labels but "
                        f"'{fimg}' holds {len(images)} images; expected as many of each")
    if len(labels) and labels.max() > 9:
        raise DataError(f"Fashion-MNIST file '{flab}': labels should be in 0..9, got "
                        f"{labels.min()}..{labels.max()}")
    return images, labels.astype(np.int32)


def _fashion_val_fraction(n: int, val_fraction: float) -> float:
    """`val_fraction`, raised so that at least min(FASHION_MNIST_MIN_VAL, n / 2) of n train
    images are held out (the +5 covers the per-class rounding of `_stratified_split`)."""
    if n == 0:
        return val_fraction
    return max(val_fraction, min(0.5, (FASHION_MNIST_MIN_VAL + 5) / n))


def _fashion_mnist(path: Path, seed: int, val_fraction: float, limit: int | None) -> Dataset:
    if not path.is_dir():
        raise DataError(f"Fashion-MNIST directory '{path}' does not exist; {_INSTALL_HINT}")
    x, y = _read_fashion_split(path, "train")
    x_test, y_test = _read_fashion_split(path, "test")
    tr, va = _stratified_split(y, _fashion_val_fraction(len(y), val_fraction),
                               np.random.default_rng(seed))
    tr = tr[:limit]  # convert only the kept train images (load_dataset's cap gives the same)

    def images(a: np.ndarray) -> np.ndarray:
        return (a.astype(np.float32) / 255.0)[..., None]

    # hflip: a mirrored shirt, shoe or bag is still one, so horizontal flips keep the label.
    return Dataset("fashion_mnist", images(x[tr]), y[tr], images(x[va]), y[va], images(x_test),
                   y_test, 10, hflip=True)


def write_fashion_mnist_fixture(directory: str | Path, n_train: int = 100, n_test: int = 20,
                                seed: int = 0, gzip: bool = False) -> Path:
    """Write random data in the exact Fashion-MNIST IDX format (the four files, gzipped with a
    `.gz` suffix when `gzip`) into `directory`; returns it."""
    import gzip as gz

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        fimg, flab = FASHION_MNIST_FILES[split]
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        images = rng.integers(0, 256, (n, _FASHION_SIDE, _FASHION_SIDE), dtype=np.uint8)
        for base, magic, arr in ((fimg, _IDX_IMAGES, images), (flab, _IDX_LABELS, labels)):
            blob = (magic.to_bytes(4, "big")
                    + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + arr.tobytes())
            if gzip:
                (out / f"{base}.gz").write_bytes(gz.compress(blob, mtime=0))
            else:
                (out / base).write_bytes(blob)
    return out


# -- synthetic --------------------------------------------------------------------------------

# Five colours x two stripe frequencies = ten classes; stripes run along the rows, so a
# horizontal flip keeps the class.
_PALETTE = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]], np.float32) - 0.5
_FREQS = (2.0, 5.0)


def _synthetic_split(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 10, n).astype(np.int32)
    rows = np.arange(32, dtype=np.float32)[None, :, None, None] / 32.0
    freq = np.array(_FREQS, np.float32)[y // 5][:, None, None, None]
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, 1)).astype(np.float32)
    stripes = np.sin(2 * np.pi * freq * rows + phase)
    colour = _PALETTE[y % 5][:, None, None, :]
    amp = rng.uniform(0.15, 0.35, (n, 1, 1, 1)).astype(np.float32)
    noise = rng.normal(0, 0.12, (n, 32, 32, 3)).astype(np.float32)
    x = 0.5 + 0.3 * colour * amp / 0.25 + 0.2 * stripes * amp / 0.25 + noise
    return np.clip(x, 0.0, 1.0).astype(np.float32), y


def _synthetic(seed: int, val_fraction: float, n_train: int) -> Dataset:
    rng = np.random.default_rng([seed, 10])
    n_val = max(1, int(round(n_train * val_fraction / (1 - val_fraction))))
    n_test = max(n_val, n_train // 5)
    x_tr, y_tr = _synthetic_split(rng, n_train)
    x_va, y_va = _synthetic_split(rng, n_val)
    x_te, y_te = _synthetic_split(rng, n_test)
    return Dataset("synthetic", x_tr, y_tr, x_va, y_va, x_te, y_te, 10)


# -- batching and augmentation ----------------------------------------------------------------


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, shuffle: bool = True,
            drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(x, y) minibatches, in a seeded random order when `shuffle`."""
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    if len(x) != len(y):
        raise DataError(f"x has {len(x)} examples but y has {len(y)}")
    n = len(x)
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    end = n - n % batch_size if drop_last else n
    for i in range(0, end, batch_size):
        idx = order[i:i + batch_size]
        yield x[idx], y[idx]


def augment(x: Any, key: Any, flip: bool = True, mode: str = "reflect") -> Any:
    """Random crop after padding by max(1, H // 16) pixels, and a random horizontal flip.

    x: (N, H, W, C); returns the same shape. `mode` is "reflect" or "constant" (zeros).
    Pure jax, usable under jit.
    """
    import jax
    import jax.numpy as jnp

    n, h, w, c = x.shape
    pad = max(1, h // 16)
    k_crop, k_flip = jax.random.split(key)
    xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=mode)
    offsets = jax.random.randint(k_crop, (n, 2), 0, 2 * pad + 1)

    def crop(img: Any, off: Any) -> Any:
        return jax.lax.dynamic_slice(img, (off[0], off[1], 0), (h, w, c))

    out = jax.vmap(crop)(xp, offsets)
    if flip:
        flips = jax.random.bernoulli(k_flip, 0.5, (n, 1, 1, 1))
        out = jnp.where(flips, out[:, :, ::-1, :], out)
    return out


# -- graphs -----------------------------------------------------------------------------------


def adapt_graph(graph: Graph, dataset: Dataset) -> Graph:
    """`graph` with its input declared as (1, *dataset.input_shape); its output must be
    (1, num_classes)."""
    from alphanas.ir.analysis import analyze

    gname = graph.name or "<unnamed>"
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise DataError(f"graph {gname!r} has {len(graph.inputs)} inputs and "
                        f"{len(graph.outputs)} outputs; a classifier needs one of each")
    shape = (1, *dataset.input_shape)
    want = (1, dataset.num_classes)
    hint = ""
    declared = graph.input_shapes[0]
    if declared is not None and len(declared) == 2 and declared[1] == prod(dataset.input_shape) \
            and dataset.is_image:
        hint = " (the graph takes flat features: use dataset.flattened())"
    g = graph.with_input_shapes([shape])
    try:
        out = analyze(g).output_shapes[0]
    except AlphanasError as e:
        raise DataError(f"graph {gname!r} cannot take input {shape} of dataset "
                        f"{dataset.name!r}: {e}{hint}") from None
    if out != want:
        raise DataError(f"graph {gname!r} maps input {shape} of dataset {dataset.name!r} to "
                        f"output {out}; expected {want}{hint}")
    return g
