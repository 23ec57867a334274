"""Tests for helpers.standard_datasets, on tiny files written in the published formats."""

import io
import pickle
import re
import struct
import tarfile
from pathlib import Path

import numpy as np
import pooch
import pytest
from conftest import write_idx

from helpers import standard_datasets as sd

IDX_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def tiny_mnist(n_train=40, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.arange(n_test, dtype=np.uint8) % 10,
    }


def write_mnist(root: Path, compress: bool = True, arrays=None):
    arrays = arrays or tiny_mnist()
    for name, array in arrays.items():
        write_idx(root / (name if compress else name.removesuffix(".gz")), array, compress)
    return arrays


def write_cifar_pickle(path: Path, obj) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def tiny_cifar(n_per_batch=10, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(6):
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        batches.append((data, [int(v) for v in rng.permutation(n_per_batch) % 10]))
    batches[-1] = (batches[-1][0][:n_test], batches[-1][1][:n_test])
    return batches


def write_cifar(folder: Path, batches=None, label_names=None):
    """The extracted layout: data_batch_1..5, test_batch, batches.meta, with bytes keys."""
    batches = batches or tiny_cifar()
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, (data, labels) in zip(names, batches, strict=True):
        batch = {
            b"batch_label": name.encode(),
            b"labels": labels,
            b"data": data,
            b"filenames": [b"x.png"] * len(labels),
        }
        write_cifar_pickle(folder / name, batch)
    label_names = label_names or [n.encode() for n in sd.CIFAR10_CLASSES]
    meta = {b"label_names": label_names, b"num_cases_per_batch": 10, b"num_vis": 3072}
    write_cifar_pickle(folder / "batches.meta", meta)
    return batches


def cifar_archive(path: Path, batches=None) -> Path:
    staging = path.parent / "staging"
    write_cifar(staging / sd.CIFAR10_FOLDER, batches)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(staging / sd.CIFAR10_FOLDER, arcname=sd.CIFAR10_FOLDER)
    return path


# ---------------------------------------------------------------- MNIST


@pytest.mark.parametrize("compress", [True, False])
def test_load_idx_dataset(tmp_path, no_network, compress):
    arrays = write_mnist(tmp_path, compress)
    ds = sd.load_mnist(tmp_path, val_fraction=0.25, seed=0)
    classes = tuple("0123456789")
    assert ds.classes == classes and len(classes) == 10
    assert [len(s.y) for s in (ds.train, ds.val, ds.test)] == [30, 10, 10]
    for split in (ds.train, ds.val, ds.test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        assert split.x.shape == (len(split.y), 1, 28, 28)
        assert 0 <= split.x.min() and split.x.max() <= 1
    np.testing.assert_array_equal(
        np.rint(ds.test.x[:, 0] * 255), arrays["t10k-images-idx3-ubyte.gz"]
    )
    np.testing.assert_array_equal(ds.test.y, arrays["t10k-labels-idx1-ubyte.gz"])
    np.testing.assert_array_equal(np.bincount(ds.val.y), np.ones(10))  # stratified
    # train + val are the training files, each image exactly once, with its label
    images = np.concatenate([ds.train.x, ds.val.x])[:, 0]
    labels = np.concatenate([ds.train.y, ds.val.y])
    key = np.argsort(images.reshape(len(images), -1)[:, :8] @ 256.0 ** -np.arange(8))
    raw = arrays["train-images-idx3-ubyte.gz"] / 255.0
    raw_key = np.argsort(raw.reshape(len(raw), -1)[:, :8] @ 256.0 ** -np.arange(8))
    np.testing.assert_allclose(images[key], raw[raw_key])
    np.testing.assert_array_equal(labels[key], arrays["train-labels-idx1-ubyte.gz"][raw_key])


def test_mnist_val_is_deterministic(tmp_path, no_network):
    write_mnist(tmp_path)
    a, b = (sd.load_mnist(tmp_path, val_fraction=0.25, seed=5) for _ in range(2))
    for sa, sb in zip((a.train, a.val), (b.train, b.val), strict=True):
        np.testing.assert_array_equal(sa.x, sb.x)
        np.testing.assert_array_equal(sa.y, sb.y)
    assert not np.array_equal(a.val.x, sd.load_mnist(tmp_path, val_fraction=0.25, seed=6).val.x)
    assert a.name == "mnist"


def test_mnist_missing_folder_message(tmp_path, no_network):
    root = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        sd.load_mnist(root)
    message = str(err.value)
    for name in IDX_NAMES:
        assert name in message
    assert "download=True" in message and sd.MNIST_URL in message and str(root) in message


def test_mnist_missing_one_file(tmp_path, no_network):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="missing in .*: t10k-labels-idx1-ubyte.gz") as err:
        sd.load_mnist(tmp_path)
    assert sd.MNIST_URL in str(err.value)
    assert "train-images" not in str(err.value)


def test_mnist_corrupt_file(tmp_path, no_network):
    write_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not a gzip file")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz does not start with an IDX"):
        sd.load_mnist(tmp_path)


