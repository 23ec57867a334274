import pytest
import torch
from torch import nn

from helpers.models import count_parameters
from helpers.transfer import (
    FrozenBatchNorm2d,
    discriminative_lrs,
    first_layer_change,
    freeze,
    freeze_batchnorm,
    parameter_groups,
)


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def test_freeze_and_count():
    model = net()
    total = count_parameters(model)
    freeze(model[0])
    assert count_parameters(model) == total - 4 * 9 - 4
    freeze(model[0], frozen=False)
    assert count_parameters(model) == total


def test_parameter_groups_skip_frozen_parts_and_keep_lrs():
    model = net()
    freeze(model[0])
    groups = parameter_groups([model[0], model[3], model[5]], [1e-4, 1e-3, 1e-2])
    assert [g["lr"] for g in groups] == [1e-3, 1e-2]
    opt = torch.optim.SGD(groups, lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-2]
    with pytest.raises(ValueError, match="2 parts but 1 learning rates"):
        parameter_groups([model[0], model[3]], [0.1])
    with pytest.raises(ValueError, match=">= 0"):
        parameter_groups([model[3]], [-1.0])
    with pytest.raises(ValueError, match="every parameter is frozen"):
        parameter_groups([model[0]], [0.1])


def test_discriminative_lrs():
    assert discriminative_lrs(1.0, 3, 0.5) == [0.25, 0.5, 1.0]
    with pytest.raises(ValueError, match="0 < factor <= 1"):
        discriminative_lrs(1.0, 3, 2.0)


def test_frozen_batchnorm_ignores_train_mode_and_keeps_statistics():
    model = net()
    model.train()
    model(torch.randn(8, 1, 8, 8) * 3 + 1)  # give BN some running statistics
    reference = model.eval()(torch.ones(2, 1, 8, 8))
    freeze_batchnorm(model)
    assert sum(isinstance(m, FrozenBatchNorm2d) for m in model.modules()) == 2
    stats = model[1].running_mean.clone()
    model.train()
    out = model(torch.randn(8, 1, 8, 8) * 10)
    assert not model[1].training and torch.equal(model[1].running_mean, stats)
    assert torch.allclose(model(torch.ones(2, 1, 8, 8)), reference)
    out.sum().backward()
    assert model[1].weight.grad is None  # affine frozen too


def test_first_layer_change():
    a = torch.ones(2, 2)
    assert first_layer_change(a, a) == 0.0
    assert first_layer_change(a, 2 * a) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        first_layer_change(a, torch.ones(3))


def test_gradual_unfreezing_opens_one_part_per_period():
    from helpers.training import History
    from helpers.transfer import GradualUnfreezing

    model = net()
    parts = [model[0], model[3], model[5]]
    cb = GradualUnfreezing(parts, every=2)
    cb.on_train_begin(model, History())
    assert [next(p.parameters()).requires_grad for p in parts] == [False, False, True]
    cb.on_epoch_end(1, model, History())
    assert [next(p.parameters()).requires_grad for p in parts] == [False, False, True]
    cb.on_epoch_end(2, model, History())
    assert [next(p.parameters()).requires_grad for p in parts] == [False, True, True]
    cb.on_epoch_end(9, model, History())
    assert [next(p.parameters()).requires_grad for p in parts] == [True, True, True]
    with pytest.raises(ValueError, match="every must be an int >= 1"):
        GradualUnfreezing(parts, every=0)
    with pytest.raises(ValueError, match="at least one part"):
        GradualUnfreezing([], every=1)


def test_reestimate_batchnorm_matches_the_data_statistics():
    from helpers.transfer import reestimate_batchnorm

    model = net()
    x = torch.randn(64, 1, 8, 8) * 2 + 3
    reestimate_batchnorm(model, x, batch_size=64)
    assert not model.training
    assert torch.allclose(model[1].running_mean, model[0](x).mean(dim=(0, 2, 3)), atol=1e-5)
    assert model[1].momentum == 0.1
    weights = model[0].weight.clone()
    reestimate_batchnorm(model, x, batch_size=16)  # average of the batch statistics
    assert torch.allclose(model[1].running_mean, model[0](x).mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.equal(model[0].weight, weights)
    frozen = freeze_batchnorm(net())
    stats = frozen[1].running_mean.clone()
    reestimate_batchnorm(frozen, x)
    assert torch.equal(frozen[1].running_mean, stats)
    with pytest.raises(ValueError, match="expected x"):
        reestimate_batchnorm(model, torch.randn(1, 1, 8, 8))


def test_steps_to_accuracy():
    from helpers.transfer import steps_to_accuracy

    assert steps_to_accuracy([0.1, 0.5, 0.7, 0.6], 0.6) == 3
    assert steps_to_accuracy([0.1, 0.2], 0.6) is None
