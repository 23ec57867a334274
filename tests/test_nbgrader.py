"""The nbgrader course directory of `make assignments` (tools/make_nbgrader.py).

Static tests on every chapter: nbgrader accepts the cell metadata, each solution cell keeps
its hint, each check cell is an autograded, locked test with points, each written exercise
has a manually graded answer cell, every other cell is locked, and `nbgrader
generate_assignment` turns every chapter into a release without solutions or model answers.

One round trip with the real nbgrader CLI on chapter 2 at small sizes (``SMALL_SIZES``, as
`make grade` uses): generate_assignment, then autograde three submissions (the source itself,
the untouched release, and the source with its last exercise answered wrongly), with the
grades read from the gradebook.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import write_chapter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import grade  # noqa: E402
import make_assignments as ma  # noqa: E402
import make_nbgrader as mn  # noqa: E402

NOTEBOOKS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
BIN = Path(sys.executable).parent
ROUND_TRIP = ROOT / "chapters" / "02_initialization.ipynb"


def _nbgrader_env() -> dict[str, str]:
    """nbgrader runs `alembic` from PATH when it creates the gradebook: the venv's bin first."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", BOOK_PROGRESS="0", TQDM_DISABLE="1")
    return env


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(BIN / "nbgrader"), *args], cwd=course, env=_nbgrader_env(),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


# --- the source notebooks of every chapter ------------------------------------------------


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """The course directory of every chapter, as `make assignments` writes it."""
    written = mn.write_course(NOTEBOOKS, tmp_path_factory.mktemp("nbgrader") / "course")
    return written[0].parents[2]


def test_config_sets_the_course_and_a_cell_timeout(course):
    text = (course / "nbgrader_config.py").read_text()
    assert f'c.CourseDirectory.course_id = "{mn.COURSE_ID}"' in text
    assert f"c.Execute.timeout = {mn.CELL_TIMEOUT}" in text
    compile(text, "nbgrader_config.py", "exec")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_source_notebook_carries_nbgrader_metadata(notebook, course):
    from nbgrader.nbgraderformat import MetadataValidator

    original = nbformat.read(notebook, as_version=4)
    source = nbformat.read(course / "source" / notebook.stem / notebook.name, as_version=4)
    MetadataValidator().validate_nb(source)  # unique grade_ids, points on graded cells, ...
    assert all("nbgrader" in c.metadata for c in source.cells), "every cell has metadata"
    solutions = [c for c in source.cells if _meta(c).get("solution") and c.cell_type == "code"]
    graded = [c for c in source.cells if _meta(c).get("grade") and c.cell_type == "code"]
    answers = [c for c in source.cells if _meta(c).get("solution") and c.cell_type == "markdown"]
    assert len(solutions) == len(ma.exercises(original)) >= 2
    assert len(graded) == len(solutions), "one autograded check per coding exercise"
    assert len(answers) == len(ma.written_exercises(original))
    for cell in solutions:
        meta = _meta(cell)
        assert not meta["grade"] and not meta["locked"] and meta["schema_version"] == 3
        lines = cell.source.split("\n")
        for region in ma.find_regions(lines):  # the stub's hint sits right above the region
            assert lines[region.begin - 1].strip() == f"# {ma.hint_for(lines, region)}"
    for cell in graded:
        meta = _meta(cell)
        assert meta["locked"] and not meta["solution"] and meta["points"] == mn.CHECK_POINTS
        assert meta["grade_id"] == mn.check_names(cell.source)[0]
    for cell in answers:
        meta = _meta(cell)
        assert meta["grade"] and not meta["locked"] and meta["points"] == mn.WRITTEN_POINTS
        assert "<summary>Answer" not in cell.source
    others = [c for c in source.cells if not _meta(c).get("solution") and not _meta(c).get("grade")]
    assert all(_meta(c)["locked"] for c in others), "every other cell is locked"
    assert not any("<summary>Answer" in c.source for c in source.cells)
    model = [ma.model_answer(s.text) for _, s in ma.written_exercises(original)]
    assert [a.source for a in answers if "no model answer" not in a.source] == [
        m for m in model if m
    ], "the model answers sit in the source's answer cells"
    code = [c.source for c in original.cells if c.cell_type == "code"]
    assert [c.source for c in source.cells if c.cell_type == "code"] == [
        mn.with_hints(s) if ma.BEGIN in s else s for s in code
    ], "code cells are the chapter's, in order"


