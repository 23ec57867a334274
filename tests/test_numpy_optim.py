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
        (lambda p: optim.SGD(p, lr=-0.1), r"lr must be a finite number >= 0"),
        (lambda p: optim.SGD(p, lr="0.1"), "lr must be a finite number"),
        (lambda p: optim.SGD(p, lr=float("inf")), "lr must be a finite number"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "momentum must be a finite number"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov=True requires momentum > 0"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
         "dampening = 0"),
        (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1.0), "weight_decay must be a finite number"),
        (lambda p: optim.Adagrad(p, eps=-1.0), "eps must be a finite number"),
        (lambda p: optim.RMSprop(p, alpha=-0.1), "alpha must be a finite number"),
        (lambda p: optim.RMSprop(p, momentum=-0.1), "momentum must be a finite number"),
        (lambda p: optim.Adam(p, betas=(1.0, 0.999)), r"betas\[0\] must be a finite number in \[0, 1\)"),
        (lambda p: optim.Adam(p, betas=(0.9, -0.1)), r"betas\[1\] must be a finite number in \[0, 1\)"),
        (lambda p: optim.Adam(p, betas=0.9), r"betas must be a pair"),
        (lambda p: optim.AdamW(p, betas=(0.9, 0.999, 0.9)), r"betas must be a pair"),
        (lambda p: optim.AdamW(p, weight_decay=-0.01), "weight_decay must be a finite number"),
    ],
)
def test_invalid_hyperparameters_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make([np.zeros(3)])


def test_lr_set_between_steps_is_validated():
    opt = optim.SGD([np.zeros(3)], lr=0.1)
    opt.lr = 0.01
    assert opt.lr == 0.01
    with pytest.raises(ValueError, match="lr must be a finite number >= 0, got -1.0"):
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


# --------------------------------------------------------------------------- AdaBelief


def run_adabelief(seed, steps=40, schedule=False, **kwargs):
    """Largest parameter difference between numpy_optim.AdaBelief and pytorch_optimizer's."""
    from pytorch_optimizer import AdaBelief as Reference

    rng = np.random.default_rng(seed)
    ours = [rng.standard_normal(s) for s in SHAPES]
    theirs = [torch.tensor(p.copy(), requires_grad=True) for p in ours]
    opt = optim.AdaBelief(ours, **kwargs)
    # the paper's algorithm: no rectification (RAdam), no AMSGrad bound, decay scaled by lr
    ref = Reference(theirs, rectify=False, weight_decouple=True, fixed_decay=False,
                    ams_bound=False, foreach=False, **kwargs)
    base, worst = opt.lr, 0.0
    for t in range(steps):
        grads = [p + rng.standard_normal(p.shape) for p in ours]
        for tp, g in zip(theirs, grads, strict=True):
            tp.grad = torch.from_numpy(g.copy())
        if schedule:
            opt.lr = ref.param_groups[0]["lr"] = base * (0.5 + 0.5 * np.cos(0.3 * t))
        opt.step(grads)
        ref.step()
        diff = max(np.abs(p - tp.detach().numpy()).max() for p, tp in zip(ours, theirs, strict=True))
        worst = max(worst, diff / max(1.0, max(np.abs(p).max() for p in ours)))
    return worst


# With beta1 = 0 the belief term (g - m)^2 is zero in exact arithmetic, so s is only the eps
# added each step and the update divides by sqrt(eps): rounding differences between two correct
# implementations are then amplified without bound. The comparison starts at beta1 = 0.5.
belief_betas = st.tuples(st.sampled_from([0.5, 0.9, 0.95]), st.sampled_from([0.0, 0.9, 0.99, 0.999]))


@settings(max_examples=25, deadline=None)
@given(betas=belief_betas, eps=st.sampled_from([1e-16, 1e-8, 1e-4]), **common)
def test_adabelief_matches_pytorch_optimizer(lr, betas, eps, weight_decay, schedule, seed):
    err = run_adabelief(seed, schedule=schedule, lr=lr * 0.1, betas=betas, eps=eps,
                        weight_decay=weight_decay)
    assert err < ADAPTIVE_TOL


