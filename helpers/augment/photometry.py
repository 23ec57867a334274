"""Photometric augmentations: brightness, contrast, saturation, sharpness, hue, gray, histogram
equalization, Gaussian and salt-and-pepper noise, blur, Sobel edges."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from helpers import validation
from helpers.augment._common import _check_images, _per_image, _rand, _uniform


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


# RGB -> YIQ: Y is the luma of ``_gray``; I and Q span the chroma plane that a hue shift rotates.
_YIQ = ((0.299, 0.587, 0.114), (0.595716, -0.274453, -0.321263), (0.211456, -0.522591, 0.311135))


def _check_rgb(x, fn: str) -> torch.Tensor:
    x = _check_images(x, fn)
    if x.shape[1] != 3:
        raise ValueError(f"{fn}: expected 3 colour channels (N, 3, H, W), "
                         f"got shape {tuple(x.shape)}")
    return x


def hue_matrix(shift: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) float64 RGB maps that rotate the YIQ chroma plane by 2*pi*shift (shift (N,), in
    turns: 0.5 is half way round the colour wheel); the luma Y is kept."""
    shift = torch.as_tensor(shift, dtype=torch.float64).reshape(-1)
    yiq = torch.tensor(_YIQ, dtype=torch.float64)
    a = 2 * math.pi * shift
    rot = torch.zeros(len(shift), 3, 3, dtype=torch.float64)
    rot[:, 0, 0] = 1.0
    rot[:, 1, 1], rot[:, 1, 2] = torch.cos(a), -torch.sin(a)
    rot[:, 2, 1], rot[:, 2, 2] = torch.sin(a), torch.cos(a)
    return torch.linalg.inv(yiq) @ rot @ yiq


def adjust_hue(x: torch.Tensor, shift) -> torch.Tensor:
    """Shift the hue of RGB images x (N, 3, H, W) by ``shift`` turns (float or (N,), in
    [-0.5, 0.5]): a rotation of the YIQ chroma plane (luma kept, gray pixels unchanged; close to
    an HSV hue shift), clipped to [0, 1]. Shift 0 is the identity."""
    x = _check_rgb(x, "adjust_hue")
    s = _per_image(shift, x, "adjust_hue", "shift")
    if (s.abs() > 0.5).any():
        raise ValueError(f"adjust_hue: shift must be in [-0.5, 0.5] turns, got max |shift| "
                         f"{s.abs().max().item()}")
    m = hue_matrix(s.detach().cpu()).to(x.device, x.dtype)
    return torch.einsum("nij,njhw->nihw", m, x).clamp(0, 1)


def random_hue(x: torch.Tensor, hue: float = 0.1,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """``adjust_hue`` with shift ~ U(-hue, hue) per image (hue in [0, 0.5] turns)."""
    x = _check_rgb(x, "random_hue")
    hue = validation.number(hue, "hue", "random_hue", low=0.0, high=0.5)
    return adjust_hue(x, _uniform(-hue, hue, x.shape[0], x, generator))


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Colour drop: every channel replaced by the luma 0.299 R + 0.587 G + 0.114 B (the mean for
    other channel counts). (N, C, H, W) -> (N, C, H, W)."""
    x = _check_images(x, "grayscale")
    return _gray(x).expand_as(x).contiguous()


def random_grayscale(x: torch.Tensor, p: float = 0.2,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """``grayscale`` applied to each image with probability ``p``."""
    x = _check_images(x, "random_grayscale")
    p = validation.number(p, "p", "random_grayscale", low=0.0, high=1.0)
    drop = _uniform(0.0, 1.0, x.shape[0], x, generator) < p
    return torch.where(drop[:, None, None, None], grayscale(x), x)


def equalize(x: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """Histogram equalization of every channel of every image, on ``levels`` gray levels.

    Values are quantized to v = round(x (L - 1)), then mapped through the cumulative histogram,
    v' = round((cdf(v) - cdf_min) / (H W - cdf_min) (L - 1)), with cdf_min the cdf of the lowest
    level present; returns v' / (L - 1). A constant channel (H W = cdf_min) is left unchanged.
    """
    x = _check_images(x, "equalize")
    if isinstance(levels, bool) or not isinstance(levels, int) or not 2 <= levels <= 65536:
        raise ValueError(f"equalize: levels must be an int in [2, 65536], got {levels!r}")
    n, c, h, w = x.shape
    q = (x.reshape(n * c, h * w) * (levels - 1)).round().clamp(0, levels - 1).long()
    counts = torch.zeros(n * c, levels, dtype=torch.float64, device=x.device)
    counts.scatter_add_(1, q, torch.ones_like(q, dtype=torch.float64))
    cdf = counts.cumsum(1)
    cdf_min = cdf.gather(1, q.min(1, keepdim=True).values)  # (N C, 1)
    denom = h * w - cdf_min
    mapped = ((cdf.gather(1, q) - cdf_min) / denom.clamp_min(1) * (levels - 1)).round()
    out = (mapped / (levels - 1)).to(x.dtype)
    out = torch.where(denom > 0, out, x.reshape(n * c, h * w))
    return out.reshape(n, c, h, w)


def salt_and_pepper(x: torch.Tensor, salt: float = 0.02, pepper: float = 0.02,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Impulse noise: each pixel (all its channels together) becomes white (1, salt) with
    probability ``salt``, black (0, pepper) with probability ``pepper``, else stays."""
    x = _check_images(x, "salt_and_pepper")
    salt = validation.number(salt, "salt", "salt_and_pepper", low=0.0, high=1.0)
    pepper = validation.number(pepper, "pepper", "salt_and_pepper", low=0.0, high=1.0)
    if salt + pepper > 1:
        raise ValueError(f"salt_and_pepper: salt + pepper must be <= 1, got {salt} + {pepper}")
    n, _, h, w = x.shape
    u = _rand((n, 1, h, w), x, generator)
    x = torch.where(u < salt, torch.ones((), dtype=x.dtype, device=x.device), x)
    return torch.where((u >= salt) & (u < salt + pepper), torch.zeros((), dtype=x.dtype,
                                                                       device=x.device), x)


def sobel(x: torch.Tensor) -> torch.Tensor:
    """Edge strength per channel: sqrt(g_x^2 + g_y^2) / (4 sqrt 2) with the 3x3 Sobel kernels
    g_x = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] * x and g_y its transpose (borders replicated),
    so the result lies in [0, 1]. (N, C, H, W) -> (N, C, H, W)."""
    x = _check_images(x, "sobel")
    n, c, h, w = x.shape
    kx = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=x.dtype, device=x.device)
    k = torch.stack([kx, kx.T])[:, None]  # (2, 1, 3, 3)
    y = F.pad(x.reshape(n * c, 1, h, w), (1, 1, 1, 1), mode="replicate")
    g = F.conv2d(y, k)  # cross-correlation, (N C, 2, H, W)
    return (g.pow(2).sum(1).sqrt() / (4 * math.sqrt(2))).reshape(n, c, h, w)
