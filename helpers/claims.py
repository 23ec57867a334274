"""Experimental claims that print what they measured and fail loudly when they do not hold.

Every sentence of the book that says what an experiment shows ("decay shrinks the weights",
"the CNN is ahead of the MLP at every shift") is backed by one call::

    claim("decay shrinks the first convolution's weights in front of batch norm",
          norm_decay[-1] / norm_free[-1], below=0.8)
    # claim: decay shrinks the first convolution's weights in front of batch norm
    #        — measured 0.68, bound < 0.8: holds

The value is one number: a mean, a ratio, the smallest gap over paired seeds, whatever the
sentence claims. Bounds are strict (``value > above``, ``value < below``). A claim that does
not hold raises ``AssertionError`` with the same line, so the message names what was claimed,
what was measured and what was required.

The claims ledger (``make ledger``, ``tools/ledger.py``) re-runs each chapter at many seeds
and thread counts with ``BOOK_CLAIMS_LEDGER`` naming a file; each call then appends one JSON
line to it: the chapter (``BOOK_CHAPTER``), the claim's text, the value, the bounds, whether
it held, the seed (``BOOK_SEED``) and the thread count (``OMP_NUM_THREADS``). Parity checks,
shape checks and exercise checks are plain ``assert`` statements, not claims.
"""

from __future__ import annotations

import json
import math
import numbers
import os

__all__ = ["claim", "format_claim"]

LEDGER_ENV = "BOOK_CLAIMS_LEDGER"


def _number(value) -> float:
    """``value`` as a float; a bool, a string or an array of several numbers is refused."""
    if hasattr(value, "item") and not isinstance(value, numbers.Real):
        try:
            value = value.item()  # a 0-d or one-element NumPy array or tensor
        except (ValueError, RuntimeError):
            pass  # several numbers: refused below
    elif hasattr(value, "item"):
        value = value.item()  # a NumPy scalar
    if isinstance(value, bool):
        raise ValueError(
            "claim: expected a measured number (a mean, a ratio, a gap), got a bool; "
            "claim the quantity the comparison is about, with above= or below="
        )
    if not isinstance(value, numbers.Real):
        kind = type(value).__name__
        raise ValueError(f"claim: expected one real number, got {kind} {value!r:.60}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"claim: expected a finite number, got {value}")
    return value


def _fmt(value: float, others: tuple[float, ...] = ()) -> str:
    """Three significant digits, more where that would print ``value`` equal to a bound."""
    for digits in (3, 4, 5, 6, 8, 12, 17):
        text = f"{value:.{digits}g}"
        if all(text != f"{o:.{digits}g}" for o in others if o != value):
            return text
    return repr(value)


def format_claim(text: str, value: float, above: float | None, below: float | None) -> str:
    """The one line ``claim`` prints: sentence, measured value, bound and verdict."""
    bounds = tuple(b for b in (above, below) if b is not None)
    if above is not None and below is not None:
        bound = f"{_fmt(above)} < value < {_fmt(below)}"
    elif above is not None:
        bound = f"> {_fmt(above)}"
    else:
        bound = f"< {_fmt(below)}"
    holds = (above is None or value > above) and (below is None or value < below)
    verdict = "holds" if holds else "DOES NOT HOLD"
    return f"claim: {text} — measured {_fmt(value, bounds)}, bound {bound}: {verdict}"


def _record(text: str, value: float, above, below, holds: bool) -> None:
    path = os.environ.get(LEDGER_ENV)
    if not path:
        return
    seed = os.environ.get("BOOK_SEED")
    threads = os.environ.get("OMP_NUM_THREADS")
    entry = {
        "chapter": os.environ.get("BOOK_CHAPTER"),
        "claim": text,
        "value": value,
        "above": above,
        "below": below,
        "holds": holds,
        "seed": int(seed) if seed is not None and seed.lstrip("-").isdigit() else seed,
        "threads": int(threads) if threads is not None and threads.isdigit() else threads,
    }
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def claim(text: str, value, *, above: float | None = None, below: float | None = None) -> None:
    """Assert that the measured ``value`` lies beyond the bound(s) and print one line saying so.

    text: the sentence being claimed, a plain string (the ledger matches claims by it, so
    each claim of a chapter has its own text). value: one real number (Python, NumPy or a
    one-element tensor); a bool is refused, since the ledger needs a distance to the bound.
    above / below: strict bounds, at least one. Raises ``AssertionError`` when the claim does
    not hold and ``ValueError`` for malformed input.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"claim: expected the claim's sentence as a non-empty str, got {text!r}")
    if above is None and below is None:
        raise ValueError(f"claim {text!r}: expected a bound, above= or below=, got neither")
    above = None if above is None else _number(above)
    below = None if below is None else _number(below)
    if above is not None and below is not None and not above < below:
        raise ValueError(
            f"claim {text!r}: expected above < below, got above={above}, below={below}"
        )
    value = _number(value)
    line = format_claim(text, value, above, below)
    holds = line.endswith(": holds")
    _record(text, value, above, below, holds)
    if not holds:
        raise AssertionError(line)
    print(line)
