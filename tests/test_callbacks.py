"""EarlyStopping: patience, min_delta, modes, restoring the best weights, inside fit."""

import math

import pytest
import torch

from helpers import training
from helpers.callbacks import EarlyStopping
from helpers.training import History


class Scripted(torch.nn.Module):
    """A one-weight model; the callbacks only look at the history we write."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))


def run(stopper, values, metric="val_loss"):
    """Feed ``values`` as successive epochs; the weight records the epoch number."""
    model, history = Scripted(), History()
    stopper.on_train_begin(model, history)
    last = 0
    for epoch, value in enumerate(values, start=1):
        with torch.no_grad():
            model.w.fill_(epoch)
        history.epoch.append(epoch)
        history[metric].append(value)
        last = epoch
        if stopper.on_epoch_end(epoch, model, history):
            break
    stopper.on_train_end(model, history)
    return last, model


def test_stops_after_patience_epochs_without_improvement_and_restores_best():
    stopper = EarlyStopping(patience=3)
    last, model = run(stopper, [1.0, 0.8, 0.9, 0.85, 0.81, 0.5])
    assert last == 5 and stopper.stopped_epoch == 5
    assert stopper.best_epoch == 2 and stopper.best_value == 0.8
    assert model.w.item() == 2.0  # the weights of epoch 2


def test_min_delta_ignores_tiny_improvements():
    stopper = EarlyStopping(patience=2, min_delta=0.05)
    last, _ = run(stopper, [1.0, 0.97, 0.96, 0.5])
    assert last == 3 and stopper.best_epoch == 1


def test_max_mode_for_accuracy_and_no_restore():
    stopper = EarlyStopping(monitor="val_acc", patience=2, restore_best_weights=False)
    assert stopper.mode == "max"
    last, model = run(stopper, [0.5, 0.7, 0.6, 0.65], metric="val_acc")
    assert last == 4 and stopper.best_epoch == 2
    assert model.w.item() == 4.0  # weights left as they were at the end


def test_nan_never_improves_and_running_out_of_epochs_still_restores():
    stopper = EarlyStopping(patience=5)
    last, model = run(stopper, [1.0, math.nan, 0.7, 0.9])
    assert last == 4 and stopper.stopped_epoch is None
    assert stopper.best_epoch == 3 and model.w.item() == 3.0


def test_state_is_reset_between_runs():
    stopper = EarlyStopping(patience=1)
    run(stopper, [0.1, 0.2])
    run(stopper, [5.0, 4.0, 4.5])
    assert stopper.best_value == 4.0 and stopper.best_epoch == 2


def test_inside_fit_on_a_model_that_overfits():
    torch.manual_seed(0)
    x, y = torch.randn(32, 20), torch.randint(0, 2, (32,))
    xv, yv = torch.randn(32, 20), torch.randint(0, 2, (32,))  # labels unrelated to inputs
    model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    stopper = EarlyStopping(patience=3)
    history = training.fit(model, [(x, y)], [(xv, yv)], torch.optim.Adam(model.parameters(), 0.05),
                           epochs=60, callbacks=[stopper], progress=False)
    assert len(history) < 60 and stopper.stopped_epoch == len(history)
    assert len(history) == stopper.best_epoch + 3
    restored = training.evaluate(model, [(xv, yv)]).loss
    assert abs(restored - min(history.val_loss)) < 1e-5


def test_missing_validation_metric_raises():
    model = Scripted()
    history = History()
    history.epoch.append(1)
    stopper = EarlyStopping()
    with pytest.raises(ValueError, match="no 'val_loss' values"):
        stopper.on_epoch_end(1, model, history)


@pytest.mark.parametrize("kwargs, message", [
    ({"monitor": "val_error"}, "monitor must be one of"),
    ({"patience": 0}, "patience an int >= 1"),
    ({"patience": 2.5}, "patience an int >= 1"),
    ({"min_delta": -0.1}, "min_delta >= 0"),
    ({"mode": "up"}, "mode must be"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EarlyStopping(**kwargs)
