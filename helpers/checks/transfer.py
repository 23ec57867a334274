"""Exercise checks for chapter 8, transfer learning: freezing a prefix, the head's gradient,
batch norm in eval mode.

Each compares a reader's function with a reference on random inputs; a stub's
NotImplementedError propagates, so a check fails on an unfinished exercise. While the reader's
function runs, the ``helpers`` functions that would do the exercise for it raise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from helpers import models, numpy_nn, transfer
from helpers.checks._common import compare, fail, passed, written_by_hand


def check_freeze_first(freeze_first: Callable) -> None:
    """``freeze_first(model, k)`` freezes the stem and the first k - 1 blocks of a ResNet."""
    for k in range(7):
        model = models.resnet(depth=10, widths=(4, 8), num_classes=3)
        with written_by_hand("check_freeze_first", transfer, ("freeze",)):
            out = freeze_first(model, k)
        if out is not model:
            raise fail(
                "check_freeze_first",
                None,
                "it must return the model it was given",
                "end with `return model`",
            )
        parts = [model.stem, *model.blocks, model.fc]
        for i, part in enumerate(parts):
            flags = {p.requires_grad for p in part.parameters()}
            want = {i >= k}
            if flags != want:
                raise fail(
                    "check_freeze_first",
                    None,
                    f"with k={k}, part {i} of [stem, block 1..4, fc] has requires_grad {flags}, "
                    f"expected {want}",
                    "part i trains exactly when i >= k; set p.requires_grad_(...) on every "
                    "parameter of every part",
                )
    print("check_freeze_first: passed on 7 values of k")


def check_head_gradients(head_gradients: Callable, seed: int = 0) -> None:
    """``head_gradients(f, w, b, y) -> (dw, db)`` against autograd of F.cross_entropy.

    f (N, D), w (K, D), b (K,) float64, y (N,) ints; dw (K, D) and db (K,) are the gradients of
    the mean softmax cross-entropy of f w^T + b. While the answer runs, ``numpy_nn``'s
    ``softmax_cross_entropy`` and ``linear_backward`` raise and autograd is off: the point is to
    derive the gradient.
    """
    name = "check_head_gradients"
    hint = (
        "with p = softmax(z) row by row and Y the one-hot labels, dL/dz = (p - Y) / N (N, K); "
        "then dw = dz.T @ f (K, D) and db = dz summed over the rows (K,)"
    )
    rng = np.random.default_rng(seed)
    cases = [(6, 4, 3), (20, 32, 5), (1, 3, 2)]
    for n, d, k in cases:
        f, w = rng.standard_normal((n, d)), rng.standard_normal((k, d)) * 3
        b = rng.standard_normal(k)
        y = rng.integers(0, k, n)
        w_t, b_t = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
        F.cross_entropy(F.linear(torch.from_numpy(f), w_t, b_t), torch.from_numpy(y)).backward()
        blocked = ("softmax_cross_entropy", "linear_backward")
        try:
            with written_by_hand(name, numpy_nn, blocked), torch.no_grad():
                got = head_gradients(f.copy(), w.copy(), b.copy(), y.copy())
        except RuntimeError as err:
            if "grad" not in str(err):
                raise
            raise fail(
                name,
                None,
                "this exercise asks you to derive the gradient; autograd "
                f"is off while the check runs ({err})",
                hint,
            ) from None
        case = f"f {f.shape}, w {w.shape}, {k} classes"
        if not isinstance(got, tuple | list) or len(got) != 2:
            raise fail(name, case, "expected a pair (dw, db)", hint)
        for what, ours, ref in [("dw", got[0], w_t.grad), ("db", got[1], b_t.grad)]:
            compare(name, case, ours, ref, hint, rtol=1e-7, atol=1e-10, what=what)
    passed(name, len(cases))


def check_bn_eval(bn_eval: Callable) -> None:
    """``bn_eval(model)`` puts batch-norm layers (only) in eval mode and returns the model."""
    torch.manual_seed(0)
    model = models.resnet(depth=10, widths=(4, 8), num_classes=3, drop_path=0.1)
    model.train()
    with written_by_hand("check_bn_eval", transfer, ("freeze_batchnorm",)):
        out = bn_eval(model)
    if out is not model:
        raise fail(
            "check_bn_eval",
            None,
            "it must return the model it was given",
            "end with `return model`",
        )
    for name, module in model.named_modules():
        is_bn = isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
        if module.training == is_bn:
            state = "train" if module.training else "eval"
            raise fail(
                "check_bn_eval",
                None,
                f"module {name or 'model'} is in {state} mode",
                "call .eval() on batch-norm modules only; leave the others training",
            )
    stats = model.stem[1].running_mean.clone()
    model(torch.randn(4, 1, 8, 8) * 5 + 2)
    if not torch.equal(stats, model.stem[1].running_mean):
        raise fail(
            "check_bn_eval",
            None,
            "a forward pass still changed the running statistics",
            "every BatchNorm2d must be in eval mode",
        )
    print("check_bn_eval: passed")
