"""Checkpointing in fit: atomic saves, exact resume on the CPU, interrupts keep the best weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from helpers.data import DeviceLoader
from helpers.training import Callback, fit


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("BOOK_PROGRESS", "0")


def setup(seed=0):
    """A dropout MLP on a shuffled DeviceLoader with momentum SGD and a step schedule."""
    g = torch.Generator().manual_seed(123)
    x = torch.randn(200, 6, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    train = DeviceLoader(x[:160], y[:160], 32, shuffle=True, seed=seed, device="cpu")
    val = DeviceLoader(x[160:], y[160:], 64, device="cpu")
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                                torch.nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, train, val, opt, sched


class InterruptAfter(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, model, history):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_resuming_after_an_interrupt_gives_the_uninterrupted_weights(tmp_path):
    model, train, val, opt, sched = setup()
    full = fit(model, train, val, opt, 6, scheduler=sched)
    reference = {k: v.clone() for k, v in model.state_dict().items()}

    path = tmp_path / "run.pt"
    model, train, val, opt, sched = setup()
    part = fit(model, train, val, opt, 6, scheduler=sched, checkpoint=path,
               callbacks=[InterruptAfter(3)])
    assert len(part) == 3 and path.is_file()
    torch.manual_seed(999)  # disturb the global RNG: resuming must restore it
    model, train, val, opt, sched = setup(seed=0)
    resumed = fit(model, train, val, opt, 6, scheduler=sched, checkpoint=path, resume=True)
    assert resumed.epoch == [1, 2, 3, 4, 5, 6]
    assert resumed["train_loss"] == full["train_loss"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, reference[key]), key


def test_interrupt_mid_epoch_keeps_history_and_restores_best_weights(capsys):
    model, train, val, opt, sched = setup()
    calls = {"n": 0}

    def loss_fn(out, y):
        calls["n"] += torch.is_grad_enabled()  # count training steps, not validation
        if calls["n"] == 5 * len(train) + 2:  # during epoch 6
            raise KeyboardInterrupt
        return torch.nn.functional.cross_entropy(out, y)

    history = fit(model, train, val, opt, 10, scheduler=sched, loss_fn=loss_fn)
    assert len(history) == 5
    best_epoch, _ = history.best("val_acc")
    assert f"best weights (epoch {best_epoch}" in capsys.readouterr().err
    from helpers.training import evaluate

    assert evaluate(model, val).accuracy == pytest.approx(max(history["val_acc"]))


def test_checkpoint_is_written_atomically_each_epoch(tmp_path, monkeypatch):
    model, train, val, opt, sched = setup()
    path = tmp_path / "sub" / "ckpt.pt"
    saved = []
    real_save = torch.save

    def spy(obj, f, *args, **kwargs):
        saved.append(str(f))
        assert not str(f).endswith("ckpt.pt"), "must write a temporary file, then rename"
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", spy)
    fit(model, train, val, opt, 2, scheduler=sched, checkpoint=path)
    assert len(saved) == 2 and path.is_file()
    assert not list(path.parent.glob(".*.tmp"))
    state = torch.load(path, weights_only=False)
    assert state["epoch"] == 2 and len(state["history"]["epoch"]) == 2
    assert state["best"]["metric"] == "val_acc"


def test_resume_without_a_file_starts_fresh_and_without_a_path_is_an_error(tmp_path):
    model, train, val, opt, _ = setup()
    h = fit(model, train, val, opt, 1, checkpoint=tmp_path / "none.pt", resume=True)
    assert h.epoch == [1]
    with pytest.raises(ValueError, match="resume=True needs a checkpoint"):
        fit(model, train, val, opt, 1, resume=True)


def test_rng_state_round_trip_and_bad_input(tmp_path):
    _, train, val, *_ = setup()
    state = rng_state([train, val])
    a = (torch.rand(3), next(iter(train))[1])
    set_rng_state(state, [train, val])
    b = (torch.rand(3), next(iter(train))[1])
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="loader generator"):
        set_rng_state(state, [])
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt", model=torch.nn.Linear(1, 1))
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a fit checkpoint"):
        load_checkpoint(tmp_path / "other.pt", model=torch.nn.Linear(1, 1))
    model, _, _, opt, _ = setup()
    save_checkpoint(tmp_path / "c.pt", epoch=1, model=model, optimizer=opt)
    with pytest.raises(ValueError, match="no scheduler state"):
        load_checkpoint(tmp_path / "c.pt", model=model, scheduler=setup()[4])


@pytest.mark.parametrize("options", [{"amp": True}, {"channels_last": True}])
def test_amp_and_channels_last_train_a_small_cnn(options):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(256, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    h = fit(model, [(x, y)], None, opt, 15, **options)
    assert h["train_loss"][-1] < h["train_loss"][0]
    if options.get("channels_last"):
        assert model[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_checkpoint_loads_with_weights_only(tmp_path):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    save_checkpoint(tmp_path / "c.pt", epoch=1, model=model, optimizer=opt)
    state = torch.load(tmp_path / "c.pt", weights_only=True)  # raises if anything else is inside
    assert isinstance(state["rng"]["numpy"]["key"], torch.Tensor)
    assert isinstance(state["rng"]["python"][1], list)


def test_numpy_and_python_rng_states_are_restored(tmp_path):
    import random

    saved = rng_state()
    expected = (random.random(), np.random.rand(3))  # noqa: NPY002
    set_rng_state(saved)
    assert random.random() == expected[0]
    np.testing.assert_array_equal(np.random.rand(3), expected[1])  # noqa: NPY002


def test_checkpoint_with_foreign_objects_is_refused(tmp_path):
    import fractions

    state = {"epoch": 1, "model": {}, "optimizer": {}, "rng": fractions.Fraction(1, 3)}
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="weights_only=True"):
        load_checkpoint(tmp_path / "bad.pt", model=torch.nn.Linear(1, 1))
