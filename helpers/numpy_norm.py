"""Normalization layers in NumPy, forward and backward, with the semantics of torch.nn.functional.

``x`` is (N, C) or (N, C, H, W) (any (N, C, *spatial) works): N examples, C channels. Every
layer standardizes ``x`` over some axes, then applies a per-channel affine map
``gamma[c] * x_hat + beta[c]``; the layers differ only in the axes:

- ``batch_norm``: per channel, over the batch and the pixels (N, H, W);
- ``group_norm``: per example and group of C / G channels, over (C / G, H, W);
- ``layer_norm``: group norm with one group: per example, over (C, H, W);
- ``instance_norm``: group norm with C groups: per example and channel, over (H, W).

Variances are biased (divide by the count) inside the normalization, as in PyTorch.
float32 in gives float32 out and float64 gives float64. ``gamma`` and ``beta`` are (C,)
arrays or None (no scale / no shift).

Forward/backward rule of this module (and of ``numpy_nn``): a backward recomputes what it
needs from the forward's inputs, ``batch_norm_backward(dy, x, gamma)``, so a forward returns
only its output and no cache is passed around.
"""

from __future__ import annotations

import numpy as np

from helpers import validation

__all__ = [
    "batch_norm",
    "batch_norm_backward",
    "group_norm",
    "group_norm_backward",
    "instance_norm",
    "layer_norm",
]


# --------------------------------------------------------------------------- validation


def _check_x(x, fn: str, name: str = "x") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"{fn}: {name} must be (N, C) or (N, C, H, W), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{fn}: {name} must be a float32 or float64 array, got dtype {x.dtype}")
    return x


def _check_channel_vector(a, channels: int, name: str, fn: str, *, optional: bool = True):
    """None (when optional) or a float array of shape (C,)."""
    if a is None:
        if optional:
            return None
        raise ValueError(f"{fn}: {name} must be an array of shape ({channels},), got None")
    a = np.asarray(a)
    if a.shape != (channels,):
        raise ValueError(
            f"{fn}: {name} must have shape ({channels},) (one value per channel), got {a.shape}"
        )
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{fn}: {name} must be a float array, got dtype {a.dtype}")
    return a


def _check_groups(num_groups, channels: int, fn: str) -> int:
    if isinstance(num_groups, bool) or not isinstance(num_groups, int | np.integer):
        raise ValueError(f"{fn}: num_groups must be an int, got {num_groups!r}")
    if num_groups < 1 or channels % num_groups != 0:
        raise ValueError(
            f"{fn}: num_groups must be >= 1 and divide the {channels} channels, got {num_groups}"
        )
    return int(num_groups)