def test_adabelief_defaults_and_first_step():
    p = np.array([1.0, -2.0])
    opt = optim.AdaBelief([p])
    assert (opt.lr, opt.betas, opt.eps, opt.weight_decay) == (1e-3, (0.9, 0.999), 1e-16, 0.0)
    assert run_adabelief(0) < TOL * 1e3
    # step 1 by hand: m = 0.1 g, s = 0.001 (g - m)^2 + eps, m_hat = g, s_hat = 0.81 g^2 + 1000 eps
    q, g = np.array([0.5]), np.array([2.0])
    optim.AdaBelief([q], lr=0.1, eps=1e-8).step([g])
    s_hat = (0.001 * (0.9 * 2.0) ** 2 + 1e-8) / 0.001
    assert q[0] == pytest.approx(0.5 - 0.1 * 2.0 / (np.sqrt(s_hat) + 1e-8), rel=1e-14)


def test_adabelief_steps_further_than_adam_on_a_steady_gradient():
    """A constant gradient has no deviation from its mean: s stays tiny, the step grows."""
    a, b = np.zeros(1), np.zeros(1)
    adam, belief = optim.Adam([a], lr=0.01), optim.AdaBelief([b], lr=0.01, eps=1e-12)
    for _ in range(20):
        adam.step([np.ones(1)])
        belief.step([np.ones(1)])
    assert abs(b[0]) > 1.5 * abs(a[0])


def test_adabelief_weight_decay_is_decoupled():
    p = np.array([1.0])
    optim.AdaBelief([p], lr=0.1, weight_decay=0.5).step([np.zeros(1)])
    assert p[0] == pytest.approx(1 - 0.1 * 0.5)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: optim.AdaBelief(p, lr=-1e-3), r"AdaBelief: lr must be a finite number >= 0, got -0.001"),
        (lambda p: optim.AdaBelief(p, betas=(0.9, 1.0)), r"AdaBelief: betas\[1\] must be a finite number in \[0, 1\), got 1.0"),
        (lambda p: optim.AdaBelief(p, betas=(0.9,)), r"AdaBelief: betas must be a pair"),
        (lambda p: optim.AdaBelief(p, eps=-1e-16), r"AdaBelief: eps must be a finite number >= 0"),
        (lambda p: optim.AdaBelief(p, weight_decay="0.1"), r"AdaBelief: weight_decay must be a finite number >= 0"),
        (lambda p: optim.AdaBelief(np.zeros(3)), r"AdaBelief: params must be a list of NumPy arrays, got ndarray"),
    ],
)
def test_adabelief_rejects_bad_input(make, message):
    with pytest.raises(ValueError, match=message):
        make([np.zeros(3)])


def test_adabelief_rejects_mismatched_grads():
    opt = optim.AdaBelief([np.zeros((2, 2))])
    with pytest.raises(ValueError, match=r"grads\[0\] has shape \(3,\) but params\[0\] has shape \(2, 2\)"):
        opt.step([np.zeros(3)])


# --------------------------------------------------------------------------- clipping


def test_clip_grad_value_matches_torch():
    rng = np.random.default_rng(1)
    grads = [3 * rng.standard_normal(s) for s in SHAPES]
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(tensors, grads, strict=True):
        t.grad = torch.from_numpy(g.copy())
    torch.nn.utils.clip_grad_value_(tensors, 0.7)
    ours = optim.clip_grad_value(grads, 0.7)
    for o, t, g in zip(ours, tensors, grads, strict=True):
        np.testing.assert_array_equal(o, t.grad.numpy())
        assert o is not g and np.abs(o).max() <= 0.7
    assert np.abs(grads[0]).max() > 0.7  # the inputs are left alone


@pytest.mark.parametrize("max_norm", [0.01, 1.0, 100.0])
def test_clip_grad_norm_matches_torch(max_norm):
    rng = np.random.default_rng(2)
    grads = [rng.standard_normal(s) for s in SHAPES]
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(tensors, grads, strict=True):
        t.grad = torch.from_numpy(g.copy())
    total = torch.nn.utils.clip_grad_norm_(tensors, max_norm).item()
    ours, norm = optim.clip_grad_norm(grads, max_norm)
    assert norm == pytest.approx(total, rel=1e-12)
    for o, t in zip(ours, tensors, strict=True):
        np.testing.assert_allclose(o, t.grad.numpy(), rtol=1e-5)  # torch adds 1e-6 to the norm
    joint = np.sqrt(sum(np.sum(o * o) for o in ours))
    assert joint <= max_norm * (1 + 1e-12) or np.isclose(joint, norm)