@pytest.mark.parametrize(
    ("replace", "array", "message"),
    [
        ("train-labels-idx1-ubyte.gz", np.zeros(39), r"labels \(N,\).*found \(40, 28, 28\) and"),
        ("t10k-images-idx3-ubyte.gz", np.zeros((10, 784)), r"images \(N, H, W\)"),
        ("t10k-labels-idx1-ubyte.gz", np.full(10, 10), r"labels must be in 0\.\.9 .* found 10\.\.10"),
    ],
)
def test_mnist_inconsistent_files(tmp_path, no_network, replace, array, message):
    write_mnist(tmp_path)
    write_idx(tmp_path / replace, array)
    with pytest.raises(ValueError, match=message):
        sd.load_mnist(tmp_path)


def test_bad_val_fraction(tmp_path, no_network):
    for loader in (sd.load_mnist, sd.load_cifar10):
        with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
            loader(tmp_path, val_fraction=1.0)


def test_download_uses_pooch_with_known_hashes(tmp_path, monkeypatch):
    loader, md5s, url = sd.load_mnist, sd.MNIST_MD5, sd.MNIST_URL
    arrays = tiny_mnist()
    calls = []

    def fake_retrieve(url, known_hash, fname=None, path=None, **kwargs):
        calls.append((url, known_hash, fname))
        Path(path).mkdir(parents=True, exist_ok=True)
        write_idx(Path(path) / fname, arrays[fname])
        return str(Path(path) / fname)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    ds = loader(tmp_path / "new", download=True)
    assert sorted(calls) == sorted((url + n, f"md5:{md5s[n]}", n) for n in IDX_NAMES)
    assert len(ds.test.y) == 10


