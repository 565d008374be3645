"""SageMaker request → LaunchPlan, checked against sagemaker-contract.md and the real-job captures it cites
(SS = shiftan/simple_sagemaker expected_output). No Docker: these read the plan the engine would run."""

from __future__ import annotations

import copy
import json
import re
import socket

import pytest
import yaml

from conformance.config import load_config
from conformance.errors import BadInput, InfrastructureError
from conformance.plan import LaunchPlan
from conformance.runner import build_plan

ROLE = "arn:aws:iam::111122223333:role/SageMakerRole"
TRAINING = {
    "TrainingJobName": "Demo-Job-2024",
    "RoleArn": ROLE,
    "AlgorithmSpecification": {
        "TrainingImage": "111122223333.dkr.ecr.us-east-1.amazonaws.com/demo:1",
        "TrainingInputMode": "File",
    },
    "HyperParameters": {"lr": "0.1", "epochs": "5", "note": "a&b<c>"},
    "InputDataConfig": [
        {
            "ChannelName": "train",
            "ContentType": "text/csv",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://bucket/data/train",
                    "S3DataDistributionType": "ShardedByS3Key",
                }
            },
        },
    ],
    "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
    "ResourceConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    "Environment": {"MY_VAR": "hello", "AWS_REGION": "user-tried-to-override"},
    "Tags": [{"Key": "team", "Value": "ml"}],
}
PROCESSING = {
    "ProcessingJobName": "Prep-Job-ABC",
    "RoleArn": ROLE,
    "AppSpecification": {
        "ImageUri": "image:1",
        "ContainerEntrypoint": ["python3", "/opt/ml/processing/code/run.py"],
        "ContainerArguments": ["--mode", "a&b"],
    },
    "ProcessingInputs": [
        {
            "InputName": "code",
            "S3Input": {
                "S3Uri": "s3://bucket/code/run.py",
                "LocalPath": "/opt/ml/processing/code",
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
            },
        },
    ],
    "ProcessingOutputConfig": {
        "Outputs": [
            {
                "OutputName": "result",
                "S3Output": {
                    "S3Uri": "s3://bucket/result",
                    "LocalPath": "/opt/ml/processing/result",
                    "S3UploadMode": "EndOfJob",
                },
            },
        ]
    },
    "ProcessingResources": {
        "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
    },
    "Environment": {"STAGE": "prep"},
}


@pytest.fixture
def data_dir(tmp_path):
    (tmp_path / "data" / "train" / "nested").mkdir(parents=True)
    for name, content in (("a.csv", b"1,2\n"), ("b.csv", b"3,4\n"), ("nested/c.csv", b"5,6\n")):
        (tmp_path / "data" / "train" / name).write_bytes(content)
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "run.py").write_text("print('hi')\n")
    return tmp_path


def plan_for(tmp_path, request: dict, options: dict | None = None, spec_name: str = "job.yaml") -> LaunchPlan:
    spec = tmp_path / spec_name
    spec.write_text(
        json.dumps(request) if spec_name.endswith(".json") else yaml.safe_dump(request, sort_keys=False)
    )
    config = tmp_path / "parity.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "targets": {
                    "sm": {
                        "platform": "sagemaker",
                        "image": "parity-base:bookworm",
                        "spec": spec_name,
                        "options": options
                        if options is not None
                        else {"channel_data": {"train": "data/train", "code": "code/run.py"}},
                    }
                }
            }
        )
    )
    return build_plan(load_config(config), "sm")


def files(plan: LaunchPlan) -> dict[str, tuple[str, int, bytes]]:
    """Absolute path in the container -> (kind, mode, content) for every volume entry."""
    tree = {}
    for mount in plan.main.mounts:
        for entry in plan.volume(mount.volume).entries:
            if mount.sub_path is None:
                tree[f"{mount.target}/{entry.path}"] = (entry.kind, entry.mode, entry.content)
            elif entry.path == mount.sub_path:
                tree[mount.target] = (entry.kind, entry.mode, entry.content)
    return tree


def config_json(plan: LaunchPlan, path: str):
    return json.loads(files(plan)[path][2])


# -- training ---------------------------------------------------------------------------------------


