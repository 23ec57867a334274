"""A residual block in NumPy, forward and backward, built from ``numpy_nn`` and ``numpy_norm``.

The block is the post-activation basic block of He et al. (2016) with batch norm in training
mode and an identity shortcut (input and output have the same shape):

    z1 = conv(x, w1)        a1 = relu(bn(z1; g1, b1))
    z2 = conv(a1, w2)       y  = relu(bn(z2; g2, b2) + x)

Both convolutions are 3x3 with padding 1 and stride 1 and have no bias (batch norm's shift
replaces it). x: (N, C, H, W); w1, w2: (C, C, 3, 3); g1, b1, g2, b2: (C,). With
``residual=False`` the "+ x" is left out (the plain block with the same layers).
"""

from __future__ import annotations

import numpy as np

from helpers import numpy_nn as nn
from helpers.numpy_norm import batch_norm, batch_norm_backward

__all__ = ["init_residual_block", "residual_block", "residual_block_backward"]

PARAMS = ("w1", "g1", "b1", "w2", "g2", "b2")


def init_residual_block(channels: int, rng: np.random.Generator, dtype=np.float64) -> dict:
    """He-initialized weights (std sqrt(2 / (9 C))), norm scales 1 and shifts 0, as a dict."""
    if channels < 1:
        raise ValueError(f"init_residual_block: channels must be >= 1, got {channels}")
    std = np.sqrt(2.0 / (9 * channels))
    params = {name: rng.standard_normal((channels, channels, 3, 3)) * std for name in ("w1", "w2")}
    params |= {"g1": np.ones(channels), "g2": np.ones(channels)}
    params |= {"b1": np.zeros(channels), "b2": np.zeros(channels)}
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
    n1 = batch_norm(z1, p["g1"], p["b1"], None, None, training=True)
    a1 = nn.relu(n1)
    z2 = nn.conv2d(a1, p["w2"], padding=1)
    n2 = batch_norm(z2, p["g2"], p["b2"], None, None, training=True)
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
    dz2, dg2, db2 = batch_norm_backward(ds, z2, p["g2"])
    da1, dw2, _ = nn.conv2d_backward(dz2, a1, p["w2"], padding=1)
    dn1 = nn.relu_backward(da1, n1)
    dz1, dg1, db1 = batch_norm_backward(dn1, z1, p["g1"])
    dx, dw1, _ = nn.conv2d_backward(dz1, x, p["w1"], padding=1)
    if residual:
        dx = dx + ds
    grads = {"w1": dw1, "g1": dg1, "b1": db1, "w2": dw2, "g2": dg2, "b2": db2}
    return dx, grads
