"""helpers.checks.residual (chapter 7): each check passes on a correct answer and fails on a stub
or a plausible mistake."""

import pytest
import torch
import torch.nn.functional as F
from conftest import stub

from helpers import checks, models


def test_check_pad_shortcut(capsys):
    def answer(x, out_channels, stride):
        x = x[:, :, ::stride, ::stride]
        return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))

    checks.check_pad_shortcut(answer)
    assert "passed" in capsys.readouterr().out
    block = models.BasicBlock(4, 8, stride=2)  # the builder's own shortcut agrees
    checks.check_pad_shortcut(lambda x, c, s: models.BasicBlock(x.shape[1], c, s).shortcut(x))
    assert block.shortcut(torch.zeros(1, 4, 4, 4)).shape == (1, 8, 2, 2)
    with pytest.raises(NotImplementedError):
        checks.check_pad_shortcut(stub)

    def pads_in_front(x, out_channels, stride):
        x = x[:, :, ::stride, ::stride]
        return F.pad(x, (0, 0, 0, 0, out_channels - x.shape[1], 0))

    with pytest.raises(AssertionError, match="max error"):
        checks.check_pad_shortcut(pads_in_front)
    with pytest.raises(AssertionError, match="output shape"):
        checks.check_pad_shortcut(lambda x, c, s: F.avg_pool2d(x, s, s))
    with pytest.raises(AssertionError, match="torch.Tensor"):
        checks.check_pad_shortcut(lambda x, c, s: answer(x, c, s).numpy())



def test_check_drop_path(capsys):
    checks.check_drop_path(models.drop_path)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_drop_path(stub)

    def per_element(x, p, training):  # ordinary dropout, not whole examples
        return F.dropout(x, p, training)

    def keep_probability(x, p, training):  # p read as the keep probability
        return models.drop_path(x, 1 - p, training) if training and p > 0 else x

    def no_rescale(x, p, training):
        return models.drop_path(x, p, training) * (1 - p)

    def always_random(x, p, training):
        return models.drop_path(x, p, True)

    with pytest.raises(AssertionError, match="neither all zero"):
        checks.check_drop_path(per_element)
    with pytest.raises(AssertionError, match="Hint"):
        checks.check_drop_path(keep_probability)

    def drops_too_often(x, p, training):  # right scaling, wrong rate
        if not training or p == 0:
            return x
        keep = (torch.rand(x.shape[0], *([1] * (x.ndim - 1))) >= 2 * p).to(x.dtype)
        return x * keep / (1 - p)

    with pytest.raises(AssertionError, match="expected about"):
        checks.check_drop_path(drops_too_often)
    with pytest.raises(AssertionError, match="neither all zero"):
        checks.check_drop_path(no_rescale)
    with pytest.raises(AssertionError, match="eval"):
        checks.check_drop_path(always_random)
    with pytest.raises(AssertionError, match="tensor shaped like x"):
        checks.check_drop_path(lambda x, p, training: x[:1])



def test_check_preact_block(capsys):
    def answer(x, w1, w2):
        def bn_relu(z):
            return F.relu(F.batch_norm(z, None, None, training=True))

        return x + F.conv2d(bn_relu(F.conv2d(bn_relu(x), w1, padding=1)), w2, padding=1)

    checks.check_preact_block(answer)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_preact_block(stub)

    def post_activation(x, w1, w2):
        def bn(z):
            return F.batch_norm(z, None, None, training=True)

        return F.relu(x + bn(F.conv2d(F.relu(bn(F.conv2d(x, w1, padding=1))), w2, padding=1)))

    with pytest.raises(AssertionError, match="max error"):
        checks.check_preact_block(post_activation)
    with pytest.raises(AssertionError, match="max error"):
        checks.check_preact_block(lambda x, w1, w2: F.relu(answer(x, w1, w2)))
