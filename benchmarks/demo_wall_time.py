"""Wall time of `parity demo`, as a user runs it: warm (image reused), and what a first run adds.

    uv run python benchmarks/demo_wall_time.py [--runs 5] [--cold]

warm    `parity demo` in a new process each time (interpreter start, imports, moto start, the image check,
        both targets concurrently, the check and the report), the compat image already built:
        min / median / max over --runs
cold    (--cold) the compat image built from scratch, every layer anew (`--no-cache`, apt and pip over
        the network), under a throwaway tag removed afterwards: what the first `parity demo` on a machine
        adds to a warm one (the offline base image is assumed built; `python -m conformance.baseimage`)
Prints the figures, then the first run's estimate (cold build + median warm run) and its ratio to a warm run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from conformance.compat_image import build_compat_image
from conformance.dockerhost import connect

PARITY = Path(sys.executable).parent / "parity"


def timed_demo() -> float:
    started = time.perf_counter()
    done = subprocess.run([str(PARITY), "demo"], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"parity demo exited with {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr}")
    return elapsed


def cold_build_seconds() -> float:
    client = connect()
    tag = f"parity-compat:bench-{uuid.uuid4().hex[:10]}"
    started = time.perf_counter()
    try:
        build_compat_image(tag, client=client, on_output=lambda line: None, layer_cache=False)
        return time.perf_counter() - started
    finally:
        client.images.remove(tag, force=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="warm demo runs (min/median/max reported)")
    parser.add_argument("--cold", action="store_true", help="also build the compat image without layer cache")
    args = parser.parse_args()

    timed_demo()  # builds the image if it is missing, so every measured run is warm
    warm = [timed_demo() for _ in range(args.runs)]
    median = statistics.median(warm)
    spread = f"min {min(warm):.1f} s, median {median:.1f} s, max {max(warm):.1f} s"
    print(f"warm parity demo ({args.runs} runs): {spread}")
    if args.cold:
        build = cold_build_seconds()
        print(f"compat image built from scratch (no layer cache): {build:.1f} s")
        first = build + median
        print(f"first parity demo on a machine ≈ {first:.1f} s, {first / median:.1f}× a warm run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
