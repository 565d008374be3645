"""compat bootstrap: make a SageMaker container show user code the Kubernetes pod's world, then exec it.

compat-entrypoint runs it as root in SageMaker training, processing and notebook contexts:

    python3 -I -B /opt/compat/bootstrap.py --context sagemaker-training --workload-user app -- train

Everything it needs is one JSON document (format: ../README.md, "The bootstrap document") whose S3 URI is
the job's COMPAT_BOOTSTRAP variable: SageMaker caps a job's Environment at 100 entries, so the job carries
the pointer and the rest is fetched. AWS calls use boto3's default credential chain (on SageMaker, the
container credentials endpoint) and honour AWS_ENDPOINT_URL (moto in parity's demo). The steps, each named
after the part of the pod it reproduces:

  secrets          a Secrets Manager secret (a JSON object, like a Secret's data) becomes files in the
                   Secret volume's layout at its mountPath, with the mode and owner kubelet's fsGroup pass
                   leaves; secretKeyRef variables become env
  env              the variables that did not fit in the job request, from S3 (a JSON object) and/or SSM
                   Parameter Store (a path); they override the image's ENV as pod env does
  hyperparameters  the typed JSON from S3 goes where user code reads it on Kubernetes (the ConfigMap file),
                   not the all-strings /opt/ml/input/config/hyperparameters.json SageMaker writes
  spark            the pod's spark-defaults.conf from S3, same keys, values adapted to one SageMaker host
  metrics          STATSD_*/DD_* keep their Kubernetes values; where those addresses are not the gateway
                   itself, a relay listens on them (there is no sidecar on SageMaker)
  identity         runAsUser/runAsGroup/fsGroup/supplementalGroups, no_new_privs and the bounding set as
                   the pod's securityContext had them, HOME from /etc/passwd as runc sets it; the /opt/ml
                   output directories are handed to that user (SageMaker creates them root-owned)

The compat layer's own variables (COMPAT_*) never reach user code. Any failure stops the container before
user code runs: the reason goes to stderr and, as SageMaker expects, to /opt/ml/output/failure (training)
or /opt/ml/output/message (processing). Secret values are never printed.

COMPAT_BREAK=<name> reproduces one known bug (../breaks.json) for parity's demo and tests.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import re
import secrets
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

COMPAT_HOME = Path(__file__).resolve().parent
# The compat layer's private boto3 (installed there by the Dockerfile), never on user code's sys.path.
sys.path[:0] = [str(COMPAT_HOME), str(COMPAT_HOME / "lib")]

import boto3  # noqa: E402 - from the private path above
import statsd_relay  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

BOOTSTRAP_ENV = "COMPAT_BOOTSTRAP"
BREAK_ENV = "COMPAT_BREAK"
COMPAT_ENV_PREFIX = "COMPAT_"
BREAKS_FILE = COMPAT_HOME / "breaks.json"
DOCUMENT_VERSION = 1

# Where SageMaker reads a failed container's reason (sagemaker-contract.md §1 "Stopping and exit codes",
# §2 "Processing"); only the first 1024 bytes are kept.
FAILURE_FILES = {
    "sagemaker-training": Path("/opt/ml/output/failure"),
    "sagemaker-processing": Path("/opt/ml/output/message"),
}
FAILURE_LIMIT = 1024
# SageMaker creates /opt/ml root:root 0755 (sagemaker-contract.md §1, SDK issue #4764): a non-root workload
# could not write its model or outputs.
WORKLOAD_OUTPUT_DIRS = ("/opt/ml/model", "/opt/ml/output", "/opt/ml/output/data", "/opt/ml/checkpoints")

# ConfigMap/Secret keys as the API server validates them; also keeps fetched names inside the volume.
KEY_NAME = re.compile(r"[-._a-zA-Z0-9]+")
# Kubernetes accepts any printable ASCII but '=' in an environment variable name.
ENV_NAME = re.compile(r"[!-<>-~]+")
S3_URI = re.compile(r"s3://([^/]+)/(.+)")
SSM_PATH = re.compile(r"ssm:(/[^\s]*)")
# Values of Hadoop S3A credential-provider keys: the pod's web identity token does not exist on SageMaker,
# the container credentials endpoint does.
AWS_SDK_V1, AWS_SDK_V2 = "com.amazonaws.auth.", "software.amazon.awssdk.auth.credentials."
CREDENTIAL_PROVIDERS_ON_SAGEMAKER = {
    AWS_SDK_V1 + "WebIdentityTokenCredentialsProvider": AWS_SDK_V1 + "EC2ContainerCredentialsProviderWrapper",
    AWS_SDK_V2 + "WebIdentityTokenFileCredentialsProvider": AWS_SDK_V2 + "ContainerCredentialsProvider",
}
SPARK_DEFAULTS = "spark-defaults.conf"
RELAY_START_SECONDS = 10


class CompatError(Exception):
    """A reason not to start user code. The message is shown to the user as is."""


def log(message: str) -> None:
    print(f"compat: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------------
# The bootstrap document


@dataclass(frozen=True)
class SecurityContext:
    """The pod's securityContext (pod and container level merged), as far as a process can reproduce it."""

    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool = False
    fs_group: int | None = None
    supplemental_groups: tuple[int, ...] = ()
    allow_privilege_escalation: bool = True
    drop_capabilities: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecretVolume:
    secret_id: str
    mount_path: Path
    default_mode: int


