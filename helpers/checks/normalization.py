"""Exercise checks for chapter 6, normalization: batch-norm backward, group norm, BN folding.

Each compares a reader's function with PyTorch on random float64 inputs; a stub's
NotImplementedError propagates, so a check fails on an unfinished exercise. While an answer
runs, the book's own ``helpers.numpy_norm`` functions refuse to be called
(``written_by_hand``), so an answer cannot pass by calling them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from helpers import numpy_norm
from helpers.checks._common import compare, fail, passed, written_by_hand

RTOL = 1e-7
_NORM_FUNCTIONS = ("batch_norm", "batch_norm_backward", "group_norm", "group_norm_backward",
                   "layer_norm", "instance_norm")


def _t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def _refuse_the_helpers(name: str, answer: Callable) -> None:
    """Fail when the answer *is* one of the book's own functions (passed in directly)."""
    for helper in _NORM_FUNCTIONS:
        if answer is getattr(numpy_norm, helper):
            raise fail(name, None, "this exercise asks you to write it yourself; do not pass "
                       f"helpers.numpy_norm.{helper}", "write the function in NumPy")


def check_batch_norm_backward(batch_norm_backward: Callable, seed: int = 0) -> None:
    """``batch_norm_backward(dy, x, gamma, eps) -> (dx, dgamma, dbeta)``, training mode.

    x, dy: (N, C) or (N, C, H, W); gamma: (C,). Compared with autograd through F.batch_norm.
    """
    name = "check_batch_norm_backward"
    _refuse_the_helpers(name, batch_norm_backward)
    rng = np.random.default_rng(seed)
    shapes = [(6, 3), (4, 2, 3, 3), (2, 5, 4, 2), (16, 1)]
    for shape in shapes:
        c = shape[1]
        x = rng.standard_normal(shape) * rng.uniform(0.5, 3) + rng.uniform(-2, 2)
        gamma, beta, dy = rng.standard_normal(c), rng.standard_normal(c), rng.standard_normal(shape)
        xt, gt, bt = _t(x, True), _t(gamma, True), _t(beta, True)
        F.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-5).backward(_t(dy))
        with (written_by_hand(name, numpy_norm, _NORM_FUNCTIONS, answer=batch_norm_backward),
              written_by_hand(name, torch.autograd, ("backward", "grad"))):  # fmt: skip
            got = batch_norm_backward(dy, x, gamma, 1e-5)
        if not isinstance(got, tuple | list) or len(got) != 3:
            raise fail(
                name,
                f"x {shape}",
                "expected a tuple (dx, dgamma, dbeta)",
                "return all three gradients",
            )
        hint = (
            "the statistics are per channel over every axis except 1; dbeta = sum(dy), "
            "dgamma = sum(dy * x_hat), dx = (g - mean(g) - x_hat * mean(g * x_hat)) / "
            "sqrt(var + eps) with g = gamma * dy and the biased variance"
        )
        for what, ours, ref in zip(
            ("dx", "dgamma", "dbeta"), got, (xt.grad, gt.grad, bt.grad), strict=True
        ):
            compare(
                name,
                f"x {shape}",
                ours,
                ref.numpy(),
                hint,
                what=what,
                rtol=RTOL,
                atol=RTOL,
            )
    passed(name, len(shapes))


def check_group_norm(group_norm: Callable, seed: int = 0) -> None:
    """``group_norm(x, num_groups, gamma, beta, eps) -> y`` against F.group_norm."""
    name = "check_group_norm"
    _refuse_the_helpers(name, group_norm)
    rng = np.random.default_rng(seed)
    cases = [
        ((2, 4, 3, 3), 2),
        ((3, 6, 2, 4), 3),
        ((2, 6, 3, 3), 1),
        ((1, 4, 5, 5), 4),
        ((4, 8, 2, 2), 2),
    ]
    for shape, groups in cases:
        c = shape[1]
        x = rng.standard_normal(shape) * rng.uniform(0.5, 3) + rng.uniform(-2, 2)
        x[:, : c // groups] *= 4  # groups with different scales: the grouping shows
        gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
        ref = F.group_norm(_t(x), groups, _t(gamma), _t(beta), eps=1e-5).numpy()
        hint = (
            "reshape x to (N, G, C // G * H * W), standardize each row with its mean and "
            "biased variance (+ eps inside the square root), reshape back, then apply the "
            "per-channel gamma and beta"
        )
        with (written_by_hand(name, numpy_norm, _NORM_FUNCTIONS, answer=group_norm),
              written_by_hand(name, F, ("group_norm",), answer=group_norm)):  # fmt: skip
            got = group_norm(x, groups, gamma, beta, 1e-5)
        compare(
            name,
            f"x {shape}, num_groups={groups}",
            got,
            ref,
            hint,
            rtol=RTOL,
            atol=RTOL,
        )
    passed(name, len(cases))


_FUSERS = ("fuse_conv_bn_weights", "fuse_conv_bn_eval")


def check_fold_batch_norm(fold_batch_norm: Callable, seed: int = 0) -> None:
    """``fold_batch_norm(w, b, gamma, beta, mean, var, eps) -> (w', b')``.

    conv2d(x, w', b') must equal eval-mode batch_norm(conv2d(x, w, b)) with running
    statistics mean and var; w (F, C, KH, KW), the others (F,). While the answer runs,
    torch's folding functions (``torch.nn.utils.fuse_conv_bn_weights`` and
    ``fuse_conv_bn_eval``, also in ``torch.nn.utils.fusion``) refuse to be called.
    """
    name = "check_fold_batch_norm"
    rng = np.random.default_rng(seed)
    cases = [(4, 3, 3), (2, 1, 1), (6, 2, 5)]
    for f, c, k in cases:
        w, b = rng.standard_normal((f, c, k, k)), rng.standard_normal(f)
        gamma, beta = rng.standard_normal(f), rng.standard_normal(f)
        mean, var = rng.standard_normal(f), rng.uniform(0.1, 3, f)
        x = _t(rng.standard_normal((2, c, 7, 7)))
        ref = F.batch_norm(
            F.conv2d(x, _t(w), _t(b)),
            _t(mean),
            _t(var),
            _t(gamma),
            _t(beta),
            training=False,
            eps=1e-5,
        ).numpy()
        with (
            written_by_hand(name, torch.nn.utils, _FUSERS, answer=fold_batch_norm),
            written_by_hand(name, torch.nn.utils.fusion, _FUSERS, answer=fold_batch_norm),
        ):
            got = fold_batch_norm(w, b, gamma, beta, mean, var, 1e-5)
        if not isinstance(got, tuple | list) or len(got) != 2:
            raise fail(
                name,
                f"w {w.shape}",
                "expected a tuple (w_folded, b_folded)",
                "return the new weights and bias",
            )
        w2, b2 = (np.asarray(a, dtype=np.float64) for a in got)
        hint = (
            "eval-mode batch norm is y = s * (z - mean) + beta with s = gamma / sqrt(var + eps) "
            "per output channel: scale each filter w[f] by s[f]; the bias becomes "
            "s * (b - mean) + beta"
        )
        if w2.shape != w.shape or b2.shape != b.shape:
            raise fail(
                name,
                f"w {w.shape}",
                f"shapes {w2.shape}, {b2.shape}, expected {w.shape}, {b.shape}",
                hint,
            )
        folded = F.conv2d(x, _t(w2), _t(b2)).numpy()
        compare(
            name,
            f"w {w.shape}",
            folded,
            ref,
            hint,
            what="the folded convolution's output",
            rtol=RTOL,
            atol=RTOL,
        )
    passed(name, len(cases))
