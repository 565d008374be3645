"""The probe in real containers (testcontainers, network none) on the offline base image.

Two runs of one test image cover the behaviours that only exist in containers: a variable exported by the
image's ENTRYPOINT before `exec "$@"`, a non-UTF-8 value, 5,000 variables, canary secrets in env and files,
an arbitrary uid without a passwd entry on a read-only root filesystem, and a declared path holding symlink
loops and a directory that uid cannot read. The probe and its config go in through a read-only bind mount,
so the image itself is never changed.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from testcontainers.core.container import DockerContainer

from conformance.snapshot import PROBE_PATH, extract_snapshot
from tests.docker_support import build_image
from tests.probe_support import expected_hmac

RUN_ID = uuid.uuid4().hex[:12]
LABELS = {"org.parity.test": "probe", "org.parity.test-run": RUN_ID}
IMAGE_TAG = f"parity-probe-test:{RUN_ID}"
KEY_ONE = secrets.token_bytes(32)
KEY_TWO = secrets.token_bytes(32)
BULK_VARIABLES = 5000
ARBITRARY_UID = 4242

ENTRYPOINT = r"""#!/bin/sh
# Like a compat layer: state that only processes started through the entrypoint see, then the command.
export PARITY_ENTRYPOINT_MARK=exported-by-entrypoint
PARITY_LATIN1="$(printf 'caf\351')"
export PARITY_LATIN1
exec "$@"
"""
DOCKERFILE = """FROM {base}
RUN mkdir -p /data/deep/a/b/c /data/unreadable/inner \\
 && echo hidden > /data/unreadable/inner/file && chmod 000 /data/unreadable \\
 && ln -s loop-b /data/loop-a && ln -s loop-a /data/loop-b && ln -s self /data/self
COPY entrypoint.sh /usr/local/bin/parity-test-entrypoint
RUN chmod 755 /usr/local/bin/parity-test-entrypoint
ENTRYPOINT ["/usr/local/bin/parity-test-entrypoint"]
"""


@pytest.fixture(scope="session")
def probe_test_image(docker_client, base_image):
    """The test image, built once per session from the base image (`docker build --network host`)."""
    files = {"entrypoint.sh": ENTRYPOINT.encode()}
    yield build_image(docker_client, IMAGE_TAG, DOCKERFILE.format(base=base_image), files)
    docker_client.images.remove(IMAGE_TAG, force=True)


@dataclass(frozen=True)
class Canaries:
    """Secret values planted in the environment and in files; none may ever appear in the probe's output."""

    api_token: str
    db_password_file: str
    access_key_id: str
    jwt: str
    pem: str
    random_blob: str
    proxy_password: str
    hyperparameter: str
    spark_secret: str

    def values(self) -> list[str]:
        return [value for value in vars(self).values()]

    def environment(self) -> dict[str, str]:
        return {
            "API_TOKEN": self.api_token,
            "SAME_AS_API_TOKEN_VALUE": self.api_token,  # a harmless name: caught because the value is known
            "MY_SETTING": self.access_key_id,
            "SESSION_BLOB": self.jwt,
            "TLS_MATERIAL": self.pem,
            "OPAQUE_VALUE": self.random_blob,
            "HTTPS_PROXY": f"http://trainer:{self.proxy_password}@proxy.invalid:3128",
        }


@pytest.fixture(scope="session")
def canaries() -> Canaries:
    def word(prefix: str) -> str:
        return f"{prefix}-{secrets.token_hex(12)}"

    return Canaries(
        api_token=word("canary-api-token"),
        db_password_file=word("canary-db-password"),
        access_key_id="AKIA" + secrets.token_hex(8).upper(),
        jwt="eyJhbGciOiJIUzI1NiJ9.eyJjYW5hcnkiOiIxIn0." + secrets.token_urlsafe(24),
        pem="-----BEGIN PRIVATE KEY-----\n" + secrets.token_hex(24) + "\n-----END PRIVATE KEY-----",
        random_blob="Aa1" + secrets.token_urlsafe(33),
        proxy_password=word("canary-proxy"),
        hyperparameter=word("canary-hp"),
        spark_secret=word("canary-spark"),
    )


@dataclass
class ProbeRun:
    exit_code: int
    stdout: bytes
    stderr: bytes
    out_file: bytes
    snapshot: dict

    def printed(self) -> bytes:
        return self.stdout + self.stderr + self.out_file


