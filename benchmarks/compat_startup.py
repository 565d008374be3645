"""What the compat entrypoint adds to a container's start, per context: medians of whole `docker run`s.

    uv run python benchmarks/compat_startup.py [--runs 9] [--tag parity-compat:latest]

Each run creates, starts, waits for and removes one container of the reference compat image whose command
is `true`, and the wall time of all of it is taken:
  floor                `true` with the entrypoint bypassed (--entrypoint true)
  kubernetes           through the entrypoint as the pod's uid (it only execs)
  kubernetes as root   through the entrypoint as root (it drops to the workload user with setpriv)
  sagemaker            the whole bootstrap of examples/compat-image/seed.yaml against moto on 127.0.0.1:
                       secrets, 100 extra variables (S3 + SSM), hyperparameters, Spark defaults, relay-free
                       metrics, then setpriv
The figures are the price of the compat layer at start-up; a training job pays it once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid

from moto.server import ThreadedMotoServer

from conformance.compat_image import (
    BOOTSTRAP_ENV,
    DEFAULT_TAG,
    build_compat_image,
    container_credentials_server,
    load_seed,
    seed_aws,
)
from conformance.dockerhost import connect


def timed_run(client, image: str, labels: dict[str, str], **options) -> float:
    started = time.perf_counter()
    container = client.containers.create(image, labels=labels, **options)
    try:
        container.start()
        status = container.wait(timeout=120)["StatusCode"]
    finally:
        container.remove(force=True)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"a benchmark container exited with {status}: {options}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs per context (median reported)")
    parser.add_argument("--tag", default=DEFAULT_TAG, help="image to build (or reuse) and run")
    args = parser.parse_args()

    client = connect()
    image = build_compat_image(args.tag, client=client, on_output=lambda line: print(line, file=sys.stderr))
    labels = {"org.parity.bench": "compat_startup", "org.parity.bench-run": uuid.uuid4().hex[:12]}
    kubernetes_env = {"KUBERNETES_SERVICE_HOST": "10.100.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    seed = load_seed()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        seed_aws(seed, endpoint)
        with container_credentials_server() as credentials_url:
            sagemaker_env = {
                "TRAINING_JOB_NAME": "parity-bench",
                "AWS_REGION": seed.region,
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials_url,
                BOOTSTRAP_ENV: f"s3://{seed.bucket}/compat/bootstrap.json",
            }
            contexts = {
                "floor": {"entrypoint": ["true"], "network_mode": "none"},
                "kubernetes": {
                    "command": ["true"],
                    "user": "1000:1000",
                    "environment": kubernetes_env,
                    "network_mode": "none",
                },
                "kubernetes as root": {
                    "command": ["true"],
                    "environment": kubernetes_env,
                    "network_mode": "none",
                },
                "sagemaker": {"command": ["true"], "environment": sagemaker_env, "network_mode": "host"},
            }
            medians = {}
            for name, options in contexts.items():
                timed_run(client, image, labels, **options)  # warm-up: page cache, image layers
                medians[name] = statistics.median(
                    timed_run(client, image, labels, **options) for _ in range(args.runs)
                )
    finally:
        moto.stop()

    floor = medians["floor"]
    print(f"compat entrypoint start-up, median of {args.runs} docker runs of {image}")
    print(f"{'context':<20} {'wall (ms)':>10} {'over floor (ms)':>16} {'ratio':>7}")
    for name, median in medians.items():
        print(f"{name:<20} {median * 1000:>10.0f} {(median - floor) * 1000:>16.0f} {median / floor:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
