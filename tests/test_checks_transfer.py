"""The chapter 8 checks pass on a correct answer and fail on a stub or a plausible mistake."""

import numpy as np
import pytest
import torch
from conftest import stub

from helpers import checks


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


def test_check_head_gradients(capsys):
    checks.check_head_gradients(head_gradients)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_head_gradients(stub)

    def not_averaged(f, w, b, y):
        dw, db = head_gradients(f, w, b, y)
        return dw * len(y), db * len(y)

    with pytest.raises(AssertionError, match="differs from autograd"):
        checks.check_head_gradients(not_averaged)


def test_check_bn_eval(capsys):
    checks.check_bn_eval(bn_eval)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_bn_eval(stub)
    with pytest.raises(AssertionError, match="mode"):
        checks.check_bn_eval(lambda model: model.eval())