def run_in_container(
    image: str, workdir: Path, canaries: Canaries, key: bytes, env: dict[str, str], **kwargs
) -> ProbeRun:
    """One probe run through the image's ENTRYPOINT, with canary files mounted read-only."""
    probe_dir, out_dir, secret_dir, test_dir = (
        workdir / name for name in ("probe", "out", "secrets", "parity-test")
    )
    for directory in (probe_dir, out_dir, secret_dir, test_dir / "spark"):
        directory.mkdir(parents=True)
    shutil.copyfile(PROBE_PATH, probe_dir / "parity_probe.py")
    config = {
        "hash_key": key.hex(),
        "label": workdir.name,
        "paths": ["/data"],
        "secret_files": ["/var/run/secrets/canary/*"],
        "hyperparameter_paths": ["/etc/parity-test/hp.json"],
        "exclude_paths": ["/.parity", "/out"],
    }
    (probe_dir / "config.json").write_text(json.dumps(config))
    (secret_dir / "api-token").write_text(canaries.api_token)
    (secret_dir / "db-password").write_text(canaries.db_password_file)
    (test_dir / "hp.json").write_text(
        json.dumps({"api_key": canaries.hyperparameter, "lr": 0.1, "epochs": 3})
    )
    (test_dir / "spark" / "spark-defaults.conf").write_text(
        f"spark.authenticate.secret {canaries.spark_secret}\nspark.executor.cores 2\n"
    )
    for path in workdir.rglob("*"):
        path.chmod(0o777 if path == out_dir else 0o755 if path.is_dir() else 0o644)
    container = (
        DockerContainer(
            image, env={**env, **canaries.environment(), "SPARK_CONF_DIR": "/etc/parity-test/spark"}
        )
        .with_kwargs(network_mode="none", labels=LABELS, **kwargs)
        .with_volume_mapping(str(probe_dir), "/.parity", "ro")
        .with_volume_mapping(str(out_dir), "/out", "rw")
        .with_volume_mapping(str(secret_dir), "/var/run/secrets/canary", "ro")
        .with_volume_mapping(str(test_dir), "/etc/parity-test", "ro")
        .with_command(
            [
                "python3",
                "/.parity/parity_probe.py",
                "--config",
                "/.parity/config.json",
                "--out",
                "/out/snapshot.json",
            ]
        )
    )
    container.start()
    try:
        exit_code = container.get_wrapped_container().wait(timeout=120)["StatusCode"]
        stdout, stderr = container.get_logs()
    finally:
        container.stop()
    out_file = (out_dir / "snapshot.json").read_bytes()
    return ProbeRun(
        exit_code, stdout, stderr, out_file, extract_snapshot(stdout, f"test container {workdir.name}")
    )


@pytest.fixture(scope="module")
def root_run(probe_test_image, canaries, tmp_path_factory) -> ProbeRun:
    bulk = {f"PARITY_BULK_{index:04d}": f"value-{index}" for index in range(BULK_VARIABLES)}
    return run_in_container(probe_test_image, tmp_path_factory.mktemp("root"), canaries, KEY_ONE, bulk)


@pytest.fixture(scope="module")
def restricted_run(probe_test_image, canaries, tmp_path_factory) -> ProbeRun:
    """An arbitrary uid with no passwd entry, on a read-only root with no writable /tmp."""
    return run_in_container(
        probe_test_image,
        tmp_path_factory.mktemp("restricted"),
        canaries,
        KEY_TWO,
        {},
        user=f"{ARBITRARY_UID}:{ARBITRARY_UID}",
        read_only=True,
    )


@pytest.fixture(scope="module")
def both_runs(root_run, restricted_run) -> list[ProbeRun]:
    return [root_run, restricted_run]


def test_every_run_produces_a_snapshot_and_exits_zero(both_runs):
    for run in both_runs:
        assert run.exit_code == 0 and run.stderr == b""
        assert json.loads(run.out_file) == run.snapshot
        assert run.snapshot["errors"] == []
        assert run.snapshot["context"]["platform"] == "docker"


def test_the_probe_sees_what_the_entrypoint_exported(both_runs):
    for run in both_runs:
        assert run.snapshot["env"]["vars"]["PARITY_ENTRYPOINT_MARK"] == "exported-by-entrypoint"
        assert (
            run.snapshot["process"]["is_pid1"] is True
        )  # the entrypoint exec'd the probe, it did not fork it


def test_a_non_utf8_value_is_kept_byte_for_byte(root_run):
    assert root_run.snapshot["env"]["vars"]["PARITY_LATIN1"] == {
        "base64": base64.b64encode(b"caf\xe9").decode()
    }


