"""Geometric augmentations: flips, translations, crops and affine warps, batched."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from helpers import validation
from helpers.augment._common import (
    PADDING_MODES,
    _check_images,
    _rand,
    _randint,
    _uniform,
)


def hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror every image left to right. x: (N, C, H, W) -> (N, C, H, W)."""
    return _check_images(x, "hflip").flip(-1)


def random_hflip(x: torch.Tensor, p: float = 0.5,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left to right with probability ``p``. x: (N, C, H, W)."""
    x = _check_images(x, "random_hflip")
    p = validation.number(p, "p", "random_hflip", low=0.0, high=1.0)
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
        raise ValueError(f"random_crop: padding must be an int >= 0, got {padding!r}")
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
        raise ValueError(f"crop: size must be an int in [1, {min(h, w)}], got {size!r}")
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
        raise ValueError(f"center_crop: size must be an int in [1, {min(h, w)}], got {size!r}")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def random_window(x: torch.Tensor, size: int,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """A ``size`` x ``size`` window at a uniform random position inside each image (random
    cropping from a larger image, without padding). x: (N, C, H, W) -> (N, C, size, size)."""
    x = _check_images(x, "random_window")
    n, _, h, w = x.shape
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= min(h, w):
        raise ValueError(f"random_window: size must be an int in [1, {min(h, w)}], got {size!r}")
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
        raise ValueError(f"affine_theta: scale must be > 0, got min {scale.min().item()}")
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
        raise ValueError(f"affine: theta must have shape ({x.shape[0]}, 2, 3), got {shape}")
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
    validation.number(degrees, "degrees", "random_affine", low=0.0, high=180.0)
    validation.number(shear, "shear", "random_affine", low=0.0, high=60.0)
    validation.number(translate, "translate", "random_affine", low=0.0, high=1.0)
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
