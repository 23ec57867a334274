"""helpers.claims.claim: the printed line, strict bounds, the ledger's JSON lines, bad input."""

import json

import numpy as np
import pytest
import torch

from helpers.claims import claim, format_claim


def test_a_claim_that_holds_prints_sentence_value_and_bound(capsys):
    claim("decay shrinks the weights", np.float64(0.68), below=0.8)
    assert capsys.readouterr().out == (
        "claim: decay shrinks the weights — measured 0.68, bound < 0.8: holds\n"
    )


def test_both_bounds_and_integer_values(capsys):
    claim("the count is between 1 and 5", 3, above=1, below=5)
    assert "measured 3, bound 1 < value < 5: holds" in capsys.readouterr().out


@pytest.mark.parametrize("value", [0.8, 0.81, 5.0])
def test_a_failing_claim_raises_with_the_same_line(value, capsys):
    with pytest.raises(AssertionError, match=r"claim: ratio — measured .*, bound < 0.8: DOES NOT HOLD"):
        claim("ratio", value, below=0.8)
    assert capsys.readouterr().out == ""


def test_bounds_are_strict():
    with pytest.raises(AssertionError):
        claim("gap", 0.0, above=0.0)


def test_a_value_next_to_its_bound_is_printed_with_enough_digits():
    line = format_claim("r", 0.69996, None, 0.7)
    assert "measured 0.69996" in line and "< 0.7" in line


@pytest.mark.parametrize("value", [np.float32(1.5), np.array(1.5), np.array([1.5]), torch.tensor(1.5), 1.5])
def test_numpy_scalars_and_one_element_arrays_are_numbers(value, capsys):
    claim("x", value, above=1)
    assert "measured 1.5" in capsys.readouterr().out


@pytest.mark.parametrize(
    "value, message",
    [
        (True, "got a bool"),
        (np.bool_(False), "got a bool"),
        (torch.tensor(True), "got a bool"),
        (float("nan"), "finite"),
        (np.inf, "finite"),
        (np.array([1.0, 2.0]), "one real number"),
        ("0.5", "one real number"),
        (None, "one real number"),
    ],
)
def test_a_value_that_is_not_one_finite_number_is_refused(value, message):
    with pytest.raises(ValueError, match=message):
        claim("x", value, above=0)


def test_a_claim_needs_a_sentence_and_a_bound():
    with pytest.raises(ValueError, match="expected a bound"):
        claim("x", 1.0)
    with pytest.raises(ValueError, match="non-empty str"):
        claim("  ", 1.0, above=0)
    with pytest.raises(ValueError, match="above < below"):
        claim("x", 1.0, above=2, below=1)


def test_the_ledger_gets_one_json_line_per_call(tmp_path, monkeypatch, capsys):
    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setenv("BOOK_CLAIMS_LEDGER", str(ledger))
    monkeypatch.setenv("BOOK_CHAPTER", "04_regularization")
    monkeypatch.setenv("BOOK_SEED", "7")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    claim("holds", 0.5, below=0.8)
    with pytest.raises(AssertionError):
        claim("fails", 0.9, below=0.8)
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert lines == [
        {"chapter": "04_regularization", "claim": "holds", "value": 0.5, "above": None,
         "below": 0.8, "holds": True, "seed": 7, "threads": 2},
        {"chapter": "04_regularization", "claim": "fails", "value": 0.9, "above": None,
         "below": 0.8, "holds": False, "seed": 7, "threads": 2},
    ]  # fmt: skip


def test_without_the_ledger_variable_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv("BOOK_CLAIMS_LEDGER", raising=False)
    monkeypatch.chdir(tmp_path)
    claim("x", 1.0, above=0)
    assert list(tmp_path.iterdir()) == []
