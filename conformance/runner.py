"""Run the probe in one target: platform adapter → LaunchPlan → engine → snapshot.

Adapters and engines are looked up by the names `parity.yaml` uses, so a target says
`platform: sagemaker` / `engine: docker` and this module wires the two together.
"""

from __future__ import annotations

import importlib
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

from conformance.config import LoadedConfig, TargetConfig
from conformance.errors import BadInput
from conformance.plan import LaunchPlan

# platform name -> "module:function" building a LaunchPlan from a target's spec
PLATFORM_ADAPTERS = {
    "kubernetes": "conformance.platforms.kubernetes:build_plan",
    "sagemaker": "conformance.platforms.sagemaker:build_plan",
}
# engine name -> "module:class" executing a LaunchPlan
ENGINES = {
    "docker": "conformance.engines.docker:DockerEngine",
    "kubernetes": "conformance.engines.kubernetes:KubernetesEngine",
    "aws": "conformance.engines.sagemaker:SageMakerEngine",
}


@dataclass(frozen=True)
class ProbeRequest:
    """What the probe is asked to do in a target: its scope from parity.yaml plus the run's hash key.

    The same `hash_key` is given to every target of one run, so equal secrets hash equal across sides.
    `labels` are added to everything the engine creates for the run (`org.parity.*` keys: a caller's own
    run id, so it can tell its containers from anyone else's); the engine's own labels take precedence.
    """

    scope: dict[str, Any]
    hash_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    label: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    def probe_config(self) -> dict[str, Any]:
        """The JSON config file the probe reads (see probes/parity_probe.py --help)."""
        return {**self.scope, "hash_key": self.hash_key.hex(), "label": self.label}


@dataclass
class RunOutcome:
    """What an engine brings back from one run. `snapshot` is the probe's output, unnormalized.

    `sidecar_logs` holds each sidecar's last output lines by container name, read once the main container
    has exited: a pod's metrics sidecar prints what it received, which is how a harness confirms delivery
    from a sandbox that cannot reach anything outside it. `metadata` adds to (and overrides) the plan's
    names in the harness section: what the real platform called the run (a SageMaker job's submitted
    name, ARN and log stream).
    """

    snapshot: dict[str, Any]
    exit_code: int
    image_id: str | None = None
    logs_tail: str = ""
    failure_reason: str | None = None
    sidecar_logs: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


class Engine(Protocol):
    @classmethod
    def for_target(cls, loaded: LoadedConfig, target_name: str) -> Engine:
        """The engine for one target, configured from its `engine_options` (BadInput if they are wrong)."""
        ...

    def run(self, plan: LaunchPlan, probe: ProbeRequest, timeout: float) -> RunOutcome: ...


def _load(ref: str) -> Any:
    module_name, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def build_plan(loaded: LoadedConfig, target_name: str) -> LaunchPlan:
    target = _target(loaded, target_name)
    adapter = _load(PLATFORM_ADAPTERS[target.platform])
    return adapter(target_name, target, loaded)


def engine_class(loaded: LoadedConfig, target_name: str) -> type:
    target = _target(loaded, target_name)
    if target.engine not in ENGINES:
        raise BadInput(
            loaded.path,
            f"targets.{target_name}.engine",
            f"engine {target.engine!r} is not available in this build (available: {', '.join(ENGINES)})",
        )
    return _load(ENGINES[target.engine])


def run_target(
    loaded: LoadedConfig,
    target_name: str,
    hash_key: bytes,
    plan: LaunchPlan | None = None,
    labels: dict[str, str] | None = None,
) -> RunOutcome:
    """Run the probe in one target; the snapshot comes back unnormalized, with a `harness` section added.

    `plan` is the target's LaunchPlan when the caller built it already (see `build_plans`); `labels` go
    on every resource the engine creates (ProbeRequest.labels).
    """
    target = _target(loaded, target_name)
    plan = plan or build_plan(loaded, target_name)
    engine: Engine = engine_class(loaded, target_name).for_target(loaded, target_name)
    request = ProbeRequest(
        scope=loaded.config.probe.model_dump(),
        hash_key=hash_key,
        label=target_name,
        labels=dict(labels or {}),
    )
    outcome = engine.run(plan, request, target.timeout_seconds)
    outcome.snapshot["harness"] = {
        "target": target_name,
        "platform": target.platform,
        "engine": target.engine,
        "image": target.image,
        "image_id": outcome.image_id,
        "exit_code": outcome.exit_code,
        "metadata": {**plan.metadata, **outcome.metadata},
    }
    return outcome


def build_plans(loaded: LoadedConfig, target_names: list[str]) -> dict[str, LaunchPlan]:
    """Every target's plan, built in the calling thread before anything runs.

    A bad spec in any target fails the run before a single container starts, and the adapters and engines
    are imported here rather than concurrently in worker threads (concurrent first imports of the same
    packages can see them half-initialized).
    """
    plans = {name: build_plan(loaded, name) for name in target_names}
    for name in target_names:
        engine_class(loaded, name)
    return plans


def _target(loaded: LoadedConfig, name: str) -> TargetConfig:
    try:
        return loaded.config.targets[name]
    except KeyError:
        known = ", ".join(loaded.config.targets) or "none"
        raise BadInput(loaded.path, f"targets.{name}", f"no such target (targets: {known})") from None
