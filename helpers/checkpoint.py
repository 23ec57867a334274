"""Save and restore a training run: model, optimizer, scheduler, RNG states and history.

``helpers.training.fit(..., checkpoint=path)`` calls ``save_checkpoint`` after every epoch and
``fit(..., checkpoint=path, resume=True)`` calls ``load_checkpoint`` before the first, so an
interrupted run continues where it stopped and, on the CPU, ends with the same weights as an
uninterrupted one. Files are written atomically: to a temporary file first, then renamed, so a
crash while saving leaves the previous checkpoint intact.

Everything in a checkpoint is a tensor or a plain Python value (the NumPy and Python RNG
states are stored as a tensor and as lists of ints), so it loads with
``torch.load(..., weights_only=True)``, which cannot run code hidden in a file.
"""

from __future__ import annotations

import os
import pickle
import random
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch


def _generators(loaders: Iterable) -> list[torch.Generator]:
    """The torch.Generator of each loader that has one (DeviceLoader, DataLoader(generator=))."""
    return [g for g in (getattr(loader, "generator", None) for loader in loaders) if g is not None]


def _numpy_state() -> dict:
    """NumPy's legacy global state as plain values and a tensor (no ndarray)."""
    name, key, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    return {"name": str(name), "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}  # fmt: skip


def _python_state() -> list:
    version, words, gauss = random.getstate()
    return [version, list(words), gauss]


def rng_state(loaders: Iterable = ()) -> dict:
    """Every random state a training run reads: Python, NumPy's global, torch (CPU, CUDA) and
    the generators of the given data loaders (their shuffling order). Only tensors and plain
    Python values, so that the state loads with ``weights_only=True``."""
    return {
        "python": _python_state(),
        "numpy": _numpy_state(),  # the legacy global state is saved too
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "loaders": [g.get_state() for g in _generators(loaders)],
    }


def set_rng_state(state: dict, loaders: Iterable = ()) -> None:
    """Restore what ``rng_state`` saved; the loaders must be the same kind, in the same order."""
    version, words, gauss = state["python"]
    random.setstate((version, tuple(words), gauss))
    np_state = state["numpy"]
    key = np_state["key"].numpy().astype(np.uint32)
    np.random.set_state(  # noqa: NPY002
        (np_state["name"], key, np_state["pos"], np_state["has_gauss"], np_state["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    generators = _generators(loaders)
    if len(generators) != len(state["loaders"]):
        raise ValueError(
            f"set_rng_state: the checkpoint holds {len(state['loaders'])} loader generator(s) "
            f"but {len(generators)} loader(s) with a generator were given"
        )
    for generator, saved in zip(generators, state["loaders"], strict=True):
        generator.set_state(saved)


def save_checkpoint(path, *, epoch: int, model, optimizer, scheduler=None, history=None,
                    best=None, loaders: Iterable = ()) -> None:
    """Write the state of a run after ``epoch`` (1-based) to ``path``, atomically.

    Holds ``model``, ``optimizer`` and ``scheduler`` state dicts, ``history.to_dict()``, the
    best weights so far (``best``: a dict with epoch, metric, value and a CPU state dict) and
    ``rng_state(loaders)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": history.to_dict() if history is not None else None,
        "best": best,
        "rng": rng_state(loaders),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, *, model, optimizer=None, scheduler=None,
                    loaders: Iterable = ()) -> dict:
    """Restore a ``save_checkpoint`` file into the given objects; returns the saved dict.

    The file is read with ``weights_only=True``: tensors and plain Python values only, so a
    file that hides other objects is refused with a ValueError instead of running their code.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_checkpoint: no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"load_checkpoint: {path} holds objects other than tensors and plain values, "
            f"so it is not loaded (weights_only=True): {str(err).splitlines()[0]}"
        ) from err
    if not isinstance(state, dict):
        raise ValueError(f"load_checkpoint: {path} is not a fit checkpoint (not a dict)")
    missing = {"epoch", "model", "optimizer", "rng"} - set(state)
    if missing:
        raise ValueError(f"load_checkpoint: {path} is not a fit checkpoint (missing {missing})")
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        if state["scheduler"] is None:
            raise ValueError(f"load_checkpoint: {path} holds no scheduler state")
        scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"], loaders)
    return state
