"""Batched image augmentations in torch that run where the batch lives (CPU or GPU).

Every function takes x: (N, C, H, W) float tensor with values in [0, 1] and returns a tensor
of the same shape (the crops: a smaller window), dtype and device, values still in [0, 1].
Random choices are made per image, all at once (no Python loop over images); pass a
``torch.Generator`` for repeatable draws (it may live on the CPU while x is on a GPU).
Parameters that vary per image accept a float or an (N,) tensor.

- geometry: ``hflip``, ``random_hflip``, ``translate``, ``random_crop`` (with padding),
  ``crop``, ``center_crop``, ``random_window`` (from a larger image), ``affine_theta``,
  ``affine``, ``random_affine``;
- photometry: ``adjust_brightness``, ``adjust_contrast``, ``adjust_saturation``,
  ``adjust_sharpness``, ``color_jitter``, ``gaussian_noise``, ``gaussian_blur``,
  ``random_blur``;
- occlusion: ``cutout``, ``random_erasing``;
- label mixing: ``mixup``, ``cutmix_boxes``, ``box_mask``, ``cutmix`` (targets become (N, K)
  probabilities; ``F.cross_entropy`` accepts them);
- policies and plumbing: ``rand_augment``, ``Augmented`` (wraps a loader), ``tta_probs``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F

PADDING_MODES = ("constant", "reflect", "replicate")
RAND_AUGMENT_OPS = ("identity", "rotate", "shear_x", "shear_y", "translate_x", "translate_y",
                    "brightness", "contrast", "saturation", "sharpness")


# --- validation and random draws -------------------------------------------------------------

def _check_images(x, fn: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{fn}: expected x a torch.Tensor (N, C, H, W), got {type(x).__name__}")
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"{fn}: expected x a float tensor (N, C, H, W), "
                         f"got {x.dtype} of shape {tuple(x.shape)}")
    return x


def _check_range(value, lo: float, hi: float, fn: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{fn}: expected {name} a number in [{lo}, {hi}], got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{fn}: expected {name} in [{lo}, {hi}], got {value}")
    return float(value)


def _per_image(value, x: torch.Tensor, fn: str, name: str) -> torch.Tensor:
    """A float or (N,) tensor as an (N,) tensor on x's device and dtype."""
    v = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    if v.ndim == 0:
        return v.expand(x.shape[0])
    if v.shape != (x.shape[0],):
        raise ValueError(f"{fn}: expected {name} a float or a tensor of shape ({x.shape[0]},), "
                         f"got shape {tuple(v.shape)}")
    return v


