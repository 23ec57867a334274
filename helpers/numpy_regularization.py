"""Regularizers in NumPy: dropout and its variants, label smoothing, calibration error.

Conventions follow PyTorch: ``p`` (or ``drop_rate``) is the probability of *dropping* a unit,
and dropout is *inverted* — kept units are scaled by 1/(1 - p) during training, so nothing
changes at test time. Every random function takes a ``numpy.random.Generator``.

- ``dropout``, ``dropout_backward``: element-wise Bernoulli masks (``nn.Dropout``).
- ``dropout2d``: one mask value per (example, channel), as ``nn.Dropout2d``.
- ``dropconnect_linear``: a linear layer whose *weights* are dropped.
- ``dropblock``, ``dropblock_mask``, ``dropblock_gamma``, ``dropblock_drop_fraction``:
  contiguous square blocks, with the seed rate solved so the dropped fraction is on target.
- ``smooth_labels``, ``cross_entropy_soft``: label smoothing as a loss.
- ``focal_loss``: cross-entropy down-weighted on examples the model already gets right.
- ``expected_calibration_error``: how far confidence is from accuracy.

Forward/backward rule of this module: a random forward returns ``(y, mask)``, and its
backward takes that mask back (``dropout_backward(dy, mask, p)``), so the same units are
dropped in both passes; nothing else is cached. Outside training (or at rate 0) the mask is
all ones, so the backward is the identity. Deterministic losses return ``(loss, dlogits)``.
"""

from __future__ import annotations

import numpy as np

from helpers import validation
from helpers.numpy_nn import log_softmax

__all__ = [
    "cross_entropy_soft",
    "dropblock",
    "dropblock_drop_fraction",
    "dropblock_gamma",
    "dropblock_mask",
    "dropconnect_linear",
    "dropout",
    "dropout2d",
    "dropout_backward",
    "expected_calibration_error",
    "focal_loss",
    "smooth_labels",
]


def _drop_probability(p, fn: str, name: str = "p") -> float:
    return validation.number(p, name, fn, low=0.0, high=1.0, high_open=True,
                             what="the drop probability")


def dropout(x, p: float, training: bool = True, rng: np.random.Generator | None = None):
    """Inverted dropout. x: any shape, float. Returns (y, mask), both shaped like x.

    In training each unit is kept with probability 1 - p and the kept units are scaled by
    1/(1 - p), so E[y] = x. ``mask`` (x's dtype) is 1 where a unit was kept, 0 where dropped.
    When ``training`` is False or p == 0, y is a copy of x and the mask is all ones.
    p outside [0, 1) raises ValueError; ``rng`` is needed only when units can be dropped.
    """
    p = _drop_probability(p, "dropout")
    x = validation.float_array(x, "x", "dropout")
    if not training or p == 0.0:
        return x.copy(), np.ones_like(x)
    rng = validation.rng(rng, "dropout")
    mask = (rng.random(x.shape) >= p).astype(x.dtype)
    return x * mask / (1.0 - p), mask


def dropout_backward(dy, mask, p: float) -> np.ndarray:
    """Gradient of ``dropout`` and ``dropout2d`` in training: dx = dy * mask / (1 - p).

    dy: any shape. mask: dy's shape (from ``dropout``) or (N, C, 1, ..., 1) for a dy of
    shape (N, C, H, ...) (from ``dropout2d``: each channel's one value broadcasts over its
    pixels). Returns dx, shaped like dy.
    """
    p = _drop_probability(p, "dropout_backward")
    dy = validation.float_array(dy, "dy", "dropout_backward")
    mask = np.asarray(mask)
    per_channel = dy.shape[:2] + (1,) * (dy.ndim - 2)
    if mask.shape not in (dy.shape, per_channel):
        also = f" (dropout) or {per_channel} (dropout2d)" if dy.ndim > 2 else ""
        raise ValueError(f"dropout_backward: mask must have dy's shape {dy.shape}{also}, "
                         f"got {mask.shape}")
    return dy * mask / (1.0 - p)


