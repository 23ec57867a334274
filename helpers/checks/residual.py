"""Exercise checks for chapter 7, residual networks: zero-padded shortcut, DropPath,
pre-activation, and the backward pass of a residual block.

Each compares a reader's function with a reference on random inputs; a stub's
NotImplementedError propagates, so a check fails on an unfinished exercise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from helpers import models, numpy_resnet
from helpers.checks._common import compare, fail, passed, written_by_hand


def _pad_shortcut_reference(x, out_channels, stride):
    x = x[:, :, ::stride, ::stride]
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


_BLOCKS = ("BasicBlock", "ResNet", "resnet", "plain_cnn")  # every way to a block of models
_DROP_PATHS = ("drop_path", "DropPath")


def check_pad_shortcut(pad_shortcut: Callable, seed: int = 0) -> None:
    """``pad_shortcut(x, out_channels, stride)``: the parameter-free shortcut of option A.

    x: (N, C, H, W) tensor, out_channels >= C. Returns (N, out_channels, ceil(H / stride),
    ceil(W / stride)): every stride-th pixel, the extra channels zero. While the answer runs,
    ``helpers.models.BasicBlock`` (whose ``shortcut`` does this) refuses to be built.
    """
    name = "check_pad_shortcut"
    gen = torch.Generator().manual_seed(seed)
    cases = [((2, 4, 8, 8), 8, 2), ((1, 3, 7, 5), 6, 2), ((2, 4, 6, 6), 4, 1), ((3, 2, 9, 9), 5, 3)]
    for shape, out_channels, stride in cases:
        x = torch.randn(shape, generator=gen, dtype=torch.float64)
        hint = (
            "take x[:, :, ::stride, ::stride] (the pixels a stride-`stride` 1x1 convolution "
            "would read), then append out_channels - C channels of zeros after the existing ones"
        )
        ref = _pad_shortcut_reference(x, out_channels, stride)
        with written_by_hand(name, models, _BLOCKS, answer=pad_shortcut):
            got = pad_shortcut(x.clone(), out_channels, stride)
        compare(
            name,
            f"x {shape}, out_channels={out_channels}, stride={stride}",
            got,
            ref,
            hint,
            rtol=1e-10,
            atol=1e-10,
            tensor=True,
        )
    passed(name, len(cases))


def check_drop_path(drop_path: Callable, seed: int = 0) -> None:
    """``drop_path(x, p, training)``: per example, zero with probability p, else x / (1 - p).

    While the answer runs, ``helpers.models.drop_path`` and ``DropPath`` refuse to be called.
    """
    name = "check_drop_path"
    torch.manual_seed(seed)
    n_cases = 0
    for p, shape in [(0.2, (4000, 3, 2, 2)), (0.5, (4000, 5)), (0.0, (10, 2, 3, 3))]:
        x = torch.rand(shape, dtype=torch.float64) + 0.5
        case = f"p={p}, x {shape}"
        with written_by_hand(name, models, _DROP_PATHS, answer=drop_path):
            out = drop_path(x.clone(), p, True)
            evaluated = drop_path(x.clone(), p, False)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            raise fail(
                name,
                case,
                "the output must be a tensor shaped like x",
                "multiply x by a mask of shape (N, 1, 1, ...)",
            )
        ratio = (out / x).flatten(1)
        scaled = torch.isclose(ratio, torch.full_like(ratio, 1 / (1 - p)))
        whole = (ratio == 0).all(1) | scaled.all(1)
        if not bool(whole.all()):
            raise fail(
                name,
                case,
                "some examples are neither all zero nor all x / (1 - p)",
                "draw one Bernoulli(1 - p) number per example (shape (N, 1, 1, ...)), "
                "not one per element, and divide the kept examples by 1 - p",
            )
        dropped = float((ratio == 0).all(1).double().mean())
        if abs(dropped - p) > 0.04:
            raise fail(
                name,
                case,
                f"dropped {dropped:.1%} of the examples, expected about {p:.0%}",
                "p is the probability of dropping, 1 - p of keeping",
            )
        if not (isinstance(evaluated, torch.Tensor) and torch.equal(evaluated, x)):
            raise fail(
                name,
                case,
                "in eval (training=False) the output differs from x",
                "return x unchanged when not training",
            )
        n_cases += 1
    passed(name, n_cases)


def _preact_reference(x, w1, w2):
    def bn_relu(z):
        return F.relu(F.batch_norm(z, None, None, training=True))

    return x + F.conv2d(bn_relu(F.conv2d(bn_relu(x), w1, padding=1)), w2, padding=1)


def check_preact_block(preact_block: Callable, seed: int = 0) -> None:
    """``preact_block(x, w1, w2)``: y = x + conv(relu(bn(conv(relu(bn(x)), w1))), w2).

    x: (N, C, H, W); w1, w2: (C, C, 3, 3); 3x3 convolutions with padding 1, no bias; batch
    norm in training mode without scale and shift (``F.batch_norm(z, None, None, training=True)``).
    While the answer runs, ``helpers.models.BasicBlock`` (``preact=True`` builds this block)
    refuses to be built.
    """
    name = "check_preact_block"
    gen = torch.Generator().manual_seed(seed)
    cases = [(4, 3, 6, 6), (2, 5, 4, 4), (3, 2, 8, 5)]
    for shape in cases:
        c = shape[1]
        x = torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + 1
        w1 = torch.randn((c, c, 3, 3), generator=gen, dtype=torch.float64) * 0.3
        w2 = torch.randn((c, c, 3, 3), generator=gen, dtype=torch.float64) * 0.3
        hint = (
            "pre-activation means normalize and apply ReLU *before* each convolution, and add "
            "x to the last convolution's output with no ReLU after the addition"
        )
        ref = _preact_reference(x, w1, w2)
        with written_by_hand(name, models, _BLOCKS, answer=preact_block):
            got = preact_block(x.clone(), w1, w2)
        compare(
            name,
            f"x {shape}",
            got,
            ref,
            hint,
            rtol=1e-10,
            atol=1e-10,
            tensor=True,
        )
    passed(name, len(cases))


def _residual_block_reference(x, w1, w2, dy):
    """y = relu(x + conv(relu(conv(x, w1)), w2)) and its gradients, by autograd in float64."""
    xt, w1t, w2t = (torch.tensor(a, requires_grad=True) for a in (x, w1, w2))
    y = F.relu(xt + F.conv2d(F.relu(F.conv2d(xt, w1t, padding=1)), w2t, padding=1))
    y.backward(torch.from_numpy(dy))
    return xt.grad.numpy(), w1t.grad.numpy(), w2t.grad.numpy()


def check_residual_block_backward(residual_block_backward: Callable, seed: int = 0) -> None:
    """``residual_block_backward(dy, x, w1, w2) -> (dx, dw1, dw2)`` against torch autograd.

    The block is y = relu(x + F(x)) with F(x) = conv(relu(conv(x, w1)), w2): x, dy
    (N, C, H, W) float64 arrays; w1, w2 (C, C, 3, 3); 3x3 convolutions with padding 1, stride 1,
    no bias, no batch norm. The answer returns the gradients of sum(y * dy), shaped like x, w1
    and w2. While it runs, ``helpers.numpy_resnet``'s block and its backward and torch's
    autograd refuse to be called; ``helpers.numpy_nn``'s layers (``conv2d``,
    ``conv2d_backward``, ``relu``, ``relu_backward``) may be used.
    """
    name = "check_residual_block_backward"
    rng = np.random.default_rng(seed)
    cases = [(2, 3, 5, 5), (1, 2, 4, 6), (3, 4, 3, 3)]
    hint = (
        "the ReLU after the addition gates BOTH paths: first ds = dy * (s > 0) with "
        "s = x + F(x); then backpropagate ds through the branch (conv w2, ReLU mask of the "
        "first convolution's output, conv w1) and add ds itself to dx for the shortcut: "
        "dx = (gradient through the branch) + ds"
    )
    for shape in cases:
        c = shape[1]
        x = rng.standard_normal(shape)
        w1 = rng.standard_normal((c, c, 3, 3)) * np.sqrt(2 / (9 * c))
        w2 = rng.standard_normal((c, c, 3, 3)) * np.sqrt(2 / (9 * c))
        dy = rng.standard_normal(shape)
        ref = _residual_block_reference(x, w1, w2, dy)
        with (
            written_by_hand(name, numpy_resnet, ("residual_block", "residual_block_backward")),
            written_by_hand(name, torch.autograd, ("backward", "grad")),
        ):
            got = residual_block_backward(dy.copy(), x.copy(), w1.copy(), w2.copy())
        case = f"x {shape}"
        if not isinstance(got, tuple | list) or len(got) != 3:
            raise fail(name, case, "expected a tuple (dx, dw1, dw2)", "return all three gradients")
        for what, ours, want in zip(("dx", "dw1", "dw2"), got, ref, strict=True):
            compare(name, case, ours, want, hint, what=what, rtol=1e-9, atol=1e-12)
    passed(name, len(cases))
