"""Train and evaluate a classifier: ``fit``, ``evaluate``, ``predict`` and their small helpers.

``fit`` runs the loop every chapter uses (zero the gradients, forward, loss, backward, step),
records a ``History`` of per-epoch metrics and shows one line of progress. Accuracies are
fractions in [0, 1]; the loss is whatever ``loss_fn`` returns (cross-entropy by default).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import NamedTuple

import torch
import torch.nn.functional as F
from tqdm import tqdm

from helpers.device import synchronize

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class History:
    """Per-epoch metrics of one ``fit`` run; every field is a list with one entry per epoch.

    ``epoch`` (1, 2, ...), ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``lr`` (the
    first parameter group's learning rate at the epoch's start) and ``seconds`` (wall time of
    the epoch, training and validation). When ``fit`` has no validation data, ``val_loss`` and
    ``val_acc`` stay empty. Accuracies are NaN when the targets are not class indices.
    ``len(history)`` is the number of epochs run; ``history["train_loss"]`` reads a field.
    """

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.epoch)

    def __getitem__(self, key: str) -> list:
        if key not in self:
            raise KeyError(f"History has no metric {key!r}; expected one of {self.keys()}")
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def keys(self) -> list[str]:
        """The metric names, in a fixed order."""
        return [f.name for f in fields(self)]

    def to_dict(self) -> dict[str, list]:
        """A plain ``dict`` of copies of the lists (for JSON or pandas)."""
        return {key: list(getattr(self, key)) for key in self.keys()}

    def best(self, metric: str = "val_acc") -> tuple[int, float]:
        """``(epoch, value)`` of the best epoch: largest for ``*acc`` metrics, else smallest."""
        if metric not in self:
            raise ValueError(f"History.best: metric {metric!r} is not one of {self.keys()}")
        values = zip(self.epoch, self[metric], strict=False)
        scored = [(e, v) for e, v in values if not math.isnan(v)]
        if not scored:
            raise ValueError(f"History.best: no recorded values of {metric!r}")
        pick = max if metric.endswith("acc") else min
        value = pick(v for _, v in scored)
        epoch = next(e for e, v in scored if v == value)  # the first epoch on ties
        return epoch, value

    def last(self) -> dict[str, float]:
        """The last epoch's metrics as ``{name: value}`` (empty validation metrics left out)."""
        if not self.epoch:
            raise ValueError("History.last: no epochs recorded")
        return {key: getattr(self, key)[-1] for key in self.keys() if getattr(self, key)}


class Callback:
    """Base class for hooks into ``fit``; override the ones you need (all are no-ops here)."""

    def on_train_begin(self, model: torch.nn.Module, history: History) -> None:
        """Called once before the first epoch."""

    def on_epoch_end(self, epoch: int, model: torch.nn.Module, history: History) -> bool | None:
        """Called after each epoch is recorded (``epoch`` is 1-based); return True to stop."""
        return None

    def on_train_end(self, model: torch.nn.Module, history: History) -> None:
        """Called once after the last epoch, also when a callback stopped training early."""


class Evaluation(NamedTuple):
    """Mean loss and accuracy (a fraction in [0, 1], NaN for non-class targets) over a dataset."""

    loss: float
    accuracy: float


def progress_enabled(progress: bool = True) -> bool:
    """False when ``progress`` is False, ``$BOOK_PROGRESS`` is "0" or ``$TQDM_DISABLE`` is true."""
    if not progress or os.environ.get("BOOK_PROGRESS", "").strip() == "0":
        return False
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in ("", "0", "false", "no")


def _in_jupyter_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _new_display(text: str):
    from IPython.display import display

    return display({"text/plain": text}, raw=True, display_id=True)


