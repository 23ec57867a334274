"""Data-parallel training with ``fit``: DistributedDataParallel and a loader that shards batches.

Under ``torchrun --nproc_per_node=K script.py`` every process runs the same script:

    rank, world = distributed.init()                  # reads RANK/WORLD_SIZE set by torchrun
    model = distributed.wrap(model, device)           # DistributedDataParallel
    train = distributed.ShardedLoader(DeviceLoader(x, y, 256, shuffle=True, seed=0), rank, world)
    history = training.fit(model, train, val, optimizer, epochs)
    distributed.shutdown()

Every rank builds the same loader with the same seed, so all ranks see the same sequence of
global batches; ``ShardedLoader`` hands rank r the rows r, r + K, r + 2K, ... of each one.
DDP averages the gradients over the ranks after each backward pass, so with equal shards every
step equals a single-process step on the whole global batch, and all ranks keep identical
weights. On CPUs the ``gloo`` backend is used, on CUDA GPUs ``nccl``.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init(backend: str | None = None) -> tuple[int, int]:
    """Join the process group described by torchrun's environment; returns (rank, world_size).

    Without torchrun's variables (a plain ``python script.py``) nothing is initialized and
    (0, 1) is returned, so the same script also runs in a single process.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def wrap(model: torch.nn.Module, device: torch.device | str) -> torch.nn.Module:
    """``model`` on ``device``, wrapped in DistributedDataParallel when a group is running."""
    device = torch.device(device)
    model = model.to(device)
    if not dist.is_initialized():
        return model
    ids = [device.index if device.index is not None else 0] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shutdown() -> None:
    """Leave the process group (a no-op in a single process)."""
    if dist.is_initialized():
        dist.destroy_process_group()


class ShardedLoader:
    """Rank ``rank``'s share of every batch of ``loader``: rows rank, rank + world_size, ...

    ``loader`` yields (x, y) global batches in the same order on every rank (same seed). The
    global batch size should be a multiple of ``world_size`` so that every shard has the same
    size and the averaged gradient equals the single-process one. ``generator`` is the
    wrapped loader's, so checkpoints save the shuffling state.
    """

    def __init__(self, loader, rank: int, world_size: int):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(
                f"ShardedLoader: expected 0 <= rank < world_size, got rank {rank}, "
                f"world_size {world_size}"
            )
        self.loader, self.rank, self.world_size = loader, rank, world_size
        self.generator = getattr(loader, "generator", None)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, y in self.loader:
            if len(y) < self.world_size:
                raise ValueError(
                    f"ShardedLoader: a batch of {len(y)} cannot be split over "
                    f"{self.world_size} ranks; use batches of at least world_size rows"
                )
            yield x[self.rank :: self.world_size], y[self.rank :: self.world_size]
