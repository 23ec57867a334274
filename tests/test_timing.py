"""helpers.timing: warm-up, repeats, median and best; readable units."""

import pytest

from helpers.timing import benchmark, format_seconds


def test_benchmark_reports_median_and_best():
    calls = []
    timing = benchmark(lambda: calls.append(1), repeats=5, warmup=2)
    assert len(calls) == 7
    assert 0 <= timing.best <= timing.median and timing.repeats == 5
    assert "median of 5" in str(timing)
    fast = benchmark(lambda: None, repeats=3, warmup=0, min_time=1e-3)
    assert fast.median < 1e-3
    with pytest.raises(ValueError, match="repeats >= 1"):
        benchmark(lambda: None, repeats=0)


def test_format_seconds():
    assert format_seconds(2.3149) == "2.31 s"
    assert format_seconds(0.0125) == "12.5 ms"
    assert format_seconds(3.4e-6) == "3.4 µs"
    assert format_seconds(8.12e-7) == "812 ns"
