"""What the probe costs over bare Python, inside a container: wall time and peak RSS, as medians.

    uv run python benchmarks/probe_overhead.py [--runs 15] [--image parity-base:bookworm] [--containers 5]

One container (network none) runs a small timer script that alternates `python3 -c pass` and the probe with
the default scope (the `probe:` defaults of parity.yaml, as the Docker engine passes them) and takes each
child's wall time and peak RSS from os.wait4, so container start-up noise stays out of the comparison.
Then, for context, whole `docker run`s of both (create, start, wait, logs, remove) are timed the same way.
Target: the probe adds at most 100 ms and 30 MB over bare Python.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from conformance.baseimage import BASE_IMAGE, ensure_base_image
from conformance.config import ProbeScope
from conformance.dockerhost import connect
from conformance.snapshot import PROBE_PATH, extract_snapshot

TIMER = Path(__file__).with_name("in_container_timer.py")
TARGET_WALL_MS = 100.0
TARGET_RSS_MB = 30.0
PROBE_COMMAND = ["python3", "/.parity/parity_probe.py", "--config", "/.parity/config.json"]
BARE_COMMAND = ["python3", "-c", "pass"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each command in one container")
    parser.add_argument("--containers", type=int, default=5, help="whole docker runs of each (0 to skip)")
    parser.add_argument("--image", default=BASE_IMAGE)
    args = parser.parse_args()

    if args.image == BASE_IMAGE:
        ensure_base_image(log=lambda message: print(message, file=sys.stderr))
    client = connect()
    labels = {"org.parity.bench": "probe_overhead", "org.parity.bench-run": uuid.uuid4().hex[:12]}
    with tempfile.TemporaryDirectory(prefix="parity-bench-") as scratch:
        probe_dir = Path(scratch)
        probe_dir.chmod(0o755)
        shutil.copyfile(PROBE_PATH, probe_dir / "parity_probe.py")
        shutil.copyfile(TIMER, probe_dir / "timer.py")
        config = {
            **ProbeScope().model_dump(),
            "hash_key": secrets.token_hex(32),
            "label": "bench",
            "exclude_paths": ["/.parity"],
        }
        (probe_dir / "config.json").write_text(json.dumps(config))
        for child in probe_dir.iterdir():
            child.chmod(0o644)
        volumes = {str(probe_dir): {"bind": "/.parity", "mode": "ro"}}

        def docker_run(command: list[str]) -> bytes:
            container = client.containers.run(
                args.image, command, network_mode="none", labels=labels, volumes=volumes, detach=True
            )
            try:
                status = container.wait(timeout=300)["StatusCode"]
                output = container.logs(stdout=True, stderr=False)
                if status != 0:
                    raise SystemExit(f"{command} exited with {status}: {container.logs().decode()[-2000:]}")
                return output
            finally:
                container.remove(force=True)

        measured = json.loads(
            docker_run(
                [
                    "python3",
                    "/.parity/timer.py",
                    str(args.runs),
                    json.dumps(BARE_COMMAND),
                    json.dumps(PROBE_COMMAND),
                ]
            )
        )
        snapshot = extract_snapshot(docker_run(PROBE_COMMAND), "benchmark probe run")

        end_to_end = {"bare": [], "probe": []}
        for _ in range(args.containers):
            for name, command in (("bare", BARE_COMMAND), ("probe", PROBE_COMMAND)):
                started = time.perf_counter()
                docker_run(command)
                end_to_end[name].append((time.perf_counter() - started) * 1000)

    report(args, measured, snapshot, end_to_end)
    return 0


def report(args, measured: dict, snapshot: dict, end_to_end: dict) -> None:
    bare = {metric: statistics.median(values) for metric, values in measured["bare"].items()}
    probe = {metric: statistics.median(values) for metric, values in measured["probe"].items()}
    wall_added = probe["wall_ms"] - bare["wall_ms"]
    rss_added_mb = (probe["maxrss_kb"] - bare["maxrss_kb"]) / 1024
    print(f"probe overhead in {args.image} (network none), median of {args.runs} runs each")
    print(f"{'':24}{'wall ms':>10}{'CPU ms':>10}{'peak RSS MB':>14}")
    for label, row in (("python3 -c pass", bare), ("probe (default scope)", probe)):
        print(f"{label:24}{row['wall_ms']:>10.1f}{row['cpu_ms']:>10.1f}{row['maxrss_kb'] / 1024:>14.1f}")
    print(
        f"{'difference':24}{wall_added:>+10.1f}{probe['cpu_ms'] - bare['cpu_ms']:>+10.1f}"
        f"{rss_added_mb:>+14.1f}"
        f"   (target: <= +{TARGET_WALL_MS:.0f} ms wall, <= +{TARGET_RSS_MB:.0f} MB)"
    )
    print(
        f"{'ratio':24}{probe['wall_ms'] / bare['wall_ms']:>10.2f}"
        f"{probe['cpu_ms'] / max(bare['cpu_ms'], 0.1):>10.2f}"
        f"{probe['maxrss_kb'] / bare['maxrss_kb']:>14.2f}"
    )
    size = len(json.dumps(snapshot))
    print(
        f"snapshot: {size / 1024:.0f} KiB, {len(snapshot['filesystem']['paths'])} paths, "
        f"{len(snapshot['env']['vars'])} env vars, "
        f"probe-reported duration {snapshot['probe']['duration_ms']} ms"
    )
    slowest = sorted(snapshot["probe"]["timings_ms"].items(), key=lambda item: -item[1])[:3]
    print("slowest collectors: " + ", ".join(f"{name} {ms} ms" for name, ms in slowest))
    if end_to_end["bare"]:
        bare_run = statistics.median(end_to_end["bare"])
        probe_run = statistics.median(end_to_end["probe"])
        print(
            f"whole docker run, median of {args.containers}: "
            f"bare {bare_run:.0f} ms, probe {probe_run:.0f} ms "
            f"({probe_run - bare_run:+.0f} ms)"
        )
    met = wall_added <= TARGET_WALL_MS and rss_added_mb <= TARGET_RSS_MB
    print(
        "target met"
        if met
        else "TARGET MISSED (on a busy machine wall time grows with the load: compare CPU ms)"
    )


if __name__ == "__main__":
    sys.exit(main())
