"""Check that every measured-looking number in a chapter's prose is one the chapter prints.

    python tools/check_prose.py                       # every chapter in chapters/
    python tools/check_prose.py chapters/04_regularization.ipynb

Reads each notebook's markdown and its stored outputs (so run it on executed notebooks). A
number in the prose is *measured-looking* when it is a decimal (``0.68``), a percentage
(``84%``), a factor (``14.6×``, ``5x faster``, ``sixty times``, ``tenfold``) or a power of ten
(``1e-6``, ``10^-3``). Each must appear, within the rounding the prose shows, among the
numbers of the chapter's outputs (a fraction printed as ``0.843`` also matches ``84.3%``) or
of its code cells (a setting such as ``lr=0.05``, or a bound a ``claim`` states). Exempt:
LaTeX math (``$…$``, ``$$…$$``), inline code, section, figure and version numbers, and the
statement of an exercise (a cell starting ``**Exercise``) up to its ``<details>`` answer.

Prose must also not cite what the reader cannot see: phrases such as "in our runs", "seeds we
ran", "measured before writing", or a development tool (``tools/check_claims.py``) as the
source of a fact, are reported too.

Prints one line per problem (chapter, cell, the number, the sentence around it) and exits 1
when there is any, 0 otherwise.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORD_NUMBERS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "hundred": 100, "a hundred": 100, "one hundred": 100, "thousand": 1000, "a thousand": 1000,
}  # fmt: skip
_WORDS = "|".join(sorted((re.escape(w) for w in WORD_NUMBERS), key=len, reverse=True))

# What the prose may not cite: runs, seeds and tools the reader cannot see.
UNSEEN = re.compile(
    r"\b(?:in|from|over|across) our (?:own )?(?:runs?|experiments?|measurements?)\b"
    r"|\b(?:seeds?|runs?) (?:that )?we (?:ran|tried|measured|checked)\b"
    r"|\bat every seed we\b"
    r"|\bwe (?:ran|tried|checked) (?:it |this )?(?:at|over|on) (?:\w+ )?seeds\b"
    r"|\bbefore writing\b|\bmeasured offline\b|\boffline (?:runs?|measurements?)\b"
    r"|\bin (?:earlier|other|previous|longer) runs\b"
    r"|\bmeasured (?:it )?(?:at|over) \w+ (?:other )?seeds\b",
    re.I,
)
DEV_TOOLS = re.compile(r"\bcheck_claims(?:\.py)?\b|\bcheck_prose(?:\.py)?\b|\bmake claims\b")

MATH = re.compile(r"\$\$.*?\$\$|\$[^$]+?\$|\\\(.*?\\\)|\\\[.*?\\\]", re.S)
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
HTML = re.compile(r"<[^>\n]+>")
LINK_TARGET = re.compile(r"\]\([^)]*\)|https?://\S+|\barXiv:\s*\S+|\bdoi:\s*\S+", re.I)
HEADING_NUMBER = re.compile(r"^(#+\s*)[\d.]+", re.M)
# Numbers that name things rather than measure them: §3.2, Figure 2.1, Python 3.11, v1.0.
LABELLED = re.compile(
    r"(?:§|\b(?:sections?|chapters?|figures?|fig\.|tables?|eqs?\.?|equations?|exercises?|"
    r"python|pytorch|torch|numpy|cuda|version|versions|v|jupyter book|torchao|torchvision|"
    r"nbval|matplotlib|scikit-learn|ruff)\s*)\d+(?:\.\d+)+",
    re.I,
)

SCI = r"\d+(?:\.\d+)?(?:[eE][-+−]?\d+|\s*[×x]\s*10\^\{?[-−]?\d+\}?)"
POW10 = r"10\^\{?[-−]?\d+\}?|10[⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+"
DECIMAL = r"\d[\d,]*\.\d+"
INTEGER = r"\d[\d,]*"
PROSE_NUMBER = re.compile(
    rf"(?<![\w.])(?P<sci>{SCI})(?![\w.])"
    rf"|(?<![\w.])(?P<pow>{POW10})(?![\w.])"
    rf"|(?<![\w.])(?P<num>{DECIMAL}|{INTEGER})"
    rf"(?P<unit>\s?%|\s?(?:[×x](?![\w\s]*\d)|times\b|-fold\b|fold\b))?(?![\d.]*\s*[x×]\s*\d)"
    rf"|(?<!\w)(?P<word>{_WORDS})[\s-](?:times\b|fold\b)"
    rf"|(?<!\w)(?P<wordfold>{_WORDS.replace('|', 'fold|')}fold)\b"
    rf"|\b(?P<twice>twice) (?:as|the)\b",
    re.I,
)
OUTPUT_NUMBER = re.compile(r"[-+−]?(?:\d[\d,_]*\.?\d*|\.\d+)(?:[eE][-+−]?\d+)?")
THOUSANDS = re.compile(r"\d{1,3}(?:[,_]\d{3})+(?:\.\d*)?")
SUPERSCRIPT = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹−", "-0123456789-")


@dataclass
class Problem:
    notebook: str
    cell: int
    what: str
    sentence: str

    def __str__(self) -> str:
        return f"{self.notebook} cell {self.cell}: {self.what} — “{self.sentence}”"


@dataclass
class ProseNumber:
    text: str  # as written
    start: int  # where it stands in the prose
    value: float
    tolerance: float  # half a unit of the last digit shown
    kind: str  # "percent", "factor", "decimal" or "power"


def _float(text: str) -> float:
    return float(text.replace(",", "").replace("−", "-"))


def _half_unit(digits: str) -> float:
    """Half a unit in the last place of ``digits`` ("14.6" -> 0.05, "84" -> 0.5)."""
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return 0.5 * 10.0**-decimals


def _reading(m: re.Match) -> tuple[float, float, str] | None:
    """(value, tolerance, kind) of one match of PROSE_NUMBER; None for a plain count."""
    if m.group("sci"):
        raw = m.group("sci").translate(SUPERSCRIPT)
        mant, exp = re.split(r"[eE]|\s*[×x]\s*10\^", raw, maxsplit=1)
        exp = int(exp.strip("{}"))
        return float(mant) * 10.0**exp, _half_unit(mant) * 10.0**exp, "power"
    if m.group("pow"):
        exp = int(m.group("pow").translate(SUPERSCRIPT)[2:].lstrip("^").strip("{}"))
        return 10.0**exp, 0.05 * 10.0**exp, "power"
    if m.group("num"):
        digits, unit = m.group("num").rstrip(","), (m.group("unit") or "").strip()
        if "." not in digits and not unit:
            return None  # a plain count: 3 epochs, 32 channels, 60,000 images
        kind = "percent" if unit == "%" else "factor" if unit else "decimal"
        return _float(digits), _half_unit(digits), kind
    if m.group("word"):
        return WORD_NUMBERS[m.group("word").lower()], 0.5, "factor"
    if m.group("wordfold"):
        return WORD_NUMBERS[m.group("wordfold").lower().removesuffix("fold")], 0.5, "factor"
    return 2.0, 0.5, "factor"  # "twice as", "twice the"


def prose_numbers(text: str) -> list[ProseNumber]:
    """The measured-looking numbers of one stretch of prose (math and code already removed)."""
    found = []
    for m in PROSE_NUMBER.finditer(text):
        reading = _reading(m)
        if reading is not None:
            found.append(ProseNumber(m.group(0).strip(), m.start(), *reading))
    return found


class NumberSet:
    """The numbers a chapter prints or sets, for lookups within a tolerance."""

    def __init__(self, values):
        self.values = sorted({abs(v) for v in values if math.isfinite(v)})

    def near(self, value: float, tolerance: float) -> bool:
        value = abs(value)
        i = bisect.bisect_left(self.values, value - tolerance * (1 + 1e-9))
        return i < len(self.values) and self.values[i] <= value + tolerance * (1 + 1e-9)

    def matches(self, n: ProseNumber) -> bool:
        if self.near(n.value, n.tolerance):
            return True
        # 84.3% in prose against 0.843 printed, and 0.843 in prose against 84.3% printed
        if n.kind == "percent":
            return self.near(n.value / 100, n.tolerance / 100)
        if n.kind == "decimal" and n.value < 1:
            return self.near(n.value * 100, n.tolerance * 100)
        return False


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text`` (outputs or code), with and without thousands commas."""
    out = []
    for m in OUTPUT_NUMBER.finditer(text):
        token = m.group(0).replace("−", "-").rstrip(".,_")
        if not any(c.isdigit() for c in token):
            continue
        grouped = THOUSANDS.fullmatch(token.lstrip("+-"))
        pieces = {re.sub("[,_]", "", token)} if grouped else {*re.split("[,_]", token)}
        for piece in pieces:
            try:
                out.append(float(piece))
            except ValueError:
                pass
    return out


