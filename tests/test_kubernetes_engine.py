"""`engine: kubernetes` against a fake API server that plays kubelet (tests/fake_kube_apiserver.py).

No cluster exists here, so what is verified is the engine's side of the contract through the real client
code path (a generated kubeconfig, REST calls, chunked watches, logs): what reaches the API server, what
comes back, what is deleted on every path, and how each failure is reported.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conformance import runner
from conformance.cli import cli
from conformance.config import load_config
from conformance.engines.docker import PROBE_COMMAND
from conformance.engines.kubernetes import unique_pod_name
from conformance.engines.reaper import LABEL_RUN, LIVE_RUNS
from conformance.errors import BadInput, InfrastructureError
from conformance.platforms import kubernetes as kubernetes_adapter
from conformance.snapshot import PROBE_PATH
from tests.fake_kube_apiserver import FakeCluster, FakeImage, Refusal

IMAGE = "registry.example/train:1"
KEY = b"k" * 32
IMAGES = {
    # a compat entrypoint: exports something, then execs its arguments (the pod's args)
    IMAGE: FakeImage(
        entrypoint=["sh", "-c", 'export PARITY_TEST_ENTRYPOINT=ran; exec "$@"', "entrypoint"],
        cmd=["python3", "-c", "print('the real workload')"],
    ),
    "registry.example/broken:1": FakeImage(
        entrypoint=[
            "sh",
            "-c",
            'echo "cannot fetch credentials" > /dev/termination-log; echo "compat: fatal error" >&2; exit 7',
            "entrypoint",
        ]
    ),
    "registry.example/slow:1": FakeImage(entrypoint=["sh", "-c", 'sleep 30; exec "$@"', "entrypoint"]),
    "registry.example/statsd:1": FakeImage(entrypoint=["sleep", "30"]),
}
POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: trainer
  labels: {app: trainer}
  annotations: {team: ml}
spec:
  containers:
  - name: main
    image: registry.example/train:1
    env:
    - {name: LEARNING_RATE, value: "0.1"}
"""
JOB = """\
apiVersion: batch/v1
kind: Job
metadata: {name: train}
spec:
  template:
    metadata: {labels: {app: trainer}}
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: registry.example/train:0
        resources: {limits: {cpu: 1}}
"""
CONFIG_MAP_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: trainer}
spec:
  serviceAccountName: trainer
  containers:
  - name: main
    image: registry.example/train:1
    env:
    - name: LR
      valueFrom: {configMapKeyRef: {name: hyper, key: lr}}
"""
RESOURCES = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: hyper}
data: {lr: "0.25"}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: trainer}
"""


@pytest.fixture
def cluster():
    with FakeCluster(IMAGES) as fake:
        yield fake


def write_config(
    tmp_path: Path,
    cluster: FakeCluster,
    manifest: str = POD,
    *,
    image: str = IMAGE,
    engine_options: dict | None = None,
    options: dict | None = None,
    resources: str | None = None,
    timeout: float = 20,
    kubeconfig_option: bool = True,
) -> Path:
    (tmp_path / "pod.yaml").write_text(manifest, encoding="utf-8")
    cluster.write_kubeconfig(tmp_path / "kubeconfig")
    target = {
        "platform": "kubernetes",
        "engine": "kubernetes",
        "image": image,
        "spec": "pod.yaml",
        "options": options or {},
        "engine_options": {
            **({"kubeconfig": "kubeconfig"} if kubeconfig_option else {}),
            **(engine_options or {}),
        },
        "timeout_seconds": timeout,
    }
    if resources is not None:
        (tmp_path / "resources.yaml").write_text(resources, encoding="utf-8")
        target["resources"] = ["resources.yaml"]
    config = tmp_path / "parity.yaml"
    config.write_text(
        yaml.safe_dump({"probe": {"send_test_metric": False}, "targets": {"k8s": target}}), encoding="utf-8"
    )
    return config


def run(config: Path) -> runner.RunOutcome:
    return runner.run_target(load_config(config), "k8s", KEY)


def failure(config: Path, error=InfrastructureError):
    with pytest.raises(error) as caught:
        run(config)
    return caught.value


def assert_nothing_left(cluster: FakeCluster, *kept: str) -> None:
    """Everything the run created is gone (`kept`: names of objects that existed before it)."""
    for plural in ("pods", "secrets", "configmaps", "serviceaccounts", "services"):
        left = [obj["metadata"]["name"] for obj in cluster.stored(plural)]
        assert [name for name in left if name not in kept] == [], plural
    assert all(deletion["propagationPolicy"] == "Background" for deletion in cluster.deletions)
    assert cluster.running_processes() == 0


