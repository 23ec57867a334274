"""The chapter 2 and 3 exercise checks pass a correct answer, fail a stub and a wrong answer."""

import math

import numpy as np
import pytest
import torch
from conftest import stub

from helpers import checks, init, numpy_optim


def run(check, good, wrong, match="Hint", capsys=None):
    check(good)
    if capsys is not None:
        assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        check(stub)
    with pytest.raises(AssertionError, match=match):
        check(wrong)


def fan_in_fan_out(shape):
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def xavier_uniform(shape, rng, gain=1.0):
    fan_in, fan_out = fan_in_fan_out(shape)
    bound = gain * math.sqrt(6 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, shape)


def _in_notebook(source: str, **names):
    """The function ``answer`` defined by ``source`` in a fresh namespace holding ``names``,
    as a notebook cell defines it in the kernel's globals."""
    namespace = {"np": np, "math": math, "torch": torch, "init": init, **names}
    exec(source, namespace)
    return namespace["answer"]


def test_check_fan_in_fan_out(capsys):
    def no_kernel(shape):
        return shape[1], shape[0]

    run(checks.check_fan_in_fan_out, fan_in_fan_out, no_kernel, "expected", capsys)


@pytest.mark.parametrize("source", [
    "def answer(shape):\n    return init.fan_in_fan_out(shape)",
    "from helpers.init import fan_in_fan_out as f\ndef answer(shape):\n    return f(shape)",
    "def answer(shape):\n"
    "    return torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))",
])  # fmt: skip
def test_check_fan_in_fan_out_refuses_the_helpers_and_restores_them(source):
    originals = (init.fan_in_fan_out, torch.nn.init._calculate_fan_in_and_fan_out)
    with pytest.raises(AssertionError, match="write it yourself"):
        checks.check_fan_in_fan_out(_in_notebook(source))
    assert (init.fan_in_fan_out, torch.nn.init._calculate_fan_in_and_fan_out) == originals
    assert init.fan_in_fan_out((4, 2, 3, 3)) == (18, 36)


def test_check_xavier_uniform(capsys):
    def without_root(shape, rng, gain=1.0):  # seed 004's misprint
        fan_in, fan_out = fan_in_fan_out(shape)
        bound = gain * 6 / (fan_in + fan_out)
        return rng.uniform(-bound, bound, shape)

    def normal(shape, rng, gain=1.0):
        fan_in, fan_out = fan_in_fan_out(shape)
        return rng.normal(0.0, gain * math.sqrt(2 / (fan_in + fan_out)), shape)

    run(checks.check_xavier_uniform, xavier_uniform, without_root, "standard deviation", capsys)
    with pytest.raises(AssertionError, match="Hint"):
        checks.check_xavier_uniform(normal)


@pytest.mark.parametrize("source", [
    "def answer(shape, rng, gain=1.0):\n    return init.xavier_uniform(shape, rng, gain)",
    "from helpers.init import xavier_uniform\n"
    "def answer(shape, rng, gain=1.0):\n    return xavier_uniform(shape, rng, gain)",
    "def answer(shape, rng, gain=1.0):\n"
    "    return torch.nn.init.xavier_uniform_(torch.empty(shape), gain).numpy()",
    "def answer(shape, rng, gain=1.0):\n"
    "    a, b = init.fan_in_fan_out(shape)\n"
    "    bound = gain * math.sqrt(6 / (a + b))\n"
    "    return rng.uniform(-bound, bound, shape)",
])  # fmt: skip
def test_check_xavier_uniform_refuses_the_helpers_and_restores_them(source):
    originals = (init.xavier_uniform, init.fan_in_fan_out, torch.nn.init.xavier_uniform_)
    with pytest.raises(AssertionError, match="write it yourself"):
        checks.check_xavier_uniform(_in_notebook(source))
    assert (init.xavier_uniform, init.fan_in_fan_out, torch.nn.init.xavier_uniform_) == originals
    assert init.xavier_uniform((3, 4), np.random.default_rng(0)).shape == (3, 4)
    checks.check_xavier_uniform(
        _in_notebook(  # the reader's own fan function is welcome
            "def answer(shape, rng, gain=1.0):\n"
            "    a, b = my_fans(shape)\n"
            "    bound = gain * math.sqrt(6 / (a + b))\n"
            "    return rng.uniform(-bound, bound, shape)",
            my_fans=fan_in_fan_out,
        )
    )


def forward_stds(x, weights, activation):
    act = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh}[activation]
    h, out = x, []
    for w in weights:
        h = act(h @ w.T)
        out.append(h.std())
    return out


def test_check_forward_stds(capsys):
    def pre_activation_stds(x, weights, activation):
        act = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh}[activation]
        h, out = x, []
        for w in weights:
            z = h @ w.T
            out.append(z.std())
            h = act(z)
        return out

    run(checks.check_forward_stds, forward_stds, pre_activation_stds, "relative error", capsys)


def adam_step(p, g, m, v, t, lr, betas, eps):
    b1, b2 = betas
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p, m, v


def test_check_adam_step(capsys):
    def no_bias_correction(p, g, m, v, t, lr, betas, eps):
        b1, b2 = betas
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        return p - lr * m / (np.sqrt(v) + eps), m, v

    def rate_in_the_correction(p, g, m, v, t, lr, betas, eps):  # corrects with lr, not t
        b1, b2 = betas
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        return (
            p - lr * (m / (1 - b1 ** (lr * 100))) / (np.sqrt(v / (1 - b2 ** (lr * 100))) + eps),
            m,
            v,
        )

    run(checks.check_adam_step, adam_step, no_bias_correction, "step 1", capsys)
    with pytest.raises(AssertionError, match="Hint"):
        checks.check_adam_step(rate_in_the_correction)


