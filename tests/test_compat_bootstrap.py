"""The compat entrypoint's helper, function by function (no Docker): what it accepts, what it writes, who it
runs user code as. The end-to-end behaviour inside the image is in test_compat_image.py."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest
from moto import mock_aws

from conformance.compat_image import COMPAT_IMAGE_DIR, load_seed
from tests.compat_support import load_module

bootstrap = load_module("bootstrap")
relay = load_module("statsd_relay")


def seed_document() -> dict:
    return json.loads(json.dumps(load_seed().objects["compat/bootstrap.json"]))


def with_change(path: str, value) -> dict:
    """The example's bootstrap document with one field set (value None deletes it); path is dotted."""
    document = seed_document()
    *parents, last = path.split(".")
    node = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return document


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("version", 2, "doc.version: this image reads version 1, got 2"),
        ("secretVolumes.0.defaultMode", "644", None),
        (
            "secretVolumes.0.defaultMode",
            420,
            "doc.secretVolumes[0].defaultMode: expected an octal mode string",
        ),
        ("secretVolumes.0.mountPath", "etc/app", "doc.secretVolumes[0].mountPath: expected an absolute path"),
        (
            "hyperparameters.mountPath",
            "/etc/../root",
            "doc.hyperparameters.mountPath: expected an absolute path",
        ),
        (
            "hyperparameters.fileName",
            "../passwd",
            "doc.hyperparameters.fileName: expected a ConfigMap/Secret key",
        ),
        ("secretEnv.0.key", "api/token", "doc.secretEnv[0].key: expected a ConfigMap/Secret key"),
        (
            "env",
            ["https://example.com/env"],
            "doc.env[0]: expected s3://bucket/key.json or ssm:/parameter/path",
        ),
        (
            "securityContext.capabilities",
            {"add": ["NET_ADMIN"]},
            "doc.securityContext.capabilities: unknown field(s) add",
        ),
        ("securityContext.runAsUser", True, "doc.securityContext.runAsUser: expected a non-negative integer"),
        ("metrics.env", {"LOG_LEVEL": "INFO"}, "doc.metrics.env: sets none of STATSD_HOST"),
        ("metrics.gateway", "gateway", "doc.metrics.gateway: expected HOST:PORT"),
        ("spark.conf", "/opt/spark/conf", "doc.spark: unknown field(s) conf"),
        ("secretVolumes.0.secretId", None, "doc.secretVolumes[0].secretId: required"),
    ],
)
def test_the_document_is_checked_strictly_and_errors_name_the_field(path, value, message):
    document = with_change(path, value)
    if message is None:
        parsed = bootstrap.parse_document(document, "doc")
        assert parsed.secret_volumes[0].default_mode == 0o644
        return
    with pytest.raises(bootstrap.CompatError) as caught:
        bootstrap.parse_document(document, "doc")
    assert str(caught.value).startswith(message)


def test_spark_defaults_keep_their_keys_and_adapt_what_names_kubernetes():
    text = (
        "# comment\n\nspark.master   k8s://https://kubernetes.default.svc:443\n"
        "spark.executor.memory=4g\nspark.sql.shuffle.partitions: 64\n"
        "spark.hadoop.fs.s3a.bucket.data.aws.credentials.provider "
        "com.amazonaws.auth.WebIdentityTokenCredentialsProvider\nspark.eventLog.dir s3a://bucket/events/\n"
    )
    entries = bootstrap.parse_spark_defaults(text)
    assert entries == [
        ("spark.master", "k8s://https://kubernetes.default.svc:443"),
        ("spark.executor.memory", "4g"),
        ("spark.sql.shuffle.partitions", "64"),
        (
            "spark.hadoop.fs.s3a.bucket.data.aws.credentials.provider",
            "com.amazonaws.auth.WebIdentityTokenCredentialsProvider",
        ),
        ("spark.eventLog.dir", "s3a://bucket/events/"),
    ]
    adapted = dict(bootstrap.adapt_spark_defaults(entries))
    assert list(adapted) == [key for key, _ in entries]
    assert adapted["spark.master"] == "local[*]"
    assert (
        adapted["spark.hadoop.fs.s3a.bucket.data.aws.credentials.provider"]
        == "com.amazonaws.auth.EC2ContainerCredentialsProviderWrapper"
    )
    assert adapted["spark.executor.memory"] == "4g"
    assert bootstrap.parse_spark_defaults(
        bootstrap.render_spark_defaults(list(adapted.items())).decode()
    ) == list(adapted.items())


