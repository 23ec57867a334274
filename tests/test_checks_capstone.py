"""The chapter 9 checks pass on a correct answer and fail on a stub or a plausible mistake."""

import math

import pytest
import torch
from conftest import stub

from helpers import checks, training


def ema_update(average, weights, decay):
    return decay * average + (1 - decay) * weights


def flip_tta_probs(model, x):
    with training.eval_mode(model), torch.no_grad():
        return (torch.softmax(model(x), 1) + torch.softmax(model(x.flip(-1)), 1)) / 2


def flip_tta_probs_saving_each_mode(model, x):  # correct too, without the helper
    modes = {m: m.training for m in model.modules()}
    model.eval()
    with torch.no_grad():
        probs = (torch.softmax(model(x), 1) + torch.softmax(model(x.flip(-1)), 1)) / 2
    for m, mode in modes.items():
        m.training = mode
    return probs


def flip_tta_probs_train_was_training(model, x):  # unfreezes a frozen batch norm
    was_training = model.training
    model.eval()
    with torch.no_grad():
        probs = (torch.softmax(model(x), 1) + torch.softmax(model(x.flip(-1)), 1)) / 2
    model.train(was_training)
    return probs


def warmup_cosine_lr(t, peak_lr, warmup_steps, total_steps):
    if t < warmup_steps:
        return peak_lr * (t + 1) / warmup_steps
    progress = (t - warmup_steps) / (total_steps - warmup_steps)
    return peak_lr * (1 + math.cos(math.pi * progress)) / 2


def test_check_ema_update(capsys):
    checks.check_ema_update(ema_update)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_ema_update(stub)

    def swapped(average, weights, decay):  # keeps 1 - decay of the average
        return (1 - decay) * average + decay * weights

    with pytest.raises(AssertionError, match="Hint"):
        checks.check_ema_update(swapped)


def test_check_flip_tta(capsys):
    checks.check_flip_tta(flip_tta_probs)
    checks.check_flip_tta(flip_tta_probs_saving_each_mode)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="frozen in eval mode came back training"):
        checks.check_flip_tta(flip_tta_probs_train_was_training)
    with pytest.raises(NotImplementedError):
        checks.check_flip_tta(stub)

    def averaged_logits(model, x):
        model.eval()
        with torch.no_grad():
            out = torch.softmax((model(x) + model(x.flip(-1))) / 2, 1)
        model.train()
        return out

    def train_mode(model, x):  # batch statistics and DropPath at test time
        with torch.no_grad():
            return (torch.softmax(model(x), 1) + torch.softmax(model(x.flip(-1)), 1)) / 2

    def flipped_rows(model, x):
        return flip_tta_probs(model, x.flip(-2))

    for wrong in (averaged_logits, train_mode, flipped_rows):
        with pytest.raises(AssertionError, match="Hint"):
            checks.check_flip_tta(wrong)


def test_check_warmup_cosine(capsys):
    checks.check_warmup_cosine(warmup_cosine_lr)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_warmup_cosine(stub)

    def starts_at_zero(t, peak_lr, warmup_steps, total_steps):
        if t < warmup_steps:
            return peak_lr * t / warmup_steps
        return warmup_cosine_lr(t, peak_lr, warmup_steps, total_steps)

    def cosine_over_all_steps(t, peak_lr, warmup_steps, total_steps):
        if t < warmup_steps:
            return peak_lr * (t + 1) / warmup_steps
        return peak_lr * (1 + math.cos(math.pi * t / total_steps)) / 2

    for wrong in (starts_at_zero, cosine_over_all_steps):
        with pytest.raises(AssertionError, match="Hint"):
            checks.check_warmup_cosine(wrong)