def test_training_runs_train_through_the_image_entrypoint(data_dir):
    plan = plan_for(data_dir, TRAINING)
    assert (plan.main.entrypoint, plan.main.command, plan.probe_as) == (None, ["train"], "train")
    assert plan.main.user is None and plan.main.working_dir is None  # the image's USER and WORKDIR (§1)


@pytest.mark.parametrize(
    ("algorithm", "entrypoint", "command", "probe_as"),
    [
        ({"ContainerEntrypoint": ["/bin/run"]}, ["/bin/run"], None, None),
        ({"ContainerArguments": ["python3", "t.py"]}, None, ["python3", "t.py"], None),
        ({"ContainerEntrypoint": ["/bin/run"], "ContainerArguments": ["--x"]}, ["/bin/run"], ["--x"], None),
    ],
)
def test_container_entrypoint_and_arguments_rules(data_dir, algorithm, entrypoint, command, probe_as):
    request = copy.deepcopy(TRAINING)
    request["AlgorithmSpecification"].update(algorithm)
    plan = plan_for(data_dir, request)
    assert (plan.main.entrypoint, plan.main.command, plan.probe_as) == (entrypoint, command, probe_as)


def test_training_environment_is_exactly_what_the_platform_sets(data_dir):
    plan = plan_for(data_dir, TRAINING)
    env = dict(plan.main.env)
    assert list(env) == [
        "TRAINING_JOB_NAME",
        "TRAINING_JOB_ARN",
        "AWS_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_EXECUTION_ENV",
        "ECS_CONTAINER_METADATA_URI",
        "ECS_CONTAINER_METADATA_URI_V4",
        "NVIDIA_VISIBLE_DEVICES",
        "HOSTNAME",
        "MY_VAR",
    ]
    assert env["TRAINING_JOB_NAME"] == "Demo-Job-2024"
    assert env["TRAINING_JOB_ARN"] == "arn:aws:sagemaker:us-east-1:111122223333:training-job/demo-job-2024"
    assert env["AWS_REGION"] == "us-east-1"  # the platform's value wins over the request's Environment
    assert re.fullmatch(
        r"/v2/credentials/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"],
    )
    assert env["AWS_EXECUTION_ENV"] == "AWS_ECS_EC2"
    v3, v4 = env["ECS_CONTAINER_METADATA_URI"], env["ECS_CONTAINER_METADATA_URI_V4"]
    assert v3.startswith("http://169.254.170.2/v3/") and v4 == v3.replace("/v3/", "/v4/")
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert re.fullmatch(r"ip-10-\d{1,3}-\d{1,3}-\d{1,3}\.ec2\.internal", env["HOSTNAME"])
    assert plan.hostname == env["HOSTNAME"]
    assert not any(name.startswith("SM_") for name in env)


def test_same_request_gives_the_same_plan(data_dir):
    assert plan_for(data_dir, TRAINING) == plan_for(data_dir, TRAINING)


def test_other_regions_use_the_compute_internal_host_name_and_their_arn(data_dir):
    options = {"region": "eu-west-1", "channel_data": {"train": "data/train"}}
    env = dict(plan_for(data_dir, TRAINING, options).main.env)
    assert re.fullmatch(r"ip-10-[\d-]+\.eu-west-1\.compute\.internal", env["HOSTNAME"])
    assert env["TRAINING_JOB_ARN"].startswith("arn:aws:sagemaker:eu-west-1:111122223333:")


def test_gpu_instances_do_not_get_the_void_device_list(data_dir):
    request = copy.deepcopy(TRAINING)
    request["ResourceConfig"]["InstanceType"] = "ml.g5.xlarge"
    assert "NVIDIA_VISIBLE_DEVICES" not in dict(plan_for(data_dir, request).main.env)


def test_hyperparameters_json_is_compact_strings_go_escaped(data_dir):
    content = files(plan_for(data_dir, TRAINING))["/opt/ml/input/config/hyperparameters.json"][2]
    assert content == b'{"lr":"0.1","epochs":"5","note":"a\\u0026b\\u003cc\\u003e"}'
    assert all(isinstance(value, str) for value in json.loads(content).values())