def _rand(shape, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform [0, 1) numbers of ``shape`` on x's device (drawn where the generator lives)."""
    where = generator.device if generator is not None else x.device
    return torch.rand(shape, generator=generator, device=where).to(x.device, x.dtype)


def _uniform(lo: float, hi: float, n: int, x, generator) -> torch.Tensor:
    return lo + (hi - lo) * _rand((n,), x, generator)


def _randint(high: int, shape, x, generator) -> torch.Tensor:
    where = generator.device if generator is not None else x.device
    return torch.randint(high, shape, generator=generator, device=where).to(x.device)


def _beta(alpha: float, n: int, x: torch.Tensor) -> torch.Tensor:
    """(N,) draws from Beta(alpha, alpha) (torch's global RNG: Beta sampling takes no generator)."""
    a = torch.full((n,), alpha, dtype=torch.float64)
    return torch.distributions.Beta(a, a).sample().to(x.device, x.dtype)


# --- geometry --------------------------------------------------------------------------------

def hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror every image left to right. x: (N, C, H, W) -> (N, C, H, W)."""
    return _check_images(x, "hflip").flip(-1)


def random_hflip(x: torch.Tensor, p: float = 0.5,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left to right with probability ``p``. x: (N, C, H, W)."""
    x = _check_images(x, "random_hflip")
    p = _check_range(p, 0.0, 1.0, "random_hflip", "p")
    flip = _rand((x.shape[0], 1, 1, 1), x, generator) < p
    return torch.where(flip, x.flip(-1), x)


def _source_index(idx: torch.Tensor, n: int, mode: str):
    """Map source indices that fall outside [0, n) by ``mode``; returns (index, inside)."""
    inside = (idx >= 0) & (idx < n)
    if mode == "reflect":
        idx = idx.abs()
        idx = torch.where(idx >= n, 2 * (n - 1) - idx, idx)
    return idx.clamp(0, n - 1), inside


def translate(x: torch.Tensor, shifts: torch.Tensor, padding_mode: str = "constant",
              fill: float = 0.0) -> torch.Tensor:
    """Move each image by whole pixels. x: (N, C, H, W); shifts: (N, 2) ints (dy, dx).

    The content of image n moves dy pixels down and dx right; the uncovered border is ``fill``
    ("constant"), the mirror image without repeating the edge ("reflect", needs |shift| < size)
    or the edge pixel repeated ("replicate"). One ``gather``, no loop over images.
    """
    x = _check_images(x, "translate")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"translate: padding_mode must be one of {PADDING_MODES}, "
                         f"got {padding_mode!r}")
    n, c, h, w = x.shape
    shifts = torch.as_tensor(shifts, device=x.device)
    if shifts.shape != (n, 2) or shifts.is_floating_point():
        raise ValueError(f"translate: expected shifts of integers with shape ({n}, 2), "
                         f"got {shifts.dtype} {tuple(shifts.shape)}")
    too_far = shifts[:, 0].abs().max() >= h or shifts[:, 1].abs().max() >= w
    if padding_mode == "reflect" and too_far:
        raise ValueError(f"translate: reflect padding needs |dy| < {h} and |dx| < {w}, "
                         f"got up to {shifts.abs().max(dim=0).values.tolist()}")
    rows, rows_in = _source_index(torch.arange(h, device=x.device) - shifts[:, :1], h, padding_mode)
    cols, cols_in = _source_index(torch.arange(w, device=x.device) - shifts[:, 1:], w, padding_mode)
    index = (rows[:, :, None] * w + cols[:, None, :]).reshape(n, 1, h * w).expand(n, c, h * w)
    out = x.reshape(n, c, h * w).gather(2, index).reshape(n, c, h, w)
    if padding_mode == "constant":
        inside = (rows_in[:, :, None] & cols_in[:, None, :])[:, None]
        out = torch.where(inside, out, torch.as_tensor(fill, dtype=x.dtype, device=x.device))
    return out


