"""The course assignments (`make assignments`, tools/make_assignments.py).

Static tests: markers are parsed and reported with file and line, the student notebooks keep
no solution text, no model answers and no outputs, and the checks stay. One execution per
chapter, at the small sizes `make grade` uses (tools/grade.py's ``SMALL_SIZES``, set in a cell
after the parameters cell): the student notebook runs in a fresh kernel until its first
exercise raises NotImplementedError; then, in the same kernel, every check cell is run on the
stub (it must fail) and on the solution (it must pass), so no check is vacuous. At small sizes
a chapter's claims may fail (AssertionError); any other error before the first exercise fails
the test. The chapters' own nbval run covers the full sizes.
"""

from __future__ import annotations

import ast
import copy
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from conftest import write_chapter
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import grade  # noqa: E402
import make_assignments as ma  # noqa: E402
import make_nbgrader  # noqa: E402

CHAPTERS = ROOT / "chapters"
NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))


def _code(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


# --- the marker parser on synthetic input -------------------------------------------------

GOOD = """\
def f(x):
    y = 1
    ### BEGIN SOLUTION
    return x + y
    ### END SOLUTION


for i in range(3):
    if i:
        ### BEGIN SOLUTION
        print(i)
        ### END SOLUTION
"""


def test_regions_are_found_with_their_indentation():
    regions = ma.find_regions(GOOD.split("\n"))
    assert [(r.begin, r.end, r.indent) for r in regions] == [(2, 4, "    "), (9, 11, "        ")]


def test_stub_replaces_each_region_by_one_raise_at_its_indentation():
    stub = ma.stub_source(GOOD)
    ast.parse(stub)  # still valid Python
    lines = stub.split("\n")
    assert lines[2] == '    raise NotImplementedError("write f; the next cell checks it")'
    assert lines[7].startswith('        raise NotImplementedError("write your solution here')
    assert "return x + y" not in stub and "print(i)" not in stub and "SOLUTION" not in stub
    assert "y = 1" in stub and "for i in range(3):" in stub  # the rest is kept
    with pytest.raises(NotImplementedError, match="write f"):
        namespace: dict = {}
        exec(compile(stub.split("\n\n\nfor")[0], "<stub>", "exec"), namespace)
        namespace["f"](1)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("a = 1\n### BEGIN SOLUTION\nb = 2\n", r"ch\.py:12: ### BEGIN SOLUTION is never closed"),
        ("a = 1\n### END SOLUTION\n", r"ch\.py:12: ### END SOLUTION without a ### BEGIN"),
        (
            "### BEGIN SOLUTION\nx = 1\n    ### BEGIN SOLUTION\n### END SOLUTION\n",
            r"ch\.py:13: ### BEGIN SOLUTION inside the region opened at line 11",
        ),
        (
            "### BEGIN SOLUTION\nx = 1\n# %%\ny = 2\n### END SOLUTION\n",
            r"ch\.py:13: a new cell starts inside the region opened at line 11",
        ),
        (
            "### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION\n",
            r"ch\.py:13: ### END SOLUTION without",
        ),
    ],
    ids=["unclosed", "stray-end", "nested", "crosses-cell", "double-end"],
)
def test_bad_markers_are_reported_with_file_and_line(source, message):
    with pytest.raises(ma.MarkerError, match=message):
        ma.find_regions(source.split("\n"), "ch.py", first_line=11)


def test_a_chapter_with_a_broken_region_is_reported_by_chapter_and_line(tmp_path, capsys):
    body = (
        "# %% [markdown]\n# # Synthetic\n\n"  # lines 1-3
        "# %%\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n\n"  # BEGIN on line 6
        "# %%\nprint(f())\n"  # the next cell starts on line 9
    )
    notebook = write_chapter(tmp_path, body)
    with pytest.raises(ma.MarkerError, match=r"09_synthetic\.py:9: a new cell starts .* line 6"):
        ma.validate_chapter(notebook)
    assert ma.main([str(notebook), "--out", str(tmp_path / "out")]) == 1
    assert "09_synthetic.py:9" in capsys.readouterr().err
    assert not (tmp_path / "out" / notebook.name).exists()


def test_model_answers_stay_in_the_solutions_only(tmp_path):
    body = (
        "# %% [markdown]\n# **Exercise 1 — on paper.** Why?\n#\n"
        "# <details><summary>Answer</summary>\n#\n# Because of the bias.\n# </details>\n#\n"
        "# **Exercise 2 — explore.** Try a larger batch.\n"
    )
    notebook = write_chapter(tmp_path, body)
    nb = nbformat.read(notebook, as_version=4)
    assert [(s.number, s.written) for _, s in ma.written_exercises(nb)] == [(1, True), (2, True)]
    assert ma.model_answer(nb.cells[0].source) == "Because of the bias."
    ma.write_assignments([notebook], tmp_path / "out")
    student = (tmp_path / "out" / notebook.name).read_text()
    assert "Because of the bias" not in student and ma.YOUR_ANSWER in student
    assert "Try a larger batch" in student
    assert "Because of the bias" in (tmp_path / "out" / "solutions" / notebook.name).read_text()


