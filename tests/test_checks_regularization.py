"""helpers.checks.regularization (chapter 4): each check passes on a correct answer and fails on a stub
or a plausible mistake."""

import numpy as np
import pytest
from conftest import stub

from helpers import checks, numpy_optim
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
