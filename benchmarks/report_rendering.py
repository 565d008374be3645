"""How long each report format takes to render, and its peak memory, as divergences grow.

    uv run python benchmarks/report_rendering.py [--sizes 1000,10000,50000]

A check result with N divergences spread over two comparisons and every category (a fifth of them
waived, values of 40-200 characters, a hint on every other one) is rendered in each format; the script
prints the median of 3 runs, the peak traced memory, the output size, and how time grew from the
smallest size to each larger one (linear growth: the ratio of times matches the ratio of sizes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
import tracemalloc

from conformance import reports
from conformance.config import CATEGORIES, SEVERITIES
from conformance.model import AppliedWaiver, CheckResult, ComparisonResult, Divergence

WAIVER = AppliedWaiver(reason="accepted for the benchmark", owner="bench", expires=dt.date(2031, 1, 1))
KINDS = ("missing", "extra", "changed", "type_changed")


def synthetic_result(size: int) -> CheckResult:
    comparisons = []
    sides = (
        ("k8s~sagemaker", "pair", "k8s", "sagemaker"),
        ("baseline:sagemaker", "baseline", "baseline.json", "sagemaker"),
    )
    for name, kind, left, right in sides:
        divergences = []
        for index in range(size // 2):
            category = CATEGORIES[index % len(CATEGORIES)]
            waived = index % 5 == 0
            divergences.append(
                Divergence(
                    id=f"{index:016x}",
                    comparison=name,
                    category=category,
                    path=f"{category}.item_{index}.value",
                    kind=KINDS[index % len(KINDS)],
                    left="l" * (40 + index % 160),
                    right={"nested": ["r" * (index % 50), index]},
                    severity=SEVERITIES[index % len(SEVERITIES)],
                    waived=waived,
                    waiver=WAIVER if waived else None,
                    hint="a known parity bug class, with its likely cause and fix" if index % 2 else None,
                )
            )
        comparisons.append(
            ComparisonResult(name=name, kind=kind, left=left, right=right, divergences=divergences)
        )
    return CheckResult(generated_at=dt.datetime.now(dt.timezone.utc), comparisons=comparisons)


def measure(result: CheckResult, fmt: str) -> tuple[float, int, int]:
    """(median seconds, peak traced bytes, output characters) for rendering `result` as `fmt`."""
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        output = reports.render(result, fmt)
        timings.append(time.perf_counter() - started)
    tracemalloc.start()
    reports.render(result, fmt)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(timings), peak, len(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000", help="comma-separated divergence counts")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    baseline: dict[str, float] = {}
    print(
        f"{'format':<9} {'divergences':>11} {'time s':>8} {'peak MiB':>9} "
        f"{'output chars':>13} {'time ratio':>11}"
    )
    for size in sizes:
        result = synthetic_result(size)
        for fmt in reports.FORMATS:
            seconds, peak, characters = measure(result, fmt)
            baseline.setdefault(fmt, seconds)
            ratio = f"x{seconds / baseline[fmt]:.1f}" if size != sizes[0] else "-"
            print(f"{fmt:<9} {size:>11} {seconds:>8.3f} {peak / 2**20:>9.1f} {characters:>13} {ratio:>11}")
    print(f"size ratios: {', '.join(f'x{size / sizes[0]:.0f}' for size in sizes[1:])}")


if __name__ == "__main__":
    main()
