"""Write an nbgrader course directory from the chapters.

    python tools/make_nbgrader.py [--out assignments/nbgrader] [chapters/NN_*.ipynb ...]

`make assignments` writes it to ``assignments/nbgrader/`` (through tools/make_assignments.py).
It holds

- ``nbgrader_config.py``: the course id and an execution timeout of 300 s per cell, which
  fits every chapter's longest cell at its full sizes;
- ``source/NN_topic/NN_topic.ipynb`` for every chapter: the chapter with outputs cleared and
  nbgrader's cell metadata (schema version 3) added here, not in chapters/ (jupytext.toml's
  metadata filter would strip it):

  - a solution cell (one with ``### BEGIN SOLUTION`` ... ``### END SOLUTION``):
    ``solution: true, grade: false, locked: false``. Above each region a comment carries the
    hint of `make assignments`' stub (``# write my_max_pool2d; the next cell checks it``),
    because nbgrader replaces the region by its own ``raise NotImplementedError()``;
  - a check cell (one that calls ``checks.check_*``): ``grade: true, locked: true``,
    ``points: CHECK_POINTS``, autograded: the check raises when the answer is wrong or left
    undone, and nbgrader gives the points when the cell runs without an error;
  - a written exercise (see tools/make_assignments.py): its statement stays in a locked
    markdown cell, and a new markdown cell after it, ``solution: true, grade: true``,
    ``points: WRITTEN_POINTS``, is graded by hand; in source/ it holds the chapter's model
    answer, in the release nbgrader's "YOUR ANSWER HERE";
  - a coding exercise's statement may carry a worked answer (a derivation's steps) in an
    answer block: it is dropped here and kept in ``assignments/solutions/``;
  - every other cell: ``locked: true``, so a student cannot edit it, and ``nbgrader
    autograde`` restores it from source/ before it runs a submission.

``grade_id``s: ``check_<name>`` for a check, ``<function>`` for the solution cell that defines
it (``exercise_<k>`` at top level), ``written_<N>`` for exercise N's answer, ``cell_<index>``
for the rest.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_assignments as ma  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COURSE_ID = "cnn-book"
CELL_TIMEOUT = 300  # seconds per cell under nbgrader autograde, as nbval's in `make test`
CHECK_POINTS = 2
WRITTEN_POINTS = 2
CHECK_NAME = re.compile(r"\bchecks\.(check_\w+)\(")

CONFIG = f'''\
"""nbgrader's configuration for this course, written by `make assignments`.

Run nbgrader from this folder with the book's environment on PATH (nbgrader starts `alembic`
from PATH when it first creates gradebook.db):

    PATH="$PWD/../../.venv/bin:$PATH" nbgrader generate_assignment 01_convolution
"""

c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "{COURSE_ID}"
# The longest cell of any chapter at its full sizes takes well under this on one CPU thread.
c.Execute.timeout = {CELL_TIMEOUT}
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
'''


def _meta(grade_id: str, *, solution=False, grade=False, locked=False, points=None) -> dict:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        meta["points"] = points
    return meta


def check_names(source: str) -> list[str]:
    """The checks a cell calls: ``checks.check_conv2d(f)`` -> ["check_conv2d"]."""
    return CHECK_NAME.findall(source)


def with_hints(source: str, where: str = "<cell>") -> str:
    """``source`` with the stub's hint as a comment line above each ``### BEGIN SOLUTION``."""
    lines = source.split("\n")
    out: list[str] = []
    previous = 0
    for region in ma.find_regions(lines, where):
        out += lines[previous : region.begin]
        out.append(f"{region.indent}# {ma.hint_for(lines, region)}")
        previous = region.begin
    out += lines[previous:]
    return "\n".join(out)


def _markdown(text: str, cell_id: str) -> nbformat.NotebookNode:
    """A markdown cell with a given id, so that the same chapter gives the same file."""
    cell = nbformat.v4.new_markdown_cell(text)
    cell.id = cell_id
    return cell


def _unique(name: str, taken: set[str]) -> str:
    candidate, k = name, 2
    while candidate in taken:
        candidate, k = f"{name}_{k}", k + 1
    taken.add(candidate)
    return candidate


