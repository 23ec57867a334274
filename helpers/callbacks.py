"""Callbacks for ``helpers.training.fit``: ``EarlyStopping`` and ``WeightEMA``.

A callback subclasses ``helpers.training.Callback``; ``fit`` calls ``on_train_begin`` once,
``on_epoch_end(epoch, model, history)`` after every epoch (returning True stops training) and
``on_train_end`` once at the end.
"""

from __future__ import annotations

import copy
import math

import torch

from helpers.training import Callback, History


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; optionally restore the best.

    monitor: a ``History`` metric, default "val_loss". mode: "min", "max" or "auto" (max for
    names ending in "acc", else min). An epoch improves on the best when its value beats it by
    more than ``min_delta`` (>= 0); NaN never improves. After ``patience`` (>= 1) epochs in a
    row without improvement, ``on_epoch_end`` returns True. With ``restore_best_weights`` the
    model's ``state_dict`` at the best epoch is kept (a copy on the CPU) and loaded back at the
    end of training, whether training stopped early or ran out of epochs.

    After training: ``best_epoch`` and ``best_value`` (1-based epoch, its metric value) and
    ``stopped_epoch`` (the epoch that triggered the stop, or None).
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True):
        if monitor not in History():
            raise ValueError(f"EarlyStopping: monitor must be one of {History().keys()}, "
                             f"got {monitor!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping: patience must be an int >= 1, got {patience!r}")
        if not isinstance(min_delta, int | float) or not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta!r}")
        if mode not in ("min", "max", "auto"):
            raise ValueError(f'EarlyStopping: mode must be "min", "max" or "auto", got {mode!r}')
        if mode == "auto":
            mode = "max" if monitor.endswith("acc") else "min"
        self.monitor, self.patience, self.min_delta = monitor, patience, float(min_delta)
        self.mode, self.restore_best_weights = mode, restore_best_weights
        self._reset()

    def _reset(self) -> None:
        self.best_value = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.wait = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than ``min_delta``."""
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best_value - self.min_delta
        return value > self.best_value + self.min_delta

    def on_train_begin(self, model: torch.nn.Module, history: History) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, model: torch.nn.Module, history: History) -> bool:
        values = history[self.monitor]
        if not values:
            raise ValueError(f"EarlyStopping: history has no {self.monitor!r} values; "
                             "pass validation data to fit or monitor a train_* metric")
        value = float(values[-1])
        if self.improved(value):
            self.best_value, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_state = {k: v.detach().to("cpu", copy=True)
                                   for k, v in model.state_dict().items()}
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, model: torch.nn.Module, history: History) -> None:
        if self.restore_best_weights and self.best_state is not None:
            model.load_state_dict(self.best_state)


class WeightEMA(Callback):
    """An exponential moving average (EMA) of a model's parameters and floating buffers.

    After update t the average is ``avg = d_t * avg + (1 - d_t) * w`` for every floating
    entry ``w`` of the model's ``state_dict`` (parameters and buffers such as batch norm's
    running statistics); integer buffers (``num_batches_tracked``) are copied. The first
    update copies the weights. ``d_t = decay``, or with ``warmup=True``
    ``d_t = min(decay, (1 + t) / (10 + t))`` so that early averages are not dominated by the
    random initial weights. The average lives on the model's device, in float32 (float64 for a
    float64 model).

    When updates happen: with ``optimizer`` given, after every ``optimizer.step()`` (a hook
    registered with ``Optimizer.register_step_post_hook`` in ``on_train_begin`` and removed in
    ``on_train_end``; a step that a gradient scaler skips is not counted); without it, once at
    the end of every epoch. ``on_train_begin`` starts a new average from the model's weights.
    ``update(model)`` can also be called by hand in a loop of your own.

    Reading the average: ``state_dict()`` (a dict of tensors), ``apply_to(model)`` (loads it
    into ``model`` and returns it) or ``averaged_model(model)`` (a deep copy of ``model`` with
    the averaged weights; ``model`` is left as it is). ``num_updates`` counts the updates.
    """

    def __init__(self, decay: float = 0.999, optimizer: torch.optim.Optimizer | None = None,
                 warmup: bool = False):
        if isinstance(decay, bool) or not isinstance(decay, int | float) or not 0 <= decay < 1:
            raise ValueError(f"WeightEMA: decay must be in [0, 1), got {decay!r}")
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(f"WeightEMA: optimizer must be a torch.optim.Optimizer or None, "
                             f"got {type(optimizer).__name__}")
        self.decay, self.optimizer, self.warmup = float(decay), optimizer, warmup
        self.num_updates = 0
        self.average: dict[str, torch.Tensor] | None = None
        self._handle = None

    def current_decay(self) -> float:
        """The decay the next update uses."""
        if self.warmup:
            t = self.num_updates
            return min(self.decay, (1 + t) / (10 + t))
        return self.decay

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold the current weights of ``model`` into the average (the first call copies)."""
        state = model.state_dict()
        if self.average is None:
            self.average = {k: v.detach().to(torch.promote_types(v.dtype, torch.float32),
                                             copy=True)
                            if v.is_floating_point() else v.detach().clone()
                            for k, v in state.items()}
        else:
            d = self.current_decay()
            for key, value in state.items():
                avg = self.average[key]
                if value.is_floating_point():
                    avg.mul_(d).add_(value.detach().to(avg.dtype), alpha=1.0 - d)
                else:
                    avg.copy_(value)
        self.num_updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged ``state_dict``: parameter and buffer names to tensors."""
        if self.average is None:
            raise ValueError("WeightEMA: no average yet; train with the callback or call update")
        return self.average

    def apply_to(self, model: torch.nn.Module) -> torch.nn.Module:
        """Load the averaged weights into ``model`` (cast to its dtypes); returns ``model``."""
        model.load_state_dict(self.state_dict())
        return model

    def averaged_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """A deep copy of ``model`` holding the averaged weights; ``model`` is unchanged."""
        return self.apply_to(copy.deepcopy(model))

    def on_train_begin(self, model: torch.nn.Module, history: History) -> None:
        self.average, self.num_updates = None, 0
        self.update(model)
        if self.optimizer is not None:
            self._handle = self.optimizer.register_step_post_hook(
                lambda optimizer, args, kwargs: self.update(model))

    def on_epoch_end(self, epoch: int, model: torch.nn.Module, history: History) -> bool:
        if self.optimizer is None:
            self.update(model)
        return False

    def on_train_end(self, model: torch.nn.Module, history: History) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
