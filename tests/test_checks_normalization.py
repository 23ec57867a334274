"""helpers.checks.normalization (chapter 6): each check passes on a correct answer and fails on a stub
or a plausible mistake."""

import numpy as np
import pytest
import torch
from conftest import stub

from helpers import checks
from helpers import numpy_norm as nn


def _bn_backward(dy, x, gamma, eps, *, ddof=0, drop=None):
    """A hand-written batch-norm backward; ddof=1 or drop="mean"/"xhat" make plausible mistakes."""
    axes = (0, *range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv_std = 1 / np.sqrt(x.var(axis=axes, keepdims=True, ddof=ddof) + eps)
    x_hat = (x - x.mean(axis=axes, keepdims=True)) * inv_std
    g = dy * gamma.reshape(shape)
    mean_term = 0 if drop == "mean" else g.mean(axis=axes, keepdims=True)
    xhat_term = 0 if drop == "xhat" else x_hat * (g * x_hat).mean(axis=axes, keepdims=True)
    return inv_std * (g - mean_term - xhat_term), (dy * x_hat).sum(axis=axes), dy.sum(axis=axes)


def test_check_batch_norm_backward(capsys):
    checks.check_batch_norm_backward(_bn_backward)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_batch_norm_backward(stub)
    with pytest.raises(AssertionError, match="dx differs.*Hint"):  # unbiased variance
        checks.check_batch_norm_backward(lambda dy, x, g, e: _bn_backward(dy, x, g, e, ddof=1))
    for term in ("mean", "xhat"):  # a term of dx missing
        with pytest.raises(AssertionError, match="dx differs"):
            checks.check_batch_norm_backward(lambda dy, x, g, e, t=term: _bn_backward(dy, x, g, e, drop=t))

    def ignores_the_mean_terms(dy, x, gamma, eps):  # treats mean and var as constants
        dx, dgamma, dbeta = _bn_backward(dy, x, gamma, eps)
        axes = (0, *range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return dy * gamma.reshape(shape) / np.sqrt(x.var(axis=axes, keepdims=True) + eps), dgamma, dbeta

    with pytest.raises(AssertionError, match="dx differs.*Hint"):
        checks.check_batch_norm_backward(ignores_the_mean_terms)
    with pytest.raises(AssertionError, match="dgamma shape"):
        checks.check_batch_norm_backward(lambda dy, x, g, e: (_bn_backward(dy, x, g, e)[0],
                                                              np.zeros(1), np.zeros(x.shape[1])))
    with pytest.raises(AssertionError, match="expected a tuple"):
        checks.check_batch_norm_backward(lambda dy, x, g, e: dy)
    with pytest.raises(AssertionError, match="write it yourself"):  # shortcut through the helper
        checks.check_batch_norm_backward(lambda dy, x, g, e: nn.batch_norm_backward(dy, x, g, e))
    with pytest.raises(AssertionError, match="write it yourself"):
        checks.check_batch_norm_backward(nn.batch_norm_backward)
    assert nn.batch_norm_backward.__name__ == "batch_norm_backward"  # restored afterwards


def _group_norm(x, groups, gamma, beta, eps, ddof=0):
    n, c = x.shape[:2]
    xg = x.reshape(n, groups, -1)
    xg = (xg - xg.mean(axis=2, keepdims=True)) / np.sqrt(xg.var(axis=2, keepdims=True, ddof=ddof) + eps)
    return xg.reshape(x.shape) * gamma.reshape(1, c, 1, 1) + beta.reshape(1, c, 1, 1)


def test_check_group_norm(capsys):
    checks.check_group_norm(_group_norm)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_group_norm(stub)

    def channel_major_groups(x, groups, gamma, beta, eps):  # groups of every G-th channel
        n, c = x.shape[:2]
        perm = np.arange(c).reshape(c // groups, groups).T.ravel()
        inv = np.argsort(perm)
        y = _group_norm(x[:, perm], groups, np.ones(c), np.zeros(c), eps)[:, inv]
        return y * gamma.reshape(1, c, 1, 1) + beta.reshape(1, c, 1, 1)

    with pytest.raises(AssertionError, match="relative error|differs"):
        checks.check_group_norm(channel_major_groups)
    with pytest.raises(AssertionError, match="relative error|differs"):  # unbiased variance
        checks.check_group_norm(lambda x, g, ga, be, eps: _group_norm(x, g, ga, be, eps, ddof=1))
    with pytest.raises(AssertionError, match="write it yourself"):  # shortcut through the helper
        checks.check_group_norm(nn.group_norm)
    with pytest.raises(AssertionError, match="write it yourself"):
        checks.check_group_norm(lambda x, g, ga, be, eps: nn.layer_norm(x, ga, be, eps))


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


def test_check_fold_batch_norm_refuses_torch_fusion_and_restores_it():
    import torch.nn.utils.fusion as fusion

    def through_fuse_weights(w, b, gamma, beta, mean, var, eps):
        t = [torch.from_numpy(a) for a in (w, b, mean, var, gamma, beta)]
        fw, fb = torch.nn.utils.fuse_conv_bn_weights(t[0], t[1], t[2], t[3], eps, t[4], t[5])
        return fw.detach().numpy(), fb.detach().numpy()

    def through_fuse_eval(w, b, gamma, beta, mean, var, eps):
        conv = torch.nn.Conv2d(w.shape[1], w.shape[0], w.shape[2]).double().eval()
        bn = torch.nn.BatchNorm2d(w.shape[0], eps=eps).double().eval()
        conv.weight.data, conv.bias.data = torch.from_numpy(w), torch.from_numpy(b)
        bn.weight.data, bn.bias.data = torch.from_numpy(gamma), torch.from_numpy(beta)
        bn.running_mean, bn.running_var = torch.from_numpy(mean), torch.from_numpy(var)
        fused = fusion.fuse_conv_bn_eval(conv, bn)
        return fused.weight.detach().numpy(), fused.bias.detach().numpy()

    originals = (torch.nn.utils.fuse_conv_bn_weights, fusion.fuse_conv_bn_weights,
                 torch.nn.utils.fuse_conv_bn_eval, fusion.fuse_conv_bn_eval)  # fmt: skip
    for shortcut in (through_fuse_weights, through_fuse_eval):
        with pytest.raises(AssertionError, match="write it yourself; do not call torch.nn.utils"):
            checks.check_fold_batch_norm(shortcut)
        args = (np.ones((2, 1, 3, 3)), np.ones(2), np.full(2, 2.0), np.zeros(2), np.ones(2),
                np.full(2, 3.0), 1e-5)  # fmt: skip
        for ours, ref in zip(shortcut(*args), _fold(*args), strict=True):  # right, yet refused
            assert np.allclose(ours, ref)
    assert (torch.nn.utils.fuse_conv_bn_weights, fusion.fuse_conv_bn_weights,
            torch.nn.utils.fuse_conv_bn_eval, fusion.fuse_conv_bn_eval) == originals  # fmt: skip


# --------------------------------------------------------------------------- chapter 7
