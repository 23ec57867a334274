"""Neural-network layers in NumPy, forward and backward, with the semantics of torch.nn.functional.

Arrays are NCHW: ``x`` is (N, C, H, W) with N examples, C channels, H rows and W columns.
float32 in gives float32 out and float64 gives float64; inputs may be non-contiguous views.
``stride``, ``padding`` and ``kernel_size`` take an int or an (h, w) pair, so kernels and
strides may be non-square.

Everything is vectorized: a convolution lays the windows of the input out as columns
("im2col", with stride tricks) and multiplies them by the filters in one batched matrix
multiply; pooling and the backward passes loop only over the KH x KW offsets of the kernel,
each step a whole-array operation, never over pixels or examples.

Forward/backward rule: every ``*_backward`` takes the upstream gradient ``dy`` first, then the
forward's inputs, and recomputes what it needs from them (``conv2d_backward(dy, x, w, ...)``,
``relu_backward(dy, x)``); a forward returns only its output. Recomputing costs one extra
im2col at most and keeps every function free of hidden state.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from helpers import validation

__all__ = [
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "conv_output_size",
    "linear",
    "linear_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "pad2d",
    "relu",
    "relu_backward",
    "sliding_windows",
    "softmax_cross_entropy",
]


# --------------------------------------------------------------------------- validation


def _expect_shape(a: np.ndarray, shape: tuple[int, ...], name: str, fn: str) -> None:
    if a.shape != tuple(shape):
        raise ValueError(f"{fn}: {name} must have shape {tuple(shape)}, got {a.shape}")


# --------------------------------------------------------------------------- building blocks


def conv_output_size(n: int, f: int, padding: int = 0, stride: int = 1) -> int:
    """Output length of a convolution or pooling along one axis: floor((n + 2p - f) / s) + 1.

    n: input length, f: kernel length, padding p on both sides, stride s. When s does not
    divide n + 2p - f, the last positions that do not fit a whole window are dropped.
    """
    if n + 2 * padding < f:
        raise ValueError(
            f"conv_output_size: kernel {f} is larger than the padded input {n} + 2*{padding}"
        )
    if stride < 1:
        raise ValueError(f"conv_output_size: stride must be >= 1, got {stride}")
    return (n + 2 * padding - f) // stride + 1


def pad2d(x: np.ndarray, padding) -> np.ndarray:
    """Zero-pad the last two axes of x (N, C, H, W) -> (N, C, H + 2ph, W + 2pw)."""
    ph, pw = validation.int_pair(padding, "padding", "pad2d", low=0)
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def sliding_windows(x: np.ndarray, kernel_size, stride=1) -> np.ndarray:
    """All KH x KW windows of x (N, C, H, W) taken every ``stride`` pixels, without copying.

    Returns a read-only view of shape (N, C, H_out, W_out, KH, KW) with
    H_out = (H - KH) // SH + 1: ``windows[n, c, i, j]`` is ``x[n, c, i*SH:i*SH+KH, j*SW:j*SW+KW]``.
    """
    x = validation.float_array(x, "x", "sliding_windows", 4)
    kh, kw = validation.int_pair(kernel_size, "kernel_size", "sliding_windows", low=1)
    sh, sw = validation.int_pair(stride, "stride", "sliding_windows", low=1)
    if kh > x.shape[2] or kw > x.shape[3]:
        raise ValueError(
            f"sliding_windows: kernel ({kh}, {kw}) is larger than the input's "
            f"(H, W) = {x.shape[2:]} (x {x.shape})"
        )
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def _scatter_windows(cols: np.ndarray, out_shape, stride) -> np.ndarray:
    """Adjoint of sliding_windows: add cols (N, C, H_out, W_out, KH, KW) back into (N, C, H, W).

    Each input pixel receives the sum over every window position that covers it. The loop runs
    over the KH x KW kernel offsets only.
    """
    n, c, ho, wo, kh, kw = cols.shape
    sh, sw = stride
    out = np.zeros(out_shape, dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i : i + sh * ho : sh, j : j + sw * wo : sw] += cols[:, :, :, :, i, j]
    return out


# --------------------------------------------------------------------------- convolution


def _check_conv(x, w, b, stride, padding, fn):
    x = validation.float_array(x, "x", fn, 4)
    w = validation.float_array(w, "w", fn, 4)
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"{fn}: x has {x.shape[1]} channels but w expects {w.shape[1]} "
            f"(x {x.shape}, w {w.shape})"
        )
    if b is not None:
        b = validation.float_array(b, "b", fn, 1)
        if b.shape != (w.shape[0],):
            raise ValueError(
                f"{fn}: b must have shape ({w.shape[0]},), one bias per filter, got {b.shape}"
            )
    sh, sw = validation.int_pair(stride, "stride", fn, low=1)
    ph, pw = validation.int_pair(padding, "padding", fn, low=0)
    kh, kw = w.shape[2:]
    if kh > x.shape[2] + 2 * ph or kw > x.shape[3] + 2 * pw:
        raise ValueError(
            f"{fn}: kernel ({kh}, {kw}) is larger than the padded input "
            f"({x.shape[2] + 2 * ph}, {x.shape[3] + 2 * pw}) (x {x.shape}, w {w.shape}, "
            f"padding {(ph, pw)})"
        )
    return x, w, b, (sh, sw), (ph, pw)


def _im2col(xp: np.ndarray, kernel, stride) -> np.ndarray:
    """Every window of xp (N, C, H, W) as a column: returns (N, C*KH*KW, H_out*W_out).

    Rows are ordered (c, k, l) like ``w.reshape(F, -1)``, so a convolution becomes one batched
    matrix multiply. This copies the windows (KH*KW times the input's size).
    """
    windows = sliding_windows(xp, kernel, stride)  # (N, C, Ho, Wo, KH, KW), a view
    n, c, ho, wo, kh, kw = windows.shape
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, ho * wo)


def conv2d(x, w, b=None, stride=1, padding=0) -> np.ndarray:
    """2-D cross-correlation, as torch.nn.functional.conv2d.

    x: (N, C, H, W), w: (F, C, KH, KW), b: (F,) or None. Returns (N, F, H_out, W_out) with
    H_out = (H + 2*PH - KH) // SH + 1 and
    y[n, f, i, j] = b[f] + sum_{c,k,l} w[f, c, k, l] * x_pad[n, c, i*SH + k, j*SW + l].
    """
    x, w, b, stride, padding = _check_conv(x, w, b, stride, padding, "conv2d")
    dtype = np.result_type(x, w) if b is None else np.result_type(x, w, b)
    n, f = x.shape[0], w.shape[0]
    ho = (x.shape[2] + 2 * padding[0] - w.shape[2]) // stride[0] + 1
    wo = (x.shape[3] + 2 * padding[1] - w.shape[3]) // stride[1] + 1
    cols = _im2col(pad2d(x.astype(dtype, copy=False), padding), w.shape[2:], stride)
    y = np.matmul(w.reshape(f, -1).astype(dtype, copy=False), cols)  # (N, F, Ho*Wo)
    if b is not None:
        y += b.astype(dtype, copy=False)[:, None]
    return y.reshape(n, f, ho, wo)


def conv2d_backward(dy, x, w, stride=1, padding=0):
    """Gradients of conv2d: returns (dx, dw, db) for upstream gradient dy (N, F, H_out, W_out).

    dx (N, C, H, W): each input pixel sums w times dy over every output position it fed.
    dw (F, C, KH, KW): a shared weight's gradient is the sum over all positions that use it,
    dw[f, c, k, l] = sum_{n,i,j} dy[n, f, i, j] * x_pad[n, c, i*SH + k, j*SW + l].
    db (F,): dy summed over examples and positions.
    """
    x, w, _, stride, padding = _check_conv(x, w, None, stride, padding, "conv2d_backward")
    dy = validation.float_array(dy, "dy", "conv2d_backward", 4)
    dtype = np.result_type(dy, x, w)
    xp = pad2d(x.astype(dtype, copy=False), padding)
    n, c = x.shape[:2]
    f, _, kh, kw = w.shape
    ho = (xp.shape[2] - kh) // stride[0] + 1
    wo = (xp.shape[3] - kw) // stride[1] + 1
    _expect_shape(dy, (n, f, ho, wo), "dy", "conv2d_backward")
    dy_cols = dy.astype(dtype, copy=False).reshape(n, f, ho * wo)
    db = dy_cols.sum(axis=(0, 2))
    cols = _im2col(xp, (kh, kw), stride)  # (N, C*KH*KW, Ho*Wo)
    dw = np.matmul(dy_cols, cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    dcols = np.matmul(w.reshape(f, -1).T.astype(dtype, copy=False), dy_cols)  # (N, CKK, Ho*Wo)
    dcols = dcols.reshape(n, c, kh, kw, ho, wo).transpose(0, 1, 4, 5, 2, 3)
    dxp = _scatter_windows(dcols, xp.shape, stride)
    ph, pw = padding
    dx = dxp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]]
    return np.ascontiguousarray(dx), dw, db


# --------------------------------------------------------------------------- pooling


def _check_pool(x, kernel_size, stride, fn):
    x = validation.float_array(x, "x", fn, 4)
    kernel = validation.int_pair(kernel_size, "kernel_size", fn, low=1)
    stride = kernel if stride is None else validation.int_pair(stride, "stride", fn, low=1)
    if kernel[0] > x.shape[2] or kernel[1] > x.shape[3]:
        raise ValueError(
            f"{fn}: kernel {kernel} is larger than the input's (H, W) = {x.shape[2:]} "
            f"(x {x.shape})"
        )
    return x, kernel, stride


def _offset_views(x_shape, kernel, stride):
    """For each kernel offset (k, l), in row-major order, the index of the strided slice of the
    input that holds the (k, l)-th pixel of every window: ``x[index]`` is (N, C, H_out, W_out).
    """
    (kh, kw), (sh, sw) = kernel, stride
    ho = (x_shape[2] - kh) // sh + 1
    wo = (x_shape[3] - kw) // sw + 1
    return [
        (..., slice(k, k + sh * (ho - 1) + 1, sh), slice(l, l + sw * (wo - 1) + 1, sw))
        for k in range(kh)
        for l in range(kw)  # noqa: E741 - the book's name for the column offset
    ], (ho, wo)


def _pool_dy(dy, x, kernel, stride, fn):
    dy = validation.float_array(dy, "dy", fn, 4)
    views, (ho, wo) = _offset_views(x.shape, kernel, stride)
    _expect_shape(dy, (*x.shape[:2], ho, wo), "dy", fn)
    return dy, views


def max_pool2d(x, kernel_size, stride=None) -> np.ndarray:
    """Max pooling over (H, W), as torch.nn.functional.max_pool2d without padding.

    x: (N, C, H, W). Returns (N, C, H_out, W_out) with H_out = (H - KH) // SH + 1.
    stride defaults to kernel_size. Loops over the KH x KW window offsets, each step a
    vectorized maximum over every window at once.
    """
    x, kernel, stride = _check_pool(x, kernel_size, stride, "max_pool2d")
    views, _ = _offset_views(x.shape, kernel, stride)
    out = x[views[0]].copy()
    for view in views[1:]:
        np.maximum(out, x[view], out=out)
    return out


def max_pool2d_backward(dy, x, kernel_size, stride=None) -> np.ndarray:
    """Gradient of max_pool2d: dy (N, C, H_out, W_out) -> dx (N, C, H, W).

    Each window sends its gradient to the position of its maximum (the first one, in row-major
    order, on ties, as PyTorch does); overlapping windows add up.
    """
    x, kernel, stride = _check_pool(x, kernel_size, stride, "max_pool2d_backward")
    dy, views = _pool_dy(dy, x, kernel, stride, "max_pool2d_backward")
    peak = max_pool2d(x, kernel, stride)
    taken = np.zeros(peak.shape, dtype=bool)  # windows whose maximum was already found
    dx = np.zeros(x.shape, dtype=np.result_type(dy, x))
    for view in views:  # row-major offsets: the first maximum wins ties
        hit = x[view] == peak
        hit &= ~taken
        taken |= hit
        dx[view] += dy * hit
    return dx


def avg_pool2d(x, kernel_size, stride=None) -> np.ndarray:
    """Average pooling over (H, W), as torch.nn.functional.avg_pool2d without padding.

    x: (N, C, H, W). Returns (N, C, H_out, W_out) with H_out = (H - KH) // SH + 1.
    stride defaults to kernel_size.
    """
    x, kernel, stride = _check_pool(x, kernel_size, stride, "avg_pool2d")
    views, _ = _offset_views(x.shape, kernel, stride)
    out = x[views[0]].copy()
    for view in views[1:]:
        out += x[view]
    out /= len(views)
    return out


def avg_pool2d_backward(dy, x, kernel_size, stride=None) -> np.ndarray:
    """Gradient of avg_pool2d: dy (N, C, H_out, W_out) -> dx (N, C, H, W).

    Every pixel of a window receives dy / (KH * KW); overlapping windows add up.
    """
    x, kernel, stride = _check_pool(x, kernel_size, stride, "avg_pool2d_backward")
    dy, views = _pool_dy(dy, x, kernel, stride, "avg_pool2d_backward")
    dtype = np.result_type(dy, x)
    share = (dy / len(views)).astype(dtype, copy=False)
    dx = np.zeros(x.shape, dtype=dtype)
    for view in views:
        dx[view] += share
    return dx


# --------------------------------------------------------------------------- dense layers


def relu(x) -> np.ndarray:
    """max(x, 0), elementwise; any shape."""
    x = np.asarray(x)
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def relu_backward(dy, x) -> np.ndarray:
    """Gradient of relu: dy where x > 0, else 0 (torch's convention at exactly 0)."""
    dy, x = np.asarray(dy), np.asarray(x)
    if dy.shape != x.shape:
        raise ValueError(f"relu_backward: dy has shape {dy.shape} but x has shape {x.shape}")
    return np.where(x > 0, dy, 0).astype(np.result_type(dy, x), copy=False)


def linear(x, w, b=None) -> np.ndarray:
    """Fully connected layer, as torch.nn.functional.linear: y = x @ w.T + b.

    x: (N, D_in), w: (D_out, D_in), b: (D_out,) or None. Returns (N, D_out).
    """
    x = validation.float_array(x, "x", "linear", 2)
    w = validation.float_array(w, "w", "linear", 2)
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"linear: x has {x.shape[1]} features but w expects {w.shape[1]} "
            f"(x {x.shape}, w {w.shape})"
        )
    y = x @ w.T
    if b is not None:
        b = validation.float_array(b, "b", "linear", 1)
        _expect_shape(b, (w.shape[0],), "b", "linear")
        y = y + b
    return y


def linear_backward(dy, x, w):
    """Gradients of linear: dy (N, D_out) -> (dx (N, D_in), dw (D_out, D_in), db (D_out,))."""
    x = validation.float_array(x, "x", "linear_backward", 2)
    w = validation.float_array(w, "w", "linear_backward", 2)
    dy = validation.float_array(dy, "dy", "linear_backward", 2)
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"linear_backward: x has {x.shape[1]} features but w expects {w.shape[1]} "
            f"(x {x.shape}, w {w.shape})"
        )
    _expect_shape(dy, (x.shape[0], w.shape[0]), "dy", "linear_backward")
    return dy @ w, dy.T @ x, dy.sum(axis=0)


