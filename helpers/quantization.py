"""Real int8 inference on the CPU: PyTorch 2 export quantization (torchao's PT2E flow), the
deprecated eager-mode ``torch.ao.quantization`` flow for comparison, compiling, and model size.

torch 2.13 deprecates the quantized tensor types (``torch.quint8``, ``torch.qint8``) that
eager-mode ``torch.ao.quantization`` is built on, and its migration note sends eager users to
torchao's ``quantize_`` (which by default quantizes ``nn.Linear`` layers only) and graph
users to PT2E in torchao: ``torch.export`` the model, ``prepare_pt2e`` with a backend's
quantizer, calibrate, ``convert_pt2e``, then ``torch.compile`` lowers the quantize/dequantize
pattern to int8 kernels (oneDNN on x86). That path is ``quantize_pt2e_x86`` + ``compile_cpu``.
``quantize_eager_x86`` keeps the old eager flow (QuantStub, fused conv+ReLU, x86 backend)
so that its int8 kernels can be timed beside it while torch still ships them.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
import torch._inductor.config as inductor_config
import torch.ao.quantization as tq
from torch import nn


@contextlib.contextmanager
def _quiet_loggers(*names: str):
    """Raise the named loggers to ERROR inside the block."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


# torchao 0.18 logs that its CUDA-only extensions fail to load on a CPU build of torch, and
# torch 2.13 logs that torchao registers an Enum as a pytree constant; both are harmless here.
with _quiet_loggers("torchao", "torch.utils._pytree"):
    from torchao.quantization.pt2e import allow_exported_model_train_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer

_DEPRECATED = (
    r"(?s).*(quantized tensor creation functions|torch\.ao\.quantization is deprecated"
    r"|reduce_range will be deprecated|To copy construct from a tensor).*"
)


@contextlib.contextmanager
def _no_deprecation_warnings():
    """Silence only the deprecation notices of quantized tensors, of torch.ao.quantization and
    of its observers' reduce_range, and one internal copy-construct warning of inductor's
    oneDNN int8 lowering."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DEPRECATED)
        yield


def _check_cnn(fn: str, model: nn.Module) -> None:
    allowed = (nn.Conv2d, nn.Linear, nn.ReLU, nn.MaxPool2d, nn.Flatten)
    if not isinstance(model, nn.Sequential) or not all(isinstance(m, allowed) for m in model):
        kinds = (
            [type(m).__name__ for m in model]
            if isinstance(model, nn.Sequential)
            else type(model).__name__
        )
        raise ValueError(
            f"{fn}: model must be an nn.Sequential of Conv2d, Linear, ReLU, MaxPool2d "
            f"and Flatten on the CPU (like models.small_cnn()), got {kinds}"
        )
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError(
            f"{fn}: model must be on the CPU, got parameters on "
            f"{next(p.device for p in model.parameters() if p.device.type != 'cpu')}"
        )


def _batches(fn: str, calibration: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """The calibration batches as a list of CPU tensors; at least one is needed."""
    batches = [x.cpu() for x in calibration]
    if not batches:
        raise ValueError(f"{fn}: calibration must hold at least one (N, C, H, W) tensor, got none")
    return batches


def _calibrate(model: Callable, batches: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for x in batches:
            model(x)


def quantize_pt2e_x86(
    model: nn.Module, calibration: Iterable[torch.Tensor]
) -> torch.fx.GraphModule:
    """Static int8 post-training quantization with torchao's PT2E flow for x86 CPUs.

    model: an ``nn.Sequential`` CNN on the CPU (``models.small_cnn``); it is copied, not changed.
    calibration: (N, C, H, W) float32 batches whose activation ranges are observed.
    The copy is exported with a dynamic batch size, prepared with ``X86InductorQuantizer``'s
    default config (int8 weights, per-channel symmetric; uint8 activations, per-tensor affine
    with histogram observers), calibrated and converted. Returns the converted GraphModule:
    fp32 aten ops between quantize/dequantize ops on int8 weights, which ``compile_cpu`` lowers
    to int8 kernels. It accepts ``.eval()``, so ``training.evaluate`` can run it.
    """
    _check_cnn("quantize_pt2e_x86", model)
    batches = _batches("quantize_pt2e_x86", calibration)
    model = copy.deepcopy(model).eval()
    example = (batches[0],)
    batch = torch.export.Dim("batch", min=1)
    with _quiet_loggers("torchao", "torch.utils._pytree"):
        exported = torch.export.export(model, example, dynamic_shapes=({0: batch},)).module()
        quantizer = x86_inductor_quantizer.X86InductorQuantizer()
        quantizer.set_global(x86_inductor_quantizer.get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(exported, quantizer)
        _calibrate(prepared, batches)
        converted = convert_pt2e(prepared)
    return allow_exported_model_train_eval(converted)


@contextlib.contextmanager
def _deterministic_checks_off():
    """Turn torch's deterministic-algorithm checks off inside the block, then restore them."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(False)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