@dataclass(frozen=True)
class SecretEnv:
    name: str
    secret_id: str
    key: str


@dataclass(frozen=True)
class Hyperparameters:
    source: str
    mount_path: Path
    file_name: str
    default_mode: int


@dataclass(frozen=True)
class Spark:
    source: str
    conf_dir: Path


@dataclass(frozen=True)
class Metrics:
    gateway: str
    env: dict[str, str]


@dataclass(frozen=True)
class Document:
    security_context: SecurityContext
    secret_volumes: tuple[SecretVolume, ...]
    secret_env: tuple[SecretEnv, ...]
    env_sources: tuple[str, ...]
    hyperparameters: Hyperparameters | None
    spark: Spark | None
    metrics: Metrics | None


_REQUIRED = object()


class _Fields:
    """Typed reads from one JSON object of the document; every error names the field, unknown keys fail."""

    def __init__(self, data: Any, where: str):
        if not isinstance(data, dict):
            raise CompatError(f"{where}: expected an object")
        self.data, self.where, self.read = data, where, set()

    def take(self, key: str, check: Callable[[Any, str], Any], default: Any = _REQUIRED) -> Any:
        self.read.add(key)
        where = f"{self.where}.{key}"
        if key not in self.data:
            if default is _REQUIRED:
                raise CompatError(f"{where}: required")
            return default
        return check(self.data[key], where)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            raise CompatError(f"{self.where}: unknown field(s) {', '.join(unknown)}")


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise CompatError(f"{where}: expected a non-empty string")
    return value


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CompatError(f"{where}: expected a non-negative integer")
    return value


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise CompatError(f"{where}: expected true or false")
    return value


def _mode(value: Any, where: str) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"0?[0-7]{3}", value):
        raise CompatError(f'{where}: expected an octal mode string such as "0440"')
    return int(value, 8)


def _absolute_path(value: Any, where: str) -> Path:
    path = Path(_string(value, where))
    if not path.is_absolute() or ".." in path.parts:
        raise CompatError(f"{where}: expected an absolute path without '..'")
    return path


def _key(value: Any, where: str) -> str:
    if not isinstance(value, str) or not KEY_NAME.fullmatch(value) or value in (".", ".."):
        raise CompatError(f"{where}: expected a ConfigMap/Secret key ([-._a-zA-Z0-9]+)")
    return value


def _env_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not ENV_NAME.fullmatch(value):
        raise CompatError(f"{where}: expected an environment variable name")
    return value


def _s3_uri(value: Any, where: str) -> str:
    if not isinstance(value, str) or not S3_URI.fullmatch(value):
        raise CompatError(f"{where}: expected s3://bucket/key")
    return value


