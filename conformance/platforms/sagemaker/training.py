"""A CreateTrainingJob request → the LaunchPlan of one training host, as the container observes it.

Every behaviour cites sagemaker-contract.md (§ numbers) or the real-job captures in
shiftan/simple_sagemaker (SS `examples/single_task/expected_output`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conformance.plan import FileEntry, LaunchPlan
from conformance.platforms.sagemaker import opt_ml
from conformance.platforms.sagemaker.channels import DataStager
from conformance.platforms.sagemaker.identity import (
    ecs_metadata_uris,
    job_arn,
    private_dns_name,
    training_credentials_uri,
)
from conformance.platforms.sagemaker.job import (
    JobRequest,
    Tree,
    add_context_volumes,
    add_instance_files,
    hosts_named,
    job_plan,
)

HOMOGENEOUS_GROUP = "homogeneousCluster"
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
# Instance families with NVIDIA GPUs; every other instance sees NVIDIA_VISIBLE_DEVICES=void (§1 env).
GPU_FAMILIES = ("ml.p", "ml.g")
DEFAULT_TENSORBOARD_PATH = f"{opt_ml.OUTPUT}/tensorboard/"
DEFAULT_DEBUG_HOOK_PATH = f"{opt_ml.OUTPUT}/tensors"


@dataclass(frozen=True)
class InstanceGroup:
    name: str
    instance_type: str
    hosts: list[str]


def instance_groups(job: JobRequest) -> list[InstanceGroup]:
    """Hosts per instance group: one `homogeneousCluster` group, or the request's InstanceGroups with
    hosts numbered across groups in order (TK environment.py reads these from resourceconfig.json)."""
    resource = job.request.get("ResourceConfig") or {}
    if resource.get("InstanceGroups"):
        groups, start = [], 1
        for group in resource["InstanceGroups"]:
            count = max(group["InstanceCount"], 1)
            groups.append(
                InstanceGroup(group["InstanceGroupName"], group["InstanceType"], hosts_named(start, count))
            )
            start += count
        return groups
    count = max(resource.get("InstanceCount", 1), 1)
    instance_type = resource.get("InstanceType", DEFAULT_INSTANCE_TYPE)
    return [InstanceGroup(HOMOGENEOUS_GROUP, instance_type, hosts_named(1, count))]


def resource_config(job: JobRequest, groups: list[InstanceGroup], current: InstanceGroup) -> dict[str, Any]:
    """resourceconfig.json. SS shows current_host, hosts and network_interface_name (2020); the group keys
    are what the toolkit reads on current platforms (§1 resourceconfig.json)."""
    return {
        "current_host": job.options.current_host,
        "current_instance_type": job.options.instance_type or current.instance_type,
        "current_group_name": current.name,
        "hosts": [host for group in groups for host in group.hosts],
        "instance_groups": [
            {"instance_group_name": group.name, "instance_type": group.instance_type, "hosts": group.hosts}
            for group in groups
        ],
        "network_interface_name": job.options.network_interface_name,
    }


def training_job_config(request: dict[str, Any], arn: str) -> dict[str, Any]:
    """trainingjobconfig.json: the request with the service's defaults filled in, S3 and record enums in
    their internal spelling, plus TrainingJobArn and BaseTags (§1 table; SS trainingjobconfig.json)."""
    config = {"EnableInterContainerTrafficEncryption": False, "EnableNetworkIsolation": False, **request}
    channels = []
    for channel in request.get("InputDataConfig") or []:
        channel = {
            **channel,
            "CompressionType": opt_ml.internal_enum(channel.get("CompressionType", "None")),
            "RecordWrapperType": opt_ml.internal_enum(channel.get("RecordWrapperType", "None")),
        }
        s3 = channel.get("DataSource", {}).get("S3DataSource")
        if s3 is not None:
            s3 = {
                **s3,
                "S3DataType": opt_ml.internal_enum(s3.get("S3DataType", "S3Prefix")),
                "S3DataDistributionType": opt_ml.internal_enum(
                    s3.get("S3DataDistributionType", "FullyReplicated")
                ),
            }
            channel["DataSource"] = {**channel["DataSource"], "S3DataSource": s3}
        channels.append(channel)
    if channels:
        config["InputDataConfig"] = channels
    config["OutputDataConfig"] = {"KmsKeyId": "", **request.get("OutputDataConfig", {})}
    if "AlgorithmSpecification" in request:
        config["AlgorithmSpecification"] = {"MetricDefinitions": [], **request["AlgorithmSpecification"]}
    config["TrainingJobArn"] = arn
    config["BaseTags"] = request.get("Tags", [])
    return config


def init_config(
    request: dict[str, Any], input_mode: str, host_number: int, cluster_size: int, checkpoint_path: str | None
) -> dict[str, Any]:
    """init-config.json, the agent's internal view of the channels (shape of SS init-config.json)."""
    channels = {}
    for channel in request.get("InputDataConfig") or []:
        s3 = channel.get("DataSource", {}).get("S3DataSource")
        distribution = (s3 or {}).get("S3DataDistributionType", "FullyReplicated")
        channels[channel["ChannelName"]] = {
            "s3DataSource": None
            if s3 is None
            else {
                "s3DataType": opt_ml.internal_enum(s3.get("S3DataType", "S3Prefix")),
                "s3Uri": s3["S3Uri"],
                "s3DataDistributionType": opt_ml.internal_enum(distribution),
                "attributeNames": s3.get("AttributeNames"),
            },
            "fileSystemDataSource": channel.get("DataSource", {}).get("FileSystemDataSource"),
            "compressionType": opt_ml.internal_enum(channel.get("CompressionType", "None")),
            "recordWrapper": opt_ml.internal_enum(channel.get("RecordWrapperType", "None")),
            "shuffleConfig": channel.get("ShuffleConfig"),
            "inputMode": opt_ml.internal_enum(channel.get("InputMode") or input_mode),
            "sharded": distribution == "ShardedByS3Key",
        }
    checkpoint = request.get("CheckpointConfig")
    checkpoint_channel = None
    if checkpoint is not None:
        checkpoint_channel = {
            "name": "checkpoints",
            "channel": {
                "s3DataSource": {
                    "s3DataType": "S3_PREFIX",
                    "s3Uri": checkpoint["S3Uri"],
                    "s3DataDistributionType": None,
                    "attributeNames": None,
                },
                "fileSystemDataSource": None,
                "compressionType": None,
                "recordWrapper": None,
                "shuffleConfig": None,
                "inputMode": "FILE",
                "sharded": False,
            },
            "outputPath": checkpoint_path,
            "allowEmpty": True,
        }
    return {
        "inputMode": opt_ml.internal_enum(input_mode),
        "channels": channels,
        "checkpointChannel": checkpoint_channel,
        "hostConfig": {"clusterSize": cluster_size, "hostNumber": host_number},
        "enableAdditionalPlatformLoggingForCustomer": False,
        "jobRunInfo": {"jobRunNumber": 1},
    }


