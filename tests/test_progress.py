"""helpers.progress: the bar is off when asked, and in a notebook it updates one display line."""

import pytest

from helpers import progress
from helpers.progress import Progress


@pytest.fixture(autouse=True)
def progress_off_by_default(monkeypatch):
    """Progress off unless a test turns it on (``make unit`` sets TQDM_DISABLE too)."""
    monkeypatch.setenv("BOOK_PROGRESS", "0")
    monkeypatch.delenv("TQDM_DISABLE", raising=False)


@pytest.mark.parametrize(("name", "value"), [("TQDM_DISABLE", "1"), ("BOOK_PROGRESS", "0")])
def test_progress_enabled_reads_the_environment(monkeypatch, name, value):
    monkeypatch.delenv("BOOK_PROGRESS")
    assert progress.progress_enabled(True) and not progress.progress_enabled(False)
    monkeypatch.setenv(name, value)
    assert not progress.progress_enabled(True)


def test_progress_in_a_notebook_updates_one_display(monkeypatch):
    shown = []

    class FakeHandle:
        def update(self, obj, raw=False):
            shown.append(obj["text/plain"])

    def fake_display(text):
        shown.append(text)
        return FakeHandle()

    monkeypatch.delenv("BOOK_PROGRESS")
    monkeypatch.setattr(progress, "_in_jupyter_kernel", lambda: True)
    monkeypatch.setattr(progress, "_new_display", fake_display)
    p = Progress(3, desc="demo", min_interval=0.0)
    p.batch(1, 5, 10)
    p.epoch(1, {"train_loss": 0.5, "train_acc": 0.9, "val_loss": 0.25, "val_acc": 0.875,
                "seconds": 0.8})
    assert shown[0] == "demo: epoch 0/3 · starting"
    assert shown[1] == "demo: epoch 1/3 · batch 5/10"
    assert shown[2] == ("demo: epoch 1/3 · train loss 0.500 acc 90.0% · "
                        "val loss 0.250 acc 87.5% · 0.8 s/epoch")
    assert all("\n" not in line for line in shown)
