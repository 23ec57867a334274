"""helpers.checks.augmentation (chapter 5): each check passes on a correct answer and fails on a
stub, a plausible mistake, and a shortcut through the book's own ``helpers.augment``."""

import pytest
import torch
import torch.nn.functional as F
from conftest import stub

from helpers import augment, checks


def translate(x, shifts):
    """A correct answer by the chapter's route: source indices, clamped, then masked."""
    n, _, h, w = x.shape
    rows = torch.arange(h)[None, :] - shifts[:, :1]
    cols = torch.arange(w)[None, :] - shifts[:, 1:]
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    out = x[
        torch.arange(n)[:, None, None],
        :,
        rows.clamp(0, h - 1)[:, :, None],
        cols.clamp(0, w - 1)[:, None, :],
    ].permute(0, 3, 1, 2)
    return torch.where(inside[:, None], out, 0.0)


def translate_by_padding(x, shifts):
    """A correct answer by another route: pad by the largest shift, slice one window each."""
    _, _, h, w = x.shape
    p = int(shifts.abs().max())
    padded = F.pad(x, (p, p, p, p))
    return torch.stack(
        [
            padded[i, :, p - dy : p - dy + h, p - dx : p - dx + w]
            for i, (dy, dx) in enumerate(shifts.tolist())
        ]
    )


def rolled(x, shifts):  # wraps around like torch.roll instead of filling with zeros
    return torch.stack(
        [torch.roll(xi, tuple(si.tolist()), (-2, -1)) for xi, si in zip(x, shifts, strict=True)]
    )


def test_check_translate(capsys):
    checks.check_translate(translate)
    checks.check_translate(translate_by_padding)
    assert capsys.readouterr().out.count("passed") == 2
    with pytest.raises(NotImplementedError):
        checks.check_translate(stub)
    with pytest.raises(AssertionError, match="differ"):
        checks.check_translate(rolled)
    with pytest.raises(AssertionError, match="differ"):  # moves the content up and left
        checks.check_translate(lambda x, s: translate(x, -s))


def test_check_translate_refuses_the_library_and_restores_it():
    original = augment.translate
    with pytest.raises(AssertionError, match="asks you to write it yourself"):
        checks.check_translate(augment.translate)
    with pytest.raises(AssertionError, match="asks you to write it yourself"):
        checks.check_translate(lambda x, s: augment.translate(x, s))
    assert augment.translate is original


def test_check_translate_backward(capsys):
    checks.check_translate_backward(lambda g, s: translate(g, -s))  # shift back, zeros in
    checks.check_translate_backward(lambda g, s: translate_by_padding(g, -s))
    assert capsys.readouterr().out.count("passed") == 2
    with pytest.raises(NotImplementedError):
        checks.check_translate_backward(stub)
    with pytest.raises(AssertionError, match="grad_in differs"):  # the forward direction again
        checks.check_translate_backward(translate)
    with pytest.raises(AssertionError, match="grad_in differs"):  # no zero fill: wraps around
        checks.check_translate_backward(lambda g, s: rolled(g, -s))
    with pytest.raises(AssertionError, match="grad_in differs"):  # dy and dx swapped
        checks.check_translate_backward(lambda g, s: translate(g, -s.flip(1)))
    with pytest.raises(AssertionError, match="grad_in shape"):
        checks.check_translate_backward(lambda g, s: translate(g, -s)[:, :1])


def test_check_translate_backward_refuses_the_library_and_restores_it():
    original, crop = augment.translate, augment.random_crop
    with pytest.raises(AssertionError, match="asks you to write it yourself"):
        checks.check_translate_backward(lambda g, s: augment.translate(g, -s))
    assert augment.translate is original and augment.random_crop is crop
    checks.check_translate_backward(lambda g, s: translate(g, -s))
    assert augment.translate is original


def mixup(x, y, lam, perm, k):
    one_hot = F.one_hot(y, k).float()
    l4 = lam[:, None, None, None]
    return l4 * x + (1 - l4) * x[perm], lam[:, None] * one_hot + (1 - lam[:, None]) * one_hot[perm]


def test_check_mixup(capsys):
    checks.check_mixup(mixup)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_mixup(stub)
    with pytest.raises(AssertionError, match="differ"):  # lam and 1 - lam swapped
        checks.check_mixup(lambda x, y, lam, perm, k: mixup(x, y, 1 - lam, perm, k))
    with pytest.raises(AssertionError, match="differ"):  # the partner's index inverted
        checks.check_mixup(lambda x, y, lam, perm, k: mixup(x, y, lam, torch.argsort(perm), k))
    with pytest.raises(AssertionError, match="pair"):
        checks.check_mixup(lambda *a: mixup(*a)[0])


def test_check_mixup_refuses_the_library():
    def through_the_library(x, y, lam, perm, k):
        return augment.mixup(x, y, k, lam=lam)[:2]

    with pytest.raises(AssertionError, match="asks you to write it yourself"):
        checks.check_mixup(through_the_library)
    assert "helper_not_allowed" not in augment.mixup.__name__


def cutmix_lambda(boxes, h, w):
    rows = (boxes[:, 2].clamp(0, h) - boxes[:, 0].clamp(0, h)).clamp_min(0)
    cols = (boxes[:, 3].clamp(0, w) - boxes[:, 1].clamp(0, w)).clamp_min(0)
    return 1 - rows * cols / (h * w)


def test_check_cutmix_lambda(capsys):
    def unclipped(boxes, h, w):
        return 1 - (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / (h * w)

    checks.check_cutmix_lambda(cutmix_lambda)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_cutmix_lambda(stub)
    with pytest.raises(AssertionError, match="clip"):
        checks.check_cutmix_lambda(unclipped)
    with pytest.raises(AssertionError, match="differ"):  # the pasted fraction, not the kept one
        checks.check_cutmix_lambda(lambda b, h, w: 1 - cutmix_lambda(b, h, w))
    with pytest.raises(AssertionError, match="output shape"):
        checks.check_cutmix_lambda(lambda b, h, w: cutmix_lambda(b, h, w)[:1])


def test_check_cutmix_lambda_refuses_the_library():
    def through_box_mask(boxes, h, w):
        clipped = torch.stack(
            [
                boxes[:, 0].clamp(0, h),
                boxes[:, 1].clamp(0, w),
                boxes[:, 2].clamp(0, h),
                boxes[:, 3].clamp(0, w),
            ],
            1,
        )
        return 1 - augment.box_mask(clipped, h, w).flatten(1).double().mean(1)

    with pytest.raises(AssertionError, match="asks you to write it yourself"):
        checks.check_cutmix_lambda(through_box_mask)
    assert "helper_not_allowed" not in augment.box_mask.__name__
