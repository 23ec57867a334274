"""Chapter 2's new exercise checks pass correct answers and fail stubs, wrong answers, shortcuts."""

import math

import numpy as np
import pytest
import torch
from conftest import stub

from helpers import init, numpy_nn
from helpers.checks import initialization as init_checks


def backward_stds(x, weights, grad_top):
    zs, h = [], x
    for w in weights:
        zs.append(h @ w.T)
        h = np.maximum(zs[-1], 0)
    g, out = grad_top, []
    for w, z in zip(weights[::-1], zs[::-1], strict=True):
        g = (g * (z > 0)) @ w
        out.append(g.std())
    return out[::-1]


def test_backward_stds_passes_a_correct_answer(capsys):
    init_checks.check_backward_stds(backward_stds)
    assert "check_backward_stds: passed" in capsys.readouterr().out


def test_backward_stds_fails_a_stub():
    with pytest.raises(NotImplementedError):
        init_checks.check_backward_stds(stub)


def no_mask(x, weights, grad_top):  # forgets relu': the linear network's backward pass
    g, out = grad_top, []
    for w in weights[::-1]:
        g = g @ w
        out.append(g.std())
    return out[::-1]


def mask_one_layer_off(x, weights, grad_top):  # uses the layer below's pre-activation
    zs, h = [x], x
    for w in weights:
        zs.append(h @ w.T)
        h = np.maximum(zs[-1], 0)
    g, out = grad_top, []
    for k in range(len(weights), 0, -1):
        g = g @ weights[k - 1]
        g = g * (zs[k - 1] > 0)
        out.append(g.std())
    return out[::-1]


def top_first(x, weights, grad_top):
    return backward_stds(x, weights, grad_top)[::-1]


def with_the_top(x, weights, grad_top):  # also lists std(dL/dh_L)
    return [*backward_stds(x, weights, grad_top), grad_top.std()]


def through_autograd(x, weights, grad_top):  # right numbers, but autograd did the derivation
    h = torch.tensor(x, requires_grad=True)
    inputs = []
    for w in weights:
        inputs.append(h)
        h.retain_grad()
        h = torch.relu(h @ torch.from_numpy(w).T)
    (h * torch.from_numpy(grad_top)).sum().backward()
    return [t.grad.std(unbiased=False).item() for t in inputs]


def through_the_layer_backwards(x, weights, grad_top):  # right numbers, the book's backwards
    hs, zs, h = [], [], x
    for w in weights:
        hs.append(h)
        zs.append(h @ w.T)
        h = np.maximum(zs[-1], 0)
    g, out = grad_top, []
    for w, z, h in zip(weights[::-1], zs[::-1], hs[::-1], strict=True):
        g = numpy_nn.linear_backward(numpy_nn.relu_backward(g, z), h, w)[0]
        out.append(g.std())
    return out[::-1]


@pytest.mark.parametrize("shortcut", [through_autograd, through_the_layer_backwards])
def test_backward_stds_refuses_autograd_and_the_layer_backwards(shortcut):
    originals = (torch.autograd.backward, numpy_nn.linear_backward, numpy_nn.relu_backward)
    with pytest.raises(AssertionError, match="write it yourself"):
        init_checks.check_backward_stds(shortcut)
    assert (torch.autograd.backward, numpy_nn.linear_backward, numpy_nn.relu_backward) == originals


@pytest.mark.parametrize("wrong", [no_mask, mask_one_layer_off, top_first, with_the_top])
def test_backward_stds_fails_wrong_answers(wrong):
    with pytest.raises(AssertionError, match="Hint"):
        init_checks.check_backward_stds(wrong)


def kaiming_normal(shape, rng, nonlinearity="relu", a=0.0, mode="fan_in"):
    receptive = math.prod(shape[2:])
    fan = shape[1] * receptive if mode == "fan_in" else shape[0] * receptive
    gain = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5 / 3, "relu": math.sqrt(2),
            "leaky_relu": math.sqrt(2 / (1 + a * a))}[nonlinearity]
    return rng.normal(0.0, gain / math.sqrt(fan), size=shape)