def test_resourceconfig_has_the_documented_and_toolkit_keys(data_dir):
    plan = plan_for(data_dir, TRAINING)
    raw = files(plan)["/opt/ml/input/config/resourceconfig.json"][2]
    assert raw.startswith(b'{"current_host": "algo-1", ')  # Python separators, as SS captured it
    assert json.loads(raw) == {
        "current_host": "algo-1",
        "current_instance_type": "ml.m5.xlarge",
        "current_group_name": "homogeneousCluster",
        "hosts": ["algo-1", "algo-2"],
        "instance_groups": [
            {
                "instance_group_name": "homogeneousCluster",
                "instance_type": "ml.m5.xlarge",
                "hosts": ["algo-1", "algo-2"],
            }
        ],
        "network_interface_name": "eth0",
    }


def test_network_interface_name_is_an_option(data_dir):
    plan = plan_for(
        data_dir, TRAINING, {"network_interface_name": "ethwe", "channel_data": {"train": "data/train"}}
    )
    assert config_json(plan, "/opt/ml/input/config/resourceconfig.json")["network_interface_name"] == "ethwe"


def test_inputdataconfig_matches_the_captured_shape(data_dir):
    plan = plan_for(data_dir, TRAINING)
    assert files(plan)["/opt/ml/input/config/inputdataconfig.json"][2] == (
        b'{"train":{"TrainingInputMode":"File","S3DistributionType":"ShardedByS3Key","RecordWrapperType":"None",'
        b'"ContentType":"text/csv"}}'
    )


