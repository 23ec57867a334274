"""Execute chapters top to bottom, each in a fresh kernel, several at a time.

    python tools/execute_chapters.py --out _build/executed chapters/*.ipynb   # make book
    python tools/execute_chapters.py chapters/01_convolution.ipynb            # make outputs

With ``--out`` the executed notebooks are written into that folder and ``chapters/`` is left
as it is (what `make book` does, so a reader's clone stays clean). Without it the outputs
are written back into the given notebooks (`make outputs`, for maintainers refreshing the
committed outputs); their .py twins are untouched, so each pair stays in sync.

``--jobs`` chapters run at once (default: one per core). Each kernel gets
``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` = cores // jobs (at least 1) unless
``OMP_NUM_THREADS`` is set already, so parallel chapters do not fight over cores. Prints
each chapter's wall time and the total; exits 1 if any chapter failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def execute(path: Path, out: Path, timeout: int, threads: int | None) -> float:
    """Run ``path`` in a fresh kernel (working directory: its folder) and write it to ``out``."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )  # fmt: skip
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    client.execute(env=env)
    seconds = time.perf_counter() - start
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=None,
                        help="write executed copies here (default: back into the notebooks)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    jobs = max(1, min(args.jobs, len(args.notebooks)))
    threads = None if "OMP_NUM_THREADS" in os.environ else max(1, (os.cpu_count() or 1) // jobs)
    where = f"into {args.out}" if args.out else "in place"
    print(f"executing {len(args.notebooks)} chapter(s) {where}, {jobs} at a time"
          + (f", {threads} thread(s) each" if threads else ""), flush=True)  # fmt: skip

    def run(path: Path):
        target = args.out / path.name if args.out else path
        try:
            seconds = execute(path, target, args.timeout, threads)
        except Exception as err:  # report every chapter, then fail
            print(f"  {path.name}: FAILED: {type(err).__name__}: {str(err)[-2000:]}", flush=True)
            return path, None
        print(f"  {path.name}: {seconds:.1f} s", flush=True)
        return path, seconds

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(run, args.notebooks))
    failed = [p.name for p, s in results if s is None]
    total = sum(s for _, s in results if s is not None)
    print(f"{len(results) - len(failed)} chapter(s) executed: {total:.1f} s of kernel time, "
          f"{time.perf_counter() - start:.1f} s wall")  # fmt: skip
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
