"""Exercise checks for chapter 1, convolution: max pooling, im2col convolution, receptive
field, and the input gradient of a convolution.

Each compares a reader's function with a reference on random inputs; a stub's
NotImplementedError propagates, so a check fails on an unfinished exercise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from helpers import numpy_nn
from helpers.checks._common import compare, fail, passed, written_by_hand

RTOL = 1e-9


def check_max_pool2d(max_pool2d: Callable, seed: int = 0) -> None:
    """``max_pool2d(x, kernel_size, stride)`` for x (N, C, H, W) against F.max_pool2d."""
    rng = np.random.default_rng(seed)
    cases = [((2, 3, 8, 8), 2, 2), ((1, 2, 7, 9), 3, 2), ((3, 1, 6, 6), 2, 1), ((2, 2, 5, 8), 3, 3)]
    inputs = [(rng.standard_normal(shape), k, s) for shape, k, s in cases]
    refs = [F.max_pool2d(torch.from_numpy(x), k, s).numpy() for x, k, s in inputs]
    hint = (
        "the output is (N, C, (H - k) // s + 1, (W - k) // s + 1); window (i, j) starts at "
        "row i*s, column j*s; take the maximum over its k x k pixels"
    )
    name = "check_max_pool2d"
    with (written_by_hand(name, numpy_nn, ("max_pool2d",), answer=max_pool2d),
          written_by_hand(name, F, ("max_pool2d",), answer=max_pool2d)):  # fmt: skip
        for (x, k, s), ref in zip(inputs, refs, strict=True):
            case = f"x {x.shape}, kernel_size={k}, stride={s}"
            compare(name, case, max_pool2d(x, k, s), ref, hint, rtol=RTOL, atol=0.0)
    passed(name, len(cases))


def check_conv2d(conv2d: Callable, seed: int = 0) -> None:
    """``conv2d(x, w, b)`` (stride 1, no padding) for x (N, C, H, W), w (F, C, KH, KW), b (F,)."""
    rng = np.random.default_rng(seed)
    cases = [
        ((2, 3, 7, 7), (4, 3, 3, 3)),
        ((1, 1, 6, 9), (2, 1, 2, 4)),
        ((3, 2, 5, 5), (5, 2, 1, 1)),
    ]
    inputs = [(rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0]))
              for xs, ws in cases]  # fmt: skip
    refs = [F.conv2d(*(torch.from_numpy(a) for a in xwb)).numpy() for xwb in inputs]
    hint = (
        "build the (N*H_out*W_out, C*KH*KW) matrix of windows, multiply by w reshaped to "
        "(F, C*KH*KW) transposed, add b, and reshape back to (N, F, H_out, W_out); the "
        "window's axes must be flattened in the same (C, KH, KW) order as w"
    )
    name = "check_conv2d"
    # the book's conv2d, torch's, and the chapter's own loop version are all off limits
    with (written_by_hand(name, numpy_nn, ("conv2d",), answer=conv2d, own=("conv2d_naive",)),
          written_by_hand(name, F, ("conv2d",), answer=conv2d)):  # fmt: skip
        for (x, w, b), ref in zip(inputs, refs, strict=True):
            compare(name, f"x {x.shape}, w {w.shape}", conv2d(x, w, b), ref, hint,
                    rtol=RTOL, atol=0.0)  # fmt: skip
    passed(name, len(cases))


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
            raise fail(
                "check_receptive_field",
                f"layers {layers}",
                f"got {got}, expected {want}",
                "a layer with kernel k adds (k - 1) times the product of the strides of the "
                "layers before it; an empty stack sees 1 pixel",
            )
    passed("check_receptive_field", len(cases))


def check_conv2d_backward_dx(conv2d_backward_dx: Callable, seed: int = 0) -> None:
    """``conv2d_backward_dx(dy, w, x_shape, stride, padding) -> dx`` against torch autograd.

    dy (N, C_out, H_out, W_out) is the upstream gradient of ``conv2d(x, w, stride=stride,
    padding=padding)`` with w (C_out, C_in, K_H, K_W), x_shape = (N, C_in, H, W); stride and
    padding are ints. The answer must return dx with shape x_shape. While the check runs,
    ``helpers.numpy_nn.conv2d_backward`` raises: the point is to write the backward pass.
    """
    rng = np.random.default_rng(seed)
    cases = [  # x shape, w shape, stride, padding
        ((1, 1, 5, 5), (1, 1, 3, 3), 1, 0),
        ((2, 3, 7, 6), (4, 3, 3, 2), 1, 0),
        ((2, 2, 6, 7), (3, 2, 3, 3), 1, 1),
        ((1, 2, 9, 8), (2, 2, 3, 3), 2, 1),  # H + 2P - K divisible by S: 8 / 2
        ((2, 3, 8, 10), (2, 3, 3, 4), 2, 0),  # not divisible: the last row is never read
        ((1, 1, 11, 9), (3, 1, 5, 3), 3, 2),
    ]
    for xs, ws, stride, padding in cases:
        x, w = torch.from_numpy(rng.standard_normal(xs)), rng.standard_normal(ws)
        x.requires_grad_(True)
        y = F.conv2d(x, torch.from_numpy(w), stride=stride, padding=padding)
        dy = rng.standard_normal(tuple(y.shape))
        y.backward(torch.from_numpy(dy))
        ref = x.grad.numpy()
        with (written_by_hand("check_conv2d_backward_dx", numpy_nn, ("conv2d_backward",),
                              answer=conv2d_backward_dx),
              written_by_hand("check_conv2d_backward_dx", torch.autograd,
                              ("backward", "grad"))):  # fmt: skip
            ours = conv2d_backward_dx(dy.copy(), w.copy(), xs, stride, padding)
        hint = (
            "dx is the full cross-correlation of dy with w rotated by 180 degrees (w[:, :, ::-1, "
            "::-1]) and with its two channel axes swapped (C_in, C_out, K_H, K_W): dilate dy by "
            "inserting stride - 1 zeros between its entries, pad it by K - 1 on every side, "
            "correlate, put the result in a zero array of the padded input's size (rows and "
            "columns no window read keep gradient 0), then crop the padding"
        )
        compare(
            "check_conv2d_backward_dx",
            f"x {xs}, w {ws}, stride={stride}, padding={padding}",
            ours,
            ref,
            hint,
            rtol=RTOL,
            atol=0.0,
        )
    passed("check_conv2d_backward_dx", len(cases))
