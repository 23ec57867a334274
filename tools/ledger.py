"""The claims ledger: every chapter's claims at ten seeds and two thread counts.

    python tools/ledger.py                       # chapters whose .py changed since their entry
    python tools/ledger.py --chapters 04 07      # these chapters, if changed
    python tools/ledger.py --chapters 04 --force # re-run even if unchanged
    python tools/ledger.py --report              # print the stored ledger, run nothing

Used by `make ledger` (CHAPTERS, JOBS and FORCE=1 are passed through). Each chapter's jupytext
``.py`` is executed through ``tools/check_claims.py``'s machinery (``SEED`` injected after the
parameters cell, the thread count in the kernel's environment, errors allowed so that every
claim gets its chance) at seeds 0–9 on one thread and at seed 0 on two threads, with
``BOOK_CLAIMS_LEDGER`` set, so that every ``helpers.claims.claim`` call appends its value.

``benchmarks/claims/ledger.json`` then holds, per chapter: the SHA-256 of its ``.py``, the
runs (seed, threads, seconds, failing cells) and, per claim, its text, bounds, the value at
each run, min / median / max, the sample standard deviation and the margin: the distance of
the worst run to the bound in units of that standard deviation.

**The rule** (tests/test_claims_ledger.py): every claim ran and held at every run, no other
cell failed, and the margin is at least 3 standard deviations; a claim whose value does not
vary across the runs is exempt from the margin. The HTML book's appendix "How robust is each
claim?" is generated from this file (``write_appendix``).
"""

from __future__ import annotations

