"""The chapter 10 checks pass a correct answer and fail a stub, a wrong answer and a shortcut."""

import numpy as np
import pytest
from conftest import stub

from helpers import numpy_compress
from helpers.checks import compression as checks

ORIGINALS = {name: getattr(numpy_compress, name) for name in checks._HELPERS}


def run(check, good, wrong, capsys, match="Hint"):
    check(good)
    assert "passed" in capsys.readouterr().out
    with pytest.raises(NotImplementedError):
        check(stub)
    with pytest.raises(AssertionError, match=match):
        check(wrong)
    assert {name: getattr(numpy_compress, name) for name in checks._HELPERS} == ORIGINALS


def quantize(x, scale, zp, qmin, qmax):
    return np.clip(np.rint(x / scale) + zp, qmin, qmax).astype(np.int64)


def ste(dy, x, scale, zp, qmin, qmax):
    q = np.rint(x / scale) + zp
    return np.where((q >= qmin) & (q <= qmax), dy, 0.0)


def prune_mask(w, amount):
    mask = np.ones(w.size)
    mask[np.argsort(np.abs(w), axis=None)[: round(amount * w.size)]] = 0
    return mask.reshape(w.shape)


def cubic(t, s_i, s_f, t0, n, dt):
    if t < t0:
        return s_i
    j = min((t - t0) // dt, n)
    return s_f + (s_i - s_f) * (1 - j / n) ** 3


def test_check_quantize(capsys):
    def seed_003(x, scale, zp, qmin, qmax):  # q = round((x - z) / s)
        return np.clip(np.rint((x - zp) / scale), qmin, qmax).astype(np.int64)

    def half_up(x, scale, zp, qmin, qmax):
        return np.clip(np.floor(x / scale + 0.5) + zp, qmin, qmax).astype(np.int64)

    run(checks.check_quantize, quantize, seed_003, capsys)
    with pytest.raises(AssertionError, match="Hint"):
        checks.check_quantize(half_up)
    with pytest.raises(AssertionError, match="integer array"):
        checks.check_quantize(lambda *a: quantize(*a).astype(float))


def test_check_ste_backward(capsys):
    def pass_everything(dy, x, scale, zp, qmin, qmax):
        return dy

    run(checks.check_ste_backward, ste, pass_everything, capsys)


def test_check_magnitude_prune_mask(capsys):
    def signed(w, amount):  # prunes the most negative weights, not the smallest ones
        mask = np.ones(w.size)
        mask[np.argsort(w, axis=None)[: round(amount * w.size)]] = 0
        return mask.reshape(w.shape)

    run(checks.check_magnitude_prune_mask, prune_mask, signed, capsys)


def test_check_magnitude_prune_mask_refuses_truncating_the_count():
    def truncated(w, amount):  # int(amount * n) zeros instead of round(amount * n)
        mask = np.ones(w.size)
        mask[np.argsort(np.abs(w), axis=None)[: int(amount * w.size)]] = 0
        return mask.reshape(w.shape)

    with pytest.raises(AssertionError, match="Hint"):
        checks.check_magnitude_prune_mask(truncated)


def test_check_gradual_sparsity(capsys):
    def not_held(t, s_i, s_f, t0, n, dt):  # moves at every step instead of every delta_t
        if t < t0:
            return s_i
        return s_f + (s_i - s_f) * (1 - min((t - t0) / (n * dt), 1)) ** 3

    run(checks.check_gradual_sparsity, cubic, not_held, capsys)


@pytest.mark.parametrize("check, shortcut", [
    (checks.check_quantize,
     lambda x, s, z, lo, hi: numpy_compress.quantize(x, s, z, "int8")),
    (checks.check_ste_backward, lambda *a: numpy_compress.fake_quantize_backward(*a)),
    (checks.check_magnitude_prune_mask, lambda w, a: numpy_compress.magnitude_prune_mask(w, a)),
    (checks.check_gradual_sparsity, lambda *a: numpy_compress.gradual_sparsity(*a)),
])
def test_checks_refuse_the_helpers_and_restore_them(check, shortcut):
    with pytest.raises(AssertionError, match="write it yourself"):
        check(shortcut)
    assert {name: getattr(numpy_compress, name) for name in checks._HELPERS} == ORIGINALS
    # the same shortcut works outside the check: the helpers were put back
    assert numpy_compress.gradual_sparsity(0, 0.0, 0.5, 0, 1, 1) == 0.0