def dropout2d(x, p: float, training: bool = True, rng: np.random.Generator | None = None):
    """Spatial dropout, as ``nn.Dropout2d``: whole channels are dropped.

    x: (N, C, H, W). Returns (y (N, C, H, W), mask (N, C, 1, 1)); a kept channel is scaled by
    1/(1 - p). The identity (a copy, mask of ones) when not training or p == 0. The gradient
    is ``dropout_backward(dy, mask, p)``, which broadcasts the mask over H and W.
    """
    p = _drop_probability(p, "dropout2d")
    x = validation.float_array(x, "x", "dropout2d", 4)
    if not training or p == 0.0:
        return x.copy(), np.ones(x.shape[:2] + (1, 1), x.dtype)
    rng = validation.rng(rng, "dropout2d")
    mask = (rng.random(x.shape[:2] + (1, 1)) >= p).astype(x.dtype)
    return x * mask / (1.0 - p), mask


def dropconnect_linear(x, w, b, p: float, training: bool = True,
                       rng: np.random.Generator | None = None):
    """A linear layer with DropConnect: weights, not activations, are dropped.

    x: (N, D_in), w: (D_out, D_in), b: (D_out,) or None. In training every example gets its own
    Bernoulli mask over the weights, mask: (N, D_out, D_in), kept weights scaled by 1/(1 - p),
    and y[n] = (w * mask[n] / (1 - p)) @ x[n] + b. At test time (or p == 0) y = x @ w.T + b,
    the expected pre-activation, and mask is all ones, as for ``dropout``. (Through a
    nonlinearity that is not the average prediction of the sampled networks: Wan et al. use
    moment matching at inference instead.) Returns (y (N, D_out), mask (N, D_out, D_in)).
    """
    p = _drop_probability(p, "dropconnect_linear")
    x = validation.float_array(x, "x", "dropconnect_linear", 2)
    w = validation.float_array(w, "w", "dropconnect_linear", 2)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"dropconnect_linear: x has {x.shape[1]} features but w expects "
                         f"{w.shape[1]} (x {x.shape}, w {w.shape})")
    bias = np.zeros(w.shape[0]) if b is None else np.asarray(b, dtype=w.dtype)
    if bias.shape != (w.shape[0],):
        raise ValueError(f"dropconnect_linear: b must have shape ({w.shape[0]},), "
                         f"got {bias.shape}")
    if not training or p == 0.0:
        return x @ w.T + bias, np.ones((x.shape[0],) + w.shape, w.dtype)
    rng = validation.rng(rng, "dropconnect_linear")
    mask = (rng.random((x.shape[0],) + w.shape) >= p).astype(w.dtype)
    y = np.einsum("noi,ni->no", w * mask, x) / (1.0 - p) + bias
    return y, mask


def _check_block(block_size, height: int, width: int, fn: str) -> int:
    if isinstance(block_size, bool) or not isinstance(block_size, int | np.integer):
        raise ValueError(f"{fn}: block_size must be an int, got {block_size!r}")
    if not 1 <= block_size <= min(height, width):
        raise ValueError(f"{fn}: expected 1 <= block_size <= min(H, W) = {min(height, width)}, "
                         f"got {block_size} for a {height}x{width} map")
    return int(block_size)


def _seed_counts(block_size: int, height: int, width: int) -> np.ndarray:
    """(H, W): how many valid block seeds cover each position (seeds where a block fits)."""

    def along(n):
        i = np.arange(n)
        return np.minimum(i, n - block_size) - np.maximum(0, i - block_size + 1) + 1

    return np.outer(along(height), along(width))


def dropblock_drop_fraction(gamma: float, block_size: int, height: int, width: int) -> float:
    """Expected fraction of an (H, W) map that DropBlock drops when seeds fire with rate gamma.

    Seeds sit only where a whole block fits, (H - b + 1) x (W - b + 1) of them; a position
    covered by k seeds is dropped with probability 1 - (1 - gamma)^k. Blocks may overlap, so
    this is less than gamma * b^2 * (number of seeds) / (H W).
    """
    block_size = _check_block(block_size, height, width, "dropblock_drop_fraction")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"dropblock_drop_fraction: gamma must be in [0, 1], got {gamma}")
    counts = _seed_counts(block_size, height, width)
    return float(1.0 - np.mean((1.0 - gamma) ** counts))