def pod_running(cluster: FakeCluster) -> bool:
    return any(pod.get("status", {}).get("phase") == "Running" for pod in cluster.stored("pods"))


def sent(cluster: FakeCluster, plural: str) -> dict:
    (request,) = cluster.received("POST", plural)
    return request["body"]


# -- the pod the API server receives -------------------------------------------------------------------


def test_the_pod_sent_is_the_users_pod_with_only_the_probe_added_and_its_snapshot_comes_back(
    tmp_path, cluster
):
    config = write_config(tmp_path, cluster)
    outcome = run(config)

    pod = sent(cluster, "pods")
    name = pod["metadata"]["name"]
    run_id = pod["metadata"]["labels"][LABEL_RUN]
    assert re.fullmatch(r"trainer-parity-[0-9a-f]{8}", name) and run_id.startswith(name[-8:])
    expected = copy.deepcopy(runner.build_plan(load_config(config), "k8s").spec)
    expected["metadata"]["name"] = name
    expected["metadata"]["labels"][LABEL_RUN] = run_id
    expected["spec"]["restartPolicy"] = "Never"
    volume = pod["spec"]["volumes"][-1]
    assert volume["secret"]["secretName"] == f"parity-{run_id}"
    expected["spec"]["volumes"] = [volume]
    container = expected["spec"]["containers"][0]
    container["volumeMounts"] = [{"name": volume["name"], "mountPath": "/.parity", "readOnly": True}]
    container["args"] = PROBE_COMMAND
    assert pod == expected

    secret = sent(cluster, "secrets")
    files = {key: base64.b64decode(value) for key, value in secret["data"].items()}
    assert files["parity_probe.py"] == PROBE_PATH.read_bytes()
    probe_config = json.loads(files["config.json"])
    assert (probe_config["hash_key"], probe_config["label"]) == (KEY.hex(), "k8s")
    assert probe_config["exclude_paths"] == ["/.parity"]
    assert secret["metadata"]["labels"][LABEL_RUN] == run_id and secret["immutable"] is True

    variables = outcome.snapshot["env"]["vars"]
    assert variables["PARITY_TEST_ENTRYPOINT"] == "ran"  # the image's entrypoint ran the probe
    assert (variables["LEARNING_RATE"], variables["HOSTNAME"]) == ("0.1", name)
    assert "/.parity" in outcome.snapshot["excluded"]["paths"]
    assert outcome.exit_code == 0 and outcome.image_id.startswith("registry.example/sha256:")
    assert outcome.snapshot["harness"]["engine"] == "kubernetes"
    assert (
        outcome.snapshot["harness"]["metadata"] | {"pod": name, "namespace": "default", "node": "fake-node"}
        == (outcome.snapshot["harness"]["metadata"])
    )

    assert [(d["plural"], d["name"]) for d in cluster.deletions] == [
        ("pods", name),
        ("secrets", f"parity-{run_id}"),
    ]
    assert_nothing_left(cluster)


@pytest.mark.parametrize(
    ("options", "expected_command", "expected_args", "entrypoint_ran"),
    [
        # default (args): the pod's command stays the entrypoint and runs the probe
        ({}, ["sh", "-c", 'export FROM_POD_COMMAND=1; exec "$@"', "pod-command"], PROBE_COMMAND, True),
        # probe_replaces: command — the pod's command is the workload itself
        ({"probe_replaces": "command"}, PROBE_COMMAND, None, False),
    ],
)
def test_the_probe_replaces_args_or_the_whole_command_as_the_adapter_says(
    tmp_path, cluster, options, expected_command, expected_args, entrypoint_ran
):
    manifest = POD.replace(
        "    env:\n",
        "    command: [sh, -c, 'export FROM_POD_COMMAND=1; exec \"$@\"', pod-command]\n    env:\n",
    )
    outcome = run(write_config(tmp_path, cluster, manifest, options=options))
    container = sent(cluster, "pods")["spec"]["containers"][0]
    assert container["command"] == expected_command
    assert container.get("args") == expected_args
    assert ("FROM_POD_COMMAND" in outcome.snapshot["env"]["vars"]) is entrypoint_ran
    assert_nothing_left(cluster)


