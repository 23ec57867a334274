"""Transfer learning: freezing layers, per-layer learning rates, and batch norm held in eval mode.

Works on any ``torch.nn.Module``; the examples use ``helpers.models.resnet``, whose parts are
``stem``, ``blocks`` (one module per residual block) and ``fc``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


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
