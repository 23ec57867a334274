"""The book's figures: one static matplotlib style and the grids and curves chapters draw.

Importing this module applies the style (``use_book_style``); chapters also call it in their
setup cell, after any ``%matplotlib`` magic, which is harmless. Every function returns the
``Figure`` without calling ``plt.show()``: a notebook displays a figure returned by a cell.
Figures are made with ``subplots`` below and released from pyplot, so each is shown once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
"""Okabe-Ito colours, readable by colour-blind readers, in the order lines use them."""

BOOK_STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.figsize": (6.0, 3.5),
    "figure.constrained_layout.use": True,
    "figure.facecolor": "white",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=COLORS),
    "lines.linewidth": 1.8,
    "legend.frameon": False,
    "image.cmap": "gray",
    "image.interpolation": "nearest",
}

_YLABELS = {"loss": "cross-entropy loss", "acc": "accuracy (%)", "lr": "learning rate",
            "seconds": "seconds per epoch"}


def use_book_style() -> None:
    """Apply ``BOOK_STYLE`` to matplotlib's rcParams (idempotent)."""
    mpl.rcParams.update(BOOK_STYLE)


use_book_style()


def subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """Like ``plt.subplots``, but the figure is released from pyplot at once.

    Returns (fig, axes) as ``plt.subplots`` does. A notebook then shows the figure once, when
    a cell returns it (an open pyplot figure would be shown a second time by the inline
    backend), and figures do not pile up in pyplot's memory.
    """
    fig, axes = plt.subplots(nrows, ncols, **kwargs)
    plt.close(fig)  # still drawable and displayable; only pyplot's registry forgets it
    return fig, axes


def _to_numpy(array) -> np.ndarray:
    """A NumPy array from an array-like or a torch tensor (on any device, with grad or not)."""
    if hasattr(array, "detach"):
        array = array.detach().cpu()
        array = (array.float() if array.is_floating_point() else array).numpy()
    return np.asarray(array)


def _grid(n: int, ncols: int, size: float, title: str | None, has_titles: bool):
    """A figure with ``n`` axes in rows of ``ncols`` (unused cells removed), axes off."""
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    height = size * nrows * (1.2 if has_titles else 1.0) + (0.4 if title else 0.0)
    fig, axes = subplots(nrows, ncols, figsize=(size * ncols, height), squeeze=False)
    flat = axes.ravel()
    for ax in flat[n:]:
        fig.delaxes(ax)
    for ax in flat[:n]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig, flat[:n]


def _as_images(images, caller: str) -> np.ndarray:
    """(N, H, W) or (N, H, W, 3) from (N, H, W), (N, 1, H, W), (N, 3, H, W) or (N, H, W, 3)."""
    x = _to_numpy(images)
    if x.ndim == 4 and x.shape[1] in (1, 3):
        x = x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)
    elif x.ndim == 4 and x.shape[3] in (1, 3):
        x = x[..., 0] if x.shape[3] == 1 else x
    elif x.ndim != 3:
        raise ValueError(f"{caller}: images must have shape (N, H, W), (N, 1, H, W), "
                         f"(N, 3, H, W) or (N, H, W, 3), got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{caller}: images must hold at least one image, got shape {x.shape}")
    return x


def _rescale(rgb: np.ndarray) -> np.ndarray:
    """Min-max scale one (H, W, 3) image to [0, 1]; a constant image becomes 0.5."""
    lo, hi = rgb.min(), rgb.max()
    return np.full_like(rgb, 0.5, dtype=float) if hi == lo else (rgb - lo) / (hi - lo)


def image_grid(images, labels: Sequence | None = None, ncols: int = 8, title: str | None = None,
               cmap: str = "gray", vmin: float | None = None, vmax: float | None = None,
               size: float = 1.3) -> Figure:
    """A grid of images, one per axis, titled with ``labels`` when given.

    images: NumPy array or tensor (N, H, W), (N, 1, H, W), (N, 3, H, W) or (N, H, W, 3).
    Grey images use ``cmap`` with ``vmin``/``vmax`` (each image scaled alone when None).
    Colour images in [0, 1] (float) or uint8 are shown as they are, others min-max scaled
    per image. ``labels``: N values shown as titles. ``size``: inches per image.
    """
    x = _as_images(images, "image_grid")
    n = x.shape[0]
    if labels is not None and len(labels) != n:
        raise ValueError(f"image_grid: got {n} images but {len(labels)} labels")
    fig, axes = _grid(n, ncols, size, title, labels is not None)
    for i, ax in enumerate(axes):
        img = x[i]
        if img.ndim == 2:
            ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax)
        else:
            in_range = img.dtype == np.uint8 or (img.min() >= 0 and img.max() <= 1)
            ax.imshow(img if in_range else _rescale(img))
        if labels is not None:
            ax.set_title(str(labels[i]), fontsize=8)
    return fig


