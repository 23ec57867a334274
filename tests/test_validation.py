"""helpers.validation: one message form, "fn: name must be ..., got ...", and no silent casts."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import validation


@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(-10, 10), st.floats(0, 10),
       st.booleans(), st.booleans())
def test_number_accepts_exactly_the_finite_values_in_the_interval(value, low, width, lo, hi):
    high = low + width
    inside = (math.isfinite(value) and (value > low if lo else value >= low)
              and (value < high if hi else value <= high))
    if inside:
        assert validation.number(value, "x", "f", low=low, high=high,
                                 low_open=lo, high_open=hi) == value
    else:
        with pytest.raises(ValueError, match=r"^f: x must be a finite number in .*, got "):
            validation.number(value, "x", "f", low=low, high=high, low_open=lo, high_open=hi)


@pytest.mark.parametrize(("kwargs", "want"), [
    ({"low": 0.0}, ">= 0"), ({"low": 0.0, "low_open": True}, "> 0"),
    ({"high": 1.0, "high_open": True}, "< 1"), ({"low": 0, "high": 1, "high_open": True}, "[0, 1)"),
    ({"low": 0, "high": 1, "what": "the drop probability"}, "[0, 1] (the drop probability)"),
])
def test_number_message_names_the_interval_and_the_value(kwargs, want):
    outside = -5 if "low" in kwargs else 5
    with pytest.raises(ValueError) as err:
        validation.number(outside, "lr", "SGD", **kwargs)
    assert str(err.value).startswith("SGD: lr must be a finite number ")
    assert want in str(err.value) and "got" in str(err.value)


@pytest.mark.parametrize("bad", [True, "0.1", None, [0.1], np.array([0.1])])
def test_number_refuses_what_is_not_a_real_number(bad):
    with pytest.raises(ValueError, match="got"):
        validation.number(bad, "lr", "SGD")


def test_number_returns_python_floats_from_numpy_scalars():
    out = validation.number(np.float32(0.5), "p", "f", low=0, high=1)
    assert type(out) is float and out == 0.5


def test_integer_and_int_pair():
    assert validation.integer(np.int64(3), "n", "f", low=1) == 3
    for bad in (0, 2.0, True, "3"):
        with pytest.raises(ValueError, match=r"^f: n must be an int >= 1, got "):
            validation.integer(bad, "n", "f", low=1)
    assert validation.int_pair(2, "stride", "conv2d", low=1) == (2, 2)
    assert validation.int_pair((1, 3), "stride", "conv2d", low=1) == (1, 3)
    with pytest.raises(ValueError, match="conv2d: stride must be >= 1, got"):
        validation.int_pair((0, 1), "stride", "conv2d", low=1)
    with pytest.raises(ValueError, match="must be an int or a pair of ints"):
        validation.int_pair((1, True), "stride", "conv2d", low=1)


def test_rng_wants_a_generator():
    g = np.random.default_rng(0)
    assert validation.rng(g, "dropout") is g
    with pytest.raises(ValueError, match=r"dropout: rng must be a numpy.random.Generator .*got int"):
        validation.rng(0, "dropout")


def test_float_array_never_casts():
    a = np.zeros((2, 3), np.float32)
    assert validation.float_array(a, "x", "f", 2) is a
    assert validation.float_array([[0.5]], "x", "f", (2, 4)).dtype == np.float64
    with pytest.raises(ValueError, match="f: x must be a float32 or float64 array, got dtype int64"):
        validation.float_array(np.zeros(3, np.int64), "x", "f")
    with pytest.raises(ValueError, match=r"f: x must be 2-D or 4-D, got shape \(3,\)"):
        validation.float_array(np.zeros(3), "x", "f", (2, 4))