class Progress:
    """One line of progress for ``total`` epochs.

    In a Jupyter kernel one display is created and updated in place, so the saved notebook
    keeps a single line; in a terminal a tqdm bar over epochs is written to stderr; when
    ``progress_enabled(enabled)`` is False nothing is shown. ``batch`` updates are throttled.
    """

    def __init__(self, total: int, desc: str | None = None, enabled: bool = True,
                 min_interval: float = 1.0):
        self.total, self.desc, self.min_interval = total, desc or "fit", min_interval
        self.mode = "off"
        if progress_enabled(enabled):
            self.mode = "notebook" if _in_jupyter_kernel() else "terminal"
        self._last = time.monotonic()
        self._epoch_line = ""
        if self.mode == "notebook":
            self._handle = _new_display(f"{self.desc}: epoch 0/{total} · starting")
        elif self.mode == "terminal":
            self._bar = tqdm(total=total, desc=self.desc, unit="epoch", file=sys.stderr,
                             leave=True, dynamic_ncols=True, disable=False)

    def _show(self, text: str) -> None:
        if self.mode == "notebook":
            self._handle.update({"text/plain": f"{self.desc}: {text}"}, raw=True)
        elif self.mode == "terminal":
            self._bar.set_postfix_str(text.split(" · ", 1)[-1], refresh=True)

    def batch(self, epoch: int, step: int, steps: int | None) -> None:
        """Report that ``step`` batches of epoch ``epoch`` are done (at most once a second)."""
        now = time.monotonic()
        if self.mode == "off" or now - self._last < self.min_interval:
            return
        self._last = now
        of = f"/{steps}" if steps else ""
        done = f" · last {self._epoch_line}" if self._epoch_line and self.mode == "notebook" else ""
        self._show(f"epoch {epoch}/{self.total} · batch {step}{of}{done}")

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """Show the line for a finished epoch from a ``History.last()``-style dict."""
        parts = [f"epoch {epoch}/{self.total}"]
        for split in ("train", "val"):
            if f"{split}_loss" in metrics:
                acc = metrics.get(f"{split}_acc", math.nan)
                acc_text = "" if math.isnan(acc) else f" acc {100 * acc:.1f}%"
                parts.append(f"{split} loss {metrics[f'{split}_loss']:.3f}{acc_text}")
        parts.append(f"{metrics['seconds']:.1f} s/epoch")
        self._epoch_line = " · ".join(parts[1:])
        if self.mode == "terminal":
            self._bar.update(1)
        self._show(" · ".join(parts))
        self._last = time.monotonic()

    def close(self) -> None:
        if self.mode == "terminal":
            self._bar.close()


