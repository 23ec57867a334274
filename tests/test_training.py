"""Tests for helpers/training.py: fit, evaluate, predict, History, Callback and Progress."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from helpers import progress, training
from helpers.training import Callback, Evaluation, History, evaluate, fit, predict

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    """Progress off unless a test turns it on (``make unit`` sets these too)."""
    monkeypatch.setenv("BOOK_PROGRESS", "0")
    monkeypatch.delenv("TQDM_DISABLE", raising=False)


def blobs(n=256, seed=0):
    """Two linearly separable classes in 2-D: x (n, 2) float32, y (n,) int64."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) * 0.5 + (2.0 * y - 1.0).unsqueeze(1) * 1.5
    return x, y


def loaders(seed=0, batch_size=32):
    x, y = blobs(seed=seed)
    g = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(x[:192], y[:192]), batch_size=batch_size, shuffle=True,
                       generator=g)
    val = [(x[192:224], y[192:224]), (x[224:], y[224:])]  # a plain list of batches
    return train, val


def model_and_optimizer(seed=0, lr=0.1):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    return model, torch.optim.SGD(model.parameters(), lr=lr)


def run(epochs=5, seed=0, **kwargs):
    train, val = loaders(seed)
    model, opt = model_and_optimizer(seed, lr=kwargs.pop("lr", 0.1))
    return model, fit(model, train, val, opt, epochs, **kwargs)


def test_fit_learns_a_separable_problem():
    _, h = run(epochs=8)
    assert h["train_loss"][-1] < 0.5 * h["train_loss"][0]
    assert h["train_acc"][-1] > 0.95 and h["val_acc"][-1] > 0.95
    assert h["train_acc"][-1] >= h["train_acc"][0]


def test_history_shape_and_accessors():
    _, h = run(epochs=3)
    assert len(h) == 3 and h.epoch == [1, 2, 3]
    for key in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"):
        assert key in h and len(h[key]) == 3
    assert all(s > 0 for s in h["seconds"]) and h["lr"] == [0.1] * 3
    assert h.to_dict() == {k: getattr(h, k) for k in h.keys()}
    assert h.last()["epoch"] == 3 and set(h.last()) == set(h.keys())
    epoch, value = h.best("val_acc")
    assert value == max(h.val_acc) and h.val_acc[epoch - 1] == value
    epoch, value = h.best("val_loss")
    assert value == min(h.val_loss) and h.val_loss[epoch - 1] == value
    with pytest.raises(KeyError):
        h["nope"]


def test_history_errors():
    h = History()
    with pytest.raises(ValueError, match="no epochs"):
        h.last()
    with pytest.raises(ValueError, match="no recorded values"):
        h.best("val_acc")
    with pytest.raises(ValueError, match="'accuracy' is not one of"):
        h.best("accuracy")


def test_fit_without_validation_and_zero_epochs():
    train, _ = loaders()
    model, opt = model_and_optimizer()
    h = fit(model, train, None, opt, 2)
    assert len(h) == 2 and h.val_loss == [] and h.val_acc == []
    assert "val_loss" not in h.last()
    assert len(fit(model, train, None, opt, 0)) == 0


def test_fit_is_deterministic_on_cpu():
    _, a = run(epochs=3, seed=1)
    _, b = run(epochs=3, seed=1)
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        assert a[key] == b[key], key


