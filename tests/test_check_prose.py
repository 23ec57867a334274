"""tools/check_prose.py: measured-looking numbers in the prose must be printed or set in the
code, and the prose must not cite runs or tools the reader cannot see. The flagged passages
are the numeric items of the chapter reviews (shared/reviews/), each set beside the outputs
the review says were printed."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import check_prose  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def notebook(tmp_path, markdown, printed="", code="x = 1"):
    cells = [
        {"cell_type": "code", "metadata": {}, "source": code, "execution_count": 1,
         "outputs": [{"output_type": "stream", "name": "stdout", "text": printed}]},
        {"cell_type": "markdown", "metadata": {}, "source": markdown},
    ]  # fmt: skip
    path = tmp_path / "99_toy.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


# (review, passage as the chapter had it, what the cells printed, the number or phrase flagged)
FLAGGED = [
    ("ch02 #3", "for 256 + 256 units that is 0.012 instead of 0.108, ten times too small",
     "ratio 9.2", "0.012"),
    ("ch02 #4", "In our runs it did not rescue the network: with Adam's default rate 10⁻³ the "
     "loss stayed at chance", "loss 2.303", "our runs"),
    ("ch02 #4", "with Adam's default rate 10⁻³ the loss stayed at chance", "loss 2.303", "10⁻³"),
    ("ch03 #3", "(at `SEED = 1` we measured 0.30 to 0.93)", "seed 0: 0.632, 0.637", "0.93"),
    ("ch03 #6", "re-running the chapter at other values of `SEED` with `tools/check_claims.py`, "
     "a few seeds had no rise at all", "rise 0.11", "check_claims"),
    ("ch03 #7", "it can travel only 2, and 10 e⁻² ≈ 1.35", "mean squared distance 1.6586", "1.35"),
    ("ch03 #9", "our classifier's initial weights are smaller than 0.04", "loss 2.31", "0.04"),
    ("ch04 m3", "its training accuracy stops at 86.1%", "test 75.5% gap 10.6", "86.1%"),
    ("ch05 #1", "over eight seeds measured before writing this, the weakest seed gained only a few "
     "points", "gain 12.3", "before writing"),
    ("ch05 #2", "lowered the accuracy on average, by amounts from about 1.2 points to more than ten",
     "MixUp -3.7 to -10.4, CutMix -11.3 to -25.4", "1.2"),
    ("ch05 #5", "RandAugment lowered test accuracy in our runs, below both other pipelines",
     "", "in our runs"),
    ("ch06 #1", "weight decay lowered the validation accuracy by 1.0% and 11.1% at both seeds",
     "per seed +1.0%, -11.1%", None),  # printed: not flagged (the sign is the reader's job)
    ("ch07 #1", "the 10⁻¹³ one sees with PyTorch's default initialization is an artefact",
     "relative error 3.1e-13", "10⁻¹³"),
    ("ch07 #2", "in a trial it was between 7·10⁻³ and 0.2, and the residual one's between 0.09 and "
     "0.25", "first/last ratio 6.6e-03", "0.25"),
    ("ch07 #5", "training loss was higher by 0.08 to 0.15", "loss 0.412 0.391", "0.15"),
    ("ch09 #3", "weight decay, which over sixty times as many steps holds them back",
     "steps: 384 here, 5,625 in the reference (14.6x)", "sixty times"),
    ("ch09 #4", "With 60 times the steps, the network without normalization gets past its start",
     "steps: 384 here, 5,625 in the reference (14.6x)", "60 times"),
    ("ch09 #4", "given sixty\ntimes the steps", "384 5,625", "sixty"),
    ("ch09 #9", "In our runs (seeds 0–2) a rate of 0.02 did not rescue the network", "", "In our runs"),
    ("ch10 #1", "Global pruning of 30% costs less than 5 points at every seed we ran",
     "cost +0.002 for both", "at every seed we"),
    ("ch10 #5", "runs within a factor of 1.5× on some CPUs", "0.69 (0.64–0.74)", "1.5×"),
]


@pytest.mark.parametrize("review, passage, printed, flagged", FLAGGED, ids=[f[0] for f in FLAGGED])
def test_the_reviews_numeric_items_are_flagged(tmp_path, review, passage, printed, flagged):
    problems = check_prose.check_notebook(notebook(tmp_path, passage, printed))
    reported = " | ".join(p.what for p in problems)
    if flagged is None:
        assert problems == [], reported
    else:
        assert any(flagged in p.what for p in problems), f"{review}: nothing flagged {flagged!r}: {reported}"


PASSING = [
    ("the printed factor, rounded", "the reference takes 14.6 times the steps", "ratio 14.63"),
    ("a fraction printed, a percentage written", "test accuracy 84.3%", "acc 0.8431"),
    ("a percentage printed, a fraction written", "a drop of 0.026", "drop 2.6%"),
    ("a setting in the code", "we train at a rate of 0.05", ""),
    ("a bound stated in words from the claim", "at least five times faster", ""),
    ("math is exempt", "the stability bound $\\eta < 2/h = 0.04$", ""),
    ("inline code is exempt", "PyTorch's `BatchNorm2d(momentum=0.1)`", ""),
    ("section and version numbers", "as §3.2 showed, with Python 3.11 and PyTorch 2.13", ""),
    ("an exercise's given values", "**Exercise 2.** Take p = 0.35 and 1e-4.\n\n<details>ok</details>", ""),
    ("plain counts and sizes", "3 epochs of 60,000 images with 3x3 filters, 14×14 pixels", ""),
    ("a power of ten printed", "a relative error below 1e-12", "error 1e-12"),
]


@pytest.mark.parametrize("what, passage, printed", PASSING, ids=[p[0] for p in PASSING])
def test_numbers_the_chapter_prints_or_sets_pass(tmp_path, what, passage, printed):
    code = "LR = 0.05\nclaim('fast', speedup, above=5)"
    problems = check_prose.check_notebook(notebook(tmp_path, passage, printed, code))
    assert problems == [], [str(p) for p in problems]


def test_an_exercise_answer_is_checked(tmp_path):
    text = "**Exercise 5.** Try p = 0.35.\n\n<details><summary>Answer</summary>It gains 2.7%.</details>"
    problems = check_prose.check_notebook(notebook(tmp_path, text))
    assert [p.what.split()[0] for p in problems] == ["'2.7%'"]


def test_the_report_names_chapter_cell_and_sentence(tmp_path, capsys):
    path = notebook(tmp_path, "First sentence. The gap was 0.123 here. Next one.")
    assert check_prose.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert "99_toy.ipynb cell 1: '0.123' is not printed" in out and "The gap was 0.123 here." in out


def test_every_chapter_passes():
    chapters = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    problems = [str(p) for nb in chapters for p in check_prose.check_notebook(nb)]
    assert problems == [], "\n".join(problems)
