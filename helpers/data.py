"""The book's datasets and batching that stays on the device.

- ``load_fashion_mnist``: Fashion-MNIST, 70,000 28x28 clothing images in 10 classes, the
  book's main data set, read from local files (``helpers.data_files`` finds and verifies them).

The small ones load offline from files shipped inside installed packages (scikit-learn and
scikit-image):

- ``load_digits``: 1,797 handwritten digits, 8x8, 10 classes.
- ``load_textures``: patches cut from real texture photographs, one class per photograph.
- ``load_faces``: 200 25x25 images, faces and non-faces.
- ``load_photo``: one bundled photograph for demos (convolution, pooling, ...).

Images are float32 in [0, 1], laid out (N, C, H, W); labels are int64 (N,).
Every ``load_*`` here and in ``helpers.standard_datasets`` takes its arguments in one order,
keyword-only after the folder: ``root`` (where files are read from, if any), the sizes,
``val_fraction`` (and ``test_fraction``), ``seed``, then ``download``.
``DeviceLoader`` moves a whole split to the device once and slices batches there.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from helpers import data_files
from helpers.device import best_device


class Split(NamedTuple):
    """One split of a dataset: x (N, C, H, W) float32 in [0, 1], y (N,) int64."""

    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class DataSplits:
    """A dataset cut into train / val / test splits, with the names of its classes."""

    name: str
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...]

    def summary(self) -> str:
        """One line: name, examples per split, image shape (C x H x W), number of classes."""
        shape = "x".join(str(s) for s in self.train.x.shape[1:])
        return (
            f"{self.name}: train {len(self.train.y)}, val {len(self.val.y)}, "
            f"test {len(self.test.y)}; images {shape}; {len(self.classes)} classes"
        )

    def loaders(self, batch_size: int, device=None, seed: int = 0):
        """Return (train, val, test) ``DeviceLoader``s; only train is shuffled."""
        train = DeviceLoader(*self.train, batch_size, shuffle=True, seed=seed, device=device)
        val = DeviceLoader(*self.val, batch_size, device=device)
        test = DeviceLoader(*self.test, batch_size, device=device)
        return train, val, test


def _check_fractions(where: str, val_fraction: float, test_fraction: float) -> None:
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1):
        raise ValueError(
            f"{where}: expected val_fraction and test_fraction in [0, 1), "
            f"got {val_fraction} and {test_fraction}"
        )
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"{where}: expected val_fraction + test_fraction < 1 so that some training data "
            f"is left, got {val_fraction} + {test_fraction} = {val_fraction + test_fraction}"
        )


def stratified_indices(y: np.ndarray, val_fraction: float, test_fraction: float, seed: int = 0):
    """Deterministic stratified split of ``range(len(y))`` into (train, val, test) indices.

    y: (N,) integer labels. Within each class, round(n_c * fraction) examples go to val and
    to test, the rest to train. Each returned index array (int64) is in shuffled order;
    together they cover every index exactly once. Same seed -> same indices.
    """
    _check_fractions("stratified_indices", val_fraction, test_fraction)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for label in np.unique(y):  # a loop over classes, not examples
        idx = rng.permutation(np.flatnonzero(y == label))
        n_test = round(len(idx) * test_fraction)
        n_val = round(len(idx) * val_fraction)
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    return tuple(rng.permutation(np.concatenate(p)).astype(np.int64) for p in parts)


def split_arrays(name, x, y, classes, val_fraction, test_fraction, seed) -> DataSplits:
    """Cut (x (N, C, H, W) float32, y (N,) int64) into stratified ``DataSplits``."""
    tr, va, te = stratified_indices(y, val_fraction, test_fraction, seed)
    return DataSplits(
        name, Split(x[tr], y[tr]), Split(x[va], y[va]), Split(x[te], y[te]), tuple(classes)
    )


def load_digits(*, val_fraction: float = 0.15, test_fraction: float = 0.2, seed: int = 0):
    """scikit-learn's handwritten digits: 1,797 images, x (N, 1, 8, 8) float32 in [0, 1].

    Pixel values 0..16 are divided by 16. Splits are stratified and depend only on ``seed``.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    _check_fractions("load_digits", val_fraction, test_fraction)
    bunch = sk_load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    y = bunch.target.astype(np.int64)
    classes = [str(c) for c in range(10)]
    return split_arrays("digits", x, y, classes, val_fraction, test_fraction, seed)


