import numpy as np
import pytest

from helpers.gradcheck import numerical_gradient, rel_error


def test_numerical_gradient_of_a_quadratic_is_exact_and_restores_x():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    x = rng.standard_normal((3, 4))
    before = x.copy()
    grad = numerical_gradient(lambda: float((a * x**2).sum()), x)
    assert np.array_equal(x, before)
    assert rel_error(grad, 2 * a * x) < 1e-8


def test_rel_error_definition():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error(np.array([0.0]), np.array([1e-9])) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: numerical_gradient(lambda: 0.0, np.zeros(3, int)), "float NumPy array"),
        (lambda: numerical_gradient(lambda: 0.0, [1.0, 2.0]), "float NumPy array"),
        (lambda: numerical_gradient(lambda: 0.0, np.zeros(3), h=0), "h must be positive"),
        (lambda: rel_error(np.zeros(3), np.zeros(4)), "shapes differ"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)
