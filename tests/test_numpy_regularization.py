"""Dropout and its variants, label smoothing and calibration error in NumPy."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import numpy_regularization as reg


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics_and_inverted_scaling(p):
    rng = np.random.default_rng(0)
    x = np.full((200, 500), 2.0)
    y, mask = reg.dropout(x, p, True, rng)
    assert y.shape == mask.shape == x.shape
    assert set(np.unique(mask)) <= {0.0, 1.0}
    drop = 1 - mask.mean()
    assert abs(drop - p) < 4 * np.sqrt(p * (1 - p) / x.size)
    np.testing.assert_allclose(y[mask == 1], 2.0 / (1 - p))
    assert np.all(y[mask == 0] == 0)
    assert abs(y.mean() - 2.0) < 0.05  # E[y] = x


def test_dropout_matches_torch_statistics():
    p, shape = 0.3, (400, 400)
    ours, _ = reg.dropout(np.ones(shape), p, True, np.random.default_rng(1))
    torch.manual_seed(1)
    theirs = F.dropout(torch.ones(shape, dtype=torch.float64), p, training=True).numpy()
    assert set(np.unique(ours)) == set(np.unique(theirs)) == {0.0, 1 / (1 - p)}
    assert abs((ours == 0).mean() - (theirs == 0).mean()) < 0.01
    assert abs(ours.var() - theirs.var()) < 0.02  # variance p / (1 - p) for both


@pytest.mark.parametrize("training, p", [(False, 0.5), (True, 0.0)])
def test_dropout_identity_is_a_copy(training, p):
    x = np.arange(12.0).reshape(3, 4)
    y, mask = reg.dropout(x, p, training, None)
    np.testing.assert_array_equal(y, x)
    assert not np.shares_memory(y, x)
    assert np.all(mask == 1)


def test_dropout_backward_and_gradient():
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    y, mask = reg.dropout(x, 0.4, True, rng)
    np.testing.assert_allclose(reg.dropout_backward(dy, mask, 0.4), dy * y / np.where(x == 0, 1, x))
    xt = torch.tensor(x, requires_grad=True)
    (xt * torch.from_numpy(mask) / 0.6).backward(torch.from_numpy(dy))
    np.testing.assert_allclose(reg.dropout_backward(dy, mask, 0.4), xt.grad.numpy())


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, "a", True])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError, match=r"dropout: p must be"):
        reg.dropout(np.ones(3), p, True, np.random.default_rng(0))


def test_dropout_errors():
    with pytest.raises(ValueError, match="numpy.random.Generator"):
        reg.dropout(np.ones(3), 0.5, True, 0)
    with pytest.raises(ValueError, match=r"mask must have dy's shape \(3,\), got \(4,\)"):
        reg.dropout_backward(np.ones(3), np.ones(4), 0.5)
    with pytest.raises(ValueError, match="dropout_backward: p must be"):
        reg.dropout_backward(np.ones(3), np.ones(3), 1.0)


def test_dropout2d_matches_torch_semantics():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 32, 5, 5)) + 3.0
    y, mask = reg.dropout2d(x, 0.25, True, rng)
    assert mask.shape == (64, 32, 1, 1)
    torch.manual_seed(0)
    t = F.dropout2d(torch.from_numpy(x), 0.25, training=True).numpy()
    for out in (y, t):  # every channel is either all zero or all x / (1 - p)
        zero = np.all(out == 0, axis=(2, 3))
        scaled = np.all(np.isclose(out, x / 0.75), axis=(2, 3))
        assert np.all(zero | scaled)
        assert abs(zero.mean() - 0.25) < 0.04
    np.testing.assert_array_equal(reg.dropout2d(x, 0.25, False)[0], x)
    with pytest.raises(ValueError, match=r"x must be 4\-D"):
        reg.dropout2d(np.ones((2, 3)), 0.5, True, rng)
    with pytest.raises(ValueError, match="dropout2d: p must be"):
        reg.dropout2d(x, 1.0, True, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout2d_backward_matches_autograd(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6, 3, 5)).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    y, mask = reg.dropout2d(x, 0.4, True, rng)
    dx = reg.dropout_backward(dy, mask, 0.4)
    xt = torch.from_numpy(x).requires_grad_()
    yt = xt * torch.from_numpy(mask) / (1 - 0.4)  # the same channel mask, broadcast over H, W
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-6)
    assert dx.dtype == dtype and dx.shape == x.shape
    _, ones = reg.dropout2d(x, 0.4, False)
    np.testing.assert_array_equal(reg.dropout_backward(dy, ones, 0.4), dy / 0.6)
    with pytest.raises(ValueError, match=r"mask must have dy's shape \(4, 6, 3, 5\)"):
        reg.dropout_backward(dy, np.ones((4, 1, 1, 1)), 0.4)


def test_cross_entropy_soft_keeps_float32_and_is_stable():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    targets = np.array([[0.9, 0.05, 0.05], [1 / 3, 1 / 3, 1 / 3]])
    loss, grad = reg.cross_entropy_soft(logits, targets)
    assert grad.dtype == np.float32 and np.isfinite(loss) and np.all(np.isfinite(grad))
    ref = F.cross_entropy(torch.from_numpy(logits.astype(np.float64)), torch.from_numpy(targets))
    assert abs(loss - ref.item()) < 1e-4 * ref.item()
    with pytest.raises(ValueError, match="logits must be a float32 or float64 array"):
        reg.cross_entropy_soft(np.ones((2, 3), dtype=int), np.ones((2, 3)) / 3)


def test_module_lists_its_public_names():
    public = {n for n in vars(reg) if not n.startswith("_") and callable(getattr(reg, n))
              and getattr(getattr(reg, n), "__module__", "") == reg.__name__}
    assert set(reg.__all__) == public


def test_dropconnect_is_unbiased_and_exact_at_test_time():
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((3, 6)), rng.standard_normal((4, 6)), rng.standard_normal(4)
    y_test, mask = reg.dropconnect_linear(x, w, b, 0.5, False)
    assert mask.shape == (3, 4, 6) and np.all(mask == 1)  # all kept, as dropout's test mask
    np.testing.assert_allclose(y_test, x @ w.T + b)
    samples = np.mean([reg.dropconnect_linear(x, w, b, 0.5, True, rng)[0] for _ in range(4000)], 0)
    assert np.max(np.abs(samples - y_test)) < 0.15
    y, mask = reg.dropconnect_linear(x, w, None, 0.5, True, rng)
    assert mask.shape == (3, 4, 6)
    np.testing.assert_allclose(y[1], (w * mask[1] / 0.5) @ x[1])


def test_dropconnect_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="x has 5 features but w expects 6"):
        reg.dropconnect_linear(np.ones((2, 5)), np.ones((3, 6)), None, 0.5, True, rng)
    with pytest.raises(ValueError, match=r"b must have shape \(3,\)"):
        reg.dropconnect_linear(np.ones((2, 6)), np.ones((3, 6)), np.ones(2), 0.5, True, rng)
    with pytest.raises(ValueError, match=r"x must be 2\-D"):
        reg.dropconnect_linear(np.ones(6), np.ones((3, 6)), None, 0.5, True, rng)
    with pytest.raises(ValueError, match="p must be a finite number in"):
        reg.dropconnect_linear(np.ones((2, 6)), np.ones((3, 6)), None, -1, True, rng)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(3, 16), w=st.integers(3, 16), b=st.integers(1, 3),
       rate=st.floats(0.05, 0.5))
def test_exact_gamma_hits_the_target_fraction(h, w, b, rate):
    gamma = reg.dropblock_gamma(rate, b, h, w)
    assert abs(reg.dropblock_drop_fraction(gamma, b, h, w) - rate) < 1e-9
    assert gamma >= reg.dropblock_gamma(rate, b, h, w, exact=False) - 1e-12  # overlaps


def test_seed_counts_match_a_brute_force_count():
    h, w, b = 7, 5, 3
    counts = np.zeros((h, w))
    for i in range(h - b + 1):
        for j in range(w - b + 1):
            counts[i : i + b, j : j + b] += 1
    np.testing.assert_array_equal(reg._seed_counts(b, h, w), counts)


def test_dropblock_measured_fraction_and_blocks():
    rng = np.random.default_rng(5)
    mask = reg.dropblock_mask((200, 8, 12, 12), 0.2, 3, rng)
    assert mask.shape == (200, 8, 12, 12) and set(np.unique(mask)) <= {0.0, 1.0}
    assert abs((1 - mask.mean()) - 0.2) < 0.01
    # with a single seed the dropped region is exactly one 3x3 block
    one = reg.dropblock_mask((1, 1, 6, 6), 0.1, 3, rng, gamma=0.0)
    assert one.min() == 1.0
    paper = reg.dropblock_gamma(0.2, 3, 12, 12, exact=False)
    measured = 1 - reg.dropblock_mask((200, 8, 12, 12), 0.2, 3, rng, gamma=paper).mean()
    assert measured < 0.2 - 0.01  # overlapping blocks: the paper's rate undershoots


def test_dropblock_drops_whole_blocks():
    rng = np.random.default_rng(8)
    mask = reg.dropblock_mask((4000, 1, 9, 9), 0.1, 3, rng, gamma=0.004)
    dropped = mask[:, 0] == 0
    single = dropped[dropped.sum((1, 2)) == 9]  # maps where one seed fired
    assert len(single) > 50
    for m in single[:50]:
        rows, cols = np.nonzero(m)
        assert np.ptp(rows) == 2 and np.ptp(cols) == 2  # a 3x3 square
    assert reg.dropblock_mask((1, 1, 6, 6), 0.1, 3, rng, gamma=0.0).min() == 1.0
    assert reg.dropblock_mask((1, 1, 6, 6), 0.1, 3, rng, gamma=1.0).max() == 0.0


def test_dropblock_rescales_by_the_kept_fraction():
    rng = np.random.default_rng(6)
    x = np.ones((4, 3, 10, 10))
    y, mask = reg.dropblock(x, 0.3, 3, True, rng)
    assert y.shape == x.shape
    np.testing.assert_allclose(y.mean(), 1.0)
    np.testing.assert_allclose(y[mask == 1], mask.size / mask.sum())
    y_eval, m = reg.dropblock(x, 0.3, 3, False)
    np.testing.assert_array_equal(y_eval, x)
    assert m.min() == 1


def test_dropblock_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"1 <= block_size <= min\(H, W\) = 4"):
        reg.dropblock(np.ones((1, 1, 4, 6)), 0.1, 5, True, rng)
    with pytest.raises(ValueError, match=r"block_size must be an int"):
        reg.dropblock_gamma(0.1, 2.5, 8, 8)
    with pytest.raises(ValueError, match="drop_rate"):
        reg.dropblock_gamma(1.0, 3, 8, 8)
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\]"):
        reg.dropblock_drop_fraction(1.5, 3, 8, 8)
    with pytest.raises(ValueError, match=r"shape \(N, C, H, W\)"):
        reg.dropblock_mask((3, 8, 8), 0.1, 3, rng)
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\]"):
        reg.dropblock_mask((1, 1, 8, 8), 0.1, 3, rng, gamma=-0.1)
    with pytest.raises(ValueError, match="Generator"):
        reg.dropblock_mask((1, 1, 8, 8), 0.1, 3, None)
    with pytest.raises(ValueError, match="x must be 4-D"):
        reg.dropblock(np.ones((8, 8)), 0.1, 3, True, rng)


def test_label_smoothing_matches_torch():
    rng = np.random.default_rng(7)
    logits, y = rng.standard_normal((6, 5)), rng.integers(0, 5, 6)
    targets = reg.smooth_labels(y, 5, 0.1)
    np.testing.assert_allclose(targets.sum(1), 1.0)
    loss, grad = reg.cross_entropy_soft(logits, targets)
    lt = torch.tensor(logits, requires_grad=True)
    ref = F.cross_entropy(lt, torch.from_numpy(y), label_smoothing=0.1)
    ref.backward()
    assert abs(loss - ref.item()) < 1e-12
    np.testing.assert_allclose(grad, lt.grad.numpy(), atol=1e-12)


def test_label_smoothing_errors():
    with pytest.raises(ValueError, match="y \\(N,\\) of ints"):
        reg.smooth_labels(np.ones(3), 3, 0.1)
    with pytest.raises(ValueError, match=r"eps must be in \[0, 1\]"):
        reg.smooth_labels(np.array([0, 1]), 3, 1.5)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        reg.smooth_labels(np.array([0, 3]), 3, 0.1)
    with pytest.raises(ValueError, match="targets must have the shape of logits"):
        reg.cross_entropy_soft(np.ones((2, 3)), np.ones((2, 4)))


def test_expected_calibration_error():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 1, 0, 0])
    ece, table = reg.expected_calibration_error(probs, y, n_bins=10)
    # bin 0.9: confidence 0.9, accuracy 0.5; bin 0.6: confidence 0.6, accuracy 1.0
    assert abs(ece - (0.5 * 0.4 + 0.5 * 0.4)) < 1e-12
    assert table["count"].sum() == 4 and np.isnan(table["accuracy"][0])
    perfect = np.eye(3)[[0, 1, 2]]
    assert reg.expected_calibration_error(perfect, np.array([0, 1, 2]))[0] == 0.0
    with pytest.raises(ValueError, match=r"probs \(N, K\) and y \(N,\)"):
        reg.expected_calibration_error(probs, y[:3])
    with pytest.raises(ValueError, match="n_bins"):
        reg.expected_calibration_error(probs, y, n_bins=0)
    with pytest.raises(ValueError, match="at least one"):
        reg.expected_calibration_error(np.zeros((0, 2)), np.zeros(0, int))


def torch_focal(logits, labels, gamma, alpha=None):
    """The reference: focal loss written in torch, differentiated by autograd (float64)."""
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    y = torch.from_numpy(labels)
    log_py = F.log_softmax(z, dim=1).gather(1, y[:, None])[:, 0]
    weight = torch.ones_like(log_py) if alpha is None else torch.from_numpy(alpha)[y]
    loss = (-weight * (1 - log_py.exp()) ** gamma * log_py).mean()
    loss.backward()
    return loss.item(), z.grad.numpy()


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("use_alpha", [False, True])
def test_focal_loss_matches_autograd(gamma, use_alpha):
    rng = np.random.default_rng(int(gamma * 10) + use_alpha)
    logits, labels = rng.standard_normal((16, 7)) * 3, rng.integers(0, 7, 16)
    alpha = rng.uniform(0.1, 2.0, 7) if use_alpha else None
    loss, grad = reg.focal_loss(logits, labels, gamma, alpha)
    ref_loss, ref_grad = torch_focal(logits, labels, gamma, alpha)
    assert abs(loss - ref_loss) < 1e-12
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-14)


def test_focal_loss_with_gamma_zero_is_cross_entropy():
    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal((20, 5)) * 4, rng.integers(0, 5, 20)
    loss, grad = reg.focal_loss(logits, labels, gamma=0.0)
    ce, ce_grad = reg.cross_entropy_soft(logits, np.eye(5)[labels])
    assert abs(loss - ce) < 1e-12
    np.testing.assert_allclose(grad, ce_grad, rtol=0, atol=1e-15)
    ref = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    assert abs(loss - ref) < 1e-12


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_loss_is_finite_for_huge_logits(gamma):
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0], [0.0, 0.0, 1000.0]])
    labels = np.array([0, 0, 2])  # right and sure, wrong and sure, right and sure
    loss, grad = reg.focal_loss(logits, labels, gamma)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert abs(loss - 2000.0 / 3) < 1e-9  # only the confidently wrong row costs: -log p = 2000
    ref_loss, ref_grad = torch_focal(logits, labels, gamma)
    assert abs(loss - ref_loss) < 1e-9
    # the naive autograd form gives NaN for 0 < gamma < 1 where p_y == 1 ((1 - p)^(gamma - 1) = inf
    # times log p = 0); there the true gradient is 0. Compare where the reference is finite.
    finite = np.isfinite(ref_grad)
    np.testing.assert_allclose(grad[finite], ref_grad[finite], rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(grad[~finite], 0.0)


def test_focal_loss_keeps_float32():
    logits = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    _, grad = reg.focal_loss(logits, np.array([0, 1, 2, 0]))
    assert grad.dtype == np.float32


def test_focal_loss_errors():
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match="labels must be"):
        reg.focal_loss(logits, np.array([0, 1]))
    with pytest.raises(ValueError, match="labels must lie"):
        reg.focal_loss(logits, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match="gamma must be"):
        reg.focal_loss(logits, np.array([0, 1, 2]), gamma=-1.0)
    with pytest.raises(ValueError, match="alpha must be"):
        reg.focal_loss(logits, np.array([0, 1, 2]), alpha=np.ones(3))
    with pytest.raises(ValueError, match="alpha must be"):
        reg.focal_loss(logits, np.array([0, 1, 2]), alpha=-np.ones(4))
