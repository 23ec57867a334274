"""The chapter 4 and 5 exercise checks pass a correct answer and fail a stub or a wrong one."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import stub

from helpers import augment, checks
from helpers import numpy_regularization as reg


def test_check_dropout(capsys):
    checks.check_dropout(lambda x, p, rng: reg.dropout(x, p, True, rng)[0])
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_dropout(stub)
    with pytest.raises(AssertionError, match="x / \\(1 - p\\)"):  # forgot the scaling
        checks.check_dropout(lambda x, p, rng: x * (rng.random(x.shape) >= p))
    with pytest.raises(AssertionError, match="dropped"):  # p read as the keep probability
        checks.check_dropout(lambda x, p, rng: x * (rng.random(x.shape) < p) / (1 - p) if p else x)


def adamw(theta, grad, m, v, t, lr, beta1, beta2, eps, weight_decay, decoupled=True):
    if not decoupled:
        grad = grad + weight_decay * theta
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    update = (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
    decay = weight_decay * theta if decoupled else 0.0
    return theta - lr * (update + decay), m, v


def test_check_adamw_step(capsys):
    checks.check_adamw_step(adamw)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_adamw_step(stub)
    with pytest.raises(AssertionError, match="AdamW"):  # Adam with an L2 term instead
        checks.check_adamw_step(lambda *a: adamw(*a, decoupled=False))


def test_check_label_smoothing_loss(capsys):
    def answer(logits, y, eps):
        return reg.cross_entropy_soft(logits, reg.smooth_labels(y, logits.shape[1], eps))[0]

    def off_target_only(logits, y, eps):  # eps spread over the K - 1 wrong classes
        k = logits.shape[1]
        targets = (1 - eps) * np.eye(k)[y] + eps / (k - 1) * (1 - np.eye(k)[y])
        return reg.cross_entropy_soft(logits, targets)[0]

    checks.check_label_smoothing_loss(answer)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_label_smoothing_loss(stub)
    with pytest.raises(AssertionError, match="expected"):
        checks.check_label_smoothing_loss(off_target_only)


def test_check_translate(capsys):
    checks.check_translate(augment.translate)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_translate(stub)
    with pytest.raises(AssertionError, match="differ"):  # wraps around like torch.roll
        checks.check_translate(lambda x, s: torch.stack(
            [torch.roll(xi, tuple(si.tolist()), (-2, -1)) for xi, si in zip(x, s, strict=True)]))


def test_check_mixup(capsys):
    def answer(x, y, lam, perm, k):
        one_hot = F.one_hot(y, k).float()
        return (lam[:, None, None, None] * x
                + (1 - lam[:, None, None, None]) * x[perm],
                lam[:, None] * one_hot + (1 - lam[:, None]) * one_hot[perm])

    def swapped(x, y, lam, perm, k):
        xm, t = answer(x, y, 1 - lam, perm, k)
        return xm, t

    checks.check_mixup(answer)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_mixup(stub)
    with pytest.raises(AssertionError, match="differ"):
        checks.check_mixup(swapped)
    with pytest.raises(AssertionError, match="pair"):
        checks.check_mixup(lambda *a: answer(*a)[0])


def test_check_cutmix_lambda(capsys):
    def answer(boxes, h, w):
        rows = (boxes[:, 2].clamp(0, h) - boxes[:, 0].clamp(0, h)).clamp_min(0)
        cols = (boxes[:, 3].clamp(0, w) - boxes[:, 1].clamp(0, w)).clamp_min(0)
        return 1 - rows * cols / (h * w)

    def unclipped(boxes, h, w):
        return 1 - (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / (h * w)

    checks.check_cutmix_lambda(answer)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_cutmix_lambda(stub)
    with pytest.raises(AssertionError, match="clip"):
        checks.check_cutmix_lambda(unclipped)
    with pytest.raises(AssertionError, match="output shape"):
        checks.check_cutmix_lambda(lambda b, h, w: answer(b, h, w)[:1])
