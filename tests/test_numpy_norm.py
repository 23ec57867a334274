"""helpers.numpy_norm against torch (float64), numerical gradients, bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import numpy_norm as nn
from helpers.gradcheck import numerical_gradient, rel_error

TOL = 1e-9
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def close(a, b, tol=TOL):
    """max |a - b| <= tol * max(1, max |b|): relative for large values, absolute near 0."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.max(np.abs(a - b), initial=0) <= tol * max(1, np.max(np.abs(b)))


def t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


@st.composite
def norm_cases(draw, min_count=2):
    """x (N, C) or (N, C, H, W), a group count dividing C, gamma, beta, dy."""
    four_d = draw(st.booleans())
    n = draw(st.integers(1, 4))
    c = draw(st.sampled_from([1, 2, 3, 4, 6]))
    spatial = (draw(st.integers(1, 4)), draw(st.integers(1, 4))) if four_d else ()
    if n * int(np.prod(spatial)) < min_count:
        n = min_count
    groups = draw(st.sampled_from([g for g in range(1, c + 1) if c % g == 0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    shape = (n, c, *spatial)
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3) + rng.uniform(-2, 2)
    return x, groups, rng.standard_normal(c), rng.standard_normal(c), rng.standard_normal(shape)


# --------------------------------------------------------------------------- batch norm


@FAST
@given(norm_cases())
def test_batch_norm_training_matches_torch_forward_backward_and_running_stats(case):
    x, _, gamma, beta, dy = case
    c = x.shape[1]
    rng = np.random.default_rng(0)
    mean0, var0 = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    rm, rv = mean0.copy(), var0.copy()
    rmt, rvt = t(mean0), t(var0)
    xt, gt, bt = t(x, True), t(gamma, True), t(beta, True)
    yt = F.batch_norm(xt, rmt, rvt, gt, bt, training=True, momentum=0.3, eps=1e-5)
    y = nn.batch_norm(x, gamma, beta, rm, rv, training=True, momentum=0.3, eps=1e-5)
    assert close(y, yt.detach().numpy())
    assert close(rm, rmt.numpy()) and close(rv, rvt.numpy())
    yt.backward(t(dy))
    dx, dgamma, dbeta = nn.batch_norm_backward(dy, x, gamma)
    assert close(dx, xt.grad.numpy())
    assert close(dgamma, gt.grad.numpy())
    assert close(dbeta, bt.grad.numpy())


def test_running_variance_uses_the_unbiased_estimate():
    x = np.random.default_rng(0).standard_normal((4, 2, 3, 3))
    rm, rv = np.zeros(2), np.ones(2)
    nn.batch_norm(x, None, None, rm, rv, training=True, momentum=1.0)
    m = x.shape[0] * 9
    assert np.allclose(rm, x.mean(axis=(0, 2, 3)))
    assert np.allclose(rv, x.var(axis=(0, 2, 3)) * m / (m - 1))
    assert np.allclose(rv, x.transpose(1, 0, 2, 3).reshape(2, -1).var(axis=1, ddof=1))


@FAST
@given(norm_cases(min_count=1))
def test_batch_norm_eval_uses_running_stats_and_leaves_them(case):
    x, _, gamma, beta, _ = case
    c = x.shape[1]
    rm, rv = np.linspace(-1, 1, c), np.linspace(0.5, 2, c)
    before = rm.copy(), rv.copy()
    y = nn.batch_norm(x, gamma, beta, rm, rv, training=False)
    yt = F.batch_norm(t(x), t(rm), t(rv), t(gamma), t(beta), training=False)
    assert close(y, yt.numpy())
    assert np.array_equal(rm, before[0]) and np.array_equal(rv, before[1])


def test_batch_norm_without_affine_and_running_stats_standardizes():
    x = np.random.default_rng(1).standard_normal((8, 3)) * 5 + 2
    y = nn.batch_norm(x, None, None, None, None, training=True)
    assert np.allclose(y.mean(0), 0) and np.allclose(y.var(0), 1, atol=1e-4)


def test_batch_norm_keeps_float32():
    x = np.random.default_rng(2).standard_normal((4, 3, 2, 2)).astype(np.float32)
    g, b = np.ones(3, np.float32), np.zeros(3, np.float32)
    assert nn.batch_norm(x, g, b, None, None, training=True).dtype == np.float32
    assert nn.batch_norm_backward(x, x, g)[0].dtype == np.float32
    assert nn.group_norm(x, 3, g, b).dtype == np.float32
    assert nn.group_norm_backward(x, x, 3, g)[0].dtype == np.float32


def test_batch_norm_backward_matches_numerical_gradient():
    rng = np.random.default_rng(3)
    x, gamma, beta = rng.standard_normal((3, 2, 2, 2)), rng.standard_normal(2), rng.standard_normal(2)
    dy = rng.standard_normal(x.shape)

    def loss():
        return np.sum(nn.batch_norm(x, gamma, beta, None, None, training=True) * dy)

    dx, dgamma, dbeta = nn.batch_norm_backward(dy, x, gamma)
    assert rel_error(dx, numerical_gradient(loss, x)) < 1e-6
    assert rel_error(dgamma, numerical_gradient(loss, gamma)) < 1e-6
    assert rel_error(dbeta, numerical_gradient(loss, beta)) < 1e-6


def test_batch_norm_backward_without_gamma_is_gamma_one():
    rng = np.random.default_rng(4)
    x, dy = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    a = nn.batch_norm_backward(dy, x, None)
    b = nn.batch_norm_backward(dy, x, np.ones(3))
    assert all(np.allclose(u, v) for u, v in zip(a, b, strict=True))


# --------------------------------------------------------------------------- group, layer, instance


@FAST
@given(norm_cases())
def test_group_norm_matches_torch_forward_and_backward(case):
    x, groups, gamma, beta, dy = case
    xt, gt, bt = t(x, True), t(gamma, True), t(beta, True)
    yt = F.group_norm(xt, groups, gt, bt, eps=1e-5)
    y = nn.group_norm(x, groups, gamma, beta)
    assert close(y, yt.detach().numpy())
    yt.backward(t(dy))
    dx, dgamma, dbeta = nn.group_norm_backward(dy, x, groups, gamma)
    assert close(dx, xt.grad.numpy())
    assert close(dgamma, gt.grad.numpy())
    assert close(dbeta, bt.grad.numpy())


def test_group_norm_backward_matches_numerical_gradient():
    rng = np.random.default_rng(5)
    x, gamma, beta = rng.standard_normal((2, 4, 2, 3)), rng.standard_normal(4), rng.standard_normal(4)
    dy = rng.standard_normal(x.shape)

    def loss():
        return np.sum(nn.group_norm(x, 2, gamma, beta) * dy)

    dx, dgamma, dbeta = nn.group_norm_backward(dy, x, 2, gamma)
    assert rel_error(dx, numerical_gradient(loss, x)) < 1e-6
    assert rel_error(dgamma, numerical_gradient(loss, gamma)) < 1e-6
    assert rel_error(dbeta, numerical_gradient(loss, beta)) < 1e-6


@FAST
@given(norm_cases())
def test_layer_norm_is_one_group_and_matches_torch_layer_norm(case):
    x, _, gamma, beta, _ = case
    y = nn.layer_norm(x, gamma, beta)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    ref = F.layer_norm(t(x), x.shape[1:]).numpy() * gamma.reshape(shape) + beta.reshape(shape)
    assert close(y, ref)
    assert close(y, F.group_norm(t(x), 1, t(gamma), t(beta)).numpy())


@FAST
@given(norm_cases(min_count=1))
def test_instance_norm_matches_torch(case):
    x, _, gamma, beta, _ = case
    if x.ndim == 2:
        x = x[:, :, None, None]
    if x.shape[2] * x.shape[3] == 1:  # torch needs more than one pixel per channel
        x = x + np.random.default_rng(0).standard_normal((1, 1, 2, 2))
    y = nn.instance_norm(x, gamma, beta)
    ref = F.instance_norm(t(x), weight=t(gamma), bias=t(beta), eps=1e-5).numpy()
    assert close(y, ref)


def test_no_group_count_gives_batch_norm():
    x = np.random.default_rng(6).standard_normal((4, 4, 3, 3))
    bn = nn.batch_norm(x, None, None, None, None, training=True)
    for groups in (1, 2, 4):
        assert not np.allclose(nn.group_norm(x, groups, None, None), bn, atol=1e-3)
    # every group-norm output is independent of the other examples; batch norm's is not
    other = x.copy()
    other[1:] *= 3
    assert np.allclose(nn.group_norm(x, 2, None, None)[0], nn.group_norm(other, 2, None, None)[0])
    assert not np.allclose(bn[0], nn.batch_norm(other, None, None, None, None, True)[0])


# --------------------------------------------------------------------------- bad input


def test_bad_input_raises_value_error_naming_expected_and_actual():
    x = np.zeros((2, 4, 3, 3))
    ok, rm, rv = np.ones(4), np.zeros(4), np.ones(4)
    cases = [
        (lambda: nn.batch_norm(np.zeros(4), ok, ok, rm, rv, True), "must be \\(N, C\\)"),
        (lambda: nn.batch_norm(np.zeros((2, 4), int), ok, ok, rm, rv, True), "dtype int"),
        (lambda: nn.batch_norm(x, np.ones(3), ok, rm, rv, True), r"gamma must have shape \(4,\)"),
        (lambda: nn.batch_norm(x, ok, np.ones(5), rm, rv, True), r"beta must have shape \(4,\)"),
        (lambda: nn.batch_norm(x, np.ones(4, int), ok, rm, rv, True), "gamma must be a float"),
        (lambda: nn.batch_norm(x, ok, ok, [0.0] * 4, rv, True), "running_mean must be a NumPy"),
        (lambda: nn.batch_norm(x, ok, ok, rm, np.ones(3), True), r"running_var must have shape"),
        (lambda: nn.batch_norm(x, ok, ok, None, rv, False), "running_mean is required"),
        (lambda: nn.batch_norm(x, ok, ok, rm, None, False), "running_var is required"),
        (lambda: nn.batch_norm(x, ok, ok, rm, rv, True, momentum=1.5), "momentum"),
        (lambda: nn.batch_norm(x, ok, ok, rm, rv, True, eps=0), r"eps must be a finite number > 0"),
        (lambda: nn.batch_norm(np.zeros((1, 4)), ok, ok, rm, rv, True), "more than 1 value"),
        (lambda: nn.batch_norm_backward(x, x, np.ones(2)), r"gamma must have shape \(4,\)"),
        (lambda: nn.batch_norm_backward(x[:1], x, ok), "dy must have the shape of x"),
        (lambda: nn.batch_norm_backward(x, x, ok, eps=-1), r"eps must be a finite number > 0"),
        (lambda: nn.group_norm(x, 3, ok, ok), "divide the 4 channels, got 3"),
        (lambda: nn.group_norm(x, 0, ok, ok), "divide the 4 channels, got 0"),
        (lambda: nn.group_norm(x, 2.0, ok, ok), "num_groups must be an int"),
        (lambda: nn.group_norm(x, True, ok, ok), "num_groups must be an int"),
        (lambda: nn.group_norm(x, 2, np.ones(2), ok), r"gamma must have shape \(4,\)"),
        (lambda: nn.group_norm(x, 2, ok, np.ones((4, 1))), r"beta must have shape \(4,\)"),
        (lambda: nn.group_norm(x, 2, ok, ok, eps=0.0), "eps must be a finite number > 0"),
        (lambda: nn.group_norm(np.zeros(3), 1, None, None), "must be \\(N, C\\)"),
        (lambda: nn.group_norm_backward(x, x, 3, ok), "divide the 4 channels"),
        (lambda: nn.group_norm_backward(x[:, :2], x, 2, ok), "dy must have the shape of x"),
        (lambda: nn.group_norm_backward(x, x, 2, np.ones(8)), r"gamma must have shape \(4,\)"),
        (lambda: nn.group_norm_backward(x, x, 2, ok, eps=0), "eps must be a finite number > 0"),
        (lambda: nn.group_norm_backward(x, x.astype(int), 2, ok), "dtype int"),
        (lambda: nn.layer_norm(np.zeros(3), None, None), "must be \\(N, C\\)"),
        (lambda: nn.layer_norm(x, np.ones(2), None), r"gamma must have shape \(4,\)"),
        (lambda: nn.instance_norm(np.zeros((2, 4)), None, None), "must have spatial axes"),
        (lambda: nn.instance_norm(x, None, np.ones(3)), r"beta must have shape \(4,\)"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(ValueError, match="must be an array of shape"):
        nn._check_channel_vector(None, 4, "gamma", "f", optional=False)