def test_the_plan_carries_the_pod_its_controller_would_create_with_the_targets_image(tmp_path, cluster):
    config = write_config(tmp_path, cluster, JOB, image="registry.example/train:2")
    spec = runner.build_plan(load_config(config), "k8s").spec
    labels = spec["metadata"]["labels"]
    assert spec["metadata"]["name"].startswith("train-") and labels["job-name"] == "train"
    assert labels["app"] == "trainer" and labels["batch.kubernetes.io/controller-uid"]
    assert spec["spec"] == {
        "restartPolicy": "Never",
        "containers": [
            {"name": "main", "image": "registry.example/train:2", "resources": {"limits": {"cpu": "1"}}}
        ],
    }  # as written: nothing the API server or kubelet would add


def test_a_cluster_plan_needs_no_docker_and_refuses_nothing_the_cluster_can_run(tmp_path, cluster):
    def no_docker(_images):
        raise AssertionError("engine: kubernetes must not read images from a local Docker daemon")

    manifest = CONFIG_MAP_POD.replace("spec:\n", "spec:\n  hostPID: true\n")  # no ConfigMap, no account
    loaded = load_config(write_config(tmp_path, cluster, manifest))
    plan = kubernetes_adapter.build_plan("k8s", loaded.config.targets["k8s"], loaded, image_users=no_docker)
    assert plan.spec["spec"]["hostPID"] is True and plan.main.name == "main"
    emulated = loaded.config.targets["k8s"].model_copy(update={"engine": "docker", "engine_options": {}})
    with pytest.raises(BadInput, match="hostPID: not emulated"):
        kubernetes_adapter.build_plan("k8s", emulated, loaded, image_users=no_docker)


@pytest.mark.parametrize("base", ["trainer", "a" * 70, "x" * 46 + "-" + "y" * 20])
def test_the_pods_name_is_the_runs_own_and_whole_in_its_hostname(base):
    name = unique_pod_name(base, "0123456789abcdef" * 2)
    assert name.endswith("-parity-01234567") and name.startswith(base[:7])
    assert len(name) <= 63  # kubelet cuts HOSTNAME at 63 characters
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)


# -- results and failures ------------------------------------------------------------------------------


def test_the_workload_container_ends_the_run_while_a_sidecar_keeps_running(tmp_path, cluster):
    manifest = POD + "  - {name: statsd, image: registry.example/statsd:1}\n"
    started = time.monotonic()
    outcome = run(write_config(tmp_path, cluster, manifest))
    assert outcome.snapshot["env"]["vars"]["LEARNING_RATE"] == "0.1"
    assert time.monotonic() - started < 10  # not the sidecar's 30 s
    assert_nothing_left(cluster)  # the sidecar's process went with the pod


def test_a_workload_that_fails_is_exit_3_with_its_termination_message_and_last_log_lines(tmp_path, cluster):
    error = failure(write_config(tmp_path, cluster, image="registry.example/broken:1"))
    assert "exited with code 7 (Error) without a complete snapshot" in error.problem
    assert "termination message: cannot fetch credentials" in error.problem
    assert "compat: fatal error" in error.details
    assert_nothing_left(cluster)


def test_an_image_that_cannot_be_pulled_ends_the_run_at_once(tmp_path, cluster):
    started = time.monotonic()
    error = failure(write_config(tmp_path, cluster, image="registry.example/missing:1", timeout=60))
    assert time.monotonic() - started < 5
    assert re.search(
        r"container main of pod \S+ cannot start .*: (ErrImagePull|ImagePullBackOff)", error.problem
    )
    assert "pull" in error.remedy
    assert_nothing_left(cluster)


def test_a_missing_config_map_ends_the_run_at_once_and_says_how_to_create_it(tmp_path, cluster):
    started = time.monotonic()
    config = write_config(tmp_path, cluster, CONFIG_MAP_POD, resources=RESOURCES, timeout=60)
    cluster.create("serviceaccounts", "default", {"metadata": {"name": "trainer"}})
    error = failure(config)
    assert time.monotonic() - started < 5
    assert 'CreateContainerConfigError: configmap "hyper" not found' in error.problem
    assert "apply_resources: true" in error.remedy
    assert_nothing_left(cluster, "trainer")


