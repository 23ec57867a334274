"""`make grade` (tools/grade.py): a folder of returned notebooks graded check by check.

Most cases run on a synthetic two-exercise chapter whose checks live in the notebook (no torch
to import, a few seconds a submission): solved, stub, wrong, an edited check cell, a deleted
check cell, a cell that raises, a function that loops, a cell that prints without end, the
notebook time limit, a file that is not JSON, a file that is not a chapter. The folder of
submissions is hashed before and after: nothing in it changes. One real chapter (chapter 2, at
``SMALL_SIZES``) is graded once, with exercises solved, left undone and answered wrongly.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import grade  # noqa: E402
import make_assignments as ma  # noqa: E402

TINY = """\
# %% [markdown]
# # A tiny chapter

# %% tags=["parameters"]
SIZE = 1000  # grading sets 3

# %%
import types


def _check_double(f):
    for x in (0, 1, 5):
        if f(x) != 2 * x:
            raise AssertionError(f"check_double: {f(x)!r} for {x}. Hint: multiply by two")
    print("check_double: passed on 3 cases")


def _check_square(f):
    assert SIZE == 3, "the grader did not set the small sizes"
    for x in (0, 2, 3):
        if f(x) != x * x:
            raise AssertionError(f"check_square: {f(x)!r} for {x}. Hint: x times x")
    print("check_square: passed on 3 cases")


checks = types.SimpleNamespace(check_double=_check_double, check_square=_check_square)

# %% [markdown]
# **Exercise 1 — double.** Write `double(x)`.

# %%
def double(x):
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION


# %%
checks.check_double(double)

# %% [markdown]
# **Exercise 2 — square.** Write `square(x)`.

# %%
def square(x):
    ### BEGIN SOLUTION
    return x * x
    ### END SOLUTION


# %%
checks.check_square(square)