def stratified_subset(y: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """``size`` indices into y (N,), stratified by class, in shuffled order (int64).

    Each class gets its share of ``size`` in proportion to its count (largest remainders
    break ties, so the total is exactly ``size``). Same seed -> same indices.
    """
    labels, counts = np.unique(y, return_counts=True)
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not 0 < size <= len(y):
        raise ValueError(f"stratified_subset: size must be an int in 1..{len(y)}, got {size!r}")
    share = counts * size / len(y)
    take = np.floor(share).astype(int)
    order = np.argsort(-(share - take), kind="stable")
    take[order[: size - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    parts = [
        rng.choice(np.flatnonzero(y == label), n, replace=False)
        for label, n in zip(labels, take, strict=True)
    ]  # a loop over classes, not examples
    return rng.permutation(np.concatenate(parts)).astype(np.int64)


_FASHION_CACHE: dict[tuple, dict[str, np.ndarray]] = {}


def _fashion_arrays(root, download: bool) -> dict[str, np.ndarray]:
    """The verified uint8 arrays, kept in memory after the first load (keyed on the files'
    paths, sizes and times, so a replaced file is read again)."""
    paths = data_files.find_fashion_mnist(root, download)
    key = tuple((str(p), os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths.values())
    if key not in _FASHION_CACHE:
        _FASHION_CACHE.clear()
        _FASHION_CACHE[key] = data_files.read_fashion_mnist(root, download)
    return _FASHION_CACHE[key]


def load_fashion_mnist(
    root=None, *, train_size: int | None = None, val_fraction: float = 0.1, seed: int = 0,
    download: bool = False,
) -> DataSplits:  # fmt: skip
    """Fashion-MNIST: x (N, 1, 28, 28) float32 in [0, 1], y (N,) int64, 10 classes.

    val: ``val_fraction`` of the 60,000 training images, stratified by class and chosen by
    ``seed``. train: the rest, or with ``train_size=k`` a stratified, seed-deterministic
    subset of k of them. test: the 10,000 test images, in file order.

    Files are found by ``helpers.data_files.find_fashion_mnist``: ``root`` alone when given;
    else ``BOOK_DATA_DIR``, Debian's ``dataset-fashion-mnist`` package, the user cache;
    ``download=True`` fetches them into the cache when no place has them. Each file is
    checked against its SHA-256 (once; the result is remembered).
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"load_fashion_mnist: val_fraction must be in [0, 1), got {val_fraction}")
    arrays = _fashion_arrays(root, download)
    images, labels = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    test_images, test_labels = arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]
    tr, va, _ = stratified_indices(labels, val_fraction, 0.0, seed)
    if train_size is not None:
        if (
            isinstance(train_size, bool)
            or not isinstance(train_size, int | np.integer)
            or not 0 < train_size <= len(tr)
        ):
            raise ValueError(
                f"load_fashion_mnist: train_size must be None or an int in 1..{len(tr)} "
                f"(the training images left after val_fraction={val_fraction}), got {train_size!r}"
            )
        tr = tr[stratified_subset(labels[tr], int(train_size), seed)]

    def split(x, y, idx=slice(None)):
        return Split((x[idx].astype(np.float32) / 255.0)[:, None], y[idx].astype(np.int64))

    return DataSplits(
        "fashion-mnist", split(images, labels, tr), split(images, labels, va),
        split(test_images, test_labels), data_files.FASHION_MNIST_CLASSES,
    )  # fmt: skip


def load_faces(*, val_fraction: float = 0.15, test_fraction: float = 0.2, seed: int = 0):
    """scikit-image's LFW subset: 100 faces and 100 non-faces, x (200, 1, 25, 25) float32.

    Classes ("non-face", "face") with labels 0 and 1. Splits are stratified.
    """
    _check_fractions("load_faces", val_fraction, test_fraction)
    images = _skimage_data("lfw_subset")  # (200, 25, 25) float64; first 100 are faces
    x = np.clip(images, 0, 1).astype(np.float32)[:, None]
    y = np.r_[np.ones(100), np.zeros(len(images) - 100)].astype(np.int64)
    return split_arrays("faces", x, y, ("non-face", "face"), val_fraction, test_fraction, seed)


def _skimage_data(name: str) -> np.ndarray:
    """``skimage.data.<name>()``, without the warning that pooch's ``tqdm.auto`` import prints
    into notebooks when ipywidgets is absent (nothing here downloads or shows a bar)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import skimage.data

        return getattr(skimage.data, name)()


TEXTURES = ("brick", "grass", "gravel", "moon", "immunohistochemistry", "hubble_deep_field")


def _texture_image(name: str) -> np.ndarray:
    """A bundled photograph as gray float64, standardized to mean 0.5, std 0.15, clipped."""
    image = load_photo(name, gray=True).astype(np.float64)
    image = (image - image.mean()) / image.std() * 0.15 + 0.5
    return np.clip(image, 0.0, 1.0)


def _random_patches(region: np.ndarray, n: int, p: int, rng) -> np.ndarray:
    """n distinct (p, p) patches from a 2-D region, sampled without a loop. Returns (n, p, p)."""
    windows = np.lib.stride_tricks.sliding_window_view(region, (p, p))  # (h', w', p, p)
    count = windows.shape[0] * windows.shape[1]
    flat = rng.choice(count, size=n, replace=n > count)
    rows, cols = np.divmod(flat, windows.shape[1])
    return windows[rows, cols]


def load_textures(
    *,
    patch_size: int = 32,
    patches_per_class: int = 800,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    seed: int = 0,
):
    """Texture patches cut from scikit-image photographs: x (N, 1, P, P) float32 in [0, 1].

    One class per photograph in ``TEXTURES``. Each photograph is standardized to the same
    mean and standard deviation (so brightness alone does not give the class away) and cut
    into three disjoint horizontal bands, top to bottom train / val / test, with heights
    in proportion to the fractions. Patches are sampled only inside their band, so no test
    patch shares a pixel with a training patch. Per class: round(patches_per_class *
    fraction) val and test patches, the rest train.
    """
    _check_fractions("load_textures", val_fraction, test_fraction)
    if patches_per_class < 1:
        raise ValueError(f"load_textures: patches_per_class must be >= 1, got {patches_per_class}")
    n_test = round(patches_per_class * test_fraction)
    n_val = round(patches_per_class * val_fraction)
    counts = (patches_per_class - n_val - n_test, n_val, n_test)
    rng = np.random.default_rng(seed)
    xs: list[list[np.ndarray]] = [[], [], []]
    ys: list[list[np.ndarray]] = [[], [], []]
    for label, name in enumerate(TEXTURES):
        image = _texture_image(name)
        h = image.shape[0]
        cuts = [0, round(h * (1 - val_fraction - test_fraction)), round(h * (1 - test_fraction)), h]
        for k in range(3):
            if counts[k] == 0:
                continue
            region = image[cuts[k] : cuts[k + 1]]
            if not 1 <= patch_size <= min(region.shape):
                raise ValueError(
                    f"load_textures: patch_size must be between 1 and {min(region.shape)} "
                    f"(the smallest band of {name!r} is {region.shape}), got {patch_size}"
                )
            xs[k].append(_random_patches(region, counts[k], patch_size, rng))
            ys[k].append(np.full(counts[k], label, dtype=np.int64))
    splits = []
    for k in range(3):
        if xs[k]:
            x = np.concatenate(xs[k]).astype(np.float32)[:, None]
            y = np.concatenate(ys[k])
        else:
            x = np.zeros((0, 1, patch_size, patch_size), np.float32)
            y = np.zeros(0, np.int64)
        order = rng.permutation(len(y))
        splits.append(Split(x[order], y[order]))
    return DataSplits("textures", *splits, classes=TEXTURES)


PHOTOS = (
    "astronaut", "brick", "camera", "cell", "chelsea", "coffee", "coins", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "logo", "moon", "page", "retina", "rocket",
    "text",
)  # fmt: skip


def load_photo(name: str, *, gray: bool = False, size: tuple[int, int] | None = None):
    """A photograph bundled with scikit-image, float32 in [0, 1].

    Returns (H, W) when ``gray`` or the photograph is grayscale, else (H, W, 3) (any alpha
    channel is dropped). ``size=(h, w)`` resizes with anti-aliasing.
    """
    from skimage.color import rgb2gray
    from skimage.transform import resize
    from skimage.util import img_as_float32

    if name not in PHOTOS:
        raise ValueError(f"load_photo: unknown photo {name!r}; expected one of {', '.join(PHOTOS)}")
    image = img_as_float32(_skimage_data(name))
    if image.ndim == 3:
        image = image[..., :3]
        if gray:
            image = rgb2gray(image)
    if size is not None:
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"load_photo: expected size=(h, w) with h, w >= 1, got {size}")
        image = resize(image, tuple(size) + image.shape[2:], anti_aliasing=True)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def downsample(x: np.ndarray, factor: int = 2) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks: x (N, C, H, W) -> (N, C, H // factor, W // factor).

    H and W must be multiples of ``factor``; Fashion-MNIST's 28x28 becomes 14x14 with the
    default. The dtype is kept.
    """
    x = np.asarray(x)
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 1:
        raise ValueError(f"downsample: factor must be an int >= 1, got {factor!r}")
    if x.ndim != 4 or x.shape[2] % factor or x.shape[3] % factor:
        raise ValueError(
            f"downsample: expected x (N, C, H, W) with H and W multiples of {factor}, "
            f"got shape {x.shape}"
        )
    n, c, h, w = x.shape
    blocks = x.reshape(n, c, h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(3, 5), dtype=x.dtype)


def to_tensor(array, device=None, dtype=None) -> torch.Tensor:
    """A NumPy array (or tensor) as a tensor on ``device`` (default: where it already is)."""
    if isinstance(array, np.ndarray) and not array.flags.writeable:
        array = array.copy()
    return torch.as_tensor(array, dtype=dtype, device=device)


class DeviceLoader:
    """Mini-batches from tensors that live on the device for the whole training run.

    x: (N, ...) array or tensor, stored as float32; y: (N,) stored as int64. Both are moved
    to ``device`` once (default ``helpers.device.best_device()``). Iterating yields
    (x_batch (B, ...), y_batch (B,)) on that device; the last batch is smaller unless
    ``drop_last``. With ``shuffle``, each pass draws a new permutation on the device from a
    ``torch.Generator`` seeded with ``seed``, so two loaders with the same seed agree.
    """

    def __init__(
        self,
        x,
        y,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        device=None,
        drop_last: bool = False,
    ):
        if len(x) != len(y):
            raise ValueError(
                f"DeviceLoader: x and y must have the same length, got {len(x)} and {len(y)}"
            )
        if int(batch_size) < 1:
            raise ValueError(f"DeviceLoader: batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device) if device is not None else best_device()
        self.x = to_tensor(x, self.device, torch.float32)
        self.y = to_tensor(y, self.device, torch.int64)
        if self.y.ndim != 1:
            raise ValueError(f"DeviceLoader: y must have shape (N,), got {tuple(self.y.shape)}")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.num_examples = len(self.y)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_examples // self.batch_size
        return math.ceil(self.num_examples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, b = self.num_examples, self.batch_size
        order = None
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator, device=self.device)
        for i in range(len(self)):
            if order is None:
                yield self.x[i * b : (i + 1) * b], self.y[i * b : (i + 1) * b]
            else:
                idx = order[i * b : (i + 1) * b]
                yield self.x[idx], self.y[idx]
