"""Manifests are parsed as strictly as the API server does; workloads become their controllers' pods."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from conformance.cli import cli
from conformance.errors import BadInput
from tests.kubernetes_support import IMAGE, env_of, plan_for, pod, write_target


def bad_input(tmp_path, manifest: str, resources: str | None = None, options: dict | None = None) -> BadInput:
    with pytest.raises(BadInput) as caught:
        plan_for(tmp_path, manifest, resources, options)
    return caught.value


@pytest.mark.parametrize(
    ("containers", "field", "problem"),
    [
        (
            f"- name: main\n  image: {IMAGE}\n  imagePullPolcy: Always\n",
            "spec.containers[0].imagePullPolcy",
            "unknown field",
        ),
        # the client models also accept Python names; the API does not
        (f"- name: main\n  image: {IMAGE}\n  env_from: []\n", "spec.containers[0].env_from", "unknown field"),
        (
            f"- name: main\n  image: {IMAGE}\n  env: [{{name: N, value: 3}}]\n",
            "spec.containers[0].env[0].value",
            "valid string",
        ),
        (
            f"- name: main\n  image: {IMAGE}\n  ports: [{{containerPort: http}}]\n",
            "spec.containers[0].ports[0].containerPort",
            "valid integer",
        ),
        (f"- image: {IMAGE}\n", "spec.containers[0].name", "required"),
    ],
)
def test_unknown_fields_and_wrong_types_name_the_field(tmp_path, containers, field, problem):
    error = bad_input(tmp_path, pod(containers))
    assert error.source == str(tmp_path / "pod.yaml")
    assert error.field == field
    assert problem in error.problem


def test_quantities_may_be_yaml_numbers_as_the_api_allows(tmp_path):
    containers = f"- name: main\n  image: {IMAGE}\n  resources: {{limits: {{cpu: 2, memory: 1073741824}}}}\n"
    main = plan_for(tmp_path, pod(containers)).main
    assert (main.cpu_limit_millicores, main.memory_limit_bytes) == (2000, 2**30)


def test_bad_quantity_names_the_field(tmp_path):
    containers = f"- name: main\n  image: {IMAGE}\n  resources: {{limits: {{cpu: two}}}}\n"
    error = bad_input(tmp_path, pod(containers))
    assert error.field == "spec.containers[0].resources.limits.cpu"


def test_label_keys_with_dots_are_quoted_in_field_paths(tmp_path):
    error = bad_input(tmp_path, pod(metadata="labels: {app.kubernetes.io/name: 3}\n"))
    assert error.field == "metadata.labels['app.kubernetes.io/name']"


def test_errors_in_a_multi_document_file_say_which_document(tmp_path):
    manifest = pod() + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: 1}\n"
    error = bad_input(tmp_path, manifest)
    assert error.field == "[document 2] data.k"


@pytest.mark.parametrize(
    ("manifest", "problem"),
    [
        (
            "apiVersion: apps/v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n",
            "must be apiVersion 'v1'",
        ),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "expected exactly one Pod"),
        ("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\n", "kind 'DaemonSet' is not understood"),
        ("key: [unclosed\n", "invalid YAML"),
    ],
)
def test_documents_that_are_not_a_workload(tmp_path, manifest, problem):
    assert problem in bad_input(tmp_path, manifest).problem


def test_inert_kinds_are_accepted_beside_the_pod(tmp_path):
    manifest = pod() + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ml}\n"
    assert plan_for(tmp_path, manifest).main.name == "main"


def test_duplicate_resources_are_refused(tmp_path):
    resources = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
    )
    assert "declared twice" in bad_input(tmp_path, pod(), resources).problem


def test_bad_base64_in_a_secret(tmp_path):
    resources = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: '***'}\n"
    error = bad_input(tmp_path, pod(), resources)
    assert (error.source, error.field) == (str(tmp_path / "resources.yaml"), "data.k")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"bogus": 1}, "targets.k8s.options.bogus"),
        ({"identity": "magic"}, "targets.k8s.options.identity"),
        ({"pod_ips": ["10.0.0.1", "10.0.0.2"]}, "targets.k8s.options.pod_ips"),
        ({"container": "nope"}, "targets.k8s.options.container"),
        ({"namespace": "other"}, "targets.k8s.options.namespace"),
    ],
)
def test_bad_options_name_the_option(tmp_path, options, field):
    error = bad_input(tmp_path, pod(metadata="namespace: ml\n"), options=options)
    assert error.source == str(tmp_path / "parity.yaml")
    assert error.field == field


def test_the_workload_container_is_the_first_or_the_named_one(tmp_path):
    containers = f"- name: agent\n  image: {IMAGE}\n- name: train\n  image: {IMAGE}\n"
    assert plan_for(tmp_path, pod(containers)).main.name == "agent"
    plan = plan_for(tmp_path, pod(containers), options={"container": "train"})
    assert plan.main.name == "train" and [s.name for s in plan.sidecars] == ["agent"]


def test_init_containers_and_native_sidecars(tmp_path):
    spec = f"""\
    initContainers:
    - {{name: vault-init, image: {IMAGE}}}
    - {{name: proxy, image: {IMAGE}, restartPolicy: Always}}
    """
    containers = f"- name: main\n  image: {IMAGE}\n- name: statsd\n  image: {IMAGE}\n"
    plan = plan_for(tmp_path, pod(containers, spec=spec))
    assert [c.name for c in plan.init_containers] == ["vault-init"]
    assert [c.name for c in plan.sidecars] == ["proxy", "statsd"]
    assert {c.role for c in plan.sidecars} == {"sidecar"}


def test_probe_replaces_args_or_the_whole_command(tmp_path):
    containers = f"- name: main\n  image: {IMAGE}\n  command: [python, train.py]\n  args: [--lr, '0.1']\n"
    args_mode = plan_for(tmp_path, pod(containers)).main
    assert (args_mode.entrypoint, args_mode.command) == (["python", "train.py"], ["--lr", "0.1"])
    command_mode = plan_for(tmp_path, pod(containers), options={"probe_replaces": "command"}).main
    assert (
        command_mode.entrypoint == []
    )  # the pod's command replaced the image ENTRYPOINT; the probe replaces it


def workload(kind: str, api: str, spec: str = "") -> str:
    """A workload whose pod template runs IMAGE; `spec` adds fields to the workload's spec."""
    if api == "apps/v1":
        spec = "selector: {matchLabels: {app: t}}\n" + spec
    extra = "".join(f"  {line}\n" for line in spec.splitlines())
    return (
        f"apiVersion: {api}\nkind: {kind}\nmetadata: {{name: train}}\nspec:\n{extra}"
        f"  template:\n    metadata: {{labels: {{app: t}}}}\n"
        f"    spec: {{restartPolicy: Never, containers: [{{name: main, image: {IMAGE}}}]}}\n"
    )


