"""Policies and plumbing: RandAugment, a loader wrapper, test-time augmentation."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

from helpers import validation
from helpers.augment._common import (
    RAND_AUGMENT_OPS,
    _check_images,
    _rand,
    _randint,
)
from helpers.augment.geometry import affine, affine_theta
from helpers.augment.photometry import (
    adjust_brightness,
    adjust_contrast,
    adjust_saturation,
    adjust_sharpness,
)
from helpers.training import eval_mode


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
    validation.integer(num_ops, "num_ops", "rand_augment", low=0)
    validation.number(max_magnitude, "max_magnitude", "rand_augment", low=1e-9, high=1e9)
    magnitude = validation.number(magnitude, "magnitude", "rand_augment",
                                  low=0.0, high=max_magnitude)
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
    mode without gradients and gives every module back its own mode (a batch norm frozen in
    eval mode stays frozen). Returns (N, K)."""
    x = _check_images(x, "tta_probs")
    if not transforms:
        raise ValueError("tta_probs: expected at least one transform, got none")
    with eval_mode(model), torch.no_grad():
        probs = [torch.softmax(model(t(x)), dim=1) for t in transforms]
    return torch.stack(probs).mean(0)