def test_apply_resources_creates_the_targets_resources_for_the_run_and_deletes_them(tmp_path, cluster):
    config = write_config(
        tmp_path, cluster, CONFIG_MAP_POD, resources=RESOURCES, engine_options={"apply_resources": True}
    )
    outcome = run(config)
    assert outcome.snapshot["env"]["vars"]["LR"] == "0.25"
    run_id = sent(cluster, "pods")["metadata"]["labels"][LABEL_RUN]
    config_map = sent(cluster, "configmaps")
    assert config_map == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "hyper", "namespace": "default", "labels": {LABEL_RUN: run_id}},
        "data": {"lr": "0.25"},
    }
    created = [r["plural"] for r in cluster.requests if r["method"] == "POST"]
    assert created == ["serviceaccounts", "configmaps", "secrets", "pods"]  # accounts first, the pod last
    assert sorted(d["plural"] for d in cluster.deletions) == [
        "configmaps",
        "pods",
        "secrets",
        "serviceaccounts",
    ]
    assert_nothing_left(cluster)


def test_apply_resources_never_overwrites_or_deletes_an_existing_object(tmp_path, cluster):
    config = write_config(
        tmp_path, cluster, CONFIG_MAP_POD, resources=RESOURCES, engine_options={"apply_resources": True}
    )
    cluster.create("configmaps", "default", {"metadata": {"name": "hyper"}, "data": {"lr": "theirs"}})
    error = failure(config)
    assert "cannot create ConfigMap default/hyper: it already exists" in error.problem
    assert "apply_resources: false" in error.remedy
    assert [c["data"] for c in cluster.stored("configmaps")] == [{"lr": "theirs"}]
    assert cluster.received("POST", "pods") == []
    assert [d["plural"] for d in cluster.deletions] == ["serviceaccounts"]  # only what this run made
    assert_nothing_left(cluster, "hyper")


def test_a_run_past_its_timeout_is_exit_3_and_leaves_nothing(tmp_path, cluster):
    started = time.monotonic()
    error = failure(write_config(tmp_path, cluster, image="registry.example/slow:1", timeout=1))
    assert time.monotonic() - started < 5
    assert re.search(r"did not finish within 1s .*last seen: phase Running; main running", error.problem)
    assert "timeout_seconds" in error.remedy
    assert_nothing_left(cluster)


def test_a_watch_that_expired_resumes_from_a_fresh_list(tmp_path, cluster):
    cluster.expire_next_watch = True
    outcome = run(write_config(tmp_path, cluster))
    assert outcome.exit_code == 0
    reads = [
        ("watch" in r["query"]) for r in cluster.received("GET", "pods") if not r["path"].endswith("/log")
    ]
    assert reads[:3] == [True, False, True]  # watch → 410 Gone → list → watch from the listed version
    assert_nothing_left(cluster)


