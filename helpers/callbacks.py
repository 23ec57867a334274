"""Callbacks for ``helpers.training.fit``: ``EarlyStopping``.

A callback subclasses ``helpers.training.Callback``; ``fit`` calls ``on_train_begin`` once,
``on_epoch_end(epoch, model, history)`` after every epoch (returning True stops training) and
``on_train_end`` once at the end.
"""

from __future__ import annotations

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
            raise ValueError(f"EarlyStopping: expected patience an int >= 1, got {patience!r}")
        if not isinstance(min_delta, int | float) or not min_delta >= 0:
            raise ValueError(f"EarlyStopping: expected min_delta >= 0, got {min_delta!r}")
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
