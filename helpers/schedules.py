"""Learning-rate schedules as pure functions of the step, equal to ``torch.optim.lr_scheduler``.

Each function takes the 0-based step ``t`` (the number of times the PyTorch scheduler's
``step()`` has been called) and returns the learning rate to use for the next optimizer step,
a float. PyTorch's schedulers update the rate recursively; these are the closed forms, so
they agree with PyTorch to rounding error:

=========================== =====================================================
function                    learning rate at step t
=========================== =====================================================
``step_lr``                 base * gamma^floor(t / step_size)
``exponential_lr``          base * gamma^t
``polynomial_lr``           base * (1 - min(t, T) / T)^power
``cosine_annealing_lr``     eta_min + (base - eta_min) (1 + cos(pi t / T_max)) / 2
``linear_warmup_lr``        base * (f + (1 - f) min(t, W) / W)
``warmup_lr``               base * w(u), u = min((t + 1) / W, 1), with w(u) = u (linear),
                            u^power (power law) or 1 - cos(pi u / 2) (cosine)
``cosine_warm_restarts_lr`` the cosine above, restarted after T_0, T_0 T_mult, ... steps
``one_cycle_lr``            cosine up from max_lr / div_factor to max_lr over
                            pct_start * total_steps steps, then cosine down to
                            max_lr / (div_factor * final_div_factor)
=========================== =====================================================
"""

from __future__ import annotations

import math

import numpy as np

from helpers import validation

__all__ = [
    "cosine_annealing_lr",
    "cosine_warm_restarts_lr",
    "exponential_lr",
    "linear_warmup_lr",
    "one_cycle_lr",
    "warmup_lr",
    "polynomial_lr",
    "step_lr",
]


def _step(t, fn: str) -> int:
    if isinstance(t, bool) or not isinstance(t, int | np.integer) or t < 0:
        raise ValueError(f"{fn}: t must be an int >= 0 (the 0-based step), got {t!r}")
    return int(t)


def _count(value, name: str, fn: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{fn}: {name} must be an int >= 1, got {value!r}")
    return int(value)


def _cosine(base_lr: float, eta_min: float, t: int, period: int) -> float:
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t / period)) / 2