def _env_source(value: Any, where: str) -> str:
    if isinstance(value, str) and (S3_URI.fullmatch(value) or SSM_PATH.fullmatch(value)):
        return value
    raise CompatError(f"{where}: expected s3://bucket/key.json or ssm:/parameter/path")


def _list_of(check: Callable[[Any, str], Any]) -> Callable[[Any, str], tuple]:
    def checked(value: Any, where: str) -> tuple:
        if not isinstance(value, list):
            raise CompatError(f"{where}: expected a list")
        return tuple(check(item, f"{where}[{index}]") for index, item in enumerate(value))

    return checked


def _string_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise CompatError(f"{where}: expected an object")
    for name, item in value.items():
        _env_name(name, f"{where}.{name}")
        if not isinstance(item, str):
            raise CompatError(f"{where}.{name}: expected a string value")
    return dict(value)


def _capability(value: Any, where: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"(CAP_)?[A-Z_]+", value):
        raise CompatError(f"{where}: expected a capability name such as NET_RAW or ALL")
    return value.removeprefix("CAP_")


def _security_context(value: Any, where: str) -> SecurityContext:
    fields = _Fields(value, where)
    capabilities = fields.take("capabilities", lambda v, w: v, None)
    drop: tuple[str, ...] = ()
    if capabilities is not None:
        caps = _Fields(capabilities, f"{where}.capabilities")
        drop = caps.take("drop", _list_of(_capability), ())
        caps.finish()  # `add` cannot be honoured: a non-root workload has no capabilities to add to
    context = SecurityContext(
        run_as_user=fields.take("runAsUser", _integer, None),
        run_as_group=fields.take("runAsGroup", _integer, None),
        run_as_non_root=fields.take("runAsNonRoot", _boolean, False),
        fs_group=fields.take("fsGroup", _integer, None),
        supplemental_groups=fields.take("supplementalGroups", _list_of(_integer), ()),
        allow_privilege_escalation=fields.take("allowPrivilegeEscalation", _boolean, True),
        drop_capabilities=drop,
    )
    fields.finish()
    return context


def _secret_volume(value: Any, where: str) -> SecretVolume:
    fields = _Fields(value, where)
    volume = SecretVolume(
        secret_id=fields.take("secretId", _string),
        mount_path=fields.take("mountPath", _absolute_path),
        default_mode=fields.take("defaultMode", _mode, 0o644),
    )
    fields.finish()
    return volume


def _secret_env(value: Any, where: str) -> SecretEnv:
    fields = _Fields(value, where)
    entry = SecretEnv(
        name=fields.take("name", _env_name),
        secret_id=fields.take("secretId", _string),
        key=fields.take("key", _key),
    )
    fields.finish()
    return entry


def _hyperparameters(value: Any, where: str) -> Hyperparameters:
    fields = _Fields(value, where)
    section = Hyperparameters(
        source=fields.take("source", _s3_uri),
        mount_path=fields.take("mountPath", _absolute_path),
        file_name=fields.take("fileName", _key),
        default_mode=fields.take("defaultMode", _mode, 0o644),
    )
    fields.finish()
    return section


def _spark(value: Any, where: str) -> Spark:
    fields = _Fields(value, where)
    section = Spark(source=fields.take("source", _s3_uri), conf_dir=fields.take("confDir", _absolute_path))
    fields.finish()
    return section


def _metrics(value: Any, where: str) -> Metrics:
    fields = _Fields(value, where)
    gateway = fields.take("gateway", _string)
    try:
        statsd_relay.split_address(gateway)
    except ValueError as exc:
        raise CompatError(f"{where}.gateway: {exc}") from None
    section = Metrics(gateway=gateway, env=fields.take("env", _string_map))
    fields.finish()
    if not listen_addresses(section.env):
        raise CompatError(
            f"{where}.env: sets none of STATSD_HOST/STATSD_PORT/DD_AGENT_HOST/DD_DOGSTATSD_PORT"
        )
    return section