def test_published_checksums():
    assert sd.MNIST_MD5["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    for md5 in [*sd.MNIST_MD5.values(), sd.CIFAR10_MD5]:
        assert re.fullmatch("[0-9a-f]{32}", md5)


# ---------------------------------------------------------------- CIFAR-10


def test_load_cifar10_folder(tmp_path, no_network):
    batches = write_cifar(tmp_path / sd.CIFAR10_FOLDER)
    ds = sd.load_cifar10(tmp_path, val_fraction=0.2)
    assert ds.name == "cifar10" and ds.classes == sd.CIFAR10_CLASSES
    assert [len(s.y) for s in (ds.train, ds.val, ds.test)] == [40, 10, 10]
    for split in (ds.train, ds.val, ds.test):
        assert split.x.shape == (len(split.y), 3, 32, 32) and split.x.dtype == np.float32
        assert split.y.dtype == np.int64 and 0 <= split.x.min() and split.x.max() <= 1
    data, labels = batches[-1]
    # published layout: each row is 1024 red, then 1024 green, then 1024 blue values
    np.testing.assert_array_equal(np.rint(ds.test.x * 255), data.reshape(-1, 3, 32, 32))
    assert np.rint(ds.test.x[0, 1, 0, 0] * 255) == data[0, 1024]
    np.testing.assert_array_equal(ds.test.y, labels)
    np.testing.assert_array_equal(np.bincount(ds.val.y), np.ones(10))


def test_load_cifar10_archive_is_extracted(tmp_path, no_network):
    cifar_archive(tmp_path / sd.CIFAR10_ARCHIVE)
    ds = sd.load_cifar10(tmp_path)
    assert (tmp_path / sd.CIFAR10_FOLDER / "test_batch").is_file()
    assert len(ds.test.y) == 10


def test_cifar10_class_names_from_meta(tmp_path, no_network):
    names = [f"c{i}" for i in range(10)]
    write_cifar(tmp_path / sd.CIFAR10_FOLDER, label_names=names)
    assert sd.load_cifar10(tmp_path).classes == tuple(names)
    write_cifar(tmp_path / sd.CIFAR10_FOLDER, label_names=names[:3])
    with pytest.raises(ValueError, match="expected 10 label_names .* found 3"):
        sd.load_cifar10(tmp_path)


def test_cifar10_reads_python2_pickles(tmp_path, no_network):
    """The published batches were pickled by Python 2: str keys become bytes, numpy.core."""

    def s(b):  # SHORT_BINSTRING, a Python 2 str
        return b"U" + bytes([len(b)]) + b

    data = bytes(range(256)) * 12  # one 3072-byte image
    raw = (
        b"\x80\x02}(" + s(b"data")
        + b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b") + b"\x87R"
        + b"(K\x01K\x01M\x00\x0c\x86cnumpy\ndtype\n" + s(b"u1") + b"K\x00K\x01\x87R"
        + b"(K\x03" + s(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
        + b"T" + struct.pack("<I", len(data)) + data + b"tb"
        + s(b"labels") + b"]K\x07au."
    )  # fmt: skip
    write_cifar(tmp_path / sd.CIFAR10_FOLDER)
    (tmp_path / sd.CIFAR10_FOLDER / "test_batch").write_bytes(raw)
    ds = sd.load_cifar10(tmp_path)
    assert ds.test.y.tolist() == [7]
    np.testing.assert_array_equal(np.rint(ds.test.x.ravel() * 255), np.frombuffer(data, np.uint8))


def test_cifar10_missing_message(tmp_path, no_network):
    with pytest.raises(FileNotFoundError) as err:
        sd.load_cifar10(tmp_path / "nowhere")
    message = str(err.value)
    for name in sd.CIFAR10_FILES:
        assert f"{sd.CIFAR10_FOLDER}/{name}" in message
    assert sd.CIFAR10_ARCHIVE in message and sd.CIFAR10_URL in message
    assert "download=True" in message


def test_cifar10_missing_one_batch(tmp_path, no_network):
    write_cifar(tmp_path / sd.CIFAR10_FOLDER)
    (tmp_path / sd.CIFAR10_FOLDER / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="missing in .*: cifar-10-batches-py/data_batch_3 "):
        sd.load_cifar10(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"garbage", "not a readable CIFAR-10 pickle"),
        (pickle.dumps([1, 2]), "expected a dict in .* found list"),
        (pickle.dumps({b"data": np.zeros((2, 100)), b"labels": [0, 1]}), r"found \(2, 100\)"),
        (pickle.dumps({b"data": np.zeros((2, 3072)), b"labels": [0]}), r"and \(1,\)"),
        (pickle.dumps({b"data": np.zeros((1, 3072)), b"labels": [12]}), r"labels must be in 0\.\.9"),
        (pickle.dumps(io.BytesIO()), "_io.BytesIO is not allowed"),
    ],
)
def test_cifar10_corrupt_batch(tmp_path, no_network, content, message):
    write_cifar(tmp_path / sd.CIFAR10_FOLDER)
    (tmp_path / sd.CIFAR10_FOLDER / "data_batch_2").write_bytes(content)
    with pytest.raises(ValueError, match=message) as err:
        sd.load_cifar10(tmp_path)
    assert "data_batch_2" in str(err.value) and "download=True" in str(err.value)


def test_cifar10_corrupt_archive(tmp_path, no_network):
    (tmp_path / sd.CIFAR10_ARCHIVE).write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(ValueError, match="not a readable tar.gz archive"):
        sd.load_cifar10(tmp_path)


def test_cifar10_download_uses_pooch_with_known_hash(tmp_path, monkeypatch):
    calls = []

    def fake_retrieve(url, known_hash, fname=None, path=None, **kwargs):
        calls.append((url, known_hash, fname))
        Path(path).mkdir(parents=True, exist_ok=True)
        return str(cifar_archive(Path(path) / fname))

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    ds = sd.load_cifar10(tmp_path / "new", download=True)
    assert calls == [(sd.CIFAR10_URL, f"md5:{sd.CIFAR10_MD5}", sd.CIFAR10_ARCHIVE)]
    assert len(ds.train.y) + len(ds.val.y) == 50
    sd.load_cifar10(tmp_path / "new", download=True)  # already extracted: no second download
    assert len(calls) == 1
