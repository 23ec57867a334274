"""MNIST and CIFAR-10 from a local folder, downloaded only on request.

(Fashion-MNIST, the book's main data set, has its own loader with a search path and
checksums: ``helpers.data.load_fashion_mnist``.)

Each loader reads the files exactly as they are published, from ``root`` itself:

- MNIST: ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
  ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz`` (or the same names without
  ``.gz``).
- CIFAR-10: the folder ``cifar-10-batches-py/`` (``data_batch_1`` .. ``data_batch_5``,
  ``test_batch``, ``batches.meta``), or the archive ``cifar-10-python.tar.gz``, which is
  extracted on first use.

Nothing touches the network unless ``download=True``; then each file is fetched with
``pooch.retrieve`` and checked against its published MD5. The validation split is carved,
stratified and deterministic, from the training files; the test split is the test files.
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

from helpers.data import DataSplits, Split, stratified_indices
from helpers.data_files import fresh_copy_hint, read_idx, retrieve

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def _missing_message(where, root, missing, url, alternatives="") -> str:
    return (
        f"{where}: missing in {root}: {', '.join(missing)}{alternatives}. "
        f"Pass download=True to fetch them, or download them yourself from {url} "
        f"and place them in {root}."
    )


def _check_val_fraction(where: str, val_fraction: float) -> None:
    if not 0 <= val_fraction < 1:
        raise ValueError(f"{where}: val_fraction must be in [0, 1), got {val_fraction}")


def _load_idx_dataset(
    where, name, root, download, md5s, base_url, classes, val_fraction, seed
) -> DataSplits:
    _check_val_fraction(where, val_fraction)
    root = Path(root)
    if download:
        for fname, md5 in md5s.items():
            retrieve(base_url + fname, known_hash=f"md5:{md5}", fname=fname, path=root)
    paths, missing = {}, []
    for fname in md5s:
        found = [root / n for n in (fname, fname.removesuffix(".gz")) if (root / n).is_file()]
        if found:
            paths[fname] = found[0]
        else:
            missing.append(fname)
    if missing:
        raise FileNotFoundError(
            _missing_message(where, root, missing, base_url, " (or the names without .gz)")
        )
    arrays = {fname: read_idx(p) for fname, p in paths.items()}
    splits = {}
    for part in ("train", "t10k"):
        images = arrays[f"{part}-images-idx3-ubyte.gz"]
        labels = arrays[f"{part}-labels-idx1-ubyte.gz"]
        image_file = paths[f"{part}-images-idx3-ubyte.gz"]
        label_file = paths[f"{part}-labels-idx1-ubyte.gz"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{where}: expected images (N, H, W) in {image_file.name} and labels (N,) in "
                f"{label_file.name}, found {images.shape} and {labels.shape}"
            )
        if labels.size and not (0 <= labels.min() and labels.max() < len(classes)):
            raise ValueError(
                f"{where}: labels must be in 0..{len(classes) - 1} in {label_file.name}, "
                f"found {labels.min()}..{labels.max()}"
            )
        splits[part] = (images, labels)
    return _make_splits(name, splits["train"], splits["t10k"], classes, val_fraction, seed)


def _make_splits(name, train, test, classes, val_fraction, seed) -> DataSplits:
    """uint8 images (N, H, W) or (N, C, H, W) -> float32 NCHW in [0, 1]; carve val from train."""

    def to_split(images, labels, idx=slice(None)):
        x = images[idx].astype(np.float32) / 255.0
        return Split(x[:, None] if x.ndim == 3 else x, labels[idx].astype(np.int64))

    tr, va, _ = stratified_indices(train[1], val_fraction, 0.0, seed)
    return DataSplits(
        name, to_split(*train, tr), to_split(*train, va), to_split(*test), tuple(classes)
    )


def load_mnist(root, *, val_fraction: float = 0.1, seed: int = 0,
               download: bool = False):
    """MNIST digits from the IDX files in ``root``: x (N, 1, 28, 28) float32 in [0, 1].

    60,000 training images (val_fraction of them, stratified, become val) and 10,000 test.
    Classes "0" .. "9".
    """
    classes = tuple(str(d) for d in range(10))
    return _load_idx_dataset(
        "load_mnist", "mnist", root, download, MNIST_MD5, MNIST_URL, classes, val_fraction, seed
    )


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickle plain containers and NumPy arrays only: a pickle cannot run other code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("_codecs", "encode"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def _read_cifar_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    except Exception as err:
        raise ValueError(
            f"load_cifar10: {path} is not a readable CIFAR-10 pickle ({err}); "
            f"{fresh_copy_hint(path)}"
        ) from err
    if not isinstance(obj, dict):
        raise ValueError(
            f"load_cifar10: expected a dict in {path}, found {type(obj).__name__}; "
            f"{fresh_copy_hint(path)}"
        )
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 batch file -> (images (N, 3, 32, 32) uint8, labels (N,) int64)."""
    batch = _read_cifar_pickle(path)
    data = np.asarray(batch.get("data", ()))
    labels = np.asarray(batch.get("labels", ()))
    if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (len(data),):
        raise ValueError(
            f"load_cifar10: expected 'data' (N, 3072) and 'labels' (N,) in {path}, found "
            f"{data.shape} and {labels.shape}; {fresh_copy_hint(path)}"
        )
    if labels.size and not (0 <= labels.min() and labels.max() < 10):
        raise ValueError(
            f"load_cifar10: labels must be in 0..9 in {path}, found "
            f"{labels.min()}..{labels.max()}; {fresh_copy_hint(path)}"
        )
    return data.astype(np.uint8).reshape(-1, 3, 32, 32), labels.astype(np.int64)


def load_cifar10(root, *, val_fraction: float = 0.1, seed: int = 0,
                 download: bool = False):
    """CIFAR-10 from ``root``: x (N, 3, 32, 32) float32 in [0, 1] (channels R, G, B).

    Reads ``root/cifar-10-batches-py/``; if only ``root/cifar-10-python.tar.gz`` is there,
    extracts it first. 50,000 training images (val_fraction of them become val), 10,000
    test. Class names from ``batches.meta``.
    """
    _check_val_fraction("load_cifar10", val_fraction)
    root = Path(root)
    folder, archive = root / CIFAR10_FOLDER, root / CIFAR10_ARCHIVE
    if download and not folder.is_dir():
        md5 = f"md5:{CIFAR10_MD5}"
        retrieve(CIFAR10_URL, known_hash=md5, fname=CIFAR10_ARCHIVE, path=root)
    if not folder.is_dir() and archive.is_file():
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(root, filter="data")
        except (tarfile.TarError, OSError, EOFError) as err:
            raise ValueError(
                f"load_cifar10: {archive} is not a readable tar.gz archive ({err}); "
                f"{fresh_copy_hint(archive)}"
            ) from err
    missing = [f"{CIFAR10_FOLDER}/{n}" for n in CIFAR10_FILES if not (folder / n).is_file()]
    if missing:
        also = f" (or the archive {CIFAR10_ARCHIVE}, extracted on first use)"
        raise FileNotFoundError(_missing_message("load_cifar10", root, missing, CIFAR10_URL, also))
    parts = [_read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    test = _read_cifar_batch(folder / "test_batch")
    names = _read_cifar_pickle(folder / "batches.meta").get("label_names", CIFAR10_CLASSES)
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    if len(classes) != 10:
        raise ValueError(
            f"load_cifar10: expected 10 label_names in {folder / 'batches.meta'}, "
            f"found {len(classes)}"
        )
    return _make_splits("cifar10", train, test, classes, val_fraction, seed)
