"""Occlusion: boxes of pixels hidden per image (cutout, random erasing)."""

from __future__ import annotations

import math

import torch

from helpers import validation
from helpers.augment._common import _check_images, _rand, _randint, _uniform


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
        raise ValueError(f"cutout: size must be an int in [0, {max(h, w)}], got {size!r}")
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
    p = validation.number(p, "p", "random_erasing", low=0.0, high=1.0)
    if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
        raise ValueError(f"random_erasing: expected scale=(lo, hi) in (0, 1], got {scale}")
    if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"random_erasing: expected ratio=(lo, hi) with 0 < lo <= hi, got {ratio}")
    if value != "random":
        validation.number(value, "value", "random_erasing", low=0.0, high=1.0)
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
