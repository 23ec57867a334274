"""helpers.checks.regularization (chapter 4): each check passes on a correct answer and fails on a stub
or a plausible mistake."""

import numpy as np
import pytest
from conftest import stub

from helpers import checks, numpy_optim
from helpers import numpy_regularization as reg
from helpers.checks.regularization import check_focal_loss_grad


def hand_dropout(x, p, rng):
    return x * (rng.random(x.shape) >= p) / (1 - p)


def test_check_dropout(capsys):
    checks.check_dropout(hand_dropout)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_dropout(stub)
    with pytest.raises(AssertionError, match="x / \\(1 - p\\)"):  # forgot the scaling
        checks.check_dropout(lambda x, p, rng: x * (rng.random(x.shape) >= p))
    with pytest.raises(AssertionError, match="dropped"):  # p read as the keep probability
        checks.check_dropout(lambda x, p, rng: x * (rng.random(x.shape) < p) / (1 - p) if p else x)


def test_check_dropout_rejects_a_fixed_mask_and_the_helper():
    def first_entries(x, p, rng):  # drops exactly the first p * N entries: right count, no chance
        keep = np.ones(x.size)
        keep[: int(round(p * x.size))] = 0
        return x * keep.reshape(x.shape) / (1 - p)

    with pytest.raises(AssertionError, match="not spread at random"):
        checks.check_dropout(first_entries)
    original = reg.dropout
    with pytest.raises(AssertionError, match="write it yourself"):
        checks.check_dropout(lambda x, p, rng: reg.dropout(x, p, True, rng)[0])
    assert reg.dropout is original



def adamw(theta, grad, m, v, t, lr, betas, eps, weight_decay, decoupled=True, corrected=True):
    beta1, beta2 = betas
    if not decoupled:
        grad = grad + weight_decay * theta
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    if corrected:
        update = (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
    else:
        update = m / (np.sqrt(v) + eps)
    decay = weight_decay * theta if decoupled else 0.0
    return theta - lr * (update + decay), m, v



def test_check_adamw_step(capsys):
    checks.check_adamw_step(adamw)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_adamw_step(stub)
    with pytest.raises(AssertionError, match="AdamW"):  # Adam with an L2 term instead
        checks.check_adamw_step(lambda *a: adamw(*a, decoupled=False))
    with pytest.raises(AssertionError, match="AdamW"):  # no bias correction
        checks.check_adamw_step(lambda *a: adamw(*a, corrected=False))


def test_check_adamw_step_refuses_the_helper_and_restores_it():
    original = numpy_optim.AdamW

    def shortcut(p, g, m, v, t, lr, betas, eps, weight_decay):
        p = p.copy()
        numpy_optim.AdamW([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay).step([g])
        return p, m, v

    with pytest.raises(AssertionError, match="write it yourself"):
        checks.check_adamw_step(shortcut)
    assert numpy_optim.AdamW is original



def smoothed(logits, y, eps, stable=True, spread_over_wrong=False):
    k = logits.shape[1]
    shifted = logits - logits.max(axis=1, keepdims=True) if stable else logits
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    if spread_over_wrong:
        targets = (1 - eps) * np.eye(k)[y] + eps / (k - 1) * (1 - np.eye(k)[y])
    else:
        targets = (1 - eps) * np.eye(k)[y] + eps / k
    return -np.sum(targets * log_probs) / len(y)


def test_check_label_smoothing_loss(capsys):
    def answer(logits, y, eps):
        return smoothed(logits, y, eps)

    def off_target_only(logits, y, eps):  # eps spread over the K - 1 wrong classes
        return smoothed(logits, y, eps, spread_over_wrong=True)

    checks.check_label_smoothing_loss(answer)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_label_smoothing_loss(stub)
    with pytest.raises(AssertionError, match="expected"):
        checks.check_label_smoothing_loss(off_target_only)


def test_check_label_smoothing_loss_needs_a_stable_log_softmax_and_no_helper():
    with pytest.raises(AssertionError, match="1000"):  # exp(1000) overflows to inf, loss NaN
        checks.check_label_smoothing_loss(lambda z, y, eps: smoothed(z, y, eps, stable=False))

    def shortcut(logits, y, eps):
        return reg.cross_entropy_soft(logits, reg.smooth_labels(y, logits.shape[1], eps))[0]

    with pytest.raises(AssertionError, match="write it yourself"):
        checks.check_label_smoothing_loss(shortcut)


def focal_grad(logits, labels, gamma, focus_is_constant=False):
    n = len(labels)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_py = log_p[np.arange(n), labels]
    p_y = np.exp(log_py)
    focus = (1 - p_y) ** gamma
    if focus_is_constant:  # the factor (1 - p_y)^gamma treated as a constant weight
        dl = -focus
    else:
        dl = -(focus - gamma * p_y * log_py * (1 - p_y) ** (gamma - 1)) if gamma else -focus
    onehot_minus_p = -np.exp(log_p)
    onehot_minus_p[np.arange(n), labels] += 1
    return dl[:, None] * onehot_minus_p / n


def test_check_focal_loss_grad(capsys):
    check_focal_loss_grad(focal_grad)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        check_focal_loss_grad(stub)
    with pytest.raises(AssertionError, match="autograd"):
        check_focal_loss_grad(lambda z, y, g: focal_grad(z, y, g, focus_is_constant=True))
    with pytest.raises(AssertionError, match="write it yourself"):
        check_focal_loss_grad(lambda z, y, g: reg.focal_loss(z, y, g)[1])