def _key_prefix(s3_uri: str) -> str:
    return s3_uri[len("s3://") :].partition("/")[2] if s3_uri.startswith("s3://") else s3_uri


def build(job: JobRequest) -> LaunchPlan:
    request, options = job.request, job.options
    name = request["TrainingJobName"]
    arn = job_arn("training", job.region, job.account, name)
    groups = instance_groups(job)
    hosts = [host for group in groups for host in group.hosts]
    host_index = job.host_index(hosts)
    current = next(group for group in groups if options.current_host in group.hosts)
    instance_type = options.instance_type or current.instance_type
    _check_keep_alive(job)

    algorithm = request.get("AlgorithmSpecification") or {}
    input_mode = algorithm.get("TrainingInputMode", "File")
    tree = Tree()
    input_entries = tree.add("input", opt_ml.INPUT, [opt_ml.directory("config"), opt_ml.directory("data")])
    tree.add("model", opt_ml.MODEL, [])
    # output/data always; output/metrics/sagemaker as in every SS training listing.
    tree.add(
        "output",
        opt_ml.OUTPUT,
        [opt_ml.directory("data"), opt_ml.directory("metrics"), opt_ml.directory("metrics/sagemaker")],
    )

    stager = DataStager(job.spec_path, options, job.option_field)
    input_data_config: dict[str, dict[str, str]] = {}
    for index, channel in enumerate(request.get("InputDataConfig") or []):
        input_data_config[channel["ChannelName"]] = _stage_channel(
            job, stager, tree, input_entries, index, channel, input_mode, (host_index, len(hosts))
        )

    config_files = {
        "hyperparameters.json": opt_ml.go_json(request.get("HyperParameters") or {}),
        "resourceconfig.json": opt_ml.python_json(resource_config(job, groups, current)),
        "inputdataconfig.json": opt_ml.go_json(input_data_config),
        "trainingjobconfig.json": opt_ml.go_json(training_job_config(request, arn)),
        # [] in every SS capture (no metric definitions, no upstream outputs).
        "metric-definition-regex.json": opt_ml.go_json(
            [definition["Regex"] for definition in algorithm.get("MetricDefinitions", [])]
        ),
        "upstreamoutputdataconfig.json": opt_ml.go_json([]),
    }
    checkpoint_path = None
    if "CheckpointConfig" in request:
        # CheckpointConfig.LocalPath defaults to /opt/ml/checkpoints (BC doc); the job starts with it empty
        # (restoring earlier checkpoints from S3 is not emulated).
        checkpoint = request["CheckpointConfig"]
        checkpoint_path = checkpoint.get("LocalPath") or opt_ml.DEFAULT_CHECKPOINT_PATH
        config_files["checkpointconfig.json"] = opt_ml.go_json({"LocalPath": checkpoint_path})
        input_entries.append(
            opt_ml.file("data/checkpoints-manifest", f"{_key_prefix(checkpoint['S3Uri'])}\n".encode())
        )
        tree.ensure_directory(checkpoint_path, "checkpoints")
    if "DebugHookConfig" in request:
        hook = request["DebugHookConfig"]
        local = hook.get("LocalPath") or DEFAULT_DEBUG_HOOK_PATH
        config_files["debughookconfig.json"] = opt_ml.go_json(
            {
                "S3OutputPath": hook["S3OutputPath"],
                "LocalPath": local,
                "HookParameters": hook.get("HookParameters"),
                "CollectionConfigurations": hook.get("CollectionConfigurations"),
            }
        )
        tree.ensure_directory(local, "debug-hook")
    if "TensorBoardOutputConfig" in request:
        board = request["TensorBoardOutputConfig"]
        local = board.get("LocalPath") or DEFAULT_TENSORBOARD_PATH
        config_files["tensorboardoutputconfig.json"] = opt_ml.go_json(
            {"S3OutputPath": board["S3OutputPath"], "LocalPath": local}
        )
        tree.ensure_directory(local, "tensorboard")
    if "ProfilerConfig" in request:
        config_files["profilerconfig.json"] = opt_ml.go_json(request["ProfilerConfig"])
        tree.ensure_directory(f"{opt_ml.OUTPUT}/profiler", "profiler")
    config_files["init-config.json"] = opt_ml.go_json(
        init_config(request, input_mode, host_index + 1, len(hosts), checkpoint_path)
    )
    input_entries.extend(
        opt_ml.file(f"config/{file_name}", content) for file_name, content in config_files.items()
    )

    hostname = private_dns_name(job.region, arn, options.current_host)
    add_instance_files(job, tree, hostname)
    metadata_v3, metadata_v4 = ecs_metadata_uris(arn, options.current_host)
    # §1 "Environment variables": set by the platform (DG + SS env dump); no SM_* (toolkit-only).
    platform = [
        ("TRAINING_JOB_NAME", name),
        ("TRAINING_JOB_ARN", arn),
        ("AWS_REGION", job.region),
        _credentials_variable(job, training_credentials_uri(arn, options.current_host)),
        ("AWS_EXECUTION_ENV", "AWS_ECS_EC2"),
        ("ECS_CONTAINER_METADATA_URI", metadata_v3),
        ("ECS_CONTAINER_METADATA_URI_V4", metadata_v4),
    ]
    if not instance_type.startswith(GPU_FAMILIES):
        platform.append(("NVIDIA_VISIBLE_DEVICES", "void"))
    platform.append(("HOSTNAME", hostname))
    platform.extend(add_context_volumes(job, tree))

    entrypoint, command, probe_as = _invocation(algorithm)
    return job_plan(
        job,
        tree,
        api="training",
        name=name,
        arn=arn,
        hostname=hostname,
        platform=platform,
        entrypoint=entrypoint,
        command=command,
        failure_file=opt_ml.FAILURE_FILE,
        probe_as=probe_as,
    )


