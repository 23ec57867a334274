"""Exercise checks for chapter 1, convolution: max pooling, im2col convolution, receptive field.

Each compares a reader's function with a reference on random inputs; a stub's
NotImplementedError propagates, so a check fails on an unfinished exercise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

RTOL = 1e-9


def _fail(name: str, case: str, problem: str, hint: str) -> AssertionError:
    return AssertionError(f"{name}: {problem} for {case}. Hint: {hint}")


def _compare(name, case, ours, ref, hint, rtol=RTOL):
    ours = np.asarray(ours)
    if ours.shape != ref.shape:
        raise _fail(name, case, f"output shape {ours.shape}, expected {ref.shape}", hint)
    err = np.max(np.abs(ours - ref)) / max(1e-12, np.max(np.abs(ref)))
    if not err <= rtol:
        raise _fail(name, case, f"values differ from PyTorch (relative error {err:.2e})", hint)


def _passed(name: str, n_cases: int) -> None:
    print(f"{name}: passed on {n_cases} random cases")


def check_max_pool2d(max_pool2d: Callable, seed: int = 0) -> None:
    """``max_pool2d(x, kernel_size, stride)`` for x (N, C, H, W) against F.max_pool2d."""
    rng = np.random.default_rng(seed)
    cases = [((2, 3, 8, 8), 2, 2), ((1, 2, 7, 9), 3, 2), ((3, 1, 6, 6), 2, 1), ((2, 2, 5, 8), 3, 3)]
    for shape, k, s in cases:
        x = rng.standard_normal(shape)
        ref = F.max_pool2d(torch.from_numpy(x), k, s).numpy()
        case = f"x {shape}, kernel_size={k}, stride={s}"
        hint = (
            "the output is (N, C, (H - k) // s + 1, (W - k) // s + 1); window (i, j) starts at "
            "row i*s, column j*s; take the maximum over its k x k pixels"
        )
        _compare("check_max_pool2d", case, max_pool2d(x, k, s), ref, hint)
    _passed("check_max_pool2d", len(cases))


def check_conv2d(conv2d: Callable, seed: int = 0) -> None:
    """``conv2d(x, w, b)`` (stride 1, no padding) for x (N, C, H, W), w (F, C, KH, KW), b (F,)."""
    rng = np.random.default_rng(seed)
    cases = [
        ((2, 3, 7, 7), (4, 3, 3, 3)),
        ((1, 1, 6, 9), (2, 1, 2, 4)),
        ((3, 2, 5, 5), (5, 2, 1, 1)),
    ]
    for xs, ws in cases:
        x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
        ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)).numpy()
        hint = (
            "build the (N*H_out*W_out, C*KH*KW) matrix of windows, multiply by w reshaped to "
            "(F, C*KH*KW) transposed, add b, and reshape back to (N, F, H_out, W_out); the "
            "window's axes must be flattened in the same (C, KH, KW) order as w"
        )
        _compare("check_conv2d", f"x {xs}, w {ws}", conv2d(x, w, b), ref, hint)
    _passed("check_conv2d", len(cases))


def _receptive_field_reference(layers: Sequence[tuple[int, int]]) -> int:
    size, jump = 1, 1
    for kernel, stride in layers:
        size += (kernel - 1) * jump
        jump *= stride
    return size


def check_receptive_field(receptive_field: Callable, seed: int = 0) -> None:
    """``receptive_field(layers) -> int`` for a list of (kernel_size, stride) pairs."""
    rng = np.random.default_rng(seed)
    cases = [[], [(3, 1)], [(3, 1), (3, 1)], [(2, 2), (2, 2)], [(7, 2), (3, 2), (3, 1), (3, 1)]]
    for _ in range(20):
        depth = int(rng.integers(1, 7))
        cases.append([(int(rng.integers(1, 6)), int(rng.integers(1, 4))) for _ in range(depth)])
    for layers in cases:
        want = _receptive_field_reference(layers)
        got = receptive_field(list(layers))
        if got != want:
            raise _fail(
                "check_receptive_field",
                f"layers {layers}",
                f"got {got}, expected {want}",
                "a layer with kernel k adds (k - 1) times the product of the strides of the "
                "layers before it; an empty stack sees 1 pixel",
            )
    _passed("check_receptive_field", len(cases))
