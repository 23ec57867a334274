"""Tests for helpers/plotting.py: the style, the image grids and the curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from helpers import plotting  # noqa: E402
from helpers.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def visible_axes(fig: Figure) -> int:
    return sum(ax.get_visible() for ax in fig.axes)


def history(epochs=4, with_val=True, offset=0.0) -> History:
    h = History()
    for e in range(1, epochs + 1):
        h.epoch.append(e)
        h.train_loss.append(1.0 / e + offset)
        h.train_acc.append(0.5 + 0.1 * e)
        if with_val:
            h.val_loss.append(1.2 / e + offset)
            h.val_acc.append(0.45 + 0.1 * e)
        h.lr.append(0.1 / e)
        h.seconds.append(0.5)
    return h


def test_use_book_style_is_idempotent():
    plotting.use_book_style()
    plotting.use_book_style()
    assert matplotlib.rcParams["image.cmap"] == "gray"
    assert matplotlib.rcParams["figure.dpi"] == 100
    assert not matplotlib.rcParams["axes.spines.top"]


@pytest.mark.parametrize(
    "shape", [(5, 8, 8), (5, 1, 8, 8), (5, 3, 8, 8), (5, 8, 8, 3)],
    ids=["NHW", "N1HW", "N3HW", "NHW3"],
)
def test_image_grid_shapes(shape):
    rng = np.random.default_rng(0)
    fig = plotting.image_grid(rng.random(shape), labels=list("abcde"), ncols=3, title="t")
    assert isinstance(fig, Figure) and visible_axes(fig) == 5
    assert [ax.get_title() for ax in fig.axes] == list("abcde")
    assert all(not ax.axison for ax in fig.axes)


def test_image_grid_accepts_tensors_and_unscaled_rgb():
    images = torch.randn(3, 3, 6, 6, requires_grad=True) * 5
    fig = plotting.image_grid(images)
    assert visible_axes(fig) == 3
    rgb = fig.axes[0].get_images()[0].get_array()
    assert rgb.min() >= 0 and rgb.max() <= 1
    fig = plotting.image_grid(np.zeros((2, 4, 4, 3), dtype=np.uint8), ncols=8)
    assert visible_axes(fig) == 2


@pytest.mark.parametrize("shape", [(8, 8), (2, 2, 8, 8), (2, 8, 8, 2), (0, 8, 8), (1, 2, 3, 4, 5)])
def test_image_grid_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match=r"image_grid: images must (have shape|hold at least one image).*got (shape )?\("):
        plotting.image_grid(np.zeros(shape))


def test_image_grid_rejects_wrong_label_count():
    with pytest.raises(ValueError, match="got 3 images but 2 labels"):
        plotting.image_grid(np.zeros((3, 4, 4)), labels=[0, 1])


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_filter_grid(channels):
    w = torch.randn(6, channels, 3, 3)
    fig = plotting.filter_grid(w, ncols=4, title="filters")
    assert visible_axes(fig) == 6
    if channels != 3:
        image = fig.axes[0].get_images()[0]
        vmin, vmax = image.get_clim()
        assert image.get_cmap().name == "RdBu_r" and vmin == -vmax > -np.inf


@pytest.mark.parametrize("shape", [(3, 3, 3), (0, 1, 3, 3)])
def test_filter_grid_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match=r"filter_grid: weights must have shape \(F, C, KH, KW\)"):
        plotting.filter_grid(np.zeros(shape))


def test_feature_map_grid():
    fig = plotting.feature_map_grid(torch.rand(1, 40, 5, 5), max_maps=10)
    assert visible_axes(fig) == 10 and fig.axes[9].get_title() == "ch 9"
    assert visible_axes(plotting.feature_map_grid(np.random.default_rng(0).random((4, 5, 5)))) == 4


def test_feature_map_grid_rejects_bad_input():
    with pytest.raises(ValueError, match=r"maps must have shape \(C, H, W\) or \(1, C, H, W\)"):
        plotting.feature_map_grid(np.zeros((2, 3, 5, 5)))
    with pytest.raises(ValueError, match="max_maps must be >= 1, got 0"):
        plotting.feature_map_grid(np.zeros((3, 5, 5)), max_maps=0)


def test_plot_history_single_run():
    fig = plotting.plot_history(history(), title="run")
    assert visible_axes(fig) == 2
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_xlabel() == "epoch" and loss_ax.get_ylabel() == "cross-entropy loss"
    assert acc_ax.get_ylabel() == "accuracy (%)"
    styles = [line.get_linestyle() for line in loss_ax.get_lines()]
    assert styles == ["-", "--"]
    assert acc_ax.get_lines()[0].get_ydata()[0] == pytest.approx(60.0)
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["train", "val"]


def test_plot_history_several_runs_and_plain_dicts():
    runs = {"sgd": history(), "adam": history(with_val=False, offset=0.1).to_dict()}
    fig = plotting.plot_history(runs, metrics=("loss", "acc", "lr"))
    assert visible_axes(fig) == 3
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3  # sgd train + val, adam train only
    assert lines[0].get_color() == lines[1].get_color() != lines[2].get_color()
    assert fig.axes[2].get_yscale() == "log"


def test_plot_history_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        plotting.plot_history(history(), metrics=("f1",))
    with pytest.raises(ValueError, match="expected a History or a non-empty dict"):
        plotting.plot_history({"a": [1, 2]})
    with pytest.raises(ValueError, match="expected a sequence of metric names"):
        plotting.plot_history(history(), metrics="loss")


def test_plot_lines():
    x = np.array([1, 2, 4, 8])
    fig = plotting.plot_lines(x, {"a": x * 2.0, "b": torch.tensor([1.0, 2, 3, 4])},
                              "batch size", "ms per step", title="sweep", logy=True, logx=True)
    ax = fig.axes[0]
    assert visible_axes(fig) == 1 and len(ax.get_lines()) == 2 and ax.get_legend() is not None
    assert ax.get_yscale() == "log" and ax.get_xscale() == "log" and ax.get_title() == "sweep"
    single = plotting.plot_lines(x, {"a": x}, "x", "y")
    assert single.axes[0].get_legend() is None


def test_plot_lines_rejects_bad_input():
    with pytest.raises(ValueError, match=r"curve 'a' has shape \(3,\), expected \(4,\)"):
        plotting.plot_lines(np.arange(4), {"a": np.arange(3)}, "x", "y")
    with pytest.raises(ValueError, match=r"x must have shape \(P,\)"):
        plotting.plot_lines(np.zeros((2, 2)), {"a": np.arange(4)}, "x", "y")
    with pytest.raises(ValueError, match="at least one curve"):
        plotting.plot_lines(np.arange(4), {}, "x", "y")


def test_figures_are_not_registered_with_pyplot():
    before = plt.get_fignums()
    fig, ax = plotting.subplots(figsize=(3, 2))
    plotting.plot_lines([1, 2], {"a": [1, 2]}, "x", "y")
    assert plt.get_fignums() == before
    assert tuple(fig.get_size_inches()) == (3, 2)
