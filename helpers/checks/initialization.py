"""Exercise checks for chapter 2 (initialization): the backward pass and the gain.

Each compares a reader's function with PyTorch (autograd, ``torch.nn.init``), prints one line
when it passes and raises AssertionError with a hint when it does not; a stub's
NotImplementedError propagates, so a check fails on an unfinished exercise. The references
use only PyTorch, never ``helpers.init``, and while the answer runs the initializers it is
asked to write (``helpers.init``'s and ``torch.nn.init``'s) refuse to be called, and so do
autograd and ``helpers.numpy_nn``'s layer backwards while the backward pass is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy import stats

from helpers import init, numpy_nn
from helpers.checks._common import fail, passed, written_by_hand

__all__ = ["check_backward_stds", "check_kaiming_normal"]

_LAYER_BACKWARDS = ("linear_backward", "relu_backward")  # the pass the exercise derives


def _torch_backward_stds(x, weights, grad_top):
    """std of dL/dh_l for l = 0..L-1, L = sum(h_L * grad_top), by autograd in float64."""
    h = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    inputs = []
    for w in weights:
        inputs.append(h)
        h.retain_grad()
        h = torch.relu(h @ torch.from_numpy(w).T)
    (h * torch.from_numpy(grad_top)).sum().backward()
    return np.array([t.grad.std(unbiased=False).item() for t in inputs])


def check_backward_stds(backward_stds: Callable, seed: int = 0) -> None:
    """``backward_stds(x, weights, grad_top) -> per-layer std of the backward signal``.

    x (N, D_0); weights a list of (D_l, D_{l-1}) arrays; the network is h_0 = x,
    h_l = relu(h_{l-1} @ W_l.T) without bias; grad_top (N, D_L) is dL/dh_L. The answer lists
    std(dL/dh_l) over all entries (NumPy's default std) for l = 0..L-1, bottom layer first.
    """
    rng = np.random.default_rng(seed)
    name = "check_backward_stds"
    hint = (
        "run the forward pass keeping every pre-activation z_l = h_{l-1} @ W_l.T; then from "
        "the top, g = grad_top, and per layer (top first) dz = g * (z_l > 0), "
        "g = dz @ W_l; record g.std() and return the list bottom layer first"
    )
    cases = [[5, 3], [8, 16, 4], [32, 64, 32, 64, 32], [20] * 9]
    for sizes in cases:
        x = rng.standard_normal((40, sizes[0]))
        weights = [
            rng.normal(0, math.sqrt(2 / n_in), (n_out, n_in))
            for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
        ]
        grad_top = rng.standard_normal((40, sizes[-1]))
        ref = _torch_backward_stds(x, weights, grad_top)
        with (written_by_hand(name, torch.autograd, ("backward", "grad")),
              written_by_hand(name, numpy_nn, _LAYER_BACKWARDS, answer=backward_stds)):  # fmt: skip
            got = np.asarray(
                backward_stds(x.copy(), [w.copy() for w in weights], grad_top.copy()),
                dtype=float,
            )
        case = f"widths {sizes}"
        if got.shape != ref.shape:
            raise fail(
                name,
                case,
                f"{got.size} values, expected {ref.size} (one per layer input h_0 .. h_{{L-1}})",
                hint,
            )
        err = np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-12))
        if not err <= 1e-9:
            raise fail(name, case, f"values differ from autograd (relative error {err:.2e})", hint)
    passed(name, len(cases))


_HELPERS = ("kaiming_normal", "kaiming_uniform", "calculate_gain", "fan_in_fan_out")
_TORCH = ("kaiming_normal_", "kaiming_uniform_", "calculate_gain",
          "_calculate_fan_in_and_fan_out", "_calculate_correct_fan")  # fmt: skip


def check_kaiming_normal(kaiming_normal: Callable, seed: int = 0) -> None:
    """``kaiming_normal(shape, rng, nonlinearity, a, mode) -> array`` as ``kaiming_normal_``.

    shape (out, in, *kernel); rng a NumPy Generator; nonlinearity "linear", "sigmoid",
    "tanh", "relu" or "leaky_relu" (slope ``a``); mode "fan_in" or "fan_out". The answer is
    drawn from N(0, gain^2 / fan), as ``torch.nn.init.kaiming_normal_(w, a, mode,
    nonlinearity)``. While the answer runs, ``helpers.init``'s ``kaiming_normal``,
    ``kaiming_uniform``, ``calculate_gain`` and ``fan_in_fan_out``, and torch's
    ``nn.init.kaiming_normal_``, ``kaiming_uniform_``, ``calculate_gain`` and fan functions
    refuse to be called (the reader's own fan function is welcome).
    """
    name = "check_kaiming_normal"
    hint = (
        "std = gain / sqrt(fan): gain 1 (linear, sigmoid), 5/3 (tanh), sqrt(2) (relu), "
        "sqrt(2 / (1 + a^2)) (leaky_relu); fan = in * kernel area for fan_in, "
        "out * kernel area for fan_out"
    )
    cases = [
        ((300, 100), "relu", 0.0, "fan_in"),
        ((100, 300), "relu", 0.0, "fan_out"),
        ((64, 32, 3, 3), "leaky_relu", 0.2, "fan_in"),
        ((40, 64, 3, 3), "tanh", 0.0, "fan_out"),
        ((200, 150), "linear", 0.0, "fan_in"),
        ((150, 200), "sigmoid", 0.0, "fan_out"),
        ((32, 48, 5, 5), "leaky_relu", 1.0, "fan_out"),
    ]
    for k, (shape, nonlinearity, a, mode) in enumerate(cases):
        torch.manual_seed(seed + k)
        ref = torch.nn.init.kaiming_normal_(
            torch.empty(shape, dtype=torch.float64), a=a, mode=mode, nonlinearity=nonlinearity
        ).numpy()
        fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        gain = torch.nn.init.calculate_gain(nonlinearity, a)
        std = gain / math.sqrt(fan_in if mode == "fan_in" else fan_out)
        with (
            written_by_hand(name, init, _HELPERS, answer=kaiming_normal),
            written_by_hand(name, torch.nn.init, _TORCH, answer=kaiming_normal),
        ):
            ours = np.asarray(
                kaiming_normal(shape, np.random.default_rng(seed + k), nonlinearity, a, mode),
                dtype=float,
            )
        case = f"shape {shape}, {nonlinearity} (a={a}), {mode}"
        if ours.shape != shape:
            raise fail(name, case, f"shape {ours.shape}, expected {shape}", hint)
        if abs(ours.std() / std - 1) > 0.03 or abs(ours.mean()) > 0.05 * std:
            raise fail(
                name,
                case,
                f"mean {ours.mean():.4f} and standard deviation "
                f"{ours.std():.4f}, expected 0 and {std:.4f}",
                hint,
            )
        if stats.ks_2samp(ours.ravel(), ref.ravel()).pvalue < 1e-4:
            raise fail(name, case, "the values are not normal like PyTorch's", hint)
    passed(name, len(cases))
