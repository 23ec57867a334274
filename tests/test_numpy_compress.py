"""helpers.numpy_compress against PyTorch's observers, quantizers and pruning utilities."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.ao.quantization.observer import MinMaxObserver
from torch.nn.utils import prune

from helpers import numpy_compress as nc

SHAPES = [(7,), (3, 5), (4, 3, 3, 3), (8, 2, 5)]
TORCH_DTYPES = {"int8": torch.qint8, "uint8": torch.quint8}


def test_qrange_table():
    assert nc.qrange("int8") == (-128, 127)
    assert nc.qrange("uint8") == (0, 255)
    assert nc.qrange("int4") == (-8, 7)
    assert nc.qrange("uint4") == (0, 15)


def observer(dtype, symmetric):
    qmin, qmax = nc.qrange(dtype)
    tdtype = torch.qint8 if qmin < 0 else torch.quint8
    scheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
    if dtype.endswith("8"):
        return MinMaxObserver(dtype=tdtype, qscheme=scheme)
    return MinMaxObserver(dtype=tdtype, qscheme=scheme, quant_min=qmin, quant_max=qmax)


@settings(max_examples=60, deadline=None)
@given(lo=st.floats(-50, 50), width=st.floats(0, 80), dtype=st.sampled_from(["int8", "uint8", "int4", "uint4"]),
       symmetric=st.booleans())
def test_choose_qparams_matches_min_max_observer(lo, width, dtype, symmetric):
    x = torch.tensor([lo, lo + width], dtype=torch.float32)
    obs = observer(dtype, symmetric)
    obs(x)
    scale, zp = obs.calculate_qparams()
    ours = nc.choose_qparams(float(x.min()), float(x.max()), dtype, symmetric)
    assert ours[0] == pytest.approx(float(scale), rel=1e-6)
    assert ours[1] == int(zp)


def test_choose_qparams_constant_zero_has_eps_scale():
    scale, zp = nc.choose_qparams(0.0, 0.0, "uint8")
    assert scale == float(np.finfo(np.float32).eps) and zp == 0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_quantize_matches_quantize_per_tensor(shape, dtype):
    rng = np.random.default_rng(len(shape))
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    scale, zp = nc.choose_qparams(float(x.min()) * 0.8, float(x.max()) * 0.8, dtype)  # some clipping
    ref = torch.quantize_per_tensor(torch.from_numpy(x), scale, zp, TORCH_DTYPES[dtype]).int_repr()
    q = nc.quantize(x, scale, zp, dtype)
    assert q.dtype == np.int64 and np.array_equal(q, ref.numpy().astype(np.int64))
    back = torch.quantize_per_tensor(torch.from_numpy(x), scale, zp, TORCH_DTYPES[dtype]).dequantize()
    assert np.allclose(nc.dequantize(q, scale, zp), back.numpy(), rtol=0, atol=1e-6)


def test_quantize_rounds_half_to_even():
    assert nc.quantize(np.array([0.5, 1.5, 2.5, -0.5]), 1.0, 0, "int8").tolist() == [0, 2, 2, 0]


def test_dequantize_inverts_quantize_within_half_a_step():
    x = np.linspace(-1, 1, 101, dtype=np.float32)
    scale, zp = nc.choose_qparams(-1, 1, "uint8")
    err = np.abs(nc.dequantize(nc.quantize(x, scale, zp, "uint8"), scale, zp) - x)
    assert err.max() <= scale / 2 + 1e-7


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), scale=st.floats(0.01, 2), zp=st.integers(-8, 7), spread=st.floats(0.1, 30),
       seed=st.integers(0, 1000))
def test_fake_quantize_and_ste_match_torch(n, scale, zp, spread, seed):
    qmin, qmax = -8, 7
    x = (np.random.default_rng(seed).standard_normal(n) * spread).astype(np.float32)
    dy = np.random.default_rng(seed + 1).standard_normal(n).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    y = torch.fake_quantize_per_tensor_affine(xt, scale, zp, qmin, qmax)
    y.backward(torch.from_numpy(dy))
    assert np.allclose(nc.fake_quantize(x, scale, zp, qmin, qmax), y.detach().numpy(), rtol=0, atol=1e-6)
    assert np.array_equal(nc.fake_quantize_backward(dy, x, scale, zp, qmin, qmax), xt.grad.numpy())


@pytest.mark.parametrize("shape", SHAPES)
def test_fake_quantize_8_bit_shapes(shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32) * 4
    y = torch.fake_quantize_per_tensor_affine(torch.from_numpy(x), 0.03, 128, 0, 255)
    assert np.allclose(nc.fake_quantize(x, 0.03, 128, 0, 255), y.numpy(), atol=1e-6)


def weight_module(w):
    m = nn.Linear(1, 1, bias=False)
    m.weight = nn.Parameter(torch.from_numpy(w))
    return m


@settings(max_examples=40, deadline=None)
@given(shape=st.sampled_from(SHAPES), amount=st.floats(0, 1), seed=st.integers(0, 10_000))
def test_magnitude_prune_mask_matches_l1_unstructured(shape, amount, seed):
    w = np.random.default_rng(seed).standard_normal(shape)
    m = prune.l1_unstructured(weight_module(w), "weight", amount)
    assert np.array_equal(nc.magnitude_prune_mask(w, amount), m.weight_mask.numpy())


@pytest.mark.parametrize("amount", [0.0, 0.1, 0.5, 0.73, 1.0])
def test_global_masks_match_global_unstructured(amount):
    rng = np.random.default_rng(3)
    ws = [rng.standard_normal(s) * k for k, s in enumerate([(4, 3, 3, 3), (6, 4), (9,)], start=1)]
    mods = [weight_module(w.copy()) for w in ws]
    prune.global_unstructured([(m, "weight") for m in mods], prune.L1Unstructured, amount=amount)
    ours = nc.global_magnitude_prune_masks(ws, amount)
    for o, m in zip(ours, mods, strict=True):
        assert np.array_equal(o, m.weight_mask.numpy())
    assert sum(int((o == 0).sum()) for o in ours) == round(amount * sum(w.size for w in ws))


@settings(max_examples=40, deadline=None)
@given(shape=st.sampled_from(SHAPES[1:]), amount=st.floats(0, 1), seed=st.integers(0, 10_000),
       dim=st.integers(-2, 1))
def test_structured_prune_mask_matches_ln_structured(shape, amount, seed, dim):
    w = np.random.default_rng(seed).standard_normal(shape)
    m = prune.ln_structured(weight_module(w), "weight", amount, n=1, dim=dim)
    assert np.array_equal(nc.structured_prune_mask(w, amount, dim), m.weight_mask.numpy())


def test_gradual_sparsity_schedule():
    args = dict(s_initial=0.0, s_final=0.8, t0=10, n=4, delta_t=5)
    assert nc.gradual_sparsity(0, **args) == 0.0
    assert nc.gradual_sparsity(10, **args) == 0.0
    assert nc.gradual_sparsity(15, **args) == pytest.approx(0.8 - 0.8 * 0.75**3)
    assert nc.gradual_sparsity(19, **args) == nc.gradual_sparsity(15, **args)  # held between updates
    assert nc.gradual_sparsity(30, **args) == pytest.approx(0.8)
    assert nc.gradual_sparsity(1000, **args) == pytest.approx(0.8)
    values = [nc.gradual_sparsity(t, **args) for t in range(40)]
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize("call, match", [
    (lambda: nc.qrange("int16"), "dtype"),
    (lambda: nc.choose_qparams(1.0, -1.0), "x_min must be <= x_max"),
    (lambda: nc.choose_qparams(0.0, float("nan")), "finite"),
    (lambda: nc.quantize(np.ones(2), 0.0, 0, "int8"), "scale must be a finite number > 0"),
    (lambda: nc.quantize(np.ones(2), 1.0, 300, "uint8"), r"zero_point must be in \[0, 255\]"),
    (lambda: nc.quantize(np.ones(2), 1.0, 0, "int2"), "dtype"),
    (lambda: nc.dequantize(np.ones(2, dtype=int), -1.0, 0), "scale must be a finite number > 0"),
    (lambda: nc.dequantize(np.ones(2), 1.0, 0), "integer"),
    (lambda: nc.fake_quantize(np.ones(2), 1.0, 0, 5, 5), "qmin must be < qmax"),
    (lambda: nc.fake_quantize_backward(np.ones(3), np.ones(2), 1.0, 0, 0, 255), "shape"),
    (lambda: nc.magnitude_prune_mask(np.ones(3), 1.5), r"\[0, 1\]"),
    (lambda: nc.magnitude_prune_mask(np.ones(3), -0.1), "got -0.1"),
    (lambda: nc.global_magnitude_prune_masks([], 0.5), "at least one"),
    (lambda: nc.structured_prune_mask(np.ones((2, 3)), 0.5, dim=2), "dim"),
    (lambda: nc.gradual_sparsity(0, 0.0, 1.2, 0, 1, 1), "s_final"),
    (lambda: nc.gradual_sparsity(0, 0.0, 0.5, 0, 0, 1), "n must be an int >= 1"),
    (lambda: nc.gradual_sparsity(0, 0.0, 0.5, 0, 2, 1.5), "delta_t must be an int"),
    (lambda: nc.quantize(np.ones(2), 1.0, 0.5, "int8"), "zero_point must be an int"),
    (lambda: nc.fake_quantize(np.ones(2), float("inf"), 0, 0, 255), "scale must be a finite"),
    (lambda: nc.magnitude_prune_mask(np.ones(3), True), "amount must be"),
    (lambda: nc.structured_prune_mask(np.ones((2, 3)), 0.5, dim=0.0), "dim must be an int"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match) as error:
        call()
    assert " must " in str(error.value) and "got " in str(error.value)
