"""Label mixing: MixUp and CutMix, whose targets become (N, K) class probabilities."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from helpers import validation
from helpers.augment._common import _beta, _check_images, _per_image, _randint
from helpers.augment.occlusion import box_mask


def _check_labels(x, y, num_classes, fn):
    if not isinstance(y, torch.Tensor) or y.shape != (x.shape[0],) or y.is_floating_point():
        raise ValueError(f"{fn}: expected y integer labels of shape ({x.shape[0]},), got "
                         f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"{fn}: num_classes must be an int >= 1, got {num_classes!r}")
    if y.numel() and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{fn}: labels must lie in [0, {num_classes}), "
                         f"got [{y.min().item()}, {y.max().item()}]")
    return F.one_hot(y, num_classes).to(x.dtype)


def _lam(lam, alpha, x, fn):
    if lam is None:
        alpha = validation.number(alpha, "alpha", fn, low=1e-6, high=1e6)
        return _beta(alpha, x.shape[0], x)
    lam = _per_image(lam, x, fn, "lam")
    if (lam < 0).any() or (lam > 1).any():
        raise ValueError(f"{fn}: lam must be in [0, 1], "
                         f"got [{lam.min().item()}, {lam.max().item()}]")
    return lam


def _partners(x, generator, partners=None, fn="mixup"):
    """A random permutation of the batch, or the given (N,) partner indices, checked."""
    n = x.shape[0]
    if partners is None:
        where = generator.device if generator is not None else x.device
        return torch.randperm(n, generator=generator, device=where).to(x.device)
    if (not isinstance(partners, torch.Tensor) or partners.shape != (n,)
            or partners.is_floating_point() or (partners < 0).any() or (partners >= n).any()):
        got = partners if not isinstance(partners, torch.Tensor) else tuple(partners.shape)
        raise ValueError(f"{fn}: partners must be (N,) = ({n},) integer indices in [0, {n}), "
                         f"got {got}")
    return partners.to(x.device)


def mixup(x: torch.Tensor, y: torch.Tensor, num_classes: int, alpha: float = 0.2, lam=None,
          generator: torch.Generator | None = None, partners: torch.Tensor | None = None):
    """MixUp: blend each image and its one-hot label with a random partner from the batch.

    x: (N, C, H, W); y: (N,) int labels. lam ~ Beta(alpha, alpha) per image (or given, float
    or (N,)). Returns (x_mix (N, C, H, W), targets (N, K) rows summing to 1, lam (N,)) with
    x_mix = lam x + (1 - lam) x[perm] and targets the same mix of one-hot labels. perm is a
    random permutation, or the given ``partners`` (N,) indices.
    """
    x = _check_images(x, "mixup")
    one_hot = _check_labels(x, y, num_classes, "mixup")
    lam = _lam(lam, alpha, x, "mixup")
    perm = _partners(x, generator, partners, "mixup")
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
           generator: torch.Generator | None = None, partners: torch.Tensor | None = None):
    """CutMix: paste a box from a random partner image into each image.

    A box of area about (1 - lam0) H W is drawn per image (lam0 ~ Beta(alpha, alpha), or the
    given ``lam``), then clipped at the borders; lam is recomputed as the fraction of the image
    that was *kept*, 1 - box area / (H W), so the label weights match the pixels exactly.
    Returns (x_mix (N, C, H, W), targets (N, K) = lam one_hot(y) + (1 - lam) one_hot(y[perm]),
    lam (N,)). perm is a random permutation, or the given ``partners`` (N,) indices.
    """
    x = _check_images(x, "cutmix")
    one_hot = _check_labels(x, y, num_classes, "cutmix")
    lam0 = _lam(lam, alpha, x, "cutmix")
    n, _, h, w = x.shape
    perm = _partners(x, generator, partners, "cutmix")
    mask = box_mask(cutmix_boxes(h, w, lam0, generator), h, w)
    x_mix = torch.where(mask, x[perm], x)
    lam = 1 - mask.flatten(1).to(x.dtype).mean(1)
    targets = lam[:, None] * one_hot + (1 - lam[:, None]) * one_hot[perm]
    return x_mix, targets, lam


def mosaic(x: torch.Tensor, partners: torch.Tensor | None = None,
           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mosaic of four images (the YOLOv4 augmentation for detection): image n and its three
    partners, each shrunk to half size by 2x2 averaging, tiled top-left, top-right, bottom-left,
    bottom-right. x: (N, C, H, W) with H and W even; partners: (N, 3) indices, or None to draw
    them uniformly. Returns (mosaics (N, C, H, W), sources (N, 4) long: which image is in each
    quadrant). A detector keeps every quadrant's boxes, halved and shifted; there is no one
    class label for the mosaic."""
    x = _check_images(x, "mosaic")
    n, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"mosaic: H and W must be even, got shape {tuple(x.shape)}")
    if partners is None:
        where = generator.device if generator is not None else x.device
        partners = torch.randint(n, (n, 3), generator=generator, device=where)
    if (not isinstance(partners, torch.Tensor) or partners.shape != (n, 3)
            or partners.is_floating_point()):
        got = (tuple(partners.shape) if isinstance(partners, torch.Tensor)
               else type(partners).__name__)
        raise ValueError(f"mosaic: partners must be integer indices of shape ({n}, 3), got {got}")
    partners = partners.to(x.device)
    sources = torch.cat([torch.arange(n, device=x.device)[:, None], partners], 1)  # (N, 4)
    small = x.reshape(n, c, h // 2, 2, w // 2, 2).mean((3, 5))[sources]  # (N, 4, C, H/2, W/2)
    top = torch.cat([small[:, 0], small[:, 1]], -1)
    bottom = torch.cat([small[:, 2], small[:, 3]], -1)
    return torch.cat([top, bottom], -2), sources
