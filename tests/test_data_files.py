"""Tests for helpers.data_files: IDX reading, the Fashion-MNIST search order, checksums,
stamps and downloading, on small generated files (and on the real files when present)."""

import gzip
import json
import os
import re
import struct
from pathlib import Path

import numpy as np
import pooch
import pytest
from conftest import idx_bytes, needs_fashion_mnist, write_idx

from helpers import data_files

# ---------------------------------------------------------------- read_idx


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("shape", [(7,), (3, 28, 28), (2, 3, 4, 5)])
def test_read_idx_round_trip(tmp_path, compress, shape):
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = data_files.read_idx(write_idx(tmp_path / "f", array, compress))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, array)


def test_read_idx_other_dtypes(tmp_path):
    array = np.arange(6, dtype=">i4").reshape(2, 3)
    raw = struct.pack(">BBBBII", 0, 0, 0x0C, 2, 2, 3) + array.tobytes()
    (tmp_path / "f").write_bytes(raw)
    out = data_files.read_idx(tmp_path / "f")
    assert out.dtype == np.int32 and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "does not start with an IDX magic number"),
        (b"\x01\x02\x08\x01", "found 0x01020801"),
        (b"\x00\x00\x07\x01", "found 0x00000701"),
        (b"\x00\x00\x08\x00", "DD >= 1"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated: expected a 16-byte header"),
        (idx_bytes(np.zeros((4, 2, 2)))[:-3], r"shape (4, 2, 2) (16 bytes of data) but 13"),
        (idx_bytes(np.zeros(3)) + b"\x00", r"shape (3,) (3 bytes of data) but 4 bytes"),
    ],
)
@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_corrupt(tmp_path, raw, message, compress):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        data_files.read_idx(path)
    assert str(path) in str(err.value) and "download=True" in str(err.value)


def test_read_idx_truncated_gzip(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((5, 28, 28))))[:-20])
    with pytest.raises(ValueError, match="not a readable gzip file") as err:
        data_files.read_idx(path)
    assert "t10k-images-idx3-ubyte.gz" in str(err.value) and "fresh copy" in str(err.value)


# ---------------------------------------------------------------- the search order


def test_published_digests_and_classes():
    assert data_files.FASHION_MNIST_FILES["train-images-idx3-ubyte"].startswith("c59f468a")
    assert data_files.FASHION_MNIST_FILES["t10k-labels-idx1-ubyte"].endswith("7dec38c34")
    for digest in data_files.FASHION_MNIST_FILES.values():
        assert re.fullmatch("[0-9a-f]{64}", digest)
    assert len(data_files.FASHION_MNIST_CLASSES) == 10
    assert data_files.FASHION_MNIST_CLASSES[0] == "T-shirt/top"
    assert data_files.DEBIAN_DIR == Path("/usr/share/datasets/fashion-mnist")


def test_root_alone_is_used(tmp_path, fake_fashion, no_network):
    fake_fashion(tmp_path / "mine", compress=False)
    fake_fashion(data_files.cache_dir())
    found = data_files.find_fashion_mnist(tmp_path / "mine")
    assert {p.parent for p in found.values()} == {tmp_path / "mine"}
    assert sorted(found) == sorted(data_files.FASHION_MNIST_FILES)


def test_explicit_root_lacking_files_is_an_error_not_a_fallback(tmp_path, fake_fashion, no_network):
    fake_fashion(data_files.cache_dir())  # a complete copy elsewhere must not be used
    fake_fashion(tmp_path / "mine", which={"train-images-idx3-ubyte"})
    with pytest.raises(FileNotFoundError) as err:
        data_files.find_fashion_mnist(tmp_path / "mine", download=True)
    message = str(err.value)
    assert "used alone" in message and "t10k-labels-idx1-ubyte" in message
    assert "train-images-idx3-ubyte(.gz)" not in message
    assert "make data" in message and "dataset-fashion-mnist" in message


@pytest.mark.parametrize("winner", ["BOOK_DATA_DIR", "debian", "cache"])
def test_search_order(tmp_path, fake_fashion, no_network, monkeypatch, winner):
    env, debian, cache = tmp_path / "env", data_files.DEBIAN_DIR, data_files.cache_dir()
    monkeypatch.setenv("BOOK_DATA_DIR", str(env))
    order = {"BOOK_DATA_DIR": [env, debian, cache], "debian": [debian, cache], "cache": [cache]}
    for folder in order[winner]:
        fake_fashion(folder)
    expected = order[winner][0]
    found = data_files.find_fashion_mnist()
    assert {p.parent for p in found.values()} == {expected}
    labels = [label for label, _ in data_files.search_places()]
    assert labels == ["BOOK_DATA_DIR", "the dataset-fashion-mnist package", "the user cache"]


def test_incomplete_place_is_skipped(tmp_path, fake_fashion, no_network, monkeypatch):
    monkeypatch.setenv("BOOK_DATA_DIR", str(tmp_path / "env"))
    fake_fashion(tmp_path / "env", which={"train-images-idx3-ubyte"})
    fake_fashion(data_files.DEBIAN_DIR)
    found = data_files.find_fashion_mnist()
    assert {p.parent for p in found.values()} == {data_files.DEBIAN_DIR}


