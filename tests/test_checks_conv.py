"""Every exercise check passes on a correct answer and fails on a stub or a wrong answer."""

import numpy as np
import pytest
from conftest import stub

from helpers import checks
from helpers import numpy_nn as nn
from helpers.checks import conv as conv_checks


def _max_pool2d(x, k, s):
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return windows[:, :, ::s, ::s].max(axis=(-2, -1))


def _conv2d_im2col(x, w, b):
    n, c, _, _ = x.shape
    f, _, kh, kw = w.shape
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    h_out, w_out = windows.shape[2:4]
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h_out * w_out, c * kh * kw)
    y = cols @ w.reshape(f, -1).T + b
    return y.reshape(n, h_out, w_out, f).transpose(0, 3, 1, 2)


def _in_notebook(source: str, **names):
    """The function ``answer`` defined by ``source`` in a fresh namespace holding ``names``,
    as a notebook cell defines it in the kernel's globals."""
    namespace = {"np": np, "numpy_nn": nn, **names}
    exec(source, namespace)
    return namespace["answer"]


def test_check_max_pool2d(capsys):
    checks.check_max_pool2d(_max_pool2d)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_max_pool2d(stub)
    with pytest.raises(AssertionError, match="Hint"):
        checks.check_max_pool2d(lambda x, k, s: nn.avg_pool2d(x, k, s))
    with pytest.raises(AssertionError, match="output shape"):
        checks.check_max_pool2d(lambda x, k, s: _max_pool2d(x, k, k))


@pytest.mark.parametrize("source", [
    "def answer(x, k, s):\n    return numpy_nn.max_pool2d(x, k, s)",
    "from helpers.numpy_nn import max_pool2d\ndef answer(x, k, s):\n    return max_pool2d(x, k, s)",
    "import torch, torch.nn.functional as F\n"
    "def answer(x, k, s):\n    return F.max_pool2d(torch.from_numpy(x), k, s).numpy()",
])  # fmt: skip
def test_check_max_pool2d_refuses_the_book_and_torch(source):
    with pytest.raises(AssertionError, match="write it yourself"):
        checks.check_max_pool2d(_in_notebook(source))
    windows = np.arange(16.0).reshape(1, 1, 4, 4)
    assert nn.max_pool2d(windows, 2).shape == (1, 1, 2, 2)  # restored


def test_check_conv2d(capsys):
    checks.check_conv2d(_conv2d_im2col)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_conv2d(stub)
    with pytest.raises(AssertionError, match="relative error"):
        checks.check_conv2d(lambda x, w, b: _conv2d_im2col(x, w[:, :, ::-1, ::-1].copy(), b))


@pytest.mark.parametrize("source", [
    "def answer(x, w, b):\n    return numpy_nn.conv2d(x, w, b)",
    "from helpers.numpy_nn import conv2d\ndef answer(x, w, b):\n    return conv2d(x, w, b)",
    "def answer(x, w, b):\n    return conv2d_naive(x, w, b)",  # chapter 1's loop version
    "import torch, torch.nn.functional as F\n"
    "def answer(x, w, b):\n"
    "    return F.conv2d(*(torch.from_numpy(a) for a in (x, w, b))).numpy()",
])  # fmt: skip
def test_check_conv2d_refuses_the_book_and_the_chapters_naive_version(source):
    import torch

    with pytest.raises(AssertionError, match="write it yourself"):  # a correct conv2d_naive
        checks.check_conv2d(_in_notebook(source, conv2d_naive=_conv2d_im2col))
    x, w = np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))
    assert nn.conv2d(x, w).shape == (1, 1, 2, 2)  # restored
    assert torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w)).shape == (1, 1, 2, 2)


def test_check_receptive_field(capsys):
    def answer(layers):
        size, jump = 1, 1
        for k, s in layers:
            size, jump = size + (k - 1) * jump, jump * s
        return size

    checks.check_receptive_field(answer)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        checks.check_receptive_field(stub)
    with pytest.raises(AssertionError, match="expected"):
        checks.check_receptive_field(lambda layers: 1 + sum(k - 1 for k, _ in layers))