def test_main_writes_the_nbgrader_course_unless_told_not_to(tmp_path):
    body = "# %%\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
    notebook = write_chapter(tmp_path, body)
    assert ma.main([str(notebook), "--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "nbgrader" / "nbgrader_config.py").exists()
    assert (tmp_path / "a" / "nbgrader" / "source" / "09_synthetic" / notebook.name).exists()
    assert ma.main([str(notebook), "--out", str(tmp_path / "b"), "--no-nbgrader"]) == 0
    assert not (tmp_path / "b" / "nbgrader").exists()


def test_a_synthetic_chapter_becomes_an_assignment(tmp_path):
    body = (
        "# %%\nimport math\n\n"
        "# %%\ndef area(r):\n    ### BEGIN SOLUTION\n    return math.pi * r**2\n"
        "    ### END SOLUTION\n\n"
        "# %%\nassert area(1) == math.pi\n"
    )
    notebook = write_chapter(tmp_path, body)
    assert ma.exercises(nbformat.read(notebook, as_version=4)) == [(1, None)]  # no checks. call
    [student] = ma.write_assignments([notebook], tmp_path / "out")
    text = student.with_suffix(".py").read_text()
    assert "math.pi * r**2" not in text and 'raise NotImplementedError("write area;' in text
    assert "math.pi * r**2" in (tmp_path / "out" / "solutions" / notebook.name).read_text()


# --- the real chapters ------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("assignments")
    ma.write_assignments(NOTEBOOKS, out)
    return out


def test_every_chapter_gets_an_assignment(built):
    assert NOTEBOOKS, "no chapters found"
    assert sorted(p.name for p in built.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    assert sorted(p.name for p in (built / "solutions").glob("*.ipynb")) == [
        p.name for p in NOTEBOOKS
    ]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_solution_text_survives_and_outputs_are_cleared(notebook, built):
    original = nbformat.read(notebook, as_version=4)
    pairs = ma.exercises(original)
    assert len(pairs) >= 2, "a chapter has at least two coding exercises"
    outside = _code(original)
    for index, _ in pairs:  # lines that only occur inside solutions
        outside = outside.replace(
            original.cells[index].source, ma.stub_source(original.cells[index].source)
        )
    secret = {
        line for index, _ in pairs for line in ma.solution_lines(original.cells[index].source)
    }
    secret = {line for line in secret if line not in outside and len(line) > 3}
    assert secret, "found no solution lines to look for"

    student = nbformat.read(built / notebook.name, as_version=4)
    script = (built / notebook.with_suffix(".py").name).read_text()
    for text, name in [(_code(student) + "\n" + nbformat.writes(student), "ipynb"), (script, "py")]:
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, name
        assert "<summary>Answer" not in text, f"a model answer is left in the student {name}"
        left = sorted(line for line in secret if line in text)
        assert not left, f"solution text left in the student {name}: {left}"
    for index, check in pairs:
        assert 'raise NotImplementedError("' in student.cells[index].source
        assert check is not None, f"exercise in cell {index} has no check cell after it"
        assert student.cells[check].source == original.cells[check].source, "checks stay"
    for cell in student.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert [c.source for c in jupytext.read(built / notebook.with_suffix(".py").name).cells] == [
        c.source for c in student.cells
    ]
    solutions = nbformat.read(built / "solutions" / notebook.name, as_version=4)
    assert [c.source for c in solutions.cells] == [c.source for c in original.cells]


def _run(client: NotebookClient, cell, index: int):
    """Execute one cell; return (ename, evalue) of its error, or None."""
    client.execute_cell(cell, index)
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            return output.ename, output.evalue
    return None


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_notebook_stops_at_its_first_exercise_and_every_check_grades(notebook, monkeypatch):
    for name, value in [
        ("BOOK_PROGRESS", "0"),
        ("OMP_NUM_THREADS", "1"),
        ("MKL_NUM_THREADS", "1"),
        ("TQDM_DISABLE", "1"),
    ]:
        monkeypatch.setenv(name, value)
    original = nbformat.read(notebook, as_version=4)
    student = ma.student_notebook(notebook)
    small = grade.SMALL_SIZES[notebook.stem[:2]]
    for nb in (original, student):
        make_nbgrader.inject_parameters(nb, small)
    pairs = ma.exercises(original)
    assert pairs and all(check is not None for _, check in pairs)
    solution_of = {check: index for index, check in pairs}
    exercise_cells = {i for pair in pairs for i in pair}
    client = NotebookClient(
        student,
        timeout=600,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(CHAPTERS)}},
    )
    client.reset_execution_trackers()
    first_error = None
    with client.setup_kernel():
        for index, cell in enumerate(student.cells):
            if cell.cell_type != "code":
                continue
            error = _run(client, cell, index)
            if error and index not in exercise_cells:
                tags = cell.metadata.get("tags", [])
                claim = error[0] == "AssertionError"  # a claim may miss at small sizes
                assert claim or "raises-exception" in tags, f"cell {index} failed: {error}"
                continue  # an error the chapter shows on purpose, or a claim
            if error and first_error is None:
                first_error = (index, error)
                assert index in pairs[0], (
                    f"cell {index} failed before the first exercise (cell {pairs[0][0]}): {error}"
                )
                assert error[0] == "NotImplementedError", f"first exercise raised {error}"
            if index in solution_of:
                assert error, f"check in cell {index} passes on the stub: it is vacuous"
                solved = copy.deepcopy(original.cells[solution_of[index]])
                assert _run(client, solved, solution_of[index]) is None, "solution cell fails"
                again = _run(client, copy.deepcopy(cell), index)
                assert again is None, f"check in cell {index} fails on the solution: {again}"
    assert first_error is not None, "the student notebook never stopped at an exercise"