def test_deployment_pods_are_named_like_the_replicaset_controller_names_them(tmp_path):
    plan = plan_for(tmp_path, workload("Deployment", "apps/v1"))
    name = plan.metadata["pod"]
    assert re.fullmatch(r"train-[456789bcdf]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}", name)
    assert plan.hostname == name
    assert plan.metadata["workload"] == "Deployment/train"
    assert name == plan_for(tmp_path, workload("Deployment", "apps/v1")).metadata["pod"]  # stable across runs


def test_statefulset_pod_has_ordinal_hostname_and_subdomain(tmp_path):
    plan = plan_for(tmp_path, workload("StatefulSet", "apps/v1", "serviceName: workers\n"))
    assert plan.metadata["pod"] == plan.hostname == "train-0"
    hosts = plan.volume("kubelet.pod-files").entries[0].content
    assert b"10.0.1.23\ttrain-0.workers.default.svc.cluster.local\ttrain-0\n" in hosts


def test_indexed_job_gets_its_completion_index(tmp_path):
    plan = plan_for(tmp_path, workload("Job", "batch/v1", "completionMode: Indexed\ncompletions: 2\n"))
    assert plan.hostname == "train-0"
    assert re.fullmatch(r"train-0-[a-z0-9]{5}", plan.metadata["pod"])
    assert env_of(plan.main)["JOB_COMPLETION_INDEX"] == "0"


def test_cronjob_pod_belongs_to_a_job_named_after_its_schedule(tmp_path):
    manifest = (
        f"apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: nightly}}\nspec:\n  schedule: '0 * * * *'\n"
        f"  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n"
        f"          containers: [{{name: main, image: {IMAGE}}}]\n"
    )
    plan = plan_for(tmp_path, manifest)
    assert re.fullmatch(r"nightly-\d+", plan.metadata["controller.job"])
    assert plan.metadata["pod"].startswith(plan.metadata["controller.job"] + "-")


def test_cli_run_exits_2_with_one_line_naming_manifest_and_field(tmp_path):
    containers = f"""\
    - name: main
      image: {IMAGE}
      env:
      - {{name: X, valueFrom: {{configMapKeyRef: {{name: hyper, key: lr}}}}}}
    """
    config = write_target(tmp_path, pod(containers))
    result = CliRunner().invoke(cli, ["run", "-c", str(config), "--target", "k8s"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"parity: {tmp_path / 'pod.yaml'}: spec.containers[0].env[0].valueFrom.configMapKeyRef: "
        "ConfigMap 'hyper' not found"
    )
