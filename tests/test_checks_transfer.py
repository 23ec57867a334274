"""The chapter 8 checks pass on a correct answer and fail on a stub, a plausible mistake, and a
shortcut through the book's own helpers."""

import numpy as np
import pytest
import torch
from conftest import stub

from helpers import checks, numpy_nn, transfer


def freeze_first(model, k):
    for i, part in enumerate([model.stem, *model.blocks, model.fc]):
        for p in part.parameters():
            p.requires_grad_(i >= k)
    return model


def head_gradients(f, w, b, y):
    z = f @ w.T + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    return (p / len(y)).T @ f, (p / len(y)).sum(axis=0)


def head_gradients_by_log_softmax(f, w, b, y):  # correct too: one-hot matrix, log-sum-exp
    z = f @ w.T + b
    p = np.exp(z - np.logaddexp.reduce(z, axis=1, keepdims=True))
    dz = (p - np.eye(w.shape[0])[y]) / len(y)
    return [np.einsum("nk,nd->kd", dz, f), dz.sum(0)]


def bn_eval(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    return model


def test_check_freeze_first(capsys):
    checks.check_freeze_first(freeze_first)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_freeze_first(stub)

    def off_by_one(model, k):
        return freeze_first(model, k + 1)

    with pytest.raises(AssertionError, match="Hint"):
        checks.check_freeze_first(off_by_one)
    with pytest.raises(AssertionError, match="return the model"):
        checks.check_freeze_first(lambda model, k: freeze_first(model, k) and None)


def test_check_freeze_first_refuses_transfer_freeze_and_restores_it():
    original = transfer.freeze

    def through_the_library(model, k):
        for i, part in enumerate([model.stem, *model.blocks, model.fc]):
            transfer.freeze(part, i < k)
        return model

    with pytest.raises(AssertionError, match="asks you to write it yourself"):
        checks.check_freeze_first(through_the_library)
    assert transfer.freeze is original


def test_check_head_gradients(capsys):
    checks.check_head_gradients(head_gradients)
    checks.check_head_gradients(head_gradients_by_log_softmax)
    assert capsys.readouterr().out.count("passed") == 2
    with pytest.raises(NotImplementedError):
        checks.check_head_gradients(stub)

    def not_averaged(f, w, b, y):
        dw, db = head_gradients(f, w, b, y)
        return dw * len(y), db * len(y)

    def no_one_hot(f, w, b, y):  # differentiates log-sum-exp only, forgets the -z_y term
        z = f @ w.T + b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return (p / len(y)).T @ f, (p / len(y)).sum(axis=0)

    def sign_flipped(f, w, b, y):  # onehot - p: the gradient of the log-likelihood
        dw, db = head_gradients(f, w, b, y)
        return -dw, -db

    for wrong in (not_averaged, no_one_hot, sign_flipped):
        with pytest.raises(AssertionError, match="dw differs from the reference"):
            checks.check_head_gradients(wrong)
    with pytest.raises(AssertionError, match="dw shape"):  # f.T @ dz: (D, K), transposed
        checks.check_head_gradients(
            lambda f, w, b, y: (head_gradients(f, w, b, y)[0].T, head_gradients(f, w, b, y)[1])
        )
    with pytest.raises(AssertionError, match="pair"):
        checks.check_head_gradients(lambda *a: head_gradients(*a)[0])


def test_check_head_gradients_refuses_numpy_nn_and_autograd():
    originals = numpy_nn.softmax_cross_entropy, numpy_nn.linear_backward

    def through_numpy_nn(f, w, b, y):
        _, dz = numpy_nn.softmax_cross_entropy(numpy_nn.linear(f, w, b), y)
        return numpy_nn.linear_backward(dz, f, w)[1:]

    def through_autograd(f, w, b, y):
        w_t, b_t = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
        z = torch.from_numpy(f) @ w_t.T + b_t
        torch.nn.functional.cross_entropy(z, torch.from_numpy(y)).backward()
        return w_t.grad.numpy(), b_t.grad.numpy()

    with pytest.raises(AssertionError, match="asks you to write it yourself"):
        checks.check_head_gradients(through_numpy_nn)
    assert (numpy_nn.softmax_cross_entropy, numpy_nn.linear_backward) == originals
    with pytest.raises(AssertionError, match="autograd is off"):
        checks.check_head_gradients(through_autograd)
    through_autograd(np.ones((2, 3)), np.ones((4, 3)), np.zeros(4), np.array([0, 1]))


def test_check_bn_eval(capsys):
    checks.check_bn_eval(bn_eval)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_bn_eval(stub)
    with pytest.raises(AssertionError, match="mode"):
        checks.check_bn_eval(lambda model: model.eval())
    with pytest.raises(AssertionError, match="return the model"):
        checks.check_bn_eval(lambda model: bn_eval(model) and None)


def test_check_bn_eval_refuses_freeze_batchnorm():
    original = transfer.freeze_batchnorm
    with pytest.raises(AssertionError, match="asks you to write it yourself"):
        checks.check_bn_eval(lambda model: transfer.freeze_batchnorm(model))
    assert transfer.freeze_batchnorm is original
