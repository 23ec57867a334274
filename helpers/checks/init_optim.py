"""Exercise checks for chapters 2 and 3: initialization, optimizers and learning rates.

Each compares a reader's function with PyTorch on random inputs, prints one line when it
passes and raises AssertionError with a hint when it does not; a stub's NotImplementedError
propagates, so a check fails on an unfinished exercise.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import torch
from scipy import stats

from helpers import init, numpy_optim
from helpers.checks._common import compare, fail, passed, written_by_hand

__all__ = [
    "check_adam_step",
    "check_clip_grad_norm",
    "check_fan_in_fan_out",
    "check_forward_stds",
    "check_triangular_lr",
    "check_velocity_momentum_step",
    "check_xavier_uniform",
]


# --------------------------------------------------------------------------- chapter 2


_ADAMS = ("Adam", "AdamW", "AdaBelief")
_TORCH_FANS = ("_calculate_fan_in_and_fan_out", "_calculate_correct_fan")
_TORCH_INITS = ("xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_")


def check_fan_in_fan_out(fan_in_fan_out: Callable, seed: int = 0) -> None:
    """``fan_in_fan_out(shape) -> (fan_in, fan_out)`` against PyTorch's rule.

    While the answer runs, ``helpers.init.fan_in_fan_out`` and torch's
    ``nn.init._calculate_fan_in_and_fan_out`` refuse to be called.
    """
    name = "check_fan_in_fan_out"
    rng = np.random.default_rng(seed)
    cases = [(10, 20), (64, 32, 3, 3), (8, 3, 5, 5), (4, 2, 3, 3, 3), (16, 16, 1, 1)]
    cases += [tuple(int(s) for s in rng.integers(1, 9, size=rng.integers(2, 5))) for _ in range(10)]
    for shape in cases:
        want = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        with (
            written_by_hand(name, init, ("fan_in_fan_out",), answer=fan_in_fan_out),
            written_by_hand(name, torch.nn.init, _TORCH_FANS, answer=fan_in_fan_out),
        ):
            got = fan_in_fan_out(shape)
        if tuple(int(v) for v in got) != tuple(want):
            raise fail(
                "check_fan_in_fan_out",
                f"shape {shape}",
                f"got {got}, expected {want}",
                "a weight is (out, in, *kernel); every unit sums in * kernel area "
                "inputs and feeds out * kernel area outputs",
            )
    passed("check_fan_in_fan_out", len(cases))


def check_xavier_uniform(xavier_uniform: Callable, seed: int = 0) -> None:
    """``xavier_uniform(shape, rng, gain) -> array`` distributed as ``nn.init.xavier_uniform_``.

    While the answer runs, ``helpers.init``'s Xavier initializers and ``fan_in_fan_out``, and
    torch's ``nn.init.xavier_uniform_``, ``xavier_normal_`` and fan functions refuse to be
    called (the answer may use the reader's own fan function).
    """
    name = "check_xavier_uniform"
    cases = [((200, 100), 1.0), ((64, 32, 3, 3), 5 / 3), ((120, 300), 2.0)]
    hint = (
        "draw from U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)); the square root "
        "matters (a uniform on [-a, a] has standard deviation a / sqrt(3))"
    )
    for k, (shape, gain) in enumerate(cases):
        torch.manual_seed(seed + k)
        ref = torch.nn.init.xavier_uniform_(torch.empty(shape, dtype=torch.float64), gain).numpy()
        fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        with (
            written_by_hand(name, init, ("fan_in_fan_out", "xavier_uniform", "xavier_normal"),
                            answer=xavier_uniform),
            written_by_hand(name, torch.nn.init, _TORCH_FANS + _TORCH_INITS,
                            answer=xavier_uniform),
        ):  # fmt: skip
            ours = np.asarray(xavier_uniform(shape, np.random.default_rng(seed + k), gain))
        case = f"shape {shape}, gain {gain:.3g}"
        if ours.shape != shape:
            raise fail("check_xavier_uniform", case, f"shape {ours.shape}, expected {shape}", hint)
        bound = gain * math.sqrt(6 / (fan_in + fan_out))
        if np.abs(ours).max() > bound * (1 + 1e-12) or abs(ours.std() / ref.std() - 1) > 0.03:
            raise fail(
                "check_xavier_uniform",
                case,
                f"standard deviation {ours.std():.4f}, expected {ref.std():.4f}",
                hint,
            )
        if stats.ks_2samp(ours.ravel(), ref.ravel()).pvalue < 1e-4:
            raise fail(
                "check_xavier_uniform", case, "the values are not uniform like PyTorch's", hint
            )
    passed("check_xavier_uniform", len(cases))


def _torch_forward_stds(x, weights, activation):
    h = torch.from_numpy(np.asarray(x, dtype=np.float64))
    act = {"relu": torch.relu, "tanh": torch.tanh}[activation]
    out = []
    for w in weights:
        h = act(h @ torch.from_numpy(w).T)
        out.append(h.std(unbiased=False).item())
    return np.array(out)


def check_forward_stds(forward_stds: Callable, seed: int = 0) -> None:
    """``forward_stds(x, weights, activation) -> per-layer std of the activations``.

    x (N, D_0); weights a list of (D_l, D_{l-1}) arrays; activation "relu" or "tanh". Layer l
    computes h_l = activation(h_{l-1} @ W_l.T) without bias; the answer lists std(h_l) over all
    its entries (NumPy's default std) for l = 1..L.
    """
    rng = np.random.default_rng(seed)
    hint = (
        "apply each layer as h = activation(h @ W.T), starting from h = x, and record "
        "h.std() after the activation, one value per layer"
    )
    n_cases = 0
    for activation in ("relu", "tanh"):
        for depth, width in [(1, 5), (4, 16), (10, 32)]:
            x = rng.standard_normal((50, width))
            weights = [rng.normal(0, 1.2 / math.sqrt(width), (width, width)) for _ in range(depth)]
            ref = _torch_forward_stds(x, weights, activation)
            got = forward_stds(x, [w.copy() for w in weights], activation)
            compare(
                "check_forward_stds",
                f"{depth} layers of {width} units, {activation}",
                got,
                ref,
                hint,
                rtol=1e-9,
                atol=1e-12,
            )
            n_cases += 1
    passed("check_forward_stds", n_cases)


# --------------------------------------------------------------------------- chapter 3


def check_adam_step(adam_step: Callable, seed: int = 0) -> None:
    """``adam_step(p, g, m, v, t, lr, betas, eps) -> (p, m, v)`` against ``torch.optim.Adam``.

    ``t`` is the 1-based step number; the returned arrays are the new parameter and moments.
    ``lr`` changes at every step (a cosine-shaped schedule, set on torch's optimizer too), so
    the bias correction must use ``t``, not the rate. While the answer runs,
    ``helpers.numpy_optim``'s Adam, AdamW and AdaBelief refuse to be called.
    """
    rng = np.random.default_rng(seed)
    hint = (
        "m = b1 m + (1 - b1) g and v = b2 v + (1 - b2) g^2; correct both for their zero "
        "start, m_hat = m / (1 - b1^t) and v_hat = v / (1 - b2^t); then "
        "p - lr * m_hat / (sqrt(v_hat) + eps)"
    )
    settings = [(1e-2, (0.9, 0.999), 1e-8), (0.1, (0.5, 0.9), 1e-6), (3e-3, (0.0, 0.99), 1e-8)]
    for lr, betas, eps in settings:
        p = rng.standard_normal((4, 3))
        tp = torch.tensor(p.copy(), requires_grad=True)
        opt = torch.optim.Adam([tp], lr=lr, betas=betas, eps=eps)
        m, v = np.zeros_like(p), np.zeros_like(p)
        for t in range(1, 31):
            g = rng.standard_normal(p.shape) + p
            tp.grad = torch.from_numpy(g.copy())
            lr_t = lr * (0.55 + 0.45 * math.cos(math.pi * t / 30))  # a schedule: new rate each step
            opt.param_groups[0]["lr"] = lr_t
            opt.step()
            with (written_by_hand("check_adam_step", numpy_optim, _ADAMS, answer=adam_step),
                  written_by_hand("check_adam_step", torch.optim, ("Adam", "AdamW"),
                                  answer=adam_step)):  # fmt: skip
                answer = adam_step(p.copy(), g.copy(), m.copy(), v.copy(), t, lr_t, betas, eps)
            p, m, v = (np.asarray(a, dtype=float) for a in answer)
            compare(
                "check_adam_step",
                f"step {t}, lr={lr_t:.3g}, betas={betas}",
                p,
                tp.detach().numpy(),
                hint,
                rtol=1e-8,
                atol=1e-12,
            )
    passed("check_adam_step", 30 * len(settings))


def check_clip_grad_norm(clip_grad_norm: Callable, seed: int = 0) -> None:
    """``clip_grad_norm(grads, max_norm) -> clipped grads`` against ``clip_grad_norm_``.

    grads is a list of arrays; the answer is a list of new arrays, all scaled by one factor so
    that their global L2 norm is at most ``max_norm``. ``helpers.numpy_optim.clip_grad_norm``
    refuses to be called while the answer runs.
    """
    rng = np.random.default_rng(seed)
    hint = (
        "compute ONE norm over all the arrays together, sqrt(sum of every squared entry); "
        "if it exceeds max_norm, multiply every array by max_norm / norm, else leave them"
    )
    cases = [(10.0, 1.0), (0.5, 1.0), (2.0, 100.0), (3.0, 0.01)]
    for scale, max_norm in cases:
        grads = [scale * rng.standard_normal(s) for s in [(3, 4), (5,), (2, 2, 3)]]
        tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
        for t, g in zip(tensors, grads, strict=True):
            t.grad = torch.from_numpy(g.copy())
        torch.nn.utils.clip_grad_norm_(tensors, max_norm)
        with (written_by_hand("check_clip_grad_norm", numpy_optim, ("clip_grad_norm",),
                              answer=clip_grad_norm),
              written_by_hand("check_clip_grad_norm", torch.nn.utils, ("clip_grad_norm_",),
                              answer=clip_grad_norm)):  # fmt: skip
            got = clip_grad_norm([g.copy() for g in grads], max_norm)
        if len(got) != len(grads):
            raise fail(
                "check_clip_grad_norm",
                f"max_norm={max_norm}",
                f"returned {len(got)} arrays for {len(grads)}",
                hint,
            )
        for ours, t in zip(got, tensors, strict=True):
            # torch divides by (norm + 1e-6): allow that difference
            compare(
                "check_clip_grad_norm",
                f"3 arrays of global norm ~{scale * 5.5:.2g}, max_norm={max_norm}",
                ours,
                t.grad.numpy(),
                hint,
                rtol=1e-5,
                atol=1e-12,
            )
    passed("check_clip_grad_norm", len(cases))


def check_triangular_lr(triangular_lr: Callable, seed: int = 0) -> None:
    """``triangular_lr(t, base_lr, max_lr, step_size)`` against ``CyclicLR(mode="triangular")``.

    While the answer runs, ``torch.optim.lr_scheduler.CyclicLR`` refuses to be called.
    """
    name = "check_triangular_lr"
    rng = np.random.default_rng(seed)
    hint = (
        "the rate climbs linearly from base_lr to max_lr in step_size steps, falls back in "
        "step_size steps, and repeats: lr = base + (max - base) * max(0, 1 - |t / step_size "
        "- 2 * cycle + 1|) with cycle = floor(1 + t / (2 * step_size))"
    )
    cases = [(1e-3, 1e-1, 5), (0.01, 0.02, 1), (0.2, 1.0, int(rng.integers(2, 12)))]
    for base, peak, step_size in cases:
        param = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([param], lr=base)
        sched = torch.optim.lr_scheduler.CyclicLR(
            opt, base, peak, step_size_up=step_size, mode="triangular", cycle_momentum=False
        )
        ref = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(6 * step_size + 3):
                ref.append(opt.param_groups[0]["lr"])
                opt.step()
                sched.step()
        with written_by_hand(name, torch.optim.lr_scheduler, ("CyclicLR",), answer=triangular_lr):
            got = [triangular_lr(t, base, peak, step_size) for t in range(len(ref))]
        compare(
            "check_triangular_lr",
            f"base_lr={base}, max_lr={peak}, step_size={step_size}",
            got,
            ref,
            hint,
            rtol=1e-9,
            atol=1e-12,
        )
    passed("check_triangular_lr", len(cases))


def check_velocity_momentum_step(velocity_step: Callable, seed: int = 0) -> None:
    """``velocity_step(p, g, d, lr, prev_lr, mu) -> (p, d)``: the notes form of momentum,
    d <- (something) and p <- p - d, that follows ``torch.optim.SGD(momentum=mu)`` exactly.

    p, g, d: arrays of one shape (parameters, gradient at p, velocity; d starts at zero);
    lr: this step's rate; prev_lr: the previous step's (equal to lr at the first step); mu:
    the momentum. The rate changes at every step (warmup, cosine decay and a tenfold cut), so
    the velocity must stay equal to lr times PyTorch's buffer: the check compares both p and
    d = lr * momentum_buffer after every step. While the answer runs, ``torch.optim.SGD`` and
    ``helpers.numpy_optim.SGD`` refuse to be called.
    """
    name = "check_velocity_momentum_step"
    rng = np.random.default_rng(seed)
    hint = (
        "the two forms take the same step when d_t = lr_t * b_t at every step, with b "
        "PyTorch's buffer (b_t = mu b_(t-1) + g, p <- p - lr_t b_t); write b_(t-1) in terms of "
        "d_(t-1) and the rate it was made with, lr_(t-1), and substitute; p moves by -d_t "
        "(mu d + lr g alone keeps the old rate inside d after the schedule changes it)"
    )
    steps = 40

    def schedule(lr, t):  # t = 1..steps: a warmup, a cosine decay, a tenfold cut at step 30
        warm = min(1.0, t / 5)
        cosine = 0.55 + 0.45 * math.cos(math.pi * t / steps)
        return lr * warm * cosine * (0.1 if t >= 30 else 1.0)

    settings = [(0.1, 0.9, (3, 4)), (0.5, 0.5, (5,)), (0.02, 0.99, (2, 2, 2))]
    for lr0, mu, shape in settings:
        a = rng.uniform(0.5, 2.0, shape)  # a quadratic bowl 0.5 * a * p^2 plus noise
        p = rng.standard_normal(shape)
        tp = torch.tensor(p.copy(), requires_grad=True)
        opt = torch.optim.SGD([tp], lr=schedule(lr0, 1), momentum=mu)
        d, prev_lr = np.zeros(shape), schedule(lr0, 1)
        for t in range(1, steps + 1):
            lr = schedule(lr0, t)
            g = a * tp.detach().numpy() + 0.1 * rng.standard_normal(shape)
            tp.grad = torch.from_numpy(g.copy())
            opt.param_groups[0]["lr"] = lr
            opt.step()
            with (
                written_by_hand(name, numpy_optim, ("SGD",), answer=velocity_step),
                written_by_hand(name, torch.optim, ("SGD",), answer=velocity_step),
            ):
                answer = velocity_step(p.copy(), g.copy(), d.copy(), lr, prev_lr, mu)
            if not isinstance(answer, tuple | list) or len(answer) != 2:
                raise fail(name, f"step {t}", "expected a tuple (p, d)", "return both")
            p, d = (np.asarray(v, dtype=np.float64) for v in answer)
            case = f"step {t} (lr {prev_lr:.3g} -> {lr:.3g}), mu={mu}"
            ref_p = tp.detach().numpy()
            compare(name, case, p, ref_p, hint, what="p", rtol=1e-9, atol=1e-12)
            ref_d = lr * opt.state[tp]["momentum_buffer"].numpy()
            compare(name, case, d, ref_d, hint, what="d", rtol=1e-9, atol=1e-12)
            p, prev_lr = ref_p.copy(), lr  # the next step starts from the reference
    passed(name, steps * len(settings))
