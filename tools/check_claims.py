"""Re-run chapters at other seeds and thread counts and list every claim that fails.

    python tools/check_claims.py --chapters 01 03 --seeds 1 2 3 --threads 1 2
    python tools/check_claims.py --chapters 07 --seeds 5 --set EPOCHS=3 --jobs 2

Used by `make claims` (SEEDS, CHAPTERS, THREADS, SET and JOBS are passed through). Each run
reads the chapter's jupytext `.py` (the reviewed source), inserts a cell right after the
parameters cell that sets ``SEED`` and any ``--set NAME=VALUE`` overrides (as papermill
does), and executes it top to bottom in a fresh kernel with errors allowed, so that one
failing claim does not hide the next. The kernel gets ``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS`` set to the thread count (torch and the BLAS read them when they start)
and progress bars off. Cells tagged ``raises-exception`` (errors shown on purpose) do not
count as failures. Nothing is written back into ``chapters/``.

The report lists each run (chapter, seed, threads, seconds, failing cells) and then every
failing cell with its error. The exit status is 1 when any cell failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ARROW = re.compile(r"^\s*-+>\s*\d+")  # IPython marks the failing line "---> 12"


def find_chapter(key: str) -> Path:
    """``"03"``, ``"3"``, ``"03_optimizers"`` or a path -> chapters/03_optimizers.py."""
    path = Path(key)
    if path.suffix in (".py", ".ipynb") and path.exists():
        return path.with_suffix(".py").resolve()
    prefix = key.zfill(2) if key.isdigit() else key
    matches = sorted(CHAPTERS.glob(f"{prefix}*.py"))
    if len(matches) != 1:
        found = ", ".join(p.name for p in sorted(CHAPTERS.glob("[0-9][0-9]_*.py")))
        raise SystemExit(f"check_claims: expected one chapter matching {key!r}; chapters: {found}")
    return matches[0]


def parse_set(items: list[str]) -> dict[str, str]:
    """["EPOCHS=3", "NAME='x'"] -> {"EPOCHS": "3", "NAME": "'x'"} (values are Python code)."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier() or not value:
            raise SystemExit(f"check_claims: --set expects NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def injected_notebook(py: Path, seed: int, overrides: dict[str, str]):
    """The chapter as a notebook with a cell after the parameters cell that sets SEED and
    the overrides. Raises SystemExit when the chapter has no parameters cell."""
    import jupytext
    import nbformat

    nb = jupytext.read(py)
    index = next(
        (i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None
    )
    if index is None:
        raise SystemExit(f"check_claims: {py.name} has no cell tagged `parameters`")
    lines = [f"SEED = {seed}"] + [f"{k} = {v}" for k, v in overrides.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(index + 1, cell)
    return nb, index + 1


def run_one(py: Path, seed: int, threads: int, overrides: dict[str, str], timeout: int) -> dict:
    """Execute one chapter in this process's kernel; returns the run's failures as a dict."""
    from nbclient import NotebookClient

    nb, injected = injected_notebook(py, seed, overrides)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=True,
        resources={"metadata": {"path": str(py.parent)}},
    )  # fmt: skip
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    failures = []
    for i, cell in enumerate(nb.cells):
        if "raises-exception" in cell.metadata.get("tags", []):
            continue  # a cell that demonstrates an error on purpose
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            trace = [ANSI.sub("", t) for t in out.get("traceback", [])]
            arrow = [ln.strip() for t in trace for ln in t.splitlines() if ARROW.match(ln)]
            failures.append(
                {
                    "cell": i - (i > injected),  # numbered as in the chapter
                    "first_line": (cell.source.strip().splitlines() or [""])[0],
                    "error": f"{out.get('ename')}: {out.get('evalue')}".strip(),
                    "line": arrow[-1] if arrow else "",
                }
            )
    return {"chapter": py.stem, "seed": seed, "threads": threads, "seconds": seconds,
            "overrides": overrides, "failures": failures}  # fmt: skip


def run_isolated(py: Path, seed: int, threads: int, overrides, timeout: int,
                 env_extra: dict[str, str] | None = None) -> dict:  # fmt: skip
    """``run_one`` in a child process whose environment sets the thread count (and
    ``env_extra``, such as the claims ledger's file)."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), BOOK_PROGRESS="0", TQDM_DISABLE="1")  # fmt: skip
    env.update(env_extra or {})
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--one", str(py), "--seeds", str(seed),
               "--threads", str(threads), "--timeout", str(timeout), "--result", str(result_file)]
        cmd += [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]  # fmt: skip
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not result_file.exists():
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
            failure = {"cell": -1, "first_line": "", "line": "", "error": f"the run failed: {tail}"}
            return {"chapter": py.stem, "seed": seed, "threads": threads, "seconds": float("nan"),
                    "overrides": overrides, "failures": [failure]}  # fmt: skip
        return json.loads(result_file.read_text())


def report(results: list[dict]) -> str:
    lines = ["| chapter | seed | threads | seconds | failing cells |", "|---|---|---|---|---|"]
    for r in results:
        cells = ", ".join(str(f["cell"]) for f in r["failures"]) or "none"
        row = (r["chapter"], r["seed"], r["threads"], f"{r['seconds']:.0f}", cells)
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    failed = [(r, f) for r in results for f in r["failures"]]
    lines.append("")
    if not failed:
        lines.append(f"all claims held: {len(results)} run(s), no failing cell")
    for r, f in failed:
        where = f"{r['chapter']} seed={r['seed']} threads={r['threads']} cell {f['cell']}"
        lines.append(f"FAIL {where} ({f['first_line'][:60]})")
        if f["line"]:
            lines.append(f"     at {f['line'][:160]}")
        lines.append(f"     {f['error'][:400]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", nargs="+", default=None, help="e.g. 01 03 (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--threads", nargs="+", type=int, default=[1])
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a parameter (Python expression); repeatable")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1, help="runs at the same time")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    overrides = parse_set(args.set)
    if args.one:  # child process: one chapter, one seed, threads already set in its env
        result = run_one(args.one, args.seeds[0], args.threads[0], overrides, args.timeout)
        args.result.write_text(json.dumps(result))
        return 0
    if any(t < 1 for t in args.threads) or args.jobs < 1:
        raise SystemExit("check_claims: --threads and --jobs must be >= 1")
    keys = args.chapters or [p.name[:2] for p in sorted(CHAPTERS.glob("[0-9][0-9]_*.py"))]
    chapters = [find_chapter(k) for k in keys]
    runs = [(c, s, t) for c in chapters for s in args.seeds for t in args.threads]
    print(f"check_claims: {len(runs)} run(s) of {', '.join(c.stem for c in chapters)}; "
          f"seeds {args.seeds}, threads {args.threads}"
          + (f", overrides {overrides}" if overrides else ""), flush=True)  # fmt: skip

    def go(run):
        result = run_isolated(*run, overrides, args.timeout)
        status = "ok" if not result["failures"] else f"{len(result['failures'])} failing cell(s)"
        print(f"  {result['chapter']} seed={result['seed']} threads={result['threads']}: "
              f"{status} ({result['seconds']:.0f} s)", flush=True)  # fmt: skip
        return result

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(go, runs))
    print()
    print(report(results))
    return 1 if any(r["failures"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