def parse_document(data: Any, where: str) -> Document:
    """Validate the bootstrap document strictly: a typo must stop the job, not silently skip a step."""
    fields = _Fields(data, where)
    version = fields.take("version", _integer)
    if version != DOCUMENT_VERSION:
        raise CompatError(f"{where}.version: this image reads version {DOCUMENT_VERSION}, got {version}")
    document = Document(
        security_context=fields.take("securityContext", _security_context, SecurityContext()),
        secret_volumes=fields.take("secretVolumes", _list_of(_secret_volume), ()),
        secret_env=fields.take("secretEnv", _list_of(_secret_env), ()),
        env_sources=fields.take("env", _list_of(_env_source), ()),
        hyperparameters=fields.take("hyperparameters", _hyperparameters, None),
        spark=fields.take("spark", _spark, None),
        metrics=fields.take("metrics", _metrics, None),
    )
    fields.finish()
    return document


# --------------------------------------------------------------------------------------------------------
# AWS


class Aws:
    """The few AWS calls the compat layer makes. Errors become one-line CompatErrors naming the resource."""

    def __init__(self, region: str):
        self._session = boto3.session.Session(region_name=region)
        self._config = Config(
            connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 4}
        )
        self._clients: dict[str, Any] = {}
        self._secrets: dict[str, dict[str, str]] = {}

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service, config=self._config)
        return self._clients[service]

    @staticmethod
    def _failed(what: str, exc: Exception) -> CompatError:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            return CompatError(
                f"{what}: {error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
            )
        return CompatError(f"{what}: {exc}")

    def read_s3(self, uri: str) -> bytes:
        bucket, key = S3_URI.fullmatch(uri).groups()
        try:
            return self._client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise self._failed(f"cannot read {uri}", exc) from None

    def secret(self, secret_id: str) -> dict[str, str]:
        """A secret whose SecretString is a JSON object of strings, like a Kubernetes Secret's data."""
        if secret_id not in self._secrets:
            try:
                response = self._client("secretsmanager").get_secret_value(SecretId=secret_id)
            except (BotoCoreError, ClientError) as exc:
                raise self._failed(f"cannot read secret {secret_id}", exc) from None
            try:
                data = json.loads(response.get("SecretString") or "")
            except ValueError:
                data = None  # the text may be the secret itself: never echo it
            if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
                raise CompatError(f"secret {secret_id}: SecretString must be a JSON object of strings")
            for key in data:
                _key(key, f"secret {secret_id}: key")
            self._secrets[secret_id] = data
        return self._secrets[secret_id]

    def parameters(self, path: str) -> dict[str, str]:
        """Every parameter directly under `path` (decrypted), by its last name segment."""
        found: dict[str, str] = {}
        try:
            pages = self._client("ssm").get_paginator("get_parameters_by_path")
            for page in pages.paginate(Path=path.rstrip("/") or "/", Recursive=False, WithDecryption=True):
                for parameter in page["Parameters"]:
                    found[parameter["Name"].rsplit("/", 1)[-1]] = parameter["Value"]
        except (BotoCoreError, ClientError) as exc:
            raise self._failed(f"cannot read SSM parameters under {path}", exc) from None
        return found


# --------------------------------------------------------------------------------------------------------
# Files in the layout kubelet gives ConfigMap and Secret volumes


@dataclass(frozen=True)
class VolumeModes:
    """Modes and group of a volume's files and directories; the owner is always root."""

    file: int
    root_dir: int
    data_dir: int
    gid: int


def volume_modes(default_mode: int, fs_group: int | None, *, in_memory: bool) -> VolumeModes:
    """What kubelet leaves on a read-only ConfigMap (disk) or Secret (tmpfs) volume (kubernetes-contract.md
    §2): the root an emptyDir (0777, 1777 on tmpfs), the data directory 0755, files defaultMode. fsGroup's
    pass then gives everything group fsGroup, files `| 0440`, directories `| 0440 | 0110` and setgid.

    Kubernetes mounts that root read-only; nothing can be mounted here, so the root loses its write bits
    instead: user code can no more add files next to its secrets than on Kubernetes.
    """
    root, data, gid, file = (0o1777 if in_memory else 0o777), 0o755, 0, default_mode
    if fs_group is not None:
        directory_bits = 0o440 | 0o110 | 0o2000
        root, data, gid, file = root | directory_bits, data | directory_bits, fs_group, file | 0o440
    return VolumeModes(file=file, root_dir=root & ~0o222, data_dir=data, gid=gid)


