"""Pruning masks and integer quantization in NumPy, matched against PyTorch.

Masks are float arrays shaped like the weights, 1 = keep and 0 = pruned.

Quantization follows the affine map of ``torch.quantize_per_tensor``: an integer
q = clip(round(x / scale) + zero_point, qmin, qmax) stands for x ~ scale * (q - zero_point).
(Seed 003 writes q = round((x - z) / s) together with x = s (q - z); those two are not inverses.)

- ``qrange(dtype)``: (qmin, qmax) of "int8", "uint8", "int4", "uint4".
- ``choose_qparams(x_min, x_max, dtype, symmetric)``: (scale, zero_point), MinMaxObserver's rule.
- ``quantize``, ``dequantize``, ``fake_quantize`` and ``fake_quantize_backward`` (the
  straight-through estimator of ``torch.fake_quantize_per_tensor_affine``).
- ``magnitude_prune_mask``, ``global_magnitude_prune_masks``, ``structured_prune_mask``: the masks
  of ``torch.nn.utils.prune.l1_unstructured``, ``global_unstructured`` and ``ln_structured(n=1)``.
- ``gradual_sparsity``: Zhu and Gupta's cubic sparsity schedule.

Forward and backward: every function here is a forward computation except
``fake_quantize_backward``, which takes the upstream gradient ``dy`` of ``fake_quantize``'s
output and returns the gradient for its input ``x`` (same shape as ``x``). Masks carry no
gradient of their own: a pruned weight's gradient is the upstream one times its mask.
Bad arguments raise ``ValueError("fn: name must be ..., got ...")`` (``helpers.validation``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from helpers.validation import integer, number

_QRANGES = {"int8": (-128, 127), "uint8": (0, 255), "int4": (-8, 7), "uint4": (0, 15)}
_EPS32 = float(np.finfo(np.float32).eps)


def qrange(dtype: str) -> tuple[int, int]:
    """(qmin, qmax) of an integer type: int8 (-128, 127), uint8 (0, 255), int4 (-8, 7),
    uint4 (0, 15)."""
    if not isinstance(dtype, str) or dtype not in _QRANGES:
        raise ValueError(f"qrange: dtype must be one of {sorted(_QRANGES)}, got {dtype!r}")
    return _QRANGES[dtype]


def choose_qparams(x_min: float, x_max: float, dtype: str = "uint8",
                   symmetric: bool = False) -> tuple[float, int]:
    """(scale, zero_point) for values observed in [x_min, x_max], by the rule of
    ``torch.ao.quantization.observer.MinMaxObserver`` (per-tensor affine or symmetric).

    The range is first widened to include 0. Affine: scale = (max - min) / (qmax - qmin),
    zero_point = qmin - round(min / scale) clamped to [qmin, qmax]. Symmetric:
    scale = max(-min, max) / ((qmax - qmin) / 2), zero_point = 0 for signed types, 128 for
    uint8 and (qmin + qmax) // 2 = 7 for uint4 (torch's rule for a custom range). scale is
    at least float32's machine epsilon. Computed in float32 like torch; returns (float, int).
    """
    qmin, qmax = qrange(dtype)
    x_min = number(x_min, "x_min", "choose_qparams")
    x_max = number(x_max, "x_max", "choose_qparams")
    if x_min > x_max:
        raise ValueError(
            f"choose_qparams: x_min must be <= x_max, got x_min={x_min!r}, x_max={x_max!r}")
    f32 = np.float32
    lo, hi = min(f32(x_min), f32(0)), max(f32(x_max), f32(0))
    if symmetric:
        hi = max(-lo, hi)
        scale = max(f32(hi / f32((qmax - qmin) / 2)), f32(_EPS32))
        middle = 128 if dtype == "uint8" else (qmin + qmax) // 2
        zero_point = 0 if qmin < 0 else middle
    else:
        scale = max(f32((hi - lo) / f32(qmax - qmin)), f32(_EPS32))
        zero_point = int(np.clip(qmin - np.rint(lo / scale), qmin, qmax))
    return float(scale), int(zero_point)


def _qparams(fn: str, scale, zero_point, qmin, qmax) -> tuple[float, int, int, int]:
    """The quantization parameters as (float, int, int, int), or a ValueError naming ``fn``."""
    qmin, qmax = integer(qmin, "qmin", fn), integer(qmax, "qmax", fn)
    if qmin >= qmax:
        raise ValueError(f"{fn}: qmin must be < qmax, got qmin={qmin}, qmax={qmax}")
    scale = number(scale, "scale", fn, low=0.0, low_open=True)
    zero_point = integer(zero_point, "zero_point", fn)
    if not qmin <= zero_point <= qmax:
        raise ValueError(f"{fn}: zero_point must be in [{qmin}, {qmax}], got {zero_point}")
    return scale, zero_point, qmin, qmax


def _scaled(x, scale: float) -> np.ndarray:
    """x / scale in float32 as torch computes it: x * (1 / scale), rounded half to even."""
    inv = np.float32(1.0) / np.float32(scale)
    return np.rint(np.asarray(x, dtype=np.float32) * inv)


def quantize(x, scale: float, zero_point: int, dtype: str = "uint8") -> np.ndarray:
    """clip(round(x / scale) + zero_point, qmin, qmax) with rounding half to even.

    x: array of any shape (computed in float32). Returns an int64 array of x's shape, equal to
    ``torch.quantize_per_tensor(x, scale, zero_point, torch.q<dtype>).int_repr()`` for 8 bits.
    """
    scale, zero_point, qmin, qmax = _qparams("quantize", scale, zero_point, *qrange(dtype))
    return np.clip(_scaled(x, scale) + zero_point, qmin, qmax).astype(np.int64)


def dequantize(q, scale: float, zero_point: int) -> np.ndarray:
    """scale * (q - zero_point): q an integer array of any shape; returns float32 of its shape."""
    scale = number(scale, "scale", "dequantize", low=0.0, low_open=True)
    zero_point = integer(zero_point, "zero_point", "dequantize")
    q = np.asarray(q)
    if not np.issubdtype(q.dtype, np.integer):
        raise ValueError(f"dequantize: q must be an integer array, got dtype {q.dtype}")
    return (np.float32(scale) * (q - zero_point).astype(np.float32)).astype(np.float32)


def fake_quantize(x, scale: float, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """Quantize then dequantize in one step: scale * (clip(round(x / scale) + zero_point,
    qmin, qmax) - zero_point). x: any shape; returns float32 of that shape, equal to
    ``torch.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax)``.
    """
    scale, zero_point, qmin, qmax = _qparams("fake_quantize", scale, zero_point, qmin, qmax)
    q = np.clip(_scaled(x, scale) + zero_point, qmin, qmax)
    return (np.float32(scale) * (q - zero_point)).astype(np.float32)


def fake_quantize_backward(dy, x, scale: float, zero_point: int, qmin: int,
                           qmax: int) -> np.ndarray:
    """The straight-through estimator: dL/dx = dy where round(x / scale) + zero_point lies in
    [qmin, qmax], and 0 where the forward pass clipped. dy and x: the same shape; returns
    float32 of that shape, equal to the gradient torch's fake_quantize_per_tensor_affine gives.
    """
    scale, zero_point, qmin, qmax = _qparams(
        "fake_quantize_backward", scale, zero_point, qmin, qmax)
    dy, x = np.asarray(dy), np.asarray(x)
    if dy.shape != x.shape:
        raise ValueError(
            f"fake_quantize_backward: dy must have x's shape {x.shape}, got {dy.shape}")
    q = _scaled(x, scale) + zero_point
    return np.where((q >= qmin) & (q <= qmax), dy, 0).astype(np.float32)


def _amount(fn: str, amount) -> float:
    return number(amount, "amount", fn, low=0.0, high=1.0, what="the fraction to prune")


def _smallest_mask(scores: np.ndarray, amount: float) -> np.ndarray:
    """1 everywhere but at the round(amount * size) smallest scores (ties: lower index first)."""
    k = round(float(amount) * scores.size)  # Python's round, half to even, as torch's
    mask = np.ones(scores.size)
    mask[np.argsort(scores.ravel(), kind="stable")[:k]] = 0
    return mask.reshape(scores.shape)


def magnitude_prune_mask(w, amount: float) -> np.ndarray:
    """Mask pruning the round(amount * w.size) entries of w with the smallest |w|.

    w: array of any shape; amount in [0, 1]. Returns float64 0/1 of w's shape, equal to the
    mask of ``torch.nn.utils.prune.l1_unstructured(module, name, amount)`` (ties aside).
    """
    amount = _amount("magnitude_prune_mask", amount)
    return _smallest_mask(np.abs(np.asarray(w, dtype=np.float64)), amount)


def global_magnitude_prune_masks(weights: Sequence, amount: float) -> list[np.ndarray]:
    """Masks pruning the round(amount * total size) smallest |w| over all arrays together.

    weights: a non-empty sequence of arrays of any shapes. Returns one 0/1 mask per array, in
    order, equal to ``prune.global_unstructured(..., pruning_method=prune.L1Unstructured)``.
    """
    amount = _amount("global_magnitude_prune_masks", amount)
    arrays = [np.asarray(w, dtype=np.float64) for w in weights]
    if not arrays:
        raise ValueError("global_magnitude_prune_masks: weights must hold at least one array, "
                         "got none")
    flat = _smallest_mask(np.abs(np.concatenate([a.ravel() for a in arrays])), amount)
    cuts = np.cumsum([a.size for a in arrays])[:-1]
    return [m.reshape(a.shape) for m, a in zip(np.split(flat, cuts), arrays, strict=True)]


def structured_prune_mask(w, amount: float, dim: int = 0) -> np.ndarray:
    """Mask pruning the round(amount * w.shape[dim]) slices along dim with the smallest L1 norm.

    w: array with at least one axis, e.g. conv weights (C_out, C_in, kH, kW) with dim=0 for
    whole filters. Returns 0/1 of w's shape, equal to ``prune.ln_structured(module, name,
    amount, n=1, dim=dim)`` (ties aside).
    """
    amount = _amount("structured_prune_mask", amount)
    dim = integer(dim, "dim", "structured_prune_mask")
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 0 or not -w.ndim <= dim < w.ndim:
        raise ValueError(f"structured_prune_mask: dim must be in [-{w.ndim}, {w.ndim}) for w of "
                         f"shape {w.shape}, got {dim}")
    norms = np.abs(np.moveaxis(w, dim, 0)).reshape(w.shape[dim], -1).sum(axis=1)
    keep = _smallest_mask(norms, amount)
    shape = [1] * w.ndim
    shape[dim] = w.shape[dim]
    return np.broadcast_to(keep.reshape(shape), w.shape).copy()


def gradual_sparsity(t: int, s_initial: float, s_final: float, t0: int, n: int,
                     delta_t: int) -> float:
    """Zhu and Gupta's cubic schedule: the sparsity to hold at training step t.

    s_t = s_f + (s_i - s_f) (1 - (t_k - t0) / (n delta_t))^3 with t_k = the last update step
    t0 + j delta_t (j = 0..n) at or before t; s_i before t0 and s_f from t0 + n delta_t on.
    """
    fn = "gradual_sparsity"
    s_initial = number(s_initial, "s_initial", fn, low=0.0, high=1.0)
    s_final = number(s_final, "s_final", fn, low=0.0, high=1.0)
    t, t0 = integer(t, "t", fn), integer(t0, "t0", fn)
    n, delta_t = integer(n, "n", fn, low=1), integer(delta_t, "delta_t", fn, low=1)
    if t < t0:
        return float(s_initial)
    j = min((t - t0) // delta_t, n)
    return float(s_final + (s_initial - s_final) * (1 - j / n) ** 3)
