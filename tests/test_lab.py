"""`make lab` works: JupyterLab serves the chapters and runs their code in a kernel.

Starts `jupyter lab` headless on a free localhost port with a token, lists the chapters
through the REST API (/api/contents), starts a kernel (/api/kernels), executes a chapter's
first code cell through the kernel's websocket, then shuts the kernel and the server down.
"""

from __future__ import annotations

import ast
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import pytest
import requests
import websocket

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))
START_TIMEOUT = 120  # seconds for the server to answer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A running JupyterLab on chapters/: yields (base_url, token); always stopped after."""
    port, token = _free_port(), secrets.token_hex(16)
    runtime = tmp_path_factory.mktemp("jupyter-runtime")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime), BOOK_PROGRESS="0")
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={CHAPTERS}", "--ServerApp.open_browser=False",
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    if os.geteuid() == 0:  # CI runs as root
        command.append("--allow-root")
    log = (runtime / "lab.log").open("w")
    server = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited early:\n{(runtime / 'lab.log').read_text()}")
            try:
                if requests.get(f"{base}/api/status", params={"token": token}, timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer:\n{(runtime / 'lab.log').read_text()}")
            time.sleep(0.5)
        yield base, token
    finally:
        try:
            requests.post(f"{base}/api/shutdown", params={"token": token}, timeout=10)
            server.wait(timeout=20)
        except Exception:  # noqa: BLE001 - fall back to signals whatever went wrong
            pass
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
        log.close()


def test_lab_lists_every_chapter_through_the_rest_api(lab):
    base, token = lab
    headers = {"Authorization": f"token {token}"}
    assert requests.get(f"{base}/api/contents", timeout=10).status_code == 403, "token required"
    listing = requests.get(f"{base}/api/contents", headers=headers, timeout=30).json()
    names = {item["name"] for item in listing["content"] if item["type"] == "notebook"}
    assert names >= {p.name for p in NOTEBOOKS}
    first = NOTEBOOKS[0].name
    model = requests.get(f"{base}/api/contents/{first}", headers=headers, timeout=30).json()
    assert model["type"] == "notebook" and model["content"]["cells"]
    lab_page = requests.get(f"{base}/lab", headers=headers, timeout=30)
    assert lab_page.ok and "JupyterLab" in lab_page.text


def _execute(ws: websocket.WebSocket, code: str, timeout: float = 120) -> dict:
    """Send an execute_request over the kernel websocket; return its outputs and reply."""
    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        })
    )  # fmt: skip
    result = {"stdout": "", "errors": [], "reply": None, "idle": False}
    deadline = time.monotonic() + timeout
    while not (result["reply"] and result["idle"]):
        ws.settimeout(max(deadline - time.monotonic(), 0.1))
        message = json.loads(ws.recv())
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "stream" and content["name"] == "stdout":
            result["stdout"] += content["text"]
        elif kind == "error":
            result["errors"].append(f"{content['ename']}: {content['evalue']}")
        elif kind == "execute_reply":
            result["reply"] = content
        elif kind == "status" and content["execution_state"] == "idle":
            result["idle"] = True
    return result


def test_a_kernel_runs_a_chapters_first_code_cell(lab):
    base, token = lab
    headers = {"Authorization": f"token {token}"}
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    first_code = next(c.source for c in nb.cells if c.cell_type == "code")
    response = requests.post(
        f"{base}/api/kernels", headers=headers, json={"name": "python3"}, timeout=60
    )
    assert response.status_code == 201, response.text
    kernel_id = response.json()["id"]
    ws = None
    try:
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{base.rsplit(':', 1)[1]}/api/kernels/{kernel_id}/channels",
            header=[f"Authorization: token {token}"],
            timeout=60,
        )
        ran = _execute(ws, first_code)
        assert ran["reply"]["status"] == "ok", ran["errors"]
        assert not ran["errors"]
        assigned = sorted(
            target.id
            for node in ast.parse(first_code).body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        )
        probe = _execute(
            ws,
            f"import sys\nprint(sys.executable)\nprint(all(n in globals() for n in {assigned!r}))",
        )
        assert probe["reply"]["status"] == "ok", probe["errors"]
        executable, defined = probe["stdout"].splitlines()[:2]
        assert Path(executable).resolve() == Path(sys.executable).resolve(), "not the .venv kernel"
        assert defined == "True", f"the first cell did not define {assigned}"
    finally:
        if ws is not None:
            ws.close()
        requests.delete(f"{base}/api/kernels/{kernel_id}", headers=headers, timeout=30)
    kernels = requests.get(f"{base}/api/kernels", headers=headers, timeout=30).json()
    assert kernel_id not in {k["id"] for k in kernels}