def inject_parameters(nb: nbformat.NotebookNode, overrides: dict[str, str]) -> int:
    """Insert a cell after the cell tagged ``parameters`` that sets ``overrides`` (values are
    Python code, as tools/check_claims.py's ``--set``); returns its index."""
    index = next(
        (i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None
    )
    if index is None:
        raise ValueError("inject_parameters: the notebook has no cell tagged `parameters`")
    lines = [f"{name} = {value}" for name, value in overrides.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": ["injected-parameters"]})
    cell.id = "injected-parameters"
    nb.cells.insert(index + 1, cell)
    return index + 1


def source_notebook(
    notebook: Path, overrides: dict[str, str] | None = None
) -> nbformat.NotebookNode:
    """The chapter as nbgrader's source notebook: outputs cleared, metadata on every cell.
    ``overrides`` (tests, quick trials) are set in a locked cell after the parameters cell."""
    ma.validate_chapter(notebook)
    original = nbformat.read(notebook, as_version=4)
    ma.clear_outputs(original)
    cells = []
    taken: set[str] = set()
    exercise = 0
    for index, cell in enumerate(original.cells):
        where = f"{notebook.name} cell {index}"
        if cell.cell_type == "code" and ma.BEGIN in cell.source:
            if check_names(cell.source):
                raise ma.MarkerError(f"{where}: a solution cell may not call a check itself")
            exercise += 1
            lines = cell.source.split("\n")
            names = [ma.function_of(lines, r) for r in ma.find_regions(lines, where)]
            name = next((n for n in names if n), f"exercise_{exercise}")
            cell.source = with_hints(cell.source, where)
            cell.metadata["nbgrader"] = _meta(_unique(name, taken), solution=True)
            cells.append(cell)
        elif cell.cell_type == "code" and check_names(cell.source):
            grade_id = _unique(check_names(cell.source)[0], taken)
            meta = _meta(grade_id, grade=True, locked=True, points=CHECK_POINTS)
            cell.metadata["nbgrader"] = meta
            cells.append(cell)
        elif cell.cell_type == "markdown" and any(s.written for s in ma.segments(original, index)):
            text = ""
            for segment in ma.segments(original, index):
                text += ma.without_answers(segment.text).rstrip() + "\n\n"
                if not segment.written:
                    continue
                statement = _markdown(text.strip(), f"{cell.get('id', index)}-{len(cells)}")
                statement.metadata["nbgrader"] = _meta(_unique(f"cell_{index}", taken), locked=True)
                answer = ma.model_answer(segment.text)
                answer_cell = _markdown(
                    answer or "*(The chapter gives no model answer for this exercise.)*",
                    f"{cell.get('id', index)}-{len(cells) + 1}",
                )
                answer_cell.metadata["nbgrader"] = _meta(
                    _unique(f"written_{segment.number}", taken),
                    solution=True, grade=True, points=WRITTEN_POINTS,
                )  # fmt: skip
                cells += [statement, answer_cell]
                text = ""
            if text.strip():
                rest = _markdown(text.strip(), f"{cell.get('id', index)}-{len(cells)}")
                rest.metadata["nbgrader"] = _meta(_unique(f"cell_{index}", taken), locked=True)
                cells.append(rest)
        else:
            if cell.cell_type == "markdown":  # a coding exercise's worked answer: solutions/ only
                cell.source = ma.without_answers(cell.source).rstrip()
            cell.metadata["nbgrader"] = _meta(_unique(f"cell_{index}", taken), locked=True)
            cells.append(cell)
    original.cells = cells
    if overrides:
        at = inject_parameters(original, overrides)
        original.cells[at].metadata["nbgrader"] = _meta(
            _unique("injected_parameters", taken), locked=True
        )
    return original


def write_course(
    notebooks: list[Path], out: Path, overrides: dict[str, dict[str, str]] | None = None
) -> list[Path]:
    """Write ``out/nbgrader_config.py`` and ``out/source/<stem>/<stem>.ipynb`` for each chapter;
    ``overrides`` maps a chapter's stem to its parameter overrides. Returns the notebooks."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "nbgrader_config.py").write_text(CONFIG)
    written = []
    for notebook in notebooks:
        nb = source_notebook(notebook, (overrides or {}).get(notebook.stem))
        target = out / "source" / notebook.stem / notebook.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "assignments" / "nbgrader")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    try:
        written = write_course(notebooks, args.out)
    except ma.MarkerError as error:
        print(f"make_nbgrader: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"  {path}")
    print(f"nbgrader course directory with {len(written)} assignment(s): {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