def _invocation(algorithm: dict[str, Any]) -> tuple[list[str] | None, list[str] | None, str | None]:
    """(entrypoint, command, probe_as) from the DG's rules (§1 "How the container is started"):
    nothing set → `docker run image train`; ContainerEntrypoint → `--entrypoint EP` with no `train`;
    ContainerArguments → they replace `train`."""
    entrypoint = algorithm.get("ContainerEntrypoint")
    arguments = algorithm.get("ContainerArguments")
    if entrypoint is None and arguments is None:
        return None, ["train"], "train"
    return entrypoint, arguments, None


def _credentials_variable(job: JobRequest, relative_uri: str) -> tuple[str, str]:
    """AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (§1 "Credentials": botocore resolves it against
    169.254.170.2), or — the deliberate deviation `container_credentials_full_uri` — a FULL_URI pointing at
    a local credentials server, since 169.254.170.2 does not exist on this machine."""
    if job.options.container_credentials_full_uri:
        return "AWS_CONTAINER_CREDENTIALS_FULL_URI", job.options.container_credentials_full_uri
    return "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", relative_uri


def _check_keep_alive(job: JobRequest) -> None:
    keep_alive = (job.request.get("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds", 0)
    limit = job.options.max_keep_alive_seconds
    if keep_alive > limit:
        raise job.spec_error(
            "ResourceConfig.KeepAlivePeriodInSeconds",
            f"value is {keep_alive}; at most {limit} is allowed "
            f"({job.option_field}.max_keep_alive_seconds: the "
            "service model allows 21600, the warm-pool guide says 3600)",
        )
    if job.options.warm_pool and keep_alive <= 0:
        raise job.option_error(
            "warm_pool", "a warm pool needs ResourceConfig.KeepAlivePeriodInSeconds > 0 in the request (§4)"
        )


def _stage_channel(
    job: JobRequest,
    stager: DataStager,
    tree: Tree,
    input_entries: list[FileEntry],
    index: int,
    channel: dict[str, Any],
    input_mode: str,
    shard: tuple[int, int],
) -> dict[str, str]:
    """Place one channel's data per its input mode (unless the real platform reads it: `reads_inputs`);
    return its inputdataconfig.json entry."""
    name = channel["ChannelName"]
    mode = channel.get("InputMode") or input_mode
    source = channel.get("DataSource", {})
    s3 = source.get("S3DataSource")
    distribution = (s3 or {}).get("S3DataDistributionType", "FullyReplicated")
    entry = {
        "TrainingInputMode": mode,
        "S3DistributionType": distribution,
        "RecordWrapperType": channel.get("RecordWrapperType", "None"),
    }
    if "ContentType" in channel:
        entry["ContentType"] = channel["ContentType"]
    if not job.reads_inputs:
        return entry
    field_path = f"InputDataConfig[{index}].DataSource"
    if (
        s3 is not None
        and s3.get("S3DataType", "S3Prefix") != "S3Prefix"
        and name not in job.options.channel_data
    ):
        raise job.spec_error(
            f"{field_path}.S3DataSource.S3DataType",
            f"{s3['S3DataType']} channels are not emulated; give channel {name!r} local data in "
            f"{job.option_field}.channel_data",
        )
    staged = stager.stage(
        name, s3["S3Uri"] if s3 else None, field_path, shard if distribution == "ShardedByS3Key" else (0, 1)
    )
    if mode == "File":
        input_entries.append(opt_ml.directory(f"data/{name}"))
        input_entries.extend(opt_ml.file(f"data/{name}/{item.path}", item.content) for item in staged.objects)
    elif mode == "FastFile":
        # FastFile channels are a read-only file system of their own (§1 "Other paths").
        tree.add(
            f"channel-{name}",
            f"{opt_ml.INPUT}/data/{name}",
            [opt_ml.file(item.path, item.content) for item in staged.objects],
            read_only=True,
        )
    else:
        # Pipe mode streams each epoch through a FIFO `<channel>_<epoch>` (§1). Emulated as a regular file
        # `<channel>_0` holding epoch 0's bytes: readers get the data, but the type is `file`, not `fifo`,
        # and later epochs do not exist.
        input_entries.append(opt_ml.file(f"data/{name}_0", b"".join(item.content for item in staged.objects)))
    if s3 is not None:
        # SS: data/<channel>-manifest lists the key prefix, then every object's URI.
        manifest = "".join(f"{line}\n" for line in [_key_prefix(s3["S3Uri"]), *staged.listed_uris])
        input_entries.append(opt_ml.file(f"data/{name}-manifest", manifest.encode()))
    return entry
