"""The capstone's table at full scale: every row of ``helpers.ablation.ROWS`` on all 60,000
Fashion-MNIST training images, scored on the 10,000 test images (``make reference``).

    python tools/reference.py --epochs 3 --seeds 0 1 2 3 4
    python tools/reference.py --epochs 30 --seeds 0 1 2 3 4 --side 28   # on a GPU

Chapter 9 runs the same rows on a small subset; this runs them on the whole training set, on
the best device present (CUDA, then MPS, then the CPU; ``BOOK_DEVICE`` overrides), with the
chapter's settings except the number of epochs. It writes ``--out`` (default
``benchmarks/reference/capstone.json``) after every row, so that an interrupted run leaves
the rows it finished, with the provenance: device, torch version, git commit, date, number
of images, image side, epochs, seeds, settings and wall time. Chapter 9 reads the file with
``helpers.ablation.read_reference``.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from helpers import ablation, data  # noqa: E402
from helpers.device import best_device, describe  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "reference" / "capstone.json"


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--side", type=int, choices=(14, 28), default=14,
                        help="image side: 14 (downsampled, as in chapter 9) or 28")
    parser.add_argument("--train-size", type=int, default=None,
                        help="a stratified subset of the training images (default: all 60,000)")
    parser.add_argument("--rows", type=str, nargs="*", default=None,
                        help="only the rows whose names start with these (default: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if len(args.seeds) < 2:
        parser.error("--seeds: give at least two seeds")

    device = best_device()
    fashion = data.load_fashion_mnist(val_fraction=0.0, train_size=args.train_size)
    factor = 28 // args.side
    train = data.Split(data.downsample(fashion.train.x, factor), fashion.train.y)
    test = data.Split(data.downsample(fashion.test.x, factor), fashion.test.y)
    settings = ablation.Settings(epochs=args.epochs)
    rows = [row for row in ablation.ROWS
            if not args.rows or any(row.name.startswith(r) for r in args.rows)]
    reference = {
        "device": describe(device), "torch": torch.__version__, "commit": commit(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "train_images": len(train.y), "test_images": len(test.y), "side": args.side,
        "epochs": args.epochs, "seeds": list(args.seeds), "wall_s": 0.0,
        "settings": {k: list(v) if isinstance(v, tuple) else v
                     for k, v in asdict(settings).items()},
        "rows": [],
    }
    print(f"{len(rows)} rows x {len(args.seeds)} seeds, {len(train.y):,} training images "
          f"({args.side}x{args.side}), {args.epochs} epochs, on {reference['device']}", flush=True)
    start = time.perf_counter()
    for row in rows:
        results = [ablation.train_row(row, train, test, settings, seed, device=device)
                   for seed in args.seeds]
        entry = {"name": row.name}
        for key in ablation.ROW_KEYS:
            entry[key] = [round(r.numbers()[key], 5) for r in results]
        entry["seconds"] = [round(r.seconds, 1) for r in results]
        reference["rows"].append(entry)
        reference["wall_s"] = round(time.perf_counter() - start, 1)
        ablation.write_reference(args.out, reference)
        means = {key: np.mean(entry[key]) for key in ablation.ROW_KEYS}
        print(f"{row.name:34s} train {means['train']:.4f} test {means['test']:.4f} "
              f"best {means['best_test']:.4f}  ({reference['wall_s']:.0f} s)", flush=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