def write_volume(mount_path: Path, files: dict[str, bytes], modes: VolumeModes) -> None:
    """Write `files` in kubelet's atomic-writer layout (kubernetes-contract.md §2): the data in
    `..<UTC timestamp>.<random>/`, `..data` pointing at it, and one `key -> ..data/key` link per file, so
    code that follows the links or watches `..data` for updates behaves as on Kubernetes."""
    mount_path.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + str(secrets.randbits(32))
    data_dir = mount_path / stamp
    data_dir.mkdir()
    for directory, mode in ((mount_path, modes.root_dir), (data_dir, modes.data_dir)):
        os.chown(directory, 0, modes.gid)
        os.chmod(directory, mode)
    for name, content in files.items():
        descriptor = os.open(data_dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(content)
            os.fchown(descriptor, 0, modes.gid)
            os.fchmod(descriptor, modes.file)
    links = {"..data": stamp, **{name: f"..data/{name}" for name in files}}
    for link, target in links.items():
        (mount_path / link).symlink_to(target)
        os.lchown(mount_path / link, 0, modes.gid)


# --------------------------------------------------------------------------------------------------------
# Spark


def parse_spark_defaults(text: str) -> list[tuple[str, str]]:
    """`key value` (or `key=value`, `key: value`) lines in order; blank lines and # comments skipped."""
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        match = re.fullmatch(r"(\S+?)(?:\s*[=:]\s*|\s+)(.*)", line)
        entries.append((match.group(1), match.group(2)) if match else (line, ""))
    return entries


def adapt_spark_defaults(entries: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The same keys, with the values that name Kubernetes replaced by their one-host SageMaker equivalent."""
    adapted = []
    for key, value in entries:
        if key == "spark.master" and value.startswith("k8s://"):
            value = (
                "local[*]"  # driver and executors share the one instance; there is no cluster to submit to
            )
        adapted.append((key, CREDENTIAL_PROVIDERS_ON_SAGEMAKER.get(value, value)))
    return adapted


def render_spark_defaults(entries: list[tuple[str, str]]) -> bytes:
    return "".join(f"{key} {value}\n" for key, value in entries).encode()


# --------------------------------------------------------------------------------------------------------
# Metrics


def listen_addresses(env: dict[str, str]) -> list[tuple[str, int]]:
    """The UDP addresses StatsD and DogStatsD clients send to under `env` (defaults localhost:8125)."""
    addresses = []
    for host_var, port_var in (("STATSD_HOST", "STATSD_PORT"), ("DD_AGENT_HOST", "DD_DOGSTATSD_PORT")):
        if host_var in env or port_var in env:
            port = env.get(port_var, "8125")
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise CompatError(f"metrics.env.{port_var}: not a port number")
            address = (env.get(host_var, "localhost"), int(port))
            if address not in addresses:
                addresses.append(address)
    return addresses


def start_metrics_relay(metrics: Metrics, run_as: Identity) -> str:
    """Listen where user code sends metrics, unless the gateway already is there; return what was done."""
    gateway = statsd_relay.split_address(metrics.gateway)
    try:
        served_by_gateway = {sockaddr for _, sockaddr in statsd_relay.resolve_udp(*gateway)}
        listeners = []
        for host, port in listen_addresses(metrics.env):
            listeners += statsd_relay.bind_udp(host, port, skip=served_by_gateway)
    except OSError as exc:
        raise CompatError(f"metrics relay: {exc.strerror or exc}") from None
    if not listeners:
        return f"metrics go straight to the gateway {metrics.gateway}"
    ready_read, ready_write = os.pipe()
    command = [
        sys.executable,
        "-I",
        "-B",
        str(COMPAT_HOME / "statsd_relay.py"),
        "--forward",
        metrics.gateway,
        "--ready-fd",
        str(ready_write),
    ]
    for sock in listeners:
        command += ["--listen-fd", str(sock.fileno())]
    subprocess.Popen(
        command,
        pass_fds=[ready_write, *(sock.fileno() for sock in listeners)],
        env={},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        user=run_as.uid,
        group=run_as.gid,
        extra_groups=list(run_as.groups),
        start_new_session=True,
    )
    os.close(ready_write)
    bound = ", ".join(f"{sock.getsockname()[0]}:{sock.getsockname()[1]}" for sock in listeners)
    for sock in listeners:
        sock.close()
    # User code may send its first metric at once: start it only when the relay is serving.
    with os.fdopen(ready_read, "rb") as ready:
        if not select.select([ready], [], [], RELAY_START_SECONDS)[0] or ready.read(1) != b"1":
            raise CompatError(f"metrics relay on {bound} did not start within {RELAY_START_SECONDS} s")
    return f"metrics relay {bound} -> {metrics.gateway}"


# --------------------------------------------------------------------------------------------------------
# Identity


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    no_new_privs: bool
    drop_capabilities: tuple[str, ...]


def resolve_identity(context: SecurityContext, workload_user: str) -> Identity:
    """Who user code runs as, by the rules kubelet/containerd/runc apply (kubernetes-contract.md §1, §3)."""
    uid = context.run_as_user
    if uid is None:
        try:
            uid = pwd.getpwnam(workload_user).pw_uid
        except KeyError:
            raise CompatError(f"workload user {workload_user!r} is not in /etc/passwd") from None
    if context.run_as_non_root and uid == 0:
        raise CompatError("securityContext.runAsNonRoot is true but the workload would run as uid 0")
    try:
        entry: pwd.struct_passwd | None = pwd.getpwuid(uid)
    except KeyError:
        entry = None  # an arbitrary uid: no name, HOME=/ and gid 0 unless runAsGroup says otherwise
    gid = context.run_as_group if context.run_as_group is not None else (entry.pw_gid if entry else 0)
    # The primary group is listed among the supplementary ones, as containerd and Docker do since the
    # fix for CVE-2023-25173 (GHSA-hmfx-3pcx-653p); then fsGroup and supplementalGroups (§3).
    groups = {gid, *context.supplemental_groups}
    if context.fs_group is not None:
        groups.add(context.fs_group)
    if entry is not None:  # supplementalGroupsPolicy Merge: the image's /etc/group memberships too
        groups.update(group.gr_gid for group in grp.getgrall() if entry.pw_name in group.gr_mem)
    return Identity(
        uid=uid,
        gid=gid,
        groups=tuple(sorted(groups)),
        home=entry.pw_dir if entry else "/",
        no_new_privs=not context.allow_privilege_escalation,
        drop_capabilities=context.drop_capabilities,
    )


def setpriv_command(identity: Identity, command: list[str]) -> list[str]:
    """util-linux setpriv switching to `identity` and exec'ing `command` (the environment is left alone)."""
    argv = ["setpriv", f"--reuid={identity.uid}", f"--regid={identity.gid}"]
    argv.append(f"--groups={','.join(map(str, identity.groups))}")
    if identity.no_new_privs:
        argv.append("--no-new-privs")
    if "ALL" in identity.drop_capabilities:
        argv.append("--bounding-set=-all")
    elif identity.drop_capabilities:
        argv.append("--bounding-set=" + ",".join(f"-{name.lower()}" for name in identity.drop_capabilities))
    return [*argv, "--inh-caps=-all", "--", *command]


# --------------------------------------------------------------------------------------------------------
# The run


def original_environment() -> dict[str, str]:
    """The environment this process was started with, byte for byte.

    os.environ is not it: CPython's locale coercion (PEP 538) adds LC_CTYPE in a C locale.
    """
    env = {}
    for entry in Path("/proc/self/environ").read_bytes().split(b"\0"):
        name, separator, value = entry.partition(b"=")
        if separator:
            env[os.fsdecode(name)] = os.fsdecode(value)
    return env


def known_breaks(path: Path = BREAKS_FILE) -> list[str]:
    return [entry["name"] for entry in json.loads(path.read_text(encoding="utf-8"))["breaks"]]


def active_break(env: dict[str, str], catalog: Path = BREAKS_FILE) -> str | None:
    name = env.get(BREAK_ENV) or None
    if name is not None and name not in (names := known_breaks(catalog)):
        raise CompatError(f"{BREAK_ENV}={name!r} is not a known break (known: {', '.join(names)})")
    return name


class Bootstrap:
    """One start-up: fetch, place, export; then exec user code. `broken` is the COMPAT_BREAK in force."""

    def __init__(self, workload_user: str, env: dict[str, str]):
        self.env = env
        self.broken = active_break(env)
        uri = env.get(BOOTSTRAP_ENV)
        if not uri:
            raise CompatError(
                f"{BOOTSTRAP_ENV} is not set: the job's Environment must point at the bootstrap "
                "document (s3://bucket/key.json)"
            )
        _s3_uri(uri, BOOTSTRAP_ENV)
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if not region:
            raise CompatError("no AWS region: SageMaker sets AWS_REGION; set it when running elsewhere")
        self.aws = Aws(region)
        try:
            data = json.loads(self.aws.read_s3(uri))
        except ValueError as exc:
            raise CompatError(f"{uri}: not JSON ({exc})") from None
        self.document = parse_document(data, uri)
        self.identity = resolve_identity(self.document.security_context, workload_user)

    def run(self, command: list[str]) -> NoReturn:
        if self.broken:
            log(f"{BREAK_ENV}={self.broken}: reproducing a known compat-layer bug")
        steps = (
            self.secrets,
            self.extra_env,
            self.hyperparameters,
            self.spark,
            self.metrics,
            self.region,
            self.output_dirs,
        )
        for step in steps:
            done = step()
            if done:
                log(done)
        env = {name: value for name, value in self.env.items() if not name.startswith(COMPAT_ENV_PREFIX)}
        if self.broken == "uid-home":
            log(f"running {command[0]} as uid {os.getuid()} (privileges not dropped)")
            os.execvpe(command[0], command, env)
        env["HOME"] = self.identity.home
        identity = self.identity
        log(f"running {command[0]} as uid {identity.uid} gid {identity.gid} groups {list(identity.groups)}")
        os.execvpe("setpriv", setpriv_command(identity, command), env)

    def secrets(self) -> str | None:
        # credential-file-mode: the files as the Secret declares them, without kubelet's fsGroup pass
        fs_group = None if self.broken == "credential-file-mode" else self.document.security_context.fs_group
        placed = []
        for volume in self.document.secret_volumes:
            data = self.aws.secret(volume.secret_id)
            modes = volume_modes(volume.default_mode, fs_group, in_memory=True)
            write_volume(volume.mount_path, {key: value.encode() for key, value in data.items()}, modes)
            placed.append(f"{len(data)} file(s) in {volume.mount_path} ({modes.file:04o}, gid {modes.gid})")
        for entry in self.document.secret_env:
            data = self.aws.secret(entry.secret_id)
            if entry.key not in data:
                raise CompatError(
                    f"secretEnv {entry.name}: secret {entry.secret_id} has no key {entry.key!r}"
                )
            self.env[entry.name] = data[entry.key]
        if self.document.secret_env:
            placed.append(f"{len(self.document.secret_env)} variable(s)")
        return f"secrets: {'; '.join(placed)}" if placed else None

    def extra_env(self) -> str | None:
        if not self.document.env_sources or self.broken == "env-cap":
            return None
        fetched: dict[str, str] = {}
        for source in self.document.env_sources:
            if source.startswith("s3://"):
                try:
                    fetched.update(_string_map(json.loads(self.aws.read_s3(source)), source))
                except ValueError as exc:
                    raise CompatError(f"{source}: not JSON ({exc})") from None
            else:
                fetched.update(_string_map(self.aws.parameters(source.removeprefix("ssm:")), source))
        self.env.update(fetched)
        return f"env: {len(fetched)} variable(s) from {', '.join(self.document.env_sources)}"

    def hyperparameters(self) -> str | None:
        section = self.document.hyperparameters
        if section is None:
            return None
        content = self.aws.read_s3(section.source)
        try:
            values = json.loads(content)
        except ValueError as exc:
            raise CompatError(f"{section.source}: not JSON ({exc})") from None
        if not isinstance(values, dict):
            raise CompatError(f"{section.source}: expected a JSON object of hyperparameters")
        if self.broken == "hyperparameters-as-strings":
            stringified = {
                key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()
            }
            content = json.dumps(stringified, indent=2).encode()
        modes = volume_modes(section.default_mode, self.document.security_context.fs_group, in_memory=False)
        write_volume(section.mount_path, {section.file_name: content}, modes)
        return f"hyperparameters: {len(values)} typed value(s) -> {section.mount_path / section.file_name}"

    def spark(self) -> str | None:
        section = self.document.spark
        if section is None:
            return None
        entries = adapt_spark_defaults(parse_spark_defaults(self.aws.read_s3(section.source).decode()))
        if self.broken == "spark-conf-key-dropped":
            entries = entries[:-1]
        modes = volume_modes(0o644, self.document.security_context.fs_group, in_memory=False)
        write_volume(section.conf_dir, {SPARK_DEFAULTS: render_spark_defaults(entries)}, modes)
        return f"spark: {len(entries)} key(s) -> {section.conf_dir / SPARK_DEFAULTS}"

    def metrics(self) -> str | None:
        section = self.document.metrics
        if section is None or self.broken == "statsd-not-rerouted":
            return None
        done = start_metrics_relay(section, self.identity)
        self.env.update(section.env)
        return done

    def region(self) -> str | None:
        """EKS's identity webhook sets AWS_DEFAULT_REGION and AWS_REGION (kubernetes-contract.md §5);
        SageMaker sets only AWS_REGION (sagemaker-contract.md §1)."""
        if "AWS_REGION" in self.env and "AWS_DEFAULT_REGION" not in self.env:
            self.env["AWS_DEFAULT_REGION"] = self.env["AWS_REGION"]
            return f"AWS_DEFAULT_REGION={self.env['AWS_REGION']}"
        return None

    def output_dirs(self) -> str | None:
        if self.broken == "uid-home":
            return None
        handed = [path for path in WORKLOAD_OUTPUT_DIRS if os.path.isdir(path)]
        for path in handed:
            os.chown(path, self.identity.uid, self.identity.gid)
        return f"{', '.join(handed)} owned by uid {self.identity.uid}" if handed else None


def report_failure(context: str, message: str) -> None:
    log(f"error: {message}")
    failure_file = FAILURE_FILES.get(context)
    if failure_file is not None and failure_file.parent.is_dir():
        try:
            failure_file.write_bytes(f"compat: {message}".encode()[:FAILURE_LIMIT])
        except OSError as exc:
            log(f"cannot write {failure_file}: {exc.strerror}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--context",
        required=True,
        choices=["sagemaker-training", "sagemaker-processing", "sagemaker-notebook"],
    )
    parser.add_argument(
        "--workload-user", required=True, help="the image's user, for a pod without runAsUser"
    )
    parser.add_argument("command", nargs="+", help="what user code runs (after --)")
    args = parser.parse_args(argv)
    log(f"{args.context}: making this container look like the Kubernetes pod to {args.command[0]}")
    try:
        if os.geteuid() != 0:
            raise CompatError(
                "the compat bootstrap must start as root (the image's USER); it drops privileges itself"
            )
        Bootstrap(args.workload_user, original_environment()).run(args.command)
    except CompatError as exc:
        report_failure(args.context, str(exc))
    except OSError as exc:
        report_failure(args.context, f"{exc.filename or 'exec'}: {exc.strerror}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