def test_kaiming_normal_passes_a_correct_answer(capsys):
    init_checks.check_kaiming_normal(kaiming_normal)
    assert "check_kaiming_normal: passed" in capsys.readouterr().out


def test_kaiming_normal_fails_a_stub():
    with pytest.raises(NotImplementedError):
        init_checks.check_kaiming_normal(stub)


def always_fan_in(shape, rng, nonlinearity="relu", a=0.0, mode="fan_in"):
    return kaiming_normal(shape, rng, nonlinearity, a, "fan_in")


def relu_gain_always(shape, rng, nonlinearity="relu", a=0.0, mode="fan_in"):
    return kaiming_normal(shape, rng, "relu", a, mode)


def leaky_gain_without_square(shape, rng, nonlinearity="relu", a=0.0, mode="fan_in"):
    w = kaiming_normal(shape, rng, nonlinearity, a, mode)
    return w * math.sqrt(1 + a * a) / (1 + a) if nonlinearity == "leaky_relu" else w


def uniform(shape, rng, nonlinearity="relu", a=0.0, mode="fan_in"):
    std = kaiming_normal(shape, np.random.default_rng(0), nonlinearity, a, mode).std()
    return rng.uniform(-math.sqrt(3) * std, math.sqrt(3) * std, size=shape)


@pytest.mark.parametrize(
    "wrong", [always_fan_in, relu_gain_always, leaky_gain_without_square, uniform]
)
def test_kaiming_normal_fails_wrong_answers(wrong):
    with pytest.raises(AssertionError, match="Hint"):
        init_checks.check_kaiming_normal(wrong)


def only_he(shape, rng, nonlinearity="relu", a=0.0, mode="fan_in"):  # the helper, whatever asked
    return init.kaiming_normal(shape, rng)


def through_helpers(shape, rng, nonlinearity="relu", a=0.0, mode="fan_in"):
    fan_in, fan_out = init.fan_in_fan_out(shape)
    gain = init.calculate_gain(nonlinearity, a)
    return rng.normal(0.0, gain / math.sqrt(fan_in if mode == "fan_in" else fan_out), shape)


def through_torch(shape, rng, nonlinearity="relu", a=0.0, mode="fan_in"):
    w = torch.empty(shape, dtype=torch.float64)
    return torch.nn.init.kaiming_normal_(w, a=a, mode=mode, nonlinearity=nonlinearity).numpy()


def only_torch_gain(shape, rng, nonlinearity="relu", a=0.0, mode="fan_in"):
    fan = math.prod(shape[2:]) * (shape[1] if mode == "fan_in" else shape[0])
    gain = torch.nn.init.calculate_gain(nonlinearity, a)
    return rng.normal(0.0, gain / math.sqrt(fan), shape)


def imported_helper(shape, rng, nonlinearity="relu", a=0.0, mode="fan_in"):
    return kaiming_from_helpers(shape, rng)


kaiming_from_helpers = init.kaiming_normal  # as `from helpers.init import kaiming_normal`


@pytest.mark.parametrize(
    "shortcut", [only_he, through_helpers, through_torch, only_torch_gain, imported_helper]
)
def test_kaiming_normal_refuses_the_helpers_and_restores_them(shortcut):
    originals = (init.kaiming_normal, init.calculate_gain, init.fan_in_fan_out,
                 torch.nn.init.kaiming_normal_, torch.nn.init.calculate_gain)  # fmt: skip
    with pytest.raises(AssertionError, match="write it yourself"):
        init_checks.check_kaiming_normal(shortcut)
    assert (init.kaiming_normal, init.calculate_gain, init.fan_in_fan_out,
            torch.nn.init.kaiming_normal_, torch.nn.init.calculate_gain) == originals  # fmt: skip
    assert kaiming_from_helpers is init.kaiming_normal
    assert init.kaiming_normal((3, 4), np.random.default_rng(0)).shape == (3, 4)
    init_checks.check_kaiming_normal(kaiming_normal)
