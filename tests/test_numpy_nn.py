"""helpers.numpy_nn against torch.nn.functional (float64), numerical gradients, and bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import numpy_nn as nn
from helpers.gradcheck import numerical_gradient, rel_error

TOL = 1e-9
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


@st.composite
def conv_cases(draw):
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, 3))
    f = draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 9))
    w = draw(st.integers(max(1, kw - 2 * pw), 9))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, c, h, w)),
        rng.standard_normal((f, c, kh, kw)),
        rng.standard_normal(f),
        (sh, sw),
        (ph, pw),
    )


@FAST
@given(conv_cases())
def test_conv2d_forward_and_backward_match_torch(case):
    x, w, b, stride, padding = case
    xt, wt, bt = t(x, True), t(w, True), t(b, True)
    yt = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
    y = nn.conv2d(x, w, b, stride=stride, padding=padding)
    assert y.shape == tuple(yt.shape)
    assert rel_error(y, yt.detach().numpy()) <= TOL
    dy = np.random.default_rng(1).standard_normal(y.shape)
    yt.backward(t(dy))
    dx, dw, db = nn.conv2d_backward(dy, x, w, stride=stride, padding=padding)
    assert rel_error(dx, xt.grad.numpy()) <= TOL
    assert rel_error(dw, wt.grad.numpy()) <= TOL
    assert rel_error(db, bt.grad.numpy()) <= TOL


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    h, w = draw(st.integers(kh, 9)), draw(st.integers(kw, 9))
    seed = draw(st.integers(0, 2**16))
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w))
    return x, (kh, kw), stride


@FAST
@given(pool_cases())
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_matches_torch(kind, case):
    x, kernel, stride = case
    ours, ours_back = {
        "max": (nn.max_pool2d, nn.max_pool2d_backward),
        "avg": (nn.avg_pool2d, nn.avg_pool2d_backward),
    }[kind]
    theirs = {"max": F.max_pool2d, "avg": F.avg_pool2d}[kind]
    xt = t(x, True)
    yt = theirs(xt, kernel, stride)
    y = ours(x, kernel, stride)
    assert rel_error(y, yt.detach().numpy()) <= TOL
    dy = np.random.default_rng(2).standard_normal(y.shape)
    yt.backward(t(dy))
    assert rel_error(ours_back(dy, x, kernel, stride), xt.grad.numpy()) <= TOL


def test_max_pool_ties_go_to_the_first_maximum_like_torch():
    x = np.zeros((1, 1, 4, 4))
    dy = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    xt = t(x, True)
    F.max_pool2d(xt, 2).backward(t(dy))
    assert np.array_equal(nn.max_pool2d_backward(dy, x, 2), xt.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_matches_torch_keeps_dtype_and_is_stable(dtype):
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((3, 4, 7)) * 50).astype(dtype)
    logits[0, 0] = [1000, -1000, 0, 0, 0, 0, 0]
    ours = nn.log_softmax(logits)
    assert ours.dtype == dtype and np.all(np.isfinite(ours))
    ref = torch.log_softmax(torch.from_numpy(logits.astype(np.float64)), dim=-1).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-4 if dtype == np.float32 else 1e-12)
    with pytest.raises(ValueError, match="log_softmax: logits must be"):
        nn.log_softmax(np.zeros((2, 0)))


def test_softmax_cross_entropy_matches_torch_and_is_stable():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((7, 5)) * 300  # logits in the hundreds
    y = rng.integers(0, 5, size=7)
    lt = t(logits, True)
    lossT = F.cross_entropy(lt, torch.tensor(y))
    lossT.backward()
    loss, dlogits = nn.softmax_cross_entropy(logits, y)
    assert isinstance(loss, float) and np.isfinite(loss)
    assert abs(loss - lossT.item()) <= TOL * max(1.0, abs(loss))
    assert rel_error(dlogits, lt.grad.numpy()) <= TOL


def test_linear_and_relu_match_torch():
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((4, 6)), rng.standard_normal((3, 6)), rng.standard_normal(3)
    xt, wt, bt = t(x, True), t(w, True), t(b, True)
    yt = F.relu(F.linear(xt, wt, bt))
    y = nn.relu(nn.linear(x, w, b))
    assert rel_error(y, yt.detach().numpy()) <= TOL
    dy = rng.standard_normal(y.shape)
    yt.backward(t(dy))
    z = nn.linear(x, w, b)
    dx, dw, db = nn.linear_backward(nn.relu_backward(dy, z), x, w)
    for ours, theirs in [(dx, xt), (dw, wt), (db, bt)]:
        assert rel_error(ours, theirs.grad.numpy()) <= TOL


def test_conv2d_backward_passes_a_numerical_gradient_check():
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3)
    dy = rng.standard_normal(nn.conv2d(x, w, b, stride=(2, 1), padding=1).shape)

    def loss():
        return float((nn.conv2d(x, w, b, stride=(2, 1), padding=1) * dy).sum())

    dx, dw, db = nn.conv2d_backward(dy, x, w, stride=(2, 1), padding=1)
    assert rel_error(dx, numerical_gradient(loss, x)) < 1e-7
    assert rel_error(dw, numerical_gradient(loss, w)) < 1e-7
    assert rel_error(db, numerical_gradient(loss, b)) < 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_are_kept(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6, 6)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    y = nn.conv2d(x, w, np.zeros(4, dtype), padding=1)
    assert y.dtype == dtype
    assert all(g.dtype == dtype for g in nn.conv2d_backward(y, x, w, padding=1))
    assert nn.max_pool2d(x, 2).dtype == dtype and nn.avg_pool2d(x, 2).dtype == dtype
    assert nn.max_pool2d_backward(nn.max_pool2d(x, 2), x, 2).dtype == dtype
    assert nn.avg_pool2d_backward(nn.avg_pool2d(x, 2), x, 2).dtype == dtype


def test_float32_conv_matches_torch_to_float32_precision():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 10, 10)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
    assert np.allclose(nn.conv2d(x, w, padding=1), ref, atol=1e-4)


def test_non_contiguous_views_are_accepted():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 8, 8)).transpose(0, 1, 3, 2)[:, ::2]  # strided view
    w = rng.standard_normal((2, 3, 3, 3))[:, :, ::-1]
    w = w[:, :2]
    ref = F.conv2d(t(np.ascontiguousarray(x)), t(np.ascontiguousarray(w))).numpy()
    assert rel_error(nn.conv2d(x, w), ref) <= TOL


def test_output_size_formula_matches_torch_over_a_sweep():
    for n in range(3, 12):
        for f in range(1, 5):
            for p in range(3):
                for s in range(1, 4):
                    if f > n + 2 * p:
                        continue
                    out = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, f, f), stride=s, padding=p)
                    assert nn.conv_output_size(n, f, p, s) == out.shape[-1]


def test_sliding_windows_is_a_view_with_the_documented_layout():
    x = np.arange(2 * 1 * 5 * 6, dtype=float).reshape(2, 1, 5, 6)
    win = nn.sliding_windows(x, (2, 3), (2, 1))
    assert win.shape == (2, 1, 2, 4, 2, 3)
    assert np.shares_memory(win, x)
    assert np.array_equal(win[1, 0, 1, 2], x[1, 0, 2:4, 2:5])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: nn.conv2d(np.zeros((3, 8, 8)), np.zeros((2, 3, 3, 3))), "x must be 4-D"),
        (lambda: nn.conv2d(np.zeros((1, 3, 8, 8)), np.zeros((2, 4, 3, 3))), "x has 3 channels but w expects 4"),
        (lambda: nn.conv2d(np.zeros((1, 3, 4, 4)), np.zeros((2, 3, 7, 3))), "larger than the padded input"),
        (lambda: nn.conv2d(np.zeros((1, 3, 4, 4)), np.zeros((2, 3, 3, 3)), np.zeros(3)), "one bias per filter"),
        (lambda: nn.conv2d(np.zeros((1, 3, 4, 4)), np.zeros((2, 3, 3, 3)), stride=0), "stride must be >= 1"),
        (lambda: nn.conv2d(np.zeros((1, 3, 4, 4)), np.zeros((2, 3, 3, 3)), padding=-1), "padding must be >= 0"),
        (lambda: nn.conv2d(np.zeros((1, 3, 4, 4), int), np.zeros((2, 3, 3, 3))), "float32 or float64"),
        (lambda: nn.conv2d(np.zeros((1, 3, 4, 4)), np.zeros((2, 3, 3, 3)), stride=(1, 2, 3)), "pair of ints"),
        (lambda: nn.conv2d_backward(np.zeros((1, 2, 3, 3)), np.zeros((1, 3, 4, 4)), np.zeros((2, 3, 3, 3))), "dy must have shape (1, 2, 2, 2)"),
        (lambda: nn.max_pool2d(np.zeros((1, 1, 2, 2)), 3), "larger than the input"),
        (lambda: nn.max_pool2d_backward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)), 2), "dy must have shape (1, 1, 1, 1)"),
        (lambda: nn.avg_pool2d(np.zeros((1, 2, 2)), 2), "x must be 4-D"),
        (lambda: nn.avg_pool2d_backward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 4, 4)), 2), "dy must have shape (1, 1, 2, 2)"),
        (lambda: nn.sliding_windows(np.zeros((1, 1, 2, 2)), 3), "larger than the input"),
        (lambda: nn.softmax_cross_entropy(np.zeros((3, 4)), np.zeros(2, int)), "y must have shape (3,)"),
        (lambda: nn.softmax_cross_entropy(np.zeros((3, 4)), np.array([0, 1, 4])), "labels must lie in [0, 4)"),
        (lambda: nn.softmax_cross_entropy(np.zeros((3, 4)), np.zeros(3)), "integer labels"),
        (lambda: nn.linear(np.zeros((2, 5)), np.zeros((3, 4))), "x has 5 features but w expects 4"),
        (lambda: nn.linear(np.zeros((2, 4)), np.zeros((3, 4)), np.zeros(2)), "b must have shape (3,)"),
        (lambda: nn.linear_backward(np.zeros((2, 2)), np.zeros((2, 4)), np.zeros((3, 4))), "dy must have shape (2, 3)"),
        (lambda: nn.linear_backward(np.zeros((2, 3)), np.zeros((2, 5)), np.zeros((3, 4))), "x has 5 features"),
        (lambda: nn.relu_backward(np.zeros(3), np.zeros(4)), "relu_backward: dy has shape"),
        (lambda: nn.conv_output_size(3, 6, 1, 1), "larger than the padded input"),
        (lambda: nn.conv_output_size(8, 3, 1, 0), "stride must be >= 1"),
        (lambda: nn.pad2d(np.zeros((1, 1, 2, 2)), -1), "padding must be >= 0"),
    ],
)
def test_bad_input_raises_value_error_naming_what_was_expected(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)


def test_each_name_has_one_home():
    """numpy_nn holds its own layers only: normalization lives in numpy_norm, dropout in
    numpy_regularization, and neither is importable from here."""
    assert set(nn.__all__) <= set(dir(nn))
    for name in ("batch_norm", "group_norm", "dropout"):
        assert not hasattr(nn, name), f"numpy_nn.{name} is an alias"
