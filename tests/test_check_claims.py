"""tools/check_claims.py (`make claims`): seeds and overrides injected after the parameters
cell, the thread count in the kernel's environment, every failing cell listed."""

import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "check_claims.py"

TOY = '''# %% [markdown]
# # Toy chapter

# %% tags=["parameters"]
SEED = 0
N = 3

# %%
import os
assert os.environ["OMP_NUM_THREADS"] == "2", "threads not passed to the kernel"

# %%
assert SEED != 2, f"the claim fails at seed {SEED}"

# %%
assert N == 3, "N was overridden"

# %% tags=["raises-exception"]
raise ValueError("shown on purpose")
'''


def run(*args):
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True)


def test_lists_every_failing_cell(tmp_path):
    chapter = tmp_path / "99_toy.py"
    chapter.write_text(TOY)
    proc = run("--chapters", str(chapter), "--seeds", "1", "2", "--threads", "2", "--jobs", "2",
               "--set", "N=4")  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "| 99_toy | 1 | 2 |" in out and "| 99_toy | 2 | 2 |" in out
    assert out.count("AssertionError: N was overridden") == 2  # both seeds, not only the first
    assert out.count("AssertionError: the claim fails at seed 2") == 1
    assert "threads not passed" not in out and "on purpose" not in out
    assert chapter.read_text() == TOY  # the source is left alone


def test_all_claims_hold(tmp_path):
    chapter = tmp_path / "99_toy.py"
    chapter.write_text(TOY)
    proc = run("--chapters", str(chapter), "--seeds", "1", "--threads", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all claims held: 1 run(s)" in proc.stdout


def test_bad_arguments(tmp_path):
    proc = run("--chapters", "nope")
    assert proc.returncode != 0 and "expected one chapter matching 'nope'" in proc.stderr
    proc = run("--chapters", "01", "--set", "EPOCHS")
    assert proc.returncode != 0 and "NAME=VALUE" in proc.stderr
