"""What `parity run` of a SageMaker training target costs next to a bare `docker run`.

    uv run python benchmarks/run_overhead.py [--runs 9] [--image parity-base:bookworm]

Three things are timed, interleaved round by round so a busy machine slows all of them alike:
- the floor: `docker run --rm --network none IMAGE true`;
- the in-process runner: `conformance.runner.run_target` on a training job (the request validated
  against the service model, the /opt/ml tree staged in named volumes, `train` resolved to the probe
  through the image's ENTRYPOINT, the snapshot read back, everything removed);
- the CLI: `parity run --target … --out …`, interpreter start and imports included.
It prints the medians and each one's ratio to the floor. Target: the in-process run ≤ 2× the floor.
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
from conformance.runner import run_target

TARGET = "bench-sagemaker"
REQUEST = {
    "TrainingJobName": "parity-benchmark",
    "RoleArn": "arn:aws:iam::111122223333:role/SageMakerRole",
    "AlgorithmSpecification": {"TrainingImage": "bench:1", "TrainingInputMode": "File"},
    "HyperParameters": {"learning_rate": "0.1", "epochs": "5"},
    "InputDataConfig": [
        {
            "ChannelName": "train",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://bucket/train",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
    ],
    "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
    "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
}


def write_project(directory: Path, image: str) -> Path:
    (directory / "train").mkdir()
    (directory / "train" / "part-0.csv").write_text("x,y\n" * 100)
    (directory / "job.yaml").write_text(yaml.safe_dump(REQUEST, sort_keys=False))
    config = directory / "parity.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "targets": {
                    TARGET: {
                        "platform": "sagemaker",
                        "image": image,
                        "spec": "job.yaml",
                        "options": {"channel_data": {"train": "train"}},
                    }
                }
            }
        )
    )
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--image", default=BASE_IMAGE)
    args = parser.parse_args(argv)
    parity = str(Path(sys.executable).with_name("parity"))
    with tempfile.TemporaryDirectory(prefix="parity-bench-") as scratch:
        config = write_project(Path(scratch), args.image)
        loaded = load_config(config)
        key = secrets.token_bytes(32)
        snapshot_file = Path(scratch) / "snapshot.json"

        def bare() -> None:
            subprocess.run(["docker", "run", "--rm", "--network", "none", args.image, "true"], check=True)

        def in_process() -> None:
            run_target(loaded, TARGET, key)

        def cli() -> None:
            subprocess.run(
                [parity, "run", "--target", TARGET, "-c", str(config), "--out", str(snapshot_file)],
                check=True,
                capture_output=True,
            )

        contenders = {
            "docker run --rm --network none IMAGE true": bare,
            "parity run (in-process runner)": in_process,
            "parity run (CLI)": cli,
        }
        times = interleaved(contenders, args.runs)
    floor = print_against_floor(
        times,
        "docker run --rm --network none IMAGE true",
        f"image {args.image}, {args.runs} interleaved runs each, medians:",
    )
    if sys.flags.dont_write_bytecode:
        print(
            "  note: PYTHONDONTWRITEBYTECODE is set, so every CLI start compiles parity's modules from source"
        )
    ratio = statistics.median(times["parity run (in-process runner)"]) / floor
    print(
        f"in-process runner / bare docker run = {ratio:.2f} "
        f"(target <= 2.00: {'met' if ratio <= 2 else 'missed'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
