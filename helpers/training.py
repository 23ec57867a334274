"""Train and evaluate a classifier: ``fit``, ``evaluate``, ``predict`` and their small helpers.

``fit`` runs the loop every chapter uses (zero the gradients, forward, loss, backward, step),
records a ``History`` of per-epoch metrics and shows one line of progress (``helpers.progress``);
it can checkpoint and resume (``helpers.checkpoint``), use mixed precision and channels-last.
Accuracies are fractions in [0, 1]; the loss is whatever ``loss_fn`` returns (cross-entropy by
default).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F

from helpers.checkpoint import load_checkpoint, save_checkpoint
from helpers.device import synchronize
from helpers.progress import Progress

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


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    """``with eval_mode(model): ...`` runs the block with every module in eval mode and then
    gives each module back its own ``.training`` flag.

    ``model.train(was_training)`` is not the same: it sets *every* module to one mode, so a
    batch norm that was frozen in eval mode inside a training model would come back training.
    """
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for module, mode in modes.items():
            module.training = mode


def decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Optimizer parameter groups that decay only the weights of convolutions and linear layers.

    Parameters with more than one dimension (conv and linear weights) get ``weight_decay``;
    the others (biases, and the scales gamma and shifts beta of normalization layers) get 0.
    Pass the result to any ``torch.optim`` optimizer in place of ``model.parameters()``.
    """
    if not weight_decay >= 0:
        raise ValueError(f"decay_groups: weight_decay must be >= 0, got {weight_decay!r}")
    params = list(model.parameters())
    return [{"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]


def evaluate(model: torch.nn.Module, data: Batches, *, loss_fn: LossFn | None = None,
             device: torch.device | str | None = None) -> Evaluation:
    """Mean loss and accuracy of ``model`` over the (x, y) batches of ``data``.

    Runs in eval mode without gradients and restores each module's train/eval mode after.
    ``loss_fn(logits, y)`` must return a batch mean (default ``F.cross_entropy``).
    """
    loss_fn = loss_fn or F.cross_entropy
    device = torch.device(device) if device is not None else _model_device(model)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    count, has_acc = 0, True
    with eval_mode(model), torch.no_grad():
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
    with eval_mode(model), torch.no_grad():
        outs = [model(x.to(device, non_blocking=True)).cpu() for x in batches]
    return torch.cat(outs)


class _Amp:
    """Mixed precision for one device: autocast to bf16 (CPU, and GPUs that support it) or to
    fp16 with a gradient scaler (older GPUs, MPS); a no-op when disabled."""

    def __init__(self, device: torch.device, enabled: bool):
        self.device_type, self.enabled, self.scaler = device.type, enabled, None
        self.dtype = torch.bfloat16
        if enabled and device.type == "mps":
            self.dtype = torch.float16
        if enabled and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            self.dtype = torch.float16
        if enabled and self.dtype == torch.float16:
            self.scaler = torch.amp.GradScaler(device.type)

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.enabled)

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            loss.backward()
            optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()


def _train_epoch(model, train, optimizer, loss_fn, device, epoch, amp, channels_last,
                 after_step, bar, steps):
    """One pass over ``train``; returns (mean loss, accuracy or NaN)."""
    check_each_step = _checks_each_step(device)
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    bad_step = torch.zeros((), dtype=torch.int64, device=device)  # 0: all finite so far
    bad_loss = torch.zeros((), device=device)
    count, has_acc = 0, True
    for step, (x, y) in enumerate(train, start=1):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        optimizer.zero_grad(set_to_none=True)
        with amp.autocast():
            out = model(x)
            loss = loss_fn(out, y)
        detached = loss.detach().float()
        if check_each_step:
            if not math.isfinite(value := detached.item()):
                raise _non_finite(epoch, step, value)
        else:  # remember the first bad step on the device, read it at the epoch's end
            first = (bad_step == 0) & ~torch.isfinite(detached)
            bad_step = torch.where(first, step, bad_step)
            bad_loss = torch.where(first, detached, bad_loss)
        amp.step(loss, optimizer)
        after_step()
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
    return train_loss, (correct.item() / count if has_acc else math.nan)


def _best_metric(history: History) -> tuple[str, float]:
    """The metric that picks the best weights: val accuracy, else val loss, else train loss."""
    if history.val_acc and not math.isnan(history.val_acc[-1]):
        return "val_acc", history.val_acc[-1]
    if history.val_loss:
        return "val_loss", history.val_loss[-1]
    return "train_loss", history.train_loss[-1]


def _improved(best: dict | None, metric: str, value: float) -> bool:
    if best is None:
        return True
    return value > best["value"] if metric.endswith("acc") else value < best["value"]


def fit(model: torch.nn.Module, train: Batches, val: Batches | None,
        optimizer: torch.optim.Optimizer, epochs: int, *, loss_fn: LossFn | None = None,
        scheduler=None, scheduler_step: str = "epoch", callbacks: Sequence[Callback] = (),
        device: torch.device | str | None = None, progress: bool = True,
        desc: str | None = None, checkpoint: str | os.PathLike | None = None,
        resume: bool = False, amp: bool = False, channels_last: bool = False) -> History:
    """Train ``model`` for ``epochs`` passes over ``train`` and return its ``History``.

    ``train`` and ``val`` are iterables of (x, y) batches, x (N, ...) float and y (N,) int64
    class indices (a DataLoader, a list of pairs, a DeviceLoader); ``val`` may be None.
    ``loss_fn(logits, y)`` returns the batch mean (default ``F.cross_entropy``). Batches move
    to ``device`` (default: where the model's parameters are). ``scheduler.step()`` is called
    after every epoch, or after every optimizer step when ``scheduler_step="batch"``; a
    ``ReduceLROnPlateau`` gets the validation loss (the training loss without ``val``).
    A non-finite loss raises ``FloatingPointError`` naming the epoch and step; on the CPU it
    is caught at that step, on a GPU at the end of the epoch (to avoid a sync per batch).

    ``checkpoint``: a file written atomically after every epoch (model, optimizer, scheduler,
    RNG states including the loaders' shuffling, history, best weights). With ``resume=True``
    an existing checkpoint is loaded first and training continues after its epoch, up to
    ``epochs`` in all; on the CPU the result equals an uninterrupted run. Callbacks' own state
    is not saved. ``amp``: autocast to bf16 (fp16 with a gradient scaler where bf16 is
    missing). ``channels_last``: model and 4-D inputs in NHWC memory layout.

    Interrupting (KeyboardInterrupt, the notebook's stop button) ends training without an
    error: the history of the finished epochs is returned and the model gets the best weights
    seen so far (by validation accuracy, else validation loss, else training loss).
    """
    if scheduler_step not in ("epoch", "batch"):
        raise ValueError(f'fit: scheduler_step must be "epoch" or "batch", got {scheduler_step!r}')
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be an int >= 0, got {epochs!r}")
    if resume and checkpoint is None:
        raise ValueError("fit: resume=True needs a checkpoint path, got checkpoint=None")
    loss_fn = loss_fn or F.cross_entropy
    device = torch.device(device) if device is not None else _model_device(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    mixed = _Amp(device, amp)
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    steps = len(train) if hasattr(train, "__len__") else None
    loaders = [train] if val is None else [train, val]
    history, best, first_epoch = History(), None, 1
    if resume and Path(checkpoint).is_file():
        state = load_checkpoint(checkpoint, model=model, optimizer=optimizer,
                                scheduler=scheduler, loaders=loaders)
        history, best = History(**state["history"]), state["best"]
        first_epoch = state["epoch"] + 1

    def after_step() -> None:
        if scheduler is not None and scheduler_step == "batch":
            scheduler.step()

    bar = Progress(epochs, desc=desc, enabled=progress)
    for callback in callbacks:
        callback.on_train_begin(model, history)
    try:
        for epoch in range(first_epoch, epochs + 1):
            lr = float(optimizer.param_groups[0]["lr"])
            synchronize(device)
            start = time.perf_counter()
            train_loss, train_acc = _train_epoch(model, train, optimizer, loss_fn, device, epoch,
                                                 mixed, channels_last, after_step, bar, steps)
            history.train_loss.append(train_loss)
            history.train_acc.append(train_acc)
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
            metric, value = _best_metric(history)
            if _improved(best, metric, value):
                weights = {k: v.detach().to("cpu", copy=True)
                           for k, v in model.state_dict().items()}
                best = {"epoch": epoch, "metric": metric, "value": value, "state": weights}
            if checkpoint is not None:
                save_checkpoint(checkpoint, epoch=epoch, model=model, optimizer=optimizer,
                                scheduler=scheduler, history=history, best=best, loaders=loaders)
            bar.epoch(epoch, history.last())
            stops = [bool(cb.on_epoch_end(epoch, model, history)) for cb in callbacks]
            if any(stops):
                break
    except KeyboardInterrupt:
        finished = len(history)
        message = f"fit: interrupted; returning the history of {finished} finished epoch(s)"
        if best is not None:
            model.load_state_dict(best["state"])
            message += f" and the best weights (epoch {best['epoch']}, {best['metric']} "
            message += f"{best['value']:.4g})"
        print(message, file=sys.stderr)
    finally:
        bar.close()
    for callback in callbacks:
        callback.on_train_end(model, history)
    return history
