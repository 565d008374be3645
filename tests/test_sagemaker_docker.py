"""The SageMaker adapter on the Docker engine: the real probe, run as a training or processing job would
run it, shows the container contract; failures and interrupts behave as the CLI promises."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conformance.config import load_config
from conformance.errors import InfrastructureError
from conformance.runner import run_target
from tests.docker_support import build_image, leftovers, unique_target

PARITY = str(Path(sys.executable).with_name("parity"))
HYPERPARAMETERS = "/opt/ml/input/config/hyperparameters.json"
# A toolkit-style entrypoint: dispatches on `$1 = train`, exports what a compat layer would, and runs
# `train` by name; with FAIL_WITH set it fails the way a crashing job does.
DISPATCHING_ENTRYPOINT = b"""#!/bin/sh
if [ "$1" = "train" ]; then
  if [ -n "$FAIL_WITH" ]; then
    echo "$FAIL_WITH" > /opt/ml/output/failure
    echo "training crashed" >&2
    exit 1
  fi
  export COMPAT_DISPATCHED=train
  exec train
fi
exec "$@"
"""
TRAINING = {
    "TrainingJobName": "Parity-Demo-Job",
    "RoleArn": "arn:aws:iam::111122223333:role/SageMakerRole",
    "AlgorithmSpecification": {
        "TrainingImage": "111122223333.dkr.ecr.us-east-1.amazonaws.com/demo:1",
        "TrainingInputMode": "File",
    },
    "HyperParameters": {"learning_rate": "0.1", "epochs": "5", "use_gpu": "false"},
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
    "Environment": {"TEAM": "ml-platform"},
}
PROCESSING = {
    "ProcessingJobName": "Parity-Prep",
    "RoleArn": "arn:aws:iam::111122223333:role/SageMakerRole",
    "AppSpecification": {"ImageUri": "image:1"},
    "ProcessingResources": {
        "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
    },
    "Environment": {"STAGE": "prep"},
}


@pytest.fixture(scope="session")
def training_image(docker_client, base_image) -> str:
    return build_image(
        docker_client,
        "parity-test-sagemaker:dispatch",
        f"FROM {base_image}\nENV IMAGE_VAR=from-image\nCOPY entrypoint.sh /entrypoint.sh\n"
        'ENTRYPOINT ["/entrypoint.sh"]\n',
        {"entrypoint.sh": DISPATCHING_ENTRYPOINT},
    )


def write_project(
    directory: Path, target: str, image: str, request: dict, options: dict | None = None
) -> Path:
    (directory / "data").mkdir(exist_ok=True)
    (directory / "data" / "part-0.csv").write_text("a,b\n1,2\n")
    (directory / "job.yaml").write_text(yaml.safe_dump(request, sort_keys=False))
    config = directory / "parity.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "probe": {"hyperparameter_paths": [HYPERPARAMETERS], "send_test_metric": False},
                "targets": {
                    target: {
                        "platform": "sagemaker",
                        "image": image,
                        "spec": "job.yaml",
                        "timeout_seconds": 120,
                        "options": {"channel_data": {"train": "data"}, **(options or {})},
                    }
                },
            },
            sort_keys=False,
        )
    )
    return config


@pytest.fixture(scope="module")
def training_run(docker_client, training_image, tmp_path_factory):
    target = unique_target("sm-train")
    config = write_project(tmp_path_factory.mktemp("train"), target, training_image, TRAINING)
    outcome = run_target(load_config(config), target, b"k" * 32)
    return outcome.snapshot, target


def test_train_argument_reaches_the_entrypoint_and_resolves_to_the_probe(training_run):
    snapshot, _ = training_run
    env = snapshot["env"]["vars"]
    assert (
        env["COMPAT_DISPATCHED"] == "train"
    )  # the entrypoint took its `train` branch, then exec'd the probe
    assert snapshot["process"]["argv"] == ["python3"]
    assert snapshot["context"]["platform"] == "sagemaker-training"


def test_hyperparameters_reach_the_container_as_strings(training_run):
    snapshot, _ = training_run
    values = snapshot["hyperparameters"]["sources"][HYPERPARAMETERS]["values"]
    assert values == {"learning_rate": "0.1", "epochs": "5", "use_gpu": "false"}


def test_environment_is_the_platforms_the_requests_and_the_images_only(training_run):
    snapshot, _ = training_run
    env = snapshot["env"]["vars"]
    platform = {
        "TRAINING_JOB_NAME",
        "TRAINING_JOB_ARN",
        "AWS_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_EXECUTION_ENV",
        "ECS_CONTAINER_METADATA_URI",
        "ECS_CONTAINER_METADATA_URI_V4",
        "NVIDIA_VISIBLE_DEVICES",
        "HOSTNAME",
    }
    # PATH: image; HOME: the runtime; IMAGE_VAR: image ENV; PWD and COMPAT_DISPATCHED: the image's sh
    # entrypoint.
    image_and_runtime = {"PATH", "HOME", "IMAGE_VAR", "PWD", "COMPAT_DISPATCHED"}
    assert set(env) == platform | {"TEAM"} | image_and_runtime
    assert env["TRAINING_JOB_ARN"] == "arn:aws:sagemaker:us-east-1:111122223333:training-job/parity-demo-job"
    assert env["TRAINING_JOB_NAME"] == "Parity-Demo-Job"
    assert snapshot["network"]["hostname"] == env["HOSTNAME"]


def test_opt_ml_layout_and_ownership(training_run):
    snapshot, _ = training_run
    paths = snapshot["filesystem"]["paths"]
    for directory in (
        "/opt/ml/input",
        "/opt/ml/input/config",
        "/opt/ml/input/data/train",
        "/opt/ml/model",
        "/opt/ml/output",
        "/opt/ml/output/data",
    ):
        assert (
            paths[directory]["type"],
            paths[directory]["mode"],
            paths[directory]["uid"],
            paths[directory]["gid"],
        ) == ("dir", "0755", 0, 0), directory
    for config_file in (
        "hyperparameters.json",
        "resourceconfig.json",
        "inputdataconfig.json",
        "trainingjobconfig.json",
    ):
        info = paths[f"/opt/ml/input/config/{config_file}"]
        assert (info["type"], info["mode"], info["uid"]) == ("file", "0644", 0)
    mounts = snapshot["filesystem"]["mounts"]
    assert {"/opt/ml/input", "/opt/ml/model", "/opt/ml/output"} <= set(mounts)


def test_training_run_leaves_nothing(training_run, docker_client):
    assert leftovers(docker_client, training_run[1]) == {"containers": [], "volumes": []}


def test_failure_file_becomes_the_reason_of_a_clear_failure(docker_client, training_image, tmp_path):
    target = unique_target("sm-fail")
    request = {**TRAINING, "Environment": {"FAIL_WITH": "CUDA out of memory: tried to allocate 2 GiB"}}
    config = write_project(tmp_path, target, training_image, request)
    with pytest.raises(InfrastructureError) as raised:
        run_target(load_config(config), target, b"k" * 32)
    assert "exited with code 1" in raised.value.problem
    assert "failure reason: CUDA out of memory: tried to allocate 2 GiB" in raised.value.problem
    assert "training crashed" in raised.value.details
    assert leftovers(docker_client, target) == {"containers": [], "volumes": []}


def test_processing_job_contract(docker_client, base_image, tmp_path):
    target = unique_target("sm-proc")
    config = write_project(tmp_path, target, base_image, PROCESSING)
    snapshot = run_target(load_config(config), target, b"k" * 32).snapshot
    env = snapshot["env"]["vars"]
    assert set(env) == {
        "AWS_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "HOSTNAME",
        "STAGE",
        "PATH",
        "HOME",
    }
    paths = snapshot["filesystem"]["paths"]
    assert (paths["/opt/ml/config"]["mode"], paths["/opt/ml/config"]["uid"]) == ("0644", 0)
    assert snapshot["context"]["platform"] == "sagemaker-processing"
    assert leftovers(docker_client, target) == {"containers": [], "volumes": []}


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([PARITY, *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_parity_run_writes_the_snapshot(docker_client, training_image, tmp_path):
    target = unique_target("sm-cli")
    write_project(tmp_path, target, training_image, TRAINING)
    result = run_cli("run", "--target", target, "-c", "parity.yaml", "--out", "snap.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    snapshot = json.loads((tmp_path / "snap.json").read_text())
    assert snapshot["env"]["vars"]["TRAINING_JOB_NAME"] == "Parity-Demo-Job"
    assert snapshot["harness"]["platform"] == "sagemaker"
    assert leftovers(docker_client, target) == {"containers": [], "volumes": []}


def test_parity_run_rejects_an_api_limit_violation_in_one_line(tmp_path):
    request = {**TRAINING, "HyperParameters": {"lr": "1" * 2501}}
    write_project(tmp_path, "sm", "parity-base:bookworm", request)
    result = run_cli("run", "--target", "sm", "-c", "parity.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "job.yaml: HyperParameters.lr: value is 2501 characters; SageMaker allows at most 2500"
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_parity_run_reports_a_failed_job_with_exit_3(docker_client, training_image, tmp_path):
    target = unique_target("sm-cli-fail")
    write_project(tmp_path, target, training_image, {**TRAINING, "Environment": {"FAIL_WITH": "disk full"}})
    result = run_cli("run", "--target", target, "-c", "parity.yaml", cwd=tmp_path)
    assert result.returncode == 3
    first_line = result.stderr.splitlines()[0]
    assert "failure reason: disk full" in first_line and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["run", "check"])
def test_ctrl_c_on_the_cli_removes_everything(docker_client, base_image, tmp_path, command):
    """`parity run` waits on the main thread; `parity check` runs its targets on worker threads."""
    target = unique_target(f"sm-sigint-{command}")
    request = {
        **TRAINING,
        "AlgorithmSpecification": {
            **TRAINING["AlgorithmSpecification"],
            "ContainerEntrypoint": ["python3", "-c", "import time; time.sleep(600)"],
        },
    }
    config = write_project(tmp_path, target, base_image, request)
    arguments = ["run", "--target", target] if command == "run" else ["check"]
    process = subprocess.Popen(
        [PARITY, *arguments, "-c", str(config)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        selector = {"label": f"org.parity.target={target}", "status": "running"}
        while not docker_client.api.containers(filters=selector):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the job's container never started"
            time.sleep(0.1)
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert time.monotonic() - interrupted < 20  # not the 120 s the job would have run
    assert process.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert leftovers(docker_client, target) == {"containers": [], "volumes": []}
