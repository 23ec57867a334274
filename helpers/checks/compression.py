"""Checks for chapter 10's exercises: quantization, the straight-through estimator, pruning.

Chapters call them as ``checks.check_quantize(my_quantize)`` after
``from helpers.checks import compression as checks``. While an answer runs, the functions of
``helpers.numpy_compress`` refuse to be called: the exercises ask for them to be written. So
do torch's quantizers, its magnitude pruners and, for the straight-through backward, autograd.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.nn.utils import prune

from helpers import numpy_compress
from helpers.checks._common import compare, fail, passed, written_by_hand

_HELPERS = ("quantize", "dequantize", "fake_quantize", "fake_quantize_backward",
            "magnitude_prune_mask", "global_magnitude_prune_masks", "structured_prune_mask",
            "gradual_sparsity", "choose_qparams")
_TORCH_QUANTIZERS = ("quantize_per_tensor", "fake_quantize_per_tensor_affine")
_TORCH_PRUNERS = ("l1_unstructured", "global_unstructured")



def _quant_cases(rng):
    """(x, scale, zero_point, qmin, qmax): int8, uint8, 4-bit, with values that clip."""
    cases = [(rng.standard_normal((5, 7)) * 2, 0.02, 0, -128, 127),
             (rng.standard_normal((3, 4, 6)) * 3, 0.03, 128, 0, 255),
             (rng.standard_normal(40), 0.25, 3, -8, 7),
             (rng.uniform(-1, 3, (6, 6)), 0.2, 2, 0, 15)]
    ties = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 3.25]) * 0.5  # x / scale lands on .5: half to even
    cases.append((ties, 0.5, 0, -8, 7))
    return [(x.astype(np.float32), s, z, lo, hi) for x, s, z, lo, hi in cases]


def check_quantize(quantize: Callable, seed: int = 0) -> None:
    """``quantize(x, scale, zero_point, qmin, qmax) -> q`` against torch's affine rounding.

    q = clip(round(x / scale) + zero_point, qmin, qmax), rounding half to even, an integer
    array of x's shape (any integer dtype).
    """
    name = "check_quantize"
    hint = ("q = clip(round(x / scale) + zero_point, qmin, qmax) with np.rint (half to even); "
            "the zero point is added after dividing by the scale, not subtracted before")
    cases = _quant_cases(np.random.default_rng(seed))
    for x, scale, zp, qmin, qmax in cases:
        xt = torch.from_numpy(x)
        ref = torch.clamp(torch.round(xt * (1.0 / scale)) + zp, qmin, qmax)
        with (written_by_hand(name, numpy_compress, _HELPERS, answer=quantize),
              written_by_hand(name, torch, _TORCH_QUANTIZERS, answer=quantize)):  # fmt: skip
            ours = quantize(x.copy(), scale, zp, qmin, qmax)
        case = f"x {x.shape}, scale {scale}, zero_point {zp}, range [{qmin}, {qmax}]"
        ours_arr = np.asarray(ours)
        if not np.issubdtype(ours_arr.dtype, np.integer):
            raise fail(name, case, f"expected an integer array, got dtype {ours_arr.dtype}",
                       "convert with .astype(np.int64) after rounding and clipping")
        compare(name, case, ours_arr, ref, hint, rtol=0, atol=0)
    passed(name, len(cases))


def check_ste_backward(fake_quantize_backward: Callable, seed: int = 0) -> None:
    """``fake_quantize_backward(dy, x, scale, zero_point, qmin, qmax) -> dx`` against the
    autograd of ``torch.fake_quantize_per_tensor_affine`` (the straight-through estimator)."""
    name = "check_ste_backward"
    hint = ("the rounding is treated as the identity: dx = dy where round(x / scale) + "
            "zero_point lies in [qmin, qmax], and 0 where the forward pass clipped")
    rng = np.random.default_rng(seed)
    cases = _quant_cases(rng)
    for x, scale, zp, qmin, qmax in cases:
        xt = torch.tensor(x, requires_grad=True)
        dy = rng.standard_normal(x.shape).astype(np.float32)
        out = torch.fake_quantize_per_tensor_affine(xt, scale, zp, qmin, qmax)
        out.backward(torch.from_numpy(dy))
        with (written_by_hand(name, numpy_compress, _HELPERS, answer=fake_quantize_backward),
              written_by_hand(name, torch.autograd, ("backward", "grad"))):  # fmt: skip
            ours = fake_quantize_backward(dy.copy(), x.copy(), scale, zp, qmin, qmax)
        case = f"x {x.shape}, scale {scale}, zero_point {zp}, range [{qmin}, {qmax}]"
        compare(name, case, ours, xt.grad, hint, rtol=0, atol=0, what="dx")
    passed(name, len(cases))


def check_magnitude_prune_mask(magnitude_prune_mask: Callable, seed: int = 0) -> None:
    """``magnitude_prune_mask(w, amount) -> mask`` against ``prune.l1_unstructured``.

    mask has w's shape, 1 = keep and 0 = pruned, with round(amount * w.size) zeros at the
    entries of smallest |w|.
    """
    name = "check_magnitude_prune_mask"
    hint = ("prune the k = round(amount * w.size) entries with the smallest absolute value "
            "(np.argsort(np.abs(w), axis=None)[:k]), keep the rest")
    rng = np.random.default_rng(seed)
    cases = [((6, 5), 0.3), ((4, 3, 3, 3), 0.75), ((7,), 0.5), ((8, 2, 3), 0.0), ((3, 3), 1.0)]
    for shape, amount in cases:
        w = rng.standard_normal(shape)
        module = torch.nn.Linear(1, 1, bias=False)
        module.weight = torch.nn.Parameter(torch.from_numpy(w.copy()))
        ref = prune.l1_unstructured(module, "weight", amount).weight_mask
        with (written_by_hand(name, numpy_compress, _HELPERS, answer=magnitude_prune_mask),
              written_by_hand(name, prune, _TORCH_PRUNERS,
                              answer=magnitude_prune_mask)):  # fmt: skip
            ours = magnitude_prune_mask(w.copy(), amount)
        compare(name, f"w {shape}, amount {amount}", ours, ref, hint, rtol=0, atol=0, what="mask")
    passed(name, len(cases))


def _cubic(t, s_i, s_f, t0, n, dt):
    if t < t0:
        return s_i
    j = min((t - t0) // dt, n)
    return s_f + (s_i - s_f) * (1 - j / n) ** 3


def check_gradual_sparsity(gradual_sparsity: Callable, seed: int = 0) -> None:
    """``gradual_sparsity(t, s_initial, s_final, t0, n, delta_t) -> s_t`` against Zhu and
    Gupta's cubic schedule, held constant between the update steps t0 + j delta_t."""
    name = "check_gradual_sparsity"
    hint = ("s_i before t0; otherwise take the last update step t_k = t0 + j delta_t with "
            "j = min((t - t0) // delta_t, n) and return s_f + (s_i - s_f) (1 - j / n)^3")
    settings = [(0.0, 0.9, 0, 10, 1), (0.1, 0.8, 5, 4, 7), (0.0, 0.5, 20, 3, 10)]
    for s_i, s_f, t0, n, dt in settings:
        ts = list(range(0, t0 + n * dt + 12))
        ref = [_cubic(t, s_i, s_f, t0, n, dt) for t in ts]
        with written_by_hand(name, numpy_compress, _HELPERS, answer=gradual_sparsity):
            ours = [gradual_sparsity(t, s_i, s_f, t0, n, dt) for t in ts]
        case = f"s_i {s_i}, s_f {s_f}, t0 {t0}, n {n}, delta_t {dt}, t = 0..{ts[-1]}"
        compare(name, case, np.asarray(ours, dtype=np.float64), ref, hint, rtol=0, atol=1e-12,
                what="sparsities")
    passed(name, len(settings))
