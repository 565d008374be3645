"""The Docker engine, observed from inside the container by the real probe.

One pod-shaped plan (holder, init container, sidecar, disk/memory volumes, sub_paths, security and
resource options) runs once per module and each test reads one feature from its snapshot; the failure
paths each check that nothing the run made is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import docker.models.containers
import pytest

from conformance.engines.docker import DockerEngine, checked_network_mode
from conformance.errors import InfrastructureError
from conformance.plan import Container, FileEntry, LaunchPlan, Mount, Volume
from conformance.runner import ProbeRequest
from tests.docker_support import build_image, leftovers, unique_target

MiB = 1024 * 1024
UDP_SIDECAR = (
    "import socket, time\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('127.0.0.1', 8125))\n"
    "data, sender = s.recvfrom(100)\n"
    "print('statsd received', data.decode(), flush=True)\n"
    "s.sendto(b'ack:' + data, sender)\n"
    "time.sleep(600)\n"
)
# A compat-style entrypoint: looks around, exports what it found, then execs its arguments (the probe).
CHECKING_ENTRYPOINT = textwrap.dedent(
    """
    import os, socket, sys, time
    ack = "none"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.2)
    deadline = time.time() + 15
    while time.time() < deadline:
        sock.sendto(b"ping", ("127.0.0.1", 8125))
        try:
            ack = sock.recv(100).decode()
            break
        except OSError:  # the sidecar is not listening yet
            time.sleep(0.05)
    os.environ["SIDECAR_ACK"] = ack
    os.environ["INIT_TEXT"] = open("/shared/init.txt").read().strip()
    os.execvp(sys.argv[1], sys.argv[1:])
    """
)
SCOPE = {"paths": ["/data", "/secrets/test", "/token", "/shared", "/created"], "send_test_metric": False}


@pytest.fixture(scope="session")
def env_image(docker_client, base_image) -> str:
    """The base image plus ENV, to see how the plan's environment lands over the image's."""
    return build_image(
        docker_client, "parity-test-engine:env", f"FROM {base_image}\nENV FOO=image FROM_IMAGE=image\n"
    )


def pod_plan(target: str, image: str, base_image: str) -> LaunchPlan:
    secret_dir = "..2024_01_01_00_00_00.000000001"
    return LaunchPlan(
        platform="kubernetes",
        target=target,
        hostname="pod-a",
        shm_size_bytes=32 * MiB,
        volumes=[
            Volume(
                name="data",
                mode=0o750,
                uid=1234,
                gid=2345,
                entries=[
                    FileEntry(path="a.txt", content=b"alpha", mode=0o640, uid=1234, gid=2345),
                    FileEntry(path="sub", kind="dir", mode=0o700, uid=1234),
                    FileEntry(path="sub/b.txt", content=b"beta"),
                    FileEntry(path="link", kind="symlink", target="a.txt"),
                ],
            ),
            Volume(
                name="secret",
                medium="memory",
                size_bytes=MiB,
                entries=[
                    FileEntry(path=secret_dir, kind="dir"),
                    FileEntry(path=f"{secret_dir}/token", content=b"s3cr3t", mode=0o600, uid=1234),
                    FileEntry(path="..data", kind="symlink", target=secret_dir),
                    FileEntry(path="token", kind="symlink", target="..data/token"),
                ],
            ),
            Volume(name="shared", mode=0o777),
            Volume(
                name="etc",
                entries=[
                    FileEntry(
                        path="hosts",
                        content=b"# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n10.1.2.3\tpod-a\n",
                    ),
                ],
            ),
        ],
        init_containers=[
            Container(
                name="setup",
                image=base_image,
                role="init",
                entrypoint=["sh", "-c", "echo from-init > /shared/init.txt"],
                mounts=[Mount(volume="shared", target="/shared")],
            ),
        ],
        sidecars=[
            Container(
                name="statsd", image=base_image, role="sidecar", entrypoint=["python3", "-c", UDP_SIDECAR]
            ),
        ],
        main=Container(
            name="app",
            image=image,
            entrypoint=["python3", "-c", CHECKING_ENTRYPOINT],
            env=[("FOO", "plan"), ("PLAN_ONLY", "1")],
            user="1234:2345",
            group_add=[3456],
            working_dir="/data",
            mounts=[
                Mount(volume="data", target="/data"),
                Mount(volume="secret", target="/secrets/test", read_only=True),
                Mount(volume="secret", target="/token", sub_path="token", read_only=True),
                Mount(volume="shared", target="/shared"),
                Mount(volume="etc", target="/etc/hosts", sub_path="hosts"),
                Mount(volume="data", target="/created", sub_path="made/by/kubelet"),
            ],
            cap_drop=["NET_RAW"],
            no_new_privileges=True,
            seccomp_unconfined=True,
            cpu_limit_millicores=500,
            memory_limit_bytes=256 * MiB,
        ),
    )


@pytest.fixture(scope="module")
def pod(docker_client, env_image, base_image):
    target = unique_target("engine-pod")
    started = int(time.time())
    request = ProbeRequest(scope=SCOPE, labels={"org.parity.test-run": target})
    outcome = DockerEngine().run(pod_plan(target, env_image, base_image), request, 120)
    created = docker_client.events(
        since=started,
        until=int(time.time()) + 1,
        filters={"type": "container", "event": "create", "label": f"org.parity.test-run={target}"},
        decode=True,
    )
    return outcome, target, sorted(event["Actor"]["Attributes"]["org.parity.role"] for event in created)


def paths(pod) -> dict:
    return pod[0].snapshot["filesystem"]["paths"]


def test_volume_entries_keep_modes_owners_and_symlinks(pod):
    files = paths(pod)
    assert (files["/data"]["mode"], files["/data"]["uid"], files["/data"]["gid"]) == ("0750", 1234, 2345)
    assert (files["/data/a.txt"]["mode"], files["/data/a.txt"]["size"]) == ("0640", 5)
    assert files["/data/sub"]["mode"] == "0700"
    assert (files["/data/link"]["type"], files["/data/link"]["link_target"]) == ("symlink", "a.txt")


def test_memory_volume_is_a_sized_read_only_tmpfs(pod):
    mount = pod[0].snapshot["filesystem"]["mounts"]["/secrets/test"]
    assert mount["fstype"] == "tmpfs" and mount["ro"] is True
    assert "size=1024k" in mount["super_options"]
    assert paths(pod)["/secrets/test/token"]["type"] == "symlink"


def test_sub_path_mounts_the_resolved_file_not_the_symlink(pod):
    token = paths(pod)["/token"]
    assert (token["type"], token["mode"], token["uid"], token["size"]) == ("file", "0600", 1234, 6)
    assert pod[0].snapshot["filesystem"]["mounts"]["/token"]["ro"] is True


def test_missing_sub_path_is_created_with_the_volume_root_mode(pod):
    created = paths(pod)["/created"]
    assert (created["type"], created["mode"], created["uid"]) == ("dir", "0750", 1234)


def test_file_over_etc_hosts_replaces_dockers(pod):
    network = pod[0].snapshot["network"]
    assert network["hosts_header"] == "# Kubernetes-managed hosts file."
    assert {"ip": "10.1.2.3", "names": ["pod-a"]} in network["hosts"]
    assert network["hostname"] == "pod-a"


def test_init_container_runs_first_and_writes_the_shared_volume(pod):
    assert pod[0].snapshot["env"]["vars"]["INIT_TEXT"] == "from-init"
    assert paths(pod)["/shared/init.txt"]["size"] == len("from-init\n")


def test_sidecar_shares_localhost_with_the_main_container(pod):
    assert pod[0].snapshot["env"]["vars"]["SIDECAR_ACK"] == "ack:ping"


def test_sidecar_output_comes_back_with_the_outcome(pod):
    assert pod[0].sidecar_logs == {"statsd": "statsd received ping\n"}


def test_every_container_of_the_run_carries_the_requests_labels(pod):
    assert pod[2] == ["holder", "init", "main", "sidecar"]


# A metrics sidecar that takes a while to start (CPU-bound, like imports, under a 100m CPU limit) and then
# prints the first datagram it receives.
SLOW_SIDECAR = (
    "import socket, time\n"
    "started = time.process_time()\n"
    "while time.process_time() - started < 0.05:\n"
    "    pass\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('127.0.0.1', 8125))\n"
    "print('statsd received', s.recv(200).decode(), flush=True)\n"
    "time.sleep(600)\n"
)


def test_the_workload_starts_once_a_slow_starting_sidecar_listens(docker_client, base_image):
    target = unique_target("engine-slow-sidecar")
    plan = LaunchPlan(
        platform="kubernetes",
        target=target,
        hostname="pod-b",
        sidecars=[
            Container(
                name="statsd",
                image=base_image,
                role="sidecar",
                entrypoint=["python3", "-c", SLOW_SIDECAR],
                cpu_limit_millicores=100,
            )
        ],
        main=Container(
            name="app", image=base_image, env=[("STATSD_HOST", "127.0.0.1"), ("STATSD_PORT", "8125")]
        ),
    )
    outcome = DockerEngine().run(plan, ProbeRequest(scope={"send_test_metric": True}), 60)
    test_metric = outcome.snapshot["metrics"]["test_metric"]
    assert outcome.sidecar_logs == {"statsd": f"statsd received {test_metric['payload']}\n"}
    assert leftovers(docker_client, target) == {"containers": [], "volumes": []}


def test_shm_size_is_the_pods(pod):
    assert pod[0].snapshot["resources"]["shm"]["size_bytes"] == 32 * MiB


def test_user_groups_and_working_dir(pod):
    snapshot = pod[0].snapshot
    identity = snapshot["identity"]
    assert (identity["uid"], identity["gid"]) == (1234, 2345)
    assert 3456 in identity["groups"]
    assert snapshot["process"]["cwd"] == "/data"


def test_security_options(pod):
    identity = pod[0].snapshot["identity"]
    assert identity["no_new_privs"] == 1
    assert identity["seccomp"] == 0  # unconfined, as kubelet's default (kubernetes-contract §3)
    assert "CAP_NET_RAW" not in identity["capabilities"]["bounding"]


def test_cpu_and_memory_limits_reach_the_cgroup(pod):
    cgroup = pod[0].snapshot["resources"]["cgroup"]
    assert (cgroup["cpu_quota_us"], cgroup["cpu_period_us"]) == (50_000, 100_000)
    assert cgroup["memory_limit_bytes"] == 256 * MiB


def test_plan_environment_overrides_the_images(pod):
    env = pod[0].snapshot["env"]["vars"]
    assert (env["FOO"], env["FROM_IMAGE"], env["PLAN_ONLY"]) == ("plan", "image", "1")


def test_probe_footprint_is_excluded(pod):
    excluded = pod[0].snapshot["excluded"]["paths"]
    assert "/.parity" in excluded
    assert not any(path.startswith("/.parity") for path in pod[0].snapshot["filesystem"]["mounts"])


def test_pod_leaves_nothing_behind(pod, docker_client):
    assert leftovers(docker_client, pod[1]) == {"containers": [], "volumes": []}


def single_plan(target: str, image: str, **main) -> LaunchPlan:
    return LaunchPlan(
        platform="sagemaker",
        target=target,
        hostname="ip-10-0-0-1.ec2.internal",
        domainname="example.internal",
        shm_size_bytes=16 * MiB,
        volumes=[
            Volume(name="etc", entries=[FileEntry(path="resolv.conf", content=b"nameserver 10.100.0.10\n")])
        ],
        main=Container(
            name="main",
            image=image,
            mounts=[Mount(volume="etc", target="/etc/resolv.conf", sub_path="resolv.conf")],
            **main,
        ),
    )


def test_plan_without_pod_features_runs_one_container_with_the_sandbox_settings(
    docker_client, base_image, monkeypatch
):
    roles = []
    create = docker.models.containers.ContainerCollection.create

    def recording_create(self, *args, **kwargs):
        roles.append(kwargs["labels"]["org.parity.role"])
        return create(self, *args, **kwargs)

    monkeypatch.setattr(docker.models.containers.ContainerCollection, "create", recording_create)
    target = unique_target("engine-single")
    outcome = DockerEngine().run(
        single_plan(target, base_image, read_only_rootfs=True), ProbeRequest(scope={}), 60
    )
    snapshot = outcome.snapshot
    assert "holder" not in roles and roles.count("main") == 1
    assert snapshot["network"]["hostname"] == "ip-10-0-0-1.ec2.internal"
    assert snapshot["network"]["resolv_conf"]["nameservers"] == ["10.100.0.10"]
    assert snapshot["resources"]["shm"]["size_bytes"] == 16 * MiB
    assert snapshot["filesystem"]["mounts"]["/"]["ro"] is True
    assert outcome.exit_code == 0 and outcome.image_id
    assert leftovers(docker_client, target) == {"containers": [], "volumes": []}


def test_timeout_kills_the_probe_and_reports_its_last_lines(docker_client, base_image, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    target = unique_target("engine-timeout")
    plan = single_plan(target, base_image, entrypoint=["sh", "-c", "echo waiting-forever; exec sleep 600"])
    started = time.monotonic()
    with pytest.raises(InfrastructureError) as raised:
        DockerEngine().run(plan, ProbeRequest(scope={}), 3)
    assert time.monotonic() - started < 30
    assert "did not finish within 3s" in raised.value.problem
    assert "waiting-forever" in raised.value.details
    assert leftovers(docker_client, target) == {"containers": [], "volumes": []}
    assert list(tmp_path.iterdir()) == []


def test_failing_init_container_stops_the_run_with_its_logs(docker_client, base_image, env_image):
    target = unique_target("engine-init")
    plan = pod_plan(target, env_image, base_image)
    plan.init_containers[0].entrypoint = ["sh", "-c", "echo boom-from-init; exit 3"]
    with pytest.raises(InfrastructureError) as raised:
        DockerEngine().run(plan, ProbeRequest(scope={}), 60)
    assert "init container setup exited with code 3" in raised.value.problem
    assert "boom-from-init" in raised.value.details
    assert leftovers(docker_client, target) == {"containers": [], "volumes": []}


def test_container_exit_without_snapshot_shows_its_last_lines(docker_client, base_image):
    target = unique_target("engine-nosnap")
    plan = single_plan(target, base_image, entrypoint=["sh", "-c", "echo ignoring-my-arguments >&2"])
    with pytest.raises(InfrastructureError) as raised:
        DockerEngine().run(plan, ProbeRequest(scope={}), 60)
    assert "without a complete snapshot" in raised.value.problem
    assert "ignoring-my-arguments" in raised.value.details
    assert leftovers(docker_client, target) == {"containers": [], "volumes": []}


def test_missing_image_says_how_to_build_it_and_creates_nothing(docker_client):
    target = unique_target("engine-noimage")
    with pytest.raises(InfrastructureError) as raised:
        DockerEngine().run(single_plan(target, "parity-test/no-such-image:1"), ProbeRequest(scope={}), 60)
    assert "parity-test/no-such-image:1 is not on the Docker daemon" in raised.value.problem
    assert "never pulls" in raised.value.remedy
    assert leftovers(docker_client, target) == {"containers": [], "volumes": []}


def test_keyboard_interrupt_mid_run_removes_everything(
    docker_client, env_image, base_image, tmp_path, monkeypatch
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(docker.models.containers.Container, "wait", interrupted)
    target = unique_target("engine-ctrlc")
    with pytest.raises(KeyboardInterrupt):
        DockerEngine().run(pod_plan(target, env_image, base_image), ProbeRequest(scope=SCOPE), 60)
    assert leftovers(docker_client, target) == {"containers": [], "volumes": []}
    assert list(tmp_path.iterdir()) == []


WORKER_THREAD_RUN = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
from conformance.engines.docker import DockerEngine
from conformance.plan import LaunchPlan
from conformance.runner import ProbeRequest

plan = LaunchPlan.model_validate_json(sys.argv[1])
engine = DockerEngine()
with ThreadPoolExecutor(max_workers=1) as pool:
    pool.submit(engine.run, plan, ProbeRequest(scope={}), 300).result()
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_to_a_process_running_the_engine_in_a_worker_thread_removes_everything(
    docker_client, base_image, tmp_path, signum
):
    target = unique_target("engine-signal")
    plan = single_plan(target, base_image, entrypoint=["sh", "-c", "exec sleep 600"])
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER_THREAD_RUN, plan.model_dump_json()],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not leftovers(docker_client, target)["containers"]:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the run never started its container"
            time.sleep(0.1)
        while (
            docker_client.api.containers(
                filters={"label": f"org.parity.target={target}", "status": "running"}
            )
            == []
        ):
            assert time.monotonic() < deadline, "the container never started"
            time.sleep(0.1)
        process.send_signal(signum)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert leftovers(docker_client, target) == {"containers": [], "volumes": []}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode", ["bridge", "default", "my-network", ""])
def test_only_sandboxed_network_modes_are_accepted(mode):
    with pytest.raises(ValueError, match="parity allows none, host, container"):
        checked_network_mode(mode)


def test_plans_cannot_ask_for_the_default_bridge():
    with pytest.raises(ValueError):
        LaunchPlan.model_validate(
            json.loads(single_plan("t", "img").model_dump_json()) | {"network": "bridge"}
        )