def test_nowhere_says_where_it_looked_and_how_to_get_them(tmp_path, fake_fashion, no_network):
    with pytest.raises(FileNotFoundError) as err:
        data_files.find_fashion_mnist()
    message = str(err.value)
    assert str(data_files.DEBIAN_DIR) in message and str(data_files.cache_dir()) in message
    for hint in ("make data", "apt-get install dataset-fashion-mnist", "download=True"):
        assert hint in message


def test_download_fills_the_cache_only(tmp_path, fake_fashion, monkeypatch):
    arrays = fake_fashion(tmp_path / "staging")
    calls = []

    def fake_retrieve(url, known_hash, fname=None, path=None, **kwargs):
        calls.append((url, known_hash, fname, Path(path)))
        name = fname.removesuffix(".gz")
        write_idx(Path(path) / fname, arrays[name])
        return str(Path(path) / fname)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    cache = data_files.cache_dir()
    fake_fashion(cache, which={"train-labels-idx1-ubyte"})  # kept, not fetched again
    found = data_files.find_fashion_mnist(download=True)
    assert {p.parent for p in found.values()} == {cache}
    fetched = sorted(c[2] for c in calls)
    assert fetched == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                       "train-images-idx3-ubyte.gz"]  # fmt: skip
    for url, known_hash, fname, path in calls:
        assert url == data_files.FASHION_MNIST_URL + fname and path == cache
        assert known_hash == f"md5:{data_files.FASHION_MNIST_GZ_MD5[fname]}"


# ---------------------------------------------------------------- integrity


def test_altered_file_is_refused_and_left_alone(tmp_path, fake_fashion, no_network):
    arrays = fake_fashion(tmp_path / "mine")
    path = tmp_path / "mine" / "t10k-images-idx3-ubyte.gz"
    altered = arrays["t10k-images-idx3-ubyte"].copy()
    altered[0, 0, 0] ^= 1
    write_idx(path, altered)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    with pytest.raises(ValueError) as err:
        data_files.read_fashion_mnist(tmp_path / "mine")
    message = str(err.value)
    assert str(path) in message and data_files.FASHION_MNIST_FILES["t10k-images-idx3-ubyte"] in message
    assert "left as it is" in message and "make data" in message
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_truncated_file_is_refused(tmp_path, fake_fashion, no_network):
    fake_fashion(tmp_path / "mine", compress=False)
    path = tmp_path / "mine" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte is not the published"):
        data_files.read_fashion_mnist(tmp_path / "mine")


def test_verified_once_then_remembered(tmp_path, fake_fashion, no_network, monkeypatch):
    fake_fashion(tmp_path / "mine")
    first = data_files.read_fashion_mnist(tmp_path / "mine")
    stamps = json.loads((data_files.cache_dir() / "verified.json").read_text())
    assert len(stamps) == 4
    hashed = []
    real_sha = data_files.hashlib.sha256
    monkeypatch.setattr(data_files.hashlib, "sha256", lambda b: hashed.append(1) or real_sha(b))
    again = data_files.read_fashion_mnist(tmp_path / "mine")
    assert hashed == [], "a stamped file was hashed again"
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    # a file that changed (other size or time) is verified again, and refused if altered
    path = tmp_path / "mine" / "train-labels-idx1-ubyte.gz"
    labels = first["train-labels-idx1-ubyte"].copy()
    labels[0] = (labels[0] + 1) % 10
    write_idx(path, labels)
    os.utime(path, ns=(1, 1))
    with pytest.raises(ValueError, match="not the published train-labels"):
        data_files.read_fashion_mnist(tmp_path / "mine")


def test_unwritable_cache_still_loads(tmp_path, fake_fashion, no_network, monkeypatch):
    fake_fashion(tmp_path / "mine")
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    arrays = data_files.read_fashion_mnist(tmp_path / "mine")
    assert arrays["train-images-idx3-ubyte"].shape == (200, 28, 28)


def test_verify_rejects_other_names(tmp_path):
    with pytest.raises(ValueError, match="expected one of the files .* got 'other.gz'"):
        data_files.verify(tmp_path / "other.gz")


def test_main_reports(tmp_path, fake_fashion, no_network, capsys, monkeypatch):
    assert data_files.main(["--no-download"]) == 1
    assert "make data" in capsys.readouterr().err
    monkeypatch.setenv("BOOK_DATA_DIR", str(tmp_path / "env"))
    fake_fashion(tmp_path / "env")
    assert data_files.main(["--no-download"]) == 0
    assert "verified in" in capsys.readouterr().out


# ---------------------------------------------------------------- the real files


@needs_fashion_mnist
def test_real_files_verify_and_have_the_published_shapes():
    arrays = data_files.read_fashion_mnist()
    assert arrays["train-images-idx3-ubyte"].shape == (60000, 28, 28)
    assert arrays["t10k-images-idx3-ubyte"].shape == (10000, 28, 28)
    assert np.bincount(arrays["train-labels-idx1-ubyte"]).tolist() == [6000] * 10
    assert np.bincount(arrays["t10k-labels-idx1-ubyte"]).tolist() == [1000] * 10
