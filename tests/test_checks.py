"""Every exercise check passes on a correct answer and fails on a stub or a wrong answer."""

import numpy as np
import pytest

from helpers import checks
from helpers import numpy_nn as nn
from helpers.checks import conv as conv_checks


def stub(*args, **kwargs):
    raise NotImplementedError("exercise not done")


def test_check_max_pool2d(capsys):
    checks.check_max_pool2d(nn.max_pool2d)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_max_pool2d(stub)
    with pytest.raises(AssertionError, match="Hint"):
        checks.check_max_pool2d(lambda x, k, s: nn.avg_pool2d(x, k, s))
    with pytest.raises(AssertionError, match="output shape"):
        checks.check_max_pool2d(lambda x, k, s: nn.max_pool2d(x, k, k))


def test_check_conv2d(capsys):
    checks.check_conv2d(nn.conv2d)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_conv2d(stub)
    with pytest.raises(AssertionError, match="relative error"):
        checks.check_conv2d(lambda x, w, b: nn.conv2d(x, w[:, :, ::-1, ::-1].copy(), b))


def test_check_receptive_field(capsys):
    def answer(layers):
        size, jump = 1, 1
        for k, s in layers:
            size, jump = size + (k - 1) * jump, jump * s
        return size

    checks.check_receptive_field(answer)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_receptive_field(stub)
    with pytest.raises(AssertionError, match="expected"):
        checks.check_receptive_field(lambda layers: 1 + sum(k - 1 for k, _ in layers))


def test_receptive_field_reference_matches_autograd():
    """The reference formula agrees with the footprint of an output pixel's gradient."""
    import torch

    rng = np.random.default_rng(1)
    for _ in range(10):
        layers = [(int(rng.integers(1, 5)), int(rng.integers(1, 3))) for _ in range(int(rng.integers(1, 5)))]
        size = conv_checks._receptive_field_reference(layers)
        x = torch.zeros(1, 1, 4 * size + 8, 1, requires_grad=True)
        y = x
        for k, s in layers:
            y = torch.nn.functional.conv2d(y, torch.ones(1, 1, k, 1), stride=(s, 1))
        y[0, 0, 0, 0].backward()
        rows = torch.nonzero(x.grad[0, 0, :, 0]).flatten()
        assert int(rows.max() - rows.min() + 1) == size