def test_fsgroup_makes_volume_files_group_readable_like_kubelet():
    modes = bootstrap.volume_modes
    # kubelet's root directories are 3777/2777/1777 under a read-only mount: here, without the write bits
    assert modes(0o400, 2000, in_memory=True) == bootstrap.VolumeModes(0o440, 0o3555, 0o2755, 2000)
    assert modes(0o644, 2000, in_memory=False) == bootstrap.VolumeModes(0o644, 0o2555, 0o2755, 2000)
    assert modes(0o400, None, in_memory=True) == bootstrap.VolumeModes(0o400, 0o1555, 0o755, 0)


@pytest.mark.skipif(os.geteuid() != 0, reason="writing files owned by another group needs root")
def test_volumes_are_written_in_the_atomic_writer_layout(tmp_path):
    mount = tmp_path / "etc" / "secrets"
    modes = bootstrap.VolumeModes(file=0o440, root_dir=0o3777, data_dir=0o2755, gid=2000)
    bootstrap.write_volume(mount, {"db-password": b"pw", "api-token": b"tok"}, modes)
    data_link = os.readlink(mount / "..data")
    assert re.fullmatch(r"\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+", data_link)
    assert sorted(os.listdir(mount)) == sorted(["..data", data_link, "api-token", "db-password"])
    for name, content in (("db-password", b"pw"), ("api-token", b"tok")):
        assert os.readlink(mount / name) == f"..data/{name}"
        assert os.lstat(mount / name).st_gid == 2000
        status = os.stat(mount / name)
        assert (status.st_mode & 0o7777, status.st_uid, status.st_gid) == (0o440, 0, 2000)
        assert (mount / name).read_bytes() == content
    for directory, mode in ((mount, 0o3777), (mount / data_link, 0o2755)):
        status = os.stat(directory)
        assert (status.st_mode & 0o7777, status.st_uid, status.st_gid) == (mode, 0, 2000)


def test_identity_follows_the_runtime_rules_for_users_without_a_passwd_entry():
    context = bootstrap.SecurityContext(
        run_as_user=4242,
        fs_group=2000,
        supplemental_groups=(3000,),
        allow_privilege_escalation=False,
        drop_capabilities=("ALL",),
    )
    identity = bootstrap.resolve_identity(context, "root")
    assert (identity.uid, identity.gid, identity.groups, identity.home) == (4242, 0, (0, 2000, 3000), "/")
    assert bootstrap.setpriv_command(identity, ["train", "--fast"]) == [
        "setpriv",
        "--reuid=4242",
        "--regid=0",
        "--groups=0,2000,3000",
        "--no-new-privs",
        "--bounding-set=-all",
        "--inh-caps=-all",
        "--",
        "train",
        "--fast",
    ]


def test_identity_defaults_to_the_image_user_and_honours_run_as_non_root():
    identity = bootstrap.resolve_identity(
        bootstrap.SecurityContext(drop_capabilities=("NET_RAW", "CHOWN")), "root"
    )
    assert (identity.uid, identity.gid, identity.home) == (0, 0, "/root")
    assert "--bounding-set=-net_raw,-chown" in bootstrap.setpriv_command(identity, ["x"])
    assert "--groups=0" in bootstrap.setpriv_command(identity, ["x"])
    with pytest.raises(bootstrap.CompatError, match="runAsNonRoot"):
        bootstrap.resolve_identity(bootstrap.SecurityContext(run_as_user=0, run_as_non_root=True), "root")


def test_metrics_addresses_follow_the_statsd_and_dogstatsd_variables():
    assert bootstrap.listen_addresses(
        {
            "STATSD_HOST": "localhost",
            "STATSD_PORT": "8125",
            "DD_AGENT_HOST": "localhost",
            "DD_DOGSTATSD_PORT": "8125",
        }
    ) == [("localhost", 8125)]
    assert bootstrap.listen_addresses({"STATSD_PORT": "9125", "DD_AGENT_HOST": "127.0.0.1"}) == [
        ("localhost", 9125),
        ("127.0.0.1", 8125),
    ]
    with pytest.raises(bootstrap.CompatError, match="metrics.env.STATSD_PORT"):
        bootstrap.listen_addresses({"STATSD_PORT": "eighty"})


def test_an_unknown_break_is_refused_with_the_known_ones():
    catalog = COMPAT_IMAGE_DIR / "breaks.json"
    assert bootstrap.active_break({}, catalog) is None
    assert bootstrap.active_break({"COMPAT_BREAK": "env-cap"}, catalog) == "env-cap"
    with pytest.raises(
        bootstrap.CompatError, match=r"'env-cpa' is not a known break \(known: hyperparameters"
    ):
        bootstrap.active_break({"COMPAT_BREAK": "env-cpa"}, catalog)