def test_scheduler_steps_per_epoch():
    train, val = loaders()
    model, opt = model_and_optimizer(lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    h = fit(model, train, val, opt, 3, scheduler=sched)
    assert h.lr == pytest.approx([0.1, 0.05, 0.025])


def test_scheduler_steps_per_batch():
    train, val = loaders(batch_size=64)  # 192 samples: 3 batches per epoch
    model, opt = model_and_optimizer(lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    h = fit(model, train, val, opt, 2, scheduler=sched, scheduler_step="batch")
    assert h.lr == pytest.approx([0.1, 0.1 * 0.5**3])


def test_reduce_on_plateau_gets_the_validation_loss():
    train, val = loaders()
    model, opt = model_and_optimizer(lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    h = fit(model, train, val, opt, 2, scheduler=sched)
    assert sched.best == pytest.approx(min(h.val_loss))


def test_fit_validates_arguments():
    train, val = loaders()
    model, opt = model_and_optimizer()
    with pytest.raises(ValueError, match='"epoch" or "batch", got \'step\''):
        fit(model, train, val, opt, 1, scheduler_step="step")
    with pytest.raises(ValueError, match="epochs must be an int >= 0, got -1"):
        fit(model, train, val, opt, -1)
    with pytest.raises(ValueError, match="train yielded no batches"):
        fit(model, [], val, opt, 1)
    with pytest.raises(ValueError, match="data yielded no batches"):
        evaluate(model, [])


def test_callbacks_are_called_and_can_stop_early():
    calls = []

    class StopAtTwo(Callback):
        def on_train_begin(self, model, history):
            calls.append("begin")

        def on_epoch_end(self, epoch, model, history):
            calls.append(epoch)
            assert len(history) == epoch
            return epoch == 2

        def on_train_end(self, model, history):
            calls.append("end")

    _, h = run(epochs=10, callbacks=[StopAtTwo(), Callback()])
    assert len(h) == 2 and calls == ["begin", 1, 2, "end"]


@pytest.mark.parametrize("each_step", [True, False], ids=["per-step", "deferred-as-on-gpu"])
def test_non_finite_loss_names_epoch_and_step(monkeypatch, each_step):
    monkeypatch.setattr(training, "_checks_each_step", lambda device: each_step)
    x, y = blobs(64)
    bad = x[32:48].clone()
    bad[3, 0] = math.nan
    # NaN weights after step 3 make step 4 non-finite too; the error names the first.
    train = [(x[:16], y[:16]), (x[16:32], y[16:32]), (bad, y[32:48]), (x[48:], y[48:])]
    model, opt = model_and_optimizer()
    with pytest.raises(FloatingPointError, match=r"nan at epoch 1, step 3; lower the learning"):
        fit(model, train, None, opt, 2)


@pytest.mark.parametrize("each_step", [True, False], ids=["per-step", "deferred-as-on-gpu"])
def test_huge_learning_rate_overflows_after_the_first_step(monkeypatch, each_step):
    monkeypatch.setattr(training, "_checks_each_step", lambda device: each_step)
    x, y = blobs(64)
    model, opt = model_and_optimizer(lr=1e30)
    with pytest.raises(FloatingPointError, match=r"at epoch \d+, step \d+") as info:
        fit(model, [(x, y * 1)] * 2, None, opt, 50, loss_fn=lambda out, t: (out**2).mean())
    assert "epoch 1, step 1" not in str(info.value)


def test_evaluate_restores_modes_and_matches_a_direct_computation():
    train, val = loaders()
    model, opt = model_and_optimizer()
    model.train()
    model[1].eval()  # a submodule in its own mode must keep it
    result = evaluate(model, val)
    assert isinstance(result, Evaluation) and isinstance(result.loss, float)
    assert model.training and model[0].training and not model[1].training
    x = torch.cat([b[0] for b in val])
    y = torch.cat([b[1] for b in val])
    with torch.no_grad():
        logits = model(x)
    assert result.loss == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item())
    assert result.accuracy == pytest.approx((logits.argmax(1) == y).float().mean().item())


def test_non_class_targets_give_nan_accuracy():
    x, _ = blobs(32)
    target = x.sum(1, keepdim=True)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    h = fit(model, [(x, target)], [(x, target)], opt, 1, loss_fn=torch.nn.functional.mse_loss)
    assert math.isnan(h.train_acc[0]) and math.isnan(h.val_acc[0]) and h.val_loss[0] >= 0


def test_predict_tensor_and_batches_agree():
    x, y = blobs(50)
    model, _ = model_and_optimizer()
    a = predict(model, x, batch_size=7)
    b = predict(model, [(x[:20], y[:20]), (x[20:], y[20:])])
    assert a.shape == (50, 2) and a.device.type == "cpu" and not a.requires_grad
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        predict(model, x, batch_size=0)


def test_progress_disabled_prints_nothing(capsys):
    run(epochs=2, progress=True)  # BOOK_PROGRESS=0 from the fixture
    run(epochs=1, progress=False)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_progress_in_a_terminal_writes_a_bar_to_stderr(monkeypatch, capsys):
    monkeypatch.delenv("BOOK_PROGRESS")
    run(epochs=2, desc="blobs")
    out = capsys.readouterr()
    assert out.out == ""
    assert "blobs" in out.err and "2/2" in out.err and "train loss" in out.err


NOTEBOOK_CELL = """\
import os, torch
os.environ.pop("BOOK_PROGRESS", None); os.environ.pop("TQDM_DISABLE", None)
from helpers.training import fit
torch.manual_seed(0)
x = torch.randn(64, 2); y = (x[:, 0] > 0).long()
model = torch.nn.Linear(2, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.5)
history = fit(model, [(x[:32], y[:32]), (x[32:], y[32:])], [(x, y)], opt, 4, desc="tiny")
"""


def test_fit_in_a_notebook_stores_a_single_line():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(NOTEBOOK_CELL))
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                                     resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    outputs = nb.cells[0].outputs
    assert len(outputs) == 1, outputs
    assert outputs[0].output_type == "display_data"
    text = outputs[0].data["text/plain"]
    assert "\n" not in text.strip() and text.startswith("tiny: epoch 4/4 · train loss"), text


def test_kernel_detection_outside_jupyter():
    assert progress._in_jupyter_kernel() is False


def test_eval_mode_restores_each_module_and_keeps_a_frozen_batch_norm_frozen():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU())
    model.train()
    model[1].eval()  # frozen by the user
    with training.eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert model.training and model[0].training and not model[1].training
    with pytest.raises(RuntimeError), training.eval_mode(model):
        raise RuntimeError("modes are restored on errors too")
    assert model.training and not model[1].training


def test_decay_groups_decay_only_conv_and_linear_weights():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(8, 3))
    decayed, kept = training.decay_groups(model, 0.1)
    assert decayed["weight_decay"] == 0.1 and kept["weight_decay"] == 0.0
    assert [tuple(p.shape) for p in decayed["params"]] == [(2, 1, 3, 3), (3, 8)]
    assert [tuple(p.shape) for p in kept["params"]] == [(2,), (2,), (2,), (3,)]
    torch.optim.SGD([decayed, kept], lr=0.1)  # accepted by torch.optim
    with pytest.raises(ValueError, match="weight_decay must be >= 0, got -1"):
        training.decay_groups(model, -1)
