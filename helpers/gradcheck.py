"""Numerical gradients by centered differences, and the relative error used to compare them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Centered-difference gradient of the scalar ``f()`` with respect to the array ``x``.

    ``f`` takes no arguments and reads ``x`` (for example through a closure); each entry of
    ``x`` is changed in place to x + h and x - h and then restored, so ``x`` must be a float
    array that ``f`` sees. Returns an array shaped like ``x``:
    grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2h). Costs 2 * x.size calls of ``f``; use it on
    small arrays, in float64.
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"numerical_gradient: x must be a float NumPy array, got {type(x).__name__}"
            + (f" of dtype {x.dtype}" if isinstance(x, np.ndarray) else "")
        )
    if h <= 0:
        raise ValueError(f"numerical_gradient: h must be positive, got {h}")
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = float(f())
        x[i] = old - h
        minus = float(f())
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad.astype(x.dtype, copy=False)


def rel_error(a, b) -> float:
    """max |a - b| / max(1e-8, |a| + |b|), elementwise, as a Python float.

    Below about 1e-7 in float64 two gradients agree; around 1e-2 something is wrong.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
