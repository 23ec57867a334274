"""helpers.checks.normalization (chapter 6): each check passes on a correct answer and fails on a stub
or a plausible mistake."""

import numpy as np
import pytest
from conftest import stub

from helpers import checks
from helpers import numpy_norm as nn


def test_check_batch_norm_backward(capsys):
    checks.check_batch_norm_backward(nn.batch_norm_backward)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_batch_norm_backward(stub)

    def ignores_the_mean_terms(dy, x, gamma, eps):  # treats mean and var as constants
        dx, dgamma, dbeta = nn.batch_norm_backward(dy, x, gamma, eps)
        axes = (0, *range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return dy * gamma.reshape(shape) / np.sqrt(x.var(axis=axes, keepdims=True) + eps), dgamma, dbeta

    with pytest.raises(AssertionError, match="dx differs.*Hint"):
        checks.check_batch_norm_backward(ignores_the_mean_terms)
    with pytest.raises(AssertionError, match="dgamma shape"):
        checks.check_batch_norm_backward(lambda dy, x, g, e: (nn.batch_norm_backward(dy, x, g, e)[0],
                                                              np.zeros(1), np.zeros(x.shape[1])))
    with pytest.raises(AssertionError, match="expected a tuple"):
        checks.check_batch_norm_backward(lambda dy, x, g, e: dy)



def test_check_group_norm(capsys):
    checks.check_group_norm(nn.group_norm)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_group_norm(stub)

    def channel_major_groups(x, groups, gamma, beta, eps):  # groups of every G-th channel
        n, c = x.shape[:2]
        perm = np.arange(c).reshape(c // groups, groups).T.ravel()
        inv = np.argsort(perm)
        y = nn.group_norm(x[:, perm], groups, None, None, eps)[:, inv]
        return y * gamma.reshape(1, c, 1, 1) + beta.reshape(1, c, 1, 1)

    with pytest.raises(AssertionError, match="relative error"):
        checks.check_group_norm(channel_major_groups)
    with pytest.raises(AssertionError, match="relative error"):  # unbiased variance
        checks.check_group_norm(
            lambda x, g, ga, be, eps: nn.group_norm(x * np.sqrt(1.0), g, ga, be, eps) * 0.99)



def _fold(w, b, gamma, beta, mean, var, eps):
    s = gamma / np.sqrt(var + eps)
    return w * s[:, None, None, None], s * (b - mean) + beta



def test_check_fold_batch_norm(capsys):
    checks.check_fold_batch_norm(_fold)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_fold_batch_norm(stub)

    def forgets_the_bias(w, b, gamma, beta, mean, var, eps):
        s = gamma / np.sqrt(var + eps)
        return w * s[:, None, None, None], beta - s * mean

    with pytest.raises(AssertionError, match="folded convolution"):
        checks.check_fold_batch_norm(forgets_the_bias)
    with pytest.raises(AssertionError, match="shapes"):
        checks.check_fold_batch_norm(lambda w, b, g, be, m, v, e: (w[:, :1], b))
    with pytest.raises(AssertionError, match="expected a tuple"):
        checks.check_fold_batch_norm(lambda w, b, g, be, m, v, e: w)


# --------------------------------------------------------------------------- chapter 7
