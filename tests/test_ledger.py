"""tools/ledger.py (`make ledger`): claims collected per run, the margin rule, stale chapters,
and the appendix page the HTML book shows."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"
sys.path.insert(0, str(TOOLS))
import ledger  # noqa: E402

RUNS = [(0, 1), (1, 1), (2, 1), (0, 2)]


def records(text, values, above=None, below=None):
    return [{"claim": text, "value": v, "above": above, "below": below, "seed": s, "threads": t,
             "holds": (above is None or v > above) and (below is None or v < below)}
            for (s, t), v in zip(RUNS, values, strict=True)]  # fmt: skip


def test_margin_is_the_worst_run_in_standard_deviations():
    c = ledger.summarize("x", records("x", [1.0, 1.2, 1.4, 1.2], above=0.5), RUNS)
    sd = 0.16329931618554522  # sample std of the four values
    assert c["min"] == 1.0 and c["max"] == 1.4 and c["median"] == 1.2
    assert c["margin_sd"] == pytest.approx(0.5 / sd) and c["meets_rule"]


def test_both_bounds_take_the_nearer_one():
    c = ledger.summarize("x", records("x", [1.0, 1.1, 1.2, 1.1], above=0.0, below=1.3), RUNS)
    assert c["worst_distance"] == pytest.approx(0.1) and not c["meets_rule"]


def test_a_claim_that_failed_or_did_not_run_breaks_the_rule():
    failed = ledger.summarize("x", records("x", [1.0, 0.4, 1.0, 1.0], above=0.5), RUNS)
    assert failed["failed_runs"] == [[1, 1]] and not failed["meets_rule"]
    missing = ledger.summarize("x", records("x", [1.0, 1.1, 1.2, 1.0], above=0.5)[:3], RUNS)
    assert missing["missing_runs"] == [[0, 2]] and not missing["meets_rule"]
    never = ledger.summarize("x", [], RUNS)
    assert not never["meets_rule"] and never["min"] is None


def test_a_constant_claim_is_exempt_from_the_margin():
    c = ledger.summarize("x", records("x", [2.0] * 4, below=3.0), RUNS)
    assert c["constant"] and c["margin_sd"] is None and c["meets_rule"]


def test_claim_texts_must_be_unique_literals(tmp_path):
    py = tmp_path / "99_toy.py"
    py.write_text('claim("b", x, above=0)\nclaim("a", y, below=1)\n')
    assert ledger.claim_texts(py) == ["b", "a"]
    py.write_text('claim(f"b {x}", x, above=0)\n')
    with pytest.raises(ValueError, match="plain string literal"):
        ledger.claim_texts(py)
    py.write_text('claim("b", x, above=0)\nclaim("b", y, below=1)\n')
    with pytest.raises(ValueError, match="more than once"):
        ledger.claim_texts(py)


TOY = '''# %% [markdown]
# # Toy chapter

# %% tags=["parameters"]
SEED = 0

# %%
import os
from helpers.claims import claim
claim("the thread count reaches the kernel", float(os.environ["OMP_NUM_THREADS"]), above=0)
claim("a seed-dependent value stays positive", 1.0 + SEED, above=0.5)

# %%
claim("fails at seed 1", 1.0 - SEED, above=0.5)
'''


def test_a_chapter_run_end_to_end(tmp_path):
    chapter, book = tmp_path / "99_toy.py", tmp_path / "ledger.json"
    chapter.write_text(TOY)
    args = [sys.executable, str(TOOLS / "ledger.py"), "--chapters", str(chapter), "--seeds", "0",
            "1", "--ledger", str(book)]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    entry = json.loads(book.read_text())["chapters"]["99_toy"]
    assert [(r["seed"], r["threads"]) for r in entry["runs"]] == [(0, 1), (1, 1), (0, 2)]
    threads, seeded, failing = entry["claims"]
    assert [v["value"] for v in threads["values"]] == [1.0, 1.0, 2.0]
    assert [v["value"] for v in seeded["values"]] == [1.0, 2.0, 1.0]
    assert seeded["meets_rule"] is False
    assert failing["failed_runs"] == [[1, 1]]
    assert "RULE 99_toy: 'fails at seed 1' failed at [[1, 1]]" in proc.stdout
    assert "AssertionError: claim: fails at seed 1" in json.dumps(entry["runs"][1])
    assert chapter.read_text() == TOY  # the source is left alone
    again = subprocess.run(args, capture_output=True, text=True)  # unchanged: nothing re-run
    assert "unchanged since its entry" in again.stdout
    chapter.write_text(TOY + "\n")
    report = subprocess.run(args + ["--report"], capture_output=True, text=True)
    assert "STALE 99_toy" in report.stdout and report.returncode == 1
    # prose, a sentence and a literal bound changed, the code not: the values are re-judged
    restated = TOY.replace('"fails at seed 1", 1.0 - SEED, above=0.5', '"restated", 1.0 - SEED, above=-0.5')
    chapter.write_text(restated + "\n# %% [markdown]\n# A new paragraph.\n")
    proc = subprocess.run(args, capture_output=True, text=True)
    assert "only prose, sentences or literal bounds changed" in proc.stdout, proc.stdout
    entry = json.loads(book.read_text())["chapters"]["99_toy"]
    assert entry["claims"][2]["text"] == "restated" and entry["claims"][2]["failed_runs"] == []
    assert entry["sha256"] == ledger.sha256(chapter) and "claim: fails" not in json.dumps(entry["runs"])
    # the code changed: the chapter runs again
    chapter.write_text(restated.replace("1.0 + SEED", "2.0 + SEED"))
    proc = subprocess.run(args, capture_output=True, text=True)
    assert "99_toy: 3 run(s)" in proc.stdout, proc.stdout


def test_the_appendix_page_has_a_table_and_a_figure_per_chapter(tmp_path):
    runs = [{"seed": s, "threads": t, "seconds": 1.0, "failing_cells": []} for s, t in RUNS]
    claims = [ledger.summarize("grows | shrinks", records("grows | shrinks", [1, 2, 3, 2], above=0), RUNS),
              ledger.summarize("constant", records("constant", [2.0] * 4, below=3), RUNS)]  # fmt: skip
    entry = {"sha256": "0", "date": "2026-12-08", "runs": runs, "claims": claims}
    page = ledger.write_appendix({"chapters": {"04_regularization": entry}}, tmp_path)
    text = page.read_text()
    assert text.startswith("# How robust is each claim?")
    assert "## Chapter 4: regularization" in text and "![Chapter 4: regularization: for each" in text
    assert "| 1 | grows \\| shrinks | > 0 | 1 | 2 | 3 | 1.2 (breaks the rule) |" in text
    assert "| 2 | constant | < 3 | 2 | 2 | 2 | same at every run |" in text
    assert (tmp_path / "claims_04_regularization.png").stat().st_size > 1000
