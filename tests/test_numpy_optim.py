"""helpers.numpy_optim matches torch.optim step for step in float64, and rejects bad input."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import numpy_optim as optim

STEPS = 60
SHAPES = [(3, 4), (5,), (2, 1, 3, 3)]


def run_both(ours_cls, torch_cls, seed=0, schedule=False, **kwargs):
    """Run both optimizers on the same gradients; return the largest parameter difference.

    The gradient of 0.5 * ||p||^2 plus noise keeps the parameters bounded; with ``schedule``
    the learning rate changes every step (set on both), as a scheduler would set it.
    """
    rng = np.random.default_rng(seed)
    ours = [rng.standard_normal(s) for s in SHAPES]
    theirs = [torch.tensor(p.copy(), requires_grad=True) for p in ours]
    opt = ours_cls(ours, **kwargs)
    topt = torch_cls(theirs, **kwargs)
    base = opt.lr
    worst = 0.0
    for t in range(STEPS):
        grads = [p + rng.standard_normal(p.shape) for p in ours]
        for tp, g in zip(theirs, grads, strict=True):
            tp.grad = torch.from_numpy(g.copy())
        if schedule:
            opt.lr = topt.param_groups[0]["lr"] = base * (0.5 + 0.5 * np.cos(0.3 * t))
        opt.step(grads)
        topt.step()
        scale = max(1.0, max(np.abs(p).max() for p in ours))
        diff = max(np.abs(p - tp.detach().numpy()).max() for p, tp in zip(ours, theirs, strict=True))
        worst = max(worst, diff / scale)
    assert opt.t == STEPS
    return worst


TOL = 1e-12
# Adam divides by sqrt(v) + eps. With beta2 = 0, sqrt(v) = |g|, and where a gradient entry is
# tiny the quotient amplifies the last-bit differences between two correct implementations
# (hypothesis found 5e-11 on such a case), so the adaptive methods get a float64 tolerance
# that is still a million times below any real disagreement.
ADAPTIVE_TOL = 1e-9
common = dict(
    lr=st.floats(1e-4, 0.5),
    weight_decay=st.sampled_from([0.0, 1e-4, 0.1]),
    schedule=st.booleans(),
    seed=st.integers(0, 2**16),
)


@settings(max_examples=30, deadline=None)
@given(momentum=st.sampled_from([0.0, 0.5, 0.9, 0.99]), dampening=st.sampled_from([0.0, 0.1]),
       nesterov=st.booleans(), **common)
def test_sgd_matches_torch(lr, momentum, dampening, nesterov, weight_decay, schedule, seed):
    if nesterov and (momentum == 0 or dampening != 0):
        return
    err = run_both(optim.SGD, torch.optim.SGD, seed, schedule, lr=lr, momentum=momentum,
                   dampening=dampening, nesterov=nesterov, weight_decay=weight_decay)
    assert err < TOL


@settings(max_examples=30, deadline=None)
@given(eps=st.sampled_from([1e-10, 1e-6, 0.1]), **common)
def test_adagrad_matches_torch(lr, eps, weight_decay, schedule, seed):
    err = run_both(optim.Adagrad, torch.optim.Adagrad, seed, schedule, lr=lr, eps=eps,
                   weight_decay=weight_decay)
    assert err < TOL


@settings(max_examples=30, deadline=None)
@given(alpha=st.floats(0.5, 0.999), eps=st.sampled_from([1e-8, 1e-3]),
       momentum=st.sampled_from([0.0, 0.5, 0.9]), **common)
def test_rmsprop_matches_torch(lr, alpha, eps, momentum, weight_decay, schedule, seed):
    err = run_both(optim.RMSprop, torch.optim.RMSprop, seed, schedule, lr=lr * 0.1, alpha=alpha,
                   eps=eps, momentum=momentum, weight_decay=weight_decay)
    assert err < TOL


betas = st.tuples(st.sampled_from([0.0, 0.5, 0.9, 0.95]), st.sampled_from([0.0, 0.9, 0.99, 0.999]))


@settings(max_examples=30, deadline=None)
@given(betas=betas, eps=st.sampled_from([1e-8, 1e-4]), **common)
def test_adam_matches_torch(lr, betas, eps, weight_decay, schedule, seed):
    err = run_both(optim.Adam, torch.optim.Adam, seed, schedule, lr=lr * 0.1, betas=betas,
                   eps=eps, weight_decay=weight_decay)
    assert err < ADAPTIVE_TOL


@settings(max_examples=30, deadline=None)
@given(betas=betas, eps=st.sampled_from([1e-8, 1e-4]), **common)
def test_adamw_matches_torch(lr, betas, eps, weight_decay, schedule, seed):
    err = run_both(optim.AdamW, torch.optim.AdamW, seed, schedule, lr=lr * 0.1, betas=betas,
                   eps=eps, weight_decay=weight_decay)
    assert err < ADAPTIVE_TOL


@pytest.mark.parametrize(("ours", "theirs"), [
    (optim.SGD, torch.optim.SGD), (optim.Adagrad, torch.optim.Adagrad),
    (optim.RMSprop, torch.optim.RMSprop), (optim.Adam, torch.optim.Adam),
    (optim.AdamW, torch.optim.AdamW),
])
def test_defaults_match_torch(ours, theirs):
    p = np.zeros(2)
    opt, topt = ours([p]), theirs([torch.zeros(2)])
    group = topt.param_groups[0]
    assert opt.lr == group["lr"]
    for name in ("momentum", "dampening", "nesterov", "weight_decay", "eps", "alpha", "betas"):
        if hasattr(opt, name):
            assert getattr(opt, name) == group[name], name
    assert run_both(ours, theirs) < TOL


def test_adamw_decays_weights_without_gradient_and_adam_l2_does_not_scale_with_lambda():
    """With a zero loss gradient, AdamW shrinks p geometrically; Adam + L2 steps by about lr."""
    for wd in (0.01, 1.0):
        p = np.array([1.0])
        opt = optim.AdamW([p], lr=0.1, weight_decay=wd)
        opt.step([np.zeros(1)])
        assert p[0] == pytest.approx(1 - 0.1 * wd)
        q = np.array([1.0])
        optim.Adam([q], lr=0.1, weight_decay=wd).step([np.zeros(1)])
        assert q[0] == pytest.approx(0.9, rel=1e-6)


def test_float32_params_stay_float32_and_are_updated_in_place():
    p = np.ones((2, 2), np.float32)
    view = p
    optim.Adam([p], lr=0.1).step([np.ones((2, 2))])
    assert p.dtype == np.float32 and view is p and np.all(p < 1)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: optim.SGD(p, lr=-0.1), r"lr must be finite and in >= 0"),
        (lambda p: optim.SGD(p, lr="0.1"), "lr must be a number"),
        (lambda p: optim.SGD(p, lr=float("inf")), "lr must be finite"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "momentum must be finite"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov=True requires momentum > 0"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
         "dampening = 0"),
        (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1.0), "weight_decay must be finite"),
        (lambda p: optim.Adagrad(p, eps=-1.0), "eps must be finite"),
        (lambda p: optim.RMSprop(p, alpha=-0.1), "alpha must be finite"),
        (lambda p: optim.RMSprop(p, momentum=-0.1), "momentum must be finite"),
        (lambda p: optim.Adam(p, betas=(1.0, 0.999)), r"betas\[0\] must be finite and in \[0, 1\)"),
        (lambda p: optim.Adam(p, betas=(0.9, -0.1)), r"betas\[1\] must be finite and in \[0, 1\)"),
        (lambda p: optim.Adam(p, betas=0.9), r"betas must be a pair"),
        (lambda p: optim.AdamW(p, betas=(0.9, 0.999, 0.9)), r"betas must be a pair"),
        (lambda p: optim.AdamW(p, weight_decay=-0.01), "weight_decay must be finite"),
    ],
)
def test_invalid_hyperparameters_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make([np.zeros(3)])


def test_lr_set_between_steps_is_validated():
    opt = optim.SGD([np.zeros(3)], lr=0.1)
    opt.lr = 0.01
    assert opt.lr == 0.01
    with pytest.raises(ValueError, match="lr must be finite and in >= 0, got -1.0"):
        opt.lr = -1.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (np.zeros(3), "params must be a list of NumPy arrays, got ndarray"),
        ([], "params is empty"),
        ([np.zeros(3, dtype=int)], r"params\[0\] must be a float NumPy array .* got int64"),
        ([[0.0, 1.0]], r"params\[0\] must be a float NumPy array .* got list"),
        ("abc", "params must be a list of NumPy arrays, got str"),
    ],
)
def test_bad_params_raise(params, message):
    with pytest.raises(ValueError, match=message):
        optim.Adam(params)


def test_read_only_params_raise():
    p = np.zeros(3)
    p.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[0\] is read-only"):
        optim.SGD([p], lr=0.1)


@pytest.mark.parametrize(
    ("grads", "message"),
    [
        ([np.zeros(3)], "got 1 gradients for 2 parameters"),
        ([np.zeros(3), np.zeros((2, 3))], r"grads\[1\] has shape \(2, 3\) but params\[1\] has shape \(2, 2\)"),
        (np.zeros(3), "grads must be a list of arrays, got ndarray"),
    ],
)
def test_grads_that_do_not_match_params_raise(grads, message):
    params = [np.zeros(3), np.zeros((2, 2))]
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=message):
        opt.step(grads)
    assert opt.t == 0 and np.all(params[0] == 0)
