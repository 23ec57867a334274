import pytest
import torch

from helpers import device as dev


def test_best_device_falls_back_to_cpu_without_accelerators(monkeypatch):
    monkeypatch.delenv(dev.ENV_VAR, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    assert dev.best_device() == torch.device("cpu")


def test_best_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.delenv(dev.ENV_VAR, raising=False)
    monkeypatch.setattr(dev, "_mps_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dev.best_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert dev.best_device().type == "mps"


def test_environment_variable_overrides(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv(dev.ENV_VAR, "cpu")
    assert dev.best_device() == torch.device("cpu")


@pytest.mark.parametrize(
    ("value", "message"),
    [("gpu0", "not a device name"), ("cuda", "CUDA is not available"), ("mps", "MPS is not available")],
)
def test_bad_override_raises(monkeypatch, value, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    monkeypatch.setenv(dev.ENV_VAR, value)
    with pytest.raises(ValueError) as err:
        dev.best_device()
    assert message in str(err.value)


def test_describe_and_synchronize_on_cpu():
    assert dev.describe("cpu").startswith("cpu (")
    dev.synchronize("cpu")  # a no-op
