"""Photometric augmentations: brightness, contrast, saturation, sharpness, noise, blur."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from helpers import validation
from helpers.augment._common import _check_images, _per_image, _uniform


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Luma (N, 1, H, W): ITU-R 601 weights for 3 channels, the mean otherwise."""
    if x.shape[1] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
        return (x * weights[None, :, None, None]).sum(1, keepdim=True)
    return x.mean(1, keepdim=True)


def _blend(x, other, factor, fn: str) -> torch.Tensor:
    f = _per_image(factor, x, fn, "factor")
    if (f < 0).any():
        raise ValueError(f"{fn}: factor must be >= 0, got min {f.min().item()}")
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
        s = validation.number(s, name, "color_jitter", low=0.0, high=10.0)
        if s > 0:
            x = fn(x, _uniform(max(0.0, 1 - s), 1 + s, x.shape[0], x, generator))
    return x


def gaussian_noise(x: torch.Tensor, std: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """x + std * N(0, 1) noise, clipped to [0, 1]."""
    x = _check_images(x, "gaussian_noise")
    std = validation.number(std, "std", "gaussian_noise", low=0.0, high=10.0)
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
        raise ValueError(f"gaussian_blur: sigma must be >= 0, got min {s.min().item()}")
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