def random_crop(x: torch.Tensor, padding: int, padding_mode: str = "constant",
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Pad by ``padding`` pixels on every side and crop back to (H, W) at a random offset.

    Equivalent to a random whole-pixel translation by (dy, dx), each uniform in
    [-padding, padding]. x: (N, C, H, W) -> (N, C, H, W).
    """
    x = _check_images(x, "random_crop")
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"random_crop: expected padding an int >= 0, got {padding!r}")
    shifts = _randint(2 * padding + 1, (x.shape[0], 2), x, generator) - padding
    return translate(x, shifts, padding_mode)


def crop(x: torch.Tensor, tops: torch.Tensor, lefts: torch.Tensor, size: int) -> torch.Tensor:
    """Cut a ``size`` x ``size`` window out of every image, at its own position, with one gather.

    x: (N, C, H, W); tops, lefts: (N,) ints with 0 <= top <= H - size, 0 <= left <= W - size.
    Returns (N, C, size, size).
    """
    x = _check_images(x, "crop")
    n, c, h, w = x.shape
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= min(h, w):
        raise ValueError(f"crop: expected size an int in [1, {min(h, w)}], got {size!r}")
    tops, lefts = torch.as_tensor(tops, device=x.device), torch.as_tensor(lefts, device=x.device)
    floats = tops.is_floating_point() or lefts.is_floating_point()
    if tops.shape != (n,) or lefts.shape != (n,) or floats:
        raise ValueError(f"crop: expected tops and lefts of integers with shape ({n},), "
                         f"got {tuple(tops.shape)} and {tuple(lefts.shape)}")
    if n and (tops.min() < 0 or lefts.min() < 0 or tops.max() > h - size or lefts.max() > w - size):
        raise ValueError(f"crop: windows must lie inside the image: tops in [0, {h - size}], "
                         f"lefts in [0, {w - size}]")
    offsets = torch.arange(size, device=x.device)
    rows, cols = tops[:, None] + offsets, lefts[:, None] + offsets
    index = (rows[:, :, None] * w + cols[:, None, :]).reshape(n, 1, -1).expand(n, c, -1)
    return x.reshape(n, c, h * w).gather(2, index).reshape(n, c, size, size)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size`` x ``size`` window of every image (top-left when it cannot be centred
    exactly). x: (N, C, H, W) -> (N, C, size, size)."""
    x = _check_images(x, "center_crop")
    h, w = x.shape[-2:]
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= min(h, w):
        raise ValueError(f"center_crop: expected size an int in [1, {min(h, w)}], got {size!r}")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def random_window(x: torch.Tensor, size: int,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """A ``size`` x ``size`` window at a uniform random position inside each image (random
    cropping from a larger image, without padding). x: (N, C, H, W) -> (N, C, size, size)."""
    x = _check_images(x, "random_window")
    n, _, h, w = x.shape
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= min(h, w):
        raise ValueError(f"random_window: expected size an int in [1, {min(h, w)}], got {size!r}")
    tops = _randint(h - size + 1, (n,), x, generator)
    lefts = _randint(w - size + 1, (n,), x, generator)
    return crop(x, tops, lefts, size)


def affine_theta(height: int, width: int, angle=0.0, scale=1.0, shear_x=0.0, shear_y=0.0,
                 tx=0.0, ty=0.0, n: int | None = None) -> torch.Tensor:
    """Matrices for ``F.affine_grid`` (align_corners=False) that move image content by
    u' = R(angle) Sh(shear_x, shear_y) scale u + (tx, ty).

    u are pixel coordinates from the image centre (x right, y down). angle: degrees,
    counterclockwise on screen; shear_x, shear_y: degrees, Sh = [[1, tan sx], [tan sy, 1]];
    scale > 0 (2 enlarges); tx, ty: pixels (right, down). Each argument is a float or an (N,)
    tensor. Since affine_grid maps *output* to *input* coordinates, theta is the inverse map,
    expressed in coordinates normalized to [-1, 1] on each axis. Returns (N, 2, 3) float64
    (``affine`` casts it to the images' dtype).
    """
    values = (angle, scale, shear_x, shear_y, tx, ty)
    args = [torch.as_tensor(a, dtype=torch.float64) for a in values]
    sizes = {int(a.shape[0]) for a in args if a.ndim == 1}
    if any(a.ndim > 1 for a in args) or len(sizes) > 1:
        raise ValueError(f"affine_theta: expected floats or (N,) tensors of one length, "
                         f"got shapes {[tuple(a.shape) for a in args]}")
    count = sizes.pop() if sizes else (n or 1)
    angle, scale, shear_x, shear_y, tx, ty = (a.expand(count) for a in args)
    if (scale <= 0).any():
        raise ValueError(f"affine_theta: expected scale > 0, got min {scale.min().item()}")
    a = torch.deg2rad(angle)
    cos, sin = torch.cos(a), torch.sin(a)
    rot = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    one = torch.ones_like(a)
    shear = torch.stack([torch.stack([one, torch.tan(torch.deg2rad(shear_x))], -1),
                         torch.stack([torch.tan(torch.deg2rad(shear_y)), one], -1)], -2)
    forward = rot @ shear * scale[:, None, None]  # (N, 2, 2), pixel coordinates
    inverse = torch.linalg.inv(forward)
    half = torch.tensor([width / 2, height / 2], dtype=torch.float64)
    lin = inverse * half[None, None, :] / half[None, :, None]  # S^-1 A^-1 S
    shift = -(inverse @ torch.stack([tx, ty], -1)[..., None])[..., 0] / half
    return torch.cat([lin, shift[..., None]], dim=2)


def affine(x: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear",
           padding_mode: str = "zeros") -> torch.Tensor:
    """Resample every image through its own affine map with one ``grid_sample`` call.

    x: (N, C, H, W); theta: (N, 2, 3) from ``affine_theta``. mode "bilinear" or "nearest";
    padding_mode "zeros", "border" or "reflection" for samples outside the image.
    """
    x = _check_images(x, "affine")
    if not isinstance(theta, torch.Tensor) or theta.shape != (x.shape[0], 2, 3):
        shape = tuple(theta.shape) if isinstance(theta, torch.Tensor) else type(theta).__name__
        raise ValueError(f"affine: expected theta of shape ({x.shape[0]}, 2, 3), got {shape}")
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f'affine: mode must be "bilinear" or "nearest", got {mode!r}')
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f'affine: padding_mode must be "zeros", "border" or "reflection", '
                         f"got {padding_mode!r}")
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=False)