def dropblock_gamma(drop_rate: float, block_size: int, height: int, width: int,
                    exact: bool = True) -> float:
    """The seed rate gamma for DropBlock on an (H, W) map.

    ``exact=False`` gives the DropBlock paper's formula
    gamma = drop_rate / b^2 * H W / ((H - b + 1)(W - b + 1)), which ignores overlapping blocks
    and so drops a little less than ``drop_rate``. ``exact=True`` (default) solves
    ``dropblock_drop_fraction(gamma, ...) == drop_rate`` by bisection (to 1e-12).
    """
    drop_rate = _drop_probability(drop_rate, "dropblock_gamma", "drop_rate")
    block_size = _check_block(block_size, height, width, "dropblock_gamma")
    seeds = (height - block_size + 1) * (width - block_size + 1)
    if not exact:
        return min(1.0, drop_rate / block_size**2 * height * width / seeds)
    lo, hi = 0.0, 1.0
    counts = _seed_counts(block_size, height, width)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if 1.0 - np.mean((1.0 - mid) ** counts) < drop_rate:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def dropblock_mask(shape, drop_rate: float, block_size: int, rng: np.random.Generator,
                   gamma: float | None = None) -> np.ndarray:
    """A DropBlock keep-mask of ``shape`` (N, C, H, W): float64, 0 inside dropped blocks, else 1.

    Seeds are drawn with rate ``gamma`` (default ``dropblock_gamma(drop_rate, ...)``) on the
    (H - b + 1) x (W - b + 1) positions where a block fits; each seed drops the b x b block
    whose top-left corner it is. Blocks are found with one max over sliding windows.
    """
    if len(shape) != 4:
        raise ValueError(f"dropblock_mask: expected shape (N, C, H, W), got {tuple(shape)}")
    n, c, h, w = (int(s) for s in shape)
    drop_rate = _drop_probability(drop_rate, "dropblock_mask", "drop_rate")
    block_size = _check_block(block_size, h, w, "dropblock_mask")
    rng = validation.rng(rng, "dropblock_mask")
    if gamma is None:
        gamma = dropblock_gamma(drop_rate, block_size, h, w)
    elif not 0.0 <= gamma <= 1.0:
        raise ValueError(f"dropblock_mask: gamma must be in [0, 1], got {gamma}")
    seeds = (rng.random((n, c, h - block_size + 1, w - block_size + 1)) < gamma).astype(np.float64)
    pad = block_size - 1
    padded = np.pad(seeds, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    block = (block_size, block_size)
    windows = np.lib.stride_tricks.sliding_window_view(padded, block, axis=(2, 3))
    return 1.0 - windows.max(axis=(-2, -1))


def dropblock(x, drop_rate: float, block_size: int, training: bool = True,
              rng: np.random.Generator | None = None):
    """DropBlock on x (N, C, H, W). Returns (y, mask), mask (N, C, H, W) with 1 = kept.

    In training y = x * mask * (mask.size / mask.sum()): the kept units are rescaled by the
    fraction actually kept, not by 1/(1 - drop_rate). The identity (a copy, mask of ones)
    when not training or drop_rate == 0.
    """
    drop_rate = _drop_probability(drop_rate, "dropblock", "drop_rate")
    x = validation.float_array(x, "x", "dropblock", 4)
    _check_block(block_size, x.shape[2], x.shape[3], "dropblock")
    if not training or drop_rate == 0.0:
        return x.copy(), np.ones_like(x)
    rng = validation.rng(rng, "dropblock")
    mask = dropblock_mask(x.shape, drop_rate, block_size, rng).astype(x.dtype)
    kept = mask.sum()
    return x * mask * (mask.size / max(kept, 1.0)), mask


def smooth_labels(y, num_classes: int, eps: float) -> np.ndarray:
    """Label smoothing targets: (1 - eps) * one_hot(y) + eps / K. y: (N,) ints -> (N, K) float64."""
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"smooth_labels: expected y (N,) of ints, got {y.dtype} {y.shape}")
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"smooth_labels: eps must be in [0, 1], got {eps}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"smooth_labels: labels must lie in [0, {num_classes}), "
                         f"got range [{y.min()}, {y.max()}]")
    return (1.0 - eps) * np.eye(num_classes)[y] + eps / num_classes


def cross_entropy_soft(logits, targets):
    """Mean cross-entropy with probability targets and its gradient.

    logits, targets: (N, K); each target row sums to 1. Returns (loss, dlogits (N, K)) with
    loss = -mean_n sum_k targets[n, k] log softmax(logits)[n, k] and
    dlogits = (softmax(logits) - targets) / N, in the dtype of logits (float32 stays
    float32; the loss is summed in float64).
    """
    logits = validation.float_array(logits, "logits", "cross_entropy_soft", 2)
    targets = np.asarray(targets, dtype=logits.dtype)
    if logits.shape != targets.shape:
        raise ValueError(f"cross_entropy_soft: targets must have the shape of logits "
                         f"{logits.shape} (N, K), got {targets.shape}")
    log_probs = log_softmax(logits)
    n = logits.shape[0]
    loss = -np.sum(targets * log_probs, dtype=np.float64) / n
    return float(loss), (np.exp(log_probs) - targets) / n