def _model_device(model: torch.nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _checks_each_step(device: torch.device) -> bool:
    """Read each loss on the CPU (cheap); on accelerators defer the check to the epoch's end."""
    return device.type == "cpu"


def _correct(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
    """Number of correct argmax predictions, or None when ``y`` is not class indices."""
    if y.is_floating_point() or out.ndim < 2 or y.shape != out.shape[:1] + out.shape[2:]:
        return None
    return (out.argmax(dim=1) == y).sum()


def _non_finite(epoch: int, step: int | None, value: float) -> FloatingPointError:
    where = f"epoch {epoch}, step {step}" if step else f"epoch {epoch}"
    return FloatingPointError(f"fit: the loss became {value} at {where}; "
                              "lower the learning rate or check the data")


def evaluate(model: torch.nn.Module, data: Batches, *, loss_fn: LossFn | None = None,
             device: torch.device | str | None = None) -> Evaluation:
    """Mean loss and accuracy of ``model`` over the (x, y) batches of ``data``.

    Runs in eval mode without gradients and restores each module's train/eval mode after.
    ``loss_fn(logits, y)`` must return a batch mean (default ``F.cross_entropy``).
    """
    loss_fn = loss_fn or F.cross_entropy
    device = torch.device(device) if device is not None else _model_device(model)
    modes = {module: module.training for module in model.modules()}
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    count, has_acc = 0, True
    try:
        with torch.no_grad():
            for x, y in data:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                out = model(x)
                n = y.shape[0]
                loss_sum += loss_fn(out, y).float() * n
                hits = _correct(out, y)
                has_acc = has_acc and hits is not None
                if hits is not None:
                    correct += hits
                count += n
    finally:
        for module, mode in modes.items():
            module.training = mode
    if count == 0:
        raise ValueError("evaluate: data yielded no batches; expected at least one (x, y) batch")
    accuracy = correct.item() / count if has_acc else math.nan
    return Evaluation(loss_sum.item() / count, accuracy)


def predict(model: torch.nn.Module, data: torch.Tensor | Batches,
            device: torch.device | str | None = None, batch_size: int = 512) -> torch.Tensor:
    """Logits of ``model`` on CPU, in eval mode and without gradients.

    ``data`` is a tensor x of shape (N, ...), split into batches of ``batch_size``, or an
    iterable of (x, y) batches (y ignored). Returns (N, num_outputs) on the CPU.
    """
    if batch_size < 1:
        raise ValueError(f"predict: batch_size must be >= 1, got {batch_size}")
    device = torch.device(device) if device is not None else _model_device(model)
    batches = data.split(batch_size) if isinstance(data, torch.Tensor) else (x for x, _ in data)
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            outs = [model(x.to(device, non_blocking=True)).cpu() for x in batches]
    finally:
        for module, mode in modes.items():
            module.training = mode
    return torch.cat(outs)


def fit(model: torch.nn.Module, train: Batches, val: Batches | None,
        optimizer: torch.optim.Optimizer, epochs: int, *, loss_fn: LossFn | None = None,
        scheduler=None, scheduler_step: str = "epoch", callbacks: Sequence[Callback] = (),
        device: torch.device | str | None = None, progress: bool = True,
        desc: str | None = None) -> History:
    """Train ``model`` for ``epochs`` passes over ``train`` and return its ``History``.

    ``train`` and ``val`` are iterables of (x, y) batches, x (N, ...) float and y (N,) int64
    class indices (a DataLoader, a list of pairs, a DeviceLoader); ``val`` may be None.
    ``loss_fn(logits, y)`` returns the batch mean (default ``F.cross_entropy``). Batches move
    to ``device`` (default: where the model's parameters are). ``scheduler.step()`` is called
    after every epoch, or after every optimizer step when ``scheduler_step="batch"``; a
    ``ReduceLROnPlateau`` gets the validation loss (the training loss without ``val``).
    A non-finite loss raises ``FloatingPointError`` naming the epoch and step; on the CPU it
    is caught at that step, on a GPU at the end of the epoch (to avoid a sync per batch).
    """
    if scheduler_step not in ("epoch", "batch"):
        raise ValueError(f'fit: scheduler_step must be "epoch" or "batch", got {scheduler_step!r}')
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be an int >= 0, got {epochs!r}")
    loss_fn = loss_fn or F.cross_entropy
    device = torch.device(device) if device is not None else _model_device(model)
    check_each_step = _checks_each_step(device)
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    steps = len(train) if hasattr(train, "__len__") else None
    history = History()
    bar = Progress(epochs, desc=desc, enabled=progress)
    for callback in callbacks:
        callback.on_train_begin(model, history)
    try:
        for epoch in range(1, epochs + 1):
            lr = float(optimizer.param_groups[0]["lr"])
            synchronize(device)
            start = time.perf_counter()
            model.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            bad_step = torch.zeros((), dtype=torch.int64, device=device)  # 0: all finite
            bad_loss = torch.zeros((), device=device)
            count, has_acc = 0, True
            for step, (x, y) in enumerate(train, start=1):
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                optimizer.zero_grad(set_to_none=True)
                out = model(x)
                loss = loss_fn(out, y)
                detached = loss.detach().float()
                if check_each_step:
                    if not math.isfinite(value := detached.item()):
                        raise _non_finite(epoch, step, value)
                else:  # remember the first bad step on the device, read it at epoch end
                    first = (bad_step == 0) & ~torch.isfinite(detached)
                    bad_step = torch.where(first, step, bad_step)
                    bad_loss = torch.where(first, detached, bad_loss)
                loss.backward()
                optimizer.step()
                if scheduler is not None and scheduler_step == "batch":
                    scheduler.step()
                n = y.shape[0]
                loss_sum += detached * n
                hits = _correct(out.detach(), y)
                has_acc = has_acc and hits is not None
                if hits is not None:
                    correct += hits
                count += n
                bar.batch(epoch, step, steps)
            if count == 0:
                raise ValueError("fit: train yielded no batches; expected at least one (x, y)")
            if (first_bad := int(bad_step.item())) > 0:
                raise _non_finite(epoch, first_bad, bad_loss.item())
            train_loss = loss_sum.item() / count
            if not math.isfinite(train_loss):
                raise _non_finite(epoch, None, train_loss)
            history.train_loss.append(train_loss)
            history.train_acc.append(correct.item() / count if has_acc else math.nan)
            if val is not None:
                result = evaluate(model, val, loss_fn=loss_fn, device=device)
                history.val_loss.append(result.loss)
                history.val_acc.append(result.accuracy)
            synchronize(device)
            history.seconds.append(time.perf_counter() - start)
            history.epoch.append(epoch)
            history.lr.append(lr)
            if scheduler is not None and scheduler_step == "epoch":
                if plateau:
                    scheduler.step(history.val_loss[-1] if val is not None else train_loss)
                else:
                    scheduler.step()
            bar.epoch(epoch, history.last())
            stops = [bool(cb.on_epoch_end(epoch, model, history)) for cb in callbacks]
            if any(stops):
                break
    finally:
        bar.close()
    for callback in callbacks:
        callback.on_train_end(model, history)
    return history
