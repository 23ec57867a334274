"""Checks for the exercises, one module per chapter topic, all importable from here.

Each check takes a reader's function, compares it with a reference (PyTorch where one
exists) on random inputs, and either prints one line saying it passed or raises
AssertionError with a hint. A stub's NotImplementedError propagates, so a check fails on an
unfinished exercise. Chapters call them as ``checks.check_max_pool2d(my_max_pool2d)``.
"""

from helpers.checks.augmentation import (
    check_cutmix_lambda,
    check_mixup,
    check_translate,
    check_translate_backward,
)
from helpers.checks.capstone import (
    check_ema_every_k,
    check_ema_update,
    check_flip_tta,
    check_warmup_cosine,
)
from helpers.checks.conv import (
    check_conv2d,
    check_conv2d_backward_dx,
    check_max_pool2d,
    check_receptive_field,
)
from helpers.checks.init_optim import (
    check_adam_step,
    check_clip_grad_norm,
    check_fan_in_fan_out,
    check_forward_stds,
    check_triangular_lr,
    check_velocity_momentum_step,
    check_xavier_uniform,
)
from helpers.checks.initialization import check_backward_stds, check_kaiming_normal
from helpers.checks.normalization import (
    check_batch_norm_backward,
    check_fold_batch_norm,
    check_group_norm,
)
from helpers.checks.regularization import (
    check_adamw_step,
    check_dropout,
    check_focal_loss_grad,
    check_label_smoothing_loss,
)
from helpers.checks.residual import (
    check_drop_path,
    check_pad_shortcut,
    check_preact_block,
    check_residual_block_backward,
)
from helpers.checks.transfer import check_bn_eval, check_freeze_first, check_head_gradients

__all__ = [
    "check_adam_step",
    "check_adamw_step",
    "check_backward_stds",
    "check_batch_norm_backward",
    "check_bn_eval",
    "check_clip_grad_norm",
    "check_conv2d",
    "check_conv2d_backward_dx",
    "check_cutmix_lambda",
    "check_drop_path",
    "check_dropout",
    "check_focal_loss_grad",
    "check_ema_every_k",
    "check_ema_update",
    "check_fan_in_fan_out",
    "check_flip_tta",
    "check_fold_batch_norm",
    "check_forward_stds",
    "check_freeze_first",
    "check_group_norm",
    "check_head_gradients",
    "check_kaiming_normal",
    "check_label_smoothing_loss",
    "check_max_pool2d",
    "check_mixup",
    "check_pad_shortcut",
    "check_preact_block",
    "check_receptive_field",
    "check_residual_block_backward",
    "check_translate",
    "check_translate_backward",
    "check_triangular_lr",
    "check_velocity_momentum_step",
    "check_warmup_cosine",
    "check_xavier_uniform",
]
