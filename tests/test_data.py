"""Tests for helpers.data: the embedded datasets, photographs and DeviceLoader."""

import re

import numpy as np
import pytest
import torch
from conftest import needs_fashion_mnist
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import data

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits():
    return data.load_digits()


@pytest.fixture(scope="module")
def textures():
    return data.load_textures()


@pytest.fixture(scope="module")
def faces():
    return data.load_faces()


def _all_splits(ds):
    return (ds.train, ds.val, ds.test)


@pytest.mark.parametrize(
    ("name", "shape", "total", "n_classes"),
    [
        ("digits", (1, 8, 8), 1797, 10),
        ("textures", (1, 32, 32), 800 * len(data.TEXTURES), len(data.TEXTURES)),
        ("faces", (1, 25, 25), 200, 2),
    ],
)
def test_shapes_dtypes_ranges(request, name, shape, total, n_classes):
    ds = request.getfixturevalue(name)
    assert ds.name == name
    assert len(ds.classes) == n_classes
    assert sum(len(s.y) for s in _all_splits(ds)) == total
    for split in _all_splits(ds):
        assert isinstance(split, data.Split)
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        assert split.x.shape == (len(split.y), *shape)
        assert split.x.min() >= 0.0 and split.x.max() <= 1.0
        assert set(np.unique(split.y)) == set(range(n_classes))


def test_summary_is_one_deterministic_line(digits):
    line = digits.summary()
    assert "\n" not in line and line == data.load_digits().summary()
    assert line.startswith("digits: train ") and "1x8x8" in line and "10 classes" in line
    assert f"test {len(digits.test.y)}" in line


def test_digits_cover_all_examples_once(digits):
    from sklearn.datasets import load_digits

    raw = (load_digits().images / 16.0).astype(np.float32).reshape(1797, -1)
    ours = np.concatenate([s.x.reshape(len(s.x), -1) for s in _all_splits(digits)])
    order = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731 - sort rows for a multiset compare
    np.testing.assert_array_equal(order(ours), order(raw))
    assert digits.train.x.max() == 1.0  # 16 / 16


@pytest.mark.parametrize("loader", [data.load_digits, data.load_faces, data.load_textures])
def test_same_seed_same_arrays_other_seed_differs(loader):
    a, b, c = loader(seed=3), loader(seed=3), loader(seed=4)
    for sa, sb in zip(_all_splits(a), _all_splits(b), strict=True):
        np.testing.assert_array_equal(sa.x, sb.x)
        np.testing.assert_array_equal(sa.y, sb.y)
    assert not np.array_equal(a.train.y, c.train.y)


@pytest.mark.parametrize("name", ["digits", "faces"])
def test_stratified_split_proportions(request, name):
    ds = request.getfixturevalue(name)
    counts = np.stack([np.bincount(s.y, minlength=len(ds.classes)) for s in _all_splits(ds)])
    per_class = counts.sum(axis=0)
    np.testing.assert_allclose(counts[1], per_class * 0.15, atol=1)
    np.testing.assert_allclose(counts[2], per_class * 0.2, atol=1)


def test_stratified_indices_partition():
    y = np.repeat(np.arange(4), [10, 20, 30, 41])
    tr, va, te = data.stratified_indices(y, 0.25, 0.1, seed=1)
    everything = np.concatenate([tr, va, te])
    np.testing.assert_array_equal(np.sort(everything), np.arange(len(y)))
    assert tr.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y[va]), np.round(np.bincount(y) * 0.25))


def test_faces_labels():
    faces = data.load_faces(val_fraction=0, test_fraction=0)
    assert faces.classes == ("non-face", "face")
    assert np.bincount(faces.train.y).tolist() == [100, 100]
    assert len(faces.val.y) == 0 and faces.val.x.shape == (0, 1, 25, 25)


def test_textures_balanced_and_counts(textures):
    k = len(data.TEXTURES)
    assert textures.classes == data.TEXTURES
    assert [len(s.y) for s in _all_splits(textures)] == [520 * k, 120 * k, 160 * k]
    for split in _all_splits(textures):
        counts = np.bincount(split.y, minlength=k)
        assert (counts == counts[0]).all()