class _Quantized(nn.Module):
    """quant -> net -> dequant, the wrapper eager-mode torch.ao.quantization needs.

    The eager int8 kernels size their outputs with ``quantized_resize_cpu_``, which torch's
    deterministic mode flags (and, with ``warn_only``, warns about on every call); their
    results are the same from run to run, so the checks are off during the forward pass.
    """

    def __init__(self, net: nn.Sequential):
        super().__init__()
        self.quant, self.net, self.dequant = tq.QuantStub(), net, tq.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with _deterministic_checks_off():
            return self.dequant(self.net(self.quant(x)))


def quantize_eager_x86(model: nn.Module, calibration: Iterable[torch.Tensor]) -> nn.Module:
    """Static int8 post-training quantization with eager-mode ``torch.ao.quantization``
    (deprecated in torch 2.13), x86 backend.

    model: an ``nn.Sequential`` CNN on the CPU; it is copied, not changed. Each Conv2d followed
    by ReLU is fused into one module; the copy is wrapped in QuantStub/DeQuantStub, prepared
    with ``get_default_qconfig("x86")`` (uint8 activations with histogram observers, int8
    per-channel weights), calibrated on the (N, C, H, W) batches and converted to modules that
    run int8 kernels. Input and output stay float32, (N, C, H, W) -> (N, classes). Sets
    ``torch.backends.quantized.engine`` to "x86", the engine those kernels run on.
    """
    _check_cnn("quantize_eager_x86", model)
    batches = _batches("quantize_eager_x86", calibration)
    net = copy.deepcopy(model).eval()
    pairs = [
        [str(i), str(i + 1)]
        for i in range(len(net) - 1)
        if isinstance(net[i], nn.Conv2d) and isinstance(net[i + 1], nn.ReLU)
    ]
    wrapped = _Quantized(tq.fuse_modules(net, pairs) if pairs else net).eval()
    torch.backends.quantized.engine = "x86"
    wrapped.qconfig = tq.get_default_qconfig("x86")
    with _no_deprecation_warnings():
        tq.prepare(wrapped, inplace=True)
        _calibrate(wrapped, batches)
        tq.convert(wrapped, inplace=True)
    return wrapped


def compile_cpu(
    model: nn.Module, examples: Sequence[torch.Tensor]
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``torch.compile(model, dynamic=False)`` with inductor's freezing on, compiled here.

    Freezing turns weights into constants, which lets inductor prepack them and, for a
    ``quantize_pt2e_x86`` model, replace each dequantize -> conv/linear -> quantize pattern by
    one oneDNN int8 kernel. examples: (N, C, H, W) tensors, one per batch shape to be used
    later; each is run once now so that every compilation happens inside this call (a new
    shape later would recompile without freezing). Needs a C++ compiler, as inductor on the
    CPU always does. The model is put in eval mode; returns the compiled module (output
    (N, classes)). Inductor fixes a kernel's thread count when it compiles it, so set
    ``torch.set_num_threads`` before calling this to what the model will run with.
    """
    if not examples:
        raise ValueError(
            "compile_cpu: examples must hold at least one (N, C, H, W) tensor, got none"
        )
    model.eval()
    compiled = torch.compile(model, dynamic=False)
    with inductor_config.patch(freezing=True), _no_deprecation_warnings(), torch.no_grad():
        for x in examples:
            compiled(x.cpu())
    return compiled


def used_state_dict(model: nn.Module) -> dict[str, object]:
    """``model.state_dict()`` without entries the model never reads.

    For a ``torch.fx.GraphModule`` (what ``quantize_pt2e_x86`` returns) only the tensors its
    graph fetches are kept: ``convert_pt2e`` leaves the original float32 weights behind as
    unused attributes next to their folded int8 copies. Any other module: its whole state_dict.
    """
    state = model.state_dict()
    if not isinstance(model, torch.fx.GraphModule):
        return dict(state)
    read = {str(node.target) for node in model.graph.nodes if node.op == "get_attr"}
    return {name: value for name, value in state.items() if name in read}


def _tensors(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for v in value for t in _tensors(v)]
    return []


def tensor_bytes(state: Mapping[str, object]) -> int:
    """Bytes of the tensor data in a state dict (numel x element size, int8 = 1 byte, float32 =
    4), including tensors nested in tuples such as eager int8 modules' packed parameters."""
    with _no_deprecation_warnings():
        return sum(t.numel() * t.element_size() for v in state.values() for t in _tensors(v))


def saved_bytes(state: Mapping[str, object]) -> int:
    """Size in bytes of ``torch.save(state)``: the tensor data plus the file format's overhead
    (a zip archive with one record per tensor and the pickled structure)."""
    buffer = io.BytesIO()
    with _no_deprecation_warnings():
        torch.save(dict(state), buffer)
    return buffer.tell()
