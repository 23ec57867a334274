"""The chapter 9 checks pass on a correct answer and fail on a stub, a plausible mistake, and a
shortcut through the book's own helpers."""

import math

import pytest
import torch
from conftest import stub

from helpers import augment, callbacks, checks, schedules, training
from helpers.callbacks import WeightEMA


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


def _through_weight_ema(average, weights, decay, k=1):
    """The shortcut: k steps of the book's callbacks.WeightEMA from ``average`` towards ``weights``."""
    layer = torch.nn.Linear(1, 1, bias=False)
    layer.weight = torch.nn.Parameter(average.clone())
    ema = callbacks.WeightEMA(decay=decay)
    ema.update(layer)
    with torch.no_grad():
        layer.weight.copy_(weights)
    for _ in range(k):
        ema.update(layer)
    return ema.state_dict()["weight"]


def test_check_ema_update_refuses_weight_ema_and_restores_it():
    with pytest.raises(AssertionError, match="asks you to write it yourself"):
        checks.check_ema_update(_through_weight_ema)
    assert callbacks.WeightEMA is WeightEMA


def ema_every_k(average, weights, decay, k):
    kept = decay**k
    return kept * average + (1 - kept) * weights


def ema_every_k_by_steps(average, weights, decay, k):  # correct too: k plain steps
    for _ in range(k):
        average = decay * average + (1 - decay) * weights
    return average


def test_check_ema_every_k(capsys):
    checks.check_ema_every_k(ema_every_k)
    checks.check_ema_every_k(ema_every_k_by_steps)
    assert capsys.readouterr().out.count("passed") == 2
    with pytest.raises(NotImplementedError):
        checks.check_ema_every_k(stub)

    def ignores_k(average, weights, decay, k):
        return ema_update(average, weights, decay)

    def first_order(average, weights, decay, k):  # 1 - k (1 - d) instead of d**k
        kept = 1 - k * (1 - decay)
        return kept * average + (1 - kept) * weights

    def not_normalized(average, weights, decay, k):  # the weights still get only 1 - d
        return decay**k * average + (1 - decay) * weights

    for wrong in (ignores_k, first_order, not_normalized):
        with pytest.raises(AssertionError, match="new average differs"):
            checks.check_ema_every_k(wrong)
    with pytest.raises(AssertionError, match="torch.Tensor"):
        checks.check_ema_every_k(lambda a, w, d, k: ema_every_k(a, w, d, k).numpy())


def test_check_ema_every_k_refuses_weight_ema():
    with pytest.raises(AssertionError, match="asks you to write it yourself"):
        checks.check_ema_every_k(_through_weight_ema)
    assert callbacks.WeightEMA is WeightEMA


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


def test_check_flip_tta_refuses_tta_probs_and_restores_it():
    original = augment.tta_probs

    def through_tta_probs(model, x):
        return augment.tta_probs(model, x, [lambda v: v, lambda v: v.flip(-1)])

    with pytest.raises(AssertionError, match="asks you to write it yourself"):
        checks.check_flip_tta(through_tta_probs)
    assert augment.tta_probs is original


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


def test_check_warmup_cosine_refuses_helpers_schedules():
    original = schedules.cosine_annealing_lr

    def through_schedules(t, peak_lr, warmup_steps, total_steps):
        if t < warmup_steps:
            return schedules.warmup_lr(t, peak_lr, warmup_steps)
        return schedules.cosine_annealing_lr(t - warmup_steps, peak_lr, total_steps - warmup_steps)

    through_schedules(3, 0.1, 5, 30), through_schedules(9, 0.1, 5, 30)  # a correct answer
    with pytest.raises(AssertionError, match="asks you to write it yourself"):
        checks.check_warmup_cosine(through_schedules)
    assert schedules.cosine_annealing_lr is original
