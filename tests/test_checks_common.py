"""helpers.checks._common: one failure form, one tolerance rule, and the helpers-blocking guard."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from helpers import numpy_nn
from helpers.checks._common import compare, fail, passed, written_by_hand


def test_fail_reads_name_problem_case_and_hint():
    err = fail("check_x", "stride 2", "output differs", "look at the stride")
    assert isinstance(err, AssertionError)
    assert str(err) == "check_x: output differs for stride 2. Hint: look at the stride"
    assert str(fail("check_x", None, "wrong", "h")) == "check_x: wrong. Hint: h"


def test_passed_prints_the_number_of_cases(capsys):
    passed("check_x", 7)
    assert capsys.readouterr().out == "check_x: passed on 7 random cases\n"


@given(st.floats(0, 1e3), st.floats(1e-12, 1e-2), st.floats(0, 1e-6))
def test_compare_passes_exactly_within_atol_plus_rtol_times_the_scale(scale, rtol, atol):
    ref = np.array([scale, -scale / 2, 0.0])
    allowed = atol + rtol * scale
    compare("check_x", None, ref + np.array([0.0, 0.0, allowed * 0.99]), ref, "h",
            rtol=rtol, atol=atol)
    with pytest.raises(AssertionError, match="max error"):
        compare("check_x", None, ref + np.array([0.0, allowed * 1.01 + 1e-300, 0.0]), ref, "h",
                rtol=rtol, atol=atol)


def test_compare_checks_shape_nan_type_and_tensors():
    ref = np.ones((2, 3))
    with pytest.raises(AssertionError, match=r"output shape \(3, 2\), expected \(2, 3\)"):
        compare("check_x", "c", np.ones((3, 2)), ref, "h", rtol=0, atol=1)
    with pytest.raises(AssertionError, match="differs"):
        compare("check_x", "c", np.full((2, 3), math.nan), ref, "h", rtol=1, atol=1)
    with pytest.raises(AssertionError, match="not an array of numbers"):
        compare("check_x", "c", "abc", ref, "h", rtol=0, atol=1)
    with pytest.raises(AssertionError, match="expected a torch.Tensor, got ndarray"):
        compare("check_x", "c", ref, ref, "h", rtol=0, atol=0, tensor=True)
    assert compare("check_x", "c", torch.ones(2, 3), ref, "h", rtol=0, atol=0, tensor=True) == 0


def test_written_by_hand_blocks_and_restores_also_on_errors():
    original = numpy_nn.conv2d
    with written_by_hand("check_x", numpy_nn, ["conv2d"]):
        with pytest.raises(AssertionError, match="write it yourself; do not call "
                                                 "helpers.numpy_nn.conv2d"):
            numpy_nn.conv2d(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 1, 1)))
    assert numpy_nn.conv2d is original
    with pytest.raises(RuntimeError), written_by_hand("check_x", numpy_nn, ["conv2d"]):
        raise RuntimeError("the answer crashed")
    assert numpy_nn.conv2d is original
