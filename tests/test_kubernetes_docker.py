"""The probe in pods built from real manifests, through the kubernetes adapter and the Docker engine.

tests/data/kubernetes/ holds a training Job (hyperparameters ConfigMap volume, Secret volume with fsGroup,
IRSA, a Vault-style init container, a StatsD sidecar) and a locked-down pod (arbitrary uid, read-only root).
Everything a run creates carries its unique target name as a label and must be gone afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import docker.errors
import pytest
import yaml

from conformance.config import load_config
from conformance.runner import run_target
from conformance.snapshot import validate_snapshot
from tests.docker_support import TEST_IMAGE_LABEL, build_image, leftovers, unique_target

DATA = Path(__file__).parent / "data" / "kubernetes"
HASH_KEY = b"kubernetes-docker-test-key-32-by"
DB_PASSWORD = "canary-db-password-5b1e"

# The workload's entrypoint waits for its metrics agent: it pings localhost:8125 until the agent has
# recorded a datagram, then execs its arguments with its environment untouched (no PEP 538 LC_CTYPE).
WAIT_FOR_AGENT = b"""#!/usr/bin/env python3
import os, socket, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
deadline = time.monotonic() + 30
while not os.path.exists("/var/run/statsd/received.json"):
    if time.monotonic() > deadline:
        sys.exit("the StatsD agent never received anything on localhost:8125")
    sock.sendto(b"entrypoint.waiting:1|c", ("127.0.0.1", 8125))
    time.sleep(0.05)
with open("/proc/self/environ", "rb") as block:
    environment = dict(item.split(b"=", 1) for item in block.read().split(b"\\0") if b"=" in item)