def test_a_written_exercise_gets_a_locked_statement_and_an_answer_cell(tmp_path):
    script = tmp_path / "09_synthetic.py"
    script.write_text(
        "# %% [markdown]\n# ## Exercises\n#\n# **Exercise 1 — area.** Write `area`.\n\n"
        "# %%\ndef area(r):\n    ### BEGIN SOLUTION\n    return 3 * r * r\n    ### END SOLUTION\n\n"
        "# %%\nchecks.check_area(area)\n\n"
        "# %% [markdown]\n# **Exercise 2 — on paper.** Why?\n#\n"
        "# <details><summary>Answer</summary>\n#\n# Because.\n# </details>\n#\n"
        "# **Exercise 3 — explore.** Try it.\n"
    )
    path = write_chapter(tmp_path, script.read_text())
    source = mn.source_notebook(path)
    kinds = [(c.cell_type, _meta(c)["grade_id"], c.source.split("\n")[0]) for c in source.cells]
    assert kinds == [
        ("markdown", "cell_0", "## Exercises"),
        ("code", "area", "def area(r):"),
        ("code", "check_area", "checks.check_area(area)"),
        ("markdown", "cell_3", "**Exercise 2 — on paper.** Why?"),
        ("markdown", "written_2", "Because."),
        ("markdown", "cell_3_2", "**Exercise 3 — explore.** Try it."),
        ("markdown", "written_3", "*(The chapter gives no model answer for this exercise.)*"),
    ]
    assert source.cells[1].source.split("\n")[1] == "    # write area; the next cell checks it"
    student = ma.student_notebook(path)
    assert "Because." not in student.cells[3].source and ma.YOUR_ANSWER in student.cells[3].source


def test_generate_assignment_releases_every_chapter_without_solutions(course):
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    os.environ["PATH"] = _nbgrader_env()["PATH"]  # alembic, for the gradebook
    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.course_id = mn.COURSE_ID
    api = NbGraderAPI(config=config)
    for notebook in NOTEBOOKS:
        result = api.generate_assignment(notebook.stem)
        assert result["success"], result.get("log", "")[-3000:]
        release = nbformat.read(course / "release" / notebook.stem / notebook.name, as_version=4)
        text = nbformat.writes(release)
        assert "BEGIN SOLUTION" not in text and "<summary>Answer" not in text
        original = nbformat.read(notebook, as_version=4)
        secret = {
            line
            for index, _ in ma.exercises(original)
            for line in ma.solution_lines(original.cells[index].source)
            if len(line) > 20
        }
        code = "\n".join(c.source for c in release.cells if c.cell_type == "code")
        assert not [line for line in secret if line in code and line not in _outside(original)]
        for cell in release.cells:
            if _meta(cell).get("solution") and cell.cell_type == "code":
                assert "raise NotImplementedError()" in cell.source
                assert "the next cell checks it" in cell.source, "the hint survives"


def _outside(nb) -> str:
    return "\n".join(
        c.source for c in nb.cells if c.cell_type == "code" and ma.BEGIN not in c.source
    )


# --- the round trip with the nbgrader CLI -------------------------------------------------


def _answered_wrongly(nb, grade_id: str):
    """``nb`` with the solution region of cell ``grade_id`` replaced by ``return None``."""
    wrong = nbformat.from_dict(nb)
    cell = next(c for c in wrong.cells if _meta(c).get("grade_id") == grade_id)
    lines = cell.source.split("\n")
    region = ma.find_regions(lines)[0]
    cell.source = "\n".join(
        lines[: region.begin] + [f"{region.indent}return None"] + lines[region.end + 1 :]
    )
    return wrong


def test_autograde_gives_full_zero_and_all_but_one_exercise(tmp_path):
    course = tmp_path / "course"
    stem = ROUND_TRIP.stem
    mn.write_course([ROUND_TRIP], course, overrides={stem: grade.SMALL_SIZES[stem[:2]]})
    _nbgrader(course, "generate_assignment", stem)
    source = nbformat.read(course / "source" / stem / ROUND_TRIP.name, as_version=4)
    release = nbformat.read(course / "release" / stem / ROUND_TRIP.name, as_version=4)
    solution_ids = [_meta(c)["grade_id"] for c in source.cells
                    if _meta(c).get("solution") and c.cell_type == "code"]  # fmt: skip
    last = solution_ids[-1]  # no later exercise calls it
    submissions = {"solved": source, "untouched": release, "wrong": _answered_wrongly(source, last)}
    for student, nb in submissions.items():
        folder = course / "submitted" / student / stem
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / ROUND_TRIP.name)
    _nbgrader(course, "autograde", stem)

    from nbgrader.api import Gradebook

    checks = [c for c in source.cells if _meta(c).get("grade") and c.cell_type == "code"]
    check_of_last = checks[solution_ids.index(last)]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {}
        for student in submissions:
            notebook = gb.find_submission_notebook(stem, stem, student)
            scores[student] = {g.name: (g.auto_score, g.max_score) for g in notebook.grades}
    auto = {name for name, (score, _) in scores["solved"].items() if score is not None}
    assert auto == {_meta(c)["grade_id"] for c in checks}, "the checks are the autograded cells"
    for name in auto:
        _, max_score = scores["solved"][name]
        assert max_score == mn.CHECK_POINTS
        assert scores["solved"][name][0] == max_score, f"solved: {name} lost points"
        assert scores["untouched"][name][0] == 0, f"untouched release: {name} scored"
        expected = 0 if name == _meta(check_of_last)["grade_id"] else max_score
        assert scores["wrong"][name][0] == expected, f"wrong {last}: {name} scored wrongly"
    written = {_meta(c)["grade_id"] for c in source.cells if c.cell_type == "markdown"
               and _meta(c).get("solution")}  # fmt: skip
    assert {n for n, (s, _) in scores["solved"].items() if s is None} == written, (
        "the written answers wait for a manual grade"
    )
