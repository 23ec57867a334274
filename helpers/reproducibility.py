"""One call that makes a run repeatable: seeds and deterministic algorithms."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int = 0, deterministic: bool = True) -> np.random.Generator:
    """Seed ``random``, NumPy's global state and torch (CPU and every GPU).

    With ``deterministic`` True, torch is asked for deterministic algorithms (with a warning,
    not an error, where an operation has none), cuDNN autotuning is turned off, and
    ``CUBLAS_WORKSPACE_CONFIG`` is set when CUDA is present, as cuBLAS needs for repeatable
    matrix products. Returns a fresh ``numpy.random.Generator`` seeded with ``seed``, the
    preferred source of randomness in the book's NumPy code.
    """
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed_everything: seed must be a non-negative int, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - legacy global state, seeded for old code
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.cuda.manual_seed_all(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    if hasattr(torch.backends, "cudnn"):
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
    return np.random.default_rng(seed)
