"""The AWS engine (`engine: aws`): run the probe as a real SageMaker job and bring its snapshot back.

There is no exec into a SageMaker job (../shared/reference/peers.md): the probe has to *be* the job's
command, and its snapshot comes back through the job's logs. One run of one target:

1. **Stage.** The probe and its config go to S3 under `<staging>/<job name>/`. The config holds the
   run's hash key, so it never goes into the request: DescribeTrainingJob shows the request to anyone
   with read access on the account.
2. **Submit** the target's request — `LaunchPlan.spec`, the user's request as the SageMaker adapter
   validated it, with the target's image — with the probe injected and nothing else changed: one more
   File-mode input (training: channel `parity_probe` of InputDataConfig, at
   /opt/ml/input/data/parity_probe; processing: input `parity_probe` of ProcessingInputs, at
   /opt/ml/processing/parity_probe) brings the probe in, and the container's arguments become the probe's
   invocation (training: AlgorithmSpecification.ContainerArguments, which replace SageMaker's `train`;
   processing: AppSpecification.ContainerArguments). The ENTRYPOINT — the image's, or the request's
   ContainerEntrypoint — is kept, so the compat layer runs first and execs the probe as it would exec
   user code. The job gets a name of its own (the request's, shortened, + `-parity-<run>`: job names are
   unique per account and region) and the tags `org.parity.run`, `org.parity.target` and the caller's
   `ProbeRequest.labels`.
3. **Wait**, describing the job every `poll_seconds`. Past the target's `timeout_seconds` the job is
   stopped and the run fails (exit 3). A job that ends Failed or Stopped fails the run with SageMaker's
   FailureReason and the last log lines.
4. **Read** the framed snapshot from CloudWatch Logs (`/aws/sagemaker/TrainingJobs` or
   `/aws/sagemaker/ProcessingJobs`, stream `<job>/<host>-<epoch>` of the plan's host), from the head,
   following the forward token. Ingestion lags behind the job, so the stream is read again every
   `poll_seconds` for up to `log_wait_seconds` after the job ended, until the END frame is there.
5. **Clean up** on every path — success, failure, timeout, exception, Ctrl-C and SIGTERM (through the
   reaper's per-run callback, which runs while the run's own thread is still blocked): a job still in
   progress is stopped and the staged objects are deleted.

What this changes compared with the Docker emulation: the emulation keeps `train` as a training job's
command and makes that name resolve to the probe; on the real platform `train` cannot be shadowed without
changing the image, so the probe's invocation replaces it — an entrypoint that only execs its arguments
when `$1 = train` never starts the probe. The probe's channel is also visible to the job: it is listed in
inputdataconfig.json, trainingjobconfig.json and init-config.json (processing: processingjobconfig.json),
and toolkit images derive SM_CHANNELS / SM_CHANNEL_PARITY_PROBE from it; its directory and manifest are
left out of the snapshot (`exclude_paths`), as is SM_CHANNEL_PARITY_PROBE (`exclude_env`).
"""

from __future__ import annotations

import copy
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conformance.config import LoadedConfig, describe_validation_error
from conformance.engines.probe_files import probe_command, probe_files
from conformance.engines.reaper import LABEL_RUN, LABEL_TARGET, LIVE_RUNS, install_interrupt_handlers
from conformance.errors import BadInput, InfrastructureError, ParityError
from conformance.plan import LaunchPlan
from conformance.platforms.sagemaker.limits import compiled_pattern, field_limits, validate_request
from conformance.runner import ProbeRequest, RunOutcome
from conformance.snapshot import FRAME_BEGIN, FRAME_END, extract_snapshot

PROBE_CHANNEL = "parity_probe"
# The variable SageMaker's training toolkit derives from the probe's training channel (SM_CHANNEL_<NAME>).
PROBE_CHANNEL_VARIABLE = "SM_CHANNEL_PARITY_PROBE"
RUN_ID_CHARS = 10
LOG_TAIL_LINES = 20
IN_PROGRESS = "InProgress"
ACTIVE_STATUSES = (IN_PROGRESS, "Stopping")
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden", "403"}
THROTTLED = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
}
BAD_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
}
# "1 validation error detected: Value 'x' at 'algorithmSpecification.trainingImage' failed to satisfy …"
_SERVICE_FIELD = re.compile(r" at '([A-Za-z0-9.]+)'")
# The value SageMaker quotes may be a secret (an Environment or HyperParameters entry): never repeated.
_QUOTED_VALUE = re.compile(r"Value (?:'.*?'|\S+) at '", re.DOTALL)


