"""SageMaker API limits: every limit of sagemaker-contract.md §3 accepted at N and rejected at N+1, with a
message naming the field, the limit and the value's size; the limits themselves pinned against the
installed botocore model; Java patterns translated faithfully."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.errors import BadInput
from conformance.platforms.sagemaker.limits import (
    compiled_pattern,
    field_limits,
    input_shape,
    java_pattern_to_regex,
    validate_request,
)

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
TRAINING = {
    "TrainingJobName": "job-1",
    "RoleArn": ROLE,
    "AlgorithmSpecification": {"TrainingImage": "image:latest", "TrainingInputMode": "File"},
    "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
    "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
}
PROCESSING = {
    "ProcessingJobName": "proc-1",
    "RoleArn": ROLE,
    "AppSpecification": {"ImageUri": "image:latest"},
    "ProcessingResources": {
        "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
    },
}


def channel(index: int) -> dict:
    return {
        "ChannelName": f"ch{index}",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://bucket/{index}"}},
    }


def processing_input(index: int) -> dict:
    return {
        "InputName": f"in{index}",
        "S3Input": {
            "S3Uri": f"s3://bucket/{index}",
            "LocalPath": f"/opt/ml/processing/in{index}",
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
        },
    }


def processing_output(index: int) -> dict:
    return {
        "OutputName": f"out{index}",
        "S3Output": {
            "S3Uri": f"s3://bucket/o{index}",
            "LocalPath": f"/opt/ml/processing/o{index}",
            "S3UploadMode": "EndOfJob",
        },
    }


def at(path: str, value_for: Callable[[int], object]) -> Callable[[dict, int], None]:
    """A setter putting value_for(n) at a dotted path of the request."""

    def setter(request: dict, n: int) -> None:
        *parents, last = path.split(".")
        node = request
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value_for(n)

    return setter


def entries(make_key: Callable[[int], str]) -> Callable[[int], dict]:
    return lambda n: {make_key(i): "v" for i in range(n)}


# (name, api, field reported, limit, "max"|"min", setter, unit of the size in the message)
LIMITS = [
    (
        "job name",
        "training",
        "TrainingJobName",
        63,
        "max",
        at("TrainingJobName", lambda n: "a" * n),
        "characters",
    ),
    (
        "job name empty",
        "training",
        "TrainingJobName",
        1,
        "min",
        at("TrainingJobName", lambda n: "a" * n),
        "characters",
    ),
    (
        "hyperparameter count",
        "training",
        "HyperParameters",
        100,
        "max",
        at("HyperParameters", entries(lambda i: f"k{i}")),
        "entries",
    ),
    (
        "hyperparameter key",
        "training",
        "HyperParameters.{k}",
        256,
        "max",
        at("HyperParameters", lambda n: {"k" * n: "v"}),
        "characters",
    ),
    (
        "hyperparameter value",
        "training",
        "HyperParameters.lr",
        2500,
        "max",
        at("HyperParameters", lambda n: {"lr": "9" * n}),
        "characters",
    ),
    (
        "environment count",
        "training",
        "Environment",
        100,
        "max",
        at("Environment", entries(lambda i: f"K{i}")),
        "entries",
    ),
    (
        "environment key",
        "training",
        "Environment.{k}",
        512,
        "max",
        at("Environment", lambda n: {"K" * n: "v"}),
        "characters",
    ),
    (
        "environment value",
        "training",
        "Environment.K",
        512,
        "max",
        at("Environment", lambda n: {"K": "v" * n}),
        "characters",
    ),
    (
        "entrypoint items",
        "training",
        "AlgorithmSpecification.ContainerEntrypoint",
        100,
        "max",
        at("AlgorithmSpecification.ContainerEntrypoint", lambda n: ["x"] * n),
        "items",
    ),
    (
        "entrypoint empty",
        "training",
        "AlgorithmSpecification.ContainerEntrypoint",
        1,
        "min",
        at("AlgorithmSpecification.ContainerEntrypoint", lambda n: ["x"] * n),
        "items",
    ),
    (
        "entrypoint item",
        "training",
        "AlgorithmSpecification.ContainerEntrypoint[0]",
        256,
        "max",
        at("AlgorithmSpecification.ContainerEntrypoint", lambda n: ["x" * n]),
        "characters",
    ),
    (
        "arguments items",
        "training",
        "AlgorithmSpecification.ContainerArguments",
        100,
        "max",
        at("AlgorithmSpecification.ContainerArguments", lambda n: ["x"] * n),
        "items",
    ),
    (
        "argument",
        "training",
        "AlgorithmSpecification.ContainerArguments[0]",
        256,
        "max",
        at("AlgorithmSpecification.ContainerArguments", lambda n: ["x" * n]),
        "characters",
    ),
    (
        "training image",
        "training",
        "AlgorithmSpecification.TrainingImage",
        255,
        "max",
        at("AlgorithmSpecification.TrainingImage", lambda n: "i" * n),
        "characters",
    ),
    (
        "tags",
        "training",
        "Tags",
        50,
        "max",
        at("Tags", lambda n: [{"Key": f"k{i}", "Value": "v"} for i in range(n)]),
        "items",
    ),
    (
        "tag key",
        "training",
        "Tags[0].Key",
        128,
        "max",
        at("Tags", lambda n: [{"Key": "k" * n, "Value": "v"}]),
        "characters",
    ),
    (
        "tag value",
        "training",
        "Tags[0].Value",
        256,
        "max",
        at("Tags", lambda n: [{"Key": "k", "Value": "v" * n}]),
        "characters",
    ),
    (
        "channels",
        "training",
        "InputDataConfig",
        20,
        "max",
        at("InputDataConfig", lambda n: [channel(i) for i in range(n)]),
        "items",
    ),
    (
        "channel name",
        "training",
        "InputDataConfig[0].ChannelName",
        64,
        "max",
        at("InputDataConfig", lambda n: [{**channel(0), "ChannelName": "c" * n}]),
        "characters",
    ),
    (
        "role arn",
        "training",
        "RoleArn",
        2048,
        "max",
        at("RoleArn", lambda n: ROLE + "x" * (n - len(ROLE))),
        "characters",
    ),
    (
        "s3 output path",
        "training",
        "OutputDataConfig.S3OutputPath",
        1024,
        "max",
        at("OutputDataConfig.S3OutputPath", lambda n: "s3://b/" + "o" * (n - 7)),
        "characters",
    ),
    (
        "keep alive",
        "training",
        "ResourceConfig.KeepAlivePeriodInSeconds",
        21600,
        "max",
        at("ResourceConfig.KeepAlivePeriodInSeconds", lambda n: n),
        None,
    ),
    (
        "instance groups",
        "training",
        "ResourceConfig.InstanceGroups",
        5,
        "max",
        at(
            "ResourceConfig.InstanceGroups",
            lambda n: [
                {"InstanceType": "ml.m5.large", "InstanceCount": 1, "InstanceGroupName": f"g{i}"}
                for i in range(n)
            ],
        ),
        "items",
    ),
    (
        "retry attempts",
        "training",
        "RetryStrategy.MaximumRetryAttempts",
        30,
        "max",
        at("RetryStrategy.MaximumRetryAttempts", lambda n: n),
        None,
    ),
    (
        "retry attempts low",
        "training",
        "RetryStrategy.MaximumRetryAttempts",
        1,
        "min",
        at("RetryStrategy.MaximumRetryAttempts", lambda n: n),
        None,
    ),
    (
        "metric definitions",
        "training",
        "AlgorithmSpecification.MetricDefinitions",
        40,
        "max",
        at(
            "AlgorithmSpecification.MetricDefinitions",
            lambda n: [{"Name": f"m{i}", "Regex": "x"} for i in range(n)],
        ),
        "items",
    ),
    (
        "max runtime",
        "training",
        "StoppingCondition.MaxRuntimeInSeconds",
        1,
        "min",
        at("StoppingCondition.MaxRuntimeInSeconds", lambda n: n),
        None,
    ),
    (
        "processing job name",
        "processing",
        "ProcessingJobName",
        63,
        "max",
        at("ProcessingJobName", lambda n: "p" * n),
        "characters",
    ),
    (
        "processing environment count",
        "processing",
        "Environment",
        100,
        "max",
        at("Environment", entries(lambda i: f"K{i}")),
        "entries",
    ),
    (
        "processing environment key",
        "processing",
        "Environment.{k}",
        256,
        "max",
        at("Environment", lambda n: {"K" * n: "v"}),
        "characters",
    ),
    (
        "processing environment value",
        "processing",
        "Environment.K",
        256,
        "max",
        at("Environment", lambda n: {"K": "v" * n}),
        "characters",
    ),
    (
        "processing entrypoint",
        "processing",
        "AppSpecification.ContainerEntrypoint",
        100,
        "max",
        at("AppSpecification.ContainerEntrypoint", lambda n: ["x"] * n),
        "items",
    ),
    (
        "processing argument",
        "processing",
        "AppSpecification.ContainerArguments[0]",
        256,
        "max",
        at("AppSpecification.ContainerArguments", lambda n: ["x" * n]),
        "characters",
    ),
    (
        "processing inputs",
        "processing",
        "ProcessingInputs",
        10,
        "max",
        at("ProcessingInputs", lambda n: [processing_input(i) for i in range(n)]),
        "items",
    ),
    (
        "processing outputs",
        "processing",
        "ProcessingOutputConfig.Outputs",
        10,
        "max",
        at("ProcessingOutputConfig.Outputs", lambda n: [processing_output(i) for i in range(n)]),
        "items",
    ),
    (
        "instance count",
        "processing",
        "ProcessingResources.ClusterConfig.InstanceCount",
        100,
        "max",
        at("ProcessingResources.ClusterConfig.InstanceCount", lambda n: n),
        None,
    ),
    (
        "instance count low",
        "processing",
        "ProcessingResources.ClusterConfig.InstanceCount",
        1,
        "min",
        at("ProcessingResources.ClusterConfig.InstanceCount", lambda n: n),
        None,
    ),
    (
        "volume size",
        "processing",
        "ProcessingResources.ClusterConfig.VolumeSizeInGB",
        16384,
        "max",
        at("ProcessingResources.ClusterConfig.VolumeSizeInGB", lambda n: n),
        None,
    ),
    (
        "processing max runtime",
        "processing",
        "StoppingCondition.MaxRuntimeInSeconds",
        777600,
        "max",
        at("StoppingCondition.MaxRuntimeInSeconds", lambda n: n),
        None,
    ),
]


def request_with(api: str, setter, n: int) -> dict:
    request = copy.deepcopy(TRAINING if api == "training" else PROCESSING)
    setter(request, n)
    return request


@pytest.mark.parametrize(
    ("name", "api", "field", "limit", "side", "setter", "unit"), LIMITS, ids=[limit[0] for limit in LIMITS]
)
def test_limit_is_enforced_at_its_exact_boundary(name, api, field, limit, side, setter, unit):
    validate_request(api, request_with(api, setter, limit), "spec.yaml")  # N is accepted
    beyond = limit + 1 if side == "max" else limit - 1
    with pytest.raises(BadInput) as raised:
        validate_request(api, request_with(api, setter, beyond), "spec.yaml")
    error = raised.value
    assert error.source == "spec.yaml"
    expected_field = field.format(k=("k" if "Hyper" in field else "K") * beyond)
    assert error.field == expected_field
    size = f"{beyond} {unit}" if unit else f"{beyond}"
    bound = f"allows at most {limit}" if side == "max" else f"requires at least {limit}"
    assert f"{size}; SageMaker {bound}" in error.problem


def test_message_reads_like_the_bug_report():
    request = request_with("training", at("HyperParameters", lambda n: {"lr": "1" * n}), 2501)
    with pytest.raises(BadInput) as raised:
        validate_request("training", request, "job.yaml")
    assert raised.value.one_line() == (
        "job.yaml: HyperParameters.lr: value is 2501 characters; SageMaker allows at most 2500"
    )


@pytest.mark.parametrize(
    ("api", "path", "low", "high"),
    [
        ("training", "TrainingJobName", 1, 63),
        ("training", "HyperParameters", 0, 100),
        ("training", "HyperParameters.<key>", 0, 256),
        ("training", "HyperParameters.<value>", 0, 2500),
        ("training", "Environment", 0, 100),
        ("training", "Environment.<key>", 0, 512),
        ("training", "Environment.<value>", 0, 512),
        ("training", "AlgorithmSpecification.ContainerEntrypoint", 1, 100),
        ("training", "AlgorithmSpecification.ContainerEntrypoint[]", 0, 256),
        ("training", "InputDataConfig", 1, 20),
        ("training", "InputDataConfig[].ChannelName", 1, 64),
        ("training", "ResourceConfig.KeepAlivePeriodInSeconds", 0, 21600),
        ("processing", "Environment", 0, 100),
        ("processing", "Environment.<key>", 0, 256),
        ("processing", "Environment.<value>", 0, 256),
        ("processing", "ProcessingInputs", 0, 10),
        ("processing", "ProcessingResources.ClusterConfig.VolumeSizeInGB", 1, 16384),
    ],
)
def test_limits_pinned_against_the_installed_service_model(api, path, low, high):
    limits = field_limits(api, path)
    assert (limits.min, limits.max) == (low, high)


def test_names_and_keys_use_the_patterns_of_the_reference_sheet():
    assert field_limits("training", "TrainingJobName").pattern == "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    assert field_limits("training", "Environment.<key>").pattern == "[a-zA-Z_][a-zA-Z0-9_]*"
    assert field_limits("training", "InputDataConfig[].ChannelName").pattern == r"[A-Za-z0-9\.\-_]+"


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (at("TrainingJobName", lambda _: "my_job"), "TrainingJobName", "does not match SageMaker's pattern"),
        (at("TrainingJobName", lambda _: "job-"), "TrainingJobName", "does not match"),
        (
            at("Environment", lambda _: {"1BAD-KEY": "x"}),
            "Environment.1BAD-KEY",
            "key '1BAD-KEY' does not match",
        ),
        (at("HyperParameters", lambda _: {"lr": 0.1}), "HyperParameters.lr", "must be a string (got float)"),
        (at("HyperParameters", lambda _: {"text": "two\nlines"}), "HyperParameters.text", "line break"),
        (
            at("ResourceConfig.InstanceType", lambda _: "ml.bogus.large"),
            "ResourceConfig.InstanceType",
            "is not one of ml.",
        ),
        (at("Unknown", lambda _: 1), "Unknown", "unknown field for CreateTrainingJobRequest"),
        (at("Tags", lambda _: [{"Key": "k", "Value": "no#hash"}]), "Tags[0].Value", "does not match"),
    ],
)
def test_patterns_types_enums_and_unknown_fields(mutate, field, fragment):
    with pytest.raises(BadInput) as raised:
        validate_request("training", request_with("training", mutate, 0), "spec.yaml")
    assert raised.value.field == field and fragment in raised.value.problem


def test_missing_required_field():
    request = copy.deepcopy(TRAINING)
    del request["RoleArn"]
    with pytest.raises(BadInput) as raised:
        validate_request("training", request, "spec.yaml")
    assert (raised.value.field, raised.value.problem) == (
        "RoleArn",
        "required by CreateTrainingJobRequest and missing",
    )


def test_hyperparameter_values_never_appear_in_messages():
    request = request_with("training", at("HyperParameters", lambda _: {"token": "hunter2\nsecret"}), 0)
    with pytest.raises(BadInput) as raised:
        validate_request("training", request, "spec.yaml")
    assert "hunter2" not in raised.value.one_line()


JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="aZ09-_.", min_size=0, max_size=80))
def test_job_name_accepted_exactly_when_the_service_would(name):
    request = request_with("training", at("TrainingJobName", lambda _: name), 0)
    valid = 1 <= len(name) <= 63 and JOB_NAME.fullmatch(name) is not None
    try:
        validate_request("training", request, "spec.yaml")
        accepted = True
    except BadInput as error:
        assert error.field == "TrainingJobName"
        accepted = False
    assert accepted == valid


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=3000), st.integers(min_value=0, max_value=120))
def test_hyperparameters_accepted_exactly_within_both_limits(value_length, count):
    request = request_with(
        "training", at("HyperParameters", lambda _: {f"k{i}": "v" * value_length for i in range(count)}), 0
    )
    valid = (value_length <= 2500 or count == 0) and count <= 100
    try:
        validate_request("training", request, "spec.yaml")
        assert valid
    except BadInput as error:
        assert not valid
        assert error.field == ("HyperParameters" if count > 100 else "HyperParameters.k0")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="aZ_9-é", min_size=0, max_size=20))
def test_environment_keys_follow_the_java_pattern(key):
    request = request_with("training", at("Environment", lambda _: {key: "v"}), 0)
    valid = re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", key, flags=re.ASCII) is not None
    try:
        validate_request("training", request, "spec.yaml")
        assert valid
    except BadInput:
        assert not valid


@pytest.mark.parametrize(
    ("java", "value", "matches"),
    [
        (r"[\p{Alnum}\-]+", "abc-1", True),
        (r"[\p{Alnum}\-]+", "é", False),  # Java's POSIX classes are ASCII
        (r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)", "é ü 1", True),  # Unicode categories stay Unicode
        (r"\w+", "é", False),
        (r"\d{2}", "٣٣", False),
        (".*", "a\rb", False),  # `.` excludes every Java line terminator
        (".*", "a\u2028b", False),
        (r"[\S\s]*", "any\nthing", True),
        (r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*", "ok \U0001f600", True),
        (r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*", "bell\x07", False),
    ],
)
def test_java_patterns_keep_their_java_meaning(java, value, matches):
    assert (compiled_pattern(java).fullmatch(value) is not None) == matches


def test_every_pattern_reachable_from_both_requests_compiles():
    seen: set[str] = set()
    patterns: set[str] = set()

    def walk(shape):
        if "pattern" in shape.metadata:
            patterns.add(shape.metadata["pattern"])
        if shape.name in seen:
            return
        seen.add(shape.name)
        children = {
            "structure": lambda: shape.members.values(),
            "list": lambda: [shape.member],
            "map": lambda: [shape.key, shape.value],
        }.get(shape.type_name, list)()
        for child in children:
            walk(child)

    walk(input_shape("training"))
    walk(input_shape("processing"))
    assert len(patterns) > 20
    for pattern in patterns:
        compiled_pattern(pattern)
    assert java_pattern_to_regex(r"\uD800\uDC00-\uDBFF\uDFFF") == r"\U00010000-\U0010FFFF"
