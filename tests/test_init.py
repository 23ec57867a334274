"""helpers.init: fans as PyTorch computes them, distributions as torch.nn.init draws them."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from helpers import init

SHAPES = [(256, 128), (64, 32, 3, 3), (32, 16, 5, 5), (128, 64, 1, 1), (16, 8, 3, 3, 3)]
shapes = st.lists(st.integers(1, 9), min_size=2, max_size=5).map(tuple)


@settings(max_examples=60, deadline=None)
@given(shape=shapes)
def test_fans_match_torch(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init.fan_in_fan_out(shape) == expected


def test_the_kernel_area_multiplies_both_fans():
    assert init.fan_in_fan_out((64, 32, 3, 3)) == (32 * 9, 64 * 9)
    assert init.fan_in_fan_out((10, 20)) == (20, 10)


def expected_std(name, shape, gain=1.0):
    fan_in, fan_out = init.fan_in_fan_out(shape)
    return {
        "lecun_normal": math.sqrt(1 / fan_in),
        "xavier_normal": gain * math.sqrt(2 / (fan_in + fan_out)),
        "xavier_uniform": gain * math.sqrt(2 / (fan_in + fan_out)),
        "kaiming_normal": math.sqrt(2 / fan_in),
        "kaiming_uniform": math.sqrt(2 / fan_in),
    }[name]


def torch_init(name, shape, gain=1.0):
    torch.manual_seed(0)
    w = torch.empty(shape, dtype=torch.float64)
    if name == "lecun_normal":  # torch has no lecun: kaiming with the linear gain is N(0, 1/fan_in)
        return torch.nn.init.kaiming_normal_(w, nonlinearity="linear").numpy()
    if name.startswith("xavier"):
        return getattr(torch.nn.init, name + "_")(w, gain=gain).numpy()
    return getattr(torch.nn.init, name + "_")(w, nonlinearity="relu").numpy()


NAMES = ["lecun_normal", "xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform"]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_statistics_match_formula_and_torch(name, shape):
    gain = 5 / 3 if name.startswith("xavier") else 1.0
    kwargs = {"gain": gain} if name.startswith("xavier") else {}
    ours = getattr(init, name)(shape, np.random.default_rng(1), **kwargs)
    theirs = torch_init(name, shape, gain)
    std = expected_std(name, shape, gain)
    assert ours.shape == shape and ours.dtype == np.float64
    # >= 16k draws: the sample std is within 3% of the truth (about 5 standard errors)
    assert abs(ours.std() / std - 1) < 0.03
    assert abs(theirs.std() / std - 1) < 0.03
    assert abs(ours.mean()) < 0.05 * std
    # the same distribution: a two-sample Kolmogorov-Smirnov test does not reject it
    assert stats.ks_2samp(ours.ravel(), theirs.ravel()).pvalue > 1e-3
    if name.endswith("uniform"):
        bound = math.sqrt(3) * std
        assert np.abs(ours).max() <= bound and np.abs(ours).max() > 0.99 * bound
        assert stats.kstest(ours.ravel(), stats.uniform(-bound, 2 * bound).cdf).pvalue > 1e-3
    else:
        assert stats.kstest(ours.ravel(), stats.norm(0, std).cdf).pvalue > 1e-3


def test_xavier_uniform_bound_has_its_square_root():
    """Seed 004 prints the bound as 6 / (fan_in + fan_out); it is the square root of that."""
    w = init.xavier_uniform((100, 100), np.random.default_rng(0))
    assert np.abs(w).max() <= math.sqrt(6 / 200)
    assert np.abs(w).max() > 6 / 200


def test_same_seed_same_weights():
    a = init.kaiming_normal((8, 4, 3, 3), np.random.default_rng(3))
    b = init.kaiming_normal((8, 4, 3, 3), np.random.default_rng(3))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((10,), r"shape must have at least 2 dimensions \(out, in, \*kernel\), got \(10,\)"),
        ((10, 0), r"every dimension of shape must be >= 1, got \(10, 0\)"),
        ((10, 2.5), "shape must be a tuple of ints"),
        (7, "shape must be a tuple of ints, got 7"),
    ],
)
def test_bad_shape_raises(name, shape, message):
    with pytest.raises(ValueError, match=f"{name}: {message}"):
        getattr(init, name)(shape, np.random.default_rng(0))


def test_fan_in_fan_out_bad_shape_raises():
    with pytest.raises(ValueError, match="fan_in_fan_out: shape must have at least 2 dimensions"):
        init.fan_in_fan_out((5,))


@pytest.mark.parametrize("name", NAMES)
def test_rng_must_be_a_generator(name):
    with pytest.raises(ValueError, match=f"{name}: rng must be a numpy.random.Generator"):
        getattr(init, name)((3, 3), 0)


@pytest.mark.parametrize("name", ["xavier_normal", "xavier_uniform"])
@pytest.mark.parametrize("gain", [0.0, -1.0, float("nan"), "1", True])
def test_bad_gain_raises(name, gain):
    with pytest.raises(ValueError, match=f"{name}: gain must be"):
        getattr(init, name)((3, 3), np.random.default_rng(0), gain=gain)


GAIN_CASES = [("linear", None), ("conv2d", None), ("conv_transpose3d", None), ("sigmoid", None),
              ("tanh", None), ("relu", None), ("selu", None), ("leaky_relu", None),
              ("leaky_relu", 0.2), ("leaky_relu", 1), ("leaky_relu", 0.0)]


@pytest.mark.parametrize(("nonlinearity", "param"), GAIN_CASES)
def test_calculate_gain_matches_torch(nonlinearity, param):
    ours = init.calculate_gain(nonlinearity, param)
    assert isinstance(ours, float)
    assert ours == pytest.approx(torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-15)


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 0.5])
def test_leaky_relu_gain_keeps_the_second_moment(slope):
    """g^2 E[phi(z)^2] = Var(z): the gain undoes what the nonlinearity keeps of the signal."""
    z = np.random.default_rng(0).standard_normal(1_000_000)
    kept = np.mean(np.where(z > 0, z, slope * z) ** 2) / np.var(z)
    assert init.calculate_gain("leaky_relu", slope) ** 2 * kept == pytest.approx(1, rel=0.01)


@pytest.mark.parametrize(
    ("args", "message"),
    [(("swish",), "unknown nonlinearity 'swish'; expected one of"),
     ((3,), "nonlinearity must be a string, got 3"),
     (("leaky_relu", "0.1"), "leaky_relu's slope must be a number, got '0.1'"),
     (("leaky_relu", True), "leaky_relu's slope must be a number, got True")],
)
def test_calculate_gain_bad_arguments_raise(args, message):
    with pytest.raises(ValueError, match=f"calculate_gain: {message}"):
        init.calculate_gain(*args)
