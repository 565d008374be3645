"""AWS for the `engine: aws` tests: moto in server mode on 127.0.0.1, a recorder of what reaches the API,
and a stand-in for the part of SageMaker that moto does not play.

moto creates every job already Completed and runs nothing, so nothing would ever write the job's logs.
`PlatformStandIn` does what the platform does with a job, as far as the probe is concerned: it watches
moto for new jobs, downloads each input the job's arguments refer to from moto's S3, runs the job's
arguments as a local process (the input's container path mapped onto the download directory) and writes
that process's stdout, line by line, into moto's CloudWatch Logs under `<job>/algo-1-<epoch>` in the
job's log group — after a delay, as CloudWatch's ingestion lags behind a real job.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.loaders import create_loader

from conformance.snapshot import FRAME_END

REGION = "us-east-1"
LOG_GROUPS = {"training": "/aws/sagemaker/TrainingJobs", "processing": "/aws/sagemaker/ProcessingJobs"}
LOG_BATCH_LINES = 1000
# One loader for every session the tests make: each would otherwise parse the service models again.
_SHARED_LOADER = create_loader()


@dataclass(frozen=True)
class MotoAws:
    url: str

    def session(self) -> boto3.Session:
        core = botocore.session.get_session()
        core.register_component("data_loader", _SHARED_LOADER)
        return boto3.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=REGION,
            botocore_session=core,
        )

    def client(self, service: str):
        return self.session().client(service, endpoint_url=self.url)

    def keys(self, bucket: str) -> list[str]:
        listed = self.client("s3").list_objects_v2(Bucket=bucket)
        return [item["Key"] for item in listed.get("Contents", [])]


@dataclass
class ApiRecorder:
    """Sessions whose clients record every call (operation name, JSON body as sent) and can be told to
    answer some calls themselves, as the real service would in states moto never reaches.

    `job_status` makes every Describe*Job report that status (and `failure_reason`); `refuse` maps an
    operation to the (code, message) error it answers with. StopTrainingJob is always answered here, as
    the service would (an InProgress job goes Stopping): moto does not implement it.
    """

    aws: MotoAws
    job_status: str | None = None
    failure_reason: str | None = None
    refuse: dict[str, tuple[str, str]] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> boto3.Session:
        session = self.aws.session()
        session.events.register("before-call.*.*", self._before_call)
        session.events.register("after-call.sagemaker.*", self._after_call)
        return session

    def bodies(self, operation: str) -> list[Any]:
        with self._lock:
            return [body for name, body in self.calls if name == operation]

    def _before_call(self, model, params, **_):
        body = params.get("body")
        is_json = model.service_model.protocol == "json"
        decoded = json.loads(body) if is_json and body else None
        with self._lock:
            self.calls.append((model.name, decoded))
        if model.name in self.refuse:
            code, message = self.refuse[model.name]
            return AWSResponse(params["url"], 400, {}, None), {"Error": {"Code": code, "Message": message}}
        if model.name == "StopTrainingJob":
            if self.job_status == "InProgress":
                self.job_status = "Stopping"
            return AWSResponse(params["url"], 200, {}, None), {}
        return None

    def _after_call(self, model, parsed, **_):
        if model.name.startswith("Describe") and self.job_status is not None:
            parsed[model.name.removeprefix("Describe") + "Status"] = self.job_status
            if self.failure_reason:
                parsed["FailureReason"] = self.failure_reason


class PlatformStandIn:
    """Runs the probe of every job created while it is active and logs its output (module docstring).

    `mode`: "complete" logs everything; "no-end" logs the output cut before the END frame (a probe killed
    while printing); "silent" logs nothing.
    """

    def __init__(self, aws: MotoAws, mode: str = "complete", log_delay: float = 0.3):
        self.aws = aws
        self.mode = mode
        self.log_delay = log_delay
        self.handled: list[str] = []
        self.problems: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sagemaker-stand-in", daemon=True)
        self._sagemaker = aws.client("sagemaker")
        self._s3 = aws.client("s3")
        self._logs = aws.client("logs")

    def __enter__(self) -> PlatformStandIn:
        self._seen = set(self._jobs())
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self.problems:
            raise self.problems[0]

    def _jobs(self) -> dict[str, str]:
        jobs = {
            job["TrainingJobName"]: "training"
            for job in self._sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
        }
        jobs.update(
            (job["ProcessingJobName"], "processing")
            for job in self._sagemaker.list_processing_jobs(MaxResults=100)["ProcessingJobSummaries"]
        )
        return jobs

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            try:
                for name, kind in self._jobs().items():
                    if name not in self._seen:
                        self._seen.add(name)
                        self._run(name, kind)
            except BaseException as exc:  # reported by __exit__
                self.problems.append(exc)
                return

    def _run(self, name: str, kind: str) -> None:
        if kind == "training":
            job = self._sagemaker.describe_training_job(TrainingJobName=name)
            arguments = job["AlgorithmSpecification"]["ContainerArguments"]
            inputs = {
                f"/opt/ml/input/data/{channel['ChannelName']}": channel["DataSource"]["S3DataSource"]["S3Uri"]
                for channel in job.get("InputDataConfig", [])
            }
            environment = {"TRAINING_JOB_NAME": name}
        else:
            job = self._sagemaker.describe_processing_job(ProcessingJobName=name)
            arguments = job["AppSpecification"]["ContainerArguments"]
            inputs = {
                item["S3Input"]["LocalPath"]: item["S3Input"]["S3Uri"] for item in job["ProcessingInputs"]
            }
            environment = {}
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="parity-stand-in-") as scratch:
            for index, (container_path, uri) in enumerate(inputs.items()):
                if not any(argument.startswith(container_path) for argument in arguments):
                    continue
                local = Path(scratch) / str(index)
                self._download(uri, local)
                arguments = [argument.replace(container_path, str(local), 1) for argument in arguments]
            done = subprocess.run(
                arguments,
                capture_output=True,
                timeout=60,
                env={"PATH": os.environ["PATH"], **environment},
                cwd=scratch,
            )
        lines = [line for line in done.stdout.decode("utf-8", "replace").splitlines() if line]
        if self.mode == "no-end":
            lines = lines[: lines.index(FRAME_END)] if FRAME_END in lines else lines
        elif self.mode == "silent":
            lines = []
        self._stop.wait(max(0.0, self.log_delay - (time.monotonic() - started)))
        if lines:
            self._log(LOG_GROUPS[kind], f"{name}/algo-1-{int(time.time())}", lines)
        self.handled.append(name)

    def _download(self, uri: str, directory: Path) -> None:
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        for item in self._s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            target = directory / item["Key"][len(prefix) :].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self._s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())

    def _log(self, group: str, stream: str, lines: list[str]) -> None:
        try:
            self._logs.create_log_group(logGroupName=group)
        except self._logs.exceptions.ResourceAlreadyExistsException:
            pass
        self._logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        for start in range(0, len(lines), LOG_BATCH_LINES):
            batch = lines[start : start + LOG_BATCH_LINES]
            self._logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": now, "message": line} for line in batch],
            )
