"""What `parity run` of a Kubernetes target (a pod with one sidecar) costs next to a bare `docker run`.

    uv run python benchmarks/kubernetes_overhead.py [--runs 7] [--image parity-base:bookworm]

Timed, interleaved round by round so a busy machine slows all of them alike:
- the floor: `docker run --rm --network none IMAGE true`;
- the in-process runner: `conformance.runner.run_target` on the pod (manifests parsed, the plan built,
  holder + sidecar + probe containers and the service-account volume created, snapshot read, all removed);
- the CLI: `parity run --target … --out …`, interpreter start and imports included;
- the adapter alone: `build_plan` on the pod (warm), and import + first `build_plan` in a fresh interpreter.
It prints the medians and each one's ratio to the floor. Target: the CLI run ≤ 2.5× the floor.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from interleaved import interleaved, print_against_floor

from conformance.baseimage import BASE_IMAGE
from conformance.config import load_config
from conformance.runner import build_plan, run_target

TARGET = "bench-kubernetes"
FLOOR = "docker run --rm --network none IMAGE true"
# The adapter's cold cost in a new interpreter: importing the `kubernetes` client and building its
# pydantic models for the Pod schema on first use dominate it.
COLD_PLAN = (
    "import sys; from conformance.config import load_config; from conformance.runner import build_plan; "
    f"build_plan(load_config(sys.argv[1]), {TARGET!r})"
)


def pod(image: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bench-train"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "train",
                    "image": image,
                    "env": [{"name": "EPOCHS", "value": "3"}],
                    "resources": {"limits": {"cpu": "1", "memory": "512Mi"}},
                },
                {
                    "name": "statsd",
                    "image": image,
                    "command": [
                        "python3",
                        "-c",
                        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                        "s.bind(('127.0.0.1', 8125)); [s.recv(65535) for _ in iter(int, 1)]",
                    ],
                },
            ],
        },
    }


def write_project(directory: Path, image: str) -> Path:
    (directory / "pod.yaml").write_text(yaml.safe_dump(pod(image), sort_keys=False))
    config = directory / "parity.yaml"
    config.write_text(
        yaml.safe_dump({"targets": {TARGET: {"platform": "kubernetes", "image": image, "spec": "pod.yaml"}}})
    )
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--image", default=BASE_IMAGE)
    args = parser.parse_args(argv)
    parity = str(Path(sys.executable).with_name("parity"))
    with tempfile.TemporaryDirectory(prefix="parity-bench-") as scratch:
        config = write_project(Path(scratch), args.image)
        loaded = load_config(config)
        key = secrets.token_bytes(32)
        snapshot_file = Path(scratch) / "snapshot.json"

        contenders = {
            FLOOR: lambda: subprocess.run(
                ["docker", "run", "--rm", "--network", "none", args.image, "true"], check=True
            ),
            "parity run (in-process runner)": lambda: run_target(loaded, TARGET, key),
            "parity run (CLI)": lambda: subprocess.run(
                [parity, "run", "--target", TARGET, "-c", str(config), "--out", str(snapshot_file)],
                check=True,
                capture_output=True,
            ),
            "adapter: build_plan (warm)": lambda: build_plan(loaded, TARGET),
            "adapter: import + first build_plan, fresh": lambda: subprocess.run(
                [sys.executable, "-c", COLD_PLAN, str(config)], check=True
            ),
            "python -c pass (interpreter start)": lambda: subprocess.run(
                [sys.executable, "-c", "pass"], check=True
            ),
        }
        times = interleaved(contenders, args.runs)
    floor = print_against_floor(
        times, FLOOR, f"image {args.image}, pod with one sidecar, {args.runs} interleaved runs each, medians:"
    )
    ratio = statistics.median(times["parity run (CLI)"]) / floor
    print(
        f"parity run (CLI) / bare docker run = {ratio:.2f} "
        f"(target <= 2.50: {'met' if ratio <= 2.5 else 'missed'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
