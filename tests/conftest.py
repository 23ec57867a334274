"""Test-suite settings and shared fixtures.

Hypothesis draws the same examples on every run, so that CI is reproducible and a failure
found once is found again. ``fake_fashion`` gives tests a private Fashion-MNIST search path
with small generated files.
"""

import gzip
import hashlib
import struct

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("book", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("book")


def stub(*args, **kwargs):
    """What a student's unfinished exercise does: every check must fail on it."""
    raise NotImplementedError("exercise not done")


# ---------------------------------------------------------------- small Fashion-MNIST files


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic 0x000008DD, big-endian sizes, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path, array: np.ndarray, compress: bool = True):
    """Write ``array`` to ``path`` as an IDX file, gzip-compressed unless ``compress=False``."""
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


@pytest.fixture
def no_network(monkeypatch):
    """Any download attempt fails the test."""
    import pooch

    def refuse(*args, **kwargs):
        raise AssertionError("pooch.retrieve called although download=False")

    monkeypatch.setattr(pooch, "retrieve", refuse)


def _fashion_mnist_installed() -> bool:
    from helpers import data_files

    try:
        data_files.find_fashion_mnist()
    except FileNotFoundError:
        return False
    return True


needs_fashion_mnist = pytest.mark.skipif(
    not _fashion_mnist_installed(), reason="Fashion-MNIST is not installed here (make data)"
)


def tiny_fashion_arrays(n_train=200, n_test=30, seed=0) -> dict[str, np.ndarray]:
    """Four arrays in Fashion-MNIST's layout: balanced labels 0..9, random 28x28 images."""
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.permutation(np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }


@pytest.fixture
def fake_fashion(tmp_path, monkeypatch):
    """Isolate the Fashion-MNIST search path and make small files with known digests.

    Returns write(folder, compress=True, arrays=None) -> arrays, which writes the four files
    into folder. The search path is emptied: BOOK_DATA_DIR unset, the Debian folder and the
    user cache moved into tmp_path, and the expected digests are those of the small files.
    """
    from helpers import data, data_files

    arrays = tiny_fashion_arrays()
    digests = {n: hashlib.sha256(idx_bytes(a)).hexdigest() for n, a in arrays.items()}
    monkeypatch.setattr(data_files, "FASHION_MNIST_FILES", digests)
    monkeypatch.setattr(data_files, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("BOOK_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "_FASHION_CACHE", {})

    def write(folder, compress=True, which=None):
        folder.mkdir(parents=True, exist_ok=True)
        for name, array in arrays.items():
            if which is not None and name not in which:
                continue
            write_idx(folder / (f"{name}.gz" if compress else name), array, compress)
        return arrays

    return write


# ---------------------------------------------------------------- a chapter written in a test


def write_chapter(folder, body: str, name: str = "09_synthetic"):
    """Write ``body`` (jupytext percent source) as ``folder/name.py`` and its paired notebook
    with a kernelspec, as the chapters carry; returns the ``.ipynb`` path."""
    import jupytext
    import nbformat

    script = folder / f"{name}.py"
    script.write_text(body)
    nb = jupytext.read(script)
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python"}
    path = script.with_suffix(".ipynb")
    nbformat.write(nb, path)
    return path
