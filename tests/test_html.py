"""The static HTML book (`make html`, tools/build_html.py) is complete and works offline.

The book is built once (into a temporary folder shared by the test workers) from the chapters
present. Static checks read the HTML; the browser test opens every page from disk in headless
Chromium (driven over the DevTools protocol with websocket-client) and checks: no console
errors, no request to another machine (everything is file: or data:), math typeset (no raw
`$$`, `\\(` or `\\[` left in the text), every image loaded, code cells present on chapter
pages. It saves a screenshot of the first chapter to _build/screenshots/.

Chromium comes from the system packages: `make test` installs it when missing (as root). Where
it is missing outside CI the browser test is skipped; in CI (CI=true) it fails instead.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import requests
import websocket

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_html  # noqa: E402

CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
SCREENSHOTS = ROOT / "_build" / "screenshots"
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--mute-audio", "--window-size=1280,1600",
    "--remote-debugging-port=0", "--remote-allow-origins=*",
]  # fmt: skip


@pytest.fixture(scope="session")
def book(tmp_path_factory, worker_id) -> Path:
    """The built book, built once per test run even when xdist runs several workers."""
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # under xdist: the folder common to all workers of this run
        shared = shared.parent
    out = shared / "html-book"
    with (shared / "html-book.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (out / "index.html").exists():
                build_html.build(out, CHAPTERS, scratch=shared / "html-scratch")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return out


def _pages(book: Path) -> list[Path]:
    return sorted(book.glob("*.html"))


def test_the_toc_is_generated_from_every_chapter_present(tmp_path):
    toc = build_html.write_toc(tmp_path, CHAPTERS)
    assert "numbered: 1" in toc and "root: intro" in toc
    assert re.findall(r"- file: (\S+)", toc) == [p.stem for p in CHAPTERS]
    toc = build_html.write_toc(tmp_path, CHAPTERS, ["claims_appendix"])
    assert re.findall(r"- file: (\S+)", toc) == [p.stem for p in CHAPTERS] + ["claims_appendix"]
    assert "caption: Appendix" in toc


def test_the_chapter_number_is_cut_from_the_title(tmp_path):
    build_html.strip_chapter_number(CHAPTERS[0], tmp_path / "c.ipynb")
    first = nbformat.read(tmp_path / "c.ipynb", as_version=4).cells[0].source
    assert first.startswith("# ") and not first.startswith("# Chapter")
    original = nbformat.read(CHAPTERS[0], as_version=4).cells[0].source
    assert original.startswith("# Chapter 1")  # the chapter itself keeps its number


def test_every_chapter_is_a_numbered_page_with_code_figures_and_math(book):
    index = (book / "intro.html").read_text()
    for number, notebook in enumerate(CHAPTERS, start=1):
        page = book / f"{notebook.stem}.html"
        assert page.exists(), f"no page for {notebook.name}"
        assert f'href="{page.name}"' in index, f"{page.name} is not in the table of contents"
        html = page.read_text()
        assert re.search(rf'<span class="section-number">{number}\. </span>', html), (
            f"{page.name} is not numbered {number}"
        )
        assert 'class="cell docutils container"' in html, f"{page.name} has no code cells"
        title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
        assert "Chapter" not in title, f"{page.name} is numbered twice: {title}"
    assert list(book.glob("_images/*.png")), "no figures were written"


def test_the_appendix_shows_every_chapters_claims(book):
    page = book / "claims_appendix.html"
    assert page.exists(), "no appendix page: is benchmarks/claims/ledger.json missing?"
    assert 'href="claims_appendix.html"' in (book / "intro.html").read_text()
    html = page.read_text()
    assert "How robust is each claim?" in html
    in_ledger = build_html.ledger.load()["chapters"]  # the ledger guard test says which are missing
    for notebook in CHAPTERS:
        if notebook.stem in in_ledger:
            assert f"claims_{notebook.stem}.png" in html, f"no claims figure for {notebook.stem}"


def test_no_page_names_another_machine_and_mathjax_is_local(book):
    assert (book / "_static" / "mathjax" / "MathJax.js").exists()
    pattern = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)
    for page in _pages(book):
        html = page.read_text()
        for tag in re.findall(r"<(?:script|link|img|iframe|source)\b[^>]*>", html):
            assert not pattern.search(tag), f"{page.name} loads from another machine: {tag}"
        assert "THEBE_JS_URL" not in html and "unpkg.com" not in html
    for css in (book / "_static").rglob("*.css"):
        for url in re.findall(r"url\(\s*['\"]?([^)'\"]+)", css.read_text(errors="replace")):
            assert not re.match(r"(?:https?:)?//", url), f"{css.name} loads {url}"


# --- the browser test -------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ["chromium", "chromium-browser", "google-chrome"]:
        found = shutil.which(name)
        if found:
            return found
    return None


class DevTools:
    """A minimal Chrome DevTools protocol client on one page target."""

    def __init__(self, url: str):
        self.ws = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, timeout: float = 60, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            self.ws.settimeout(max(deadline - time.monotonic(), 0.1))
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            if "method" in message:
                self.events.append(message)

    def wait_for(self, event: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.events:
                if message["method"] == event:
                    return message
            self.ws.settimeout(max(deadline - time.monotonic(), 0.1))
            message = json.loads(self.ws.recv())
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str, timeout: float = 60):
        result = self.call(
            "Runtime.evaluate",
            timeout=timeout,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result["result"].get("value")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    executable = _chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI: `make test` should have installed it")
        pytest.skip("no Chromium here (`apt-get install chromium`)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = subprocess.Popen(
        [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    client = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or len(port_file.read_text().split()) < 2:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("Chromium did not start its DevTools endpoint")
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        targets = []
        while not targets:
            listing = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
            targets = [t for t in listing if t.get("type") == "page"]
            if time.monotonic() > deadline:
                pytest.fail("Chromium opened no page")
            time.sleep(0.2)
        client = DevTools(targets[0]["webSocketDebuggerUrl"])
        for domain in ["Page", "Runtime", "Log", "Network"]:
            client.call(f"{domain}.enable")
        yield client
    finally:
        if client is not None:
            try:
                client.call("Browser.close", timeout=10)
            except Exception:  # noqa: BLE001 - the signals below stop it anyway
                pass
            client.ws.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


WAIT_FOR_MATH = """
new Promise((resolve) => {
  if (!document.querySelector('.math')) { resolve('no math'); return; }
  setTimeout(() => resolve('timeout'), 60000);
  const wait = () => (window.MathJax && MathJax.Hub && MathJax.Hub.Register)
    ? MathJax.Hub.Register.StartupHook('End', () => resolve('typeset'))
    : setTimeout(wait, 50);
  wait();
})
"""

IMAGES_DONE = "[...document.images].every((img) => img.complete)"

PAGE_FACTS = """
(() => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll('pre, code, script, style, .MathJax_Preview, .highlight')
      .forEach((e) => e.remove());
  const text = body.innerText;
  return {
    raw_math: ['$$', '\\\\(', '\\\\['].filter((s) => text.includes(s)),
    math: document.querySelectorAll('.math').length,
    typeset: document.querySelectorAll('.MathJax, .MathJax_Display, .MathJax_CHTML').length,
    math_errors: document.querySelectorAll('.MathJax_Error, merror, .mjx-merror').length,
    broken_images: [...document.images].filter((i) => !(i.complete && i.naturalWidth > 0))
        .map((i) => i.getAttribute('src')),
    images: document.images.length,
    code_cells: document.querySelectorAll('div.cell div.cell_input pre').length,
  };
})()
"""


def _problems(events: list[dict]) -> tuple[list[str], list[str]]:
    errors, requests_out = [], []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            errors.append(
                " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            )
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append(details.get("exception", {}).get("description", details.get("text")))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(f"{params['entry'].get('url', '')}: {params['entry']['text']}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            errors.append(f"request failed: {params.get('errorText')}")
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith(LOCAL_SCHEMES):
                requests_out.append(url)
    return errors, requests_out


def test_every_page_renders_offline_in_chromium(book, browser):
    pages = _pages(book)
    assert len(pages) >= len(CHAPTERS) + 1
    first_chapter = book / f"{CHAPTERS[0].stem}.html"
    failures = []
    for page in pages:
        redirect = re.search(
            r'http-equiv="refresh" content="0; url=([^"]+)"', page.read_text(), re.I
        )
        if redirect:  # index.html only forwards to the front page
            assert (book / redirect.group(1)).exists(), f"{page.name} forwards to nothing"
            continue
        browser.events.clear()
        browser.call("Page.navigate", url=page.as_uri())
        browser.wait_for("Page.loadEventFired", timeout=60)
        math = browser.evaluate(WAIT_FOR_MATH, timeout=90)
        deadline = time.monotonic() + 60
        while not browser.evaluate(IMAGES_DONE) and time.monotonic() < deadline:
            time.sleep(0.1)
        facts = browser.evaluate(PAGE_FACTS)
        errors, requests_out = _problems(browser.events)
        name = page.name
        if errors:
            failures.append(f"{name}: console errors {errors}")
        if requests_out:
            failures.append(f"{name}: requests leave the machine {requests_out}")
        if math == "timeout":
            failures.append(f"{name}: MathJax did not finish within 60 s")
        if facts["raw_math"]:
            failures.append(f"{name}: raw math left in the text {facts['raw_math']}")
        if facts["math"] and not facts["typeset"]:
            failures.append(f"{name}: {facts['math']} math elements but none typeset")
        if facts["math_errors"]:
            failures.append(f"{name}: {facts['math_errors']} MathJax errors")
        if facts["broken_images"]:
            failures.append(f"{name}: images not loaded {facts['broken_images']}")
        if re.match(r"\d\d_", name) and not facts["code_cells"]:
            failures.append(f"{name}: no code cells")
        if page == first_chapter:
            shot = browser.call("Page.captureScreenshot", format="png", timeout=120)["data"]
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            target = SCREENSHOTS / f"{page.stem}.png"
            target.write_bytes(base64.b64decode(shot))
            assert target.stat().st_size > 10_000, "the screenshot is blank"
    assert not failures, "\n".join(failures)
