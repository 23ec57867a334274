"""scripts/train_ddp.py under torchrun: two CPU ranks (gloo) end with identical weights."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_ddp.py"


def torchrun() -> list[str]:
    found = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "torch.distributed.run"]


@needs_fashion_mnist
def test_two_ranks_train_the_chapter_network_to_identical_weights():
    env = dict(os.environ, OMP_NUM_THREADS="1", BOOK_PROGRESS="0", CUDA_VISIBLE_DEVICES="")
    cmd = [*torchrun(), "--standalone", "--nproc_per_node=2", str(SCRIPT),
           "--epochs", "1", "--train-size", "512"]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    # the two ranks share one stdout, so their lines may interleave: search, don't split
    digests = dict(re.findall(r"rank (\d): weights digest ([0-9a-f]{16})", result.stdout))
    assert set(digests) == {"0", "1"}, result.stdout
    assert digests["0"] == digests["1"]
    final = re.findall(r"ranks 2, device cpu, train images 512, epochs 1, [\d.]+ s: "
                       r"test accuracy [01]\.\d{4}", result.stdout)
    assert len(final) == 1, result.stdout


def test_arguments_are_checked():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import train_ddp
    finally:
        sys.path.remove(str(SCRIPT.parent))
    with pytest.raises(SystemExit):
        train_ddp.parse_args(["--epochs", "0"])
    assert train_ddp.parse_args(["--train-size", "512"]).train_size == 512
