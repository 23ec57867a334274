"""Exercise checks for chapter 4, regularization: dropout, an AdamW step, label smoothing,
the gradient of the focal loss.

Each compares a reader's function with a reference (PyTorch where one exists) on random
inputs; a stub's NotImplementedError propagates, so a check fails on an unfinished exercise.
While an answer runs, the book's own implementation of the same thing refuses to be called
(``written_by_hand``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from helpers import numpy_nn, numpy_optim
from helpers import numpy_regularization as reg
from helpers.checks._common import compare, fail, passed, written_by_hand


def check_dropout(dropout: Callable, seed: int = 0) -> None:
    """``dropout(x, p, rng) -> y``: inverted dropout in training, p the drop probability."""
    name = "check_dropout"
    rng = np.random.default_rng(seed)
    hint = (
        "keep each unit with probability 1 - p (rng.random(x.shape) >= p) and divide the kept "
        "units by 1 - p, so that the mean of y equals x"
    )
    cases = [(0.0, (5, 7)), (0.2, (300, 400)), (0.5, (200, 300)), (0.8, (300, 300))]
    for p, shape in cases:
        x = rng.uniform(0.5, 1.5, shape)
        with (written_by_hand(name, reg, ("dropout", "dropout2d"), answer=dropout),
              written_by_hand(name, F, ("dropout",), answer=dropout)):  # fmt: skip
            y = np.asarray(dropout(x.copy(), p, np.random.default_rng(seed + 1)))
        case = f"p={p}, x {shape}"
        if y.shape != x.shape:
            raise fail(name, case, f"output shape {y.shape}, expected {x.shape}", hint)
        if p == 0.0:
            if not np.allclose(y, x):
                raise fail(name, case, "p = 0 must return x unchanged", hint)
            continue
        kept = y != 0
        if not np.allclose(y[kept], x[kept] / (1 - p)):
            raise fail(name, case, "kept units are not x / (1 - p)", hint)
        dropped = 1 - kept.mean()
        if abs(dropped - p) > 5 * np.sqrt(p * (1 - p) / x.size):
            raise fail(
                name, case, f"{dropped:.3f} of the units were dropped, expected about {p}", hint
            )
        # each unit is dropped independently: every quarter of the array (in memory order)
        # must lose about p of its units, which a fixed pattern such as "the first p * N" fails
        quarters = np.array_split(~kept.ravel(), 4)
        tol = 5 * np.sqrt(p * (1 - p) / quarters[0].size)
        if any(abs(q.mean() - p) > tol for q in quarters):
            raise fail(name, case, "the dropped units are not spread at random over the array "
                       f"(dropped fraction per quarter {[round(q.mean(), 3) for q in quarters]})",
                       hint)
    passed(name, len(cases))


def check_adamw_step(adamw_step: Callable, seed: int = 0) -> None:
    """``adamw_step(p, g, m, v, t, lr, betas, eps, weight_decay) -> (p, m, v)`` against
    ``torch.optim.AdamW`` over several steps (t counts from 1).

    The arguments come in the order of chapter 3's ``adam_step``, with ``weight_decay`` last.
    While the answer runs, ``helpers.numpy_optim``'s Adam, AdamW and AdaBelief refuse to be
    called.
    """
    name = "check_adamw_step"
    rng = np.random.default_rng(seed)
    hint = (
        "update m and v from the gradient alone, bias-correct them with 1 - beta**t, then "
        "p <- p - lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * p): the decay "
        "is applied to the parameter, not added to the gradient"
    )
    cases = [(1e-2, (0.9, 0.999), 0.1), (3e-3, (0.8, 0.99), 0.5), (1e-1, (0.9, 0.999), 0.0)]
    for lr, betas, wd in cases:
        p0 = rng.standard_normal((4, 3))
        grads = rng.standard_normal((6, 4, 3))
        tp = torch.tensor(p0, requires_grad=True)
        opt = torch.optim.AdamW([tp], lr=lr, betas=betas, eps=1e-8, weight_decay=wd)
        p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
        for t, g in enumerate(grads, start=1):
            tp.grad = torch.from_numpy(g.copy())
            opt.step()
            with (written_by_hand(name, numpy_optim, ("Adam", "AdamW", "AdaBelief"),
                                  answer=adamw_step),
                  written_by_hand(name, torch.optim, ("Adam", "AdamW"),
                                  answer=adamw_step)):  # fmt: skip
                answer = adamw_step(p.copy(), g.copy(), m.copy(), v.copy(), t, lr, betas, 1e-8,
                                    wd)
            p, m, v = (np.asarray(a, dtype=float) for a in answer)
            compare(name, f"step {t}, lr={lr}, betas={betas}, weight_decay={wd}", p,
                    tp.detach().numpy(), hint, rtol=1e-8, atol=1e-12,
                    what="parameters after the step (torch.optim.AdamW)")
    passed(name, len(cases) * len(grads))


def check_label_smoothing_loss(loss_fn: Callable, seed: int = 0) -> None:
    """``loss_fn(logits (N, K), y (N,), eps) -> float`` against F.cross_entropy(label_smoothing)."""
    name = "check_label_smoothing_loss"
    rng = np.random.default_rng(seed)
    hint = (
        "the target is (1 - eps) * one_hot(y) + eps / K (eps spread over all K classes, the "
        "true one included); the loss is the mean over examples of -sum(target * log_softmax)"
    )
    cases = [(8, 5, 0.1, 3.0), (3, 10, 0.0, 3.0), (6, 2, 0.3, 3.0), (4, 7, 1.0, 3.0),
             (6, 4, 0.1, None), (5, 3, 0.0, None)]  # None: logits of +-1000
    helpers = ("cross_entropy_soft", "smooth_labels")
    for n, k, eps, scale in cases:
        y = rng.integers(0, k, n)
        if scale is None:
            logits = np.where(rng.random((n, k)) < 0.5, -1000.0, 1000.0)
        else:
            logits = rng.standard_normal((n, k)) * scale
        ref = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y), label_smoothing=eps)
        with written_by_hand(name, reg, helpers, answer=loss_fn), \
                written_by_hand(name, numpy_nn, ("log_softmax", "softmax_cross_entropy"),
                                answer=loss_fn), \
                written_by_hand(name, F, ("cross_entropy", "log_softmax"), answer=loss_fn):
            got = float(loss_fn(logits.copy(), y.copy(), eps))
        if not abs(got - ref.item()) <= 1e-9 * max(1.0, abs(ref.item())):
            raise fail(
                name, f"N={n}, K={k}, eps={eps}, " + ("logits of +-1000" if scale is None
                                                      else "random logits"),
                f"loss {got:.6f}, expected {ref.item():.6f}",
                hint + "; subtract each row's maximum before exponentiating",
            )
    passed(name, len(cases))


def check_focal_loss_grad(grad_fn: Callable, seed: int = 0) -> None:
    """``grad_fn(logits (N, K), labels (N,), gamma) -> dlogits (N, K)``: the gradient of the
    batch-mean focal loss mean_n -(1 - p_y)^gamma log p_y, against torch autograd (float64).

    While the answer runs, ``helpers.numpy_regularization.focal_loss`` refuses to be called.
    """
    name = "check_focal_loss_grad"
    rng = np.random.default_rng(seed)
    hint = (
        "with l = log p_y, the loss of one example is -(1 - e^l)^gamma l: differentiate it in l "
        "(the factor (1 - p_y)^gamma depends on the logits too), then use "
        "dl/dlogits = one_hot(y) - softmax(logits), and divide by N"
    )
    cases = [(6, 4, 0.0), (8, 5, 1.0), (5, 3, 2.0), (7, 10, 3.5)]
    for n, k, gamma in cases:
        logits, y = rng.standard_normal((n, k)) * 2, rng.integers(0, k, n)
        z = torch.tensor(logits, requires_grad=True)
        log_py = F.log_softmax(z, dim=1).gather(1, torch.from_numpy(y)[:, None])[:, 0]
        (-((1 - log_py.exp()) ** gamma) * log_py).mean().backward()
        with (written_by_hand(name, reg, ("focal_loss",), answer=grad_fn),
              written_by_hand(name, torch.autograd, ("backward", "grad"))):  # fmt: skip
            got = grad_fn(logits.copy(), y.copy(), gamma)
        compare(name, f"N={n}, K={k}, gamma={gamma}", got, z.grad.numpy(), hint, rtol=1e-8,
                atol=1e-12, what="dlogits (torch autograd)")
    passed(name, len(cases))