class AwsEngineOptions(BaseModel):
    """`targets.<name>.engine_options` of a target with `engine: aws`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    staging: str = Field(
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$",
        description="s3://bucket/prefix: the probe and its config are staged under it for each run and "
        "deleted afterwards",
    )
    region: str | None = Field(
        None,
        pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$",
        description="default: boto3's own (AWS_REGION, AWS_DEFAULT_REGION, the profile's region)",
    )
    endpoint_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="one endpoint for SageMaker, S3 and CloudWatch Logs (a local moto server); default: "
        "boto3's own resolution",
    )
    poll_seconds: float = Field(10.0, gt=0, le=300, description="how often the job and its logs are read")
    log_wait_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="how long after the job ended its snapshot may take to reach the logs",
    )

    @property
    def bucket(self) -> str:
        return self.staging[len("s3://") :].partition("/")[0]

    @property
    def prefix(self) -> str:
        """The key prefix under the bucket, without slashes at either end ("" for the bucket's root)."""
        return self.staging[len("s3://") :].partition("/")[2].strip("/")


@dataclass(frozen=True)
class JobApi:
    """How this engine drives one SageMaker job type."""

    kind: str
    operation: str
    """`TrainingJob` / `ProcessingJob`: the suffix of Create…, Describe…, Stop…, and of the response keys."""
    method: str
    """The same in boto3's spelling: `training_job` / `processing_job`."""
    probe_dir: str
    """Where the probe's input lands in the container."""
    log_group: str
    inject: Callable[[_Submission], None]

    @property
    def name_key(self) -> str:
        return f"{self.operation}Name"

    @property
    def status_key(self) -> str:
        return f"{self.operation}Status"

    def probe_arguments(self) -> list[str]:
        return probe_command(self.probe_dir)

    def excluded_paths(self) -> list[str]:
        """The probe's footprint the snapshot leaves out: its input directory, and for training the
        channel's manifest file real jobs show beside each S3 channel (sagemaker-contract.md §1 "Other
        paths")."""
        if self.kind == "training":
            return [self.probe_dir, f"{self.probe_dir}-manifest"]
        return [self.probe_dir]


@dataclass
class _Submission:
    """The request being prepared for submission, with what the injection needs to name its errors."""

    request: dict[str, Any]
    api: JobApi
    channel_uri: str
    spec_path: Path

    def refuse(self, field_path: str, problem: str) -> BadInput:
        return BadInput(self.spec_path, field_path, problem)


def _make_room_for_probe(
    submission: _Submission, api: str, field: str, items: list[dict], name_key: str, noun: str
) -> None:
    """Refuse a request whose `field` already uses the probe's name or is at SageMaker's maximum length."""
    for index, item in enumerate(items):
        if item.get(name_key) == PROBE_CHANNEL:
            raise submission.refuse(
                f"{field}[{index}].{name_key}",
                f"{PROBE_CHANNEL!r} is the {noun} engine aws brings the probe in with; rename this {noun}",
            )
    if len(items) >= field_limits(api, field).max:
        raise submission.refuse(
            field, f"has {len(items)} {noun}s, SageMaker's maximum: engine aws needs one more for the probe"
        )


def _inject_training(submission: _Submission) -> None:
    """One more File-mode channel for the probe; ContainerArguments become the probe's invocation."""
    request = submission.request
    channels = request.setdefault("InputDataConfig", [])
    _make_room_for_probe(submission, "training", "InputDataConfig", channels, "ChannelName", "channel")
    channels.append(
        {
            "ChannelName": PROBE_CHANNEL,
            "InputMode": "File",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": submission.channel_uri,
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
    )
    request["AlgorithmSpecification"]["ContainerArguments"] = submission.api.probe_arguments()


def _inject_processing(submission: _Submission) -> None:
    """One more File-mode processing input for the probe; ContainerArguments become its invocation."""
    request = submission.request
    inputs = request.setdefault("ProcessingInputs", [])
    probe_dir = submission.api.probe_dir
    outputs = (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    local_paths = [
        (f"ProcessingInputs[{index}].{kind}", item[kind])
        for index, item in enumerate(inputs)
        for kind in ("S3Input", "DatasetDefinition")
        if kind in item
    ] + [
        (f"ProcessingOutputConfig.Outputs[{index}].S3Output", item["S3Output"])
        for index, item in enumerate(outputs)
        if "S3Output" in item
    ]
    for field_path, source in local_paths:
        local = (source.get("LocalPath") or "").rstrip("/")
        if local and (
            local == probe_dir or local.startswith(f"{probe_dir}/") or probe_dir.startswith(f"{local}/")
        ):
            raise submission.refuse(
                f"{field_path}.LocalPath",
                f"{local} overlaps {probe_dir}, where engine aws brings the probe in; move it",
            )
    _make_room_for_probe(submission, "processing", "ProcessingInputs", inputs, "InputName", "input")
    inputs.append(
        {
            "InputName": PROBE_CHANNEL,
            "AppManaged": False,
            "S3Input": {
                "S3Uri": submission.channel_uri,
                "LocalPath": probe_dir,
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated",
            },
        }
    )
    request["AppSpecification"]["ContainerArguments"] = submission.api.probe_arguments()


APIS = {
    "training": JobApi(
        kind="training",
        operation="TrainingJob",
        method="training_job",
        probe_dir=f"/opt/ml/input/data/{PROBE_CHANNEL}",
        log_group="/aws/sagemaker/TrainingJobs",
        inject=_inject_training,
    ),
    "processing": JobApi(
        kind="processing",
        operation="ProcessingJob",
        method="processing_job",
        probe_dir=f"/opt/ml/processing/{PROBE_CHANNEL}",
        log_group="/aws/sagemaker/ProcessingJobs",
        inject=_inject_processing,
    ),
}


def submitted_job_name(api: JobApi, requested: str, run_id: str) -> str:
    """A job name of this run's own: the request's, shortened to fit, + `-parity-<run>`.

    Checked against the service model's length and pattern (`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`).
    """
    limits = field_limits(api.kind, api.name_key)
    suffix = f"-parity-{run_id[:RUN_ID_CHARS]}"
    name = requested[: int(limits.max) - len(suffix)].rstrip("-") + suffix
    if len(name) > limits.max or compiled_pattern(limits.pattern).fullmatch(name) is None:
        raise ValueError(f"job name {name!r} breaks SageMaker's {api.name_key} rules")
    return name


def service_field(path: str) -> str:
    """SageMaker's field path (`inputDataConfig.1.member.channelName`) in the request's spelling
    (`InputDataConfig[0].ChannelName`)."""
    spelled = ""
    for part in path.split("."):
        if part == "member":
            continue
        if part.isdigit():
            spelled += f"[{int(part) - 1}]"
        else:
            spelled += ("." if spelled else "") + part[:1].upper() + part[1:]
    return spelled


@dataclass
class _Clients:
    sagemaker: Any
    s3: Any
    logs: Any


@dataclass
class SageMakerEngine:
    """Runs LaunchPlans of SageMaker targets as real SageMaker jobs through boto3.

    `session_factory` makes the boto3 session every run (and every interrupt cleanup) gets its clients
    from; by default one with the `region` option, credentials as boto3 finds them.
    """

    options: AwsEngineOptions
    target_name: str
    spec_path: Path
    config_path: Path
    session_factory: Callable[[], boto3.Session] | None = None

    def __post_init__(self) -> None:
        install_interrupt_handlers()

    @classmethod
    def for_target(cls, loaded: LoadedConfig, target_name: str) -> SageMakerEngine:
        target = loaded.config.targets[target_name]
        if target.platform != "sagemaker":
            raise BadInput(
                loaded.path,
                f"targets.{target_name}.engine",
                f"engine aws runs SageMaker jobs; this target's platform is {target.platform}",
            )
        try:
            options = AwsEngineOptions.model_validate(target.engine_options)
        except ValidationError as exc:
            field_path, problem = describe_validation_error(exc)
            raise BadInput(
                loaded.path, f"targets.{target_name}.engine_options.{field_path}", problem
            ) from None
        return cls(options, target_name, loaded.resolve(target.spec), loaded.path)

    def run(self, plan: LaunchPlan, probe: ProbeRequest, timeout: float) -> RunOutcome:
        install_interrupt_handlers()
        return _JobRun(self, plan, probe, timeout).execute()

    def clients(self) -> _Clients:
        """Fresh SageMaker, S3 and CloudWatch Logs clients (standard retry mode: throttling is retried)."""
        session = (
            self.session_factory() if self.session_factory else boto3.Session(region_name=self.options.region)
        )
        config = Config(
            retries={"mode": "standard", "max_attempts": 5}, user_agent_extra="parity-conformance"
        )
        try:
            return _Clients(
                *(
                    session.client(service, endpoint_url=self.options.endpoint_url, config=config)
                    for service in ("sagemaker", "s3", "logs")
                )
            )
        except NoRegionError:
            raise BadInput(
                self.config_path,
                f"targets.{self.target_name}.engine_options.region",
                "boto3 found no AWS region (AWS_REGION, AWS_DEFAULT_REGION, the profile); set one here",
            ) from None

    @property
    def option_field(self) -> str:
        return f"targets.{self.target_name}.engine_options"


class _JobRun:
    """One job of one target: everything it creates is removed at the end, on every path."""

    def __init__(self, engine: SageMakerEngine, plan: LaunchPlan, probe: ProbeRequest, timeout: float):
        if plan.platform != "sagemaker" or plan.spec is None:
            raise BadInput(
                engine.config_path,
                f"targets.{plan.target}.engine",
                "engine aws needs the SageMaker request the platform adapter validated (LaunchPlan.spec)",
            )
        self.engine = engine
        self.plan = plan
        self.probe = probe
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.api = APIS[plan.metadata["api"]]
        self.host = plan.metadata.get("host", "algo-1")
        self.run_id = uuid.uuid4().hex
        self.job_name = submitted_job_name(self.api, plan.spec[self.api.name_key], self.run_id)
        options = engine.options
        self.key_prefix = "/".join(part for part in (options.prefix, self.job_name) if part) + "/"
        self.channel_uri = f"s3://{options.bucket}/{self.key_prefix}"
        self.interrupted = threading.Event()
        self.clients: _Clients | None = None
        self.staged_keys: list[str] = []
        self.submitted = False
        self.cleaned = False
        self.log_stream: str | None = None
        self.log_token: str | None = None
        self.log_lines: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------------------

    def execute(self) -> RunOutcome:
        request = self._request()  # refused before anything is created
        self.clients = self.engine.clients()
        LIVE_RUNS.begin_with_cleanup(self.run_id, self._reap)
        try:
            outcome = self._execute(request)
        except BaseException as exc:
            problems = self._cleanup(self.clients)
            if problems and isinstance(exc, InfrastructureError):
                # The run failed already: its error stays the message, what is left behind is added to it.
                exc.details = "\n".join(
                    part for part in (exc.details, self._leftovers(problems).one_line()) if part
                )
            raise
        else:
            problems = self._cleanup(self.clients)
            if problems:
                raise self._leftovers(problems)
            return outcome
        finally:
            LIVE_RUNS.end(self.run_id)

    def _execute(self, request: dict[str, Any]) -> RunOutcome:
        self._stage()
        arn = self._submit(request)
        description = self._wait_for_end()
        status = description[self.api.status_key]
        if status != "Completed":
            reason = description.get("FailureReason") or description.get("ExitMessage") or "no reason given"
            raise InfrastructureError(
                f"SageMaker {self.api.kind} job {self.job_name} (target {self.plan.target}) ended {status}: "
                f"{reason}",
                f"look at the job in the SageMaker console and its logs in {self.api.log_group} "
                "(the last lines follow)",
                self._tail_after_failure(),
            )
        snapshot = self._read_snapshot()
        return RunOutcome(
            snapshot=snapshot,
            exit_code=0,
            logs_tail=self._tail(),
            metadata={
                "job": self.job_name,
                "arn": arn,
                "log_stream": f"{self.api.log_group}/{self.log_stream}",
            },
        )

    def _reap(self) -> None:
        """The reaper's callback (Ctrl-C, SIGTERM, interpreter exit): wake the run, clean up with clients
        of its own (the run's thread may be in the middle of a call on its clients)."""
        self.interrupted.set()
        self._cleanup(self.engine.clients())

    def _cleanup(self, clients: _Clients) -> list[str]:
        """Stop the job if it is still in progress, delete the staged objects; returns what could not be
        done. Idempotent: once everything is gone, later calls do nothing."""
        if self.cleaned:
            return []
        problems = []
        if self.submitted:
            try:
                status = self._describe(clients)[self.api.status_key]
                if status == IN_PROGRESS:
                    getattr(clients.sagemaker, f"stop_{self.api.method}")(
                        **{self.api.name_key: self.job_name}
                    )
            except ClientError as exc:
                # SageMaker answers a Describe of a job that does not exist (its creation never reached
                # the service) with a ValidationException; the name is parity's own and valid.
                if _error_code(exc) not in ("ValidationException", "ResourceNotFound"):
                    problems.append(f"stopping job {self.job_name}: {_client_error_text(exc)}")
            except BotoCoreError as exc:
                problems.append(f"stopping job {self.job_name}: {exc}")
        if self.staged_keys:
            bucket = self.engine.options.bucket
            try:
                response = clients.s3.delete_objects(
                    Bucket=bucket,
                    Delete={"Objects": [{"Key": key} for key in self.staged_keys], "Quiet": True},
                )
                problems += [
                    f"deleting s3://{bucket}/{error['Key']}: {error['Code']}"
                    for error in response.get("Errors", [])
                ]
            except ClientError as exc:
                problems.append(f"deleting the staged probe: {_client_error_text(exc)}")
            except BotoCoreError as exc:
                problems.append(f"deleting the staged probe: {exc}")
        self.cleaned = not problems
        return problems

    def _leftovers(self, problems: list[str]) -> InfrastructureError:
        command = self.api.method.replace("_", "-")
        return InfrastructureError(
            f"could not clean up after target {self.plan.target} ({'; '.join(problems)})",
            f"stop the job if it still runs (`aws sagemaker stop-{command} --{command}-name "
            f"{self.job_name}`) and delete the staged probe (`aws s3 rm --recursive {self.channel_uri}`)",
        )

    # -- submission --------------------------------------------------------------------------------

    def _request(self) -> dict[str, Any]:
        """The request to submit: the plan's, with the probe injected, its own name and parity's tags."""
        submission = _Submission(
            copy.deepcopy(self.plan.spec), self.api, self.channel_uri, self.engine.spec_path
        )
        self.api.inject(submission)
        request = submission.request
        request[self.api.name_key] = self.job_name
        parity_tags = {
            **self.probe.labels,
            LABEL_RUN: self.run_id,
            LABEL_TARGET: self.plan.target,
        }
        user_tags = [tag for tag in request.get("Tags", []) if tag["Key"] not in parity_tags]
        request["Tags"] = user_tags + [{"Key": key, "Value": value} for key, value in parity_tags.items()]
        limit = field_limits(self.api.kind, "Tags").max
        if len(request["Tags"]) > limit:
            raise submission.refuse(
                "Tags",
                f"has {len(user_tags)} tags; with parity's {len(parity_tags)} (org.parity.*) the job "
                f"would have {len(request['Tags'])}, over SageMaker's {limit}",
            )
        validate_request(self.api.kind, request, f"{self.engine.spec_path} (as engine aws submits it)")
        return request

    def _stage(self) -> None:
        objects = probe_files(
            self.probe,
            self.api.excluded_paths(),
            exclude_env=[PROBE_CHANNEL_VARIABLE] if self.api.kind == "training" else [],
        )
        bucket = self.engine.options.bucket
        for name, body in objects.items():
            key = f"{self.key_prefix}{name}"
            self.staged_keys.append(key)  # before the call: an interrupted put is deleted too
            self._call(
                f"stage the probe at s3://{bucket}/{key}",
                f"s3:PutObject on {self.engine.options.staging}/*",
                self.clients.s3.put_object,
                Bucket=bucket,
                Key=key,
                Body=body,
            )

    def _submit(self, request: dict[str, Any]) -> str:
        self.submitted = True  # before the call: a job whose creation was interrupted is looked for too
        response = self._call(
            f"create {self.api.kind} job {self.job_name}",
            f"sagemaker:Create{self.api.operation} and iam:PassRole on {request['RoleArn']}",
            getattr(self.clients.sagemaker, f"create_{self.api.method}"),
            creating=True,
            **request,
        )
        return response[f"{self.api.operation}Arn"]

    # -- waiting -----------------------------------------------------------------------------------

    def _describe(self, clients: _Clients) -> dict[str, Any]:
        return getattr(clients.sagemaker, f"describe_{self.api.method}")(**{self.api.name_key: self.job_name})

    def _wait_for_end(self) -> dict[str, Any]:
        """Describe the job until it is no longer in progress; past the deadline, stop it and fail."""
        permission = f"sagemaker:Describe{self.api.operation}"
        while True:
            description = self._call(
                f"describe job {self.job_name}", permission, self._describe, clients=self.clients
            )
            status = description[self.api.status_key]
            if status not in ACTIVE_STATUSES:
                return description
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                if status == IN_PROGRESS:
                    self._call(
                        f"stop job {self.job_name}",
                        f"sagemaker:Stop{self.api.operation}",
                        getattr(self.clients.sagemaker, f"stop_{self.api.method}"),
                        **{self.api.name_key: self.job_name},
                    )
                secondary = description.get("SecondaryStatus", "no secondary status")
                raise InfrastructureError(
                    f"SageMaker job {self.job_name} (target {self.plan.target}) did not finish within "
                    f"{self.timeout:g}s (status {status}, {secondary}); parity stopped it",
                    f"raise targets.{self.plan.target}.timeout_seconds in parity.yaml (a job waits minutes "
                    "for its instance), or look for what the entrypoint waits on (the last log lines follow)",
                    self._tail_after_failure(),
                )
            self._pause(min(self.engine.options.poll_seconds, remaining))

    def _pause(self, seconds: float) -> None:
        if self.interrupted.wait(seconds):
            raise InfrastructureError(
                f"run of target {self.plan.target} was cancelled",
                "the harness is shutting down (interrupted)",
            )

    # -- logs --------------------------------------------------------------------------------------

    def _read_snapshot(self) -> dict[str, Any]:
        """Read the job's log stream until it holds a complete frame, for at most log_wait_seconds."""
        log_deadline = time.monotonic() + self.engine.options.log_wait_seconds
        while True:
            self._read_logs()
            text = "\n".join(self.log_lines)
            begin = text.rfind(FRAME_BEGIN)
            if begin >= 0 and text.find(FRAME_END, begin) >= 0:
                return extract_snapshot(text, f"job {self.job_name} ({self.api.log_group}/{self.log_stream})")
            remaining = log_deadline - time.monotonic()
            if remaining <= 0:
                raise self._no_snapshot(begin >= 0)
            self._pause(min(self.engine.options.poll_seconds, remaining))

    def _no_snapshot(self, began: bool) -> InfrastructureError:
        wait = self.engine.options.log_wait_seconds
        if self.log_stream is None:
            seen = f"no log stream {self.job_name}/{self.host}-… in {self.api.log_group}"
        elif began:
            seen = f"{self.api.log_group}/{self.log_stream} has the snapshot's BEGIN frame but no END frame"
        else:
            seen = f"{self.api.log_group}/{self.log_stream} has no snapshot frame"
        return InfrastructureError(
            f"SageMaker job {self.job_name} (target {self.plan.target}) completed, but {seen} after "
            f"waiting {wait:g}s",
            "check that the image's ENTRYPOINT ends by exec-ing its arguments (on SageMaker the probe's "
            "invocation replaces `train`), that the job's role may write logs (logs:CreateLogStream, "
            "logs:PutLogEvents) and parity may read them (logs:DescribeLogStreams, logs:GetLogEvents); or "
            f"raise {self.engine.option_field}.log_wait_seconds (the last log lines follow)",
            self._tail(),
        )

    def _read_logs(self) -> None:
        """Append the stream's new lines to log_lines (finding the stream first)."""
        group = self.api.log_group
        if self.log_stream is None:
            self.log_stream = self._find_log_stream()
            if self.log_stream is None:
                return
        while True:
            page = self._call(
                f"read the logs of job {self.job_name}",
                f"logs:GetLogEvents on {group}",
                self.clients.logs.get_log_events,
                logGroupName=group,
                logStreamName=self.log_stream,
                startFromHead=True,
                **({"nextToken": self.log_token} if self.log_token else {}),
            )
            self.log_lines += [event["message"].rstrip("\n") for event in page["events"]]
            token, self.log_token = self.log_token, page["nextForwardToken"]
            if token == self.log_token:
                return

    def _find_log_stream(self) -> str | None:
        """The newest stream of the plan's host (`<job>/<host>-<epoch>`), or None while there is none."""
        prefix = f"{self.job_name}/{self.host}-"
        try:
            pages = self.clients.logs.get_paginator("describe_log_streams").paginate(
                logGroupName=self.api.log_group, logStreamNamePrefix=prefix
            )
            names = [stream["logStreamName"] for page in pages for stream in page.get("logStreams", [])]
        except ClientError as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                return None  # the log group is created with the account's first job's logs
            raise self._client_error(
                f"find the logs of job {self.job_name}",
                f"logs:DescribeLogStreams on {self.api.log_group}",
                exc,
            ) from None
        except BotoCoreError as exc:
            raise self._botocore_error(f"find the logs of job {self.job_name}", exc) from None
        return max(names) if names else None

    def _tail(self) -> str:
        return "\n".join(self.log_lines[-LOG_TAIL_LINES:])

    def _tail_after_failure(self) -> str:
        """The last log lines for a failure's message; a failure to read them must not hide the failure."""
        try:
            self._read_logs()
        except ParityError as exc:
            return "\n".join(part for part in (self._tail(), f"(logs unreadable: {exc.one_line()})") if part)
        return self._tail()

    # -- errors ------------------------------------------------------------------------------------

    def _call(
        self, action: str, permission: str, call: Callable[..., Any], creating: bool = False, **kwargs: Any
    ) -> Any:
        """Call AWS; a refusal becomes an InfrastructureError saying what to do (exit 3), or — for a request
        SageMaker rejects as invalid — BadInput naming the field it named (exit 2)."""
        try:
            return call(**kwargs)
        except ParamValidationError as exc:
            raise BadInput(self.engine.spec_path, None, f"botocore rejects the request: {exc}") from None
        except ClientError as exc:
            if creating and _error_code(exc) == "ValidationException":
                raise self._invalid_request(exc) from None
            raise self._client_error(action, permission, exc) from None
        except BotoCoreError as exc:
            raise self._botocore_error(action, exc) from None

    def _client_error(self, action: str, permission: str, exc: ClientError) -> InfrastructureError:
        code = _error_code(exc)
        where = f"(target {self.plan.target}): {_client_error_text(exc)}"
        if code in ACCESS_DENIED:
            return InfrastructureError(
                f"AWS denied permission to {action} {where}",
                f"grant {permission} to the identity parity runs as (README: Running on real SageMaker)",
            )
        if code in THROTTLED:
            return InfrastructureError(
                f"AWS throttled the request to {action} {where}",
                f"run again later, or raise {self.engine.option_field}.poll_seconds",
            )
        if code in BAD_CREDENTIALS:
            return InfrastructureError(
                f"AWS did not accept the credentials to {action} {where}",
                "refresh them (expired session, wrong keys) the way boto3 finds them",
            )
        if code == "ResourceLimitExceeded":
            return InfrastructureError(
                f"SageMaker has no capacity left in this account's quota to {action} {where}",
                "wait for running jobs to end, or ask for a quota increase (Service Quotas, SageMaker)",
            )
        if code == "NoSuchBucket":
            return InfrastructureError(
                f"the staging bucket does not exist: cannot {action} {where}",
                f"create it, or point {self.engine.option_field}.staging at one that exists",
            )
        return InfrastructureError(
            f"AWS refused to {action} {where}",
            f"check that the identity parity runs as has {permission}, and the region and endpoint "
            f"({self.engine.option_field})",
        )

    def _botocore_error(self, action: str, exc: BotoCoreError) -> InfrastructureError:
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return InfrastructureError(
                f"no AWS credentials to {action} (target {self.plan.target})",
                "give parity credentials the way boto3 finds them: AWS_PROFILE, AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, SSO, or an instance or container role",
            )
        return InfrastructureError(
            f"cannot {action} (target {self.plan.target}): {exc}",
            f"check the network and {self.engine.option_field}.region / endpoint_url",
        )

    def _invalid_request(self, exc: ClientError) -> BadInput:
        """SageMaker's ValidationException on the Create call, naming the field it named (values left out:
        they may be secrets)."""
        message = _QUOTED_VALUE.sub("Value at '", exc.response["Error"].get("Message", "invalid request"))
        named = _SERVICE_FIELD.search(message)
        field_path = service_field(named.group(1)) if named else None
        image_field = {
            "training": "AlgorithmSpecification.TrainingImage",
            "processing": "AppSpecification.ImageUri",
        }
        if field_path == image_field[self.api.kind]:
            return BadInput(
                self.engine.config_path,
                f"targets.{self.plan.target}.image",
                f"SageMaker rejects it: {message}",
            )
        return BadInput(self.engine.spec_path, field_path, f"SageMaker rejects the request: {message}")


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _client_error_text(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
