"""helpers.quantization: real int8 models on the CPU (torchao PT2E, eager torch.ao), compiling
them, and counting their bytes."""

import pytest
import torch
import torch.nn as nn

from helpers import models
from helpers import quantization as hq


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return models.small_cnn(widths=(4, 8), side=8).eval()


@pytest.fixture(scope="module")
def calibration():
    g = torch.Generator().manual_seed(1)
    return [torch.randn(16, 1, 8, 8, generator=g) for _ in range(3)]


@pytest.fixture(scope="module")
def pt2e(cnn, calibration):
    return hq.quantize_pt2e_x86(cnn, calibration)


def relative_error(a, b):
    return float((a - b).abs().max() / b.abs().max())


def test_pt2e_is_close_to_fp32_and_leaves_the_model_alone(cnn, calibration, pt2e):
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    x = calibration[0]
    with torch.no_grad():
        assert relative_error(pt2e(x), cnn(x)) < 0.1
        assert pt2e(x[:3]).shape == (3, 10)  # the batch size is dynamic
    assert all(torch.equal(before[k], v) for k, v in cnn.state_dict().items())
    pt2e.eval()  # exported models accept .eval() after allow_exported_model_train_eval


def test_pt2e_keeps_int8_weights_and_used_state_drops_the_fp32_originals(cnn, pt2e):
    used = hq.used_state_dict(pt2e)
    int8 = [v for v in used.values() if v.dtype == torch.int8]
    assert sorted(v.numel() for v in int8) == sorted(
        m.weight.numel() for m in cnn if hasattr(m, "weight")
    )
    assert not any(v.dtype == torch.float32 and v.ndim > 1 for v in used.values())
    assert len(used) < len(pt2e.state_dict())


def test_compiled_int8_stays_close_to_fp32(cnn, pt2e, calibration):
    # The converted graph simulates int8 in fp32; the compiled one runs oneDNN's int8 kernels,
    # whose rounding and accumulation depend on the CPU (0.7% against 5.6% of the largest
    # logit on an AMD EPYC), so both are held to the same bound against fp32.
    x = calibration[1]
    compiled = hq.compile_cpu(pt2e, [x])
    with torch.no_grad():
        reference, ours = cnn(x), compiled(x)
        assert relative_error(ours, reference) < 0.1
        assert (ours.argmax(1) == reference.argmax(1)).float().mean() >= 0.8


def test_compile_cpu_keeps_fp32_results(cnn, calibration):
    x = calibration[2]
    compiled = hq.compile_cpu(cnn, [x])
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), cnn(x), atol=1e-5, rtol=1e-5)


def test_eager_int8_is_close_to_fp32_and_fuses_conv_relu(cnn, calibration):
    q = hq.quantize_eager_x86(cnn, calibration)
    x = calibration[0]
    with torch.no_grad():
        assert relative_error(q(x), cnn(x)) < 0.1
    kinds = [type(m).__name__ for m in q.net]
    assert kinds.count("ConvReLU2d") == 2 and kinds.count("Identity") == 2 and "Linear" in kinds
    assert isinstance(cnn[0], nn.Conv2d)  # the original is not fused


def test_eager_int8_runs_under_deterministic_mode_and_restores_it(cnn, calibration):
    q = hq.quantize_eager_x86(cnn, calibration)
    was = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True)  # errors, not warnings, on a flagged kernel
    try:
        with torch.no_grad():
            first, second = q(calibration[0]), q(calibration[0])
        assert torch.equal(first, second)
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(was[0], warn_only=was[1])


def test_bytes_of_fp32_int8_and_files(cnn, calibration, pt2e):
    n = models.count_parameters(cnn)
    fp32 = cnn.state_dict()
    assert hq.tensor_bytes(fp32) == 4 * n
    assert hq.saved_bytes(fp32) > 4 * n
    eager = hq.used_state_dict(hq.quantize_eager_x86(cnn, calibration))
    for state in (hq.used_state_dict(pt2e), eager):
        data = hq.tensor_bytes(state)
        assert n < data < 2 * n  # int8 weights plus float biases, scales and zero points
        assert hq.saved_bytes(state) > data


def test_tensor_bytes_counts_nested_tuples():
    state = {
        "a": torch.zeros(3, dtype=torch.int8),
        "b": (torch.zeros(2), [torch.zeros(1, dtype=torch.int64)]),
        "c": 5,
    }
    assert hq.tensor_bytes(state) == 3 + 8 + 8


@pytest.mark.parametrize("quantize", [hq.quantize_pt2e_x86, hq.quantize_eager_x86])
def test_quantizers_reject_other_models_and_no_calibration(quantize, cnn, calibration):
    with pytest.raises(ValueError, match="nn.Sequential of Conv2d"):
        quantize(nn.Conv2d(1, 2, 3), calibration)
    with pytest.raises(ValueError, match="BatchNorm2d"):
        quantize(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)), calibration)
    with pytest.raises(ValueError, match="on the CPU, got parameters on meta"):
        quantize(models.small_cnn(widths=(4, 8), side=8).to("meta"), calibration)
    with pytest.raises(ValueError, match="at least one"):
        quantize(cnn, [])


def test_compile_cpu_needs_an_example(cnn):
    with pytest.raises(ValueError, match="at least one"):
        hq.compile_cpu(cnn, [])