# -- errors of the interface ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine_options", "message"),
    [
        ({"nmespace": "ml"}, "targets.k8s.engine_options.nmespace: unknown field"),
        ({"in_cluster": True}, "targets.k8s.engine_options.in_cluster: cannot be combined with kubeconfig"),
        ({"watch_timeout_seconds": 0}, "targets.k8s.engine_options.watch_timeout_seconds: Input should be"),
        ({"namespace": "Not_A_Namespace"}, "targets.k8s.engine_options.namespace: String should match"),
        ({"kubeconfig": "absent.yaml"}, "targets.k8s.engine_options.kubeconfig: no such file"),
        ({"context": "prod"}, "targets.k8s.engine_options.context: no context 'prod' in the kubeconfig"),
    ],
)
def test_bad_engine_options_are_exit_2_naming_the_option(tmp_path, cluster, engine_options, message):
    config = write_config(tmp_path, cluster, engine_options=engine_options)
    result = CliRunner().invoke(cli, ["run", "-t", "k8s", "-c", str(config)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert cluster.requests == []


def test_a_sagemaker_target_cannot_use_the_kubernetes_engine(tmp_path, cluster):
    config = write_config(tmp_path, cluster)
    document = yaml.safe_load(config.read_text())
    document["targets"]["k8s"]["platform"] = "sagemaker"
    config.write_text(yaml.safe_dump(document))
    with pytest.raises(BadInput, match=r"targets\.k8s\.engine: engine 'kubernetes' runs pods"):
        runner.engine_class(load_config(config), "k8s").for_target(load_config(config), "k8s")


@pytest.mark.parametrize(
    ("engine_options", "refusal", "problem", "remedy"),
    [
        (
            {"context": "stale-token"},
            None,
            "rejected parity's credentials .* \\(401 Unauthorized",
            "update-kubeconfig",
        ),
        (
            {},
            Refusal(
                "POST", "pods", 403, "Forbidden", 'pods is forbidden: User "ci" cannot create resource "pods"'
            ),
            'not allowed to create Pod default/trainer-parity-\\w+ .*User "ci" cannot create',
            "kubectl auth can-i create pods -n default",
        ),
        ({"namespace": "absent"}, None, "namespace absent does not exist", "kubectl create namespace absent"),
    ],
)
def test_api_refusals_are_exit_3_saying_what_to_do(
    tmp_path, cluster, engine_options, refusal, problem, remedy
):
    if refusal:
        cluster.refusals.append(refusal)
    error = failure(write_config(tmp_path, cluster, engine_options=engine_options))
    assert re.search(problem, error.problem), error.problem
    assert remedy in error.remedy
    assert_nothing_left(cluster)


def test_an_invalid_field_of_the_users_manifest_is_exit_2_at_that_field(tmp_path, cluster):
    cause = {"field": "spec.containers[0].resources.limits", "message": "Invalid value: must be less than 64"}
    cluster.refusals.append(Refusal("POST", "pods", 422, "Invalid", "Pod is invalid", [cause]))
    error = failure(write_config(tmp_path, cluster, JOB), BadInput)
    assert error.source == str(tmp_path / "pod.yaml")
    assert error.field == "spec.template.spec.containers[0].resources.limits"
    assert error.problem == "Invalid value: must be less than 64"
    assert_nothing_left(cluster)


def test_an_unreachable_api_server_is_exit_3(tmp_path, cluster):
    config = write_config(tmp_path, cluster)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(kubeconfig.read_text().replace(cluster.url, f"http://127.0.0.1:{port}"))
    error = failure(config)
    assert f"cannot reach the Kubernetes API server at http://127.0.0.1:{port}" in error.problem
    assert "kubectl cluster-info" in error.remedy


# -- through the command, and interrupted --------------------------------------------------------------


def test_parity_run_writes_the_snapshot_of_a_pod_on_the_cluster(tmp_path, cluster):
    config = write_config(tmp_path, cluster)
    result = CliRunner().invoke(
        cli, ["run", "-t", "k8s", "-c", str(config), "--out", str(tmp_path / "k8s.json")]
    )
    assert result.exit_code == 0, result.output
    snapshot = json.loads((tmp_path / "k8s.json").read_text())
    assert snapshot["harness"]["engine"] == "kubernetes"
    assert snapshot["harness"]["metadata"]["pod"] == sent(cluster, "pods")["metadata"]["name"]
    assert_nothing_left(cluster)


@pytest.mark.parametrize(
    ("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM)]
)
def test_ctrl_c_or_sigterm_deletes_the_pod_and_its_secret(tmp_path, cluster, signum, exit_code):
    # the kubeconfig comes from $KUBECONFIG here, as it would for kubectl
    config = write_config(tmp_path, cluster, image="registry.example/slow:1", kubeconfig_option=False)
    command = [
        sys.executable,
        "-c",
        "from conformance.cli import main; main()",
        "run",
        "-t",
        "k8s",
        "-c",
        str(config),
    ]
    environment = {**os.environ, "KUBECONFIG": str(tmp_path / "kubeconfig")}
    process = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        cluster.wait_for(lambda: pod_running(cluster), timeout=30)
        process.send_signal(signum)
        assert process.wait(timeout=30) == exit_code, process.stderr.read()
    finally:
        process.kill()
        process.wait()
    assert_nothing_left(cluster)


def test_a_run_on_a_worker_thread_is_reaped_on_interrupt_and_stops(tmp_path, cluster):
    config = write_config(tmp_path, cluster, image="registry.example/slow:1")
    errors: list[BaseException] = []

    def target():
        try:
            run(config)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            errors.append(exc)

    worker = threading.Thread(target=target)
    worker.start()
    cluster.wait_for(lambda: pod_running(cluster))
    time.sleep(0.3)  # the worker now waits on its watch, which only a change of the pod wakes
    LIVE_RUNS.reap()  # what the SIGINT/SIGTERM handler does on the main thread
    assert cluster.stored("pods") == [] and cluster.stored("secrets") == []  # deleted by the reaper itself
    worker.join(timeout=15)
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], InfrastructureError)
    assert "was cancelled" in errors[0].problem
    assert_nothing_left(cluster)