def test_trainingjobconfig_is_the_request_with_internal_enums_arn_and_base_tags(data_dir):
    config = config_json(plan_for(data_dir, TRAINING), "/opt/ml/input/config/trainingjobconfig.json")
    assert config["TrainingJobArn"] == "arn:aws:sagemaker:us-east-1:111122223333:training-job/demo-job-2024"
    assert config["BaseTags"] == [{"Key": "team", "Value": "ml"}]
    s3 = config["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert (s3["S3DataType"], s3["S3DataDistributionType"]) == ("S3_PREFIX", "SHARDED_BY_S3_KEY")
    assert (
        config["InputDataConfig"][0]["CompressionType"],
        config["InputDataConfig"][0]["RecordWrapperType"],
    ) == ("NONE", "NONE")
    assert config["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    assert (config["EnableNetworkIsolation"], config["OutputDataConfig"]["KmsKeyId"]) == (False, "")
    assert config["HyperParameters"] == TRAINING["HyperParameters"]


def test_opt_ml_tree_is_root_owned_0755_with_0644_files(data_dir):
    plan = plan_for(data_dir, TRAINING)
    assert {(v.uid, v.gid, v.mode) for v in plan.volumes} == {(0, 0, 0o755)}
    tree = files(plan)
    assert {entry.uid for volume in plan.volumes for entry in volume.entries} == {0}
    assert {mode for kind, mode, _ in tree.values() if kind == "dir"} == {0o755}
    assert {mode for kind, mode, _ in tree.values() if kind == "file"} == {0o644}
    assert {m.target for m in plan.main.mounts if m.target.startswith("/opt/ml")} == {
        "/opt/ml/input",
        "/opt/ml/model",
        "/opt/ml/output",
    }
    for path in ("/opt/ml/input/config", "/opt/ml/input/data/train", "/opt/ml/output/data"):
        assert tree[path][0] == "dir"
    assert "/opt/ml/input/config/checkpointconfig.json" not in tree


@pytest.mark.parametrize("request_", [TRAINING, PROCESSING], ids=["training", "processing"])
def test_the_container_sees_its_instance_hosts_resolv_conf_and_hostname(data_dir, request_):
    """The container shares the instance's network namespace (HOSTNAME is the instance's private DNS
    name, sagemaker-contract §1): it sees the instance's files, not those of the machine emulating it."""
    plan = plan_for(data_dir, request_)
    tree = files(plan)
    hostname = dict(plan.main.env)["HOSTNAME"]
    assert tree["/etc/hostname"] == ("file", 0o644, f"{hostname}\n".encode())
    assert tree["/etc/hosts"][2].startswith(b"127.0.0.1   localhost localhost.localdomain")
    assert tree["/etc/resolv.conf"][2] == b"search ec2.internal\nnameserver 169.254.169.253\n"
    assert hostname.endswith(".ec2.internal")


def test_sharded_channel_gives_each_host_its_share_and_lists_all_in_the_manifest(data_dir):
    options = {"current_host": "algo-2", "channel_data": {"train": "data/train"}}
    tree = files(plan_for(data_dir, TRAINING, options))
    staged = sorted(path for path in tree if path.startswith("/opt/ml/input/data/train/"))
    assert staged == ["/opt/ml/input/data/train/b.csv"]  # a.csv, b.csv, nested/c.csv: algo-2 gets the 2nd
    assert tree["/opt/ml/input/data/train-manifest"][2].decode().splitlines() == [
        "data/train",
        "s3://bucket/data/train/a.csv",
        "s3://bucket/data/train/b.csv",
        "s3://bucket/data/train/nested/c.csv",
    ]


def test_fully_replicated_channel_gets_every_file(data_dir):
    request = copy.deepcopy(TRAINING)
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataDistributionType"] = "FullyReplicated"
    tree = files(plan_for(data_dir, request))
    assert tree["/opt/ml/input/data/train/nested/c.csv"] == ("file", 0o644, b"5,6\n")


def test_fastfile_channel_is_a_read_only_mount_of_its_own(data_dir):
    request = copy.deepcopy(TRAINING)
    request["InputDataConfig"][0]["InputMode"] = "FastFile"
    plan = plan_for(data_dir, request)
    mount = next(m for m in plan.main.mounts if m.target == "/opt/ml/input/data/train")
    assert mount.read_only
    assert (
        config_json(plan, "/opt/ml/input/config/inputdataconfig.json")["train"]["TrainingInputMode"]
        == "FastFile"
    )


def test_pipe_channel_is_emulated_by_the_epoch_zero_file(data_dir):
    request = copy.deepcopy(TRAINING)
    request["AlgorithmSpecification"]["TrainingInputMode"] = "Pipe"
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataDistributionType"] = "FullyReplicated"
    tree = files(plan_for(data_dir, request))
    assert tree["/opt/ml/input/data/train_0"] == ("file", 0o644, b"1,2\n3,4\n5,6\n")


def test_checkpoint_config_adds_its_file_and_directory(data_dir):
    request = {**TRAINING, "CheckpointConfig": {"S3Uri": "s3://bucket/ckpt", "LocalPath": "/state"}}
    plan = plan_for(data_dir, request)
    assert files(plan)["/opt/ml/input/config/checkpointconfig.json"][2] == b'{"LocalPath":"/state"}'
    assert any(m.target == "/state" for m in plan.main.mounts)


def test_failure_file_is_the_failure_reason_source(data_dir):
    plan = plan_for(data_dir, TRAINING)
    assert (plan.failure_message_path, plan.failure_message_limit) == ("/opt/ml/output/failure", 1024)


def test_warm_pool_option_adds_the_cache_directory_and_variable(data_dir):
    request = copy.deepcopy(TRAINING)
    request["ResourceConfig"]["KeepAlivePeriodInSeconds"] = 600
    plan = plan_for(data_dir, request, {"warm_pool": True, "channel_data": {"train": "data/train"}})
    assert (
        dict(plan.main.env)["SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY"] == "/opt/ml/sagemaker/warmpoolcache"
    )
    assert any(m.target == "/opt/ml/sagemaker/warmpoolcache" for m in plan.main.mounts)


def test_warm_pool_needs_a_keep_alive_period(data_dir):
    with pytest.raises(BadInput) as raised:
        plan_for(data_dir, TRAINING, {"warm_pool": True, "channel_data": {"train": "data/train"}})
    assert raised.value.field == "targets.sm.options.warm_pool"


@pytest.mark.parametrize(("maximum", "accepted"), [(21600, True), (3600, False)])
def test_keep_alive_maximum_is_an_option(data_dir, maximum, accepted):
    request = copy.deepcopy(TRAINING)
    request["ResourceConfig"]["KeepAlivePeriodInSeconds"] = 3601
    options = {"max_keep_alive_seconds": maximum, "channel_data": {"train": "data/train"}}
    if accepted:
        plan_for(data_dir, request, options)
    else:
        with pytest.raises(BadInput, match="value is 3601; at most 3600"):
            plan_for(data_dir, request, options)


@pytest.mark.parametrize(
    ("context", "expected_keys"),
    [
        ({"kind": "notebook-instance", "resource_name": "nb"}, {"ResourceArn", "ResourceName"}),
        (
            {"kind": "studio", "app_type": "KernelGateway"},
            {"AppType", "DomainId", "UserProfileName", "ExecutionRoleArn", "ResourceArn", "ResourceName"},
        ),
    ],
)
def test_notebook_context_writes_resource_metadata(data_dir, context, expected_keys):
    plan = plan_for(data_dir, TRAINING, {"notebook": context, "channel_data": {"train": "data/train"}})
    metadata = config_json(plan, "/opt/ml/metadata/resource-metadata.json")
    assert set(metadata) == expected_keys
    if context["kind"] == "notebook-instance":
        assert metadata["ResourceArn"] == "arn:aws:sagemaker:us-east-1:111122223333:notebook-instance/nb"


def test_full_credentials_uri_option_replaces_the_relative_uri(data_dir):
    options = {
        "container_credentials_full_uri": "http://127.0.0.1:9911/creds",
        "network": "host",
        "channel_data": {"train": "data/train"},
    }
    plan = plan_for(data_dir, TRAINING, options)
    env = dict(plan.main.env)
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://127.0.0.1:9911/creds"
    assert "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" not in env
    assert plan.network == "host"


def test_plan_network_defaults_to_none(data_dir):
    assert plan_for(data_dir, TRAINING).network == "none"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"colour": "blue"}, "targets.sm.options.colour"),
        ({"network": "bridge"}, "targets.sm.options.network"),
        ({"current_host": "algo-3"}, "targets.sm.options.current_host"),
        ({"region": "Mars"}, "targets.sm.options.region"),
    ],
)
def test_options_are_validated(data_dir, options, field):
    with pytest.raises(BadInput) as raised:
        plan_for(data_dir, TRAINING, {**options, "channel_data": {"train": "data/train"}})
    assert raised.value.field == field and raised.value.source.endswith("parity.yaml")