def focal_loss(logits, labels, gamma: float = 2.0, alpha=None):
    """Focal loss (Lin et al.) and its gradient.

    logits: (N, K) float; labels: (N,) ints in [0, K); gamma >= 0; alpha: None (every class
    weighted 1) or a (K,) array of per-class weights >= 0. With p = softmax(logits) and
    p_y the probability of each example's label, returns (loss, dlogits (N, K)) where
    loss = mean_n -alpha[y_n] (1 - p_y)^gamma log p_y, in the dtype of logits (the loss is
    summed in float64). gamma = 0 and alpha = None give softmax cross-entropy.

    dlogits: with l = log p_y, dloss/dl = -alpha_y (1 - p_y)^gamma (1 + gamma p_y r),
    r = -l / (1 - p_y) (-> 1 as p_y -> 1), and dl/dlogits = one_hot(y) - p; divided by N.
    Everything is computed from log_softmax, so logits of +-1000 give finite values.
    """
    fn = "focal_loss"
    logits = validation.float_array(logits, "logits", fn, 2)
    n, k = logits.shape
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{fn}: labels must be ({n},) ints for logits {logits.shape}, "
                         f"got {labels.dtype} {labels.shape}")
    if n == 0:
        raise ValueError(f"{fn}: expected at least one example, got logits {logits.shape}")
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"{fn}: labels must lie in [0, {k}), "
                         f"got range [{labels.min()}, {labels.max()}]")
    gamma = validation.number(gamma, "gamma", fn, low=0.0, what="the focusing parameter")
    if alpha is None:
        weight = np.ones(n, dtype=logits.dtype)
    else:
        alpha = np.asarray(alpha, dtype=logits.dtype)
        if alpha.shape != (k,) or not np.all(np.isfinite(alpha)) or np.any(alpha < 0):
            raise ValueError(f"{fn}: alpha must be None or ({k},) finite weights >= 0, "
                             f"got shape {alpha.shape}")
        weight = alpha[labels]
    log_probs = log_softmax(logits)
    log_py = log_probs[np.arange(n), labels]
    p_y = np.exp(log_py)
    one_minus = -np.expm1(log_py)  # 1 - p_y without cancellation
    focus = one_minus**gamma
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(one_minus > 0, -log_py / one_minus, 1.0)
    loss = -np.sum(weight * focus * log_py, dtype=np.float64) / n
    dl = -weight * focus * (1.0 + gamma * p_y * ratio)  # dloss_n / dlog p_y
    dlogits = -np.exp(log_probs)
    dlogits[np.arange(n), labels] += 1.0
    return float(loss), (dl[:, None] * dlogits / n).astype(logits.dtype)


def expected_calibration_error(probs, y, n_bins: int = 10):
    """Expected calibration error of predicted probabilities, with its reliability table.

    probs: (N, K) rows summing to 1; y: (N,) int labels. Predictions are binned by confidence
    (max probability) into ``n_bins`` equal bins on [0, 1]; ECE = sum_b (n_b / N) |acc_b - conf_b|.
    Returns (ece, table) where table is a dict of (n_bins,) arrays: "confidence" and "accuracy"
    (NaN for empty bins), "count".
    """
    probs, y = np.asarray(probs, dtype=np.float64), np.asarray(y)
    if probs.ndim != 2 or y.shape != probs.shape[:1]:
        raise ValueError(f"expected_calibration_error: expected probs (N, K) and y (N,), "
                         f"got {probs.shape} and {y.shape}")
    if len(y) == 0:
        raise ValueError("expected_calibration_error: expected at least one prediction, got none")
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"expected_calibration_error: n_bins must be an int >= 1, got {n_bins!r}")
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf_b = np.bincount(bins, confidence, n_bins) / count
        acc_b = np.bincount(bins, correct, n_bins) / count
    filled = count > 0
    ece = float(np.sum(count[filled] / len(y) * np.abs(acc_b[filled] - conf_b[filled])))
    return ece, {"confidence": conf_b, "accuracy": acc_b, "count": count}
