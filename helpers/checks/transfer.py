"""Exercise checks for chapter 8, transfer learning: freezing a prefix, the head's gradient,
batch norm in eval mode.

Each compares a reader's function with a reference on random inputs; a stub's
NotImplementedError propagates, so a check fails on an unfinished exercise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from helpers import models
from helpers.checks._common import fail


def check_freeze_first(freeze_first: Callable) -> None:
    """``freeze_first(model, k)`` freezes the stem and the first k - 1 blocks of a ResNet."""
    for k in range(7):
        model = models.resnet(depth=10, widths=(4, 8), num_classes=3)
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
    """``head_gradients(f, w, b, y) -> (dw, db)`` against autograd of F.cross_entropy."""
    rng = np.random.default_rng(seed)
    cases = [(6, 4, 3), (20, 32, 5), (1, 3, 2)]
    for n, d, k in cases:
        f, w = rng.standard_normal((n, d)), rng.standard_normal((k, d)) * 3
        b = rng.standard_normal(k)
        y = rng.integers(0, k, n)
        w_t, b_t = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
        F.cross_entropy(F.linear(torch.from_numpy(f), w_t, b_t), torch.from_numpy(y)).backward()
        dw, db = head_gradients(f, w, b, y)
        for name, ours, ref in [("dw", dw, w_t.grad.numpy()), ("db", db, b_t.grad.numpy())]:
            ours = np.asarray(ours)
            if ours.shape != ref.shape or not np.allclose(ours, ref, rtol=1e-7, atol=1e-10):
                raise fail(
                    "check_head_gradients",
                    None,
                    f"{name} differs from autograd for f {f.shape}, w {w.shape}",
                    "dz = (softmax(z) - onehot(y)) / N; dw = dz.T @ f; db = dz summed over rows",
                )
    print(f"check_head_gradients: passed on {len(cases)} random cases")


def check_bn_eval(bn_eval: Callable) -> None:
    """``bn_eval(model)`` puts batch-norm layers (only) in eval mode and returns the model."""
    torch.manual_seed(0)
    model = models.resnet(depth=10, widths=(4, 8), num_classes=3, drop_path=0.1)
    model.train()
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
