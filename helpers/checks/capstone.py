"""Exercise checks for chapter 9, putting it together: an EMA step (and the one update that
replaces k of them), flip test-time augmentation, a warmup-then-cosine learning rate.

Each compares a reader's function with a reference on random inputs; a stub's
NotImplementedError propagates, so a check fails on an unfinished exercise. While the reader's
function runs, the ``helpers`` functions that would do the exercise for it raise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from helpers import augment, callbacks, models, schedules, training
from helpers.callbacks import WeightEMA
from helpers.checks._common import compare, fail, passed, written_by_hand

_SCHEDULES = (
    "cosine_annealing_lr",
    "linear_warmup_lr",
    "warmup_lr",
    "one_cycle_lr",
    "cosine_warm_restarts_lr",
)


def check_ema_update(ema_update: Callable, seed: int = 0) -> None:
    """``ema_update(average, weights, decay) -> new average`` (tensors of one shape), checked
    step by step and over a sequence of weights against ``helpers.callbacks.WeightEMA``."""
    name = "check_ema_update"
    hint = (
        "the average keeps the fraction `decay` of itself and takes 1 - decay of the new "
        "weights: decay * average + (1 - decay) * weights"
    )
    gen = torch.Generator().manual_seed(seed)
    cases = [(0.9, (3,)), (0.5, (4, 5)), (0.999, (2, 3, 3))]
    for decay, shape in cases:
        layer = torch.nn.Linear(1, 1, bias=False)
        layer.weight = torch.nn.Parameter(torch.empty(shape, dtype=torch.float64))
        reference = WeightEMA(decay=decay)
        average = None
        for step in range(5):
            w = torch.randn(shape, generator=gen, dtype=torch.float64)
            with torch.no_grad():
                layer.weight.copy_(w)
            reference.update(layer)
            if average is None:
                average = w.clone()
                continue
            before = average.clone()
            with written_by_hand(name, callbacks, ("WeightEMA",), answer=ema_update):
                average = ema_update(average.clone(), w.clone(), decay)
            case = f"decay={decay}, step {step}, shape {shape}"
            if not isinstance(average, torch.Tensor) or average.shape != w.shape:
                raise fail(name, case, "expected a tensor of the weights' shape back", hint)
            want = decay * before + (1 - decay) * w
            if not torch.allclose(average, want, rtol=1e-12, atol=1e-12):
                raise fail(name, case, "the new average differs from the EMA", hint)
        if not torch.allclose(average, reference.state_dict()["weight"], atol=1e-12):
            raise fail(name, f"decay={decay}", "five steps disagree with WeightEMA", hint)
    print(f"check_ema_update: passed on {len(cases)} sequences of 5 steps")


def check_ema_every_k(ema_update: Callable, seed: int = 0) -> None:
    """``ema_update(average, weights, decay, k) -> new average`` (tensors of one shape, k >= 1
    an int): the single update that replaces k EMA steps with the same weights, checked
    against k steps of ``decay * average + (1 - decay) * weights`` in float64. While it runs,
    ``helpers.callbacks.WeightEMA`` raises."""
    name = "check_ema_every_k"
    hint = (
        "apply average <- d * average + (1 - d) * weights k times with the same weights: the "
        "average keeps d**k of itself and the weights get the rest, (1 - d)(1 + d + ... + "
        "d**(k - 1)) = 1 - d**k; 1 - k * (1 - d) is only the first-order approximation of d**k"
    )
    gen = torch.Generator().manual_seed(seed)
    cases = [(0.9, 1, (3,)), (0.9, 4, (4, 5)), (0.5, 5, (2, 3, 3)), (0.99, 37, (2, 2)),
             (0.999, 250, (6,))]  # fmt: skip
    for decay, k, shape in cases:
        average = torch.randn(shape, generator=gen, dtype=torch.float64)
        weights = torch.randn(shape, generator=gen, dtype=torch.float64)
        want = average.clone()
        for _ in range(k):
            want = decay * want + (1 - decay) * weights
        with written_by_hand(name, callbacks, ("WeightEMA",), answer=ema_update):
            got = ema_update(average.clone(), weights.clone(), decay, k)
        compare(name, f"decay={decay}, k={k}, shape {shape}", got, want, hint, rtol=1e-10,
                atol=1e-12, what="new average", tensor=True)  # fmt: skip
    passed(name, len(cases))


def check_flip_tta(flip_tta_probs: Callable, seed: int = 0) -> None:
    """``flip_tta_probs(model, x) -> (N, K)``: the mean of the softmax probabilities on x and
    on x flipped left to right, in eval mode, with every module's own mode restored (a batch
    norm frozen in eval mode inside a training model stays frozen)."""
    name = "check_flip_tta"
    hint = (
        "average the probabilities, not the logits: (softmax(model(x)) + "
        "softmax(model(x.flip(-1)))) / 2, inside `with training.eval_mode(model), "
        "torch.no_grad():`, which gives each module back its own mode afterwards "
        "(model.train(was_training) would unfreeze a frozen batch norm)"
    )
    torch.manual_seed(seed)
    cases = [(5, 1, 8, 3), (3, 3, 6, 4)]
    for n, c, size, k in cases:
        model = models.resnet(depth=6, widths=(4, 8), in_channels=c, num_classes=k, drop_path=0.3)
        with torch.no_grad():  # make batch norm's running statistics matter
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-1, 1)
                    module.running_var.uniform_(0.5, 2)
        x = 3 * torch.randn(n, c, size, size)
        model.train()
        frozen = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
        frozen.eval()  # frozen for fine-tuning, as chapter 8 does
        modes = {m: m.training for m in model.modules()}
        with written_by_hand(name, augment, ("tta_probs",), answer=flip_tta_probs):
            out = flip_tta_probs(model, x.clone())
        case = f"x {tuple(x.shape)}, {k} classes"
        if not model.training:
            raise fail(name, case, "the model was left in eval mode", hint)
        if frozen.training:
            raise fail(name, case, "a batch norm frozen in eval mode came back training", hint)
        if any(m.training != mode for m, mode in modes.items()):
            raise fail(name, case, "some module's train/eval mode was changed", hint)
        with training.eval_mode(model), torch.no_grad():
            want = (torch.softmax(model(x), 1) + torch.softmax(model(x.flip(-1)), 1)) / 2
        if not isinstance(out, torch.Tensor) or out.shape != (n, k):
            raise fail(name, case, f"expected a tensor of shape {(n, k)}", hint)
        if out.requires_grad:
            raise fail(name, case, "the result carries gradients", hint)
        if not torch.allclose(out.sum(1), torch.ones(n), atol=1e-5):
            raise fail(name, case, "the rows do not sum to 1", hint)
        if not torch.allclose(out, want, atol=1e-5):
            raise fail(name, case, "the probabilities differ from the flip-TTA average", hint)
    print(f"check_flip_tta: passed on {len(cases)} random models")


def _warmup_cosine(t: int, peak_lr: float, warmup_steps: int, total_steps: int) -> float:
    if t < warmup_steps:
        return peak_lr * (t + 1) / warmup_steps
    progress = (t - warmup_steps) / (total_steps - warmup_steps)
    return peak_lr * 0.5 * (1 + math.cos(math.pi * progress))


def check_warmup_cosine(warmup_cosine_lr: Callable) -> None:
    """``warmup_cosine_lr(t, peak_lr, warmup_steps, total_steps)`` for t = 0 .. total_steps:
    linear warmup to ``peak_lr * (t + 1) / warmup_steps``, then a half cosine to 0."""
    name = "check_warmup_cosine"
    hint = (
        "for t < warmup_steps return peak_lr * (t + 1) / warmup_steps; after that the "
        "cosine runs over the remaining total_steps - warmup_steps steps: "
        "peak_lr * (1 + cos(pi * (t - warmup_steps) / (total_steps - warmup_steps))) / 2"
    )
    cases = [(0.1, 5, 30), (2.0, 1, 10), (0.4, 12, 100)]
    for peak, warmup, total in cases:
        for t in range(total + 1):
            with written_by_hand(name, schedules, _SCHEDULES, answer=warmup_cosine_lr):
                got = float(warmup_cosine_lr(t, peak, warmup, total))
            want = _warmup_cosine(t, peak, warmup, total)
            if not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12):
                raise fail(
                    name,
                    f"peak_lr={peak}, warmup_steps={warmup}, total_steps={total}, t={t}",
                    f"got {got:.6g}, expected {want:.6g}",
                    hint,
                )
    print(f"check_warmup_cosine: passed on {len(cases)} schedules")
