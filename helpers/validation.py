"""Argument checks shared by the NumPy modules, with one message form.

Every check takes the value, the argument's ``name`` and the calling function's name ``fn``,
and either returns the value in a normal form (a Python ``float`` or ``int``, an ndarray) or
raises ``ValueError("fn: name must be <what was expected>, got <what came>")``::

    >>> number(-0.1, "lr", "SGD", low=0.0)
    Traceback (most recent call last):
    ValueError: SGD: lr must be a finite number >= 0, got -0.1

Arrays are never cast: an integer array where a float one is expected is an error, because a
silent cast hides a bug in the caller (``x // 2`` instead of ``x / 2``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["float_array", "integer", "number", "int_pair", "rng"]


def _interval(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""


def number(value, name: str, fn: str, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, what: str = "") -> float:
    """``value`` as a float, if it is a finite real number (not a bool) within the bounds.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``; ``what`` adds a short
    meaning to the message, e.g. ``what="the drop probability"``.
    """
    interval = _interval(low, high, low_open, high_open)
    want = f"a finite number {interval}".rstrip() + (f" ({what})" if what else "")
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{fn}: {name} must be {want}, got {value!r}")
    v = float(value)
    bad = not math.isfinite(v)
    if low is not None:
        bad |= v <= low if low_open else v < low
    if high is not None:
        bad |= v >= high if high_open else v > high
    if bad:
        raise ValueError(f"{fn}: {name} must be {want}, got {value!r}")
    return v


def integer(value, name: str, fn: str, *, low: int | None = None) -> int:
    """``value`` as an int, if it is an integer (not a bool) >= ``low``."""
    want = "an int" + (f" >= {low}" if low is not None else "")
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{fn}: {name} must be {want}, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{fn}: {name} must be {want}, got {value!r}")
    return int(value)


def int_pair(value, name: str, fn: str, *, low: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``low``, as a pair (kernel sizes, strides, padding)."""
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or not all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < low:
        raise ValueError(f"{fn}: {name} must be >= {low}, got {value!r}")
    return int(pair[0]), int(pair[1])


def rng(value, fn: str, name: str = "rng") -> np.random.Generator:
    """``value`` if it is a ``numpy.random.Generator``."""
    if not isinstance(value, np.random.Generator):
        raise ValueError(
            f"{fn}: {name} must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(value).__name__}"
        )
    return value


def float_array(a, name: str, fn: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """``a`` as a float ndarray (float16/32/64, never cast) with ``ndim`` dimensions if given.

    Lists of Python floats are accepted (they become float64); integer arrays are not.
    """
    a = np.asarray(a)
    if ndim is not None:
        ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in ndims:
            want = " or ".join(f"{d}-D" for d in ndims)
            raise ValueError(f"{fn}: {name} must be {want}, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{fn}: {name} must be a float32 or float64 array, got dtype {a.dtype}")
    return a
