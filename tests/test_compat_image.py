"""The reference compat image in Docker: its entrypoint leaves Kubernetes alone and makes SageMaker look like
the pod, and each COMPAT_BREAK breaks exactly the one thing it names.

SageMaker-looking runs use the host network to reach moto (server mode) and a metrics gateway on
127.0.0.1, and a local ECS-style credentials server through AWS_CONTAINER_CREDENTIALS_FULL_URI instead of
169.254.170.2. Every container is labelled with this run's id and removed by testcontainers.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest
from moto.server import ThreadedMotoServer
from testcontainers.core.container import DockerContainer

from conformance.compat_image import (
    COMPAT_IMAGE_DIR,
    Seed,
    build_compat_image,
    container_credentials_server,
    load_breaks,
    load_seed,
    seed_aws,
    source_digest,
)
from conformance.errors import BadInput
from tests.compat_support import manifest, pod_environment, typed_hyperparameters

TEST_TAG = "parity-compat:test"
RUN_ID = secrets.token_hex(6)
LABELS = {"org.parity.run": RUN_ID, "org.parity.role": "compat-image-test"}
METRIC_VARS = ("STATSD_HOST", "STATSD_PORT", "DD_AGENT_HOST", "DD_DOGSTATSD_PORT")
BOOTSTRAP_MISSING_SECRET = "compat/bootstrap-missing-secret.json"


def test_the_source_digest_covers_contents_exec_bits_the_ca_bundle_and_the_base(tmp_path):
    (tmp_path / "entrypoint").write_text("#!/bin/sh\n")
    files = ["entrypoint"]
    digest = source_digest(tmp_path, files, {}, "sha256:base")
    assert source_digest(tmp_path, files, {}, "sha256:base") == digest
    assert source_digest(tmp_path, files, {}, "sha256:other-base") != digest
    assert source_digest(tmp_path, files, {"build-ca/host-ca-bundle.crt": "PEM"}, "sha256:base") != digest
    (tmp_path / "entrypoint").chmod(0o755)
    executable = source_digest(tmp_path, files, {}, "sha256:base")
    assert executable != digest
    (tmp_path / "entrypoint").write_text('#!/bin/sh\nexec "$@"\n')
    assert source_digest(tmp_path, files, {}, "sha256:base") not in (digest, executable)


def test_a_malformed_break_catalogue_is_bad_input_naming_the_field(tmp_path):
    catalog = json.loads((COMPAT_IMAGE_DIR / "breaks.json").read_text())
    catalog["breaks"][0]["category"] = "hyperparams"
    broken = tmp_path / "breaks.json"
    broken.write_text(json.dumps(catalog))
    with pytest.raises(BadInput) as caught:
        load_breaks(broken)
    assert caught.value.field == "breaks.0.category"
    assert caught.value.source == str(broken)


# Runs inside the container as user code would, and prints what it sees as one JSON line. argv[1] is a nonce
# for the StatsD datagram it sends where STATSD_HOST/STATSD_PORT point (only when they are set).
OBSERVE = r"""
import json, os, socket, sys
def status():
    with open("/proc/self/status") as stream:
        return {k: v.strip() for k, _, v in (line.partition(":") for line in stream)}
def describe(path):
    try:
        st = os.stat(path)
    except OSError as exc:
        return {"error": exc.strerror}
    info = {"mode": "%04o" % (st.st_mode & 0o7777), "uid": st.st_uid, "gid": st.st_gid,
            "link": os.readlink(path) if os.path.islink(path) else None}
    try:
        with open(path) as stream:
            info["content"] = stream.read()
    except OSError as exc:
        info["read_error"] = exc.strerror
    return info
def load(path, parse):
    try:
        with open(path) as stream:
            return parse(stream.read())
    except OSError as exc:
        return {"error": exc.strerror}
