"""Geometric augmentations: flips, translations, crops, affine and perspective warps, batched."""

from __future__ import annotations

import math

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


def _centred_pixels(h: int, w: int, dtype, device) -> torch.Tensor:
    """(H, W, 2) pixel coordinates (x right, y down) with the origin at the image centre."""
    ys = torch.arange(h, dtype=dtype, device=device) - (h - 1) / 2
    xs = torch.arange(w, dtype=dtype, device=device) - (w - 1) / 2
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)


def homography(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) float64 matrices H = [[a, b, c], [d, e, f], [g, h, 1]] with H (x, y, 1) =
    z (x', y', 1) for each of four point pairs: src, dst (N, 4, 2) as (x, y). Solves the 8x8
    linear system of every image in one batched call."""
    if not (isinstance(src, torch.Tensor) and isinstance(dst, torch.Tensor)
            and src.shape == dst.shape and src.ndim == 3 and src.shape[1:] == (4, 2)):
        got = [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
               for t in (src, dst)]
        raise ValueError(f"homography: expected src and dst of one shape (N, 4, 2), got {got}")
    src, dst = src.to(torch.float64), dst.to(torch.float64)
    x, y, u, v = src[..., 0], src[..., 1], dst[..., 0], dst[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], -1)  # (N, 4, 8)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], -1)
    a = torch.cat([rows_u, rows_v], 1)  # (N, 8, 8)
    coef = torch.linalg.solve(a, torch.cat([u, v], 1))
    return torch.cat([coef, torch.ones_like(coef[:, :1])], 1).reshape(-1, 3, 3)


def perspective(x: torch.Tensor, matrix: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    """Perspective warp: content at pixel u = (x, y) (origin at the centre) moves to
    (x'/z', y'/z') with (x', y', z') = M (x, y, 1). matrix: (3, 3) or (N, 3, 3). Inverse mapping:
    output pixel u' reads the input at M^-1 (u', 1), dehomogenized, bilinear, zeros outside."""
    x = _check_images(x, "perspective")
    n, _, h, w = x.shape
    m = torch.as_tensor(matrix, dtype=torch.float64)
    if m.shape == (3, 3):
        m = m.expand(n, 3, 3)
    if m.shape != (n, 3, 3):
        raise ValueError(f"perspective: matrix must have shape (3, 3) or ({n}, 3, 3), "
                         f"got {tuple(m.shape)}")
    inv = torch.linalg.inv(m).to(x.device)
    out_u = _centred_pixels(h, w, torch.float64, x.device).reshape(1, h * w, 2)
    homog = torch.cat([out_u.expand(n, -1, -1), torch.ones(n, h * w, 1, dtype=torch.float64,
                                                             device=x.device)], 2)
    src = homog @ inv.transpose(1, 2)  # (N, H W, 3)
    src = src[..., :2] / src[..., 2:]
    half = torch.tensor([w / 2, h / 2], dtype=torch.float64, device=x.device)
    grid = (src / half).reshape(n, h, w, 2).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def random_perspective(x: torch.Tensor, distortion: float = 0.3,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """A random perspective warp per image: each corner moves by up to ``distortion`` times the
    half-width (x) and half-height (y), and ``homography`` gives the matrix."""
    x = _check_images(x, "random_perspective")
    distortion = validation.number(distortion, "distortion", "random_perspective",
                                   low=0.0, high=0.9)
    n, _, h, w = x.shape
    half = torch.tensor([(w - 1) / 2, (h - 1) / 2], dtype=torch.float64)
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]],
                           dtype=torch.float64) * half
    moves = (2 * _rand((n, 4, 2), x, generator).cpu().double() - 1) * distortion * half
    return perspective(x, homography(corners.expand(n, 4, 2), corners + moves))


def _out_size(size, fn: str) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, int) and not isinstance(size, bool) else size
    if (not isinstance(pair, tuple | list) or len(pair) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair)):
        raise ValueError(f"{fn}: size must be an int >= 1 or a pair (height, width), got {size!r}")
    return int(pair[0]), int(pair[1])


def resized_crop(x: torch.Tensor, boxes: torch.Tensor, size) -> torch.Tensor:
    """Cut box n = (top, left, height, width) (pixels, floats allowed) out of image n and resize it
    to ``size`` (an int for a square, or (height, width)) with bilinear sampling, edge pixels
    repeated outside: one ``F.affine_grid`` whose theta scales the output onto the box, then one
    ``F.grid_sample``. Output pixel (i, j) reads the input at row top + (i + 1/2) bh / S_h - 1/2,
    column left + (j + 1/2) bw / S_w - 1/2. Returns (N, C, S_h, S_w)."""
    x = _check_images(x, "resized_crop")
    n, c, h, w = x.shape
    if not isinstance(boxes, torch.Tensor) or boxes.shape != (n, 4):
        got = tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__
        raise ValueError(f"resized_crop: boxes must have shape ({n}, 4), got {got}")
    out_h, out_w = _out_size(size, "resized_crop")
    top, left, bh, bw = boxes.to(torch.float64).unbind(1)
    theta = torch.zeros(n, 2, 3, dtype=torch.float64, device=boxes.device)
    theta[:, 0, 0], theta[:, 0, 2] = bw / w, (2 * left + bw) / w - 1
    theta[:, 1, 1], theta[:, 1, 2] = bh / h, (2 * top + bh) / h - 1
    grid = F.affine_grid(theta.to(x.device, x.dtype), [n, c, out_h, out_w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_resized_crop(x: torch.Tensor, size, scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3),
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Inception-style crop: a box of area ~ U(scale) times H W and aspect w/h log-uniform in
    ``ratio`` (sides clipped to the image), at a uniform position where it fits, resized to
    ``size`` (int or (height, width)). x: (N, C, H, W) -> (N, C, S_h, S_w)."""
    x = _check_images(x, "random_resized_crop")
    _out_size(size, "random_resized_crop")
    if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
        raise ValueError(f"random_resized_crop: expected scale=(lo, hi) in (0, 1], got {scale}")
    if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"random_resized_crop: expected ratio=(lo, hi) with 0 < lo <= hi, "
                         f"got {ratio}")
    n, _, h, w = x.shape
    area = _uniform(*scale, n, x, generator).cpu().double() * h * w
    aspect = torch.exp(_uniform(math.log(ratio[0]), math.log(ratio[1]), n, x, generator)
                       .cpu().double())
    bw = torch.sqrt(area * aspect).clamp(1, w)
    bh = torch.sqrt(area / aspect).clamp(1, h)
    top = _rand((n,), x, generator).cpu().double() * (h - bh)
    left = _rand((n,), x, generator).cpu().double() * (w - bw)
    return resized_crop(x, torch.stack([top, left, bh, bw], 1).to(x.device), size)
