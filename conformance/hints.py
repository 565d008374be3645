"""A small knowledge base of known Kubernetes → SageMaker parity bug classes.

Each class is matched on a divergence's path (and kind and values) and explains the likely cause and fix
in terms of this divergence's own values, citing the reference sheets (K8s §n = kubernetes-contract.md,
SM §n = sagemaker-contract.md). The first class that explains a divergence gives its hint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from conformance.normalize import is_secret
from conformance.paths import Glob, GlobIndex, ancestor_paths, compile_glob, parse_path

# Above this many environment variables missing on one side, the cause is a bulk one (the Environment cap).
BULK_MISSING_ENV = 10
_PATH_LISTS = ("PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "CLASSPATH", "MANPATH")


class Finding(Protocol):
    path: str
    kind: str
    left: Any
    right: Any


@dataclass(frozen=True)
class HintContext:
    """What a hint may refer to beyond its own divergence: the two sides and the comparison's other
    findings."""

    left_label: str
    right_label: str
    left_platform: str | None
    right_platform: str | None
    missing_env_left: int = 0
    missing_env_right: int = 0

    def with_counts(self, findings: Sequence[Finding]) -> HintContext:
        """This context, knowing how many environment variables each side lacks in `findings`."""
        env = [f for f in findings if f.path.startswith(("env.vars.", "env.vars["))]
        return replace(
            self,
            missing_env_left=sum(1 for f in env if f.kind == "extra"),
            missing_env_right=sum(1 for f in env if f.kind == "missing"),
        )

    def absent_side(self, finding: Finding) -> str:
        return self.right_label if finding.kind == "missing" else self.left_label

    def present_side(self, finding: Finding) -> str:
        return self.left_label if finding.kind == "missing" else self.right_label

    def platform_lacking(self, finding: Finding) -> str | None:
        return self.right_platform if finding.kind == "missing" else self.left_platform


def _show(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _last_key(path: str) -> str:
    return str(parse_path(path)[-1])


def _sides(finding: Finding, ctx: HintContext) -> str:
    if finding.kind == "missing":
        return f"{_show(finding.left)} on {ctx.left_label} only"
    if finding.kind == "extra":
        return f"{_show(finding.right)} on {ctx.right_label} only"
    return f"{_show(finding.left)} on {ctx.left_label}, {_show(finding.right)} on {ctx.right_label}"


# ---- the bug classes ------------------------------------------------------------------------------------


def _hyperparameters(f: Finding, ctx: HintContext) -> str | None:
    if f.kind == "type_changed" and (isinstance(f.left, str) != isinstance(f.right, str)):
        return (
            f"Hyperparameter stringified: {_sides(f, ctx)}. SageMaker passes HyperParameters as a "
            "{str: str} map (/opt/ml/input/config/hyperparameters.json, SM §1); decode them in the "
            "entrypoint (json.loads each value, keeping the raw string when it is not JSON) or place the "
            "original typed JSON where user code reads it on Kubernetes."
        )
    if f.kind == "changed" and isinstance(f.left, str) and isinstance(f.right, str):
        for quoted, plain in ((f.left, f.right), (f.right, f.left)):
            if quoted == json.dumps(plain):
                return (
                    f"Hyperparameter JSON-encoded twice: {_sides(f, ctx)}. SageMaker Python SDK v2 "
                    "json-dumps every value before CreateTrainingJob (SM §1); decode it once with json.loads "
                    "in the entrypoint, as the training toolkit does."
                )
    if f.path.endswith(".exists") or f.kind in ("missing", "extra"):
        return (
            f"The hyperparameter source differs ({_sides(f, ctx)}): SageMaker writes hyperparameters only to "
            "/opt/ml/input/config/hyperparameters.json, as strings (SM §1); the entrypoint must put the "
            "typed original (e.g. fetched from S3) at the path user code reads on Kubernetes."
        )
    return None


_AGENTS = (
    "On Kubernetes the agent is a node DaemonSet (DD_AGENT_HOST from status.hostIP) or a sidecar on "
    "localhost:8125 (K8s §6); a SageMaker job has neither."
)


def _metrics(f: Finding, ctx: HintContext) -> str | None:
    if "delivered" in f.path or "test_metric" in f.path:
        return (
            f"The test metric's delivery differs ({_sides(f, ctx)}): datagrams sent where user code's StatsD "
            f"client sends them do not arrive. {_AGENTS} Point STATSD_HOST/DD_AGENT_HOST at a reachable "
            "gateway in the entrypoint, or run a local forwarder on localhost:8125."
        )
    return (
        f"StatsD/DogStatsD not rerouted: {_sides(f, ctx)}. {_AGENTS} The entrypoint must set the same "
        "host/port variables user code reads and make that address reach a metrics gateway."
    )


def _secret_value(f: Finding, ctx: HintContext) -> str | None:
    if not (is_secret(f.left) and is_secret(f.right)):
        return None
    return (
        f"The secret at {f.path} has a different value on {ctx.left_label} and {ctx.right_label} (keyed "
        "hashes under one run key; the values never leave the containers): the entrypoint fetched another "
        "secret or version than the pod gets, or rendered it differently (newline, encoding)."
    )


def _credential_files(f: Finding, ctx: HintContext) -> str | None:
    attribute = _last_key(f.path)
    if attribute in ("mode", "uid", "gid"):
        return (
            f"Credential file {attribute} differs: {_sides(f, ctx)}. Kubernetes Secret volumes use "
            "defaultMode 0644, and with fsGroup group fsGroup plus 0440/0640 (K8s §2 fsGroup, Service "
            "account token); the entrypoint must chmod/chown the file it materializes the same way before "
            "dropping privileges."
        )
    if f.kind in ("missing", "extra"):
        return (
            f"Secret file present on {ctx.present_side(f)} only: the entrypoint must fetch it (e.g. from "
            "Secrets Manager) and write it at the same path, with the same mode and owner."
        )
    return None


def _aws_credentials(f: Finding, ctx: HintContext) -> str | None:
    if f.path.endswith("resolved_source") and "none" in (f.left, f.right):
        return (
            f"AWS credentials resolve on one side only ({_sides(f, ctx)}): on EKS they come from IRSA web "
            "identity or Pod Identity (K8s §5), on SageMaker from AWS_CONTAINER_CREDENTIALS_RELATIVE_URI "
            "(SM §1 Credentials); check the job's RoleArn and that the entrypoint does not unset the "
            "variable."
        )
    if "region" in f.path or _last_key(f.path) in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        return (
            f"AWS region differs ({_sides(f, ctx)}): the EKS webhook sets AWS_REGION and AWS_DEFAULT_REGION "
            "(K8s §5), SageMaker only AWS_REGION (SM §1); export AWS_DEFAULT_REGION=$AWS_REGION in the "
            "entrypoint."
        )
    return None


def _env_missing(f: Finding, ctx: HintContext) -> str | None:
    if f.kind not in ("missing", "extra"):
        return None
    name = _last_key(f.path)
    count = ctx.missing_env_right if f.kind == "missing" else ctx.missing_env_left
    if count >= BULK_MISSING_ENV and ctx.platform_lacking(f) in ("sagemaker", None):
        return (
            f"{count} environment variables are missing on {ctx.absent_side(f)}, {name} among them. "
            "SageMaker's Environment holds at most 100 entries (CreateTrainingJob, SM §3), so a larger pod "
            "environment cannot be passed as is: fetch the rest at start-up in the entrypoint (SSM Parameter "
            "Store or S3) and export them before exec."
        )
    if isinstance(f.left if f.kind == "missing" else f.right, str) and name.endswith("_PORT"):
        value = f.left if f.kind == "missing" else f.right
        if value.startswith(("tcp://", "udp://")):
            return (
                f"{name}={value} looks like a Kubernetes service-link variable (K8s §1): kubelet injects "
                "them for every Service in the namespace. If user code reads it, export it on SageMaker; if "
                "not, set enableServiceLinks: false in the pod or list it under platform_only.kubernetes."
            )
    return (
        f"{name} is set on {ctx.present_side(f)} only: add it to the job's Environment, or export it in the "
        "entrypoint (from the pod's env/envFrom)."
    )


def _identity(f: Finding, ctx: HintContext) -> str | None:
    return (
        f"User identity differs ({f.path}: {_sides(f, ctx)}). SageMaker has no runAsUser, "
        "runAsGroup or fsGroup: the image's USER applies and /opt/ml is root:root 0755 (SM §1 Working "
        "directory and user); with an arbitrary uid Kubernetes gives HOME=/ (K8s §3). Drop to the pod's "
        "uid/gid/groups in the entrypoint (setpriv --reuid --regid --groups, or runuser) and set HOME the "
        "same way."
    )


def _security(f: Finding, ctx: HintContext) -> str | None:
    return (
        f"Process security settings differ ({f.path}: {_sides(f, ctx)}). Kubernetes defaults "
        "to containerd's capability set, seccomp Unconfined and NoNewPrivs only with "
        "allowPrivilegeEscalation: false (K8s §3); code that needs a capability or a syscall fails on one "
        "side."
    )


def _shm(f: Finding, ctx: HintContext) -> str | None:
    return (
        f"/dev/shm differs ({_sides(f, ctx)}). Kubernetes gives 64 MiB (K8s §2) unless an emptyDir with "
        "medium: Memory is mounted there; shared-memory users (PyTorch DataLoader workers, NCCL) fail or "
        "slow down when it shrinks. Size it the same on both sides."
    )


def _locale(f: Finding, ctx: HintContext) -> str | None:
    return (
        f"Locale or time zone differs ({f.path}: {_sides(f, ctx)}): text decoding, sorting and "
        "local times change with it. Set LANG/LC_ALL/TZ in the image (ENV) rather than in the pod spec, so "
        "every platform sees the same."
    )


def _search_path(f: Finding, ctx: HintContext) -> str | None:
    if f.path.startswith("runtime.python.sys_path"):
        return (
            f"sys.path differs ({_sides(f, ctx)}): PYTHONPATH, the working directory or .pth files differ, "
            "so imports can resolve to other modules. Set PYTHONPATH and WORKDIR identically."
        )
    if not (isinstance(f.left, str) and isinstance(f.right, str)):
        return None
    name = _last_key(f.path)
    separator = ";" if name == "CLASSPATH" and ";" in f.left + f.right else ":"
    left, right = f.left.split(separator), f.right.split(separator)
    if sorted(left) == sorted(right):
        first = next(i for i, (a, b) in enumerate(zip(left, right, strict=True)) if a != b)
        return (
            f"{name} has the same entries in a different order: entry {first} is {left[first]!r} on "
            f"{ctx.left_label} and {right[first]!r} on {ctx.right_label}, so lookups can pick other "
            "binaries or libraries. Build it in the same order (containerd's default PATH is "
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin, K8s §1)."
        )
    only_left = [entry for entry in left if entry not in right]
    only_right = [entry for entry in right if entry not in left]
    parts = []
    if only_left:
        parts.append(f"only on {ctx.left_label}: {', '.join(only_left)}")
    if only_right:
        parts.append(f"only on {ctx.right_label}: {', '.join(only_right)}")
    return f"{name} entries differ ({'; '.join(parts)}): export the same {name} in the entrypoint or image."


def _spark(f: Finding, ctx: HintContext) -> str | None:
    key = _last_key(f.path)
    if f.kind in ("missing", "extra"):
        return (
            f"Spark setting {key} is set on {ctx.present_side(f)} only: Spark silently falls back to its "
            "default for a dropped key. Write spark-defaults.conf (and spark-env.sh, Hadoop XML) with the "
            "same keys in the entrypoint for this context."
        )
    return (
        f"Spark setting {key} differs ({_sides(f, ctx)}): the compat layer rewrote it; keep the Kubernetes "
        "value unless the change is intended, then waive it with a reason."
    )


def _hostname(f: Finding, ctx: HintContext) -> str | None:
    return (
        f"Host naming differs ({f.path}: {_sides(f, ctx)}). Kubernetes names the host after the "
        "pod (K8s §1 HOSTNAME, §2 /etc/hosts); SageMaker uses the EC2 name ip-…ec2.internal and keeps the "
        "logical name algo-N only in /opt/ml/input/config/resourceconfig.json (SM §1 Hostname). Code that "
        "derives its rank, peers or identity from the hostname must read it from configuration instead."
    )


def _packages(f: Finding, ctx: HintContext) -> str | None:
    return (
        f"The Python runtime differs ({f.path}: {_sides(f, ctx)}): the two targets do not run "
        "the same image (or the entrypoint installs packages). Build both from one image digest."
    )


def _process(f: Finding, ctx: HintContext) -> str | None:
    return (
        f"How the workload is started differs ({f.path}: {_sides(f, ctx)}). SageMaker stops a job like "
        "`docker stop -t 120` (SIGTERM to PID 1, SIGKILL 120 s later) and starts training images as "
        '`docker run image train` (SM §1); the entrypoint must end with `exec "$@"` so user code is the '
        "process that receives signals, with the same arguments and working directory as in the pod."
    )


def _probe_errors(f: Finding, ctx: HintContext) -> str | None:
    return (
        f"A probe collector reported an error on one side ({_sides(f, ctx)}): facts it would have collected "
        "are missing from that snapshot, so the comparison of that section is incomplete."
    )


@dataclass(frozen=True)
class BugClass:
    name: str
    globs: tuple[Glob, ...]
    explain: Callable[[Finding, HintContext], str | None]

    @classmethod
    def on(
        cls, name: str, paths: Sequence[str], explain: Callable[[Finding, HintContext], str | None]
    ) -> BugClass:
        return cls(name, tuple(compile_glob(pattern) for pattern in paths), explain)


KNOWLEDGE_BASE: tuple[BugClass, ...] = (
    BugClass.on("secret-value", ("*",), _secret_value),
    BugClass.on(
        "hyperparameters-as-strings",
        ("hyperparameters", "env.vars.SM_HP_*", "env.vars.SM_HPS"),
        _hyperparameters,
    ),
    BugClass.on(
        "statsd-not-rerouted",
        ("metrics", "env.vars.STATSD_*", "env.vars.DD_AGENT_HOST", "env.vars.DD_DOGSTATSD_*"),
        _metrics,
    ),
    BugClass.on(
        "credential-file-mode",
        ("credentials.secret_files", "filesystem.paths['*secret*']", "filesystem.paths['*credential*']"),
        _credential_files,
    ),
    BugClass.on(
        "aws-credentials",
        ("credentials.aws", "env.vars.AWS_REGION", "env.vars.AWS_DEFAULT_REGION"),
        _aws_credentials,
    ),
    BugClass.on(
        "path-order",
        tuple(f"env.vars.{name}" for name in _PATH_LISTS) + ("runtime.python.sys_path",),
        _search_path,
    ),
    BugClass.on(
        "locale-tz",
        ("runtime.locale", "runtime.tz", "env.vars.LANG", "env.vars.LC_*", "env.vars.TZ"),
        _locale,
    ),
    BugClass.on(
        "uid-home",
        (
            "identity.uid",
            "identity.gid",
            "identity.euid",
            "identity.egid",
            "identity.groups",
            "identity.user",
            "identity.group",
            "identity.home",
            "identity.passwd_home",
            "env.vars.HOME",
            "env.vars.USER",
        ),
        _identity,
    ),
    BugClass.on(
        "capabilities", ("identity.capabilities", "identity.seccomp", "identity.no_new_privs"), _security
    ),
    BugClass.on(
        "dev-shm", ("resources.shm", "filesystem.mounts['/dev/shm']", "filesystem.paths['/dev/shm']"), _shm
    ),
    BugClass.on("spark-conf", ("spark",), _spark),
    BugClass.on(
        "hostname",
        ("network.hostname", "network.fqdn", "network.etc_hostname", "network.hosts", "env.vars.HOSTNAME"),
        _hostname,
    ),
    BugClass.on("runtime", ("runtime.python", "runtime.os"), _packages),
    BugClass.on(
        "process-start", ("process.signals", "process.is_pid1", "process.argv", "process.cwd"), _process
    ),
    BugClass.on("probe-errors", ("errors",), _probe_errors),
    BugClass.on("env-missing", ("env.vars",), _env_missing),
)


_INDEX: GlobIndex[BugClass] = GlobIndex(
    (glob, bug_class) for bug_class in KNOWLEDGE_BASE for glob in bug_class.globs
)


def hint_for(finding: Finding, context: HintContext) -> str | None:
    """The likely cause and fix of one divergence, or None when no known bug class explains it."""
    for bug_class in dict.fromkeys(_INDEX.matching(ancestor_paths(finding.path))):
        hint = bug_class.explain(finding, context)
        if hint:
            return hint
    return None
