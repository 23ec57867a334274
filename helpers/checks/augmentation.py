"""Exercise checks for chapter 5, data augmentation: batched translation and its backward
pass, MixUp, CutMix's lambda.

Each compares a reader's function with a reference (``helpers.augment``, or torch autograd
through it) on random inputs; a stub's NotImplementedError propagates, so a check fails on an
unfinished exercise. While the reader's function runs, the ``helpers.augment`` functions that
would do the exercise raise: the point is to write it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from helpers import augment
from helpers.checks._common import compare, fail, passed, written_by_hand

# what each exercise must not call: the book's own implementation of it
_TRANSLATION = ("translate", "random_crop")


def _not_the_library(name: str, answer: Callable, names: tuple[str, ...]) -> None:
    """Fail when the answer *is* one of ``augment.<names>`` (passed itself, not called: the
    blocking of ``written_by_hand`` cannot catch a reference taken before it starts)."""
    for helper in names:
        if answer is getattr(augment, helper):
            raise fail(
                name,
                None,
                f"this exercise asks you to write it yourself; "
                f"do not pass helpers.augment.{helper}",
                "write the function yourself",
            )


def check_translate(translate: Callable, seed: int = 0) -> None:
    """``translate(x (N, C, H, W), shifts (N, 2) ints (dy, dx)) -> (N, C, H, W)``, zeros in."""
    name = "check_translate"
    g = torch.Generator().manual_seed(seed)
    hint = (
        "output pixel (i, j) of image n is input pixel (i - dy, j - dx) when that lies inside "
        "the image, else 0 (no wrap-around as in torch.roll); gather all images at once"
    )
    _not_the_library(name, translate, _TRANSLATION)
    cases = [(4, 1, 8, 8, 3), (3, 3, 6, 9, 5), (5, 2, 7, 5, 0), (2, 1, 5, 5, 6)]
    for n, c, h, w, s in cases:
        x = torch.rand(n, c, h, w, generator=g)
        shifts = torch.randint(-s, s + 1, (n, 2), generator=g)
        want = augment.translate(x, shifts)
        with written_by_hand(name, augment, _TRANSLATION):
            ours = translate(x.clone(), shifts.clone())
        compare(
            name,
            f"x {(n, c, h, w)}, shifts {shifts.tolist()}",
            ours,
            want,
            hint,
            rtol=0.0,
            atol=1e-6,
        )
    passed(name, len(cases))


def check_translate_backward(translate_backward: Callable, seed: int = 0) -> None:
    """``translate_backward(grad_out (N, C, H, W), shifts (N, 2) ints (dy, dx)) -> grad_in``.

    grad_out is the upstream gradient of ``augment.translate(x, shifts)`` (zeros fill the
    uncovered border); the answer must return dL/dx with x's shape, checked against torch
    autograd through ``augment.translate`` in float64. While it runs, ``augment.translate``
    and ``augment.random_crop`` raise.
    """
    name = "check_translate_backward"
    _not_the_library(name, translate_backward, _TRANSLATION)
    g = torch.Generator().manual_seed(seed)
    hint = (
        "output pixel (i, j) reads input pixel (i - dy, j - dx), so input pixel (a, b) receives "
        "the gradient of output pixel (a + dy, b + dx): shift grad_out back by (-dy, -dx), and "
        "give 0 to input pixels whose target (a + dy, b + dx) lies outside the image (they were "
        "pushed out and never read); no wrap-around as in torch.roll"
    )
    cases = [  # N, C, H, W, largest |shift|; H != W in two, so that swapped axes fail
        (4, 1, 8, 8, 3),
        (3, 3, 6, 9, 5),
        (5, 2, 7, 5, 4),
        (2, 1, 5, 5, 0),
    ]
    for n, c, h, w, s in cases:
        x = torch.rand(n, c, h, w, generator=g, dtype=torch.float64).requires_grad_(True)
        shifts = torch.randint(-s, s + 1, (n, 2), generator=g)
        if s:  # one image moved as far as it goes along each axis
            shifts[0] = torch.tensor([min(s, h - 1), -min(s, w - 1)])
        grad_out = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
        augment.translate(x, shifts).backward(grad_out)
        with written_by_hand(name, augment, _TRANSLATION):
            ours = translate_backward(grad_out.clone(), shifts.clone())
        compare(
            name,
            f"grad_out {(n, c, h, w)}, shifts {shifts.tolist()}",
            ours,
            x.grad,
            hint,
            rtol=0.0,
            atol=1e-12,
            what="grad_in",
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
        with written_by_hand(name, augment, ("mixup",)):
            got = mixup(x.clone(), y.clone(), lam.clone(), perm.clone(), k)
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
        with written_by_hand(name, augment, ("box_mask", "cutmix")):
            ours = cutmix_lambda(boxes.clone(), h, w)
        compare(
            name,
            f"{n} boxes in a {h}x{w} image",
            ours,
            want,
            hint,
            rtol=0.0,
            atol=1e-6,
        )
    passed(name, len(cases))