def test_a_failure_reason_is_written_where_sagemaker_reads_it(tmp_path, monkeypatch, capsys):
    failure = tmp_path / "output" / "failure"
    failure.parent.mkdir()
    monkeypatch.setitem(bootstrap.FAILURE_FILES, "sagemaker-training", failure)
    bootstrap.report_failure("sagemaker-training", "cannot read secret x: " + "y" * 2000)
    assert failure.read_bytes().startswith(b"compat: cannot read secret x: ")
    assert len(failure.read_bytes()) == bootstrap.FAILURE_LIMIT
    assert "compat: error: cannot read secret x" in capsys.readouterr().err


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "parity")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "parity")
    with mock_aws():
        yield bootstrap.Aws("us-east-1")


def test_secrets_must_be_json_objects_and_their_text_is_never_echoed(aws):
    import boto3

    client = boto3.client("secretsmanager", region_name="us-east-1")
    client.create_secret(Name="plain", SecretString="hunter2-not-json")
    client.create_secret(Name="escaping", SecretString=json.dumps({"../../etc/cron.d/x": "hunter2"}))
    with pytest.raises(bootstrap.CompatError) as plain:
        aws.secret("plain")
    assert "JSON object of strings" in str(plain.value) and "hunter2" not in str(plain.value)
    with pytest.raises(bootstrap.CompatError, match="expected a ConfigMap/Secret key") as escaping:
        aws.secret("escaping")
    assert "hunter2" not in str(escaping.value)
    with pytest.raises(bootstrap.CompatError, match="cannot read secret absent: ResourceNotFoundException"):
        aws.secret("absent")


def test_ssm_parameters_are_read_by_their_last_name_segment_across_pages(aws):
    import boto3

    ssm = boto3.client("ssm", region_name="us-east-1")
    for index in range(23):  # GetParametersByPath returns at most 10 per page
        ssm.put_parameter(Name=f"/app/env/VAR_{index}", Value=str(index), Type="String")
    ssm.put_parameter(Name="/app/env/nested/DEEP", Value="x", Type="String")
    ssm.put_parameter(Name="/app/env/TOKEN", Value="s3cr3t", Type="SecureString")
    found = aws.parameters("/app/env/")
    assert found == {**{f"VAR_{index}": str(index) for index in range(23)}, "TOKEN": "s3cr3t"}


def test_the_environment_is_read_byte_for_byte_without_pythons_locale_coercion():
    """CPython adds LC_CTYPE to os.environ in a C locale (PEP 538); user code must not inherit it."""
    script = (
        "import os, sys; sys.argv = ['x']; "
        f"sys.path.insert(0, {str(COMPAT_IMAGE_DIR / 'compat')!r}); import bootstrap; "
        "env = bootstrap.original_environment(); "
        "sys.stdout.buffer.write(repr(sorted((os.fsencode(k), os.fsencode(v)) "
        "for k, v in env.items())).encode()); "
        "sys.stdout.buffer.write(b'|' + str('LC_CTYPE' in os.environ).encode())"
    )
    given = {b"PATH": os.environb[b"PATH"], b"LANG": b"C", b"ODD": b"caf\xe9\xff", b"EMPTY": b""}
    result = subprocess.run(
        [sys.executable, "-I", "-B", "-c", script], env=given, capture_output=True, check=True
    )
    seen, coerced = result.stdout.rsplit(b"|", 1)
    assert seen.decode() == repr(sorted(given.items()))
    assert coerced == b"True"  # the trap this function avoids


@pytest.fixture
def gateway():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        yield sock


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_relay_forwards_and_echoes_datagrams_once_it_says_it_is_ready(gateway):
    port = free_udp_port()
    ready_read, ready_write = os.pipe()
    process = subprocess.Popen(
        [
            sys.executable,
            "-I",
            str(COMPAT_IMAGE_DIR / "compat" / "statsd_relay.py"),
            "--listen",
            f"127.0.0.1:{port}",
            "--forward",
            f"127.0.0.1:{gateway.getsockname()[1]}",
            "--echo",
            "--ready-fd",
            str(ready_write),
        ],
        pass_fds=[ready_write],
        stdout=subprocess.PIPE,
        text=True,
    )
    os.close(ready_write)
    try:
        assert os.read(ready_read, 1) == b"1"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(b"train.loss:0.25|g", ("127.0.0.1", port))
        assert gateway.recv(1024) == b"train.loss:0.25|g"
        assert process.stdout.readline() == "statsd-relay: 127.0.0.1 train.loss:0.25|g\n"
    finally:
        os.close(ready_read)
        process.kill()
        process.wait()


def test_the_relay_leaves_addresses_the_gateway_serves_and_reports_busy_ones(gateway):
    host, port = gateway.getsockname()
    assert relay.bind_udp(host, port, skip={(host, port)}) == []
    with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
        relay.bind_udp(host, port)