raw = open("/proc/self/environ", "rb").read()
env = dict(entry.decode().split("=", 1) for entry in raw.split(b"\0") if entry)
sent_to = None
if "STATSD_PORT" in env:
    target = (env.get("STATSD_HOST", "localhost"), int(env["STATSD_PORT"]))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(("compat.test:1|c|#nonce:" + sys.argv[1]).encode(), target)
    sent_to = "%s:%d" % target
st = status()
print(json.dumps({
    "argv": sys.argv[1:], "uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()),
    "cwd": os.getcwd(), "no_new_privs": st["NoNewPrivs"], "cap_bounding": st["CapBnd"],
    "cap_effective": st["CapEff"], "env": env, "metric_sent_to": sent_to,
    "secret_files": {name: describe("/etc/app/secrets/" + name) for name in ("db-password", "api-token")},
    "writable_dirs": [path for path in ("/etc/app/secrets", "/etc/app/config", "/opt/spark/conf")
                      if os.access(path, os.W_OK)],
    "hyperparameters": load("/etc/app/config/hyperparameters.json", json.loads),
    "spark": load(env.get("SPARK_CONF_DIR", "/opt/spark/conf") + "/spark-defaults.conf",
                  lambda text: [line.split(None, 1) for line in text.splitlines() if line.strip()]),
    "output_dirs": {path: describe(path)["uid"] for path in ("/opt/ml/model", "/opt/ml/output")
                    if os.path.isdir(path)},
}))
"""


@dataclass
class Completed:
    exit_code: int
    stdout: str
    stderr: str

    def observed(self) -> dict[str, Any]:
        assert self.exit_code == 0, self.stderr
        return json.loads(self.stdout.strip().splitlines()[-1])


def run_container(
    image: str,
    command: list[str],
    *,
    env: dict[str, str],
    network: str,
    user: str | None = None,
    entrypoint: list[str] | None = None,
    volumes: tuple[tuple[Path, str], ...] = (),
) -> Completed:
    container = DockerContainer(image).with_command(command)
    for name, value in env.items():
        container.with_env(name, value)
    for host, target in volumes:
        container.with_volume_mapping(str(host), target, "rw")
    options: dict[str, Any] = {"network_mode": network, "network": None, "labels": LABELS}  # never the bridge
    if user is not None:
        options["user"] = user
    if entrypoint is not None:
        options["entrypoint"] = entrypoint
    with container.with_kwargs(**options):
        exit_code = container.get_wrapped_container().wait(timeout=120)["StatusCode"]
        stdout, stderr = container.get_logs()
    return Completed(exit_code, stdout.decode(), stderr.decode())


@pytest.fixture(scope="session")
def compat_image(docker_client, base_image) -> str:
    return build_compat_image(
        TEST_TAG, base_image=base_image, client=docker_client, on_output=lambda line: None
    )


def test_an_image_built_from_the_same_sources_is_reused(compat_image, docker_client, base_image):
    said: list[str] = []
    assert build_compat_image(
        compat_image, base_image=base_image, client=docker_client, on_output=said.append
    )
    assert said[-1] == f"reusing {compat_image} (built from the same sources)"


def test_a_change_in_the_sources_rebuilds_and_drops_only_the_outdated_image(
    compat_image, docker_client, base_image, tmp_path
):
    sources = tmp_path / "compat-image"
    shutil.copytree(COMPAT_IMAGE_DIR, sources, ignore=shutil.ignore_patterns("*.crt"))
    tag = f"parity-compat:test-rebuild-{RUN_ID}"

    def build_with(line: str) -> list[str]:
        with (sources / "workload" / "train").open("a") as train:
            train.write(f"# {line}\n")
        said: list[str] = []
        build_compat_image(
            tag, base_image=base_image, source_dir=sources, client=docker_client, on_output=said.append
        )
        return said

    try:
        build_with("first")
        first = docker_client.images.get(tag).id
        assert build_with("second")[0].startswith(f"building {tag}")
        assert docker_client.images.get(tag).id != first
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(first)
        assert docker_client.images.get(compat_image)  # another tag of the same repository is left alone
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def credentials_url():
    with container_credentials_server() as url:
        yield url


class Gateway:
    """The metrics gateway: a UDP socket on 127.0.0.1 that tells which nonces arrived."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"

    def received(self, nonce: str, wait: float) -> bool:
        self.sock.settimeout(wait)
        try:
            while True:
                if nonce.encode() in self.sock.recv(65535):
                    return True
        except TimeoutError:
            return False


