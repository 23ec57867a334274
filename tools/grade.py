"""Grade a folder of returned notebooks without nbgrader: every exercise check, per student.

    python tools/grade.py SUBMISSIONS --out OUT [--jobs 2] [--cell-timeout 120] [--full-size]

Used by `make grade SUBMISSIONS=<folder> OUT=<folder>`. SUBMISSIONS holds one folder per
student with the returned chapters in it, ``SUBMISSIONS/<student>/NN_topic.ipynb``. Each
notebook is copied to a temporary folder (nothing in SUBMISSIONS is modified) and prepared:

- each check cell (one calling ``checks.check_*``, found by that name) gets the chapter's own
  source back, so an edited check grades like the original; a deleted one is "missing";
- a cell after the parameters cell sets the small sizes of ``SMALL_SIZES`` (as
  tools/check_claims.py's ``--set`` does), so that grading takes seconds, not minutes. The
  chapter's experiments may then miss their claims; only the checks are graded.

It then runs top to bottom in a fresh kernel, in a child process, errors allowed, with a time
limit per cell and per notebook and a cap on the text it may print. Each exercise (each check
of the chapter, in order) is

- ``passed``: the check cell ran without an error;
- ``failed``: the check raised AssertionError (its message carries the hint);
- ``not attempted``: NotImplementedError, the stub left in place;
- ``error``: any other exception, or the notebook stopped before the check (the reason says why);
- ``timeout``: the check cell, or the notebook, ran out of time;
- ``missing``: the check cell was deleted.

A passed check earns ``CHECK_POINTS`` (tools/make_nbgrader.py, the same as in nbgrader).
Written exercises are graded by hand; the feedback lists them. OUT gets

- ``grades.csv``: one row per student and chapter, one column per exercise (the check's name)
  with its status, then points, max_points and the reason when the notebook did not run through;
- ``feedback/<student>_NN_topic.md``: each check's status and message (a failing check's
  message ends with its hint), and the errors of the other cells.

A submission that is not valid JSON, raises, loops, prints megabytes or deletes cells gets its
row with the reason, and grading goes on. Student code runs with your permissions: grade
submissions you do not trust in a container or a throwaway account.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_nbgrader  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
CHAPTER_NAME = re.compile(r"^(\d\d)_\w+$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CELL_TIMEOUT = 120  # seconds, per cell
NOTEBOOK_TIMEOUT = 600  # seconds, per notebook
MAX_OUTPUT = 1_000_000  # characters of text (stdout, stderr, text results, tracebacks)
STATUSES = ("passed", "failed", "not attempted", "error", "timeout", "missing")

# Small sizes for grading, per chapter number (values are Python code). The checks use their
# own inputs; these only shorten the chapter's data loading, training runs and experiments.
SMALL_SIZES: dict[str, dict[str, str]] = {
    "01": {"TRAIN_SIZE": "1000", "EPOCHS": "1", "SHIFT_IMAGES": "100", "TIMING_IMAGES": "1"},
    "02": {
        "DEPTH": "10", "WIDTH": "32", "SIGNAL_BATCH": "64", "TRAIN_SIZE": "500",
        "VAL_SIZE": "500", "MLP_DEPTH": "3", "MLP_WIDTH": "32", "CNN_DEPTH": "3",
        "CNN_CHANNELS": "4", "EPOCHS": "1", "CNN_EPOCHS": "1",
    },
    "03": {
        "N_SEEDS": "2", "TRAIN_SIZE": "500", "EPOCHS": "1", "DIAGNOSTIC_EPOCHS": "1",
        "RANGE_EPOCHS": "1", "WARMUP_EPOCHS": "2", "ROSENBROCK_STEPS": "500", "NOISY_RUNS": "200",
    },
    "04": {
        "N_SEEDS": "2", "TRAIN_SIZE": "200", "TEST_SIZE": "1000", "EPOCHS": "3", "PATIENCE": "2",
        "COMMON_PER_CLASS": "20", "RARE_PER_CLASS": "2", "MC_SAMPLES": "5",
    },
    "05": {
        "TEX_PER_CLASS": "5", "TEX_EPOCHS": "5", "FASHION_TRAIN": "100", "FASHION_EPOCHS": "3",
        "FASHION_TEST": "500", "EXPERIMENT_SEEDS": "2", "THROUGHPUT_IMAGES": "32",
        "THROUGHPUT_ROUNDS": "2",
    },
    "06": {
        "EPOCHS": "1", "INIT_SCALES": "(0.5, 1.0, 2.0)", "LEARNING_RATES": "(0.03, 0.3)",
        "BATCH_SIZES": "(2, 8, 64)", "WD_EPOCHS": "1",
    },
    "07": {
        "DEPTHS": "(8, 14)", "TRAIN_SIZE": "640", "EPOCHS": "2", "N_SEEDS": "2",
        "PROBE_DEPTH": "8", "SHAKE_SEEDS": "2", "SHAKE_EPOCHS": "1", "DEEP_DEPTH": "14",
    },
    "08": {
        "SOURCE_TRAIN": "500", "SOURCE_EPOCHS": "2", "TARGET_EPOCHS": "5", "PATIENCE": "2",
        "SEEDS": "2",
    },
    "09": {
        "TRAIN_SIZE": "200", "TEST_SIZE": "500", "EPOCHS": "3", "SEEDS": "2",
        "SWA_EPOCHS": "1", "TIMING_ROUNDS": "1",
    },
    "10": {
        "N_SEEDS": "2", "TRAIN_SIZE": "500", "EPOCHS": "1", "TEST_SIZE": "500",
        "TIMING_BATCH": "32", "TIMING_ROUNDS": "1",
    },
}  # fmt: skip


# --- the reference: what a chapter's assignment checks ----------------------------------


@dataclass(frozen=True)
class Check:
    """One exercise check of a chapter: its name and the check cell's source."""

    name: str
    source: str


