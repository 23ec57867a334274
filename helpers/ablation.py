"""Seed 002's "entangled effects" table in miniature: its rows, one training run, the statistics.

The table trains several networks with random cropping and weight decay switched on and off
(and, for some rows, batch norm, skip connections or dropout) and reports training and test
accuracy. Chapter 9 runs it on a Fashion-MNIST subset; ``tools/reference.py``
(``make reference``) runs the same rows on all 60,000 training images and stores the result
in ``benchmarks/reference/capstone.json``, which ``read_reference`` loads and checks.

- ``ROWS``: the table's configurations (``Row``), in the order of the table.
- ``build_model(row, ...)``: the network of a row.
- ``train_row(row, train, test, settings, seed)``: one run; returns a ``RunResult``.
- ``interaction(acc)``: the crop x weight-decay interaction per seed.
- ``write_reference`` / ``read_reference`` / ``validate_reference``: the stored table.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from . import augment, data, models, training
from .device import best_device, synchronize

MODELS = ("ResNet-8", "ResNet-8 w/o BN", "plain-8", "MLP 3x512", "MLP 1x512")


@dataclass(frozen=True)
class Row:
    """One row of the table: a network and which regularizers are on."""

    model: str  # one of MODELS
    crop: bool  # random crop (a whole-pixel shift of up to ``Settings.pad`` pixels)
    weight_decay: bool  # Settings.weight_decay on conv and linear weights, else none
    dropout: float = 0.0  # dropout before the classifier

    @property
    def name(self) -> str:
        parts = [self.model, "crop" if self.crop else "no crop",
                 "wd" if self.weight_decay else "no wd"]
        if self.dropout:
            parts.append(f"dropout {self.dropout:g}")
        return ", ".join(parts)


def _grid(model: str, crops=(True, False)) -> list[Row]:
    return [Row(model, crop, wd) for crop in crops for wd in (True, False)]


# The CIFAR-10 table's rows (two CNNs with the 2 x 2 crop x weight-decay grid, the CNN without
# batch norm and the MLPs without crop), then the dropout rows of the ImageNet table.
ROWS: tuple[Row, ...] = (
    *_grid("ResNet-8"),
    *_grid("plain-8"),
    *_grid("ResNet-8 w/o BN", crops=(False,)),
    *_grid("MLP 3x512", crops=(False,)),
    *_grid("MLP 1x512", crops=(False,)),
    Row("ResNet-8", True, True, dropout=0.3),
    Row("plain-8", True, True, dropout=0.3),
)


@dataclass(frozen=True)
class Settings:
    """What every run of the table shares.

    epochs: passes over the training set; batch_size; peak_lr: one-cycle peak of SGD with
    Nesterov momentum 0.9; weight_decay: lambda of the rows with decay (conv and linear
    weights only); pad: the random crop's padding in pixels; widths: channels of the CNNs'
    three stages.
    """

    epochs: int = 12
    batch_size: int = 32
    peak_lr: float = 0.1
    weight_decay: float = 5e-3
    pad: int = 1
    widths: tuple[int, ...] = (8, 16, 32)

    def __post_init__(self):
        for name, low in (("epochs", 1), ("batch_size", 1), ("pad", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"Settings: {name} must be an int >= {low}, got {value!r}")
        if not self.peak_lr > 0 or not self.weight_decay >= 0:
            raise ValueError(f"Settings: need peak_lr > 0 and weight_decay >= 0, "
                             f"got {self.peak_lr!r} and {self.weight_decay!r}")


def build_model(row: Row, in_channels: int, side: int, num_classes: int,
                widths=(8, 16, 32)) -> nn.Module:
    """The row's network for (N, in_channels, side, side) inputs -> (N, num_classes) logits.

    "ResNet-8": ``models.resnet(8, widths)`` with batch norm; "ResNet-8 w/o BN": the same with
    ``norm="none"``; "plain-8": its twin without skip connections; "MLP 3x512" and
    "MLP 1x512": flatten, then 3 or 1 hidden layers of 512 ReLU units. ``row.dropout`` puts
    ``nn.Dropout`` in front of the classifier.
    """
    if row.model not in MODELS:
        raise ValueError(f"build_model: model must be one of {MODELS}, got {row.model!r}")
    if row.model.startswith("MLP"):
        layers, width = [nn.Flatten()], in_channels * side * side
        for _ in range(int(row.model[4])):
            layers += [nn.Linear(width, 512), nn.ReLU()]
            width = 512
        if row.dropout:
            layers.append(nn.Dropout(row.dropout))
        return nn.Sequential(*layers, nn.Linear(width, num_classes))
    model = models.resnet(8, widths, in_channels, num_classes, residual=row.model != "plain-8",
                          norm="none" if row.model == "ResNet-8 w/o BN" else "batch")
    if row.dropout:
        model.fc = nn.Sequential(nn.Dropout(row.dropout), model.fc)
    return model


@dataclass
class RunResult:
    """One run: accuracies in [0, 1], the norm of the decayed weights, seconds, the model.

    train_acc: on the un-augmented training images in eval mode, after the last epoch.
    test_acc: after the last epoch. best_test_acc: the best test accuracy after any epoch
    (the table's early-stopping column, chosen on the test set as in the seed's table).
    """

    train_acc: float
    test_acc: float
    best_test_acc: float
    weight_norm: float
    seconds: float
    model: nn.Module

    def numbers(self) -> dict[str, float]:
        return {"train": self.train_acc, "test": self.test_acc, "best_test": self.best_test_acc}


def weight_norm(model: nn.Module) -> float:
    """The L2 norm of all conv and linear weights (the parameters with more than one dim)."""
    with torch.no_grad():
        return math.sqrt(sum(float((p * p).sum()) for p in model.parameters() if p.ndim > 1))


def train_row(row: Row, train: data.Split, test: data.Split, settings: Settings, seed: int,
              device=None) -> RunResult:
    """Train ``row``'s network on ``train`` (x (N, C, H, W) float32 in [0, 1], y (N,) int64)
    for ``settings.epochs`` epochs and score it on ``test``; ``seed`` sets the initialization,
    the batch order and the crops. Data stay on ``device`` (default: the best one)."""
    if not isinstance(row, Row):
        raise ValueError(f"train_row: row must be a Row, got {type(row).__name__}")
    device = torch.device(device) if device is not None else best_device()
    torch.manual_seed(seed)
    n, channels, side, _ = train.x.shape
    num_classes = int(max(train.y.max(), test.y.max())) + 1
    model = build_model(row, channels, side, num_classes, settings.widths).to(device)
    loader = data.DeviceLoader(train.x, train.y, settings.batch_size, shuffle=True, seed=seed,
                               device=device)
    batches = loader
    if row.crop:
        generator = torch.Generator(device=device).manual_seed(seed)
        batches = augment.Augmented(
            loader, images=lambda x: augment.random_crop(x, settings.pad, generator=generator))
    decay = settings.weight_decay if row.weight_decay else 0.0
    optimizer = torch.optim.SGD(training.decay_groups(model, decay), lr=settings.peak_lr,
                                momentum=0.9, nesterov=True)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, settings.peak_lr, total_steps=settings.epochs * len(batches))
    test_batches = data.DeviceLoader(test.x, test.y, 1000, device=device)
    start = time.perf_counter()
    history = training.fit(model, batches, test_batches, optimizer, settings.epochs,
                           scheduler=schedule, scheduler_step="batch",
                           progress=False)
    synchronize(device)
    seconds = time.perf_counter() - start
    train_eval = data.DeviceLoader(train.x, train.y, 1000, device=device)
    return RunResult(training.evaluate(model, train_eval).accuracy, history.val_acc[-1],
                     max(history.val_acc), weight_norm(model), seconds, model)


def interaction(acc: dict[str, np.ndarray], model: str) -> np.ndarray:
    """Per seed, (crop's gain with weight decay) - (crop's gain without it), for ``model``.

    acc: row name -> (S,) accuracies over paired seeds. Zero means the two effects add up.
    Returns (S,)."""
    def get(crop, wd):
        return np.asarray(acc[Row(model, crop, wd).name], dtype=float)

    return (get(True, True) - get(False, True)) - (get(True, False) - get(False, False))


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of at least two values."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"mean_std: expected at least two values in a 1-D array, got shape "
                         f"{values.shape}")
    return float(values.mean()), float(values.std(ddof=1))


REFERENCE_KEYS = {
    "device": str, "torch": str, "commit": str, "date": str, "train_images": int,
    "test_images": int, "side": int, "epochs": int, "seeds": list, "wall_s": (int, float),
    "settings": dict, "rows": list,
}
ROW_KEYS = ("train", "test", "best_test")


def validate_reference(reference: dict) -> dict:
    """Check the stored table's schema; returns it. Raises ValueError naming what is wrong.

    Keys: ``REFERENCE_KEYS`` with their types; ``rows``: one dict per configuration with
    ``name`` (a ``Row`` name) and ``train``, ``test``, ``best_test``: one accuracy in [0, 1]
    per seed of ``seeds``.
    """
    if not isinstance(reference, dict):
        raise ValueError(f"validate_reference: expected a dict, got {type(reference).__name__}")
    for key, kind in REFERENCE_KEYS.items():
        if key not in reference:
            raise ValueError(f"validate_reference: expected key {key!r}, "
                             f"got keys {sorted(reference)}")
        if isinstance(reference[key], bool) or not isinstance(reference[key], kind):
            raise ValueError(f"validate_reference: {key} must be {kind}, got {reference[key]!r}")
    seeds = reference["seeds"]
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"validate_reference: seeds must be at least two distinct seeds, "
                         f"got {seeds}")
    names = {row.name for row in ROWS}
    for row in reference["rows"]:
        if not isinstance(row, dict) or row.get("name") not in names:
            raise ValueError(f"validate_reference: each row needs a name from ablation.ROWS, "
                             f"got {row!r}")
        for key in ROW_KEYS:
            values = row.get(key)
            if (not isinstance(values, list) or len(values) != len(seeds)
                    or not all(isinstance(v, float | int) and 0 <= v <= 1 for v in values)):
                raise ValueError(f"validate_reference: row {row['name']!r}: {key} must be "
                                 f"{len(seeds)} accuracies in [0, 1], got {values!r}")
    return reference


def write_reference(path: str | os.PathLike, reference: dict) -> None:
    """Validate ``reference`` and write it as indented JSON (atomically: a temporary file, then
    a rename)."""
    validate_reference(reference)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(reference, indent=1) + "\n")
    os.replace(tmp, path)


def read_reference(path: str | os.PathLike) -> dict:
    """Load and validate the stored table; row name -> {"train", "test", "best_test"} arrays
    of shape (S,) are under ``"table"``."""
    reference = validate_reference(json.loads(Path(path).read_text()))
    reference["table"] = {row["name"]: {k: np.asarray(row[k], dtype=float) for k in ROW_KEYS}
                          for row in reference["rows"]}
    return reference
