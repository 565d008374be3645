"""A CreateProcessingJob request → the LaunchPlan of one processing host, as the container observes it.

Sources: sagemaker-contract.md §2 "Processing" (DG build-your-own-processing-container.md) and the
real-job capture SS `examples/processing_cli/expected_output/output3` (environment, `ls -laR /opt`,
processingjobconfig.json, resourceconfig.json).
"""

from __future__ import annotations

from typing import Any

from conformance.plan import LaunchPlan
from conformance.platforms.sagemaker import opt_ml
from conformance.platforms.sagemaker.channels import DataStager
from conformance.platforms.sagemaker.identity import job_arn, private_dns_name, processing_credentials_uri
from conformance.platforms.sagemaker.job import (
    JobRequest,
    Tree,
    add_context_volumes,
    add_instance_files,
    hosts_named,
    job_plan,
)

LOCAL_PATH_PREFIX = f"{opt_ml.PROCESSING}/"


def processing_job_config(request: dict[str, Any], arn: str) -> dict[str, Any]:
    """processingjobconfig.json: ProcessingJobArn (lowercased name) and ProcessingJobName first, then the
    request with the service's defaults filled in, enums in their API spelling (SS)."""
    name = request["ProcessingJobName"]
    config: dict[str, Any] = {"ProcessingJobArn": arn, "ProcessingJobName": name}
    config.update((key, value) for key, value in request.items() if key != "ProcessingJobName")
    inputs = []
    for item in request.get("ProcessingInputs") or []:
        if "S3Input" in item:
            item = {
                **item,
                "S3Input": {
                    "S3DataDistributionType": "FullyReplicated",
                    "S3CompressionType": "None",
                    **item["S3Input"],
                },
            }
        inputs.append(item)
    if inputs:
        config["ProcessingInputs"] = inputs
    if "ProcessingOutputConfig" in request:
        config["ProcessingOutputConfig"] = {**request["ProcessingOutputConfig"]}
        config["ProcessingOutputConfig"].setdefault("KmsKeyId", None)
    cluster = request["ProcessingResources"]["ClusterConfig"]
    config["ProcessingResources"] = {
        **request["ProcessingResources"],
        "ClusterConfig": {**cluster, "VolumeKmsKeyId": cluster.get("VolumeKmsKeyId")},
    }
    return config


def build(job: JobRequest) -> LaunchPlan:
    request, options = job.request, job.options
    name = request["ProcessingJobName"]
    arn = job_arn("processing", job.region, job.account, name)
    hosts = hosts_named(1, max(request["ProcessingResources"]["ClusterConfig"]["InstanceCount"], 1))
    host_index = job.host_index(hosts)

    tree = Tree()
    # /opt/ml/config is `drw-r--r--` on the platform (SS `ls -laR /opt`): only root can enter it.
    config_entries = tree.add("config", opt_ml.PROCESSING_CONFIG, [], mode=opt_ml.PROCESSING_CONFIG_DIR_MODE)
    processing_entries = tree.add("processing", opt_ml.PROCESSING, [])
    outputs = (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    # SS: /opt/ml/output/data/<OutputName> per output, and output/metrics/cloudwatch.
    tree.add(
        "output",
        opt_ml.OUTPUT,
        [
            opt_ml.directory("data"),
            opt_ml.directory("metrics"),
            opt_ml.directory("metrics/cloudwatch"),
            *(opt_ml.directory(f"data/{output['OutputName']}") for output in outputs),
        ],
    )

    stager = DataStager(job.spec_path, options, job.option_field)
    for index, item in enumerate(request.get("ProcessingInputs") or []):
        field_path = f"ProcessingInputs[{index}]"
        s3 = item.get("S3Input")
        source = s3 if s3 is not None else item.get("DatasetDefinition") or {}
        local_path = _local_path(
            job, source.get("LocalPath"), f"{field_path}.{'S3Input' if s3 else 'DatasetDefinition'}.LocalPath"
        )
        if not job.reads_inputs:
            continue  # the real platform reads it (engine aws)
        if s3 is not None and s3.get("S3InputMode") == "Pipe":
            raise job.spec_error(
                f"{field_path}.S3Input.S3InputMode", "Pipe-mode processing inputs are not emulated"
            )
        if (
            s3 is not None
            and s3.get("S3DataType", "S3Prefix") != "S3Prefix"
            and item["InputName"] not in options.channel_data
        ):
            raise job.spec_error(
                f"{field_path}.S3Input.S3DataType",
                f"{s3['S3DataType']} inputs are not emulated; give input {item['InputName']!r} local data in "
                f"{job.option_field}.channel_data",
            )
        distribution = (s3 or {}).get("S3DataDistributionType", "FullyReplicated")
        staged = stager.stage(
            item["InputName"],
            s3["S3Uri"] if s3 else None,
            field_path,
            (host_index, len(hosts)) if distribution == "ShardedByS3Key" else (0, 1),
        )
        processing_entries.append(opt_ml.directory(local_path))
        processing_entries.extend(
            opt_ml.file(f"{local_path}/{obj.path}", obj.content) for obj in staged.objects
        )
    for index, output in enumerate(outputs):
        s3_output = output.get("S3Output")
        if s3_output is not None:
            local = _local_path(
                job, s3_output["LocalPath"], f"ProcessingOutputConfig.Outputs[{index}].S3Output.LocalPath"
            )
            processing_entries.append(opt_ml.directory(local))

    config_entries.extend(
        [
            opt_ml.file("processingjobconfig.json", opt_ml.go_json(processing_job_config(request, arn))),
            # SS: compact, and without network_interface_name (unlike training's).
            opt_ml.file(
                "resourceconfig.json", opt_ml.go_json({"current_host": options.current_host, "hosts": hosts})
            ),
        ]
    )

    hostname = private_dns_name(job.region, arn, options.current_host)
    add_instance_files(job, tree, hostname)
    # SS processing env: no PROCESSING_JOB_ARN, no AWS_EXECUTION_ENV, no ECS_* and no NVIDIA variable (§2).
    platform = [
        ("AWS_REGION", job.region),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", options.container_credentials_full_uri)
        if options.container_credentials_full_uri
        else (
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            processing_credentials_uri(arn, options.current_host),
        ),
        ("HOSTNAME", hostname),
        *add_context_volumes(job, tree),
    ]
    application = request["AppSpecification"]
    # `docker run [--entrypoint EP] image [ARGS]`, no `train` argument (§2, DG).
    return job_plan(
        job,
        tree,
        api="processing",
        name=name,
        arn=arn,
        hostname=hostname,
        platform=platform,
        entrypoint=application.get("ContainerEntrypoint"),
        command=application.get("ContainerArguments"),
        failure_file=opt_ml.PROCESSING_MESSAGE_FILE,
    )


def _local_path(job: JobRequest, local_path: str | None, field_path: str) -> str:
    """The path relative to /opt/ml/processing; the service requires LocalPath under it (§2)."""
    relative = (local_path or "")[len(LOCAL_PATH_PREFIX) :].strip("/")
    if not (local_path or "").startswith(LOCAL_PATH_PREFIX) or not relative or ".." in relative.split("/"):
        raise job.spec_error(field_path, f"LocalPath {local_path!r} must be a path under {LOCAL_PATH_PREFIX}")
    return relative