@dataclass(frozen=True)
class Chapter:
    stem: str
    checks: tuple[Check, ...]
    parameters: str | None  # the parameters cell's source
    written: tuple[int, ...]  # numbers of the written exercises, graded by hand


def reference(notebook: Path) -> Chapter:
    """The checks (in order), the parameters cell and the written exercises of a chapter."""
    import make_assignments as ma
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    checks, taken = [], set()
    for cell in nb.cells:
        if cell.cell_type == "code" and ma.BEGIN not in cell.source:
            for name in make_nbgrader.check_names(cell.source)[:1]:
                if name not in taken:
                    taken.add(name)
                    checks.append(Check(name, cell.source))
    parameters = next(
        (c.source for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None
    )
    written = tuple(s.number for _, s in ma.written_exercises(nb))
    return Chapter(notebook.stem, tuple(checks), parameters, written)


def chapters(folder: Path = CHAPTERS) -> dict[str, Chapter]:
    """Every chapter's reference, by stem."""
    return {p.stem: reference(p) for p in sorted(folder.glob("[0-9][0-9]_*.ipynb"))}


# --- preparing a submission -------------------------------------------------------------


@dataclass
class Prepared:
    """A submission ready to run: the notebook, where each check sits, what is missing."""

    nb: object
    check_cells: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def prepare(nb, chapter: Chapter, overrides: dict[str, str] | None) -> Prepared:
    """Restore the check cells' sources, find the deleted ones, inject ``overrides``."""
    import nbformat

    prepared = Prepared(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    if overrides:
        index = next(
            (
                i
                for i, c in enumerate(nb.cells)
                if "parameters" in c.metadata.get("tags", [])
                or (chapter.parameters is not None and c.source == chapter.parameters)
            ),
            None,
        )
        if index is None:
            prepared.notes.append("no parameters cell: the notebook ran at its own sizes")
        else:
            lines = [f"{name} = {value}" for name, value in overrides.items()]
            cell = nbformat.v4.new_code_cell("\n".join(lines))
            cell.metadata["tags"] = ["injected-parameters"]
            nb.cells.insert(index + 1, cell)
    for check in chapter.checks:
        calls = [
            i
            for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and check.name in make_nbgrader.check_names(c.source)
        ]
        exact = [i for i in calls if nb.cells[i].source == check.source]
        if not calls:
            prepared.missing.append(check.name)
            continue
        index = (exact or calls)[-1]
        nb.cells[index].source = check.source
        prepared.check_cells[check.name] = index
    return prepared


# --- running one notebook (in a child process) ------------------------------------------


def _client_class():
    from nbclient import NotebookClient
    from nbclient.util import ensure_async

    class LimitedClient(NotebookClient):
        """A NotebookClient that keeps only text outputs and interrupts the kernel once the
        notebook has printed more than ``max_output`` characters."""

        max_output = MAX_OUTPUT
        printed = 0
        exceeded = False
        _interrupt = None

        def process_message(self, msg, cell, cell_index):
            content = msg.get("content", {})
            kind = msg.get("msg_type")
            if kind in ("stream", "error", "execute_result", "display_data", "update_display_data"):
                if "data" in content:  # keep the text, drop images and HTML
                    content["data"] = {
                        k: v for k, v in content["data"].items() if k == "text/plain"
                    }
                self.printed += len(json.dumps(content))
                if self.printed > self.max_output:
                    if not self.exceeded:
                        self.exceeded = True
                        self._interrupt = asyncio.ensure_future(
                            ensure_async(self.km.interrupt_kernel())
                        )
                    return None
            return super().process_message(msg, cell, cell_index)

    return LimitedClient


def _cell_result(index: int, cell) -> dict:
    text, error = "", None
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            text += out.get("text", "")
        elif out.get("output_type") == "error":
            error = {"ename": out.get("ename", ""), "evalue": ANSI.sub("", out.get("evalue", ""))}
    result = {"index": index, "status": "error" if error else "ok", "text": text[-4000:]}
    if error:
        result.update(error)
    return result


def run_notebook(
    path: Path, result_file: Path, cell_timeout: int, notebook_timeout: int, max_output: int
) -> None:
    """Execute ``path`` cell by cell in a fresh kernel (cwd: its folder) and keep writing
    ``result_file``: {"cells": [...], "aborted": reason or None, "kernel_pid": pid}."""
    import nbformat
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbclient.util import run_sync

    nb = nbformat.read(path, as_version=4)
    client = _client_class()(
        nb, timeout=cell_timeout, kernel_name="python3", allow_errors=True,
        interrupt_on_timeout=False, resources={"metadata": {"path": str(path.parent)}},
    )  # fmt: skip
    client.max_output = max_output
    result: dict = {"cells": [], "aborted": None, "kernel_pid": None}

    def save():
        result_file.write_text(json.dumps(result))

    overtime = f"the notebook ran longer than its limit of {notebook_timeout} s"
    client.reset_execution_trackers()
    with client.setup_kernel():
        deadline = time.monotonic() + notebook_timeout  # from the kernel's start
        result["kernel_pid"] = getattr(client.km.provisioner, "pid", None)
        save()
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            left = deadline - time.monotonic()
            if left < 1:
                result["aborted"] = overtime
                break
            client.timeout = int(min(cell_timeout, left))
            try:
                client.execute_cell(cell, index)
                result["cells"].append(_cell_result(index, cell))
            except CellTimeoutError:
                limit = client.timeout
                message = f"the cell ran longer than {limit} s"
                result["cells"].append(
                    {"index": index, "status": "timeout", "text": "", "evalue": message}
                )
                run_sync(client.km.interrupt_kernel)()
                if limit < cell_timeout:
                    result["aborted"] = overtime
                    break
            except DeadKernelError:
                result["cells"].append({"index": index, "status": "error", "ename": "DeadKernel",
                                        "evalue": "the kernel died", "text": ""})  # fmt: skip
                result["aborted"] = f"the kernel died in cell {index} (a crash or out of memory)"
                break
            if client.exceeded:
                result["aborted"] = (
                    f"the notebook printed more than {max_output:,} characters (cell {index})"
                )
                result["cells"][-1].update(
                    status="error", ename="OutputLimit", evalue=result["aborted"]
                )
                break
            save()
    save()


def _kill(pid: int | None) -> None:
    if not pid:
        return
    for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            kill()
        except (ProcessLookupError, PermissionError, OSError):
            pass


def execute(path: Path, cell_timeout: int, notebook_timeout: int, max_output: int) -> dict:
    """``run_notebook`` in a child process with one BLAS thread and no progress bars; the child
    (and its kernel) are killed when it overruns the notebook limit by a minute."""
    result_file = path.with_suffix(".result.json")
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               BOOK_PROGRESS="0", TQDM_DISABLE="1")  # fmt: skip
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [sys.executable, __file__, "--one", str(path), "--result", str(result_file),
           "--cell-timeout", str(cell_timeout), "--notebook-timeout", str(notebook_timeout),
           "--max-output", str(max_output)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, cwd=path.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        log, _ = proc.communicate(timeout=notebook_timeout + 60)
        overran = False
    except subprocess.TimeoutExpired:
        _kill(proc.pid)
        log, _ = proc.communicate()
        overran = True
    result = json.loads(result_file.read_text()) if result_file.exists() else None
    if result is None:
        tail = " | ".join((log or "").strip().splitlines()[-3:])
        return {"cells": [], "aborted": f"the notebook could not be run: {tail}"}
    if overran:
        _kill(result.get("kernel_pid"))
    if overran and not result["aborted"]:
        result["aborted"] = f"the notebook ran longer than its limit of {notebook_timeout} s"
    elif proc.returncode != 0 and not result["aborted"]:
        tail = " | ".join((log or "").strip().splitlines()[-3:])
        result["aborted"] = f"grading stopped: {tail}"
    return result


# --- grading ------------------------------------------------------------------------------


@dataclass
class Grade:
    student: str
    chapter: str
    statuses: dict[str, str] = field(default_factory=dict)  # check name -> status
    messages: dict[str, str] = field(default_factory=dict)
    points: int = 0
    max_points: int = 0
    reason: str = ""
    other_errors: list[str] = field(default_factory=list)
    written: tuple[int, ...] = ()


def _status(cell: dict | None, aborted: str | None) -> tuple[str, str]:
    if cell is None:
        reason = aborted or "the check cell did not run"
        return ("timeout" if "longer than" in reason else "error"), f"not run: {reason}"
    if cell["status"] == "ok":
        return "passed", cell["text"].strip()
    if cell["status"] == "timeout":
        return "timeout", cell.get("evalue", "")
    ename, evalue = cell.get("ename", ""), cell.get("evalue", "")
    if ename == "AssertionError":
        return "failed", evalue
    if ename == "NotImplementedError":
        return "not attempted", f"NotImplementedError: {evalue}".rstrip(": ")
    return "error", f"{ename}: {evalue}"


def grade_one(
    path: Path, student: str, chapter: Chapter, work: Path, *, overrides: dict | None,
    cell_timeout: int = CELL_TIMEOUT, notebook_timeout: int = NOTEBOOK_TIMEOUT,
    max_output: int = MAX_OUTPUT,
) -> Grade:  # fmt: skip
    """Grade one submission; ``work`` is an empty folder it may write in."""
    import nbformat

    grade = Grade(student, chapter.stem, written=chapter.written)
    grade.max_points = make_nbgrader.CHECK_POINTS * len(chapter.checks)
    copy = work / path.name
    shutil.copyfile(path, copy)
    try:
        nb = nbformat.read(copy, as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # noqa: BLE001 - any unreadable file is graded, not raised
        grade.reason = f"not a valid notebook: {type(error).__name__}: {str(error)[:200]}"
        for check in chapter.checks:
            grade.statuses[check.name] = "error"
            grade.messages[check.name] = "not run: the file is not a valid notebook"
        return grade
    prepared = prepare(nb, chapter, overrides)
    nbformat.write(prepared.nb, copy)
    result = execute(copy, cell_timeout, notebook_timeout, max_output)
    cells = {c["index"]: c for c in result["cells"]}
    reasons = list(prepared.notes)
    if prepared.missing:
        reasons.append("check cell(s) deleted: " + ", ".join(prepared.missing))
    if result["aborted"]:
        reasons.append(result["aborted"])
    grade.reason = "; ".join(reasons)
    for check in chapter.checks:
        if check.name in prepared.missing:
            status, message = "missing", f"the check cell calling checks.{check.name} was deleted"
        else:
            index = prepared.check_cells[check.name]
            status, message = _status(cells.get(index), result["aborted"])
        grade.statuses[check.name], grade.messages[check.name] = status, message
        grade.points += make_nbgrader.CHECK_POINTS if status == "passed" else 0
    checked = set(prepared.check_cells.values())
    for c in result["cells"]:
        if c["index"] not in checked and c["status"] != "ok":
            first = (prepared.nb.cells[c["index"]].source.strip().splitlines() or [""])[0]
            what = c.get("evalue", "") if c["status"] == "timeout" else (
                f"{c.get('ename', '')}: {c.get('evalue', '')}"
            )  # fmt: skip
            grade.other_errors.append(f"cell {c['index']} (`{first[:60]}`): {what[:300]}")
    return grade


def feedback(grade: Grade) -> str:
    lines = [f"# {grade.chapter}: {grade.student}", ""]
    lines.append(f"Points from the checks: {grade.points} of {grade.max_points}.")
    if grade.reason:
        lines += ["", f"**Note:** {grade.reason}."]
    lines += ["", "## Exercises", ""]
    for name, status in grade.statuses.items():
        message = grade.messages.get(name, "").strip()
        lines.append(f"- `{name}`: **{status}**" + (f". {message}" if message else ""))
    if grade.written:
        numbers = ", ".join(str(n) for n in grade.written)
        lines += ["", f"Written exercises, graded by hand: {numbers}."]
    if grade.other_errors:
        lines += ["", "## Other cells that raised", ""]
        lines += [f"- {e}" for e in grade.other_errors]
    return "\n".join(lines) + "\n"


def write_outputs(grades: list[Grade], out: Path, columns: list[str]) -> None:
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    with open(out / "grades.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "chapter", *columns, "points", "max_points", "reason"])
        for g in grades:
            cells = [g.statuses.get(name, "") for name in columns]
            writer.writerow([g.student, g.chapter, *cells, g.points, g.max_points, g.reason])
    for g in grades:
        (out / "feedback" / f"{g.student}_{g.chapter}.md").write_text(feedback(g))


def grade_folder(
    submissions: Path, out: Path, *, chapter_dir: Path = CHAPTERS, small: bool = True,
    sizes: dict[str, dict[str, str]] | None = None, jobs: int = 1,
    cell_timeout: int = CELL_TIMEOUT, notebook_timeout: int = NOTEBOOK_TIMEOUT,
    max_output: int = MAX_OUTPUT, log=print,
) -> list[Grade]:  # fmt: skip
    """Grade ``submissions/<student>/NN_topic.ipynb``; write ``out/grades.csv`` and
    ``out/feedback/``. ``sizes`` replaces ``SMALL_SIZES`` (by chapter number); ``small=False``
    runs the chapters at their own sizes. Returns the grades, by student and chapter."""
    submissions, out = submissions.resolve(), out.resolve()
    if not submissions.is_dir():
        raise ValueError(f"grade: SUBMISSIONS must be a folder, got {submissions}")
    if out == submissions or submissions in out.parents:
        raise ValueError(f"grade: OUT must lie outside SUBMISSIONS, got {out}")
    references = chapters(chapter_dir)
    jobs_list = []
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir()):
        for path in sorted(student_dir.glob("*.ipynb")):
            jobs_list.append((student_dir.name, path))
    for path in sorted(submissions.glob("*.ipynb")):
        log(f"grade: skipping {path.name}: submissions go in <SUBMISSIONS>/<student>/")

    def work(item) -> Grade:
        student, path = item
        chapter = references.get(path.stem)
        if chapter is None:
            return Grade(student, path.stem, reason=f"{path.name} is not a chapter of the book")
        number = CHAPTER_NAME.match(path.stem).group(1)
        overrides = (SMALL_SIZES if sizes is None else sizes).get(number) if small else None
        with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
            start = time.perf_counter()
            grade = grade_one(path, student, chapter, Path(tmp), overrides=overrides,
                              cell_timeout=cell_timeout, notebook_timeout=notebook_timeout,
                              max_output=max_output)  # fmt: skip
        note = f"; {grade.reason}" if grade.reason else ""
        seconds = time.perf_counter() - start
        score = f"{grade.points}/{grade.max_points} points"
        log(f"  {student}/{path.name}: {score} ({seconds:.0f} s){note}")
        return grade

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        grades = list(pool.map(work, jobs_list))
    columns = [c.name for ch in references.values() for c in ch.checks
               if any(g.chapter == ch.stem for g in grades)]  # fmt: skip
    write_outputs(grades, out, columns)
    return grades


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, nargs="?")
    parser.add_argument("--out", type=Path, default=Path("grades"))
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded at once")
    parser.add_argument("--cell-timeout", type=int, default=CELL_TIMEOUT)
    parser.add_argument("--notebook-timeout", type=int, default=NOTEBOOK_TIMEOUT)
    parser.add_argument("--max-output", type=int, default=MAX_OUTPUT)
    parser.add_argument("--full-size", action="store_true", help="keep the chapters' sizes")
    parser.add_argument("--chapters", type=Path, default=CHAPTERS, help=argparse.SUPPRESS)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_notebook(args.one, args.result, args.cell_timeout, args.notebook_timeout,
                     args.max_output)  # fmt: skip
        return 0
    if args.submissions is None:
        parser.error("SUBMISSIONS is required")
    try:
        grades = grade_folder(
            args.submissions, args.out, chapter_dir=args.chapters, small=not args.full_size,
            jobs=args.jobs, cell_timeout=args.cell_timeout,
            notebook_timeout=args.notebook_timeout, max_output=args.max_output,
        )  # fmt: skip
    except ValueError as error:  # a missing or unreadable SUBMISSIONS folder
        parser.exit(2, f"grade: {error}\n")
    print(f"{len(grades)} notebook(s) graded: {args.out / 'grades.csv'}, {args.out / 'feedback'}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
