"""helpers.checks.augmentation (chapter 5): each check passes on a correct answer and fails on a stub
or a plausible mistake."""

import pytest
import torch
import torch.nn.functional as F
from conftest import stub

from helpers import augment, checks


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
