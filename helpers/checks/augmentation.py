"""Exercise checks for chapter 5, data augmentation: batched translation, MixUp, CutMix's lambda.

Each compares a reader's function with the reference in ``helpers.augment`` on random inputs;
a stub's NotImplementedError propagates, so a check fails on an unfinished exercise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from helpers import augment
from helpers.checks._common import compare, fail, passed


def check_translate(translate: Callable, seed: int = 0) -> None:
    """``translate(x (N, C, H, W), shifts (N, 2) ints (dy, dx)) -> (N, C, H, W)``, zeros in."""
    name = "check_translate"
    g = torch.Generator().manual_seed(seed)
    hint = (
        "output pixel (i, j) of image n is input pixel (i - dy, j - dx) when that lies inside "
        "the image, else 0 (no wrap-around as in torch.roll); gather all images at once"
    )
    cases = [(4, 1, 8, 8, 3), (3, 3, 6, 9, 5), (5, 2, 7, 5, 0), (2, 1, 5, 5, 6)]
    for n, c, h, w, s in cases:
        x = torch.rand(n, c, h, w, generator=g)
        shifts = torch.randint(-s, s + 1, (n, 2), generator=g)
        want = augment.translate(x, shifts)
        compare(
            name,
            f"x {(n, c, h, w)}, shifts {shifts.tolist()}",
            translate(x, shifts),
            want,
            hint,
            rtol=0.0,
            atol=1e-6,
        )
    passed(name, len(cases))


def check_mixup(mixup: Callable, seed: int = 0) -> None:
    """``mixup(x, y, lam (N,), perm (N,), num_classes) -> (x_mix, targets (N, K))``."""
    name = "check_mixup"
    g = torch.Generator().manual_seed(seed)
    hint = (
        "x_mix[i] = lam[i] * x[i] + (1 - lam[i]) * x[perm[i]] and the same mix of the one-hot "
        "labels; reshape lam to broadcast over (C, H, W)"
    )
    cases = [(6, 3, 4), (5, 1, 10), (8, 2, 2)]
    for n, c, k in cases:
        x, y = torch.rand(n, c, 5, 5, generator=g), torch.randint(0, k, (n,), generator=g)
        lam, perm = torch.rand(n, generator=g), torch.randperm(n, generator=g)
        one_hot = F.one_hot(y, k).float()
        l4 = lam[:, None, None, None]
        want_x = l4 * x + (1 - l4) * x[perm]
        want_t = lam[:, None] * one_hot + (1 - lam[:, None]) * one_hot[perm]
        got = mixup(x, y, lam, perm, k)
        if not isinstance(got, tuple) or len(got) != 2:
            raise fail(name, f"N={n}", "expected a pair (x_mix, targets)", hint)
        compare(
            name,
            f"x {(n, c, 5, 5)}, K={k} (images)",
            got[0],
            want_x,
            hint,
            rtol=0.0,
            atol=1e-6,
        )
        compare(
            name,
            f"x {(n, c, 5, 5)}, K={k} (targets)",
            got[1],
            want_t,
            hint,
            rtol=0.0,
            atol=1e-6,
        )
    passed(name, len(cases))


def check_cutmix_lambda(cutmix_lambda: Callable, seed: int = 0) -> None:
    """``cutmix_lambda(boxes (N, 4) (top, left, bottom, right), height, width) -> lam (N,)``.

    Boxes may stick out of the image; lam is the fraction of the image *outside* the clipped box.
    """
    name = "check_cutmix_lambda"
    g = torch.Generator().manual_seed(seed)
    hint = (
        "clip top/bottom to [0, height] and left/right to [0, width] before taking the area; "
        "lam = 1 - clipped area / (height * width)"
    )
    cases = [(10, 8, 8), (20, 12, 7), (15, 5, 9)]
    for n, h, w in cases:
        top, left = torch.randint(-4, h, (n,), generator=g), torch.randint(-4, w, (n,), generator=g)
        bh, bw = torch.randint(0, h, (n,), generator=g), torch.randint(0, w, (n,), generator=g)
        boxes = torch.stack([top, left, top + bh, left + bw], 1)
        clipped = torch.stack(
            [
                boxes[:, 0].clamp(0, h),
                boxes[:, 1].clamp(0, w),
                boxes[:, 2].clamp(0, h),
                boxes[:, 3].clamp(0, w),
            ],
            1,
        )
        want = 1 - augment.box_mask(clipped, h, w).flatten(1).double().mean(1)
        compare(
            name,
            f"{n} boxes in a {h}x{w} image",
            cutmix_lambda(boxes, h, w),
            want,
            hint,
            rtol=0.0,
            atol=1e-6,
        )
    passed(name, len(cases))
