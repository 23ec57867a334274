"""Print requirements.lock from a virtual environment's installed packages.

    python tools/write_lock.py .lock-venv > requirements.lock

The direct dependencies come first, then everything they pull in, each pinned exactly.
torch is written as torch==2.13.0 (without a +cpu or +cuXXX label), so that the same lock
installs the CPU build where that wheel is offered and the CUDA build from PyPI elsewhere.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DIRECT = [
    "torch", "nbval", "numpy", "matplotlib", "jupyterlab", "jupytext", "scikit-learn",
    "scikit-image", "tqdm", "pooch", "pytest", "pytest-xdist", "hypothesis", "ruff",
    "ipykernel", "nbclient", "nbformat", "pyyaml", "jupyter-book", "jupyter-server-mathjax",
    "pytorch-optimizer", "nbgrader", "torchao",
]  # fmt: skip

HEADER = """\
# Exact pins used by `make book`, `make test` and CI (Python 3.11).
# Regenerate with `make lock` after changing pyproject.toml; keep environment.yml in step
# (tests/test_environment.py compares them).
# torch==2.13.0 resolves to the CPU build where the CPU wheel is offered and to the
# CUDA build from PyPI elsewhere; nothing below may pull a newer torch.
"""


def normalize(name: str) -> str:
    return name.lower().replace("_", "-")


def main(venv: str) -> None:
    python = Path(venv) / "bin" / "python"
    freeze = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--exclude-editable"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    pins = {}
    for line in freeze.splitlines():
        if "==" in line:
            name, version = line.split("==")
            pins[normalize(name)] = version.split("+")[0]
    lines = [HEADER, "# direct dependencies"]
    lines += [f"{name}=={pins[name]}" for name in DIRECT]
    lines += ["", "# everything they pull in"]
    lines += [f"{name}=={version}" for name, version in sorted(pins.items()) if name not in DIRECT]
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
