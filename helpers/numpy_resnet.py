"""A residual block in NumPy, forward and backward, built from ``numpy_nn`` and ``numpy_norm``.

The block is the post-activation basic block of He et al. (2016) with batch norm in training
mode and an identity shortcut (input and output have the same shape):

    z1 = conv(x, w1)        a1 = relu(bn(z1; gamma1, beta1))
    z2 = conv(a1, w2)       y  = relu(bn(z2; gamma2, beta2) + x)

Both convolutions are 3x3 with padding 1 and stride 1 and have no bias (batch norm's shift
replaces it). x: (N, C, H, W); w1, w2: (C, C, 3, 3); gamma1, beta1, gamma2, beta2: (C,), the
names ``numpy_norm.batch_norm`` uses. With ``residual=False`` the "+ x" is left out (the plain
block with the same layers).

Forward/backward rule of this module: the forward returns ``(y, cache)`` and the backward
takes the cache, because the block's backward needs five intermediate arrays that would cost
a second forward pass to recompute. (``numpy_nn`` and ``numpy_norm`` recompute from their
inputs instead: a single layer's backward needs only its input.)
"""

from __future__ import annotations

import numpy as np

from helpers import init
from helpers import numpy_nn as nn
from helpers.numpy_norm import batch_norm, batch_norm_backward

__all__ = ["init_residual_block", "residual_block", "residual_block_backward", "shake_shake",
           "shake_shake_backward"]

PARAMS = ("w1", "gamma1", "beta1", "w2", "gamma2", "beta2")


def init_residual_block(channels: int, rng: np.random.Generator, dtype=np.float64) -> dict:
    """He-initialized weights (``init.kaiming_normal``: std sqrt(2 / (9 C))), batch-norm scales
    gamma 1 and shifts beta 0, as a dict with the keys of ``PARAMS``."""
    if isinstance(channels, bool) or not isinstance(channels, int | np.integer) or channels < 1:
        raise ValueError(f"init_residual_block: channels must be an int >= 1, got {channels!r}")
    shape = (channels, channels, 3, 3)
    params = {name: init.kaiming_normal(shape, rng) for name in ("w1", "w2")}
    params |= {"gamma1": np.ones(channels), "gamma2": np.ones(channels)}
    params |= {"beta1": np.zeros(channels), "beta2": np.zeros(channels)}
    return {k: v.astype(dtype) for k, v in params.items()}


def _check(x, params, fn):
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{fn}: x must be (N, C, H, W), got shape {x.shape}")
    missing = [k for k in PARAMS if k not in params]
    if missing:
        raise ValueError(f"{fn}: params must hold {PARAMS}, missing {missing}")
    c = x.shape[1]
    for k in ("w1", "w2"):
        if np.shape(params[k]) != (c, c, 3, 3):
            raise ValueError(
                f"{fn}: {k} must have shape ({c}, {c}, 3, 3) for x with {c} channels, "
                f"got {np.shape(params[k])}"
            )
    return x


def residual_block(x, params: dict, residual: bool = True):
    """Forward pass. Returns (y, cache): y (N, C, H, W) and what the backward pass needs."""
    x = _check(x, params, "residual_block")
    p = params
    z1 = nn.conv2d(x, p["w1"], padding=1)
    n1 = batch_norm(z1, p["gamma1"], p["beta1"], None, None, training=True)
    a1 = nn.relu(n1)
    z2 = nn.conv2d(a1, p["w2"], padding=1)
    n2 = batch_norm(z2, p["gamma2"], p["beta2"], None, None, training=True)
    s = n2 + x if residual else n2
    y = nn.relu(s)
    return y, (x, z1, n1, a1, z2, s, p, residual)


def residual_block_backward(dy, cache):
    """Backward pass: dy (N, C, H, W) -> (dx, grads) with grads[name] shaped like params[name].

    The shortcut adds dy's gradient straight to dx: dL/dx = dL/ds * (1 + ds_branch/dx), the
    "1" being the identity path.
    """
    x, z1, n1, a1, z2, s, p, residual = cache
    ds = nn.relu_backward(dy, s)
    dz2, dgamma2, dbeta2 = batch_norm_backward(ds, z2, p["gamma2"])
    da1, dw2, _ = nn.conv2d_backward(dz2, a1, p["w2"], padding=1)
    dn1 = nn.relu_backward(da1, n1)
    dz1, dgamma1, dbeta1 = batch_norm_backward(dn1, z1, p["gamma1"])
    dx, dw1, _ = nn.conv2d_backward(dz1, x, p["w1"], padding=1)
    if residual:
        dx = dx + ds
    grads = {"w1": dw1, "gamma1": dgamma1, "beta1": dbeta1,
             "w2": dw2, "gamma2": dgamma2, "beta2": dbeta2}
    return dx, grads


def _per_example(coef, like, name, fn):
    coef = np.asarray(coef, dtype=like.dtype)
    if coef.shape != (like.shape[0],):
        raise ValueError(f"{fn}: {name} must have shape ({like.shape[0]},), one per example, "
                         f"got {coef.shape}")
    return coef.reshape((-1,) + (1,) * (like.ndim - 1))


def shake_shake(b1, b2, alpha):
    """Shake-shake forward (Gastaldi, 2017): alpha * b1 + (1 - alpha) * b2, per example.

    b1, b2: (N, ...) the outputs of two residual branches; alpha: (N,), in training drawn
    from U[0, 1] for each example, 0.5 at test time. Returns (N, ...).
    """
    b1, b2 = np.asarray(b1), np.asarray(b2)
    if b1.shape != b2.shape:
        raise ValueError(
            f"shake_shake: b1 and b2 must have the same shape, got {b1.shape} and {b2.shape}")
    a = _per_example(alpha, b1, "alpha", "shake_shake")
    return a * b1 + (1 - a) * b2


def shake_shake_backward(dy, beta):
    """Shake-shake backward: dy (N, ...) -> (db1, db2) = (beta * dy, (1 - beta) * dy).

    beta: (N,), drawn from U[0, 1] independently of the forward pass's alpha, so the
    gradient is *not* the derivative of the forward (that would use alpha).
    """
    dy = np.asarray(dy)
    b = _per_example(beta, dy, "beta", "shake_shake_backward")
    return b * dy, (1 - b) * dy