def filter_grid(weights, ncols: int = 8, title: str | None = None) -> Figure:
    """Convolution filters, one per axis.

    weights: (F, C, KH, KW). With C == 3 each filter is min-max scaled alone and shown as
    RGB. Otherwise (C == 1, or the mean over the C channels for other C) filters share a
    diverging scale symmetric around 0: red positive, blue negative, white zero.
    """
    w = _to_numpy(weights)
    if w.ndim != 4 or w.shape[0] == 0:
        raise ValueError(f"filter_grid: weights must have shape (F, C, KH, KW), got {w.shape}")
    fig, axes = _grid(w.shape[0], ncols, 0.9, title, has_titles=False)
    if w.shape[1] == 3:
        for ax, f in zip(axes, w, strict=True):
            ax.imshow(_rescale(f.transpose(1, 2, 0)))
        return fig
    maps = w.mean(axis=1)
    vmax = float(np.abs(maps).max()) or 1.0
    for ax, f in zip(axes, maps, strict=True):
        ax.imshow(f, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    return fig


def feature_map_grid(maps, ncols: int = 8, title: str | None = None,
                     max_maps: int = 32) -> Figure:
    """The first ``max_maps`` channels of one feature map, (C, H, W) or (1, C, H, W).

    Each channel is scaled alone (grey colormap) and titled with its index.
    """
    m = _to_numpy(maps)
    if m.ndim == 4 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 3 or m.shape[0] == 0:
        raise ValueError(f"feature_map_grid: maps must have shape (C, H, W) or (1, C, H, W), "
                         f"got {m.shape}")
    if max_maps < 1:
        raise ValueError(f"feature_map_grid: max_maps must be >= 1, got {max_maps}")
    m = m[:max_maps]
    return image_grid(m, labels=[f"ch {i}" for i in range(len(m))], ncols=ncols, title=title,
                      size=1.1)


def _is_history(obj) -> bool:
    return hasattr(obj, "__getitem__") and "train_loss" in obj and not hasattr(
        obj["train_loss"], "keys")


def plot_history(histories, metrics: Sequence[str] = ("loss", "acc"),
                 title: str | None = None) -> Figure:
    """Learning curves: one subplot per metric, solid train, dashed validation, x = epoch.

    histories: one ``History`` (or a mapping with its keys, as ``History.to_dict()`` gives),
    or a dict ``{run name: History}`` drawn in one colour per run. Metrics "loss" and "acc"
    draw ``train_*`` and ``val_*`` (accuracy in %); other keys, such as "lr" or "seconds",
    draw that one list.
    """
    runs = {"": histories} if _is_history(histories) else histories
    if not isinstance(runs, Mapping) or not runs or not all(map(_is_history, runs.values())):
        raise ValueError("plot_history: expected a History or a non-empty dict of name -> "
                         f"History, got {type(histories).__name__}")
    if isinstance(metrics, str) or not metrics:
        raise ValueError(f"plot_history: expected a sequence of metric names, got {metrics!r}")
    width, height = mpl.rcParams["figure.figsize"]
    fig, axes = subplots(1, len(metrics), figsize=(width / 2 * max(2, len(metrics)), height),
                         squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for color, (name, h) in zip(COLORS * len(runs), runs.items(), strict=False):
            keys = [k for k in (f"train_{metric}", f"val_{metric}") if k in h] or [metric]
            if keys[0] not in h:
                raise ValueError(f"plot_history: unknown metric {metric!r}; expected loss, acc "
                                 f"or a History key ({', '.join(h.keys())})")
            for key, style in zip(keys, ("-", "--"), strict=False):
                values = np.asarray(h[key], dtype=float) * (100 if metric == "acc" else 1)
                if len(values):
                    split = key.split("_")[0] if key != metric else ""
                    label = " ".join(s for s in (name, split) if s) or None
                    ax.plot(h["epoch"], values, style, color=color, label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(_YLABELS.get(metric, metric))
        if metric == "lr":
            ax.set_yscale("log")
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def plot_lines(x, ys: Mapping[str, Sequence[float]], xlabel: str, ylabel: str,
               title: str | None = None, logy: bool = False, logx: bool = False) -> Figure:
    """Curves ``ys[name]`` against the shared ``x`` (each of the same length as ``x``).

    Markers are drawn when there are at most 20 points (a sweep); a legend when there is
    more than one curve.
    """
    x = _to_numpy(x)
    if x.ndim != 1:
        raise ValueError(f"plot_lines: x must have shape (P,), got {x.shape}")
    if not ys:
        raise ValueError("plot_lines: expected at least one curve in ys, got none")
    fig, ax = subplots()
    for name, y in ys.items():
        y = _to_numpy(y)
        if y.shape != x.shape:
            raise ValueError(f"plot_lines: curve {name!r} has shape {y.shape}, "
                             f"expected {x.shape} like x")
        ax.plot(x, y, marker="o" if len(x) <= 20 else None, markersize=4, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    if len(ys) > 1:
        ax.legend()
    if title:
        ax.set_title(title)
    return fig