def test_channel_data_larger_than_the_bound_is_refused(data_dir):
    with pytest.raises(BadInput, match="parity stages at most 5"):
        plan_for(data_dir, TRAINING, {"max_channel_bytes": 5, "channel_data": {"train": "data/train"}})


def test_manifest_channels_need_local_data(data_dir):
    request = copy.deepcopy(TRAINING)
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataType"] = "ManifestFile"
    with pytest.raises(BadInput, match="ManifestFile channels are not emulated"):
        plan_for(data_dir, request, {})


def test_api_limit_violation_names_the_spec_file(data_dir):
    request = copy.deepcopy(TRAINING)
    request["HyperParameters"]["lr"] = "1" * 2501
    with pytest.raises(BadInput) as raised:
        plan_for(data_dir, request)
    assert raised.value.source.endswith("job.yaml")
    assert raised.value.problem == "value is 2501 characters; SageMaker allows at most 2500"


def test_yaml_numbers_in_hyperparameters_are_caught(data_dir):
    (data_dir / "job.yaml").write_text(yaml.safe_dump(TRAINING).replace("lr: '0.1'", "lr: 0.1"))
    spec_text = (data_dir / "job.yaml").read_text()
    assert "lr: 0.1" in spec_text
    config = data_dir / "parity.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "targets": {
                    "sm": {
                        "platform": "sagemaker",
                        "image": "i",
                        "spec": "job.yaml",
                        "options": {"channel_data": {"train": "data/train"}},
                    }
                }
            }
        )
    )
    with pytest.raises(BadInput, match="must be a string"):
        build_plan(load_config(config), "sm")


def test_json_spec_errors_have_line_and_column(data_dir):
    (data_dir / "job.json").write_text('{"TrainingJobName": "x",\n  "RoleArn": }')
    config = data_dir / "parity.yaml"
    config.write_text(
        yaml.safe_dump({"targets": {"sm": {"platform": "sagemaker", "image": "i", "spec": "job.json"}}})
    )
    with pytest.raises(BadInput) as raised:
        build_plan(load_config(config), "sm")
    assert raised.value.field == "line 2, column 14"