class ShortcutAdam:
    """An answer that hands the work to helpers.numpy_optim.Adam (keeps one per call)."""

    def __call__(self, p, g, m, v, t, lr, betas, eps):
        p = p.copy()
        opt = numpy_optim.Adam([p], lr=lr, betas=betas, eps=eps)
        opt.step([g])
        return p, m, v


def test_check_adam_step_refuses_the_helper_and_restores_it():
    original = (numpy_optim.Adam, numpy_optim.AdamW, numpy_optim.AdaBelief)
    with pytest.raises(
        AssertionError, match="write it yourself; do not call helpers.numpy_optim.Adam"
    ):
        checks.check_adam_step(ShortcutAdam())
    assert (numpy_optim.Adam, numpy_optim.AdamW, numpy_optim.AdaBelief) == original
    with pytest.raises(NotImplementedError):
        checks.check_adam_step(stub)
    assert numpy_optim.Adam is original[0]


def test_check_clip_grad_norm_refuses_the_helper():
    def shortcut(grads, max_norm):
        return numpy_optim.clip_grad_norm(grads, max_norm)[0]

    original = numpy_optim.clip_grad_norm
    with pytest.raises(AssertionError, match="write it yourself"):
        checks.check_clip_grad_norm(shortcut)
    assert numpy_optim.clip_grad_norm is original


def clip_grad_norm(grads, max_norm):
    norm = math.sqrt(sum(float((g**2).sum()) for g in grads))
    scale = min(1.0, max_norm / norm)
    return [g * scale for g in grads]


def test_check_clip_grad_norm(capsys):
    def per_array(grads, max_norm):
        return [g * min(1.0, max_norm / np.linalg.norm(g)) for g in grads]

    def always_rescale(grads, max_norm):
        norm = math.sqrt(sum(float((g**2).sum()) for g in grads))
        return [g * max_norm / norm for g in grads]

    run(checks.check_clip_grad_norm, clip_grad_norm, per_array, "relative error", capsys)
    with pytest.raises(AssertionError, match="max_norm=100"):
        checks.check_clip_grad_norm(always_rescale)


def triangular_lr(t, base_lr, max_lr, step_size):
    cycle = math.floor(1 + t / (2 * step_size))
    x = abs(t / step_size - 2 * cycle + 1)
    return base_lr + (max_lr - base_lr) * max(0.0, 1 - x)


def test_check_triangular_lr(capsys):
    def sawtooth(t, base_lr, max_lr, step_size):
        return base_lr + (max_lr - base_lr) * (t % (2 * step_size)) / (2 * step_size)

    run(checks.check_triangular_lr, triangular_lr, sawtooth, "relative error", capsys)


def test_check_triangular_lr_refuses_cyclic_lr_and_restores_it():
    def shortcut(t, base_lr, max_lr, step_size):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
        sched = torch.optim.lr_scheduler.CyclicLR(
            opt, base_lr, max_lr, step_size_up=step_size, cycle_momentum=False
        )
        for _ in range(t):
            opt.step()
            sched.step()
        return opt.param_groups[0]["lr"]

    original = torch.optim.lr_scheduler.CyclicLR
    with pytest.raises(AssertionError, match="write it yourself; do not call torch.optim"):
        checks.check_triangular_lr(shortcut)
    assert torch.optim.lr_scheduler.CyclicLR is original


def velocity_step(p, g, d, lr, prev_lr, mu):
    d = mu * (lr / prev_lr) * d + lr * g
    return p - d, d


def test_check_velocity_momentum_step(capsys):
    def no_rescale(p, g, d, lr, prev_lr, mu):  # the notes form as printed in §2
        d = mu * d + lr * g
        return p - d, d

    def wrong_sign(p, g, d, lr, prev_lr, mu):  # the velocity added instead of subtracted
        d = mu * (lr / prev_lr) * d + lr * g
        return p + d, d

    def inverted_ratio(p, g, d, lr, prev_lr, mu):
        d = mu * (prev_lr / lr) * d + lr * g
        return p - d, d

    def buffer_not_velocity(p, g, d, lr, prev_lr, mu):  # PyTorch's form: right p, wrong state
        b = mu * d + g
        return p - lr * b, b

    run(checks.check_velocity_momentum_step, velocity_step, no_rescale, "p differs", capsys)
    for wrong in (wrong_sign, inverted_ratio):
        with pytest.raises(AssertionError, match="Hint"):
            checks.check_velocity_momentum_step(wrong)
    with pytest.raises(AssertionError, match="d differs"):
        checks.check_velocity_momentum_step(buffer_not_velocity)
    with pytest.raises(AssertionError, match="expected a tuple"):
        checks.check_velocity_momentum_step(lambda p, g, d, lr, prev_lr, mu: p - lr * g)


def test_check_velocity_momentum_step_refuses_the_optimizers_and_restores_them():
    import torch

    def numpy_shortcut(p, g, d, lr, prev_lr, mu):
        p = p.copy()
        numpy_optim.SGD([p], lr=lr, momentum=mu).step([g])
        return p, d

    def torch_shortcut(p, g, d, lr, prev_lr, mu):
        tp = torch.tensor(p, requires_grad=True)
        tp.grad = torch.from_numpy(g)
        torch.optim.SGD([tp], lr=lr, momentum=mu).step()
        return tp.detach().numpy(), d

    originals = (numpy_optim.SGD, torch.optim.SGD)
    with pytest.raises(AssertionError, match="do not call helpers.numpy_optim.SGD"):
        checks.check_velocity_momentum_step(numpy_shortcut)
    with pytest.raises(AssertionError, match="do not call torch.optim.SGD"):
        checks.check_velocity_momentum_step(torch_shortcut)
    assert (numpy_optim.SGD, torch.optim.SGD) == originals
