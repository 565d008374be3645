"""Timing shared by the run-overhead benchmarks: contenders run interleaved, reported as medians
against a floor (a bare `docker run`), so load on the machine hits every contender alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def interleaved(contenders: dict[str, Callable[[], object]], runs: int) -> dict[str, list[float]]:
    """Each contender once to warm caches (image layers, page cache, schemas), then `runs` rounds."""
    for action in contenders.values():
        action()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name, action in contenders.items():
            times[name].append(timed(action))
    return times


def print_against_floor(times: dict[str, list[float]], floor: str, header: str) -> float:
    """One line per contender: median, ratio to the floor's median, min and max. Returns the floor."""
    floor_median = statistics.median(times[floor])
    width = max(len(name) for name in times)
    print(header)
    for name, samples in times.items():
        median = statistics.median(samples)
        print(
            f"  {name:{width}s} {median * 1000:7.0f} ms   {median / floor_median:5.2f}x the floor"
            f"   (min {min(samples) * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms)"
        )
    return floor_median
