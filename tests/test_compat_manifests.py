"""The example's manifests describe one workload: the pod, the training job and the AWS seed must agree.

A drift here (a variable added to the pod but not to the seed, a hyperparameter changed on one side) would
make the demo report a parity bug that is really a mistake in the example.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.compat_image import COMPAT_IMAGE_DIR, load_breaks, load_seed
from conformance.config import load_config
from tests.compat_support import configmap, load_module, manifest, pod_environment, typed_hyperparameters

SAGEMAKER_ENVIRONMENT_CAP = 100  # sagemaker-contract.md §3, CreateTrainingJob Environment
HYPERPARAMETER_VALUE_LIMIT = 2500


@pytest.fixture(scope="module")
def seed():
    return load_seed()


@pytest.fixture(scope="module")
def document(seed):
    bootstrap = load_module("bootstrap")
    return bootstrap.parse_document(seed.objects["compat/bootstrap.json"], "seed.yaml:compat/bootstrap.json")


@pytest.fixture(scope="module")
def job():
    return manifest("sagemaker/training-job.yaml")


def test_the_pod_has_more_variables_than_a_job_request_can_carry(job):
    pod = manifest("kubernetes/pod.yaml")
    assert pod["spec"]["containers"][0]["envFrom"], "the bulk of the variables must come from a ConfigMap"
    assert len(pod_environment()) > SAGEMAKER_ENVIRONMENT_CAP
    assert len(job["Environment"]) <= SAGEMAKER_ENVIRONMENT_CAP


def test_the_job_and_the_seed_together_give_user_code_every_pod_variable(seed, document, job):
    fetched = json.loads(seed.object_body("compat/env.json"))
    for name, value in seed.parameters.items():
        assert name.startswith("/parity-demo/env/")
        fetched[name.rsplit("/", 1)[1]] = value
    on_sagemaker = {
        name: value for name, value in job["Environment"].items() if not name.startswith("COMPAT_")
    }
    assert not set(on_sagemaker) & set(fetched), "a variable is both in the job request and fetched"
    on_sagemaker.update(fetched)
    on_sagemaker.update(document.metrics.env)
    secret = seed.secrets["parity-demo/app-credentials"]
    on_sagemaker.update({entry.name: secret[entry.key] for entry in document.secret_env})

    expected = pod_environment()
    expected["API_TOKEN"] = manifest("kubernetes/secret.yaml")["stringData"]["api-token"]
    assert on_sagemaker == expected


def test_typed_hyperparameters_are_the_same_document_on_both_sides(seed, document, job):
    typed = typed_hyperparameters()
    assert (
        seed.object_body("compat/hyperparameters.json").decode()
        == configmap("train-hyperparameters")["data"]["hyperparameters.json"]
    )
    assert document.hyperparameters.mount_path / document.hyperparameters.file_name == Path(
        "/etc/app/config/hyperparameters.json"
    )
    # What the SageMaker SDK sends for them: every value a string, JSON-encoded unless it already is one.
    assert job["HyperParameters"] == {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in typed.items()
    }
    assert all(
        isinstance(value, str) and len(value) <= HYPERPARAMETER_VALUE_LIMIT
        for value in job["HyperParameters"].values()
    )
    assert {type(value).__name__ for value in typed.values()} >= {
        "int",
        "float",
        "bool",
        "list",
        "dict",
        "NoneType",
    }


def test_spark_defaults_and_secrets_match_the_pod(seed, document):
    assert (
        seed.object_body("compat/spark-defaults.conf").decode()
        == configmap("spark-defaults")["data"]["spark-defaults.conf"]
    )
    assert seed.secrets["parity-demo/app-credentials"] == manifest("kubernetes/secret.yaml")["stringData"]


def test_the_bootstrap_document_is_the_pods_spec_translated(document):
    pod = manifest("kubernetes/pod.yaml")
    trainer = pod["spec"]["containers"][0]
    pod_context = {**pod["spec"]["securityContext"], **trainer["securityContext"]}
    context = document.security_context
    assert (context.run_as_user, context.run_as_group, context.fs_group, context.run_as_non_root) == (
        pod_context["runAsUser"],
        pod_context["runAsGroup"],
        pod_context["fsGroup"],
        pod_context["runAsNonRoot"],
    )
    assert context.allow_privilege_escalation is pod_context["allowPrivilegeEscalation"]
    assert list(context.drop_capabilities) == pod_context["capabilities"]["drop"]

    mounts = {mount["name"]: mount["mountPath"] for mount in trainer["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    (secret_volume,) = document.secret_volumes
    assert str(secret_volume.mount_path) == mounts["app-credentials"]
    assert secret_volume.default_mode == volumes["app-credentials"]["secret"]["defaultMode"]
    assert str(document.hyperparameters.mount_path) == mounts["hyperparameters"]
    assert str(document.spark.conf_dir) == mounts["spark-defaults"]
    env_entries = {entry["name"]: entry for entry in trainer["env"]}
    for entry in document.secret_env:
        assert env_entries[entry.name]["valueFrom"]["secretKeyRef"]["key"] == entry.key


def test_parity_yaml_runs_the_pod_against_the_training_job():
    loaded = load_config(COMPAT_IMAGE_DIR / "parity.yaml")
    targets = loaded.config.targets
    assert {target.platform for target in targets.values()} == {"kubernetes", "sagemaker"}
    for target in targets.values():
        assert loaded.resolve(target.spec).is_file()
        assert all(loaded.resolve(resource).is_file() for resource in target.resources)
    probe = loaded.config.probe
    assert "/etc/app/config/hyperparameters.json" in probe.hyperparameter_paths
    assert probe.secret_files == ["/etc/app/secrets/*"]


def test_every_break_is_one_the_entrypoint_knows():
    bootstrap = load_module("bootstrap")
    catalog = load_breaks()
    assert list(catalog) == bootstrap.known_breaks(COMPAT_IMAGE_DIR / "breaks.json")
    assert set(catalog) == {
        "hyperparameters-as-strings",
        "statsd-not-rerouted",
        "credential-file-mode",
        "env-cap",
        "uid-home",
        "spark-conf-key-dropped",
    }