def step_lr(t: int, base_lr: float, step_size: int, gamma: float = 0.1) -> float:
    """StepLR: multiply by ``gamma`` every ``step_size`` steps."""
    t = _step(t, "step_lr")
    base_lr = validation.number(base_lr, "base_lr", "step_lr", low=0.0)
    step_size = _count(step_size, "step_size", "step_lr")
    gamma = validation.number(gamma, "gamma", "step_lr", low=0.0)
    return base_lr * gamma ** (t // step_size)


def exponential_lr(t: int, base_lr: float, gamma: float) -> float:
    """ExponentialLR: multiply by ``gamma`` every step."""
    t = _step(t, "exponential_lr")
    base_lr = validation.number(base_lr, "base_lr", "exponential_lr", low=0.0)
    return base_lr * validation.number(gamma, "gamma", "exponential_lr", low=0.0) ** t


def polynomial_lr(t: int, base_lr: float, total_iters: int, power: float = 1.0) -> float:
    """PolynomialLR: base * (1 - t / total_iters)^power, and 0 from ``total_iters`` on."""
    t = _step(t, "polynomial_lr")
    base_lr = validation.number(base_lr, "base_lr", "polynomial_lr", low=0.0)
    total_iters = _count(total_iters, "total_iters", "polynomial_lr")
    power = validation.number(power, "power", "polynomial_lr", low=0.0)
    return base_lr * (1.0 - min(t, total_iters) / total_iters) ** power


def cosine_annealing_lr(t: int, base_lr: float, T_max: int, eta_min: float = 0.0) -> float:
    """CosineAnnealingLR: half a cosine from ``base_lr`` at t = 0 to ``eta_min`` at t = T_max.

    Past ``T_max`` the same cosine rises again, as PyTorch's scheduler does.
    """
    t = _step(t, "cosine_annealing_lr")
    base_lr = validation.number(base_lr, "base_lr", "cosine_annealing_lr", low=0.0)
    T_max = _count(T_max, "T_max", "cosine_annealing_lr")
    eta_min = validation.number(eta_min, "eta_min", "cosine_annealing_lr", low=0.0)
    return _cosine(base_lr, eta_min, t, T_max)


def linear_warmup_lr(t: int, base_lr: float, warmup_steps: int, start_factor: float) -> float:
    """LinearLR up to factor 1: from ``start_factor * base_lr`` to ``base_lr`` in ``warmup_steps``.

    ``start_factor`` lies in (0, 1], as PyTorch requires; after the warmup the rate stays at
    ``base_lr``.
    """
    fn = "linear_warmup_lr"
    t = _step(t, fn)
    base_lr = validation.number(base_lr, "base_lr", fn, low=0.0)
    warmup_steps = _count(warmup_steps, "warmup_steps", fn)
    start_factor = validation.number(start_factor, "start_factor", fn, low=0.0, low_open=True)
    if start_factor > 1:
        raise ValueError(f"{fn}: start_factor must be in (0, 1], got {start_factor!r}")
    return base_lr * (start_factor + (1 - start_factor) * min(t, warmup_steps) / warmup_steps)


WARMUP_SHAPES = ("linear", "power", "cosine")


def warmup_lr(t: int, base_lr: float, warmup_steps: int, shape: str = "linear",
              power: float = 2.0) -> float:
    """A warmup from near 0 to ``base_lr`` over ``warmup_steps`` steps, then ``base_lr``.

    With u = min((t + 1) / warmup_steps, 1) the fraction of the warmup done after this step
    (so the first step already gets a small nonzero rate and step warmup_steps - 1 the full
    one), the rate is base_lr * w(u) with
    ``"linear"``: w = u; ``"power"``: w = u^power (a power law; some notes call it
    "exponential warmup"); ``"cosine"``: w = 1 - cos(pi u / 2), a quarter cosine that starts
    flat. Multiply by a decay (e.g. ``cosine_annealing_lr``) for warmup-then-anneal.
    """
    fn = "warmup_lr"
    t = _step(t, fn)
    base_lr = validation.number(base_lr, "base_lr", fn, low=0.0)
    warmup_steps = _count(warmup_steps, "warmup_steps", fn)
    if shape not in WARMUP_SHAPES:
        raise ValueError(f"{fn}: shape must be one of {WARMUP_SHAPES}, got {shape!r}")
    power = validation.number(power, "power", fn, low=0.0, low_open=True)
    u = min((t + 1) / warmup_steps, 1.0)
    if shape == "linear":
        w = u
    elif shape == "power":
        w = u**power
    else:
        w = 1.0 - math.cos(math.pi * u / 2)
    return base_lr * min(w, 1.0)


def cosine_warm_restarts_lr(t: int, base_lr: float, T_0: int, T_mult: int = 1,
                            eta_min: float = 0.0) -> float:
    """CosineAnnealingWarmRestarts: cosine periods of T_0, T_0 * T_mult, ... steps.

    Within a period of length T_i, at T_cur steps into it, the rate is
    eta_min + (base_lr - eta_min) (1 + cos(pi T_cur / T_i)) / 2, and it jumps back to
    ``base_lr`` when a period ends.
    """
    fn = "cosine_warm_restarts_lr"
    t = _step(t, fn)
    base_lr = validation.number(base_lr, "base_lr", fn, low=0.0)
    period = _count(T_0, "T_0", fn)
    T_mult = _count(T_mult, "T_mult", fn)
    eta_min = validation.number(eta_min, "eta_min", fn, low=0.0)
    if T_mult == 1:
        t = t % period
    else:  # one iteration per restart: logarithmically many
        while t >= period:
            t -= period
            period *= T_mult
    return _cosine(base_lr, eta_min, t, period)


def one_cycle_lr(t: int, max_lr: float, total_steps: int, pct_start: float = 0.3,
                 div_factor: float = 25.0, final_div_factor: float = 1e4) -> float:
    """OneCycleLR with cosine annealing (two phases), for t in [0, total_steps).

    The rate rises from max_lr / div_factor to max_lr until step pct_start * total_steps - 1,
    then falls to max_lr / (div_factor * final_div_factor) at step total_steps - 1.
    """
    fn = "one_cycle_lr"
    t = _step(t, fn)
    max_lr = validation.number(max_lr, "max_lr", fn, low=0.0)
    total_steps = _count(total_steps, "total_steps", fn)
    if t >= total_steps:
        raise ValueError(f"{fn}: t must be < total_steps = {total_steps}, got {t}")
    if isinstance(pct_start, bool) or not isinstance(pct_start, int | float | np.floating):
        raise ValueError(f"{fn}: pct_start must be a number in [0, 1], got {pct_start!r}")
    if not 0 <= pct_start <= 1:
        raise ValueError(f"{fn}: pct_start must be a number in [0, 1], got {pct_start!r}")
    initial = max_lr / validation.number(div_factor, "div_factor", fn, low=0.0, low_open=True)
    final = initial / validation.number(final_div_factor, "final_div_factor", fn,
                                        low=0.0, low_open=True)
    peak = float(pct_start * total_steps) - 1
    if not 0 < peak < total_steps - 1:
        raise ValueError(f"{fn}: the peak step pct_start * total_steps - 1 = {peak:g} must lie "
                         f"strictly between 0 and total_steps - 1 = {total_steps - 1}")
    if t <= peak:
        return _cos_anneal(initial, max_lr, t / peak)
    return _cos_anneal(max_lr, final, (t - peak) / (total_steps - 1 - peak))


def _cos_anneal(start: float, end: float, pct: float) -> float:
    """Cosine interpolation from ``start`` (pct = 0) to ``end`` (pct = 1), as OneCycleLR's."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