@pytest.fixture(scope="module")
def gateway():
    gateway = Gateway()
    yield gateway
    gateway.sock.close()


@pytest.fixture(scope="module")
def seed(gateway):
    """The example's seed, with the metrics address moved off 8125 (these containers share the host's
    network with everything else on this machine) and a document whose secret does not exist."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        relay_port = str(probe.getsockname()[1])
    example = load_seed()
    document = json.loads(json.dumps(example.objects["compat/bootstrap.json"]))
    document["metrics"] = {
        "gateway": gateway.address,
        "env": {
            "STATSD_HOST": "localhost",
            "STATSD_PORT": relay_port,
            "DD_AGENT_HOST": "localhost",
            "DD_DOGSTATSD_PORT": relay_port,
        },
    }
    missing = json.loads(json.dumps(document))
    missing["secretVolumes"][0]["secretId"] = "parity-demo/absent"
    objects = {**example.objects, "compat/bootstrap.json": document, BOOTSTRAP_MISSING_SECRET: missing}
    return example.model_copy(update={"objects": objects})


@dataclass
class SageMakerRunner:
    """Runs commands in SageMaker-training-looking containers: TRAINING_JOB_NAME and the job request's
    Environment, an /opt/ml tree with the all-strings hyperparameters.json, AWS at moto."""

    image: str
    moto_url: str
    credentials_url: str
    seed: Seed
    workdir: Path
    job: dict[str, Any] = field(default_factory=lambda: manifest("sagemaker/training-job.yaml"))

    def __call__(self, command: list[str], **extra_env: str) -> tuple[Completed, Path]:
        # Seeded right before each run: moto's in-process mocks elsewhere in this session reset its state.
        seed_aws(self.seed, self.moto_url)
        opt_ml = self.workdir / f"opt-ml-{secrets.token_hex(4)}"
        config = opt_ml / "input" / "config"
        config.mkdir(parents=True)
        (config / "hyperparameters.json").write_text(json.dumps(self.job["HyperParameters"]))
        (config / "resourceconfig.json").write_text(
            json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"})
        )
        for directory in ("model", "output/data"):
            (opt_ml / directory).mkdir(parents=True)
        env = {
            "TRAINING_JOB_NAME": self.job["TrainingJobName"],
            "AWS_REGION": self.seed.region,
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": self.credentials_url,
            **self.job["Environment"],
            **extra_env,
        }
        completed = run_container(
            self.image, command, env=env, network="host", volumes=((opt_ml, "/opt/ml"),)
        )
        return completed, opt_ml


@pytest.fixture(scope="module")
def sagemaker(compat_image, moto_url, credentials_url, seed, tmp_path_factory) -> SageMakerRunner:
    return SageMakerRunner(
        compat_image, moto_url, credentials_url, seed, tmp_path_factory.mktemp("sagemaker")
    )


def observe(sagemaker: SageMakerRunner, gateway: Gateway, **extra_env: str) -> tuple[dict[str, Any], bool]:
    """What user code sees in a SageMaker run, and whether its metric reached the gateway."""
    nonce = secrets.token_hex(8)
    completed, _ = sagemaker(["python3", "-c", OBSERVE, nonce], **extra_env)
    observed = completed.observed()
    return observed, observed["metric_sent_to"] is not None and gateway.received(nonce, wait=5)


@pytest.fixture(scope="module")
def clean_run(sagemaker, gateway) -> tuple[dict[str, Any], bool]:
    return observe(sagemaker, gateway)


def test_on_sagemaker_user_code_sees_the_pods_world(clean_run, seed):
    observed, delivered = clean_run
    pod_secret = manifest("kubernetes/secret.yaml")["stringData"]

    # identity: the pod's securityContext (runAsUser/runAsGroup, fsGroup, allowPrivilegeEscalation: false,
    # capabilities drop ALL), HOME from /etc/passwd, the image's WORKDIR
    assert (observed["uid"], observed["gid"], observed["groups"]) == (1000, 1000, [1000, 2000])
    assert (observed["env"]["HOME"], observed["cwd"]) == ("/home/app", "/home/app")
    assert (observed["no_new_privs"], observed["cap_bounding"], observed["cap_effective"]) == (
        "1",
        "0000000000000000",
        "0000000000000000",
    )

    # credentials: Secret volume files as kubelet leaves them with fsGroup 2000 and defaultMode 0400
    for name in ("db-password", "api-token"):
        assert observed["secret_files"][name] == {
            "mode": "0440",
            "uid": 0,
            "gid": 2000,
            "link": f"..data/{name}",
            "content": pod_secret[name],
        }

    # env: every pod variable, the secretKeyRef one, AWS_DEFAULT_REGION as EKS sets it; nothing of the
    # compat layer's own, and not the LC_CTYPE CPython would have added
    env = observed["env"]
    expected = {
        **pod_environment(),
        "API_TOKEN": pod_secret["api-token"],
        **seed.objects["compat/bootstrap.json"]["metrics"]["env"],
    }
    assert {name: env.get(name) for name in expected} == expected
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == seed.region
    assert not [name for name in env if name.startswith("COMPAT_") or name == "LC_CTYPE"]
    platform = {
        "HOSTNAME",
        "PATH",
        "SPARK_CONF_DIR",
        "TRAINING_JOB_NAME",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "HOME",
    }
    assert set(env) - set(expected) == platform

    # the volumes are as read-only for user code as Kubernetes' read-only mounts
    assert observed["writable_dirs"] == []

    # hyperparameters typed, where the training code reads them
    assert observed["hyperparameters"] == typed_hyperparameters()

    # spark: the ConfigMap's keys in order, Kubernetes-specific values adapted
    spark_configmap = manifest("kubernetes/configmap-spark.yaml")["data"]["spark-defaults.conf"]
    pod_spark = [line.split(None, 1) for line in spark_configmap.splitlines() if line.strip()]
    assert [key for key, _ in observed["spark"]] == [key for key, _ in pod_spark]
    adapted = {key: value for key, value in observed["spark"] if dict(pod_spark)[key] != value}
    assert adapted == {
        "spark.master": "local[*]",
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "com.amazonaws.auth.EC2ContainerCredentialsProviderWrapper"
        ),
    }

    # metrics: the pod's localhost address, relayed to the gateway
    assert delivered
    # SageMaker's root-owned output directories are the workload's
    assert observed["output_dirs"] == {"/opt/ml/model": 1000, "/opt/ml/output": 1000}


def facets(observed: dict[str, Any], delivered: bool) -> dict[str, Any]:
    """What user code sees, grouped by the part of the compat layer responsible for it."""
    env = observed["env"]
    return {
        "identity": [observed[key] for key in ("uid", "gid", "groups", "no_new_privs", "cap_bounding")]
        + [env["HOME"]],
        "env": {name: value for name, value in env.items() if name not in (*METRIC_VARS, "HOME", "HOSTNAME")},
        "credentials": observed["secret_files"],
        "hyperparameters": observed["hyperparameters"],
        "spark": observed["spark"],
        "metrics": [{name: env.get(name) for name in METRIC_VARS}, delivered],
        "output_dirs": observed["output_dirs"],
    }


def _strings(observed):
    assert observed["hyperparameters"] == {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in typed_hyperparameters().items()
    }


def _statsd(observed):
    assert not [name for name in METRIC_VARS if name in observed["env"]]


def _file_mode(observed):
    secret = observed["secret_files"]["db-password"]
    assert (secret["mode"], secret["uid"], secret["gid"], secret["read_error"]) == (
        "0400",
        0,
        0,
        "Permission denied",
    )


def _env_cap(observed):
    job_env = manifest("sagemaker/training-job.yaml")["Environment"]
    assert not [name for name in observed["env"] if name.startswith("FEATURE_")]
    assert all(
        observed["env"][name] == value for name, value in job_env.items() if not name.startswith("COMPAT_")
    )


def _uid_home(observed):
    assert (observed["uid"], observed["env"]["HOME"]) == (0, "/root")


def _spark_key(observed):
    assert "spark.eventLog.dir" not in dict(observed["spark"])


BREAK_EFFECTS = {
    "hyperparameters-as-strings": ({"hyperparameters"}, _strings),
    "statsd-not-rerouted": ({"metrics"}, _statsd),
    "credential-file-mode": ({"credentials"}, _file_mode),
    "env-cap": ({"env"}, _env_cap),
    "uid-home": ({"identity", "output_dirs"}, _uid_home),
    "spark-conf-key-dropped": ({"spark"}, _spark_key),
}


def test_every_break_in_the_catalogue_is_exercised():
    assert set(BREAK_EFFECTS) == set(load_breaks())


@pytest.mark.parametrize("name", list(BREAK_EFFECTS))
def test_each_break_breaks_exactly_its_one_thing(name, sagemaker, gateway, clean_run):
    changed_facets, check = BREAK_EFFECTS[name]
    observed, delivered = observe(sagemaker, gateway, COMPAT_BREAK=name)
    check(observed)
    reference, broken = facets(*clean_run), facets(observed, delivered)
    assert {facet for facet in reference if reference[facet] != broken[facet]} == changed_facets
    assert "COMPAT_BREAK" not in observed["env"]


# Prints what the process was given, for comparing a run through the entrypoint with one without it.
ECHO = (
    "import json, os, sys; print(json.dumps({'argv': sys.argv, 'uid': os.getuid(), 'gid': os.getgid(), "
    "'groups': sorted(os.getgroups()), 'cwd': os.getcwd(), 'env': dict(entry.decode().split('=', 1) "
    "for entry in open('/proc/self/environ', 'rb').read().split(b'\\0') if entry)}))"
)
KUBERNETES_ENV = {
    "KUBERNETES_SERVICE_HOST": "10.100.0.1",
    "KUBERNETES_SERVICE_PORT": "443",
    "APP_NAME": "churn-trainer",
    "ODD": 'a b\tc $HOME ${X} "q"',
}
ARGUMENTS = ["two words", "$HOME", "", "--flag=1"]


def echo_without_entrypoint(image: str, user: str) -> dict[str, Any]:
    completed = run_container(
        image, ["-c", ECHO, *ARGUMENTS], env=KUBERNETES_ENV, network="none", user=user, entrypoint=["python3"]
    )
    return completed.observed()


def without_hostname(env: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if name != "HOSTNAME"}  # each container's own


def test_on_kubernetes_the_command_runs_unchanged(compat_image):
    direct = echo_without_entrypoint(compat_image, "1000:1000")
    completed = run_container(
        compat_image,
        ["python3", "-c", ECHO, *ARGUMENTS],
        env=KUBERNETES_ENV,
        network="none",
        user="1000:1000",
    )
    through_entrypoint = completed.observed()
    assert completed.stderr == ""
    assert through_entrypoint["argv"] == direct["argv"] == ["-c", *ARGUMENTS]
    assert without_hostname(through_entrypoint["env"]) == without_hostname(direct["env"])
    assert (through_entrypoint["uid"], through_entrypoint["cwd"]) == (1000, "/home/app")


def test_on_kubernetes_as_root_it_drops_to_the_workload_user_and_touches_nothing_else(compat_image):
    direct = echo_without_entrypoint(compat_image, "0")
    through_entrypoint = run_container(
        compat_image, ["python3", "-c", ECHO, *ARGUMENTS], env=KUBERNETES_ENV, network="none"
    ).observed()
    assert (through_entrypoint["uid"], through_entrypoint["gid"], through_entrypoint["groups"]) == (
        1000,
        1000,
        [1000],
    )
    assert through_entrypoint["env"]["HOME"] == "/home/app"
    assert through_entrypoint["argv"] == direct["argv"]
    assert without_hostname(through_entrypoint["env"]) == {
        **without_hostname(direct["env"]),
        "HOME": "/home/app",
    }


@pytest.mark.parametrize(
    ("extra_env", "message"),
    [
        (
            {"COMPAT_BOOTSTRAP": f"s3://parity-demo/{BOOTSTRAP_MISSING_SECRET}"},
            "cannot read secret parity-demo/absent: ResourceNotFoundException",
        ),
        (
            {"COMPAT_BREAK": "env-cpa"},
            "COMPAT_BREAK='env-cpa' is not a known break (known: hyperparameters-as-strings",
        ),
        ({"COMPAT_BOOTSTRAP": ""}, "COMPAT_BOOTSTRAP is not set"),
        (
            {"COMPAT_BOOTSTRAP": "s3://parity-demo/compat/nothing.json"},
            "cannot read s3://parity-demo/compat/nothing.json: NoSuchKey",
        ),
    ],
    ids=["missing-secret", "unknown-break", "no-bootstrap", "no-document"],
)
def test_a_failed_start_stops_before_user_code_and_tells_sagemaker_why(sagemaker, extra_env, message):
    completed, opt_ml = sagemaker(["python3", "-c", "print('user code ran')"], **extra_env)
    assert completed.exit_code == 1
    assert completed.stdout == ""
    assert f"compat: error: {message}" in completed.stderr
    assert (opt_ml / "output" / "failure").read_text().startswith(f"compat: {message}")


@pytest.mark.parametrize(
    ("broken", "failure"),
    [(None, None), ("hyperparameters-as-strings", "TypeError"), ("credential-file-mode", "PermissionError")],
)
def test_the_demo_workload_runs_clean_and_fails_like_real_code_under_a_break(sagemaker, broken, failure):
    completed, _ = sagemaker(["train"], **({"COMPAT_BREAK": broken} if broken else {}))
    if failure is None:
        summary = completed.observed()
        assert summary == {
            **summary,
            "epochs": 20,
            "db_password_readable": True,
            "api_token_set": True,
            "user": 1000,
            "home": "/home/app",
        }
    else:
        assert completed.exit_code == 1
        assert failure in completed.stderr


@pytest.mark.parametrize(
    ("marker", "context", "failure_file"),
    [
        ("config/processingjobconfig.json", "sagemaker-processing", "output/message"),
        ("metadata/resource-metadata.json", "sagemaker-notebook", None),
    ],
)
def test_processing_jobs_and_notebooks_are_recognised_by_their_own_evidence(
    compat_image, tmp_path, marker, context, failure_file
):
    """No TRAINING_JOB_NAME here: only the file each context really has. The run stops at once (unknown
    break), which is enough to see the context and where its failure reason goes."""
    opt_ml = tmp_path / "opt-ml"
    (opt_ml / marker).parent.mkdir(parents=True)
    (opt_ml / marker).write_text("{}")
    (opt_ml / "output").mkdir(exist_ok=True)
    completed = run_container(
        compat_image,
        ["python3", "-c", "print('user code ran')"],
        network="none",
        env={"COMPAT_BREAK": "none-such"},
        volumes=((opt_ml, "/opt/ml"),),
    )
    assert completed.exit_code == 1 and completed.stdout == ""
    assert completed.stderr.startswith(f"compat: {context}: ")
    written = sorted(path.relative_to(opt_ml / "output").as_posix() for path in (opt_ml / "output").iterdir())
    assert written == ([Path(failure_file).name] if failure_file else [])
