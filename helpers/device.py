"""Pick the device a chapter runs on: CUDA, then Apple MPS, then the CPU.

Set the environment variable ``BOOK_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) to
override the choice, for example to time the CPU path on a machine that has a GPU.
"""

from __future__ import annotations

import os

import torch

ENV_VAR = "BOOK_DEVICE"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def best_device() -> torch.device:
    """Return the device to use: ``$BOOK_DEVICE`` if set, else CUDA, else MPS, else CPU.

    An override naming a device that this machine does not have raises ``ValueError``.
    """
    wanted = os.environ.get(ENV_VAR, "").strip()
    if wanted:
        try:
            device = torch.device(wanted)
        except RuntimeError as err:
            raise ValueError(
                f"best_device: {ENV_VAR}={wanted!r} is not a device name; "
                "expected cpu, cuda, cuda:N or mps"
            ) from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"best_device: {ENV_VAR}={wanted!r} but CUDA is not available")
        if device.type == "mps" and not _mps_available():
            raise ValueError(f"best_device: {ENV_VAR}={wanted!r} but Apple MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe(device: torch.device | str) -> str:
    """A one-line description of ``device`` for a chapter's setup cell."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda ({torch.cuda.get_device_name(index)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def synchronize(device: torch.device | str) -> None:
    """Wait until all work queued on ``device`` has finished (a no-op on the CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