def test_five_thousand_variables_all_arrive_exactly(root_run):
    variables = root_run.snapshot["env"]["vars"]
    assert all(variables[f"PARITY_BULK_{index:04d}"] == f"value-{index}" for index in range(BULK_VARIABLES))
    assert root_run.snapshot["env"]["count"] > BULK_VARIABLES
    assert not any(t["collector"] == "env" for t in root_run.snapshot["truncated"])


def test_canary_secrets_never_appear_in_anything_the_probe_printed(both_runs, canaries):
    for run in both_runs:
        printed = run.printed()
        for value in canaries.values():
            assert value.encode() not in printed
            assert base64.b64encode(value.encode()) not in printed


def test_secrets_are_keyed_hashes_equal_under_one_key_different_under_another(
    root_run, restricted_run, canaries
):
    one, two = root_run.snapshot, restricted_run.snapshot
    token_one = expected_hmac(KEY_ONE, canaries.api_token)
    assert one["env"]["vars"]["API_TOKEN"] == token_one
    assert one["env"]["vars"]["SAME_AS_API_TOKEN_VALUE"] == token_one
    assert one["credentials"]["secret_files"]["/var/run/secrets/canary/api-token"]["hmac"] == token_one
    assert one["credentials"]["secret_files"]["/var/run/secrets/canary/db-password"]["hmac"] == expected_hmac(
        KEY_ONE, canaries.db_password_file
    )
    assert two["env"]["vars"]["API_TOKEN"] == expected_hmac(KEY_TWO, canaries.api_token) != token_one
    assert one["probe"]["hash"]["key_id"] != two["probe"]["hash"]["key_id"]
    assert one["probe"]["hash"]["comparable"] and two["probe"]["hash"]["comparable"]
    assert {"API_TOKEN", "MY_SETTING", "SESSION_BLOB", "TLS_MATERIAL", "OPAQUE_VALUE", "HTTPS_PROXY"} <= set(
        one["env"]["redacted"]
    )
    hyperparameters = one["hyperparameters"]["sources"]["/etc/parity-test/hp.json"]["values"]
    assert hyperparameters == {
        "api_key": expected_hmac(KEY_ONE, canaries.hyperparameter),
        "lr": 0.1,
        "epochs": 3,
    }
    assert one["spark"]["defaults"]["spark.authenticate.secret"] == expected_hmac(
        KEY_ONE, canaries.spark_secret
    )


def test_arbitrary_uid_without_passwd_entry(restricted_run):
    identity = restricted_run.snapshot["identity"]
    assert (identity["uid"], identity["gid"], identity["euid"]) == (
        ARBITRARY_UID,
        ARBITRARY_UID,
        ARBITRARY_UID,
    )
    assert identity["user"] is None and identity["passwd_home"] is None and identity["group"] is None
    assert identity["home"] == "/"
    assert identity["capabilities"]["effective"] == []


def test_root_in_docker_has_the_default_capabilities_and_seccomp(root_run):
    identity = root_run.snapshot["identity"]
    assert identity["user"] == "root" and identity["home"] == "/root"
    assert identity["capabilities"]["effective_hex"] == "00000000a80425fb"
    assert identity["seccomp"] == 2 and identity["no_new_privs"] == 0


def test_read_only_root_without_writable_tmp(restricted_run):
    filesystem = restricted_run.snapshot["filesystem"]
    assert filesystem["mounts"]["/"]["ro"] is True
    assert filesystem["paths"]["/tmp"]["writable"] is False and filesystem["paths"]["/tmp"]["mode"] == "1777"
    assert "/out" not in filesystem["mounts"] and "/.parity" not in filesystem["mounts"]


def test_symlink_loops_and_an_unreadable_directory_are_recorded(restricted_run, root_run):
    paths = restricted_run.snapshot["filesystem"]["paths"]
    assert paths["/data/unreadable"]["type"] == "dir" and paths["/data/unreadable"]["mode"] == "0000"
    assert paths["/data/unreadable"]["error"] == "EACCES"
    assert "/data/unreadable/inner" not in paths
    assert paths["/data/loop-a"]["target_type"] == "loop" and paths["/data/loop-a"]["link_target"] == "loop-b"
    assert paths["/data/self"]["target_type"] == "loop"
    assert {
        "collector": "filesystem",
        "what": "/data: contents of 1 directories at depth 3 not listed",
        "limit": "max_depth=3",
    } in restricted_run.snapshot["truncated"]
    assert "/data/unreadable/inner" in root_run.snapshot["filesystem"]["paths"]  # root may read it


def test_no_test_container_is_left_behind(both_runs, docker_client):
    leftovers = docker_client.containers.list(all=True, filters={"label": f"org.parity.test-run={RUN_ID}"})
    assert leftovers == []