def test_texture_patches_do_not_leak(textures):
    def keys(split):
        return {row.tobytes() for row in split.x.reshape(len(split.x), -1)}

    train, val, test = (keys(s) for s in _all_splits(textures))
    assert not train & test and not train & val and not val & test


def test_texture_patches_come_from_their_band():
    p = 16
    ds = data.load_textures(patch_size=p, patches_per_class=20, val_fraction=0.25, test_fraction=0.25)
    image = data._texture_image("brick").astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(image, (p, p))
    h = image.shape[0]
    bands = [(0, h // 2), (h // 2, 3 * h // 4), (3 * h // 4, h)]
    for split, (lo, hi) in zip(_all_splits(ds), bands, strict=True):
        patch = split.x[split.y == 0][0, 0]
        rows, _ = np.nonzero((windows == patch).all(axis=(2, 3)))
        assert len(rows) >= 1 and lo <= rows.min() and rows.max() + p <= hi


def test_textures_not_separable_by_brightness_alone(textures):
    """Each photograph is standardized: class mean brightness is close to 0.5 for all."""
    means = [textures.train.x[textures.train.y == c].mean() for c in range(len(textures.classes))]
    assert np.ptp(means) < 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patch_size": 200}, "patch_size must be between 1 and"),
        ({"patch_size": 0}, "patch_size must be between 1 and"),
        ({"patches_per_class": 0}, "patches_per_class must be >= 1"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction + test_fraction < 1"),
        ({"val_fraction": -0.1}, "in [0, 1)"),
    ],
)
def test_textures_errors(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        data.load_textures(**kwargs)


@pytest.mark.parametrize("loader", [data.load_digits, data.load_faces])
def test_fraction_errors(loader):
    with pytest.raises(ValueError, match="got 0.6 \\+ 0.5"):
        loader(val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ValueError, match="got 1.5 and 0.2"):
        loader(val_fraction=1.5)


@pytest.mark.parametrize(
    ("name", "gray", "ndim"),
    [("astronaut", False, 3), ("astronaut", True, 2), ("camera", False, 2), ("logo", False, 3)],
)
def test_load_photo_shapes(name, gray, ndim):
    photo = data.load_photo(name, gray=gray)
    assert photo.dtype == np.float32 and photo.ndim == ndim
    assert photo.min() >= 0 and photo.max() <= 1
    if ndim == 3:
        assert photo.shape[2] == 3  # logo's alpha channel is dropped


def test_load_photo_resize():
    assert data.load_photo("coffee", size=(40, 60)).shape == (40, 60, 3)
    assert data.load_photo("moon", size=(16, 8)).shape == (16, 8)


def test_every_photo_loads_offline():
    for name in data.PHOTOS:
        assert data.load_photo(name, gray=True).ndim == 2


def test_load_photo_errors():
    with pytest.raises(ValueError, match="unknown photo 'nope'; expected one of astronaut"):
        data.load_photo("nope")
    with pytest.raises(ValueError, match=r"size=\(h, w\)"):
        data.load_photo("camera", size=(0, 5))


def test_to_tensor():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    a.flags.writeable = False
    t = data.to_tensor(a, CPU, torch.float32)
    assert t.dtype == torch.float32 and t.device == CPU and t.shape == (2, 3)
    assert data.to_tensor(np.arange(3)).dtype == torch.int64


def _loader(n=10, batch_size=4, **kwargs):
    x = np.arange(n * 2, dtype=np.float64).reshape(n, 1, 2)
    y = np.arange(n)
    return data.DeviceLoader(x, y, batch_size, device=CPU, **kwargs)


def test_device_loader_attributes():
    loader = _loader()
    assert loader.x.dtype == torch.float32 and loader.y.dtype == torch.int64
    assert loader.device == CPU and loader.x.device == CPU
    assert loader.num_examples == 10 and loader.batch_size == 4


@pytest.mark.parametrize(("drop_last", "sizes"), [(False, [4, 4, 2]), (True, [4, 4])])
def test_device_loader_batches(drop_last, sizes):
    loader = _loader(drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(batches) == len(sizes)
    assert [len(yb) for _, yb in batches] == sizes
    assert [xb.shape[0] for xb, _ in batches] == sizes
    for xb, yb in batches:
        assert xb.device == CPU and yb.device == CPU
        torch.testing.assert_close(xb[:, 0, 0], 2.0 * yb.float())  # rows stay paired
    if not drop_last:  # unshuffled: in order
        assert torch.cat([yb for _, yb in batches]).tolist() == list(range(10))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 50), batch_size=st.integers(1, 20), seed=st.integers(0, 2**31))
def test_device_loader_covers_each_example_once(n, batch_size, seed):
    loader = _loader(n, batch_size, shuffle=True, seed=seed)
    seen = torch.cat([yb for _, yb in loader] or [torch.zeros(0, dtype=torch.int64)])
    assert sorted(seen.tolist()) == list(range(n))
    assert len(loader) == -(-n // batch_size)


def test_device_loader_shuffles_per_epoch_reproducibly():
    a, b = _loader(100, 10, shuffle=True, seed=7), _loader(100, 10, shuffle=True, seed=7)
    epochs_a = [torch.cat([yb for _, yb in a]) for _ in range(3)]
    epochs_b = [torch.cat([yb for _, yb in b]) for _ in range(3)]
    for ea, eb in zip(epochs_a, epochs_b, strict=True):
        assert torch.equal(ea, eb)
    assert not torch.equal(epochs_a[0], epochs_a[1])
    assert not torch.equal(epochs_a[0], torch.arange(100))
    other = torch.cat([yb for _, yb in _loader(100, 10, shuffle=True, seed=8)])
    assert not torch.equal(epochs_a[0], other)


def test_device_loader_accepts_tensors_and_default_device():
    loader = data.DeviceLoader(torch.zeros(5, 1, 2, 2, dtype=torch.float64), torch.arange(5), 2)
    assert loader.x.dtype == torch.float32 and loader.x.device.type == loader.device.type


def test_device_loader_errors():
    with pytest.raises(ValueError, match="same length, got 3 and 2"):
        data.DeviceLoader(np.zeros((3, 1)), np.zeros(2), 1, device=CPU)
    with pytest.raises(ValueError, match=r"batch_size must be >= 1"):
        data.DeviceLoader(np.zeros((3, 1)), np.zeros(3), 0, device=CPU)
    with pytest.raises(ValueError, match=r"y must have shape \(N,\)"):
        data.DeviceLoader(np.zeros((3, 1)), np.zeros((3, 1)), 2, device=CPU)


def test_datasplits_loaders(digits):
    train, val, test = digits.loaders(64, device=CPU, seed=1)
    assert train.shuffle and not val.shuffle and not test.shuffle
    assert train.num_examples == len(digits.train.y) and len(val) == -(-len(digits.val.y) // 64)
    xb, yb = next(iter(test))
    np.testing.assert_array_equal(xb.numpy(), digits.test.x[:64])
    np.testing.assert_array_equal(yb.numpy(), digits.test.y[:64])


# ---------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_splits(tmp_path, fake_fashion):
    arrays = fake_fashion(tmp_path / "f")
    ds = data.load_fashion_mnist(tmp_path / "f", val_fraction=0.1, seed=0)
    assert ds.name == "fashion-mnist" and len(ds.classes) == 10
    assert [len(s.y) for s in (ds.train, ds.val, ds.test)] == [180, 20, 30]
    for split in (ds.train, ds.val, ds.test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        assert split.x.shape == (len(split.y), 1, 28, 28)
        assert 0 <= split.x.min() and split.x.max() <= 1
    np.testing.assert_array_equal(np.bincount(ds.val.y), np.full(10, 2))  # stratified
    np.testing.assert_array_equal(np.rint(ds.test.x[:, 0] * 255), arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.test.y, arrays["t10k-labels-idx1-ubyte"])
    # train and val together are the training file, each image once, with its own label
    images = np.rint(np.concatenate([ds.train.x, ds.val.x])[:, 0] * 255).astype(np.uint8)
    labels = np.concatenate([ds.train.y, ds.val.y])
    raw, raw_labels = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    rows = {img.tobytes(): lab for img, lab in zip(raw, raw_labels, strict=True)}
    assert len(rows) == len(raw) == len(images)
    assert all(rows[img.tobytes()] == lab for img, lab in zip(images, labels, strict=True))


def test_fashion_mnist_train_size_is_stratified_and_deterministic(tmp_path, fake_fashion):
    fake_fashion(tmp_path / "f")
    a = data.load_fashion_mnist(tmp_path / "f", train_size=50, seed=3)
    b = data.load_fashion_mnist(tmp_path / "f", train_size=50, seed=3)
    c = data.load_fashion_mnist(tmp_path / "f", train_size=50, seed=4)
    assert len(a.train.y) == 50 and np.bincount(a.train.y).tolist() == [5] * 10
    np.testing.assert_array_equal(a.train.x, b.train.x)
    assert not np.array_equal(a.train.x, c.train.x)
    full = data.load_fashion_mnist(tmp_path / "f", seed=3)
    np.testing.assert_array_equal(a.val.x, full.val.x)  # the subset leaves val alone
    train_rows = {x.tobytes() for x in full.train.x}
    assert all(x.tobytes() in train_rows for x in a.train.x)  # drawn from train, not val
    assert len(data.load_fashion_mnist(tmp_path / "f", train_size=13).train.y) == 13


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_size": 0}, r"train_size must be None or an int in 1..180 .* got 0"),
        ({"train_size": 181}, r"got 181"),
        ({"train_size": 2.5}, r"got 2.5"),
        ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\), got 1.0"),
    ],
)
def test_fashion_mnist_bad_arguments(tmp_path, fake_fashion, kwargs, message):
    fake_fashion(tmp_path / "f")
    with pytest.raises(ValueError, match=message):
        data.load_fashion_mnist(tmp_path / "f", **kwargs)


def test_fashion_mnist_missing_files_message(tmp_path, fake_fashion):
    with pytest.raises(FileNotFoundError, match="make data"):
        data.load_fashion_mnist()


@given(
    counts=st.lists(st.integers(1, 40), min_size=1, max_size=8),
    frac=st.floats(0.01, 1.0),
    seed=st.integers(0, 100),
)
@settings(max_examples=60)
def test_stratified_subset_properties(counts, frac, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    size = max(1, round(frac * len(y)))
    idx = data.stratified_subset(y, size, seed)
    assert idx.dtype == np.int64 and len(idx) == size == len(np.unique(idx))
    taken = np.bincount(y[idx], minlength=len(counts))
    assert np.all(np.abs(taken - np.array(counts) * size / len(y)) < 1 + 1e-9)
    np.testing.assert_array_equal(idx, data.stratified_subset(y, size, seed))


def test_stratified_subset_rejects_bad_size():
    with pytest.raises(ValueError, match=r"size must be an int in 1..5, got 6"):
        data.stratified_subset(np.arange(5), 6)


@needs_fashion_mnist
def test_real_fashion_mnist():
    ds = data.load_fashion_mnist(train_size=1000, seed=0)
    assert [len(s.y) for s in (ds.train, ds.val, ds.test)] == [1000, 6000, 10000]
    assert np.bincount(ds.train.y).tolist() == [100] * 10
    assert np.bincount(ds.val.y).tolist() == [600] * 10
    assert ds.train.x.shape[1:] == (1, 28, 28)


def test_downsample_averages_blocks_and_keeps_the_dtype():
    x = np.arange(2 * 3 * 4 * 6, dtype=np.float32).reshape(2, 3, 4, 6)
    y = data.downsample(x)
    assert y.shape == (2, 3, 2, 3) and y.dtype == np.float32
    assert y[1, 2, 1, 2] == x[1, 2, 2:4, 4:6].mean()
    np.testing.assert_allclose(data.downsample(x, 1), x)
    torch_y = torch.nn.functional.avg_pool2d(torch.from_numpy(x), 2).numpy()
    np.testing.assert_allclose(y, torch_y, rtol=1e-6)
    with pytest.raises(ValueError, match=r"multiples of 4, got shape \(2, 3, 4, 6\)"):
        data.downsample(x, 4)
    with pytest.raises(ValueError, match="factor must be an int >= 1, got 0"):
        data.downsample(x, 0)