def log_softmax(logits) -> np.ndarray:
    """log softmax over the last axis, in the dtype of ``logits`` (float32 stays float32).

    logits: (..., K) float. Stable for logits of any size: the row maximum is subtracted
    before exponentiating, so ``log_softmax([1000, 0])`` is ``[0, -1000]``, not NaN.
    """
    logits = validation.float_array(logits, "logits", "log_softmax")
    if logits.ndim < 1 or logits.shape[-1] == 0:
        raise ValueError(f"log_softmax: logits must be (..., K) with K >= 1, got {logits.shape}")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_cross_entropy(logits, y):
    """Mean softmax cross-entropy and its gradient, as torch.nn.functional.cross_entropy.

    logits: (N, K) float, y: (N,) integer class indices in [0, K). Returns (loss, dlogits):
    loss a Python float, dlogits (N, K) = (softmax(logits) - onehot(y)) / N. Stable for
    logits in the hundreds (the row maximum is subtracted before exponentiating).
    """
    logits = validation.float_array(logits, "logits", "softmax_cross_entropy", 2)
    y = np.asarray(y)
    if y.shape != (logits.shape[0],):
        raise ValueError(
            f"softmax_cross_entropy: y must have shape ({logits.shape[0]},), one label per "
            f"row of logits {logits.shape}, got {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"softmax_cross_entropy: y must hold integer labels, got {y.dtype}")
    n, k = logits.shape
    if n and (y.min() < 0 or y.max() >= k):
        raise ValueError(
            f"softmax_cross_entropy: labels must lie in [0, {k}), got [{y.min()}, {y.max()}]"
        )
    log_probs = log_softmax(logits)
    rows = np.arange(n)
    loss = -log_probs[rows, y].mean()
    dlogits = np.exp(log_probs)
    dlogits[rows, y] -= 1
    return float(loss), dlogits / n
