"""`engine: aws`: the probe submitted as a real SageMaker job through boto3, against moto in server mode on
127.0.0.1 and a stand-in for the part of the platform moto does not play (tests/aws_support.py).

What is asserted is what reaches the API (recorded by a botocore `before-call` hook, as sent), what comes
back (the snapshot, from the job's CloudWatch log stream), and what is left in S3 afterwards (nothing).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conformance import runner
from conformance.cli import cli
from conformance.config import load_config
from conformance.engines.reaper import LIVE_RUNS
from conformance.engines.sagemaker import APIS, SageMakerEngine, service_field, submitted_job_name
from conformance.errors import BadInput, InfrastructureError
from conformance.platforms.sagemaker.limits import compiled_pattern
from conformance.runner import ProbeRequest
from conformance.snapshot import load_snapshot
from tests.aws_support import REGION, ApiRecorder, MotoAws, PlatformStandIn

PARITY = Path(sys.executable).parent / "parity"
IMAGE = "111122223333.dkr.ecr.us-east-1.amazonaws.com/train:candidate"
ROLE = "arn:aws:iam::111122223333:role/SageMakerRole"
TRAINING_PROBE_DIR = "/opt/ml/input/data/parity_probe"
PROCESSING_PROBE_DIR = "/opt/ml/processing/parity_probe"
TRAINING = {
    "TrainingJobName": "Demo-Job-2024",
    "RoleArn": ROLE,
    "AlgorithmSpecification": {"TrainingImage": "ignored:1", "TrainingInputMode": "File"},
    "HyperParameters": {"lr": "0.1", "epochs": "5"},
    "InputDataConfig": [
        {
            "ChannelName": "train",
            "DataSource": {
                # Never read by parity under engine aws: the real platform reads its channels itself.
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://no-such-data-bucket/train"}
            },
        }
    ],
    "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
    "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    "Environment": {"MY_VAR": "hello"},
    "Tags": [{"Key": "team", "Value": "ml"}],
}
PROCESSING = {
    "ProcessingJobName": "Prep-Job",
    "RoleArn": ROLE,
    "AppSpecification": {
        "ImageUri": "ignored:1",
        "ContainerEntrypoint": ["python3", "/opt/ml/processing/code/run.py"],
    },
    "ProcessingInputs": [
        {
            "InputName": "code",
            "S3Input": {
                "S3Uri": "s3://no-such-data-bucket/code",
                "LocalPath": "/opt/ml/processing/code",
                "S3DataType": "S3Prefix",
                "S3InputMode": "Pipe",
            },
        }
    ],
    "ProcessingResources": {
        "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
    },
}


@pytest.fixture(scope="module")
def aws():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield MotoAws(f"http://{host}:{port}")
    server.stop()


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch):
    """Fake credentials, and no way for boto3 to look further (no profile files, no instance metadata)."""
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
        ("AWS_CONFIG_FILE", "/nonexistent/config"),
    ):
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def bucket(aws) -> str:
    name = f"parity-staging-{uuid.uuid4().hex[:12]}"
    aws.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def recorder(aws) -> ApiRecorder:
    return ApiRecorder(aws)


def write_project(directory: Path, aws: MotoAws, bucket: str, **engine_options) -> Path:
    (directory / "job.yaml").write_text(yaml.safe_dump(TRAINING))
    (directory / "processing.yaml").write_text(yaml.safe_dump(PROCESSING))
    options = {
        "staging": f"s3://{bucket}/runs",
        "endpoint_url": aws.url,
        "poll_seconds": 0.05,
        "log_wait_seconds": 5,
        **engine_options,
    }
    target = {"platform": "sagemaker", "engine": "aws", "image": IMAGE, "engine_options": options}
    config = {
        "probe": {"send_test_metric": False},
        "targets": {
            "sm": {**target, "spec": "job.yaml", "timeout_seconds": 30},
            "prep": {**target, "spec": "processing.yaml", "timeout_seconds": 30},
        },
    }
    (directory / "parity.yaml").write_text(yaml.safe_dump(config))
    return directory / "parity.yaml"


@pytest.fixture
def project(tmp_path, aws, bucket):
    return load_config(write_project(tmp_path, aws, bucket))


def engine_for(loaded, target: str, recorder: ApiRecorder) -> SageMakerEngine:
    return dataclasses.replace(SageMakerEngine.for_target(loaded, target), session_factory=recorder)


def run_engine(loaded, target: str, recorder: ApiRecorder, timeout: float = 30, **probe_fields):
    plan = runner.build_plan(loaded, target)
    probe = ProbeRequest(scope=loaded.config.probe.model_dump(), label=target, **probe_fields)
    return plan, probe, engine_for(loaded, target, recorder).run(plan, probe, timeout)


def parity_tags(tags: list[dict]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags if tag["Key"].startswith("org.parity.")}


# -- the request that reaches SageMaker, and the snapshot that comes back ---------------------------


def test_a_training_job_runs_the_probe_and_its_snapshot_comes_back_from_the_logs(
    project, aws, bucket, recorder
):
    with PlatformStandIn(aws, log_delay=0.5) as platform:
        plan, probe, outcome = run_engine(project, "sm", recorder, labels={"org.parity.test-run": "abc"})

    [sent] = recorder.bodies("CreateTrainingJob")
    job = sent["TrainingJobName"]
    assert re.fullmatch(r"Demo-Job-2024-parity-[0-9a-f]{10}", job)
    assert platform.handled == [job]
    # The snapshot is what the probe printed in the job, found in the job's log stream and validated.
    assert outcome.snapshot["probe"]["label"] == "sm"
    assert outcome.snapshot["env"]["vars"]["TRAINING_JOB_NAME"] == job
    assert {TRAINING_PROBE_DIR, f"{TRAINING_PROBE_DIR}-manifest"} <= set(
        outcome.snapshot["excluded"]["paths"]
    )
    assert outcome.metadata["job"] == job
    assert outcome.metadata["arn"].endswith(f":training-job/{job}")
    assert outcome.metadata["log_stream"].startswith(f"/aws/sagemaker/TrainingJobs/{job}/algo-1-")
    # The logs arrived after the job had ended (ingestion lag): they were looked for more than once.
    assert len(recorder.bodies("DescribeLogStreams")) >= 2

    # The probe's input channel and invocation were added; nothing else of the user's request changed.
    uri = f"s3://{bucket}/runs/{job}/"
    assert sent["InputDataConfig"][-1] == {
        "ChannelName": "parity_probe",
        "InputMode": "File",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }
    assert sent["AlgorithmSpecification"]["ContainerArguments"] == [
        "python3",
        f"{TRAINING_PROBE_DIR}/parity_probe.py",
        "--config",
        f"{TRAINING_PROBE_DIR}/config.json",
    ]
    tags = parity_tags(sent["Tags"])
    assert tags.pop("org.parity.target") == "sm" and tags.pop("org.parity.test-run") == "abc"
    assert re.fullmatch(r"[0-9a-f]{32}", tags.pop("org.parity.run")) and tags == {}
    users = copy.deepcopy(sent)
    users["TrainingJobName"] = TRAINING["TrainingJobName"]
    users["InputDataConfig"].pop()
    del users["AlgorithmSpecification"]["ContainerArguments"]
    users["Tags"] = [tag for tag in sent["Tags"] if not tag["Key"].startswith("org.parity.")]
    expected = copy.deepcopy(TRAINING)
    expected["AlgorithmSpecification"]["TrainingImage"] = IMAGE  # the target's image runs, as emulated
    assert users == expected == plan.spec

    # The run's hash key travels in the staged config only, never in the request; the staging is gone.
    assert probe.hash_key.hex() not in json.dumps(sent)
    assert aws.keys(bucket) == []


def test_a_processing_job_keeps_its_entrypoint_and_gets_the_probe_as_its_arguments(
    project, aws, bucket, recorder
):
    with PlatformStandIn(aws):
        plan, _, outcome = run_engine(project, "prep", recorder)

    [sent] = recorder.bodies("CreateProcessingJob")
    job = sent["ProcessingJobName"]
    assert sent["AppSpecification"] == {
        "ImageUri": IMAGE,
        "ContainerEntrypoint": PROCESSING["AppSpecification"]["ContainerEntrypoint"],
        "ContainerArguments": [
            "python3",
            f"{PROCESSING_PROBE_DIR}/parity_probe.py",
            "--config",
            f"{PROCESSING_PROBE_DIR}/config.json",
        ],
    }
    assert sent["ProcessingInputs"] == [
        *PROCESSING["ProcessingInputs"],  # a Pipe-mode input: not emulated, but the real platform takes it
        {
            "InputName": "parity_probe",
            "AppManaged": False,
            "S3Input": {
                "S3Uri": f"s3://{bucket}/runs/{job}/",
                "LocalPath": PROCESSING_PROBE_DIR,
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated",
            },
        },
    ]
    rest = {key: value for key, value in sent.items() if key not in ("ProcessingJobName", "AppSpecification")}
    rest["ProcessingInputs"] = rest["ProcessingInputs"][:-1]
    rest["Tags"] = [tag for tag in rest["Tags"] if not tag["Key"].startswith("org.parity.")]
    assert rest == {
        key: value for key, value in plan.spec.items() if key not in ("ProcessingJobName", "AppSpecification")
    } | {"Tags": []}
    assert outcome.metadata["log_stream"].startswith(f"/aws/sagemaker/ProcessingJobs/{job}/algo-1-")
    assert PROCESSING_PROBE_DIR in outcome.snapshot["excluded"]["paths"]
    assert aws.keys(bucket) == []


def test_parity_run_with_an_aws_target_writes_the_jobs_snapshot(tmp_path, aws, bucket):
    config = write_project(tmp_path, aws, bucket)
    with PlatformStandIn(aws) as platform:
        result = CliRunner().invoke(
            cli, ["run", "--target", "sm", "-c", str(config), "--out", str(tmp_path / "s.json")]
        )
    assert result.exit_code == 0, result.output
    snapshot = load_snapshot(tmp_path / "s.json")
    assert snapshot["harness"]["engine"] == "aws" and snapshot["harness"]["image"] == IMAGE
    assert snapshot["harness"]["metadata"]["job"] == platform.handled[0]
    assert snapshot["harness"]["metadata"]["api"] == "training"
    assert aws.keys(bucket) == []


# -- failures: exit 3 with what to do, and nothing left behind --------------------------------------


def test_a_failed_job_reports_sagemakers_failure_reason_and_its_last_log_lines(
    project, aws, bucket, recorder
):
    recorder.job_status = "InProgress"
    with PlatformStandIn(aws, log_delay=0) as platform, ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(run_engine, project, "sm", recorder)
        deadline = time.monotonic() + 30
        while not platform.handled:  # the job "runs" until its logs are written, then fails
            assert time.monotonic() < deadline and not running.done()
            time.sleep(0.02)
        recorder.failure_reason = "AlgorithmError: the workload exited with code 1"
        recorder.job_status = "Failed"
        with pytest.raises(InfrastructureError) as raised:
            running.result(timeout=30)
    job = platform.handled[0]
    assert (
        f"job {job} (target sm) ended Failed: AlgorithmError: the workload exited with code 1"
        in raised.value.problem
    )
    assert "===== PARITY SNAPSHOT END v1 =====" in raised.value.details
    assert aws.keys(bucket) == []


@pytest.mark.parametrize(
    ("mode", "seen"),
    [("no-end", "has the snapshot's BEGIN frame but no END frame"), ("silent", "no log stream")],
)
def test_a_job_whose_logs_never_show_the_end_frame_fails_naming_the_job_and_what_to_check(
    tmp_path, aws, bucket, recorder, mode, seen
):
    loaded = load_config(write_project(tmp_path, aws, bucket, log_wait_seconds=1))
    with (
        PlatformStandIn(aws, mode=mode, log_delay=0) as platform,
        pytest.raises(InfrastructureError) as raised,
    ):
        run_engine(loaded, "sm", recorder)
    job = platform.handled[0]
    assert f"job {job} (target sm) completed, but" in raised.value.problem and seen in raised.value.problem
    for what_to_check in (
        "exec-ing its arguments",
        "logs:GetLogEvents",
        "targets.sm.engine_options.log_wait_seconds",
    ):
        assert what_to_check in raised.value.remedy
    assert aws.keys(bucket) == []


def test_a_job_past_the_timeout_is_stopped(project, aws, bucket, recorder):
    recorder.job_status = "InProgress"
    with pytest.raises(InfrastructureError) as raised:
        run_engine(project, "sm", recorder, timeout=0.3)
    [created] = recorder.bodies("CreateTrainingJob")
    assert recorder.bodies("StopTrainingJob") == [{"TrainingJobName": created["TrainingJobName"]}]
    assert (
        "did not finish within 0.3s" in raised.value.problem and "parity stopped it" in raised.value.problem
    )
    assert "targets.sm.timeout_seconds" in raised.value.remedy
    assert aws.keys(bucket) == []


def test_an_interrupt_stops_the_job_and_deletes_the_staged_probe_while_the_run_waits(
    project, aws, bucket, recorder
):
    """What the reaper does on Ctrl-C/SIGTERM for a run on a worker thread (`parity check`)."""
    recorder.job_status = "InProgress"
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(run_engine, project, "sm", recorder, 300)
        deadline = time.monotonic() + 30
        while not recorder.bodies("DescribeTrainingJob"):
            assert time.monotonic() < deadline and not running.done()
            time.sleep(0.02)
        assert len(aws.keys(bucket)) == 2  # the probe and its config, staged
        LIVE_RUNS.reap()
        with pytest.raises(InfrastructureError, match="was cancelled"):
            running.result(timeout=30)
    [created] = recorder.bodies("CreateTrainingJob")
    assert recorder.bodies("StopTrainingJob") == [{"TrainingJobName": created["TrainingJobName"]}]
    assert aws.keys(bucket) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_parity_run_removes_the_staged_probe(tmp_path, aws, bucket, signum):
    config = write_project(tmp_path, aws, bucket, log_wait_seconds=300)
    with PlatformStandIn(aws, mode="silent") as platform:
        process = subprocess.Popen(
            [str(PARITY), "run", "--target", "sm", "-c", str(config)],
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not platform.handled:  # the job ran; parity now waits for logs that never come
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the job was never submitted"
                time.sleep(0.05)
            assert len(aws.keys(bucket)) == 2
            process.send_signal(signum)
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == (130 if signum == signal.SIGINT else 128 + signum), stderr
    assert "Traceback" not in stderr
    assert aws.keys(bucket) == []


# -- AWS errors: what to do (exit 3), or the field SageMaker named (exit 2) -------------------------


def test_a_validation_error_sagemaker_raises_names_its_field_and_never_repeats_the_value(
    project, aws, bucket, recorder
):
    recorder.refuse["CreateTrainingJob"] = (
        "ValidationException",
        "1 validation error detected: Value 'sk-live-SECRET' at 'hyperParameters' failed to satisfy "
        "constraint: Map value must satisfy constraint",
    )
    with pytest.raises(BadInput) as raised:
        run_engine(project, "sm", recorder)
    assert raised.value.source.endswith("job.yaml") and raised.value.field == "HyperParameters"
    assert "SECRET" not in str(raised.value) and "failed to satisfy constraint" in raised.value.problem
    assert aws.keys(bucket) == []


def test_an_image_sagemaker_rejects_is_reported_at_the_targets_image(project, recorder):
    recorder.refuse["CreateTrainingJob"] = (
        "ValidationException",
        "1 validation error detected: Value 'x' at 'algorithmSpecification.trainingImage' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern",
    )
    with pytest.raises(BadInput) as raised:
        run_engine(project, "sm", recorder)
    assert raised.value.source.endswith("parity.yaml") and raised.value.field == "targets.sm.image"


@pytest.mark.parametrize(
    ("operation", "code", "says", "remedy"),
    [
        (
            "CreateTrainingJob",
            "AccessDeniedException",
            "denied permission",
            f"sagemaker:CreateTrainingJob and iam:PassRole on {ROLE}",
        ),
        ("PutObject", "AccessDenied", "denied permission", "s3:PutObject on s3://"),
        ("DescribeTrainingJob", "ThrottlingException", "throttled", "engine_options.poll_seconds"),
        ("CreateTrainingJob", "ResourceLimitExceeded", "quota", "quota increase"),
        ("CreateTrainingJob", "ExpiredTokenException", "did not accept the credentials", "refresh"),
        ("PutObject", "NoSuchBucket", "staging bucket does not exist", "engine_options.staging"),
    ],
)
def test_aws_refusals_are_infrastructure_errors_saying_what_to_do(
    project, aws, bucket, recorder, operation, code, says, remedy
):
    recorder.refuse[operation] = (code, "refused by the test")
    with pytest.raises(InfrastructureError) as raised:
        run_engine(project, "sm", recorder)
    assert says in raised.value.problem and code in raised.value.problem
    assert remedy in raised.value.remedy
    assert aws.keys(bucket) == []


def test_without_credentials_parity_run_exits_3_saying_how_to_give_them(tmp_path, aws, bucket, monkeypatch):
    config = write_project(tmp_path, aws, bucket)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = CliRunner().invoke(cli, ["run", "--target", "sm", "-c", str(config)])
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith("parity: no AWS credentials to stage the probe")
    assert "AWS_PROFILE" in result.stderr and "Traceback" not in result.stderr


# -- bad input: exit 2 before anything is created ---------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"staging": None}, "staging"),
        ({"staging": "bucket/prefix"}, "staging"),
        ({"pol_seconds": 1}, "pol_seconds"),
        ({"poll_seconds": 0}, "poll_seconds"),
        ({"log_wait_seconds": -1}, "log_wait_seconds"),
        ({"region": "mars"}, "region"),
        ({"endpoint_url": "127.0.0.1:5000"}, "endpoint_url"),
    ],
)
def test_bad_engine_options_exit_2_naming_the_option(tmp_path, aws, options, field):
    config = write_project(tmp_path, aws, "bucket", **options)
    data = yaml.safe_load(config.read_text())
    for name, value in options.items():
        if value is None:
            del data["targets"]["sm"]["engine_options"][name]
    config.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(cli, ["run", "--target", "sm", "-c", str(config)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"parity: {config}: targets.sm.engine_options.{field}: ")
    assert result.stderr.count("\n") == 1


def test_engine_aws_refuses_a_kubernetes_target(tmp_path):
    (tmp_path / "parity.yaml").write_text(
        yaml.safe_dump(
            {
                "targets": {
                    "k8s": {"platform": "kubernetes", "engine": "aws", "image": "i", "spec": "pod.yaml"}
                }
            }
        )
    )
    with pytest.raises(BadInput) as raised:
        SageMakerEngine.for_target(load_config(tmp_path / "parity.yaml"), "k8s")
    assert raised.value.field == "targets.k8s.engine"


def _refused_before_anything_is_created(
    tmp_path, aws, bucket, recorder, target: str, request: dict
) -> BadInput:
    loaded = load_config(write_project(tmp_path, aws, bucket))
    (tmp_path / ("job.yaml" if target == "sm" else "processing.yaml")).write_text(yaml.safe_dump(request))
    with pytest.raises(BadInput) as raised:
        run_engine(loaded, target, recorder)
    assert recorder.calls == [] and aws.keys(bucket) == []
    return raised.value


def test_a_training_request_with_20_channels_has_no_room_for_the_probe(tmp_path, aws, bucket, recorder):
    request = copy.deepcopy(TRAINING)
    request["InputDataConfig"] = [
        {**request["InputDataConfig"][0], "ChannelName": f"c{index}"} for index in range(20)
    ]
    refused = _refused_before_anything_is_created(tmp_path, aws, bucket, recorder, "sm", request)
    assert refused.field == "InputDataConfig" and "needs one more for the probe" in refused.problem


def test_a_channel_named_like_the_probes_is_refused(tmp_path, aws, bucket, recorder):
    request = copy.deepcopy(TRAINING)
    request["InputDataConfig"][0]["ChannelName"] = "parity_probe"
    refused = _refused_before_anything_is_created(tmp_path, aws, bucket, recorder, "sm", request)
    assert refused.field == "InputDataConfig[0].ChannelName"


def test_a_processing_path_over_the_probes_is_refused(tmp_path, aws, bucket, recorder):
    request = copy.deepcopy(PROCESSING)
    request["ProcessingOutputConfig"] = {
        "Outputs": [
            {
                "OutputName": "all",
                "S3Output": {
                    "S3Uri": "s3://b/o",
                    "LocalPath": "/opt/ml/processing/parity_probe/out",
                    "S3UploadMode": "EndOfJob",
                },
            }
        ]
    }
    refused = _refused_before_anything_is_created(tmp_path, aws, bucket, recorder, "prep", request)
    assert refused.field == "ProcessingOutputConfig.Outputs[0].S3Output.LocalPath"
    assert "overlaps /opt/ml/processing/parity_probe" in refused.problem


def test_tags_beyond_sagemakers_50_with_paritys_own_are_refused(tmp_path, aws, bucket, recorder):
    request = copy.deepcopy(TRAINING)
    request["Tags"] = [{"Key": f"k{index}", "Value": "v"} for index in range(49)]
    refused = _refused_before_anything_is_created(tmp_path, aws, bucket, recorder, "sm", request)
    assert refused.field == "Tags" and "over SageMaker's 50" in refused.problem


# -- names --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("requested", ["a", "Demo-Job-2024", "x" * 63, "a" * 44 + "-" * 19])
def test_every_run_gets_a_job_name_of_its_own_within_sagemakers_rules(requested):
    api = APIS["training"]
    names = {submitted_job_name(api, requested, uuid.uuid4().hex) for _ in range(2)}
    assert len(names) == 2
    for name in names:
        assert len(name) <= 63 and compiled_pattern("[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}").fullmatch(name)
        assert name.startswith(requested.rstrip("-")[:45].rstrip("-")) and "-parity-" in name


def test_sagemakers_field_paths_are_spelled_as_in_the_request():
    assert service_field("inputDataConfig.1.member.channelName") == "InputDataConfig[0].ChannelName"
    assert service_field("trainingJobName") == "TrainingJobName"


# -- the adapter's side: the request as the platform receives it ------------------------------------


def test_the_plan_carries_the_request_with_the_targets_image_and_the_emulation_is_unchanged(tmp_path, aws):
    config = write_project(tmp_path, aws, "bucket")
    data = yaml.safe_load(config.read_text())
    data["targets"]["sm"].update(
        engine="docker", engine_options={}, options={"channel_data": {"train": "data"}}
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "part-0.csv").write_text("x\n")
    config.write_text(yaml.safe_dump(data))
    plan = runner.build_plan(load_config(config), "sm")
    assert plan.spec == {
        **TRAINING,
        "AlgorithmSpecification": {**TRAINING["AlgorithmSpecification"], "TrainingImage": IMAGE},
    }
    assert plan.main.image == IMAGE and plan.probe_as == "train"
    staged = [entry.path for volume in plan.volumes for entry in volume.entries]
    assert "data/train/part-0.csv" in staged  # the Docker emulation still stages the channel's data


def test_for_engine_aws_the_adapter_reads_no_input_data(project):
    plan = runner.build_plan(project, "sm")  # s3://no-such-data-bucket is never listed
    staged = [entry.path for volume in plan.volumes for entry in volume.entries]
    assert not any(path.startswith("data/train/") for path in staged)
