"""Optimizers in NumPy with the update rules, defaults and state of ``torch.optim``.

``params`` is a list of float NumPy arrays; ``opt.step(grads)`` takes a list of gradients of
the same shapes (in the same order) and updates the arrays *in place*, as ``torch.optim``
updates tensors. ``opt.lr`` may be changed between steps (that is what a schedule does);
``opt.t`` counts the steps taken. Every optimizer here follows PyTorch's single-tensor code
path operation for operation, so in float64 it matches ``torch.optim`` to rounding error.

With g the gradient, p a parameter, eta the learning rate and lambda the weight decay:

- ``SGD``: g <- g + lambda p; v <- m v + (1 - dampening) g (v = g at the first step);
  with Nesterov d = g + m v, else d = v; p <- p - eta d.
- ``Adagrad``: g <- g + lambda p; s <- s + g^2; p <- p - eta g / (sqrt(s) + eps).
- ``RMSprop``: g <- g + lambda p; s <- alpha s + (1 - alpha) g^2;
  u = g / (sqrt(s) + eps); with momentum b <- m b + u (b starts at 0) and p <- p - eta b,
  else p <- p - eta u.
- ``Adam``: g <- g + lambda p (L2 in the gradient); m <- b1 m + (1 - b1) g;
  v <- b2 v + (1 - b2) g^2; p <- p - eta/(1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps).
- ``AdamW``: p <- p (1 - eta lambda) (decoupled decay), then Adam's step without L2.
- ``AdaBelief`` (Zhuang et al. 2020, Algorithm 2): p <- p (1 - eta lambda); m <- b1 m + (1 - b1) g;
  s <- b2 s + (1 - b2) (g - m)^2 + eps; p <- p - eta/(1 - b1^t) * m / (sqrt(s / (1 - b2^t)) + eps).

Gradient clipping and iterate averaging, as plain functions and one small class:

- ``clip_grad_value(grads, clip_value)``: every entry clipped to [-c, c] (torch's
  ``clip_grad_value_``).
- ``clip_grad_norm(grads, max_norm)``: all gradients scaled by one factor so that their joint L2
  norm is at most ``max_norm``; returns the clipped list and the norm before clipping.
- ``adaptive_clip_grad(params, grads, clip_factor, eps)``: unit-wise adaptive gradient clipping
  (Brock et al. 2021): a unit's gradient is rescaled to norm clip_factor * max(||p||, eps) when
  it is longer than that.
- ``IterateAverage(params, beta=None)``: the running mean of the iterates (Polyak averaging,
  a_t = a_{t-1} + (p_t - a_{t-1}) / t) or, with ``beta``, their exponential moving average.

The learning-rate schedules live in ``helpers.schedules``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from helpers import validation

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdaBelief",
    "AdamW",
    "IterateAverage",
    "Optimizer",
    "RMSprop",
    "adaptive_clip_grad",
    "clip_grad_norm",
    "clip_grad_value",
]


class Optimizer:
    """Base class: holds ``params``, ``lr``, the step count ``t`` and per-parameter state.

    Subclasses implement ``_update(i, p, g)``, which changes ``p`` in place.
    """

    def __init__(self, params: Sequence[np.ndarray], lr: float):
        name = type(self).__name__
        if isinstance(params, np.ndarray | str) or not isinstance(params, Sequence):
            raise ValueError(
                f"{name}: params must be a list of NumPy arrays, got {type(params).__name__}"
            )
        if not params:
            raise ValueError(f"{name}: params is empty; expected at least one array")
        for i, p in enumerate(params):
            if not isinstance(p, np.ndarray) or not np.issubdtype(p.dtype, np.floating):
                kind = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
                raise ValueError(
                    f"{name}: params[{i}] must be a float NumPy array (updated in place), "
                    f"got {kind}"
                )
            if not p.flags.writeable:
                raise ValueError(f"{name}: params[{i}] is read-only; it is updated in place")
        self.params = list(params)
        self.lr = lr
        self.t = 0
        self.state: list[dict[str, np.ndarray]] = [{} for _ in self.params]

    @property
    def lr(self) -> float:
        """The learning rate used by the next ``step`` (a float >= 0; may be changed)."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = validation.number(value, "lr", type(self).__name__, low=0.0)

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """Update every parameter in place from ``grads`` (one array per parameter, same shape)."""
        name = type(self).__name__
        if isinstance(grads, np.ndarray | str) or not isinstance(grads, Sequence):
            raise ValueError(f"{name}.step: grads must be a list of arrays, got "
                             f"{type(grads).__name__}")
        if len(grads) != len(self.params):
            raise ValueError(f"{name}.step: got {len(grads)} gradients for "
                             f"{len(self.params)} parameters")
        grads = [np.asarray(g) for g in grads]
        for i, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            if g.shape != p.shape:
                raise ValueError(f"{name}.step: grads[{i}] has shape {g.shape} but params[{i}] "
                                 f"has shape {p.shape}")
        self.t += 1
        for i, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            self._update(i, p, g.astype(p.dtype, copy=False))

    def _update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay.

    As ``torch.optim.SGD``: the velocity v <- m v + (1 - dampening) g is *not* scaled by the
    learning rate; the step is p <- p - lr * v. Nesterov needs momentum > 0 and no dampening.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.momentum = validation.number(momentum, "momentum", "SGD", low=0.0)
        self.dampening = validation.number(dampening, "dampening", "SGD")
        self.weight_decay = validation.number(weight_decay, "weight_decay", "SGD", low=0.0)
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("SGD: nesterov=True requires momentum > 0 and dampening = 0, got "
                             f"momentum={momentum}, dampening={dampening}")
        self.nesterov = bool(nesterov)

    def _update(self, i, p, g):
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        if self.momentum != 0:
            buf = self.state[i].get("momentum_buffer")
            if buf is None:
                buf = self.state[i]["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


class Adagrad(Optimizer):
    """AdaGrad: each coordinate's step is lr / sqrt(sum of its squared gradients), as torch."""

    def __init__(self, params, lr: float = 0.01, eps: float = 1e-10, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.eps = validation.number(eps, "eps", "Adagrad", low=0.0)
        self.weight_decay = validation.number(weight_decay, "weight_decay", "Adagrad", low=0.0)

    def _update(self, i, p, g):
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        s = self.state[i].setdefault("sum", np.zeros_like(p))
        s += g * g
        p -= self.lr * g / (np.sqrt(s) + self.eps)


class RMSprop(Optimizer):
    """RMSProp: divide by a running root mean square of the gradient, as torch.optim.RMSprop."""

    def __init__(self, params, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.alpha = validation.number(alpha, "alpha", "RMSprop", low=0.0)
        self.eps = validation.number(eps, "eps", "RMSprop", low=0.0)
        self.momentum = validation.number(momentum, "momentum", "RMSprop", low=0.0)
        self.weight_decay = validation.number(weight_decay, "weight_decay", "RMSprop", low=0.0)

    def _update(self, i, p, g):
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        s = self.state[i].setdefault("square_avg", np.zeros_like(p))
        s *= self.alpha
        s += (1 - self.alpha) * g * g
        u = g / (np.sqrt(s) + self.eps)
        if self.momentum > 0:
            buf = self.state[i].setdefault("momentum_buffer", np.zeros_like(p))
            buf *= self.momentum
            buf += u
            u = buf
        p -= self.lr * u


class Adam(Optimizer):
    """Adam with bias correction; weight_decay is L2 added to the gradient (torch.optim.Adam)."""

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr)
        name = type(self).__name__
        if isinstance(betas, str) or not isinstance(betas, Sequence) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(validation.number(b, f"betas[{i}]", name, low=0.0, high=1.0,
                                             high_open=True) for i, b in enumerate(betas))
        self.eps = validation.number(eps, "eps", name, low=0.0)
        self.weight_decay = validation.number(weight_decay, "weight_decay", name, low=0.0)

    def _update(self, i, p, g):
        beta1, beta2 = self.betas
        if self.decoupled:
            p *= 1 - self.lr * self.weight_decay
        elif self.weight_decay != 0:
            g = g + self.weight_decay * p
        m = self.state[i].setdefault("exp_avg", np.zeros_like(p))
        v = self.state[i].setdefault("exp_avg_sq", np.zeros_like(p))
        m += (1 - beta1) * (g - m)
        v *= beta2
        v += (1 - beta2) * g * g
        step_size = self.lr / (1 - beta1**self.t)
        denom = np.sqrt(v) / math.sqrt(1 - beta2**self.t) + self.eps
        p -= step_size * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay: p <- p (1 - lr * weight_decay) before the Adam step."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(params, lr, betas, eps, weight_decay)


class AdaBelief(Adam):
    """AdaBelief (Zhuang et al. 2020, Algorithm 2) with decoupled weight decay, as AdamW's.

    Adam's second moment v (an average of g^2) is replaced by s, an average of (g - m)^2: the
    squared deviation of the gradient from its running mean, the "belief". With t the step:
    p <- p (1 - lr * weight_decay); m <- b1 m + (1 - b1) g;
    s <- b2 s + (1 - b2) (g - m)^2 + eps (the paper adds eps inside s at every step);
    p <- p - lr / (1 - b1^t) * m / (sqrt(s / (1 - b2^t)) + eps).
    The state is ``exp_avg`` (m) and ``exp_avg_var`` (s); the defaults (eps = 1e-16) are the
    paper's and those of ``pytorch_optimizer.AdaBelief``.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-16, weight_decay: float = 0.0):
        super().__init__(params, lr, betas, eps, weight_decay)

    def _update(self, i, p, g):
        beta1, beta2 = self.betas
        if self.weight_decay != 0:
            p *= 1 - self.lr * self.weight_decay
        m = self.state[i].setdefault("exp_avg", np.zeros_like(p))
        s = self.state[i].setdefault("exp_avg_var", np.zeros_like(p))
        m += (1 - beta1) * (g - m)
        residual = g - m
        s *= beta2
        s += (1 - beta2) * residual * residual
        s += self.eps
        denom = np.sqrt(s) / math.sqrt(1 - beta2**self.t) + self.eps
        p -= self.lr / (1 - beta1**self.t) * m / denom


def _arrays(grads, fn: str, name: str = "grads") -> list[np.ndarray]:
    if isinstance(grads, np.ndarray | str) or not isinstance(grads, Sequence) or not grads:
        raise ValueError(f"{fn}: {name} must be a non-empty list of arrays, got "
                         f"{type(grads).__name__}")
    return [np.asarray(g, dtype=float) if not np.issubdtype(np.asarray(g).dtype, np.floating)
            else np.asarray(g) for g in grads]


def clip_grad_value(grads: Sequence[np.ndarray], clip_value: float) -> list[np.ndarray]:
    """Clip every gradient entry to [-clip_value, clip_value] (``clip_grad_value_``).

    grads: a list of float arrays of any shapes. Returns new arrays of the same shapes and
    dtypes; the inputs are not changed. The direction of the whole gradient changes wherever
    some entries are clipped and others are not.
    """
    grads = _arrays(grads, "clip_grad_value")
    c = validation.number(clip_value, "clip_value", "clip_grad_value", low=0.0)
    return [np.clip(g, -c, c) for g in grads]


def clip_grad_norm(grads: Sequence[np.ndarray], max_norm: float) -> tuple[list[np.ndarray], float]:
    """Scale all gradients by one factor so their joint L2 norm is at most ``max_norm``.

    grads: a list of float arrays. The joint norm is sqrt(sum of every squared entry); when it
    exceeds ``max_norm`` every array is multiplied by max_norm / norm, else they are returned
    unchanged (as copies). Returns (clipped arrays, norm before clipping). Unlike
    ``torch.nn.utils.clip_grad_norm_`` no 1e-6 is added to the norm.
    """
    grads = _arrays(grads, "clip_grad_norm")
    max_norm = validation.number(max_norm, "max_norm", "clip_grad_norm", low=0.0)
    norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
    scale = max_norm / norm if norm > max_norm else 1.0
    return [g * scale for g in grads], norm


def _unit_norms(a: np.ndarray) -> np.ndarray:
    """L2 norm per output unit: over every axis but the first (the whole array if 0-D/1-D)."""
    if a.ndim <= 1:
        return np.full(a.shape, np.sqrt(np.sum(a * a)))
    axes = tuple(range(1, a.ndim))
    return np.sqrt(np.sum(a * a, axis=axes, keepdims=True))


def adaptive_clip_grad(params: Sequence[np.ndarray], grads: Sequence[np.ndarray],
                       clip_factor: float = 0.01, eps: float = 1e-3) -> list[np.ndarray]:
    """Unit-wise adaptive gradient clipping (AGC, Brock et al. 2021, as in their NFNets).

    params, grads: lists of arrays of matching shapes. A unit is one output row of a weight
    (a[k] of a (out, ...) array: one filter, one neuron); a 1-D array (a bias) counts as one
    unit. For each unit, with W its weights and G its gradient, the bound is
    b = clip_factor * max(||W||, eps); if ||G|| > b the gradient is rescaled to
    G * b / ||G||, else kept. Returns new arrays; the inputs are not changed.
    """
    fn = "adaptive_clip_grad"
    params, grads = _arrays(params, fn, "params"), _arrays(grads, fn)
    if len(params) != len(grads):
        raise ValueError(f"{fn}: got {len(grads)} gradients for {len(params)} parameters")
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        if p.shape != g.shape:
            raise ValueError(f"{fn}: grads[{i}] has shape {g.shape} but params[{i}] has shape "
                             f"{p.shape}")
    clip_factor = validation.number(clip_factor, "clip_factor", fn, low=0.0)
    eps = validation.number(eps, "eps", fn, low=0.0)
    out = []
    for p, g in zip(params, grads, strict=True):
        bound = clip_factor * np.maximum(_unit_norms(p), eps)
        norm = _unit_norms(g)
        scale = np.where(norm > bound, bound / np.maximum(norm, 1e-300), 1.0)
        out.append(g * scale)
    return out


class IterateAverage:
    """The running average of a list of parameter arrays, updated after each optimizer step.

    With ``beta=None``, the plain mean of the iterates seen so far (Polyak averaging):
    a_1 = p_1 and a_t = a_{t-1} + (p_t - a_{t-1}) / t, which equals (p_1 + ... + p_t) / t
    without keeping them (``torch.optim.swa_utils.AveragedModel``'s default).
    With ``beta`` in [0, 1): a_1 = p_1, then a_t = beta a_{t-1} + (1 - beta) p_t (an EMA, as
    ``AveragedModel`` with ``get_ema_multi_avg_fn(beta)``).
    ``average`` is a list of float64 copies, one per parameter; ``count`` the updates so far.
    """

    def __init__(self, params: Sequence[np.ndarray], beta: float | None = None):
        self.params = _arrays(params, "IterateAverage", "params")
        for i, (p, given) in enumerate(zip(self.params, params, strict=True)):
            if p is not given or not np.issubdtype(p.dtype, np.floating):
                raise ValueError(f"IterateAverage: params[{i}] must be a float NumPy array (read "
                                 f"after each step), got {np.asarray(given).dtype}")
        if beta is not None:
            beta = validation.number(beta, "beta", "IterateAverage", low=0.0, high=1.0,
                                     high_open=True)
        self.beta = beta
        self.average = [np.array(p, dtype=np.float64) for p in self.params]
        self.count = 0

    def update(self) -> None:
        """Fold the parameters' current values into the average."""
        self.count += 1
        for a, p in zip(self.average, self.params, strict=True):
            if self.count == 1:
                a[...] = p
            elif self.beta is None:
                a += (p - a) / self.count
            else:
                a *= self.beta
                a += (1 - self.beta) * p