import argparse
import ast
import datetime
import hashlib
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_claims  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LEDGER = ROOT / "benchmarks" / "claims" / "ledger.json"
SEEDS = list(range(10))
MIN_MARGIN = 3.0
CLAIM_FAILURE = ": AssertionError: claim: "  # how a failing claim's cell reads in a run
RULE = (
    "every claim holds at every run (seeds 0-9 on one thread, seed 0 on two threads), no other "
    "cell fails, and the worst run lies at least 3 sample standard deviations of the claim's "
    "values inside its bound; a claim whose value does not vary is exempt from the margin"
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def claim_texts(py: Path) -> list[str]:
    """The sentences of every ``claim(...)`` call in a chapter's source, in order.

    Raises ValueError when a claim's sentence is not a plain string literal or appears twice:
    the ledger matches claims by their text."""
    found = []
    for node in ast.walk(ast.parse(py.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "claim":
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                got = ast.unparse(first) if first else "none"
                raise ValueError(f"{py.name} line {node.lineno}: a claim's text must be a "
                                 f"plain string literal, got {got}")  # fmt: skip
            found.append((node.lineno, first.value))
    texts = [text for _, text in sorted(found)]
    repeated = sorted({t for t in texts if texts.count(t) > 1})
    if repeated:
        raise ValueError(f"{py.name}: claim text used more than once: {repeated}")
    return texts


class _Blind(ast.NodeTransformer):
    """Blanks each claim's sentence and its literal bounds: what a claim measures is the code
    around it and its value expression, not the words or the threshold."""

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        if getattr(node.func, "id", None) == "claim" and node.args:
            node.args[0] = ast.Constant("")
            node.keywords = [k for k in node.keywords if not _literal_bound(k)]
        return node


def _literal_bound(keyword: ast.keyword) -> bool:
    return keyword.arg in ("above", "below") and _literal(keyword.value) is not None


def _literal(node: ast.AST) -> float | None:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _code_cells(py: Path) -> list[tuple[str, list[str]]]:
    """(source, tags) of each code cell, magics (``%``, ``!``) turned into ``pass``."""
    import jupytext

    cells = []
    for cell in jupytext.read(py).cells:
        if cell.cell_type == "code":
            lines = ["pass" if ln.lstrip().startswith(("%", "!")) else ln
                     for ln in cell.source.splitlines()]  # fmt: skip
            tags = sorted(t for t in cell.metadata.get("tags", []) if not t.startswith("nbval"))
            cells.append(("\n".join(lines), tags))
    return cells


def code_fingerprint(py: Path) -> str:
    """SHA-256 of the chapter's code with comments, formatting, markdown, claims' sentences
    and literal bounds left out: equal fingerprints compute the same values at every seed."""
    parts = [json.dumps(tags) + ast.unparse(_Blind().visit(ast.parse(src)))
             for src, tags in _code_cells(py)]  # fmt: skip
    return hashlib.sha256("\n\n".join(parts).encode()).hexdigest()


def claim_bounds(py: Path) -> list[tuple[str, float | None, float | None, bool]]:
    """(sentence, above, below, literal) of each claim in source order; ``literal`` is False
    when a bound is an expression, whose value only a run knows."""
    found = []
    for cell, (src, _) in enumerate(_code_cells(py)):
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "claim":
                kw = {k.arg: k.value for k in node.keywords}
                above, below = (_literal(kw[k]) if k in kw else None for k in ("above", "below"))
                literal = all(_literal(kw[k]) is not None for k in ("above", "below") if k in kw)
                where = (cell, node.lineno, node.col_offset)
                found.append((where, node.args[0].value, above, below, literal))
    return [f[1:] for f in sorted(found)]  # ast.walk is breadth-first: back to source order


def rebound(old: dict, py: Path, runs: list[tuple[int, int]]) -> dict | None:
    """``old``'s measured values under ``py``'s current sentences and bounds, when only prose,
    comments, claims' sentences or literal bounds changed (the code fingerprint is equal);
    None when the chapter has to be run again."""
    if old.get("code_sha256") != code_fingerprint(py):
        return None
    specs = claim_bounds(py)
    if len(specs) != len(old.get("texts", [])):
        return None
    measured = old["claims"][: len(specs)]  # in source order; claims not in the source follow
    claims = []
    for (text, above, below, literal), c in zip(specs, measured, strict=True):
        if not literal:
            above, below = c["above"], c["below"]
        records = []
        for v in c["values"]:
            holds = (above is None or v["value"] > above) and (below is None or v["value"] < below)
            records.append({"claim": text, "value": v["value"], "seed": v["seed"],
                            "threads": v["threads"], "above": above, "below": below,
                            "holds": holds})  # fmt: skip
        claims.append(summarize(text, records, runs))
    # a claim that failed under its old bound is judged again above; other failures stay
    not_claims = [{**r, "failing_cells": [f for f in r["failing_cells"] if CLAIM_FAILURE not in f]}
                  for r in old["runs"]]  # fmt: skip
    return old | {"sha256": sha256(py), "texts": [c["text"] for c in claims], "claims": claims,
                  "runs": not_claims, "rebound_on": datetime.date.today().isoformat()}  # fmt: skip


def summarize(text: str, records: list[dict], runs: list[tuple[int, int]]) -> dict:
    """One claim's ledger entry from its records (one per run that reached it)."""
    by_run = {(r["seed"], r["threads"]): r for r in records}
    bounds = next(({"above": r["above"], "below": r["below"]} for r in records),
                  {"above": None, "below": None})  # fmt: skip
    values = [by_run[run]["value"] for run in runs if run in by_run]
    missing = [list(run) for run in runs if run not in by_run]
    entry = {
        "text": text,
        **bounds,
        "values": [{"seed": s, "threads": t, "value": by_run[(s, t)]["value"]}
                   for s, t in runs if (s, t) in by_run],  # fmt: skip
        "missing_runs": missing,
        "failed_runs": [[r["seed"], r["threads"]] for r in records if not r["holds"]],
    }
    if not values:
        return entry | {"min": None, "median": None, "max": None, "sd": None, "margin_sd": None,
                        "constant": False, "meets_rule": False}  # fmt: skip
    distances = []
    if bounds["above"] is not None:
        distances.append(min(values) - bounds["above"])
    if bounds["below"] is not None:
        distances.append(bounds["below"] - max(values))
    worst = min(distances)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    scale = max(abs(v) for v in values) or 1.0
    constant = sd <= 1e-12 * scale
    margin = None if constant else worst / sd
    holds = not missing and not entry["failed_runs"] and worst > 0
    meets = holds and (constant or margin >= MIN_MARGIN)
    return entry | {
        "min": min(values), "median": statistics.median(values), "max": max(values), "sd": sd,
        "worst_distance": worst, "margin_sd": margin, "constant": constant, "meets_rule": meets,
    }  # fmt: skip


def run_chapter(py: Path, runs: list[tuple[int, int]], jobs: int, timeout: int) -> dict:
    """Execute ``py`` at every (seed, threads) of ``runs``; returns its ledger entry."""
    texts = claim_texts(py)
    digest = sha256(py)
    with tempfile.TemporaryDirectory() as tmp:

        def go(run):
            seed, threads = run
            sink = Path(tmp) / f"{seed}_{threads}.jsonl"
            env = {"BOOK_CLAIMS_LEDGER": str(sink), "BOOK_CHAPTER": py.stem, "BOOK_SEED": str(seed)}
            result = check_claims.run_isolated(py, seed, threads, {}, timeout, env)
            lines = sink.read_text().splitlines() if sink.exists() else []
            records = [json.loads(x) for x in lines]
            failing = len(result["failures"])
            status = f"{failing} failing cell(s)" if failing else "ok"
            print(f"  {py.stem} seed={seed} threads={threads}: {status}, {len(records)} claim(s) "
                  f"({result['seconds']:.0f} s)", flush=True)  # fmt: skip
            return result, records

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            done = list(pool.map(go, runs))
    records = [rec for _, recs in done for rec in recs]
    unknown = sorted({r["claim"] for r in records} - set(texts))
    claims = [summarize(t, [r for r in records if r["claim"] == t], runs) for t in texts + unknown]
    return {
        "sha256": digest,
        "code_sha256": code_fingerprint(py),
        "texts": texts,
        "date": datetime.date.today().isoformat(),
        "runs": [{"seed": r["seed"], "threads": r["threads"], "seconds": round(r["seconds"], 1),
                  "failing_cells": [f"cell {f['cell']}: {f['error'][:300]}" for f in r["failures"]]}
                 for r, _ in done],  # fmt: skip
        "claims": claims,
    }


def problems(name: str, entry: dict) -> list[str]:
    """Every way ``entry`` breaks the rule, as sentences."""
    out = []
    for run in entry["runs"]:
        for failure in run["failing_cells"]:
            out.append(f"{name} seed={run['seed']} threads={run['threads']}: {failure}")
    for c in entry["claims"]:
        if c["meets_rule"]:
            continue
        if c["missing_runs"]:
            out.append(f"{name}: {c['text']!r} did not run at {c['missing_runs']}")
        elif c["failed_runs"] or c["worst_distance"] <= 0:
            out.append(f"{name}: {c['text']!r} failed at {c['failed_runs']} "
                       f"(values {c['min']:.4g} to {c['max']:.4g})")  # fmt: skip
        else:
            out.append(f"{name}: {c['text']!r} holds with a margin of only "
                       f"{c['margin_sd']:.2f} sd (values {c['min']:.4g} to {c['max']:.4g}, "
                       f"bounds {c['above']}, {c['below']})")  # fmt: skip
    return out


def summary_table(ledger: dict) -> str:
    lines = ["| chapter | runs | claims | meet the rule | smallest margin (sd) | seconds per run |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, entry in sorted(ledger["chapters"].items()):
        margins = [c["margin_sd"] for c in entry["claims"] if c.get("margin_sd") is not None]
        seconds = [r["seconds"] for r in entry["runs"]]
        ok = sum(c["meets_rule"] for c in entry["claims"])
        smallest = f"{min(margins):.1f}" if margins else "—"
        time = f"{statistics.median(seconds):.0f} (max {max(seconds):.0f})"
        lines.append(f"| {name} | {len(entry['runs'])} | {len(entry['claims'])} | {ok} "
                     f"| {smallest} | {time} |")  # fmt: skip
    return "\n".join(lines)


def load(path: Path = LEDGER) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {"rule": RULE, "chapters": {}}


def save(ledger: dict, path: Path = LEDGER, names: list[str] | None = None) -> None:
    """Write ``ledger``; with ``names``, only those chapters' entries are taken from it and the
    others are re-read from the file, so that two ledger runs of different chapters (or a
    merge of another machine's entries) do not undo each other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if names is not None:
        current = load(path)
        current["chapters"].update({n: ledger["chapters"][n] for n in names})
        ledger["chapters"] = current["chapters"]
    ledger["rule"] = RULE
    ledger["chapters"] = dict(sorted(ledger["chapters"].items()))
    text = json.dumps(ledger, indent=1, ensure_ascii=False) + "\n"
    scratch = path.with_suffix(".tmp")
    scratch.write_text(text)
    scratch.replace(path)  # atomic: a reader never sees half a file


def _bound_text(c: dict) -> str:
    if c["above"] is not None and c["below"] is not None:
        return f"between {c['above']:.4g} and {c['below']:.4g}"
    return f"> {c['above']:.4g}" if c["above"] is not None else f"< {c['below']:.4g}"


def _margin_text(c: dict) -> str:
    if c["constant"] and c["meets_rule"]:
        return "same at every run"
    if c["margin_sd"] is None:
        return "—"
    return f"{c['margin_sd']:.1f}" + ("" if c["meets_rule"] else " (breaks the rule)")


def claims_figure(name: str, entry: dict):
    """One row per claim: its value at each run (dots) and its bound (a line, the failing
    side shaded); each row has its own x scale, since claims measure different things."""
    from helpers import plotting

    claims = entry["claims"]
    fig, axes = plotting.subplots(len(claims), 1, figsize=(6.5, 0.62 * len(claims) + 0.5),
                                  squeeze=False)  # fmt: skip
    for i, (ax, c) in enumerate(zip(axes[:, 0], claims, strict=True), start=1):
        one = [v["value"] for v in c["values"] if v["threads"] == 1]
        two = [v["value"] for v in c["values"] if v["threads"] != 1]
        ax.plot(one, [0] * len(one), "o", color=plotting.COLORS[0], alpha=0.7, ms=5)
        ax.plot(two, [0] * len(two), "s", mfc="none", color=plotting.COLORS[2], ms=7)
        points = one + two + [b for b in (c["above"], c["below"]) if b is not None]
        lo, hi = min(points), max(points)
        pad = 0.08 * (hi - lo) if hi > lo else 0.5 * max(abs(hi), 1e-12)
        ax.set_xlim(lo - pad, hi + pad)
        for bound, side in ((c["above"], -1), (c["below"], 1)):
            if bound is not None:
                ax.axvline(bound, color=plotting.COLORS[1], lw=1.5)
                edge = lo - pad if side < 0 else hi + pad
                ax.axvspan(min(bound, edge), max(bound, edge), color=plotting.COLORS[1], alpha=0.12)
        ax.set_yticks([])
        ax.set_ylabel(str(i), rotation=0, ha="right", va="center")
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="y", visible=False)
    axes[0, 0].set_title(f"{name}: each claim's value at every run (circles: one thread, "
                         "squares: two), its bound (line)", fontsize=9)  # fmt: skip
    return fig


def write_appendix(ledger: dict, folder: Path, chapters: list[str] | None = None) -> Path:
    """The HTML book's appendix page ``claims_appendix.md`` with one figure per chapter."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "# How robust is each claim?",
        "",
        "Every sentence in this book that says what an experiment shows is backed by a call to "
        "`helpers.claims.claim`, which prints the measured value beside the bound the sentence "
        "states and stops the chapter if the bound is not met. A chapter prints its claims at "
        "one seed. This page shows each claim at **ten seeds (0–9) on one CPU thread and at seed "
        "0 on two threads**, from `make ledger` (the file `benchmarks/claims/ledger.json`).",
        "",
        "The rule every claim must meet: it holds at every one of those runs, and the run that "
        "comes closest to the bound still lies at least **three standard deviations** of the "
        "claim's values inside it (the *margin* below). A claim whose value is the same at every "
        "run (a count, an exact property) is exempt from the margin. A claim that cannot meet "
        "the rule is restated in its chapter: a weaker bound, an average over paired seeds, or "
        "another experiment.",
        "",
        summary_table(ledger),
        "",
    ]
    for name, entry in sorted(ledger["chapters"].items()):
        if chapters is not None and name not in chapters or not entry["claims"]:
            continue
        fig = claims_figure(name, entry)
        image = f"claims_{name}.png"
        fig.savefig(folder / image)
        number, _, topic = name.partition("_")
        title = f"Chapter {int(number)}: {topic.replace('_', ' ')}"
        alt = (f"{title}: for each of its {len(entry['claims'])} claims, a row of dots "
               "(its value at every run) beside a line at its bound")  # fmt: skip
        lines += [f"## {title}", "", f"![{alt}]({image})", "",
                  "| # | claim | bound | min | median | max | margin (sd) |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for i, c in enumerate(entry["claims"], start=1):
            cells = [str(i), c["text"].replace("|", "\\|"), _bound_text(c)]
            stats = ("min", "median", "max")
            cells += ["—"] * 3 if c["min"] is None else [f"{c[k]:.4g}" for k in stats]
            cells.append(_margin_text(c))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    page = folder / "claims_appendix.md"
    page.write_text("\n".join(lines))
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", nargs="+", default=None, help="e.g. 01 03 (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=SEEDS)
    parser.add_argument("--two-thread-seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs at the same time")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--force", action="store_true", help="re-run unchanged chapters too")
    parser.add_argument("--ledger", type=Path, default=LEDGER)
    parser.add_argument("--report", action="store_true", help="print the stored ledger only")
    args = parser.parse_args(argv)
    ledger = load(args.ledger)
    every = sorted(check_claims.CHAPTERS.glob("[0-9][0-9]_*.py"))
    keys = args.chapters or [p.name[:2] for p in every]
    chapters = [check_claims.find_chapter(k) for k in keys]
    runs = [(s, 1) for s in args.seeds] + [(s, 2) for s in args.two_thread_seeds]
    start = time.perf_counter()
    for py in [] if args.report else chapters:
        old = ledger["chapters"].get(py.stem, {})
        same_runs = [(r["seed"], r["threads"]) for r in old.get("runs", [])] == runs
        if not args.force and old.get("sha256") == sha256(py) and same_runs:
            print(f"{py.stem}: unchanged since its entry ({old.get('date')}); --force re-runs it")
            continue
        again = None if args.force or not same_runs else rebound(old, py, runs)
        if again is not None:
            print(f"{py.stem}: only prose, sentences or literal bounds changed since its run "
                  f"of {old['date']}: its values are checked against the new bounds")  # fmt: skip
            ledger["chapters"][py.stem] = again
            save(ledger, args.ledger, [py.stem])
            continue
        print(f"{py.stem}: {len(runs)} run(s), {args.jobs} at a time", flush=True)
        ledger["chapters"][py.stem] = run_chapter(py, runs, args.jobs, args.timeout)
        save(ledger, args.ledger, [py.stem])  # after every chapter: an interruption keeps it
    elapsed = time.perf_counter() - start
    print()
    print(summary_table(ledger))
    found = [p for name, entry in sorted(ledger["chapters"].items()) for p in problems(name, entry)]
    stale = [py.stem for py in chapters
             if ledger["chapters"].get(py.stem, {}).get("sha256") != sha256(py)]  # fmt: skip
    print()
    for line in found:
        print("RULE", line)
    for name in stale:
        print(f"STALE {name}: its .py changed since its entry (make ledger CHAPTERS={name[:2]})")
    print(f"ledger: {len(found)} problem(s), {len(stale)} stale chapter(s); {elapsed:.0f} s")
    return 1 if found or stale else 0


if __name__ == "__main__":
    sys.exit(main())