def random_affine(x: torch.Tensor, degrees: float = 0.0, scale: tuple[float, float] = (1.0, 1.0),
                  shear: float = 0.0, translate: float = 0.0, padding_mode: str = "zeros",
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """A random rotation, scaling, x-shear and translation per image, bilinear.

    angle ~ U(-degrees, degrees); scale factor ~ U(scale[0], scale[1]); shear_x ~ U(-shear,
    shear) degrees; tx, ty ~ U(-translate, translate) times the width / height.
    """
    x = _check_images(x, "random_affine")
    _check_range(degrees, 0.0, 180.0, "random_affine", "degrees")
    _check_range(shear, 0.0, 60.0, "random_affine", "shear")
    _check_range(translate, 0.0, 1.0, "random_affine", "translate")
    if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
        raise ValueError(f"random_affine: expected scale=(lo, hi) with 0 < lo <= hi, got {scale}")
    n, _, h, w = x.shape
    theta = affine_theta(
        h, w, angle=_uniform(-degrees, degrees, n, x, generator).cpu(),
        scale=_uniform(scale[0], scale[1], n, x, generator).cpu(),
        shear_x=_uniform(-shear, shear, n, x, generator).cpu(),
        tx=_uniform(-translate, translate, n, x, generator).cpu() * w,
        ty=_uniform(-translate, translate, n, x, generator).cpu() * h)
    return affine(x, theta, padding_mode=padding_mode)


# --- photometry ------------------------------------------------------------------------------

def _gray(x: torch.Tensor) -> torch.Tensor:
    """Luma (N, 1, H, W): ITU-R 601 weights for 3 channels, the mean otherwise."""
    if x.shape[1] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
        return (x * weights[None, :, None, None]).sum(1, keepdim=True)
    return x.mean(1, keepdim=True)


def _blend(x, other, factor, fn: str) -> torch.Tensor:
    f = _per_image(factor, x, fn, "factor")
    if (f < 0).any():
        raise ValueError(f"{fn}: expected factor >= 0, got min {f.min().item()}")
    f = f[:, None, None, None]
    return (f * x + (1 - f) * other).clamp(0, 1)


def adjust_brightness(x: torch.Tensor, factor) -> torch.Tensor:
    """x * factor, clipped to [0, 1]; factor (float or (N,)) >= 0, 1 is the identity."""
    x = _check_images(x, "adjust_brightness")
    return _blend(x, torch.zeros_like(x), factor, "adjust_brightness")


def adjust_contrast(x: torch.Tensor, factor) -> torch.Tensor:
    """Blend each image with its mean gray level: factor 0 gives a flat image, 1 the identity."""
    x = _check_images(x, "adjust_contrast")
    return _blend(x, _gray(x).mean((1, 2, 3), keepdim=True), factor, "adjust_contrast")


def adjust_saturation(x: torch.Tensor, factor) -> torch.Tensor:
    """Blend with the image's gray version: 0 gives gray, 1 the identity (gray images unchanged)."""
    x = _check_images(x, "adjust_saturation")
    return _blend(x, _gray(x), factor, "adjust_saturation")


def adjust_sharpness(x: torch.Tensor, factor) -> torch.Tensor:
    """Blend with a 3x3 smoothed copy (border pixels kept): 0 smooths, 1 identity, >1 sharpens."""
    x = _check_images(x, "adjust_sharpness")
    n, c, h, w = x.shape
    k = torch.tensor([[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=x.dtype, device=x.device) / 13
    smooth = F.conv2d(x.reshape(n * c, 1, h, w), k[None, None], padding=1).reshape(x.shape)
    border = torch.ones(h, w, dtype=torch.bool, device=x.device)
    border[1:-1, 1:-1] = False
    return _blend(x, torch.where(border, x, smooth), factor, "adjust_sharpness")


def color_jitter(x: torch.Tensor, brightness: float = 0.0, contrast: float = 0.0,
                 saturation: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random brightness, then contrast, then saturation, each factor ~ U(max(0, 1 - s), 1 + s)."""
    x = _check_images(x, "color_jitter")
    for name, fn, s in (("brightness", adjust_brightness, brightness),
                        ("contrast", adjust_contrast, contrast),
                        ("saturation", adjust_saturation, saturation)):
        s = _check_range(s, 0.0, 10.0, "color_jitter", name)
        if s > 0:
            x = fn(x, _uniform(max(0.0, 1 - s), 1 + s, x.shape[0], x, generator))
    return x


def gaussian_noise(x: torch.Tensor, std: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """x + std * N(0, 1) noise, clipped to [0, 1]."""
    x = _check_images(x, "gaussian_noise")
    std = _check_range(std, 0.0, 10.0, "gaussian_noise", "std")
    where = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, device=where).to(x.device, x.dtype)
    return (x + std * noise).clamp(0, 1)


def gaussian_blur(x: torch.Tensor, sigma, kernel_size: int | None = None) -> torch.Tensor:
    """Separable Gaussian blur with a per-image sigma (pixels, float or (N,) tensor, >= 0).

    kernel_size (odd) defaults to 2 * ceil(3 * max sigma) + 1; borders are reflected (the
    radius must be smaller than H and W). sigma 0 is the identity. One grouped convolution
    per axis does every image with its own kernel.
    """
    x = _check_images(x, "gaussian_blur")
    n, c, h, w = x.shape
    s = _per_image(sigma, x, "gaussian_blur", "sigma")
    if (s < 0).any():
        raise ValueError(f"gaussian_blur: expected sigma >= 0, got min {s.min().item()}")
    if kernel_size is None:
        kernel_size = 2 * math.ceil(3 * float(s.max())) + 1
    if kernel_size % 2 != 1 or kernel_size < 1 or kernel_size // 2 >= min(h, w):
        raise ValueError(f"gaussian_blur: expected an odd kernel_size with radius < {min(h, w)}, "
                         f"got {kernel_size}")
    r = kernel_size // 2
    offsets = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (offsets[None] / s.clamp_min(1e-8)[:, None]) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (N * C, K)
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), k[:, None, None, :], groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k[:, None, :, None], groups=n * c)
    return y.reshape(n, c, h, w)


def random_blur(x: torch.Tensor, sigma: tuple[float, float] = (0.1, 1.0),
                generator: torch.Generator | None = None) -> torch.Tensor:
    """``gaussian_blur`` with sigma ~ U(sigma[0], sigma[1]) per image."""
    x = _check_images(x, "random_blur")
    if len(sigma) != 2 or not 0 <= sigma[0] <= sigma[1]:
        raise ValueError(f"random_blur: expected sigma=(lo, hi) with 0 <= lo <= hi, got {sigma}")
    return gaussian_blur(x, _uniform(sigma[0], sigma[1], x.shape[0], x, generator))


# --- occlusion -------------------------------------------------------------------------------

def box_mask(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, 1, H, W) bool, True inside box n = (top, left, bottom, right), bottom/right exclusive."""
    if not isinstance(boxes, torch.Tensor) or boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"box_mask: expected boxes (N, 4), got "
                         f"{tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else boxes!r}")
    rows = torch.arange(height, device=boxes.device)
    cols = torch.arange(width, device=boxes.device)
    in_rows = (rows >= boxes[:, :1]) & (rows < boxes[:, 2:3])  # (N, H)
    in_cols = (cols >= boxes[:, 1:2]) & (cols < boxes[:, 3:4])  # (N, W)
    return (in_rows[:, :, None] & in_cols[:, None, :])[:, None]


def cutout(x: torch.Tensor, size: int, fill: float = 0.0,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Set a ``size`` x ``size`` square to ``fill`` in every image; its centre is uniform over the
    image, so near a border only the part inside is erased (DeVries and Taylor's cutout)."""
    x = _check_images(x, "cutout")
    n, _, h, w = x.shape
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= max(h, w):
        raise ValueError(f"cutout: expected size an int in [0, {max(h, w)}], got {size!r}")
    cy, cx = _randint(h, (n,), x, generator), _randint(w, (n,), x, generator)
    boxes = torch.stack([cy - size // 2, cx - size // 2, cy - size // 2 + size,
                         cx - size // 2 + size], 1)
    return torch.where(box_mask(boxes, h, w), torch.as_tensor(fill, dtype=x.dtype), x)


def random_erasing(x: torch.Tensor, p: float = 0.5, scale: tuple[float, float] = (0.02, 0.33),
                   ratio: tuple[float, float] = (0.3, 3.3), value: float | str = 0.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """With probability ``p`` per image, erase a rectangle inside it (Zhong et al.).

    Its area is a fraction ~ U(scale) of the image, its aspect h/w log-uniform in ``ratio``;
    sides are rounded and clipped to the image, the position uniform where it fits. ``value``:
    a fill in [0, 1] or "random" for uniform noise.
    """
    x = _check_images(x, "random_erasing")
    p = _check_range(p, 0.0, 1.0, "random_erasing", "p")
    if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
        raise ValueError(f"random_erasing: expected scale=(lo, hi) in (0, 1], got {scale}")
    if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"random_erasing: expected ratio=(lo, hi) with 0 < lo <= hi, got {ratio}")
    if value != "random":
        _check_range(value, 0.0, 1.0, "random_erasing", "value")
    n, _, h, w = x.shape
    area = _uniform(*scale, n, x, generator) * h * w
    aspect = torch.exp(_uniform(math.log(ratio[0]), math.log(ratio[1]), n, x, generator))
    bh = torch.sqrt(area * aspect).round().clamp(1, h).long()
    bw = torch.sqrt(area / aspect).round().clamp(1, w).long()
    top = (_rand((n,), x, generator) * (h - bh + 1)).long()
    left = (_rand((n,), x, generator) * (w - bw + 1)).long()
    mask = box_mask(torch.stack([top, left, top + bh, left + bw], 1), h, w)
    mask &= (_rand((n, 1, 1, 1), x, generator) < p)
    if value == "random":
        fill = _rand(x.shape, x, generator)
    else:
        fill = torch.as_tensor(value, dtype=x.dtype)
    return torch.where(mask, fill, x)


# --- label mixing ----------------------------------------------------------------------------

def _check_labels(x, y, num_classes, fn):
    if not isinstance(y, torch.Tensor) or y.shape != (x.shape[0],) or y.is_floating_point():
        raise ValueError(f"{fn}: expected y integer labels of shape ({x.shape[0]},), got "
                         f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"{fn}: expected num_classes an int >= 1, got {num_classes!r}")
    if y.numel() and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{fn}: labels must lie in [0, {num_classes}), "
                         f"got [{y.min().item()}, {y.max().item()}]")
    return F.one_hot(y, num_classes).to(x.dtype)


def _lam(lam, alpha, x, fn):
    if lam is None:
        alpha = _check_range(alpha, 1e-6, 1e6, fn, "alpha")
        return _beta(alpha, x.shape[0], x)
    lam = _per_image(lam, x, fn, "lam")
    if (lam < 0).any() or (lam > 1).any():
        raise ValueError(f"{fn}: expected lam in [0, 1], "
                         f"got [{lam.min().item()}, {lam.max().item()}]")
    return lam


def _partners(x, generator):
    where = generator.device if generator is not None else x.device
    return torch.randperm(x.shape[0], generator=generator, device=where).to(x.device)


def mixup(x: torch.Tensor, y: torch.Tensor, num_classes: int, alpha: float = 0.2, lam=None,
          generator: torch.Generator | None = None):
    """MixUp: blend each image and its one-hot label with a random partner from the batch.

    x: (N, C, H, W); y: (N,) int labels. lam ~ Beta(alpha, alpha) per image (or given, float
    or (N,)). Returns (x_mix (N, C, H, W), targets (N, K) rows summing to 1, lam (N,)) with
    x_mix = lam x + (1 - lam) x[perm] and targets the same mix of one-hot labels.
    """
    x = _check_images(x, "mixup")
    one_hot = _check_labels(x, y, num_classes, "mixup")
    lam = _lam(lam, alpha, x, "mixup")
    perm = _partners(x, generator)
    x_mix = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[perm]
    targets = lam[:, None] * one_hot + (1 - lam[:, None]) * one_hot[perm]
    return x_mix, targets, lam


def cutmix_boxes(height: int, width: int, lam0: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Boxes (N, 4) = (top, left, bottom, right) for CutMix: sides round(H sqrt(1 - lam0)) and
    round(W sqrt(1 - lam0)), centred at a uniform pixel and clipped at the borders."""
    n = lam0.shape[0]
    cut = torch.sqrt(1 - lam0)
    bh, bw = (height * cut).round().long(), (width * cut).round().long()
    cy, cx = _randint(height, (n,), lam0, generator), _randint(width, (n,), lam0, generator)
    top, left = (cy - bh // 2).clamp(0, height), (cx - bw // 2).clamp(0, width)
    bottom, right = (cy - bh // 2 + bh).clamp(0, height), (cx - bw // 2 + bw).clamp(0, width)
    return torch.stack([top, left, bottom, right], 1)


def cutmix(x: torch.Tensor, y: torch.Tensor, num_classes: int, alpha: float = 1.0, lam=None,
           generator: torch.Generator | None = None):
    """CutMix: paste a box from a random partner image into each image.

    A box of area about (1 - lam0) H W is drawn per image (lam0 ~ Beta(alpha, alpha), or the
    given ``lam``), then clipped at the borders; lam is recomputed as the fraction of the image
    that was *kept*, 1 - box area / (H W), so the label weights match the pixels exactly.
    Returns (x_mix (N, C, H, W), targets (N, K) = lam one_hot(y) + (1 - lam) one_hot(y[perm]),
    lam (N,)).
    """
    x = _check_images(x, "cutmix")
    one_hot = _check_labels(x, y, num_classes, "cutmix")
    lam0 = _lam(lam, alpha, x, "cutmix")
    n, _, h, w = x.shape
    perm = _partners(x, generator)
    mask = box_mask(cutmix_boxes(h, w, lam0, generator), h, w)
    x_mix = torch.where(mask, x[perm], x)
    lam = 1 - mask.flatten(1).to(x.dtype).mean(1)
    targets = lam[:, None] * one_hot + (1 - lam[:, None]) * one_hot[perm]
    return x_mix, targets, lam


# --- policies and plumbing -------------------------------------------------------------------

def _rand_augment_op(name: str, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """One RandAugment operation at signed strengths m (N,) in [-1, 1]; m = 0 is the identity."""
    n, _, h, w = x.shape
    geometric = {"rotate": {"angle": 30 * m}, "shear_x": {"shear_x": 17 * m},
                 "shear_y": {"shear_y": 17 * m}, "translate_x": {"tx": 0.3 * w * m},
                 "translate_y": {"ty": 0.3 * h * m}}
    if name in geometric:
        kwargs = {k: v.detach().cpu() for k, v in geometric[name].items()}
        return affine(x, affine_theta(h, w, n=n, **kwargs))
    blends = {"brightness": adjust_brightness, "contrast": adjust_contrast,
              "saturation": adjust_saturation, "sharpness": adjust_sharpness}
    if name in blends:
        return blends[name](x, 1 + 0.9 * m)
    return x


def rand_augment(x: torch.Tensor, num_ops: int = 2, magnitude: float = 9.0,
                 ops: Sequence[str] = RAND_AUGMENT_OPS, max_magnitude: float = 10.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """A RandAugment-style policy: each image gets ``num_ops`` operations drawn uniformly from
    ``ops`` (``RAND_AUGMENT_OPS`` by default), all at strength magnitude / max_magnitude with a
    random sign per image (rotate up to 30 degrees, shear up to 17 degrees, translate up to 0.3
    of the size, brightness/contrast/saturation/sharpness factor 1 +- 0.9). magnitude 0 is the
    identity. The loop runs over operations, never over images.
    """
    x = _check_images(x, "rand_augment")
    if isinstance(num_ops, bool) or not isinstance(num_ops, int) or num_ops < 0:
        raise ValueError(f"rand_augment: expected num_ops an int >= 0, got {num_ops!r}")
    _check_range(max_magnitude, 1e-9, 1e9, "rand_augment", "max_magnitude")
    magnitude = _check_range(magnitude, 0.0, max_magnitude, "rand_augment", "magnitude")
    strength = magnitude / max_magnitude
    unknown = [op for op in ops if op not in RAND_AUGMENT_OPS]
    if unknown or not ops:
        raise ValueError(f"rand_augment: ops must be a non-empty subset of {RAND_AUGMENT_OPS}, "
                         f"got unknown {unknown}" if unknown else "rand_augment: ops is empty")
    n = x.shape[0]
    for _ in range(num_ops):
        choice = _randint(len(ops), (n,), x, generator)
        sign = torch.where(_rand((n,), x, generator) < 0.5, -1.0, 1.0).to(x.dtype)
        out = x.clone()
        for k, name in enumerate(ops):
            chosen = choice == k
            if name != "identity" and strength > 0 and bool(chosen.any()):
                out[chosen] = _rand_augment_op(name, x[chosen], strength * sign[chosen])
        x = out
    return x


class Augmented:
    """A loader whose batches are augmented on the fly, where they already are.

    batches: an iterable of (x, y), such as a ``DeviceLoader``. images: x -> x, applied first;
    batch: (x, y) -> (x, y), applied after (for MixUp or CutMix, which change the targets).
    ``len`` is the wrapped loader's.
    """

    def __init__(self, batches: Iterable, images: Callable | None = None,
                 batch: Callable | None = None):
        if images is None and batch is None:
            raise ValueError("Augmented: expected an images or a batch transform, got neither")
        self.batches, self.images, self.batch = batches, images, batch

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for x, y in self.batches:
            if self.images is not None:
                x = self.images(x)
            if self.batch is not None:
                x, y = self.batch(x, y)
            yield x, y


def tta_probs(model: torch.nn.Module, x: torch.Tensor,
              transforms: Sequence[Callable[[torch.Tensor], torch.Tensor]]) -> torch.Tensor:
    """Test-time augmentation: the softmax probabilities of ``model`` averaged over
    deterministic ``transforms`` of x (include ``lambda x: x`` for the original). Runs in eval
    mode without gradients and restores the mode. Returns (N, K)."""
    x = _check_images(x, "tta_probs")
    if not transforms:
        raise ValueError("tta_probs: expected at least one transform, got none")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            probs = [torch.softmax(model(t(x)), dim=1) for t in transforms]
    finally:
        model.train(was_training)
    return torch.stack(probs).mean(0)