os.execvpe(sys.argv[1], sys.argv[1:], environment)
"""
TRAINER_DOCKERFILE = """\
FROM parity-base:bookworm
COPY wait-for-agent /usr/local/bin/wait-for-agent
ENTRYPOINT ["/usr/local/bin/wait-for-agent"]
"""
APP_DOCKERFILE = """\
FROM parity-base:bookworm
ENV GREETING=from-image HOSTNAME=from-image-env
"""


def keyed(value: str) -> str:
    return "hmac-sha256:" + hmac.new(HASH_KEY, value.encode(), hashlib.sha256).hexdigest()


def run_pod(tmp_path: Path, docker_client, prefix: str, target: dict, probe: dict):
    """Run one kubernetes target; returns (validated snapshot, what its labels left behind)."""
    name = unique_target(prefix)
    config = tmp_path / "parity.yaml"
    config.write_text(
        yaml.safe_dump({"probe": probe, "targets": {name: {"platform": "kubernetes", **target}}})
    )
    try:
        outcome = run_target(load_config(config), name, HASH_KEY)
    finally:
        left = leftovers(docker_client, name)
    return validate_snapshot(outcome.snapshot, name), left


@pytest.fixture(scope="module")
def trainer(docker_client, base_image, tmp_path_factory):
    image = build_image(
        docker_client, "parity-test-k8s-trainer:1", TRAINER_DOCKERFILE, {"wait-for-agent": WAIT_FOR_AGENT}
    )
    target = {
        "image": image,
        "spec": str(DATA / "trainer-job.yaml"),
        "resources": [str(DATA / "config.yaml")],
        "options": {
            "region": "us-west-2",
            "images": {
                "registry.example.com/vault:1.17": base_image,
                "registry.example.com/statsd-agent:2": base_image,
            },
        },
    }
    probe = {
        "paths": ["/etc/training", "/etc/db", "/vault/secrets", "/etc/hosts", "/etc/resolv.conf"],
        "secret_files": ["/vault/secrets/*", "/etc/db/password"],
        "hyperparameter_paths": ["/etc/training/hyperparameters.json", "/var/run/statsd/received.json"],
    }
    return run_pod(tmp_path_factory.mktemp("trainer"), docker_client, "k8s-trainer", target, probe)


def test_environment_is_kubelets(trainer):
    snapshot, _ = trainer
    env = snapshot["env"]["vars"]
    assert re.fullmatch(r"churn-train-[a-z0-9]{5}", env["POD_NAME"])
    assert env["HOSTNAME"] == env["POD_NAME"]  # containerd sets HOSTNAME to the pod's hostname
    assert env["JOB_NAME"] == "churn-train"  # downward API: the Job controller's label
    assert env["HP_learning_rate"] == "0.001"  # envFrom with prefix
    assert env["OUTPUT_URI"] == "s3://models/churn/$(JOB_NAME)/"  # later entries do not resolve
    assert env["CPU_LIMIT"] == "500"
    assert env["DB_USER"] == "churn"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.100.0.1" and env["KUBERNETES_PORT_443_TCP_PORT"] == "443"
    assert env["FEATURE_STORE_SERVICE_PORT_GRPC"] == "50051"
    assert env["FEATURE_STORE_PORT_9090_TCP_PROTO"] == "tcp"
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # the image's
    assert env["HOME"] == "/"  # uid 1000 has no passwd entry


def test_irsa_credentials_resolve_to_web_identity(trainer):
    snapshot, _ = trainer
    env = snapshot["env"]["vars"]
    assert env["AWS_ROLE_ARN"] == "arn:aws:iam::123456789012:role/churn-train"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-west-2"
    aws = snapshot["credentials"]["aws"]
    assert aws["resolved_source"] == "web_identity"
    token = aws["sources"]["web_identity"]["token_file"]
    assert token["path"] == "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
    assert token["exists"] is True and token["hmac"].startswith("hmac-sha256:")
    # projected token: 0600 for the shared runAsUser (FsUser), then | 0440 and group fsGroup
    assert (token["mode"], token["uid"], token["gid"]) == ("0640", 1000, 2000)


def test_identity_and_security_context(trainer):
    identity = trainer[0]["identity"]
    assert (identity["uid"], identity["gid"]) == (1000, 1000)
    assert 2000 in identity["groups"]  # fsGroup as a supplementary group
    assert identity["user"] is None
    assert identity["no_new_privs"] == 1  # allowPrivilegeEscalation: false
    assert identity["seccomp"] == 0  # Unconfined: the pod default, not Docker's profile
    assert identity["capabilities"]["effective"] == []  # non-root


def test_volumes_have_kubelets_layout_and_modes(trainer):
    snapshot, _ = trainer
    paths = snapshot["filesystem"]["paths"]
    data_link = paths["/etc/training/..data"]
    assert data_link["type"] == "symlink" and re.fullmatch(
        r"\.\.\d{4}(_\d\d){5}\.\d+", data_link["link_target"]
    )
    stamped = paths[f"/etc/training/{data_link['link_target']}"]
    assert (stamped["type"], stamped["mode"], stamped["gid"]) == ("dir", "2755", 2000)
    assert paths["/etc/training/learning_rate"]["link_target"] == "..data/learning_rate"
    assert (paths["/etc/training"]["mode"], paths["/etc/training"]["gid"]) == ("2777", 2000)
    secret_file = snapshot["credentials"]["secret_files"]["/etc/db/password"]
    assert (secret_file["mode"], secret_file["uid"], secret_file["gid"]) == ("0440", 0, 2000)  # 0400 | 0440
    assert secret_file["hmac"] == keyed(DB_PASSWORD)
    mounts = snapshot["filesystem"]["mounts"]
    assert mounts["/etc/db"]["fstype"] == "tmpfs" and mounts["/etc/db"]["ro"] is True
    assert mounts["/etc/training"]["ro"] is True  # a ConfigMap is mounted read-only (disk, not tmpfs)
    assert mounts["/etc/training"]["fstype"] != "tmpfs"


def test_hyperparameters_from_the_config_map_keep_their_types(trainer):
    source = trainer[0]["hyperparameters"]["sources"]["/etc/training/hyperparameters.json"]
    assert source["values"] == {"learning_rate": 0.001, "epochs": 20, "layers": [512, 256], "use_amp": True}


def test_the_init_container_wrote_the_secret_file_first(trainer):
    written = trainer[0]["credentials"]["secret_files"]["/vault/secrets/db-password"]
    assert written["hmac"] == keyed(DB_PASSWORD)
    assert (written["mode"], written["uid"], written["gid"]) == ("0640", 1000, 2000)  # umask 027, setgid dir
    assert trainer[0]["filesystem"]["mounts"]["/vault/secrets"]["fstype"] == "tmpfs"


def test_the_statsd_sidecar_shares_the_pods_localhost(trainer):
    snapshot, _ = trainer
    received = snapshot["hyperparameters"]["sources"]["/var/run/statsd/received.json"]["values"]["received"]
    assert (
        "entrypoint.waiting:1|c" in received
    )  # sent by the workload to 127.0.0.1:8125, received by the agent
    statsd = snapshot["metrics"]["statsd"]
    assert (statsd["host"], statsd["port"]) == ("localhost", 8125)
    assert snapshot["metrics"]["test_metric"]["sent"] is True


def test_kubelet_files(trainer):
    network = trainer[0]["network"]
    assert network["hosts_header"] == "# Kubernetes-managed hosts file."
    assert network["hosts"][-1] == {"ip": "10.0.1.23", "names": [network["hostname"]]}
    assert network["resolv_conf"]["search"] == [
        "ml-training.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
        "us-west-2.compute.internal",
    ]
    assert network["resolv_conf"]["nameservers"] == ["10.100.0.10"]
    assert network["resolv_conf"]["options"] == ["ndots:5"]
    assert trainer[0]["resources"]["shm"]["size_bytes"] == 64 * 2**20


def test_limits_reach_the_cgroup(trainer):
    cgroup = trainer[0]["resources"]["cgroup"]
    assert cgroup["cpu_limit_cores"] == 0.5
    assert cgroup["memory_limit_bytes"] == 512 * 2**20


def test_the_probes_own_files_are_excluded(trainer):
    excluded = trainer[0]["excluded"]["paths"]
    assert "/.parity" in excluded
    assert not any(path.startswith("/.parity") for path in trainer[0]["filesystem"]["paths"])


def test_nothing_is_left_behind(trainer):
    assert trainer[1] == {"containers": [], "volumes": []}


@pytest.fixture(scope="module")
def locked_down(docker_client, base_image, tmp_path_factory):
    image = build_image(docker_client, "parity-test-k8s-app:1", APP_DOCKERFILE)
    target = {"image": image, "spec": str(DATA / "locked-down-pod.yaml")}
    return run_pod(
        tmp_path_factory.mktemp("locked"), docker_client, "k8s-locked", target, {"paths": ["/etc/hostname"]}
    )


def test_read_only_root_and_arbitrary_uid_still_yield_a_snapshot(locked_down):
    snapshot, left = locked_down
    identity = snapshot["identity"]
    assert (identity["uid"], identity["gid"], identity["user"], identity["home"]) == (4242, 0, None, "/")
    assert identity["capabilities"]["bounding"] == []  # drop: [ALL]
    assert identity["seccomp"] == 2  # RuntimeDefault
    mounts = snapshot["filesystem"]["mounts"]
    assert mounts["/"]["ro"] is True
    assert mounts["/etc/hostname"]["ro"] is True and mounts["/etc/resolv.conf"]["ro"] is True
    assert mounts["/etc/hosts"]["ro"] is False
    assert not any(
        path.startswith("/var/run/secrets") and path != "/var/run/secrets"
        for path in snapshot["filesystem"]["paths"]
    )  # automountServiceAccountToken: false
    assert left == {"containers": [], "volumes": []}


def test_pod_env_beats_image_env_which_beats_hostname(locked_down):
    env = locked_down[0]["env"]["vars"]
    assert env["GREETING"] == "from-pod"
    assert env["HOSTNAME"] == "from-image-env"  # containerd: image ENV over HOSTNAME; Docker agrees
    assert locked_down[0]["network"]["hostname"] == "locked-down"


# The same image as a bare pod and as a bare training job, diffed under the default contract. Every
# divergence left is a real difference a migrating workload can trip over:
REAL_DIVERGENCES = {
    # A pod is seccomp Unconfined unless it asks for RuntimeDefault (K8s §3); SageMaker filters (mode 2).
    "identity.seccomp",
    # A best-effort pod's container gets cpu.shares 2 (K8s §4 milliCPUToShares); SageMaker's Docker 1024.
    "resources.cgroup.cpu_shares",
    # kubelet's /etc/hosts maps localhost to 127.0.0.1 and ::1 (K8s §2); the instance's Amazon Linux hosts
    # file to 127.0.0.1 only [obs], so the DogStatsD default host resolves differently.
    "metrics.dogstatsd.resolved",
}
# What the default contract absorbs (and must keep absorbing): AWS_REGION set by SageMaker only
# (sagemaker-contract §1), SageMaker's own /opt/ml hyperparameters.json, the probe's bookkeeping
# (excluded, truncated) and the service-account mount reported at /run/secrets (/var/run -> /run).


def test_cross_check_with_sagemaker_leaves_only_real_divergences(docker_client, base_image, tmp_path):
    import conformance.platforms.kubernetes  # noqa: F401 - imported here, not in run_check's worker threads
    import conformance.platforms.sagemaker  # noqa: F401
    from conformance.check import run_check

    names = {platform: unique_target(f"xcheck-{platform}") for platform in ("kubernetes", "sagemaker")}
    specs = {"kubernetes": "pod.yaml", "sagemaker": "training-job.yaml"}
    config = tmp_path / "parity.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "baselines_dir": str(tmp_path / "baselines"),
                "targets": {
                    name: {
                        "platform": platform,
                        "image": base_image,
                        "spec": str(DATA / "cross-check" / specs[platform]),
                        "options": {"region": "us-east-1"},
                    }
                    for platform, name in names.items()
                },
                "comparisons": [{"left": names["kubernetes"], "right": names["sagemaker"]}],
            }
        )
    )
    outcome = run_check(load_config(config), update_baselines=True)
    pair = next(c for c in outcome.result.comparisons if c.kind == "pair")
    paths = {divergence.path for divergence in pair.divergences}
    assert paths == REAL_DIVERGENCES
    for name in names.values():
        assert leftovers(docker_client, name) == {"containers": [], "volumes": []}


@pytest.fixture(scope="module")
def image_without_env(docker_client, base_image, tmp_path_factory) -> str:
    """The base image's filesystem as an image with no ENV at all (built once, then reused by tag)."""
    tag = "parity-test-k8s-noenv:1"
    try:
        docker_client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    source = docker_client.containers.create(
        base_image, ["true"], network_mode="none", labels={TEST_IMAGE_LABEL: "1"}
    )
    try:
        archive = tmp_path_factory.mktemp("noenv") / "rootfs.tar"
        with archive.open("wb") as out:
            for chunk in source.export():
                out.write(chunk)
        with archive.open("rb") as stream:
            docker_client.api.import_image(
                src=stream,
                repository=tag.split(":")[0],
                tag=tag.split(":")[1],
                changes=[f"LABEL {TEST_IMAGE_LABEL}=1"],
            )
    finally:
        source.remove(force=True)
    return tag


def test_an_image_without_path_gets_the_runtimes_default(docker_client, image_without_env, tmp_path):
    assert docker_client.images.get(image_without_env).attrs["Config"].get("Env") is None
    snapshot, left = run_pod(
        tmp_path,
        docker_client,
        "k8s-noenv",
        {"image": image_without_env, "spec": str(DATA / "cross-check" / "pod.yaml")},
        {},
    )
    env = snapshot["env"]["vars"]
    # containerd oci.WithDefaultPathEnv (K8s §1); the engine's Docker sets the same value
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["HOSTNAME"] == "churn-train"
    assert env["HOME"] == "/root"  # runc: from the image's /etc/passwd for uid 0
    assert left == {"containers": [], "volumes": []}
