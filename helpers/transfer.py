"""Transfer learning: freezing layers, per-layer learning rates, gradual unfreezing, and batch
norm held in eval mode or re-estimated on the target data.

Works on any ``torch.nn.Module``; the examples use ``helpers.models.resnet``, whose parts are
``stem``, ``blocks`` (one module per residual block) and ``fc``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from helpers.training import Callback, History


def freeze(module: nn.Module, frozen: bool = True) -> nn.Module:
    """Stop (or, with ``frozen=False``, restart) gradient updates of every parameter of ``module``.

    Returns ``module``. Frozen parameters get no ``.grad`` and optimizers skip them; batch norm
    running statistics are *not* frozen by this (see ``freeze_batchnorm``).
    """
    for p in module.parameters():
        p.requires_grad_(not frozen)
    return module


def parameter_groups(parts: Sequence[nn.Module], lrs: Sequence[float]) -> list[dict]:
    """Optimizer parameter groups, one per part, each with its own learning rate.

    ``parts`` are sub-modules in order from the input to the output (for example
    ``[model.stem, *model.blocks, model.fc]``) and ``lrs`` their learning rates. Frozen
    parameters are left out, and so are parts with none left. Pass the result to any
    ``torch.optim`` optimizer: ``torch.optim.Adam(parameter_groups(parts, lrs))``.
    """
    if len(parts) != len(lrs):
        raise ValueError(f"parameter_groups: got {len(parts)} parts but {len(lrs)} learning rates")
    if any(lr < 0 for lr in lrs):
        raise ValueError(f"parameter_groups: learning rates must be >= 0, got {list(lrs)}")
    groups = []
    for part, lr in zip(parts, lrs, strict=True):
        params = [p for p in part.parameters() if p.requires_grad]
        if params:
            groups.append({"params": params, "lr": float(lr)})
    if not groups:
        raise ValueError("parameter_groups: every parameter is frozen; nothing to train")
    return groups


def discriminative_lrs(top_lr: float, n: int, factor: float = 0.3) -> list[float]:
    """``n`` learning rates growing from the input to the output: top_lr * factor ** (n - 1 - i).

    The last part (the new head) trains at ``top_lr``, each part below it ``factor`` times
    slower, so early, general features change least.
    """
    if n < 1 or top_lr <= 0 or not 0 < factor <= 1:
        raise ValueError(
            f"discriminative_lrs: need n >= 1, top_lr > 0 and 0 < factor <= 1, got n={n}, "
            f"top_lr={top_lr}, factor={factor}"
        )
    return [top_lr * factor ** (n - 1 - i) for i in range(n)]


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """A ``BatchNorm2d`` that always normalizes with its running statistics, never updates them,
    and stays in eval mode whatever ``model.train()`` says."""

    def train(self, mode: bool = True):
        return super().train(False)


def freeze_batchnorm(model: nn.Module, freeze_affine: bool = True) -> nn.Module:
    """Replace every ``BatchNorm2d`` in ``model`` (in place) by a ``FrozenBatchNorm2d`` with the
    same state, so that ``fit``'s ``model.train()`` cannot switch it back to batch statistics.

    With ``freeze_affine`` the scale and shift stop training too. Returns ``model``.
    """
    for name, child in list(model.named_children()):
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, FrozenBatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, child.eps, child.momentum,
                                       child.affine, child.track_running_stats)
            frozen.load_state_dict(child.state_dict())
            frozen.to(next(child.buffers()).device)
            if freeze_affine:
                freeze(frozen)
            setattr(model, name, frozen.eval())
        else:
            freeze_batchnorm(child, freeze_affine)
    return model


def first_layer_change(before: torch.Tensor, after: torch.Tensor) -> float:
    """Relative change ||after - before|| / ||before|| of a weight tensor (e.g. the stem's)."""
    if before.shape != after.shape:
        raise ValueError(f"first_layer_change: shapes differ, {tuple(before.shape)} vs "
                         f"{tuple(after.shape)}")
    return float((after - before).norm() / before.norm().clamp_min(1e-12))


class GradualUnfreezing(Callback):
    """A ``fit`` callback that trains the last part first and unfreezes one more part, from the
    output toward the input, every ``every`` epochs (ULMFiT's gradual unfreezing).

    ``parts`` are sub-modules in order from the input to the output. At the start only
    ``parts[-1]`` trains; after epoch ``e`` the last ``1 + e // every`` parts train. Build the
    optimizer over *all* parameters: the frozen ones get no gradient, and optimizers skip a
    parameter whose ``.grad`` is None, so they start moving once they are unfrozen.
    """

    def __init__(self, parts: Sequence[nn.Module], every: int = 1):
        if len(parts) < 1:
            raise ValueError(f"GradualUnfreezing: need at least one part, got {len(parts)}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"GradualUnfreezing: every must be an int >= 1, got {every!r}")
        self.parts, self.every = list(parts), every

    def trainable_parts(self, epoch: int) -> int:
        """How many parts (counted from the output) train after ``epoch`` epochs."""
        return min(len(self.parts), 1 + epoch // self.every)

    def _apply(self, n: int) -> None:
        for i, part in enumerate(self.parts):
            freeze(part, frozen=i < len(self.parts) - n)

    def on_train_begin(self, model: nn.Module, history: History) -> None:
        self._apply(self.trainable_parts(len(history)))

    def on_epoch_end(self, epoch: int, model: nn.Module, history: History) -> bool:
        self._apply(self.trainable_parts(epoch))
        return False


@torch.no_grad()
def reestimate_batchnorm(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> nn.Module:
    """Replace the running mean and variance of every batch-norm layer of ``model`` by the
    statistics of the images ``x`` (N, C, H, W) ("AdaBN"); the weights do not change.

    Each layer's statistics are the average over the batches of ``x`` (``momentum=None``,
    PyTorch's cumulative average), computed in train mode without gradients; the model is left in
    eval mode. Layers that are ``FrozenBatchNorm2d`` keep their statistics. Returns ``model``.
    """
    if x.ndim != 4 or len(x) < 2:
        raise ValueError(f"reestimate_batchnorm: expected x (N, C, H, W) with N >= 2, got shape "
                         f"{tuple(x.shape)}")
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             and not isinstance(m, FrozenBatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for start in range(0, len(x), batch_size):
        model(x[start:start + batch_size])
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    return model.eval()


def steps_to_accuracy(accuracies: Sequence[float], threshold: float) -> int | None:
    """The first 1-based index at which ``accuracies`` (one value per step or epoch) reaches
    ``threshold``, or None if it never does."""
    hits = [i for i, a in enumerate(accuracies, start=1) if a >= threshold]
    return hits[0] if hits else None