def agc_reference(params, grads, clip_factor, eps):
    """A loop over units, written independently of the vectorized helper."""
    out = []
    for p, g in zip(params, grads, strict=True):
        if p.ndim <= 1:
            units = [(slice(None),)]
        else:
            units = [(k,) for k in range(p.shape[0])]
        clipped = g.copy()
        for u in units:
            bound = clip_factor * max(np.linalg.norm(p[u].ravel()), eps)
            gn = np.linalg.norm(g[u].ravel())
            if gn > bound:
                clipped[u] = g[u] * bound / gn
        out.append(clipped)
    return out


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), clip_factor=st.sampled_from([0.01, 0.1, 1.0]),
       grad_scale=st.sampled_from([0.01, 1.0, 100.0]))
def test_adaptive_clip_grad_matches_a_loop_over_units(seed, clip_factor, grad_scale):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s) for s in [(4, 3, 3, 3), (4,), (10, 6)]]
    params[1][:] = 0.0  # a zero bias: the bound uses eps
    grads = [grad_scale * rng.standard_normal(p.shape) for p in params]
    ours = optim.adaptive_clip_grad(params, grads, clip_factor, eps=1e-3)
    for o, r in zip(ours, agc_reference(params, grads, clip_factor, 1e-3), strict=True):
        np.testing.assert_allclose(o, r, rtol=1e-12, atol=1e-300)
    w, g = params[0][0], ours[0][0]
    assert np.linalg.norm(g) <= clip_factor * np.linalg.norm(w) * (1 + 1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: optim.clip_grad_value([np.ones(2)], -1.0), r"clip_grad_value: clip_value must be a finite number >= 0, got -1.0"),
        (lambda: optim.clip_grad_value(np.ones(2), 1.0), r"clip_grad_value: grads must be a non-empty list of arrays, got ndarray"),
        (lambda: optim.clip_grad_norm([], 1.0), r"clip_grad_norm: grads must be a non-empty list"),
        (lambda: optim.clip_grad_norm([np.ones(2)], float("nan")), r"clip_grad_norm: max_norm must be a finite number"),
        (lambda: optim.adaptive_clip_grad([np.ones(2)], [np.ones(3)]), r"grads\[0\] has shape \(3,\) but params\[0\] has shape \(2,\)"),
        (lambda: optim.adaptive_clip_grad([np.ones(2)], [np.ones(2), np.ones(2)]), r"got 2 gradients for 1 parameters"),
        (lambda: optim.adaptive_clip_grad([np.ones(2)], [np.ones(2)], clip_factor=-0.1), r"clip_factor must be a finite number >= 0, got -0.1"),
    ],
)
def test_clipping_rejects_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------- averaging


@pytest.mark.parametrize("beta", [None, 0.9])
def test_iterate_average_matches_swa_utils(beta):
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    rng = np.random.default_rng(3)
    params = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    module = torch.nn.ParameterList([torch.nn.Parameter(torch.tensor(p.copy())) for p in params])
    kwargs = {} if beta is None else {"multi_avg_fn": get_ema_multi_avg_fn(beta)}
    ref = AveragedModel(module, **kwargs)
    avg = optim.IterateAverage(params, beta=beta)
    for _ in range(25):
        for p, t in zip(params, module, strict=True):
            p += rng.standard_normal(p.shape)  # in place, as an optimizer step
            t.data.copy_(torch.from_numpy(p))
        avg.update()
        ref.update_parameters(module)
    assert avg.count == 25
    for a, t in zip(avg.average, ref.module, strict=True):
        np.testing.assert_allclose(a, t.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_iterate_average_is_the_mean_of_the_iterates():
    p = np.zeros(2)
    avg = optim.IterateAverage([p])
    seen = []
    for k in range(1, 8):
        p[:] = [k, k * k]
        seen.append(p.copy())
        avg.update()
    np.testing.assert_allclose(avg.average[0], np.mean(seen, axis=0), rtol=1e-14)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: optim.IterateAverage([np.zeros(2)], beta=1.0), r"IterateAverage: beta must be a finite number in \[0, 1\), got 1.0"),
        (lambda: optim.IterateAverage(np.zeros(2)), r"IterateAverage: params must be a non-empty list of arrays, got ndarray"),
        (lambda: optim.IterateAverage([np.zeros(2, dtype=int)]), r"IterateAverage: params\[0\] must be a float NumPy array"),
    ],
)
def test_iterate_average_rejects_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
