"""Batched torch augmentations: shapes, ranges, identities, exact mixing weights, NumPy/SciPy
references, reproducibility and every ValueError."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from helpers import augment as A


def images(n=6, c=3, h=12, w=10, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g, dtype=dtype)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


RANDOM_TRANSFORMS = {
    "random_hflip": lambda x, g: A.random_hflip(x, 0.5, generator=g),
    "random_crop": lambda x, g: A.random_crop(x, 3, generator=g),
    "random_crop_reflect": lambda x, g: A.random_crop(x, 3, "reflect", generator=g),
    "random_affine": lambda x, g: A.random_affine(x, 30, (0.8, 1.2), 10, 0.1, generator=g),
    "color_jitter": lambda x, g: A.color_jitter(x, 0.4, 0.4, 0.4, generator=g),
    "gaussian_noise": lambda x, g: A.gaussian_noise(x, 0.2, generator=g),
    "random_blur": lambda x, g: A.random_blur(x, (0.5, 1.5), generator=g),
    "cutout": lambda x, g: A.cutout(x, 5, generator=g),
    "random_erasing": lambda x, g: A.random_erasing(x, 1.0, value="random", generator=g),
    "rand_augment": lambda x, g: A.rand_augment(x, 2, 9, generator=g),
    "adjust_sharpness": lambda x, g: A.adjust_sharpness(x, 2.0),
    "random_hue": lambda x, g: A.random_hue(x, 0.3, generator=g),
    "random_grayscale": lambda x, g: A.random_grayscale(x, 1.0, generator=g),
    "salt_and_pepper": lambda x, g: A.salt_and_pepper(x, 0.1, 0.1, generator=g),
    "random_perspective": lambda x, g: A.random_perspective(x, 0.3, generator=g),
    "random_resized_crop": lambda x, g: A.random_resized_crop(x, (12, 10), generator=g),
    "mosaic": lambda x, g: A.mosaic(x, generator=g)[0],
    "equalize": lambda x, g: A.equalize(x),
    "sobel": lambda x, g: A.sobel(x),
}


@pytest.mark.parametrize("name", RANDOM_TRANSFORMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_range_and_repeatability(name, dtype):
    fn = RANDOM_TRANSFORMS[name]
    x = images(dtype=dtype)
    y = fn(x, gen(1))
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert y.min() >= 0 and y.max() <= 1
    torch.testing.assert_close(y, fn(x, gen(1)))  # the same generator seed, the same draw
    assert not torch.equal(y, x)


def test_random_choices_differ_between_images():
    x = images(n=1).expand(64, -1, -1, -1).contiguous()
    for name in ("random_crop", "random_affine", "cutout", "rand_augment", "color_jitter"):
        y = RANDOM_TRANSFORMS[name](x, gen(2))
        distinct = torch.unique(y.flatten(1), dim=0).shape[0]
        assert distinct > 8, f"{name}: only {distinct} distinct outputs from 64 copies"


def test_flip_twice_is_the_identity_and_matches_numpy():
    x = images()
    torch.testing.assert_close(A.hflip(A.hflip(x)), x, rtol=0, atol=0)
    np.testing.assert_array_equal(A.hflip(x).numpy(), x.numpy()[..., ::-1])
    y = A.random_hflip(x, 0.5, generator=gen(3))
    flipped = (y == x.flip(-1)).flatten(1).all(1)
    kept = (y == x).flatten(1).all(1)
    assert torch.all(flipped | kept)
    assert torch.equal(A.random_hflip(x, 0.0), x) and torch.equal(A.random_hflip(x, 1.0), x.flip(-1))


def test_translate_matches_numpy_slicing_and_padding_modes():
    x = images(n=3, c=2, h=7, w=9)
    shifts = torch.tensor([[2, -3], [0, 0], [-1, 4]])
    out = A.translate(x, shifts).numpy()
    for n, (dy, dx) in enumerate(shifts.tolist()):
        ref = np.zeros((2, 7, 9), np.float32)
        src = x[n].numpy()
        ref[:, max(dy, 0) : 7 + min(dy, 0), max(dx, 0) : 9 + min(dx, 0)] = \
            src[:, max(-dy, 0) : 7 + min(-dy, 0), max(-dx, 0) : 9 + min(-dx, 0)]
        np.testing.assert_array_equal(out[n], ref)
    for mode, np_mode in (("reflect", "reflect"), ("replicate", "edge")):
        got = A.translate(x, shifts, mode).numpy()
        for n, (dy, dx) in enumerate(shifts.tolist()):
            padded = np.pad(x[n].numpy(), ((0, 0), (4, 4), (4, 4)), mode=np_mode)
            ref = padded[:, 4 - dy : 4 - dy + 7, 4 - dx : 4 - dx + 9]
            np.testing.assert_array_equal(got[n], ref)


def test_crop_windows_match_numpy_slicing():
    x = images(n=4, c=2, h=9, w=11)
    tops, lefts = torch.tensor([0, 4, 2, 1]), torch.tensor([6, 0, 3, 2])
    out = A.crop(x, tops, lefts, 5)
    for n in range(4):
        t, left = int(tops[n]), int(lefts[n])
        np.testing.assert_array_equal(out[n].numpy(), x[n, :, t : t + 5, left : left + 5].numpy())
    np.testing.assert_array_equal(A.center_crop(x, 5).numpy(), x[..., 2:7, 3:8].numpy())
    assert A.random_window(images(50, 1, 9, 11), 5, generator=gen()).shape == (50, 1, 5, 5)
    full = A.random_window(images(3, 1, 6, 6), 6, generator=gen())
    assert torch.equal(full, images(3, 1, 6, 6))


def test_random_window_positions_are_uniform():
    x = torch.arange(10.0).reshape(1, 1, 1, 10).expand(4000, 1, 3, 10).contiguous() / 10
    left = (A.random_window(x, 3, generator=gen()) * 10).round()[:, 0, 0, 0].long()
    counts = torch.bincount(left, minlength=8)
    assert counts.shape == (8,) and counts.min() > 400  # 8 positions, about 500 each


def test_random_crop_with_zero_padding_is_the_identity():
    x = images()
    assert torch.equal(A.random_crop(x, 0, generator=gen()), x)


def _scipy_affine(image, height, width, angle, scale, shear_x, tx, ty):
    """Reference: scipy.ndimage.affine_transform in (row, col) pixel coordinates."""
    a, s = math.radians(angle), math.tan(math.radians(shear_x))
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    forward = rot @ np.array([[1, s], [0, 1]]) * scale  # (x, y) coordinates
    swap = np.array([[0, 1], [1, 0]])
    inv = swap @ np.linalg.inv(forward) @ swap  # (row, col) coordinates
    centre = np.array([(height - 1) / 2, (width - 1) / 2])
    offset = centre - inv @ (centre + np.array([ty, tx]))
    return np.stack([ndimage.affine_transform(ch, inv, offset, order=1, mode="grid-constant")
                     for ch in image])


@pytest.mark.parametrize("angle, scale, shear, tx, ty", [
    (0, 1, 0, 0, 0), (25, 1, 0, 0, 0), (-40, 1.3, 0, 1.5, -2), (10, 0.8, 15, 0, 0.5),
])
def test_affine_matches_scipy(angle, scale, shear, tx, ty):
    x = images(n=2, c=2, h=11, w=14, dtype=torch.float64)
    theta = A.affine_theta(11, 14, angle=angle, scale=scale, shear_x=shear, tx=tx, ty=ty, n=2)
    ours = A.affine(x, theta.double()).numpy()
    for n in range(2):
        ref = _scipy_affine(x[n].numpy(), 11, 14, angle, scale, shear, tx, ty)
        np.testing.assert_allclose(ours[n], ref, atol=2e-6)


def test_affine_known_matrices():
    x = images(h=10, w=10)
    n = x.shape[0]
    identity = A.affine(x, A.affine_theta(10, 10, n=n))
    torch.testing.assert_close(identity, x)
    rot90 = A.affine(x, A.affine_theta(10, 10, angle=90.0, n=n))
    torch.testing.assert_close(rot90, torch.rot90(x, 1, (-2, -1)), atol=1e-5, rtol=0)
    mirror = A.affine(x, A.affine_theta(10, 10, angle=180.0, n=n))
    torch.testing.assert_close(mirror, x.flip(-1).flip(-2), atol=1e-5, rtol=0)
    shifts = torch.tensor([[1, -2]] * n)
    moved = A.affine(x, A.affine_theta(10, 10, tx=-2.0, ty=1.0, n=n))
    torch.testing.assert_close(moved, A.translate(x, shifts), atol=1e-5, rtol=0)
    theta = A.affine_theta(10, 10, angle=torch.tensor([0.0, 90.0]))
    assert theta.shape == (2, 2, 3)


def test_photometric_identities_and_extremes():
    x = images()
    for fn in (A.adjust_brightness, A.adjust_contrast, A.adjust_saturation, A.adjust_sharpness):
        torch.testing.assert_close(fn(x, 1.0), x)
    assert torch.equal(A.adjust_brightness(x, 0.0), torch.zeros_like(x))
    flat = A.adjust_contrast(x, 0.0)
    assert torch.allclose(flat, flat.mean((1, 2, 3), keepdim=True).expand_as(flat))
    gray = A.adjust_saturation(x, 0.0)
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])
    one_channel = images(c=1)
    torch.testing.assert_close(A.adjust_saturation(one_channel, 0.0), one_channel)
    per_image = A.adjust_brightness(x, torch.linspace(0.5, 1.0, x.shape[0]))
    torch.testing.assert_close(per_image[-1], x[-1])
    torch.testing.assert_close(A.color_jitter(x, 0, 0, 0), x)
    torch.testing.assert_close(A.gaussian_noise(x, 0.0, generator=gen()), x)


def test_gaussian_blur_matches_scipy_and_sigma_zero_is_identity():
    x = images(n=3, c=2, h=16, w=13, dtype=torch.float64)
    sigmas = torch.tensor([0.7, 1.0, 1.6], dtype=torch.float64)
    ours = A.gaussian_blur(x, sigmas, kernel_size=9).numpy()
    for n, s in enumerate(sigmas.tolist()):
        ref = ndimage.gaussian_filter(x[n].numpy(), sigma=(0, s, s), mode="mirror", truncate=4 / s)
        np.testing.assert_allclose(ours[n], ref, atol=1e-12)
    torch.testing.assert_close(A.gaussian_blur(x, 0.0), x)


def test_cutout_and_random_erasing_boxes():
    x = torch.ones(200, 1, 12, 12)
    erased = A.cutout(x, 4, generator=gen()) == 0
    sizes = erased.flatten(1).sum(1)
    assert sizes.max() == 16 and sizes.min() >= 4  # clipped near borders, never larger
    rows, cols = erased.any(3)[:, 0], erased.any(2)[:, 0]
    assert torch.all(erased[:, 0] == (rows[:, :, None] & cols[:, None, :]))  # rectangles
    y = A.random_erasing(x, 1.0, scale=(0.1, 0.2), generator=gen())
    frac = (y == 0).flatten(1).float().mean(1)
    assert frac.min() > 0.03 and frac.max() < 0.3
    assert torch.equal(A.random_erasing(x, 0.0, generator=gen()), x)
    assert torch.equal(A.cutout(x, 0, generator=gen()), x)


def test_box_mask_counts():
    boxes = torch.tensor([[0, 0, 2, 3], [1, 1, 1, 5], [2, 3, 6, 6]])
    mask = A.box_mask(boxes, 5, 5)
    assert mask.shape == (3, 1, 5, 5)
    assert mask.flatten(1).sum(1).tolist() == [6, 0, 6]


def test_mixup_targets_sum_to_one_and_mix_consistently():
    x, y = images(n=8), torch.arange(8) % 4
    torch.manual_seed(0)
    x_mix, targets, lam = A.mixup(x, y, 4, alpha=0.4, generator=gen())
    torch.testing.assert_close(targets.sum(1), torch.ones(8))
    assert lam.shape == (8,) and lam.min() >= 0 and lam.max() <= 1
    assert x_mix.shape == x.shape and x_mix.min() >= 0 and x_mix.max() <= 1
    perm = torch.randperm(8, generator=gen())
    torch.testing.assert_close(x_mix, lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[perm])
    same, _, _ = A.mixup(x, y, 4, lam=1.0, generator=gen())
    torch.testing.assert_close(same, x)


def test_mixup_lambda_follows_beta():
    x, y = torch.zeros(20000, 1, 1, 1), torch.zeros(20000, dtype=torch.long)
    torch.manual_seed(1)
    lam = A.mixup(x, y, 2, alpha=0.5)[2].double()
    assert abs(lam.mean() - 0.5) < 0.01
    assert abs(lam.var() - 1 / 8) < 0.01  # Beta(a, a) variance 1 / (4 (2a + 1))


def test_cutmix_lambda_is_the_kept_area():
    x = torch.arange(2 * 10 * 15, dtype=torch.float32).reshape(2, 1, 10, 15).repeat(32, 1, 1, 1)
    x = x / x.max()
    y = torch.arange(64) % 5
    torch.manual_seed(2)
    x_mix, targets, lam = A.cutmix(x, y, 5, alpha=1.0, generator=gen(4))
    perm = torch.randperm(64, generator=gen(4))
    pasted = (x_mix != x).flatten(1).float().mean(1)
    differs = (x[perm] != x).flatten(1).all(1)  # partners that differ at every pixel
    torch.testing.assert_close((1 - lam)[differs], pasted[differs])
    torch.testing.assert_close(targets.sum(1), torch.ones(64))
    one_hot = F.one_hot(y, 5).float()
    torch.testing.assert_close(targets, lam[:, None] * one_hot + (1 - lam[:, None]) * one_hot[perm])
    keep_all = A.cutmix(x, y, 5, lam=1.0, generator=gen())
    assert torch.equal(keep_all[0], x) and torch.all(keep_all[2] == 1)


def test_cutmix_boxes_are_clipped_at_the_border():
    lam0 = torch.full((500,), 0.5)
    boxes = A.cutmix_boxes(10, 10, lam0, gen())
    assert boxes.min() >= 0 and boxes[:, 2:].max() <= 10
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert areas.max() == 49 and areas.min() < 49  # round(10 sqrt(0.5)) = 7, clipped sometimes


def test_rand_augment_magnitude_zero_and_no_ops_are_identities():
    x = images()
    assert torch.equal(A.rand_augment(x, 3, 0.0, generator=gen()), x)
    assert torch.equal(A.rand_augment(x, 0, 9.0, generator=gen()), x)
    only_identity = A.rand_augment(x, 2, 9.0, ops=("identity",), generator=gen())
    assert torch.equal(only_identity, x)
    weak = (A.rand_augment(x, 1, 1.0, generator=gen()) - x).abs().mean()
    strong = (A.rand_augment(x, 1, 10.0, generator=gen()) - x).abs().mean()
    assert weak < strong


def test_augmented_loader_and_tta():
    x, y = images(n=8), torch.arange(8) % 2
    loader = A.Augmented([(x, y)], images=A.hflip)
    (xa, ya), = list(loader)
    assert len(loader) == 1 and torch.equal(xa, x.flip(-1)) and torch.equal(ya, y)
    mixed = A.Augmented([(x, y)], batch=lambda a, b: A.mixup(a, b, 2, generator=gen())[:2])
    assert next(iter(mixed))[1].shape == (8, 2)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 12 * 10, 2))
    model.train()
    probs = A.tta_probs(model, x, [lambda t: t, A.hflip])
    assert model.training and probs.shape == (8, 2)
    torch.testing.assert_close(probs.sum(1), torch.ones(8))
    single = torch.softmax(model(x), 1)
    torch.testing.assert_close(A.tta_probs(model, x, [lambda t: t]), single)


BAD_CALLS = [
    (lambda: A.hflip(np.zeros((1, 1, 2, 2))), "hflip: x must be a torch.Tensor"),
    (lambda: A.hflip(torch.zeros(1, 2, 2)), r"float tensor \(N, C, H, W\)"),
    (lambda: A.hflip(torch.zeros(1, 1, 2, 2, dtype=torch.long)), "float tensor"),
    (lambda: A.random_hflip(images(), 1.5), r"p must be a finite number in \[0, 1\]"),
    (lambda: A.random_hflip(images(), "a"), "p must be a finite number"),
    (lambda: A.translate(images(), torch.zeros(6, 2), "constant"), "shifts of integers"),
    (lambda: A.translate(images(), torch.zeros(5, 2, dtype=torch.long)), r"shape \(6, 2\)"),
    (lambda: A.translate(images(), torch.zeros(6, 2, dtype=torch.long), "wrap"), "padding_mode"),
    (lambda: A.translate(images(), torch.full((6, 2), 12), "reflect"), "reflect padding needs"),
    (lambda: A.random_crop(images(), -1), r"padding must be an int >= 0"),
    (lambda: A.crop(images(), torch.zeros(6, dtype=torch.long), torch.zeros(6, dtype=torch.long), 13), r"size must be an int in \[1, 10\]"),
    (lambda: A.crop(images(), torch.zeros(5, dtype=torch.long), torch.zeros(6, dtype=torch.long), 4), r"tops and lefts of integers with shape \(6,\)"),
    (lambda: A.crop(images(), torch.zeros(6), torch.zeros(6), 4), "tops and lefts of integers"),
    (lambda: A.crop(images(), torch.full((6,), 9), torch.zeros(6, dtype=torch.long), 4), "inside the image"),
    (lambda: A.center_crop(images(), 0), "center_crop: size must be"),
    (lambda: A.random_window(images(), 11), "random_window: size must be"),
    (lambda: A.affine_theta(8, 8, angle=torch.zeros(2), scale=torch.ones(3)), "of one length"),
    (lambda: A.affine_theta(8, 8, scale=0.0), r"scale must be > 0"),
    (lambda: A.affine(images(), torch.zeros(5, 2, 3)), r"theta must have shape \(6, 2, 3\)"),
    (lambda: A.affine(images(), A.affine_theta(12, 10, n=6), mode="cubic"), "mode must be"),
    (lambda: A.affine(images(), A.affine_theta(12, 10, n=6), padding_mode="wrap"), "padding_mode"),
    (lambda: A.random_affine(images(), degrees=200), "degrees must be a finite number in"),
    (lambda: A.random_affine(images(), scale=(1.2, 0.8)), "scale=\\(lo, hi\\)"),
    (lambda: A.random_affine(images(), shear=90), "shear must be a finite number in"),
    (lambda: A.random_affine(images(), translate=2.0), "translate must be a finite number in"),
    (lambda: A.adjust_brightness(images(), -1.0), r"factor must be >= 0"),
    (lambda: A.adjust_contrast(images(), torch.ones(5)), r"shape \(6,\)"),
    (lambda: A.color_jitter(images(), brightness=-0.1), "brightness must be a finite number in"),
    (lambda: A.gaussian_noise(images(), -0.1), "std must be a finite number in"),
    (lambda: A.gaussian_blur(images(), -1.0), r"sigma must be >= 0"),
    (lambda: A.gaussian_blur(images(), 1.0, kernel_size=4), "odd kernel_size"),
    (lambda: A.gaussian_blur(images(), 1.0, kernel_size=31), "radius < 10"),
    (lambda: A.random_blur(images(), (2.0, 1.0)), "sigma=\\(lo, hi\\)"),
    (lambda: A.cutout(images(), 20), r"size must be an int in \[0, 12\]"),
    (lambda: A.random_erasing(images(), scale=(0.0, 0.5)), "scale=\\(lo, hi\\)"),
    (lambda: A.random_erasing(images(), ratio=(2.0, 1.0)), "ratio=\\(lo, hi\\)"),
    (lambda: A.random_erasing(images(), value=2.0), "value must be a finite number in"),
    (lambda: A.random_erasing(images(), p=-0.5), "p must be a finite number in"),
    (lambda: A.box_mask(torch.zeros(3, 3), 4, 4), r"boxes \(N, 4\)"),
    (lambda: A.mixup(images(), torch.zeros(5, dtype=torch.long), 3), r"shape \(6,\)"),
    (lambda: A.mixup(images(), torch.zeros(6), 3), "integer labels"),
    (lambda: A.mixup(images(), torch.full((6,), 3), 3), r"labels must lie in \[0, 3\)"),
    (lambda: A.mixup(images(), torch.zeros(6, dtype=torch.long), 0), r"num_classes must be an int >= 1"),
    (lambda: A.mixup(images(), torch.zeros(6, dtype=torch.long), 3, alpha=0.0), "alpha must be a finite number in"),
    (lambda: A.cutmix(images(), torch.zeros(6, dtype=torch.long), 3, lam=1.5), r"lam must be in \[0, 1\]"),
    (lambda: A.rand_augment(images(), -1), "num_ops must be an int"),
    (lambda: A.rand_augment(images(), 2, 11.0), "magnitude must be a finite number in"),
    (lambda: A.rand_augment(images(), 2, 1.0, max_magnitude=0.0), "max_magnitude must be a finite number in"),
    (lambda: A.affine_theta(8, 8, angle=torch.zeros(2, 2)), "floats or \\(N,\\) tensors"),
    (lambda: A.rand_augment(images(), 2, 5.0, ops=("rotate", "zoom")), "unknown \\['zoom'\\]"),
    (lambda: A.rand_augment(images(), 2, 5.0, ops=()), "ops is empty"),
    (lambda: A.Augmented([]), "neither"),
    (lambda: A.adjust_hue(images(c=1), 0.1), "expected 3 colour channels"),
    (lambda: A.adjust_hue(images(), 0.7), r"shift must be in \[-0.5, 0.5\]"),
    (lambda: A.random_hue(images(), 0.6), "hue must be a finite number in"),
    (lambda: A.random_grayscale(images(), 1.5), "p must be a finite number in"),
    (lambda: A.equalize(images(), 1), r"levels must be an int in \[2, 65536\]"),
    (lambda: A.salt_and_pepper(images(), 0.6, 0.6), "salt \\+ pepper must be <= 1"),
    (lambda: A.salt_and_pepper(images(), -0.1), "salt must be a finite number in"),
    (lambda: A.homography(torch.zeros(2, 3, 2), torch.zeros(2, 3, 2)), r"\(N, 4, 2\)"),
    (lambda: A.perspective(images(), torch.eye(2)), r"matrix must have shape \(3, 3\)"),
    (lambda: A.random_perspective(images(), 1.0), "distortion must be a finite number in"),
    (lambda: A.resized_crop(images(), torch.zeros(5, 4), 4), r"boxes must have shape \(6, 4\)"),
    (lambda: A.resized_crop(images(), torch.zeros(6, 4), 0), "size must be an int >= 1"),
    (lambda: A.random_resized_crop(images(), 4, scale=(0.5, 2.0)), "scale=\\(lo, hi\\)"),
    (lambda: A.random_resized_crop(images(), 4, ratio=(2.0, 1.0)), "ratio=\\(lo, hi\\)"),
    (lambda: A.mosaic(images(h=11)), "H and W must be even"),
    (lambda: A.mosaic(images(), partners=torch.zeros(6, 2, dtype=torch.long)), r"shape \(6, 3\)"),
    (lambda: A.mixup(images(), torch.zeros(6, dtype=torch.long), 3, partners=torch.arange(5)),
     r"partners must be \(N,\)"),
    (lambda: A.cutmix(images(), torch.zeros(6, dtype=torch.long), 3, partners=torch.full((6,), 6)),
     r"partners must be \(N,\)"),
    (lambda: A.tta_probs(torch.nn.Identity(), images(), []), "at least one transform"),
]


@pytest.mark.parametrize("call, message", BAD_CALLS, ids=[m for _, m in BAD_CALLS])
def test_bad_parameters_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_tta_probs_keeps_a_frozen_batch_norm_frozen():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(), torch.nn.LazyLinear(3)
    )
    model(torch.zeros(2, 1, 6, 6))
    model.train()
    model[1].eval()  # batch norm frozen for fine-tuning
    A.tta_probs(model, torch.rand(4, 1, 6, 6), [lambda x: x, lambda x: x.flip(-1)])
    assert model.training and model[0].training
    assert not model[1].training, "tta_probs switched a frozen batch norm back to training"


# --- the operations added from the source notes, against NumPy references ----------------

YIQ = np.array([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263],
                [0.211456, -0.522591, 0.311135]])


def np_bilinear(img, row, col):
    _, h, w = img.shape
    r0, c0 = np.floor(row).astype(int), np.floor(col).astype(int)
    out = np.zeros((img.shape[0],) + row.shape)
    for r, c in [(r0, c0), (r0 + 1, c0), (r0, c0 + 1), (r0 + 1, c0 + 1)]:
        weight = (1 - np.abs(row - r)) * (1 - np.abs(col - c))
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        out += np.where(inside, weight * img[:, r.clip(0, h - 1), c.clip(0, w - 1)], 0.0)
    return out


def test_hue_matches_a_yiq_rotation_keeps_luma_and_gray_and_turns_full_circle():
    x = images(dtype=torch.float64) * 0.5 + 0.25  # away from the clipping
    shifts = torch.linspace(-0.4, 0.4, 6, dtype=torch.float64)
    out = A.adjust_hue(x, shifts)
    for n, d in enumerate(shifts.tolist()):
        a = 2 * np.pi * d
        rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        ref = np.clip(np.einsum("ij,jhw->ihw", np.linalg.inv(YIQ) @ rot @ YIQ, x[n].numpy()), 0, 1)
        np.testing.assert_allclose(out[n].numpy(), ref, atol=1e-12)
    gray = x.mean(1, keepdim=True).expand_as(x)
    torch.testing.assert_close(A.adjust_hue(gray, 0.3), gray)
    m = A.hue_matrix(torch.tensor([0.5]))[0]
    torch.testing.assert_close(m @ m, torch.eye(3, dtype=torch.float64))  # two half turns
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
    torch.testing.assert_close(luma @ m, luma)  # the luma row is kept


def test_grayscale_is_the_luma_in_every_channel():
    x = images(dtype=torch.float64)
    ref = np.einsum("c,nchw->nhw", [0.299, 0.587, 0.114], x.numpy())[:, None].repeat(3, 1)
    np.testing.assert_allclose(A.grayscale(x).numpy(), ref, atol=1e-12)
    torch.testing.assert_close(A.random_grayscale(x, 0.0, generator=gen()), x)


def np_equalize(ch, levels):
    v = np.round(ch * (levels - 1)).astype(int)
    cdf = np.cumsum(np.bincount(v.ravel(), minlength=levels))
    cdf_min = cdf[v.min()]
    if cdf_min == v.size:
        return ch
    return np.round((cdf[v] - cdf_min) / (v.size - cdf_min) * (levels - 1)) / (levels - 1)


@pytest.mark.parametrize("levels", [2, 16, 256])
def test_equalize_matches_the_cdf_formula(levels):
    x = images(dtype=torch.float64) ** 2
    x[2, 1] = 0.4  # a constant channel is left as it is
    out = A.equalize(x, levels)
    for n in range(x.shape[0]):
        for c in range(3):
            np.testing.assert_allclose(out[n, c].numpy(), np_equalize(x[n, c].numpy(), levels),
                                       atol=1e-12)
    assert torch.equal(out[2, 1], x[2, 1])


def test_salt_is_white_pepper_is_black_and_rates_match():
    x = torch.full((4, 3, 64, 64), 0.5)
    out = A.salt_and_pepper(x, 0.1, 0.2, generator=gen(3))
    white, black = (out == 1).all(1).float().mean(), (out == 0).all(1).float().mean()
    assert abs(white - 0.1) < 0.01 and abs(black - 0.2) < 0.01
    assert ((out == 0.5) | (out == 0) | (out == 1)).all()
    u = torch.rand((4, 1, 64, 64), generator=gen(3))
    ref = np.where(u < 0.1, 1.0, np.where(u < 0.3, 0.0, 0.5)).repeat(3, 1)
    np.testing.assert_array_equal(out.numpy(), ref)


def test_sobel_matches_numpy_and_is_zero_on_flat_images():
    x = images(dtype=torch.float64)
    kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    p = np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(p, (3, 3), axis=(2, 3))
    gx, gy = (win * kx).sum((-2, -1)), (win * kx.T).sum((-2, -1))
    np.testing.assert_allclose(A.sobel(x).numpy(), np.sqrt(gx**2 + gy**2) / (4 * np.sqrt(2)),
                               atol=1e-12)
    assert A.sobel(torch.full((1, 1, 5, 5), 0.3)).abs().max() < 1e-12
    step = torch.zeros(1, 1, 6, 6)
    step[..., 3:] = 1.0  # the strongest vertical edge reaches 4 / (4 sqrt 2)
    assert abs(A.sobel(step).max().item() - 1 / math.sqrt(2)) < 1e-6


def test_homography_maps_the_four_points():
    src = torch.tensor([[[-5.0, -4], [5, -4], [5, 4], [-5, 4]]] * 2, dtype=torch.float64)
    dst = src + torch.tensor([[[1.0, 0.5], [-0.5, 1], [0.3, -0.7], [-1, 0.2]], [[0.0, 0]] * 4])
    h = A.homography(src, dst)
    homog = torch.cat([src, torch.ones(2, 4, 1, dtype=torch.float64)], 2) @ h.transpose(1, 2)
    torch.testing.assert_close(homog[..., :2] / homog[..., 2:], dst)
    torch.testing.assert_close(h[1], torch.eye(3, dtype=torch.float64))


def test_perspective_matches_numpy_and_reduces_to_affine():
    x = images(n=2, h=12, w=16, dtype=torch.float64)
    m = np.array([[1.0, 0.1, 1.5], [0.05, 0.95, -1.0], [0.01, -0.008, 1.0]])
    h, w = 12, 16
    ys, xs = np.mgrid[0:h, 0:w].astype(float)
    src = np.einsum("ij,jhw->ihw", np.linalg.inv(m),
                    np.stack([xs - (w - 1) / 2, ys - (h - 1) / 2, np.ones_like(xs)]))
    ref = np_bilinear(x[0].numpy(), src[1] / src[2] + (h - 1) / 2, src[0] / src[2] + (w - 1) / 2)
    out = A.perspective(x, torch.from_numpy(m))
    np.testing.assert_allclose(out[0].numpy(), ref, atol=1e-10)
    theta = A.affine_theta(h, w, angle=20.0, scale=1.1, tx=1.0, ty=-2.0, n=2)
    a = math.radians(20.0)  # the same warp written as a 3x3 matrix with g = h = 0
    affine3 = torch.tensor([[1.1 * math.cos(a), 1.1 * math.sin(a), 1.0],
                            [-1.1 * math.sin(a), 1.1 * math.cos(a), -2.0], [0, 0, 1]],
                           dtype=torch.float64)
    torch.testing.assert_close(A.perspective(x, affine3), A.affine(x, theta), atol=1e-10, rtol=0)


def test_resized_crop_matches_numpy_and_full_box_is_identity():
    x = images(n=2, h=12, w=16, dtype=torch.float64)
    boxes = torch.tensor([[2.0, 3.0, 7.0, 9.5], [0.0, 0.0, 12.0, 16.0]], dtype=torch.float64)
    out = A.resized_crop(x, boxes, (5, 6))
    for n, (top, left, bh, bw) in enumerate(boxes.tolist()):
        rows = (top + (np.arange(5) + 0.5) * bh / 5 - 0.5).clip(0, 11)
        cols = (left + (np.arange(6) + 0.5) * bw / 6 - 0.5).clip(0, 15)
        row, col = np.meshgrid(rows, cols, indexing="ij")
        np.testing.assert_allclose(out[n].numpy(), np_bilinear(x[n].numpy(), row, col), atol=1e-10)
    torch.testing.assert_close(A.resized_crop(x, boxes[1:].expand(2, 4), (12, 16)), x)


def test_random_resized_crop_boxes_stay_inside():
    x = torch.arange(16.0).repeat(16, 1).expand(50, 1, 16, 16).contiguous() / 15  # columns
    out = A.random_resized_crop(x, 8, scale=(0.1, 0.5), generator=gen(2))
    assert out.shape == (50, 1, 8, 8) and out.min() >= 0 and out.max() <= 1
    span = out[:, 0, 0, -1] - out[:, 0, 0, 0]  # the box's width shows in the column ramp
    assert (span > 0).all() and (span < 1).all()


def test_mosaic_tiles_half_size_copies_of_the_sources():
    x = images(n=4, h=8, w=6, dtype=torch.float64)
    partners = torch.tensor([[1, 2, 3], [0, 0, 0], [3, 2, 1], [2, 2, 2]])
    out, sources = A.mosaic(x, partners=partners)
    small = x.reshape(4, 3, 4, 2, 3, 2).mean((3, 5))
    torch.testing.assert_close(sources, torch.cat([torch.arange(4)[:, None], partners], 1))
    for n in range(4):
        s = sources[n]
        torch.testing.assert_close(out[n, :, :4, :3], small[s[0]])
        torch.testing.assert_close(out[n, :, :4, 3:], small[s[1]])
        torch.testing.assert_close(out[n, :, 4:, :3], small[s[2]])
        torch.testing.assert_close(out[n, :, 4:, 3:], small[s[3]])


def test_mixup_and_cutmix_take_given_partners():
    x, y = images(dtype=torch.float64), torch.arange(6)
    partners = torch.tensor([5, 4, 3, 2, 1, 0])
    mixed, targets, _ = A.mixup(x, y, 6, lam=0.25, partners=partners)
    torch.testing.assert_close(mixed, 0.25 * x + 0.75 * x[partners])
    torch.testing.assert_close(targets[:, partners[0]], torch.tensor([0.75, 0, 0, 0, 0, 0.25],
                                                                      dtype=torch.float64))
    cut, _, lam = A.cutmix(x, y, 6, lam=0.5, partners=partners, generator=gen())
    assert ((cut == x) | (cut == x[partners])).all()
