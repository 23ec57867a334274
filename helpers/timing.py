"""Timing that means something: warm up, synchronize the GPU, report the median of repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import NamedTuple

import torch

from .device import synchronize


class Timing(NamedTuple):
    """Seconds per call: the median and the fastest of ``repeats`` timed calls."""

    median: float
    best: float
    repeats: int

    def __str__(self) -> str:
        return f"{format_seconds(self.median)} (median of {self.repeats})"


def format_seconds(seconds: float) -> str:
    """A short human reading of a duration: '812 ns', '3.4 µs', '12.5 ms', '2.31 s'."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def benchmark(
    fn: Callable[[], object],
    *,
    repeats: int = 7,
    warmup: int = 2,
    device: torch.device | str | None = None,
    min_time: float = 0.0,
) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed ones; returns a Timing.

    When ``device`` is a GPU, the device is synchronized before the clock starts and before it
    stops, so queued kernels are counted. A call faster than ``min_time`` seconds is repeated
    in a loop until the loop takes that long and the time per call is reported, which keeps
    microsecond timings out of the clock's noise.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"benchmark: need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    for _ in range(warmup):
        fn()
    synchronize(device)
    inner = 1
    if min_time > 0:
        while True:
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            synchronize(device)
            if time.perf_counter() - start >= min_time or inner >= 1 << 20:
                break
            inner *= 2
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        synchronize(device)
        times.append((time.perf_counter() - start) / inner)
    return Timing(statistics.median(times), min(times), repeats)
