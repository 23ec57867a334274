"""Write the course assignments: each chapter with its exercise solutions taken out.

    python tools/make_assignments.py [--out assignments] [--no-solutions] [chapters/NN_*.ipynb ...]

Used by `make assignments`. For every chapter (all of chapters/ by default) it writes

- ``OUT/NN_topic.ipynb`` and ``OUT/NN_topic.py``: the student version, in which every
  ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region is replaced by
  ``raise NotImplementedError(...)`` at the region's indentation with a one-line hint, and all
  outputs are cleared. The check cells stay, so a student runs them to grade their work.
  Written exercises keep their statement; their model answers (``<details><summary>Answer
  </summary>`` ... ``</details>`` blocks) are replaced by a "**Your answer:**" line.
- ``OUT/solutions/NN_topic.ipynb``: the instructor's copy, outputs cleared, solutions and model
  answers kept.
- ``OUT/nbgrader/``: an nbgrader course directory (tools/make_nbgrader.py), unless
  ``--no-nbgrader``.

A written exercise is an exercise statement (a markdown line starting ``**Exercise N``) that is
not directly followed by a code cell with a solution region: on paper, explore, discussion.

Markers are validated first on the chapter's ``.py`` (so errors name its lines): a BEGIN without
its END, an END without a BEGIN, a region inside a region, or a region that crosses a cell
boundary stops the build with ``chapter:line: what is wrong``.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CHECK_CALL = re.compile(r"\bchecks\.check_\w+\(")
CELL_MARKER = re.compile(r"^# %%")
EXERCISE_HEAD = re.compile(r"^\*\*Exercise\s+(\d+)\b", re.M)
ANSWER_BLOCK = re.compile(r"<details>\s*<summary>\s*Answer\s*</summary>(.*?)</details>", re.S)
YOUR_ANSWER = "**Your answer:**"
ROOT = Path(__file__).resolve().parents[1]


class MarkerError(ValueError):
    """Unbalanced, nested or misplaced solution markers; the message names chapter and line."""


@dataclass(frozen=True)
class Region:
    """One solution region: lines ``begin`` .. ``end`` (0-based, inclusive, the marker lines)."""

    begin: int
    end: int
    indent: str


def find_regions(lines: list[str], where: str = "<source>", first_line: int = 1) -> list[Region]:
    """The solution regions of ``lines``, checked for balance and nesting.

    ``where`` and ``first_line`` (the number of ``lines[0]`` in its file) only shape the
    messages: ``MarkerError("01_convolution.py:674: BEGIN SOLUTION inside the region opened at
    line 670")``. In a jupytext percent file a region may not contain a ``# %%`` cell marker.
    """
    regions: list[Region] = []
    open_at: int | None = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        number = first_line + i
        if stripped.startswith(BEGIN):
            if open_at is not None:
                raise MarkerError(
                    f"{where}:{number}: {BEGIN} inside the region opened at line "
                    f"{first_line + open_at} (regions cannot nest)"
                )
            open_at = i
        elif stripped.startswith(END):
            if open_at is None:
                raise MarkerError(f"{where}:{number}: {END} without a {BEGIN} before it")
            indent = lines[open_at][: len(lines[open_at]) - len(lines[open_at].lstrip())]
            regions.append(Region(open_at, i, indent))
            open_at = None
        elif open_at is not None and CELL_MARKER.match(line):
            raise MarkerError(
                f"{where}:{number}: a new cell starts inside the region opened at line "
                f"{first_line + open_at} (missing {END})"
            )
    if open_at is not None:
        raise MarkerError(f"{where}:{first_line + open_at}: {BEGIN} is never closed by {END}")
    return regions


def function_of(lines: list[str], region: Region) -> str | None:
    """The name of the innermost function the region sits in, or None at top level."""
    threshold = len(region.indent)
    for line in reversed(lines[: region.begin]):
        depth = len(line) - len(line.lstrip())
        if not line.strip() or depth >= threshold:
            continue
        match = re.match(r"\s*(?:async\s+)?def\s+(\w+)\s*\(", line)
        if match:
            return match.group(1)
        threshold = depth
    return None


def hint_for(lines: list[str], region: Region) -> str:
    """A one-line hint: the name of the function the region sits in, if any."""
    name = function_of(lines, region)
    if name:
        return f"write {name}; the next cell checks it"
    return "write your solution here; the next cell checks it"


def stub_source(source: str, where: str = "<cell>") -> str:
    """``source`` with every solution region replaced by ``raise NotImplementedError(hint)``."""
    lines = source.split("\n")
    regions = find_regions(lines, where)
    out: list[str] = []
    previous = 0
    for region in regions:
        out += lines[previous : region.begin]
        out.append(f'{region.indent}raise NotImplementedError("{hint_for(lines, region)}")')
        previous = region.end + 1
    out += lines[previous:]
    return "\n".join(out)


def solution_lines(source: str) -> list[str]:
    """The stripped, non-blank lines strictly inside the solution regions of ``source``."""
    lines = source.split("\n")
    inside = []
    for region in find_regions(lines):
        inside += [line.strip() for line in lines[region.begin + 1 : region.end] if line.strip()]
    return inside


def exercises(nb: nbformat.NotebookNode) -> list[tuple[int, int | None]]:
    """(solution cell index, index of the next code cell if it calls a check, else None)."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or BEGIN not in cell.source:
            continue
        check = None
        for later in range(index + 1, len(nb.cells)):
            if nb.cells[later].cell_type == "code":
                if CHECK_CALL.search(nb.cells[later].source):
                    check = later
                break
        found.append((index, check))
    return found


@dataclass(frozen=True)
class Segment:
    """A piece of a markdown cell: the text before its first exercise (``number`` None) or
    one exercise statement, with ``written`` set for a written exercise."""

    text: str
    number: int | None = None
    written: bool = False


def segments(nb: nbformat.NotebookNode, index: int) -> list[Segment]:
    """Markdown cell ``index`` of ``nb`` cut before each ``**Exercise N`` line. Every exercise
    is written except the cell's last one when the next cell holds a solution region."""
    source = nb.cells[index].source
    starts = [m.start() for m in EXERCISE_HEAD.finditer(source)]
    if not starts:
        return [Segment(source)]
    followed_by_code = (
        index + 1 < len(nb.cells)
        and nb.cells[index + 1].cell_type == "code"
        and BEGIN in nb.cells[index + 1].source
    )
    out = [Segment(source[: starts[0]])] if source[: starts[0]].strip() else []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(source)
        number = int(EXERCISE_HEAD.match(source, start).group(1))
        coding = k == len(starts) - 1 and followed_by_code
        out.append(Segment(source[start:end], number, written=not coding))
    return out


def model_answer(text: str) -> str | None:
    """The model answers in ``text`` (its ``<details><summary>Answer</summary>`` blocks,
    joined), or None when it has none."""
    answers = [m.group(1).strip() for m in ANSWER_BLOCK.finditer(text)]
    return "\n\n".join(answers) if answers else None


def without_answers(text: str, replacement: str = "") -> str:
    """``text`` with each model-answer block replaced by ``replacement``."""
    return ANSWER_BLOCK.sub(replacement, text)


def written_exercises(nb: nbformat.NotebookNode) -> list[tuple[int, Segment]]:
    """(markdown cell index, segment) of every written exercise, in order."""
    return [
        (index, segment)
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "markdown"
        for segment in segments(nb, index)
        if segment.written
    ]


def validate_chapter(notebook: Path) -> None:
    """Check the markers of a chapter's ``.py`` twin (with its line numbers) and its cells."""
    script = notebook.with_suffix(".py")
    if script.exists():
        find_regions(script.read_text().split("\n"), script.name)
    nb = nbformat.read(notebook, as_version=4)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            find_regions(cell.source.split("\n"), f"{notebook.name} cell {index}")


def clear_outputs(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)


def student_notebook(notebook: Path) -> nbformat.NotebookNode:
    """The student version of a chapter: stubs for solutions, no model answers, no outputs,
    checks kept."""
    validate_chapter(notebook)
    nb = nbformat.read(notebook, as_version=4)
    clear_outputs(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and BEGIN in cell.source:
            cell.source = stub_source(cell.source, f"{notebook.name} cell {index}")
        elif cell.cell_type == "markdown":
            cell.source = without_answers(cell.source, YOUR_ANSWER)
    return nb


def solution_notebook(notebook: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(notebook, as_version=4)
    clear_outputs(nb)
    return nb


def write_assignments(
    notebooks: list[Path], out: Path, solutions: bool = True, nbgrader: bool = False
) -> list[Path]:
    """Write the student notebooks (and .py twins) to ``out``, and with ``nbgrader`` the
    course directory ``out/nbgrader``; returns the student notebooks written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for notebook in notebooks:
        nb = student_notebook(notebook)
        target = out / notebook.name
        nbformat.write(nb, target)
        jupytext.write(nb, target.with_suffix(".py"), fmt="py:percent")
        written.append(target)
        if solutions:
            (out / "solutions").mkdir(exist_ok=True)
            nbformat.write(solution_notebook(notebook), out / "solutions" / notebook.name)
    if nbgrader:
        import make_nbgrader

        make_nbgrader.write_course(notebooks, out / "nbgrader")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "assignments")
    parser.add_argument("--no-solutions", action="store_true", help="skip OUT/solutions/")
    parser.add_argument("--no-nbgrader", action="store_true", help="skip OUT/nbgrader/")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    try:
        written = write_assignments(
            notebooks, args.out, solutions=not args.no_solutions, nbgrader=not args.no_nbgrader
        )
    except MarkerError as error:
        print(f"make_assignments: {error}", file=sys.stderr)
        return 1
    for notebook, path in zip(notebooks, written, strict=True):
        nb = nbformat.read(notebook, as_version=4)
        count, words = len(exercises(nb)), len(written_exercises(nb))
        print(f"  {path}: {count} coding and {words} written exercise(s)")
    print(f"{len(written)} assignment(s) written to {args.out}")
    if not args.no_nbgrader:
        print(f"nbgrader course directory: {args.out / 'nbgrader'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
