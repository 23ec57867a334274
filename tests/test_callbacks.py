"""EarlyStopping: patience, min_delta, modes, restoring the best weights, inside fit.
WeightEMA: the closed form, warm-up, buffers, per-step and per-epoch updates, parity with
torch.optim.swa_utils.AveragedModel, devices."""

import math

import pytest
import torch

from helpers import training
from helpers.callbacks import EarlyStopping, WeightEMA
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
    ({"patience": 0}, r"patience must be an int >= 1"),
    ({"patience": 2.5}, r"patience must be an int >= 1"),
    ({"min_delta": -0.1}, r"min_delta must be >= 0"),
    ({"mode": "up"}, "mode must be"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EarlyStopping(**kwargs)


# --- WeightEMA ---------------------------------------------------------------------------


def _set_weights(model, value):
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)


def test_ema_equals_the_closed_form_average():
    model = torch.nn.Linear(3, 2)
    thetas = [1.0, -2.0, 4.0, 0.5, 3.0]
    d = 0.8
    ema = WeightEMA(decay=d)
    for theta in thetas:
        _set_weights(model, theta)
        ema.update(model)
    t = len(thetas)
    want = d ** (t - 1) * thetas[0] + sum((1 - d) * d ** (t - i) * thetas[i - 1]
                                          for i in range(2, t + 1))
    assert ema.num_updates == t
    for value in ema.state_dict().values():
        assert torch.allclose(value, torch.full_like(value, want), atol=1e-6)


def test_warmup_uses_the_smaller_decay_early_on():
    model = torch.nn.Linear(2, 1, bias=False)
    ema = WeightEMA(decay=0.5, warmup=True)
    avg = None
    for t, theta in enumerate([3.0, 1.0, -1.0, 2.0, 5.0]):
        _set_weights(model, theta)
        d = min(0.5, (1 + t) / (10 + t))
        assert ema.current_decay() == pytest.approx(d)
        ema.update(model)
        avg = theta if avg is None else d * avg + (1 - d) * theta
    assert torch.allclose(ema.state_dict()["weight"], torch.tensor([[avg, avg]]), atol=1e-6)
    assert WeightEMA(decay=0.999, warmup=True).current_decay() == pytest.approx(0.1)


def _bn_net():
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
                               torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(36, 3))


def test_per_step_updates_match_averaged_model_including_buffers():
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    torch.manual_seed(0)
    model = _bn_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ema = WeightEMA(decay=0.7, optimizer=optimizer)
    ema.on_train_begin(model, History())
    reference = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.7), use_buffers=True)
    reference.update_parameters(model)
    for _ in range(6):
        x, y = torch.randn(8, 1, 5, 5), torch.randint(0, 3, (8,))
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()  # the hook updates the EMA
        reference.update_parameters(model)
    ema.on_train_end(model, History())
    assert ema.num_updates == 7
    ours, theirs = ema.state_dict(), reference.module.state_dict()
    assert ours.keys() == theirs.keys()
    for key, value in ours.items():
        if value.is_floating_point():
            assert torch.allclose(value, theirs[key], atol=1e-6), key
    running = ours["1.running_mean"]
    assert not torch.allclose(running, model.state_dict()["1.running_mean"])  # averaged, not copied
    assert torch.equal(ours["1.num_batches_tracked"], model.state_dict()["1.num_batches_tracked"])
    optimizer.step()  # the hook is gone after training
    assert ema.num_updates == 7


def test_inside_fit_updates_per_step_or_per_epoch():
    torch.manual_seed(0)
    x, y = torch.randn(40, 1, 5, 5), torch.randint(0, 3, (40,))
    batches = [(x[:20], y[:20]), (x[20:], y[20:])]
    model = _bn_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    per_step = WeightEMA(decay=0.9, optimizer=optimizer)
    per_epoch = WeightEMA(decay=0.9)
    training.fit(model, batches, None, optimizer, epochs=3, callbacks=[per_step, per_epoch],
                 progress=False)
    assert per_step.num_updates == 1 + 3 * 2 and per_epoch.num_updates == 1 + 3
    before = {k: v.clone() for k, v in model.state_dict().items()}
    averaged = per_step.averaged_model(model)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    for key, value in averaged.state_dict().items():
        assert torch.allclose(value.float(), per_step.state_dict()[key].float()), key
    assert not torch.allclose(averaged[0].weight, model[0].weight)
    assert per_step.apply_to(model) is model
    assert torch.allclose(model[0].weight, averaged[0].weight)


def test_a_new_fit_starts_a_new_average():
    model = torch.nn.Linear(2, 1)
    ema = WeightEMA(decay=0.5)
    _set_weights(model, 10.0)
    ema.update(model)
    _set_weights(model, 1.0)
    ema.on_train_begin(model, History())
    assert ema.num_updates == 1
    assert torch.allclose(ema.state_dict()["weight"], torch.ones(1, 2))


def test_average_keeps_the_models_device_and_a_float32_or_wider_dtype():
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for dtype, want in [(torch.float64, torch.float64), (torch.bfloat16, torch.float32)]:
            model = torch.nn.Linear(2, 2).to(device=device, dtype=dtype)
            ema = WeightEMA(decay=0.5)
            ema.update(model)
            ema.update(model)
            for value in ema.state_dict().values():
                assert value.device.type == device and value.dtype == want
            assert ema.apply_to(model).weight.dtype == dtype


def test_ema_errors():
    for decay in [1.0, -0.1, True, "0.9"]:
        with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
            WeightEMA(decay=decay)
    with pytest.raises(ValueError, match="torch.optim.Optimizer"):
        WeightEMA(optimizer=torch.nn.Linear(1, 1))
    with pytest.raises(ValueError, match="no average yet"):
        WeightEMA().state_dict()
