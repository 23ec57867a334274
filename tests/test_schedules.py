"""helpers.schedules equals torch.optim.lr_scheduler at every step, and rejects bad input."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import numpy_optim, schedules
from helpers.schedules import (
    cosine_annealing_lr,
    cosine_warm_restarts_lr,
    exponential_lr,
    linear_warmup_lr,
    one_cycle_lr,
    polynomial_lr,
    step_lr,
)

lrs = st.floats(1e-4, 10.0)


def torch_lrs(make_scheduler, base_lr, steps):
    """The learning rate a torch scheduler gives before each of ``steps`` optimizer steps."""
    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([param], lr=base_lr)
    sched = make_scheduler(opt)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return np.array(out)


def assert_same(ours_fn, theirs, base_lr):
    ours = np.array([ours_fn(t) for t in range(len(theirs))])
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12 * base_lr)


@settings(max_examples=25, deadline=None)
@given(base=lrs, step_size=st.integers(1, 10), gamma=st.floats(0.05, 1.0))
def test_step_lr(base, step_size, gamma):
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, gamma), base, 60)
    assert_same(lambda t: step_lr(t, base, step_size, gamma), theirs, base)


@settings(max_examples=25, deadline=None)
@given(base=lrs, gamma=st.floats(0.8, 1.0))
def test_exponential_lr(base, gamma):
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma), base, 80)
    assert_same(lambda t: exponential_lr(t, base, gamma), theirs, base)


@settings(max_examples=25, deadline=None)
@given(base=lrs, total=st.integers(1, 50), power=st.floats(0.25, 3.0))
def test_polynomial_lr(base, total, power):
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total, power), base,
                       total + 10)
    assert_same(lambda t: polynomial_lr(t, base, total, power), theirs, base)


@settings(max_examples=25, deadline=None)
@given(base=lrs, t_max=st.integers(1, 60), eta_frac=st.floats(0.0, 0.5))
def test_cosine_annealing_lr_within_and_past_its_first_period(base, t_max, eta_frac):
    eta_min = eta_frac * base
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, t_max, eta_min),
                       base, 2 * t_max + 3)
    ours = np.array([cosine_annealing_lr(t, base, t_max, eta_min) for t in range(len(theirs))])
    np.testing.assert_allclose(ours[: t_max + 1], theirs[: t_max + 1], rtol=1e-9, atol=1e-12 * base)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9 * base)


@settings(max_examples=25, deadline=None)
@given(base=lrs, warmup=st.integers(1, 30), start=st.floats(0.01, 1.0))
def test_linear_warmup_lr(base, warmup, start):
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.LinearLR(o, start, 1.0, warmup), base,
                       warmup + 10)
    assert_same(lambda t: linear_warmup_lr(t, base, warmup, start), theirs, base)


@settings(max_examples=25, deadline=None)
@given(base=lrs, t0=st.integers(1, 12), t_mult=st.integers(1, 3), eta_frac=st.floats(0.0, 0.5))
def test_cosine_warm_restarts_lr(base, t0, t_mult, eta_frac):
    eta_min = eta_frac * base
    theirs = torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, t0, t_mult, eta_min),
        base, 150)
    assert_same(lambda t: cosine_warm_restarts_lr(t, base, t0, t_mult, eta_min), theirs, base)


@settings(max_examples=25, deadline=None)
@given(max_lr=lrs, total=st.integers(10, 300), pct=st.floats(0.05, 0.9),
       div=st.floats(1.0, 100.0), final_div=st.floats(1.0, 1e5))
def test_one_cycle_lr(max_lr, total, pct, div, final_div):
    if not 0 < pct * total - 1 < total - 1:
        return
    theirs = torch_lrs(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr, total_steps=total, pct_start=pct, div_factor=div,
            final_div_factor=final_div, cycle_momentum=False),
        max_lr, total)
    assert_same(lambda t: one_cycle_lr(t, max_lr, total, pct, div, final_div), theirs, max_lr)


def test_one_cycle_lr_defaults_start_peak_and_end():
    assert one_cycle_lr(0, 1.0, 100) == pytest.approx(1 / 25)
    assert one_cycle_lr(29, 1.0, 100) == pytest.approx(1.0)
    assert one_cycle_lr(99, 1.0, 100) == pytest.approx(1 / 25 / 1e4)


def test_schedules_have_one_home():
    for name in schedules.__all__:
        assert not hasattr(numpy_optim, name), f"numpy_optim.{name} is an alias"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: step_lr(-1, 0.1, 5), "t must be an int >= 0"),
        (lambda: step_lr(1.5, 0.1, 5), "t must be an int >= 0"),
        (lambda: step_lr(True, 0.1, 5), "t must be an int >= 0"),
        (lambda: step_lr(0, -0.1, 5), "base_lr must be a finite number >= 0"),
        (lambda: step_lr(0, "0.1", 5), "base_lr must be a finite number"),
        (lambda: step_lr(0, 0.1, 0), "step_size must be an int >= 1"),
        (lambda: step_lr(0, 0.1, 2, gamma=-0.5), "gamma must be a finite number >= 0"),
        (lambda: exponential_lr(0, 0.1, float("nan")), "gamma must be a finite number"),
        (lambda: polynomial_lr(0, 0.1, 0), "total_iters must be an int >= 1"),
        (lambda: polynomial_lr(0, 0.1, 5, power=-1.0), "power must be a finite number >= 0"),
        (lambda: cosine_annealing_lr(0, 0.1, 0), "T_max must be an int >= 1"),
        (lambda: cosine_annealing_lr(0, 0.1, 5, eta_min=-1.0), "eta_min must be a finite number >= 0"),
        (lambda: linear_warmup_lr(0, 0.1, 0, 0.1), "warmup_steps must be an int >= 1"),
        (lambda: linear_warmup_lr(0, 0.1, 5, 0.0), "start_factor must be a finite number > 0"),
        (lambda: linear_warmup_lr(0, 0.1, 5, 1.5), r"start_factor must be in \(0, 1\]"),
        (lambda: cosine_warm_restarts_lr(0, 0.1, 0), "T_0 must be an int >= 1"),
        (lambda: cosine_warm_restarts_lr(0, 0.1, 5, T_mult=0), "T_mult must be an int >= 1"),
        (lambda: cosine_warm_restarts_lr(0, 0.1, 5, 1, eta_min=-0.1), "eta_min must be a finite number"),
        (lambda: one_cycle_lr(100, 0.1, 100), "t must be < total_steps = 100"),
        (lambda: one_cycle_lr(0, 0.1, 0), "total_steps must be an int >= 1"),
        (lambda: one_cycle_lr(0, 0.1, 100, pct_start=1.5), r"pct_start must be a number in \[0, 1\]"),
        (lambda: one_cycle_lr(0, 0.1, 100, pct_start="a"), r"pct_start must be a number in \[0, 1\]"),
        (lambda: one_cycle_lr(0, 0.1, 100, pct_start=0.01), "peak step"),
        (lambda: one_cycle_lr(0, 0.1, 100, div_factor=0.0), "div_factor must be a finite number > 0"),
        (lambda: one_cycle_lr(0, 0.1, 100, final_div_factor=-1.0), "final_div_factor must be"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("shape", schedules.WARMUP_SHAPES)
def test_warmup_lr_shapes(shape):
    W, base = 8, 0.4
    ours = np.array([schedules.warmup_lr(t, base, W, shape, power=3.0) for t in range(12)])
    u = np.minimum((np.arange(12) + 1) / W, 1.0)
    want = {"linear": u, "power": u**3, "cosine": 1 - np.cos(np.pi * u / 2)}[shape]
    np.testing.assert_allclose(ours, base * want, rtol=1e-12)
    assert ours[0] > 0 and np.all(np.diff(ours) >= 0) and np.allclose(ours[W - 1 :], base)


def test_linear_warmup_lr_shape_equals_torch_linear_lr_from_1_over_w():
    W, base = 10, 0.1
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.LinearLR(o, 1 / W, 1.0, W - 1), base, 20)
    assert_same(lambda t: schedules.warmup_lr(t, base, W, "linear"), theirs, base)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(t=-1, base_lr=0.1, warmup_steps=5), r"warmup_lr: t must be an int >= 0"),
        (dict(t=0, base_lr=0.1, warmup_steps=0), r"warmup_lr: warmup_steps must be an int >= 1, got 0"),
        (dict(t=0, base_lr=0.1, warmup_steps=5, shape="exponential"), r"shape must be one of \('linear', 'power', 'cosine'\), got 'exponential'"),
        (dict(t=0, base_lr=0.1, warmup_steps=5, shape="power", power=0.0), r"warmup_lr: power must be a finite number > 0, got 0.0"),
        (dict(t=0, base_lr=-0.1, warmup_steps=5), r"warmup_lr: base_lr must be a finite number >= 0"),
    ],
)
def test_warmup_lr_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        schedules.warmup_lr(**kwargs)
