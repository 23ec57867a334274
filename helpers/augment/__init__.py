"""Batched image augmentations in torch that run where the batch lives (CPU or GPU).

Every function takes x: (N, C, H, W) float tensor with values in [0, 1] and returns a tensor
of the same shape (the crops: a smaller window), dtype and device, values still in [0, 1].
Random choices are made per image, all at once (no Python loop over images); pass a
``torch.Generator`` for repeatable draws (it may live on the CPU while x is on a GPU).
Parameters that vary per image accept a float or an (N,) tensor.

- geometry: ``hflip``, ``random_hflip``, ``translate``, ``random_crop`` (with padding),
  ``crop``, ``center_crop``, ``random_window`` (from a larger image), ``affine_theta``,
  ``affine``, ``random_affine``, ``homography``, ``perspective``, ``random_perspective``,
  ``resized_crop``, ``random_resized_crop``;
- photometry: ``adjust_brightness``, ``adjust_contrast``, ``adjust_saturation``,
  ``adjust_sharpness``, ``hue_matrix``, ``adjust_hue``, ``random_hue``, ``grayscale``,
  ``random_grayscale``, ``equalize``, ``color_jitter``, ``gaussian_noise``,
  ``salt_and_pepper``, ``gaussian_blur``, ``random_blur``, ``sobel``;
- occlusion: ``cutout``, ``random_erasing``;
- label mixing: ``mixup``, ``cutmix_boxes``, ``box_mask``, ``cutmix`` (targets become (N, K)
  probabilities; ``F.cross_entropy`` accepts them); ``mosaic`` (four images in one, for detection);
- policies and plumbing: ``rand_augment``, ``Augmented`` (wraps a loader), ``tta_probs``.

The functions live in one module per kind (``geometry``, ``photometry``, ``occlusion``,
``mixing``, ``policies``) and are all importable from here: ``augment.hflip(x)``.
"""

from helpers.augment._common import PADDING_MODES, RAND_AUGMENT_OPS
from helpers.augment.geometry import (
    affine,
    affine_theta,
    center_crop,
    crop,
    hflip,
    homography,
    perspective,
    random_affine,
    random_crop,
    random_hflip,
    random_perspective,
    random_resized_crop,
    random_window,
    resized_crop,
    translate,
)
from helpers.augment.mixing import (
    cutmix,
    cutmix_boxes,
    mixup,
    mosaic,
)
from helpers.augment.occlusion import (
    box_mask,
    cutout,
    random_erasing,
)
from helpers.augment.photometry import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    adjust_sharpness,
    color_jitter,
    equalize,
    gaussian_blur,
    gaussian_noise,
    grayscale,
    hue_matrix,
    random_blur,
    random_grayscale,
    random_hue,
    salt_and_pepper,
    sobel,
)
from helpers.augment.policies import (
    Augmented,
    rand_augment,
    tta_probs,
)

__all__ = [
    "PADDING_MODES",
    "RAND_AUGMENT_OPS",
    "Augmented",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "adjust_sharpness",
    "affine",
    "affine_theta",
    "box_mask",
    "center_crop",
    "color_jitter",
    "crop",
    "cutmix",
    "cutmix_boxes",
    "cutout",
    "equalize",
    "gaussian_blur",
    "gaussian_noise",
    "grayscale",
    "hflip",
    "homography",
    "hue_matrix",
    "mixup",
    "mosaic",
    "perspective",
    "rand_augment",
    "random_affine",
    "random_blur",
    "random_crop",
    "random_erasing",
    "random_grayscale",
    "random_hflip",
    "random_hue",
    "random_perspective",
    "random_resized_crop",
    "random_window",
    "resized_crop",
    "salt_and_pepper",
    "sobel",
    "translate",
    "tta_probs",
]