def _channel_shape(x: np.ndarray) -> tuple[int, ...]:
    """Shape that broadcasts a (C,) vector against x: (1, C, 1, 1) for 4-D x."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _affine(x_hat: np.ndarray, gamma, beta) -> np.ndarray:
    shape = _channel_shape(x_hat)
    y = x_hat if gamma is None else x_hat * gamma.reshape(shape)
    return y if beta is None else y + beta.reshape(shape)


# --------------------------------------------------------------------------- batch norm


def batch_norm(x, gamma, beta, running_mean, running_var, training: bool, momentum: float = 0.1,
               eps: float = 1e-5) -> np.ndarray:
    """Batch normalization: per channel, over the batch and the pixels.

    x: (N, C) or (N, C, H, W); gamma, beta: (C,) or None; running_mean, running_var: (C,)
    float arrays or None. Returns y shaped like x.

    training=True: normalize with the batch's mean and *biased* variance over (N, H, W), and,
    when the running arrays are given, update them **in place** with PyTorch's rule
    ``new = (1 - momentum) * old + momentum * batch statistic``, the variance entering
    *unbiased* (times m / (m - 1), m = N * H * W values per channel).
    training=False: normalize with running_mean and running_var (required), left unchanged.

    The order is the math's, gamma and beta first, then the running statistics.
    ``torch.nn.functional.batch_norm`` takes them the other way round:
    ``F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)``.
    """
    fn = "batch_norm"
    x = _check_x(x, fn)
    channels = x.shape[1]
    gamma = _check_channel_vector(gamma, channels, "gamma", fn)
    beta = _check_channel_vector(beta, channels, "beta", fn)
    eps = validation.number(eps, "eps", fn, low=0.0, low_open=True)
    if not 0 <= momentum <= 1:
        raise ValueError(f"{fn}: momentum must be in [0, 1], got {momentum!r}")
    for name, stat in (("running_mean", running_mean), ("running_var", running_var)):
        if stat is None:
            if not training:
                raise ValueError(f"{fn}: {name} is required when training=False, got None")
            continue
        if not isinstance(stat, np.ndarray):
            raise ValueError(
                f"{fn}: {name} must be a NumPy array (it is updated in place), "
                f"got {type(stat).__name__}"
            )
        _check_channel_vector(stat, channels, name, fn, optional=False)
    axes = (0, *range(2, x.ndim))
    shape = _channel_shape(x)
    if training:
        count = x.size // channels
        if count < 2:
            raise ValueError(
                f"{fn}: training needs more than 1 value per channel, got x of shape {x.shape}"
            )
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * var * count / (count - 1)
    else:
        mean, var = running_mean, running_var
    x_hat = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    return _affine(x_hat, gamma, beta).astype(x.dtype, copy=False)


def batch_norm_backward(dy, x, gamma, eps: float = 1e-5):
    """Gradient of training-mode ``batch_norm`` (batch statistics) with respect to its inputs.

    dy, x: (N, C) or (N, C, H, W); gamma: (C,) or None (scale 1). Returns (dx, dgamma, dbeta)
    with dx shaped like x and dgamma, dbeta of shape (C,). With m values per channel,
    x_hat = (x - mean) / sqrt(var + eps) and g = gamma * dy,

        dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps),

    the means taken per channel over (N, H, W).
    """
    fn = "batch_norm_backward"
    x = _check_x(x, fn)
    dy = _check_x(dy, fn, "dy")
    if dy.shape != x.shape:
        raise ValueError(f"{fn}: dy must have the shape of x {x.shape}, got {dy.shape}")
    gamma = _check_channel_vector(gamma, x.shape[1], "gamma", fn)
    eps = validation.number(eps, "eps", fn, low=0.0, low_open=True)
    axes = (0, *range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    x_hat = (x - mean) * inv_std
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * x_hat).sum(axis=axes)
    g = dy if gamma is None else dy * gamma.reshape(_channel_shape(x))
    dx = inv_std * (g - g.mean(axis=axes, keepdims=True)
                    - x_hat * (g * x_hat).mean(axis=axes, keepdims=True))
    return dx.astype(x.dtype, copy=False), dgamma, dbeta


# --------------------------------------------------------------------------- group norm


def _grouped(x: np.ndarray, num_groups: int) -> np.ndarray:
    """(N, C, *spatial) -> (N, G, C / G * prod(spatial)): one row per (example, group)."""
    return x.reshape(x.shape[0], num_groups, -1)


def group_norm(x, num_groups: int, gamma, beta, eps: float = 1e-5) -> np.ndarray:
    """Group normalization, as ``F.group_norm``: per example and group of channels.

    x: (N, C) or (N, C, H, W) with C divisible by num_groups; gamma, beta: (C,) or None.
    Channels c = g * C/G ... (g + 1) * C/G - 1 form group g; each (example, group) is
    standardized over its C/G * H * W values with their mean and biased variance, then
    y = gamma[c] * x_hat + beta[c]. Returns y shaped like x. Independent of the batch:
    the result for one example does not depend on the others.
    """
    fn = "group_norm"
    x = _check_x(x, fn)
    channels = x.shape[1]
    num_groups = _check_groups(num_groups, channels, fn)
    gamma = _check_channel_vector(gamma, channels, "gamma", fn)
    beta = _check_channel_vector(beta, channels, "beta", fn)
    eps = validation.number(eps, "eps", fn, low=0.0, low_open=True)
    xg = _grouped(x, num_groups)
    x_hat = (xg - xg.mean(axis=2, keepdims=True)) / np.sqrt(xg.var(axis=2, keepdims=True) + eps)
    return _affine(x_hat.reshape(x.shape), gamma, beta).astype(x.dtype, copy=False)


def group_norm_backward(dy, x, num_groups: int, gamma, eps: float = 1e-5):
    """Gradient of ``group_norm``: returns (dx, dgamma, dbeta), dx like x, the others (C,).

    The batch-norm formula applied per (example, group): with g = gamma * dy and the means
    over each group's C/G * H * W values,
    dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps).
    """
    fn = "group_norm_backward"
    x = _check_x(x, fn)
    dy = _check_x(dy, fn, "dy")
    if dy.shape != x.shape:
        raise ValueError(f"{fn}: dy must have the shape of x {x.shape}, got {dy.shape}")
    channels = x.shape[1]
    num_groups = _check_groups(num_groups, channels, fn)
    gamma = _check_channel_vector(gamma, channels, "gamma", fn)
    eps = validation.number(eps, "eps", fn, low=0.0, low_open=True)
    xg = _grouped(x, num_groups)
    inv_std = 1.0 / np.sqrt(xg.var(axis=2, keepdims=True) + eps)
    x_hat = (xg - xg.mean(axis=2, keepdims=True)) * inv_std
    axes = (0, *range(2, x.ndim))
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * x_hat.reshape(x.shape)).sum(axis=axes)
    g = dy if gamma is None else dy * gamma.reshape(_channel_shape(x))
    g = _grouped(g, num_groups)
    dx = inv_std * (g - g.mean(axis=2, keepdims=True)
                    - x_hat * (g * x_hat).mean(axis=2, keepdims=True))
    return dx.reshape(x.shape).astype(x.dtype, copy=False), dgamma, dbeta


def layer_norm(x, gamma, beta, eps: float = 1e-5) -> np.ndarray:
    """Layer normalization over (C, H, W) per example: ``group_norm`` with one group.

    x: (N, C) or (N, C, H, W); gamma, beta: (C,) or None, a per-channel affine as in
    ``nn.GroupNorm(1, C)``. Equals ``F.layer_norm(x, x.shape[1:])`` followed by that affine
    (``nn.LayerNorm`` would instead learn one scale per element of (C, H, W)).
    """
    x = _check_x(x, "layer_norm")
    return group_norm(x, 1, gamma, beta, eps)


def instance_norm(x, gamma, beta, eps: float = 1e-5) -> np.ndarray:
    """Instance normalization over (H, W) per example and channel: ``group_norm`` with C groups.

    x: (N, C, H, W); gamma, beta: (C,) or None. Equals ``F.instance_norm(x, weight=gamma,
    bias=beta)`` with the batch's own statistics.
    """
    x = _check_x(x, "instance_norm")
    if x.ndim < 3:
        raise ValueError(
            f"instance_norm: x must have spatial axes, (N, C, H, W), got shape {x.shape}"
        )
    return group_norm(x, x.shape[1], gamma, beta, eps)