# %% [markdown]
# **Exercise 3 — on paper.** Why?
#
# <details><summary>Answer</summary>
#
# Because.
# </details>
"""
SIZES = {"01": {"SIZE": "3"}}
CHECKS = ["check_double", "check_square"]


def _notebook(text: str):
    nb = jupytext.reads(text, fmt="py:percent")
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def _replace(nb, old: str, new: str):
    """A copy of ``nb`` with ``old`` replaced by ``new`` in the one cell that contains it."""
    nb = nbformat.from_dict(nb)
    [cell] = [c for c in nb.cells if old in c.source]
    cell.source = cell.source.replace(old, new)
    return nb


def _tree_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("grade")
    chapter_dir = base / "chapters"
    chapter_dir.mkdir()
    nbformat.write(_notebook(TINY), chapter_dir / "01_tiny.ipynb")
    solved = nbformat.read(chapter_dir / "01_tiny.ipynb", as_version=4)
    stub = ma.student_notebook(chapter_dir / "01_tiny.ipynb")
    check = "checks.check_double(double)"
    submissions = {
        "solved": solved,
        "stub": stub,
        "wrong": _replace(solved, "return 2 * x", "return 2 + x"),
        "edited_check": _replace(
            _replace(solved, "return 2 * x", "return 2 + x"),
            check,
            f"try:\n    {check}\nexcept AssertionError:\n    print('check_double: passed')",
        ),  # fmt: skip
        "deleted_check": nbformat.from_dict(
            {**solved, "cells": [c for c in solved.cells if c.source != check]}
        ),
        "raises": _replace(solved, "def double(x):", "1 / 0\n\n\ndef double(x):"),
        "loops": _replace(solved, "return 2 * x", "while True:\n        pass"),
        "prints": _replace(solved, "return 2 * x", "while True:\n        print('x' * 1000)"),
    }
    folder = base / "submissions"
    for student, nb in submissions.items():
        (folder / student).mkdir(parents=True)
        nbformat.write(nb, folder / student / "01_tiny.ipynb")
    (folder / "not_json").mkdir()
    (folder / "not_json" / "01_tiny.ipynb").write_text('{"cells": [oops')
    (folder / "solved" / "99_other.ipynb").write_text(nbformat.writes(solved))
    before = _tree_hash(folder)
    out = base / "out"
    grades = grade.grade_folder(
        folder, out, chapter_dir=chapter_dir, sizes=SIZES, jobs=2,
        cell_timeout=6, notebook_timeout=60, max_output=200_000, log=lambda *_: None,
    )  # fmt: skip
    assert _tree_hash(folder) == before, "grading changed SUBMISSIONS"
    with open(out / "grades.csv", newline="") as handle:
        rows = {(r["student"], r["chapter"]): r for r in csv.DictReader(handle)}
    return {"grades": grades, "rows": rows, "out": out, "chapter_dir": chapter_dir,
            "solved": solved, "base": base}  # fmt: skip


def _row(graded, student, chapter="01_tiny"):
    return graded["rows"][(student, chapter)]


def _feedback(graded, student, chapter="01_tiny"):
    return (graded["out"] / "feedback" / f"{student}_{chapter}.md").read_text()


def test_grades_csv_has_a_row_per_student_and_chapter_and_a_column_per_exercise(graded):
    students = ["deleted_check", "edited_check", "loops", "not_json", "prints", "raises",
                "solved", "stub", "wrong"]  # fmt: skip
    assert sorted(graded["rows"]) == sorted(
        [(s, "01_tiny") for s in students] + [("solved", "99_other")]
    )
    header = list(next(iter(graded["rows"].values())))
    assert header == ["student", "chapter", *CHECKS, "points", "max_points", "reason"]
    assert {g.student for g in graded["grades"]} == set(students)


@pytest.mark.parametrize(
    ("student", "statuses", "points", "reason"),
    [
        ("solved", ["passed", "passed"], 4, ""),
        ("stub", ["not attempted", "not attempted"], 0, ""),
        ("wrong", ["failed", "passed"], 2, ""),
        ("edited_check", ["failed", "passed"], 2, ""),  # the chapter's check cell is restored
        ("deleted_check", ["missing", "passed"], 2, "check cell(s) deleted: check_double"),
        ("raises", ["error", "passed"], 2, ""),
        ("loops", ["timeout", "passed"], 2, ""),  # interrupted; the notebook goes on
        ("prints", ["error", "error"], 0, "printed more than 200,000 characters"),
        ("not_json", ["error", "error"], 0, "not a valid notebook"),
    ],
)
def test_each_submission_gets_its_statuses_points_and_reason(
    graded, student, statuses, points, reason
):
    row = _row(graded, student)
    assert [row[name] for name in CHECKS] == statuses
    assert int(row["points"]) == points and int(row["max_points"]) == 4
    assert reason in row["reason"] and bool(reason) == bool(row["reason"]), row["reason"]


def test_a_file_that_is_not_a_chapter_gets_a_row_with_the_reason(graded):
    row = _row(graded, "solved", "99_other")
    assert "not a chapter of the book" in row["reason"] and row["points"] == "0"


def test_feedback_gives_each_checks_message_and_hint(graded):
    assert "`check_double`: **passed**. check_double: passed on 3 cases" in _feedback(
        graded, "solved"
    )
    wrong = _feedback(graded, "wrong")
    assert "`check_double`: **failed**. check_double: 2 for 0. Hint: multiply by two" in wrong
    assert "Points from the checks: 2 of 4." in wrong
    assert "Written exercises, graded by hand: 3." in wrong
    stub = _feedback(graded, "stub")
    assert "**not attempted**. NotImplementedError: write double; the next cell checks it" in stub
    raises = _feedback(graded, "raises")
    assert "NameError" in raises and "ZeroDivisionError" in raises  # the cause is listed too
    assert "ran longer than 6 s" in _feedback(graded, "loops")
    assert "was deleted" in _feedback(graded, "deleted_check")
    assert "**Note:** the notebook printed more than" in _feedback(graded, "prints")


def test_the_notebook_time_limit_stops_a_slow_submission(graded, tmp_path):
    chapter = grade.reference(graded["chapter_dir"] / "01_tiny.ipynb")
    slow = _replace(graded["solved"], "import types", "import time\nimport types\ntime.sleep(2)")
    slow = _replace(slow, "def square(x):", "time.sleep(30)\n\n\ndef square(x):")
    path = tmp_path / "in" / "01_tiny.ipynb"
    path.parent.mkdir()
    nbformat.write(slow, path)
    (tmp_path / "work").mkdir()
    result = grade.grade_one(path, "slow", chapter, tmp_path / "work", overrides=SIZES["01"],
                             cell_timeout=60, notebook_timeout=8)  # fmt: skip
    assert result.statuses == {"check_double": "passed", "check_square": "timeout"}
    assert "longer than its limit of 8 s" in result.reason


def test_out_inside_submissions_and_a_missing_folder_are_refused(tmp_path, capsys):
    (tmp_path / "subs").mkdir()
    for argv, message in [
        ([str(tmp_path / "subs"), "--out", str(tmp_path / "subs" / "out")],
         "OUT must lie outside SUBMISSIONS"),
        ([str(tmp_path / "nothing"), "--out", str(tmp_path / "out")],
         "SUBMISSIONS must be a folder"),
    ]:  # fmt: skip
        with pytest.raises(SystemExit) as exit_:
            grade.main(argv)
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err


def test_every_chapter_has_small_sizes_for_its_own_parameters():
    for notebook in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")):
        chapter = grade.reference(notebook)
        assert chapter.parameters is not None, f"{notebook.stem} has no parameters cell"
        assert chapter.checks, f"{notebook.stem} has no checks"
        names = {
            node.id
            for node in ast.walk(ast.parse(chapter.parameters))
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
        }
        sizes = grade.SMALL_SIZES[notebook.stem[:2]]
        assert set(sizes) <= names, f"{notebook.stem}: no parameter {set(sizes) - names}"


def _answered(nb, function: str, body: str):
    """``nb`` with the solution region of ``function`` replaced by ``body``."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        lines = cell.source.split("\n")
        if cell.cell_type != "code" or ma.BEGIN not in cell.source:
            continue
        for region in ma.find_regions(lines):
            if ma.function_of(lines, region) == function:
                new = lines[: region.begin] + [region.indent + body] + lines[region.end + 1 :]
                cell.source = "\n".join(new)
                return nb
    raise AssertionError(f"no solution region in {function}")


def test_a_real_chapter_at_small_sizes(tmp_path):
    notebook = ROOT / "chapters" / "02_initialization.ipynb"
    solved = nbformat.read(notebook, as_version=4)
    functions = []
    for index, _ in ma.exercises(solved):
        lines = solved.cells[index].source.split("\n")
        functions.append(ma.function_of(lines, ma.find_regions(lines)[0]))
    undone, wrong = functions[-2], functions[-1]  # later exercises may call earlier ones
    nb = _answered(solved, undone, 'raise NotImplementedError("left undone")')
    nb = _answered(nb, wrong, "return None")
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    nbformat.write(nb, tmp_path / "subs" / "ada" / notebook.name)
    [result] = grade.grade_folder(tmp_path / "subs", tmp_path / "out", log=lambda *_: None)
    statuses = list(result.statuses.values())
    assert statuses == ["passed"] * (len(functions) - 2) + ["not attempted", "failed"], (
        result.statuses, result.messages, result.reason,
    )  # fmt: skip
    assert result.points == 2 * (len(functions) - 2) and not result.reason
