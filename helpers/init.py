"""Weight initializers in NumPy, with the fan rule and the scales of ``torch.nn.init``.

A weight has shape (out, in, *kernel): (D_out, D_in) for a linear layer, (F, C, KH, KW) for a
convolution. Every output unit sums ``fan_in = in * prod(kernel)`` products, and every input
unit feeds ``fan_out = out * prod(kernel)`` of them. Each initializer takes that ``shape`` and
a ``numpy.random.Generator`` and returns a new float64 array of that shape, drawn i.i.d.:

=================== ======================= =========================================
function            distribution            standard deviation
=================== ======================= =========================================
``lecun_normal``    normal                  sqrt(1 / fan_in)
``xavier_normal``   normal                  gain * sqrt(2 / (fan_in + fan_out))
``xavier_uniform``  U(-a, a)                gain * sqrt(2 / (fan_in + fan_out)),
                                            a = gain * sqrt(6 / (fan_in + fan_out))
``kaiming_normal``  normal                  sqrt(2 / fan_in)   (ReLU, fan-in mode)
``kaiming_uniform`` U(-a, a)                sqrt(2 / fan_in),  a = sqrt(6 / fan_in)
=================== ======================= =========================================

A uniform distribution on [-a, a] has standard deviation a / sqrt(3), so every uniform bound
is sqrt(3) times the standard deviation it is meant to have.

``calculate_gain(nonlinearity, param)`` gives the factor g of ``torch.nn.init.calculate_gain``
that scales a standard deviation 1 / sqrt(fan) to g / sqrt(fan): 1 for linear layers and the
sigmoid, 5/3 for tanh, sqrt(2) for ReLU, sqrt(2 / (1 + a^2)) for leaky ReLU of slope a
(default 0.01), 3/4 for SELU.
"""

from __future__ import annotations

import math

import numpy as np

from helpers import validation

__all__ = [
    "calculate_gain",
    "fan_in_fan_out",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "xavier_normal",
    "xavier_uniform",
]


def _shape(shape, fn: str) -> tuple[int, ...]:
    try:
        shape = tuple(shape)
    except TypeError:
        raise ValueError(f"{fn}: shape must be a tuple of ints, got {shape!r}") from None
    if not all(isinstance(s, int | np.integer) and not isinstance(s, bool) for s in shape):
        raise ValueError(f"{fn}: shape must be a tuple of ints, got {shape!r}")
    if len(shape) < 2:
        raise ValueError(
            f"{fn}: shape must have at least 2 dimensions (out, in, *kernel), got {shape!r}"
        )
    if min(shape) < 1:
        raise ValueError(f"{fn}: every dimension of shape must be >= 1, got {shape!r}")
    return tuple(int(s) for s in shape)


def fan_in_fan_out(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel), as PyTorch computes them.

    fan_in = in * prod(kernel) and fan_out = out * prod(kernel): the kernel area multiplies
    both. A weight needs at least 2 dimensions.
    """
    shape = _shape(shape, "fan_in_fan_out")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


_LINEAR = {"linear", "identity", "sigmoid"} | {
    f"conv{t}{d}d" for t in ("", "_transpose") for d in (1, 2, 3)
}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain g of ``nonlinearity`` (a ``torch.nn.functional`` name), as ``calculate_gain``.

    A weight with standard deviation g / sqrt(fan_in) keeps the second moment of the signal
    through a layer followed by this nonlinearity: g^2 = Var(z) / E[phi(z)^2] for ReLU
    (2) and leaky ReLU (2 / (1 + a^2), a = ``param``, default 0.01). Linear layers and the
    sigmoid get 1, tanh 5/3 and SELU 3/4 (chosen values, not derived). Returns a float.
    """
    if not isinstance(nonlinearity, str):
        raise ValueError(f"calculate_gain: nonlinearity must be a string, got {nonlinearity!r}")
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 0.75
    if nonlinearity == "leaky_relu":
        if param is None:
            param = 0.01
        if isinstance(param, bool) or not isinstance(param, int | float | np.integer | np.floating):
            raise ValueError(f"calculate_gain: leaky_relu's slope must be a number, got {param!r}")
        return math.sqrt(2.0 / (1.0 + float(param) ** 2))
    known = ", ".join(sorted(_LINEAR | {"tanh", "relu", "leaky_relu", "selu"}))
    raise ValueError(
        f"calculate_gain: unknown nonlinearity {nonlinearity!r}; expected one of {known}"
    )


def lecun_normal(shape, rng: np.random.Generator) -> np.ndarray:
    """N(0, 1 / fan_in): keeps the variance of a linear layer's output equal to its input's."""
    fan_in, _ = fan_in_fan_out(_shape(shape, "lecun_normal"))
    return _normal(validation.rng(rng, "lecun_normal"), shape, math.sqrt(1.0 / fan_in))


def xavier_normal(shape, rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    """N(0, gain^2 * 2 / (fan_in + fan_out)), as ``torch.nn.init.xavier_normal_``."""
    fan_in, fan_out = fan_in_fan_out(_shape(shape, "xavier_normal"))
    gain = validation.number(gain, "gain", "xavier_normal", low=0.0, low_open=True)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _normal(validation.rng(rng, "xavier_normal"), shape, std)


def xavier_uniform(shape, rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)), as ``xavier_uniform_``."""
    fan_in, fan_out = fan_in_fan_out(_shape(shape, "xavier_uniform"))
    gain = validation.number(gain, "gain", "xavier_uniform", low=0.0, low_open=True)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _uniform(validation.rng(rng, "xavier_uniform"), shape, bound)


def kaiming_normal(shape, rng: np.random.Generator) -> np.ndarray:
    """N(0, 2 / fan_in) (He; ReLU gain, fan-in mode), as ``kaiming_normal_`` with defaults."""
    fan_in, _ = fan_in_fan_out(_shape(shape, "kaiming_normal"))
    return _normal(validation.rng(rng, "kaiming_normal"), shape, math.sqrt(2.0 / fan_in))


def kaiming_uniform(shape, rng: np.random.Generator) -> np.ndarray:
    """U(-a, a) with a = sqrt(6 / fan_in), as ``kaiming_uniform_(w, nonlinearity="relu")``."""
    fan_in, _ = fan_in_fan_out(_shape(shape, "kaiming_uniform"))
    return _uniform(validation.rng(rng, "kaiming_uniform"), shape, math.sqrt(6.0 / fan_in))


def _normal(rng: np.random.Generator, shape, std: float) -> np.ndarray:
    """float64 array of ``shape`` drawn from N(0, std^2)."""
    return rng.normal(0.0, std, size=tuple(shape))


def _uniform(rng: np.random.Generator, shape, bound: float) -> np.ndarray:
    """float64 array of ``shape`` drawn from U(-bound, bound)."""
    return rng.uniform(-bound, bound, size=tuple(shape))