def test_api_is_detected_from_the_job_name_key_or_given(data_dir):
    both = {**TRAINING, "ProcessingJobName": "p"}
    with pytest.raises(BadInput, match="has both TrainingJobName and ProcessingJobName"):
        plan_for(data_dir, both)
    with pytest.raises(BadInput, match="unknown field for CreateTrainingJobRequest"):
        plan_for(data_dir, both, {"api": "training"})


# -- processing -------------------------------------------------------------------------------------


def test_processing_has_no_train_argument(data_dir):
    plan = plan_for(data_dir, PROCESSING)
    assert plan.main.entrypoint == ["python3", "/opt/ml/processing/code/run.py"]
    assert plan.main.command == ["--mode", "a&b"] and plan.probe_as is None


def test_processing_environment_is_exactly_what_the_platform_sets(data_dir):
    env = dict(plan_for(data_dir, PROCESSING).main.env)
    assert list(env) == ["AWS_REGION", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "HOSTNAME", "STAGE"]
    assert re.fullmatch(r"/v2/credentials/[A-Za-z0-9_-]{43}", env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"])


def test_processing_config_directory_and_files(data_dir):
    plan = plan_for(data_dir, PROCESSING)
    config_volume = next(v for v in plan.volumes if v.name == "config")
    assert config_volume.mode == 0o644  # drw-r--r-- on the platform (SS)
    tree = files(plan)
    job_config = tree["/opt/ml/config/processingjobconfig.json"][2]
    assert job_config.startswith(
        b'{"ProcessingJobArn":"arn:aws:sagemaker:us-east-1:111122223333:processing-job/prep-job-abc",'
        b'"ProcessingJobName":"Prep-Job-ABC",'
    )
    assert b'"a\\u0026b"' in job_config
    assert json.loads(job_config)["ProcessingInputs"][0]["S3Input"]["S3CompressionType"] == "None"
    assert tree["/opt/ml/config/resourceconfig.json"][2] == b'{"current_host":"algo-1","hosts":["algo-1"]}'


def test_processing_inputs_and_outputs_under_opt_ml_processing(data_dir):
    plan = plan_for(data_dir, PROCESSING)
    tree = files(plan)
    assert tree["/opt/ml/processing/code/run.py"] == ("file", 0o644, b"print('hi')\n")
    assert tree["/opt/ml/processing/result"][0] == "dir"
    assert tree["/opt/ml/output/data/result"][0] == "dir"
    assert plan.failure_message_path == "/opt/ml/output/message"


def test_processing_local_path_must_be_under_opt_ml_processing(data_dir):
    request = copy.deepcopy(PROCESSING)
    request["ProcessingInputs"][0]["S3Input"]["LocalPath"] = "/data/code"
    with pytest.raises(BadInput) as raised:
        plan_for(data_dir, request)
    assert raised.value.field == "ProcessingInputs[0].S3Input.LocalPath"


# -- S3 through boto3 (moto server on 127.0.0.1) ----------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_credentials(monkeypatch):
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_channel_data_is_read_from_s3_through_boto3(tmp_path, moto_endpoint, aws_credentials):
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="parity-channels")
    s3.put_object(Bucket="parity-channels", Key="data/train/part-0.csv", Body=b"x,y\n")
    s3.put_object(Bucket="parity-channels", Key="data/train/sub/part-1.csv", Body=b"z\n")
    s3.put_object(Bucket="parity-channels", Key="data/other/ignored.csv", Body=b"no\n")
    request = copy.deepcopy(TRAINING)
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"].update(
        S3Uri="s3://parity-channels/data/train", S3DataDistributionType="FullyReplicated"
    )
    tree = files(plan_for(tmp_path, request, {"endpoint_url": moto_endpoint}))
    staged = {path: entry[2] for path, entry in tree.items() if path.startswith("/opt/ml/input/data/train/")}
    assert staged == {
        "/opt/ml/input/data/train/part-0.csv": b"x,y\n",
        "/opt/ml/input/data/train/sub/part-1.csv": b"z\n",
    }


def test_unreachable_s3_is_an_infrastructure_error(tmp_path, aws_credentials):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    request = copy.deepcopy(TRAINING)
    with pytest.raises(InfrastructureError) as raised:
        plan_for(tmp_path, request, {"endpoint_url": f"http://127.0.0.1:{closed_port}"})
    assert "s3://bucket/data/train" in raised.value.problem
    assert "endpoint_url" in raised.value.remedy