def output_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append("".join(out["text"]) if isinstance(out["text"], list) else out["text"])
        for kind in ("text/plain", "text/markdown"):
            data = out.get("data", {}).get(kind)
            if data:
                parts.append("".join(data) if isinstance(data, list) else data)
        if out.get("output_type") == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}")
    return "\n".join(parts)


def prose_of(source: str) -> str:
    """The markdown that is checked: math, code, HTML tags, link targets, section numbers and
    an exercise's statement (everything before its ``<details>``) removed."""
    if source.lstrip().startswith("**Exercise"):
        head, sep, tail = source.partition("<details>")
        source = tail if sep else ""
    for pattern in (MATH, CODE, LINK_TARGET, HTML, LABELLED):
        source = pattern.sub(" ", source)
    return HEADING_NUMBER.sub(r"\1", source)


def sentence_around(text: str, start: int, end: int, width: int = 90) -> str:
    left = max(text.rfind(". ", 0, start) + 2, text.rfind("\n\n", 0, start) + 2, start - width)
    stops = [i for i in (text.find(". ", end), text.find("\n\n", end)) if i != -1]
    right = min([*stops, end + width, len(text)])
    return " ".join(text[max(left, 0) : right + 1].split())


def check_notebook(path: Path) -> list[Problem]:
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    printed = NumberSet(
        v for c in code for v in numbers_in("".join(c["source"]) + "\n" + output_text(c))
    )
    problems = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        source = "".join(cell["source"])
        plain = MATH.sub(" ", CODE.sub(" ", source))
        unseen = [*UNSEEN.finditer(plain)] + [*DEV_TOOLS.finditer(source)]
        for m in unseen:
            text = plain if m.re is UNSEEN else source
            what = f"cites what the reader cannot see ({m.group(0)!r})"
            problems.append(Problem(path.name, index, what, sentence_around(text, *m.span())))
        prose = prose_of(source)
        for n in prose_numbers(prose):
            if not printed.matches(n):
                what = f"{n.text!r} is not printed by any cell nor set in the code"
                span = (n.start, n.start + len(n.text))
                problems.append(Problem(path.name, index, what, sentence_around(prose, *span)))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    problems = [p for nb in notebooks for p in check_notebook(nb)]
    for p in problems:
        print(p)
    print(f"check_prose: {len(notebooks)} notebook(s), {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
