"""Shared validation and per-image random draws of the augmentation modules."""

from __future__ import annotations

import torch

PADDING_MODES = ("constant", "reflect", "replicate")
RAND_AUGMENT_OPS = ("identity", "rotate", "shear_x", "shear_y", "translate_x", "translate_y",
                    "brightness", "contrast", "saturation", "sharpness")


def _check_images(x, fn: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{fn}: x must be a torch.Tensor (N, C, H, W), got {type(x).__name__}")
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"{fn}: x must be a float tensor (N, C, H, W), "
                         f"got {x.dtype} of shape {tuple(x.shape)}")
    return x


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
