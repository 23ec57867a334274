"""Execute chapters top to bottom, each in a fresh kernel, and write the outputs back.

    python tools/execute_chapters.py chapters/01_convolution.ipynb [...]

Used by `make book`. Prints each chapter's wall time. The .py twin is left untouched (only
outputs change), so the pair stays in sync.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute(path: Path, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    total = 0.0
    for path in args.notebooks:
        print(f"executing {path} ...", flush=True)
        seconds = execute(path, args.timeout)
        total += seconds
        print(f"  {path.name}: {seconds:.1f} s", flush=True)
    print(f"{len(args.notebooks)} chapter(s) executed in {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
