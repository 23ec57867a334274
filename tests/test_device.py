import numpy as np
import pytest
import torch

from helpers import device as dev
from helpers.reproducibility import seed_everything
from helpers.timing import benchmark, format_seconds


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


def test_seed_everything_makes_numpy_torch_and_generator_repeat():
    g1 = seed_everything(3)
    a = (np.random.rand(3), torch.rand(3), g1.standard_normal(3))  # noqa: NPY002
    g2 = seed_everything(3)
    b = (np.random.rand(3), torch.rand(3), g2.standard_normal(3))  # noqa: NPY002
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1]) and np.array_equal(a[2], b[2])
    assert torch.are_deterministic_algorithms_enabled()
    seed_everything(3, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()
    with pytest.raises(ValueError, match="non-negative int"):
        seed_everything(-1)


def test_benchmark_reports_median_and_best():
    calls = []
    timing = benchmark(lambda: calls.append(1), repeats=5, warmup=2)
    assert len(calls) == 7
    assert 0 <= timing.best <= timing.median and timing.repeats == 5
    assert "median of 5" in str(timing)
    fast = benchmark(lambda: None, repeats=3, warmup=0, min_time=1e-3)
    assert fast.median < 1e-3
    with pytest.raises(ValueError, match="repeats >= 1"):
        benchmark(lambda: None, repeats=0)


def test_format_seconds():
    assert format_seconds(2.3149) == "2.31 s"
    assert format_seconds(0.0125) == "12.5 ms"
    assert format_seconds(3.4e-6) == "3.4 µs"
    assert format_seconds(8.12e-7) == "812 ns"
