"""One line of training progress: updated in place in a notebook, a tqdm bar in a terminal.

The saved notebook keeps a single line per training run, because the display is created once
and then replaced (``update_display_data``). ``BOOK_PROGRESS=0`` (or a true ``TQDM_DISABLE``)
turns progress off everywhere, as the tests and nbval do.
"""

from __future__ import annotations

import math
import os
import sys
import time

from tqdm import tqdm


def progress_enabled(progress: bool = True) -> bool:
    """False when ``progress`` is False, ``$BOOK_PROGRESS`` is "0" or ``$TQDM_DISABLE`` is true."""
    if not progress or os.environ.get("BOOK_PROGRESS", "").strip() == "0":
        return False
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in ("", "0", "false", "no")


def _in_jupyter_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _new_display(text: str):
    from IPython.display import display

    return display({"text/plain": text}, raw=True, display_id=True)


class Progress:
    """One line of progress for ``total`` epochs.

    In a Jupyter kernel one display is created and updated in place, so the saved notebook
    keeps a single line; in a terminal a tqdm bar over epochs is written to stderr; when
    ``progress_enabled(enabled)`` is False nothing is shown. ``batch`` updates are throttled.
    """

    def __init__(self, total: int, desc: str | None = None, enabled: bool = True,
                 min_interval: float = 1.0):
        self.total, self.desc, self.min_interval = total, desc or "fit", min_interval
        self.mode = "off"
        if progress_enabled(enabled):
            self.mode = "notebook" if _in_jupyter_kernel() else "terminal"
        self._last = time.monotonic()
        self._epoch_line = ""
        if self.mode == "notebook":
            self._handle = _new_display(f"{self.desc}: epoch 0/{total} · starting")
        elif self.mode == "terminal":
            self._bar = tqdm(total=total, desc=self.desc, unit="epoch", file=sys.stderr,
                             leave=True, dynamic_ncols=True, disable=False)

    def _show(self, text: str) -> None:
        if self.mode == "notebook":
            self._handle.update({"text/plain": f"{self.desc}: {text}"}, raw=True)
        elif self.mode == "terminal":
            self._bar.set_postfix_str(text.split(" · ", 1)[-1], refresh=True)

    def batch(self, epoch: int, step: int, steps: int | None) -> None:
        """Report that ``step`` batches of epoch ``epoch`` are done (at most once a second)."""
        now = time.monotonic()
        if self.mode == "off" or now - self._last < self.min_interval:
            return
        self._last = now
        of = f"/{steps}" if steps else ""
        done = f" · last {self._epoch_line}" if self._epoch_line and self.mode == "notebook" else ""
        self._show(f"epoch {epoch}/{self.total} · batch {step}{of}{done}")

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """Show the line for a finished epoch from a ``History.last()``-style dict."""
        parts = [f"epoch {epoch}/{self.total}"]
        for split in ("train", "val"):
            if f"{split}_loss" in metrics:
                acc = metrics.get(f"{split}_acc", math.nan)
                acc_text = "" if math.isnan(acc) else f" acc {100 * acc:.1f}%"
                parts.append(f"{split} loss {metrics[f'{split}_loss']:.3f}{acc_text}")
        parts.append(f"{metrics['seconds']:.1f} s/epoch")
        self._epoch_line = " · ".join(parts[1:])
        if self.mode == "terminal":
            self._bar.update(1)
        self._show(" · ".join(parts))
        self._last = time.monotonic()

    def close(self) -> None:
        if self.mode == "terminal":
            self._bar.close()