def test_receptive_field_reference_matches_autograd():
    """The reference formula agrees with the footprint of an output pixel's gradient."""
    import torch

    rng = np.random.default_rng(1)
    for _ in range(10):
        layers = [(int(rng.integers(1, 5)), int(rng.integers(1, 3))) for _ in range(int(rng.integers(1, 5)))]
        size = conv_checks._receptive_field_reference(layers)
        x = torch.zeros(1, 1, 4 * size + 8, 1, requires_grad=True)
        y = x
        for k, s in layers:
            y = torch.nn.functional.conv2d(y, torch.ones(1, 1, k, 1), stride=(s, 1))
        y[0, 0, 0, 0].backward()
        rows = torch.nonzero(x.grad[0, 0, :, 0]).flatten()
        assert int(rows.max() - rows.min() + 1) == size


def _dx_by_transposed_conv(dy, w, x_shape, stride, padding):
    """A correct answer by another route: PyTorch's transposed convolution."""
    import torch

    never_read = tuple((x_shape[a] + 2 * padding - w.shape[a]) % stride for a in (2, 3))
    return torch.nn.functional.conv_transpose2d(
        torch.from_numpy(dy), torch.from_numpy(w), stride=stride, padding=padding,
        output_padding=never_read,
    ).numpy()


def _dx_by_correlation(dy, w, x_shape, stride, padding, rotate=True):
    """The chapter's route: dilate, pad by K - 1, correlate with the rotated, swapped w, crop."""
    n, c_out, h_out, w_out = dy.shape
    kh, kw = w.shape[2:]
    dilated = np.zeros((n, c_out, (h_out - 1) * stride + 1, (w_out - 1) * stride + 1))
    dilated[:, :, ::stride, ::stride] = dy
    w_t = (w[:, :, ::-1, ::-1] if rotate else w).transpose(1, 0, 2, 3)
    read = nn.conv2d(nn.pad2d(dilated, (kh - 1, kw - 1)), w_t)
    full = np.zeros((n, w.shape[1], x_shape[2] + 2 * padding, x_shape[3] + 2 * padding))
    full[:, :, : read.shape[2], : read.shape[3]] = read
    return full[:, :, padding : padding + x_shape[2], padding : padding + x_shape[3]]


def test_check_conv2d_backward_dx(capsys):
    checks_conv = conv_checks.check_conv2d_backward_dx
    checks_conv(_dx_by_correlation)
    checks_conv(_dx_by_transposed_conv)
    assert capsys.readouterr().out.count("passed") == 2
    with pytest.raises(NotImplementedError):
        checks_conv(stub)
    with pytest.raises(AssertionError, match="relative error"):  # the kernel not rotated
        checks_conv(lambda dy, w, xs, s, p: _dx_by_correlation(dy, w, xs, s, p, rotate=False))
    with pytest.raises(AssertionError, match="output shape"):  # the padding not cropped
        checks_conv(lambda dy, w, xs, s, p: np.pad(_dx_by_correlation(dy, w, xs, s, p),
                                                   ((0, 0), (0, 0), (p, p), (p, p))))


def test_check_conv2d_backward_dx_refuses_numpy_nn_backward_and_restores_it():
    original = nn.conv2d_backward

    def calls_the_library(dy, w, x_shape, stride, padding):
        return nn.conv2d_backward(dy, np.zeros(x_shape), w, stride, padding)[0]

    with pytest.raises(AssertionError, match="asks you to write it yourself"):
        conv_checks.check_conv2d_backward_dx(calls_the_library)
    assert nn.conv2d_backward is original  # restored after a failure
    conv_checks.check_conv2d_backward_dx(_dx_by_correlation)
    assert nn.conv2d_backward is original  # and after a pass
    calls_the_library(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), (1, 1, 4, 4), 1, 0)
