"""Every chapter is a synced .ipynb/.py pair, executed top to bottom, in the book's shape.

The pairing is checked by reading both files with jupytext and comparing them cell by cell;
`jupytext --sync` decides by file times and cannot serve as the check.
"""

import re
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.compare import compare_notebooks

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"
NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))
SCRIPTS = sorted(CHAPTERS.glob("[0-9][0-9]_*.py"))


def test_there_are_chapters_and_each_file_has_its_twin():
    assert NOTEBOOKS, "no chapters found"
    assert [p.stem for p in NOTEBOOKS] == [p.stem for p in SCRIPTS]


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_py_and_ipynb_hold_the_same_cells(nb_path):
    py = jupytext.read(nb_path.with_suffix(".py"))
    nb = jupytext.read(nb_path)
    compare_notebooks(py, nb, fmt="py:percent")  # raises on any difference in cells
    assert len(py.cells) == len(nb.cells)
    for a, b in zip(py.cells, nb.cells, strict=True):
        assert (a.cell_type, a.source.strip()) == (b.cell_type, b.source.strip())
        assert sorted(a.metadata.get("tags", [])) == sorted(b.metadata.get("tags", []))


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_come_from_one_top_to_bottom_run(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert None not in counts, "some code cells were never executed: run `make outputs`"
    assert counts == list(range(1, len(counts) + 1)), "not one run in a fresh kernel"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_has_the_book_shape(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown").lower()
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged `parameters`"
    assert code.index(tagged[0]) == 0, "the parameters cell is the first code cell"
    assert "learning goals" in text and "summary" in text and "exercise" in text
    solutions = sum(c.source.count("### BEGIN SOLUTION") for c in code)
    assert solutions >= 2, "at least two coding exercises"
    assert solutions == sum(c.source.count("### END SOLUTION") for c in code)
    assert sum(bool(re.search(r"checks\.check_\w+\(", c.source)) for c in code) >= solutions
    assert any("nbval-check-output" in c.metadata.get("tags", []) for c in code)
    for c in code:
        assert not re.search(r"^\s*(from|import)\s+chapters?\b", c.source, re.M)


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_names_its_kernel(nb_path):
    """JupyterLab and Colab open the chapter without asking which kernel to use."""
    kernelspec = nbformat.read(nb_path, as_version=4).metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3" and kernelspec.get("language") == "python"
