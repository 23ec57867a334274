"""fit under DistributedDataParallel: two CPU processes (gloo) agree with one process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from helpers.data import DeviceLoader
from helpers.distributed import ShardedLoader, init, wrap

SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from helpers import distributed
    from helpers.data import DeviceLoader
    from helpers.training import fit

    out = sys.argv[1]
    rank, world = distributed.init()
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(256, 1, 6, 6, generator=g)
    y = (x[:, 0, :3].sum((1, 2)) > x[:, 0, 3:].sum((1, 2))).long()
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(64, 2))
    model = distributed.wrap(net, "cpu")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train = DeviceLoader(x, y, 32, shuffle=True, seed=0, device="cpu")
    fit(model, distributed.ShardedLoader(train, rank, world), None, opt, 3, progress=False)
    torch.save(net.state_dict(), f"{out}/rank{rank}.pt")
    distributed.shutdown()
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(tmp_path, nproc: int) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", BOOK_PROGRESS="0")
    if nproc == 1:
        cmd = [sys.executable, str(script), str(tmp_path / "single")]
        (tmp_path / "single").mkdir()
    else:
        (tmp_path / "ddp").mkdir()
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               "--master_addr=127.0.0.1", f"--master_port={free_port()}",
               str(script), str(tmp_path / "ddp")]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]


def test_two_gloo_ranks_match_each_other_and_a_single_process(tmp_path):
    run(tmp_path, 1)
    run(tmp_path, 2)
    single = torch.load(tmp_path / "single" / "rank0.pt")
    rank0 = torch.load(tmp_path / "ddp" / "rank0.pt")
    rank1 = torch.load(tmp_path / "ddp" / "rank1.pt")
    for key in single:
        assert torch.equal(rank0[key], rank1[key]), f"ranks disagree on {key}"
        assert torch.allclose(rank0[key], single[key], atol=1e-5), f"DDP != single on {key}"


def test_single_process_defaults_and_sharding():
    assert "RANK" not in os.environ
    assert init() == (0, 1)
    model = wrap(torch.nn.Linear(2, 2), "cpu")
    assert isinstance(model, torch.nn.Linear)
    loader = DeviceLoader(torch.arange(12.0).reshape(6, 2), torch.arange(6), 6, device="cpu")
    shards = [next(iter(ShardedLoader(loader, r, 3)))[1].tolist() for r in range(3)]
    assert shards == [[0, 3], [1, 4], [2, 5]]
    assert len(ShardedLoader(loader, 0, 3)) == 1


def test_sharded_loader_rejects_bad_ranks_and_tiny_batches():
    loader = DeviceLoader(torch.zeros(3, 2), torch.zeros(3), 2, device="cpu")
    with pytest.raises(ValueError, match="0 <= rank < world_size"):
        ShardedLoader(loader, 2, 2)
    with pytest.raises(ValueError, match="cannot be split"):
        list(ShardedLoader(loader, 0, 2))
