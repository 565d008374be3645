"""The Kubernetes engine: run a target's pod on a real cluster and bring back the probe's snapshot.

The Docker engine reproduces what kubelet does; this one lets the cluster do it. The kubernetes adapter
hands over the pod its controller would create (`LaunchPlan.spec`); the engine sends it to the API server
with the `kubernetes` client (kubeconfig or in-cluster configuration, the same REST calls, watch and logs
as any client) and reads the snapshot from the workload container's log.

- **The probe is the workload, the image is untouched.** A Secret `parity-<run id>` (a Secret, not a
  ConfigMap: the probe's config holds the run's hash key) carries `parity_probe.py` and `config.json`; a
  volume added to the pod mounts it read-only at `/.parity` in the workload container, and `/.parity` is
  in the probe's `exclude_paths`. The container's `args` become the probe invocation and its `command`
  (the image's ENTRYPOINT when absent) stays, so the compat entrypoint runs first and execs the probe as
  it would exec user code; with `probe_replaces: command` (the plan's entrypoint is `[]`) the probe
  replaces the pod's `command` and `args` both. The pod gets `restartPolicy: Never`, a unique name
  `<pod>-parity-<8 hex>` (at most 63 characters: HOSTNAME is the pod name) and the label
  `org.parity.run=<run id>`, as does everything else the run creates. Nothing else in the pod changes.
- **Resources.** With `apply_resources`, the target's ConfigMaps, Secrets, ServiceAccounts and Services
  are created for the run (before the pod: service-link variables come from the Services that exist when
  the container starts) and deleted after it. An object that already exists is never overwritten: the
  run stops (exit 3) and leaves it as it was.
- **Waiting.** The pod is watched by name from the resourceVersion its creation returned; each watch
  request lasts at most `watch_timeout_seconds`, then is re-opened from the last version seen, and a
  `410 Gone` (the version fell out of the API server's window) or a dropped connection re-lists the pod
  first. The run is over when the workload container has terminated — a pod with ordinary sidecar
  containers never reaches `Succeeded` — or the pod has `Succeeded`/`Failed`. An image that cannot be
  pulled or a container whose configuration cannot be built (ErrImagePull, ImagePullBackOff,
  ErrImageNeverPull, InvalidImageName, CreateContainerConfigError in the workload or an init container)
  ends the run at once; the target's `timeout_seconds` ends it otherwise, saying where the pod was stuck.
- **Results.** The workload container's log is one stream of stdout and stderr (the API gives no other),
  from which `extract_snapshot` takes the framed snapshot; the exit code, the termination message (kubelet
  reads `terminationMessagePath`) and the image ID come from the container status, and the real pod's
  name, namespace and node go to the harness section. No snapshot is exit 3 with the termination message
  and the log's last lines.
- **Cleanup.** The pod, the probe Secret and the applied resources are deleted (propagationPolicy
  Background) on every path: success, failure, timeout, exception, and Ctrl-C/SIGTERM through
  conformance.engines.reaper, which calls the run's cleanup with connections of its own. Only a SIGKILL
  of parity leaves them: `kubectl delete pod,secret,configmap,serviceaccount,service -l org.parity.run`.
- **Errors.** 401, 403, a missing namespace, a conflict, an unreachable API server: exit 3 saying what to
  do. A 422 naming a field of the user's manifest is exit 2 naming the manifest and the field (a Job's pod
  fields under `spec.template.spec`).
"""

from __future__ import annotations

import base64
import copy
import json
import math
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import config, watch
from kubernetes.client import ApiClient, Configuration, CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from conformance.config import LoadedConfig, describe_validation_error
from conformance.engines.probe_files import MOUNTED_PROBE_DIR as PROBE_DIR
from conformance.engines.probe_files import probe_command, probe_files
from conformance.engines.reaper import LABEL_RUN, LIVE_RUNS, install_interrupt_handlers
from conformance.errors import BadInput, InfrastructureError, ParityError
from conformance.plan import LaunchPlan
from conformance.platforms.kubernetes.manifests import Origin, load_manifests, resource_documents
from conformance.platforms.kubernetes.options import parse_options
from conformance.runner import ProbeRequest, RunOutcome
from conformance.snapshot import LOG_TAIL_LINES, extract_snapshot

# kubelet truncates HOSTNAME (the pod name) to 63 characters (kubernetes-contract §1); a unique name that
# fits keeps HOSTNAME equal to the pod's name.
POD_NAME_LIMIT = 63
# Waiting reasons kubelet reports when a container cannot start as specified; retrying would not help
# within a conformance run.
START_FAILURES = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
    }
)
# kind -> the CoreV1Api name part of its create/delete calls, in the order the resources are created.
RESOURCE_CALLS = {
    "ServiceAccount": "service_account",
    "ConfigMap": "config_map",
    "Secret": "secret",
    "Service": "service",
}
POD_CALLS = {**RESOURCE_CALLS, "Pod": "pod"}
# Extra time a watch request's read may take beyond its server-side timeout before the connection counts
# as dead.
WATCH_READ_GRACE_SECONDS = 10
RBAC_SUMMARY = (
    "pods: create, list, watch, delete; pods/log: get; secrets: create, delete "
    "(with apply_resources also configmaps, serviceaccounts, services: create, delete)"
)


class KubernetesEngineOptions(BaseModel):
    """`targets.<name>.engine_options` of a target with `engine: kubernetes`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="where the pod runs (default: the pod's namespace as the adapter resolves it: "
        "metadata.namespace, else options.namespace, else 'default')",
    )
    context: str | None = Field(None, min_length=1, description="kubeconfig context (default: current)")
    kubeconfig: str | None = Field(
        None, min_length=1, description="kubeconfig file, relative to parity.yaml (default: $KUBECONFIG)"
    )
    in_cluster: bool = Field(False, description="use the service account of the pod parity runs in")
    apply_resources: bool = Field(
        False,
        description="create the target's ConfigMaps/Secrets/ServiceAccounts/Services for the run and "
        "delete them after (an existing object is never overwritten)",
    )
    watch_timeout_seconds: int = Field(
        60, ge=1, le=3600, description="each watch request's server-side timeout; then it is re-opened"
    )
    request_timeout_seconds: float = Field(30.0, gt=0, le=600, description="each other API call's timeout")

    @model_validator(mode="after")
    def _one_configuration(self) -> KubernetesEngineOptions:
        if self.in_cluster and (self.kubeconfig or self.context):
            raise ValueError(
                "in_cluster: cannot be combined with kubeconfig or context "
                "(in-cluster configuration is the service account of the pod parity runs in)"
            )
        return self


class KubernetesEngine:
    """Runs kubernetes targets as pods on the cluster a kubeconfig (or the in-cluster account) names."""

    def __init__(self, options: KubernetesEngineOptions, loaded: LoadedConfig, target_name: str):
        self.options = options
        self.loaded = loaded
        self.target_name = target_name
        self.kubeconfig = str(loaded.resolve(options.kubeconfig)) if options.kubeconfig else None
        install_interrupt_handlers()

    @classmethod
    def for_target(cls, loaded: LoadedConfig, target_name: str) -> KubernetesEngine:
        target = loaded.config.targets[target_name]
        prefix = f"targets.{target_name}"
        if target.platform != "kubernetes":
            raise BadInput(
                loaded.path,
                f"{prefix}.engine",
                f"engine 'kubernetes' runs pods: it takes platform: kubernetes targets, "
                f"not {target.platform}",
            )
        try:
            options = KubernetesEngineOptions.model_validate(target.engine_options)
        except ValidationError as exc:
            field, message = describe_validation_error(exc)
            raise BadInput(loaded.path, f"{prefix}.engine_options.{field}", message) from None
        if options.kubeconfig and not loaded.resolve(options.kubeconfig).is_file():
            raise BadInput(
                loaded.path,
                f"{prefix}.engine_options.kubeconfig",
                f"no such file: {loaded.resolve(options.kubeconfig)}",
            )
        return cls(options, loaded, target_name)

    def run(self, plan: LaunchPlan, probe: ProbeRequest, timeout: float) -> RunOutcome:
        install_interrupt_handlers()
        return _PodRun(self, self.client_configuration(), plan, probe, timeout).execute()

    def client_configuration(self) -> Configuration:
        """The API server and credentials, from the kubeconfig (its current or the named context) or the
        in-cluster service account. Loaded per run: exec credential plugins (`aws eks get-token`) give
        short-lived tokens."""
        configuration = Configuration()
        field = f"targets.{self.target_name}.engine_options"
        try:
            if self.options.in_cluster:
                config.load_incluster_config(client_configuration=configuration)
                return configuration
            if self.options.context is not None:
                contexts, _ = config.list_kube_config_contexts(self.kubeconfig)
                names = [context["name"] for context in contexts]
                if self.options.context not in names:
                    raise BadInput(
                        self.loaded.path,
                        f"{field}.context",
                        f"no context {self.options.context!r} in the kubeconfig "
                        f"(contexts: {', '.join(names)})",
                    )
            config.load_kube_config(
                config_file=self.kubeconfig,
                context=self.options.context,
                client_configuration=configuration,
                persist_config=False,
            )
        except ConfigException as exc:
            remedy = (
                "run parity in a pod whose service account has the RBAC the README lists, or use a "
                f"kubeconfig ({field}.kubeconfig)"
                if self.options.in_cluster
                else f"point $KUBECONFIG or {field}.kubeconfig at a kubeconfig for the cluster "
                "(EKS: `aws eks update-kubeconfig --name CLUSTER`)"
            )
            raise InfrastructureError(
                f"cannot load the Kubernetes client configuration for target {self.target_name}: {exc}",
                remedy,
            ) from None
        return configuration

    def manifest_error(self, api_field: str, problem: str) -> BadInput:
        """BadInput at the user's manifest for a field the API server named in the pod it received: the
        pod's `spec.…` and `metadata.…` live under the workload's pod template (a Job's
        `spec.template.spec.…`)."""
        target = self.loaded.config.targets[self.target_name]
        options = parse_options(self.target_name, target.options, self.loaded.path)
        manifests, _ = load_manifests(
            self.loaded.resolve(target.spec),
            [self.loaded.resolve(path) for path in target.resources],
            options.namespace,
            self.loaded.path,
            self.target_name,
        )
        workload = manifests.workload
        head, _, rest = api_field.partition(".")
        template = workload.spec_path.removesuffix("spec")
        if head in ("spec", "metadata"):
            api_field = f"{template}{head}" + (f".{rest}" if rest else "")
        return workload.origin.bad(api_field, problem)

    def resource_files(self) -> list[Path]:
        target = self.loaded.config.targets[self.target_name]
        return [self.loaded.resolve(target.spec), *(self.loaded.resolve(path) for path in target.resources)]


def unique_pod_name(base: str, run_id: str) -> str:
    suffix = f"-parity-{run_id[:8]}"
    return base[: POD_NAME_LIMIT - len(suffix)].rstrip("-.") + suffix


class _PodRun:
    """One run of one plan on the cluster: everything it creates is labelled with its run id and deleted
    at the end."""

    def __init__(
        self,
        engine: KubernetesEngine,
        configuration: Configuration,
        plan: LaunchPlan,
        probe: ProbeRequest,
        timeout: float,
    ):
        self.engine = engine
        self.options = engine.options
        self.configuration = configuration
        self.plan = plan
        self.probe = probe
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.run_id = uuid.uuid4().hex
        self.labels = {**probe.labels, LABEL_RUN: self.run_id}
        self.namespace = self.options.namespace or plan.spec["metadata"]["namespace"]
        self.pod_name = unique_pod_name(plan.spec["metadata"]["name"], self.run_id)
        self.secret_name = f"parity-{self.run_id}"
        self.api_client = ApiClient(configuration)
        self.core = CoreV1Api(self.api_client)
        # (kind, namespace, name) of everything to delete, in creation order.
        self.created: list[tuple[str, str, str]] = []

    # -- lifecycle ---------------------------------------------------------------------------------

    def execute(self) -> RunOutcome:
        LIVE_RUNS.begin_with_cleanup(self.run_id, self._reap)
        succeeded = False
        try:
            outcome = self._execute()
            succeeded = True
            return outcome
        finally:
            try:
                self._cleanup(report_failure=succeeded)
            finally:
                LIVE_RUNS.end(self.run_id)
                self.api_client.close()

    def _execute(self) -> RunOutcome:
        resources = self._resources()
        pod = self._pod()  # checked before anything is created
        for origin, body in resources:
            self._create(body, origin=origin)
        self._create(self._probe_secret(), delete_even_if_interrupted=True)
        created = self._create(pod, delete_even_if_interrupted=True)
        return self._outcome(self._await_workload(created))

    def _cleanup(self, report_failure: bool) -> None:
        left = self._delete_created(self.core)
        if left and report_failure:
            kinds = ",".join(sorted({kind.lower() for kind, _, _ in self.created}))
            raise InfrastructureError(
                f"could not delete {', '.join(left)} (target {self.plan.target}, run {self.run_id})",
                f"delete them with `kubectl delete {kinds} -n {self.namespace} -l {LABEL_RUN}={self.run_id}`",
            )

    def _reap(self) -> None:
        """The interrupt path (conformance.engines.reaper): delete with a client of its own, since the
        run's thread may be in the middle of a request on its client."""
        with ApiClient(self.configuration) as client:
            self._delete_created(CoreV1Api(client))

    def _delete_created(self, core: CoreV1Api) -> list[str]:
        """Delete what the run created, newest first (the pod before the Secret it mounts); what could
        not be deleted, as `Kind namespace/name`."""
        left = []
        for kind, namespace, name in reversed(list(self.created)):
            delete = getattr(core, f"delete_namespaced_{POD_CALLS[kind]}")
            try:
                delete(
                    name,
                    namespace,
                    propagation_policy="Background",
                    _preload_content=False,
                    _request_timeout=self.options.request_timeout_seconds,
                )
            except ApiException as exc:
                if exc.status != 404:
                    left.append(f"{kind} {namespace}/{name}")
            except urllib3.exceptions.HTTPError:
                left.append(f"{kind} {namespace}/{name}")
        return left

    # -- what is sent --------------------------------------------------------------------------------

    def _pod(self) -> dict[str, Any]:
        """The plan's pod with the probe in place of the workload's command, and nothing else changed but
        its name, namespace, run label and restartPolicy."""
        pod = copy.deepcopy(self.plan.spec)
        metadata = pod["metadata"]
        metadata["name"] = self.pod_name
        metadata["namespace"] = self.namespace
        metadata["labels"] = {**(metadata.get("labels") or {}), **self.labels}
        spec = pod["spec"]
        spec["restartPolicy"] = "Never"
        volume = f"parity-probe-{self.run_id[:8]}"
        spec["volumes"] = [
            *(spec.get("volumes") or []),
            {"name": volume, "secret": {"secretName": self.secret_name, "defaultMode": 0o444}},
        ]
        index, container = next(
            (index, container)
            for index, container in enumerate(spec["containers"])
            if container["name"] == self.plan.main.name
        )
        mounts = container.get("volumeMounts") or []
        for position, mount in enumerate(mounts):
            if mount["mountPath"].rstrip("/") == PROBE_DIR:
                raise self.engine.manifest_error(
                    f"spec.containers[{index}].volumeMounts[{position}].mountPath",
                    f"{PROBE_DIR} is where parity mounts its probe; mount this volume elsewhere",
                )
        container["volumeMounts"] = [*mounts, {"name": volume, "mountPath": PROBE_DIR, "readOnly": True}]
        if self.plan.main.entrypoint == []:
            container["command"] = probe_command(PROBE_DIR)
            container.pop("args", None)
        else:
            container["args"] = probe_command(PROBE_DIR)
        return pod

    def _probe_secret(self) -> dict[str, Any]:
        files = probe_files(self.probe, [PROBE_DIR])
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": self.secret_name, "namespace": self.namespace, "labels": dict(self.labels)},
            "type": "Opaque",
            "immutable": True,
            "data": {name: base64.b64encode(content).decode("ascii") for name, content in files.items()},
        }

    def _resources(self) -> list[tuple[Origin, dict[str, Any]]]:
        """The target's resources as written, with the run label and (when they name none) the run's
        namespace, ServiceAccounts first and Services last."""
        if not self.options.apply_resources:
            return []
        bodies = []
        for origin, document in resource_documents(self.engine.resource_files()):
            body = copy.deepcopy(document)
            if body["kind"] == "Service" and (body.get("spec") or {}).get("type") == "LoadBalancer":
                raise origin.bad(
                    "spec.type",
                    "apply_resources does not create LoadBalancer Services (they provision a cloud load "
                    "balancer); create it yourself, or use a ClusterIP Service for the run",
                )
            metadata = body.setdefault("metadata", {})
            metadata.setdefault("namespace", self.namespace)
            metadata["labels"] = {**(metadata.get("labels") or {}), **self.labels}
            bodies.append((origin, body))
        order = list(RESOURCE_CALLS)
        return sorted(bodies, key=lambda item: order.index(item[1]["kind"]))

    def _create(
        self, body: dict[str, Any], origin: Origin | None = None, delete_even_if_interrupted: bool = False
    ) -> dict[str, Any]:
        """Create one object. The pod and the probe Secret (unique names: nobody else's) are recorded for
        deletion before the call, so an interrupted call still gets them deleted; a user's resource only
        once created, so an object that already existed is never deleted."""
        kind, metadata = body["kind"], body["metadata"]
        key = (kind, metadata["namespace"], metadata["name"])
        if delete_even_if_interrupted:
            self.created.append(key)
        action = f"create {kind} {key[1]}/{key[2]}"

        def refusal(exc: ApiException) -> ParityError | None:
            if exc.status == 404:
                return InfrastructureError(
                    f"cannot {action}: namespace {key[1]} does not exist (target {self.plan.target})",
                    f"create it (`kubectl create namespace {key[1]}`) or set "
                    f"targets.{self.plan.target}.engine_options.namespace",
                )
            if exc.status == 409:
                return InfrastructureError(
                    f"cannot {action}: it already exists (target {self.plan.target}); parity never "
                    "overwrites an object",
                    f"delete it first, or set targets.{self.plan.target}.engine_options.apply_resources: "
                    "false to use the cluster's copy",
                )
            cause = _invalid_field(exc)
            if cause is not None and kind == "Pod":
                return self.engine.manifest_error(*cause)
            if cause is not None and origin is not None:
                return origin.bad(*cause)
            return None

        create = getattr(self.core, f"create_namespaced_{POD_CALLS[kind]}")
        created = json.loads(self._call(action, create, key[1], body, refine=refusal))
        if not delete_even_if_interrupted:
            self.created.append(key)
        self._check_not_cancelled()
        return created

    # -- waiting -------------------------------------------------------------------------------------

    def _await_workload(self, pod: dict[str, Any]) -> dict[str, Any]:
        version = pod["metadata"].get("resourceVersion")
        while not self._finished(pod):
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise self._timed_out(pod)
            window = max(1, min(self.options.watch_timeout_seconds, math.ceil(remaining)))
            stream = watch.Watch(return_type="object").stream(
                self.core.list_namespaced_pod,
                self.namespace,
                field_selector=f"metadata.name={self.pod_name}",
                resource_version=version,
                timeout_seconds=window,
                _request_timeout=(self.options.request_timeout_seconds, window + WATCH_READ_GRACE_SECONDS),
            )
            try:
                with closing(stream):
                    for event in stream:
                        self._check_not_cancelled()
                        if event["type"] == "DELETED":
                            raise self._pod_vanished()
                        pod = event["object"]
                        version = pod["metadata"].get("resourceVersion", version)
                        if self._finished(pod) or time.monotonic() >= self.deadline:
                            break
            except ApiException as exc:
                if exc.status != 410:
                    raise self._api_error(f"watch pod {self.namespace}/{self.pod_name}", exc) from None
                pod, version = self._relist()
            except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError):
                pod, version = self._relist()  # the connection dropped; an unreachable server fails here
            except urllib3.exceptions.HTTPError as exc:
                raise self._unreachable(f"watch pod {self.namespace}/{self.pod_name}", exc) from None
            self._check_not_cancelled()
        return pod

    def _relist(self) -> tuple[dict[str, Any], str | None]:
        """The pod's current state and the version to watch from, after the watch lost its place."""
        listing = json.loads(
            self._call(
                f"list pod {self.namespace}/{self.pod_name}",
                self.core.list_namespaced_pod,
                self.namespace,
                field_selector=f"metadata.name={self.pod_name}",
            )
        )
        if not listing.get("items"):
            raise self._pod_vanished()
        return listing["items"][0], listing.get("metadata", {}).get("resourceVersion")

    def _finished(self, pod: dict[str, Any]) -> bool:
        """True once the workload container has terminated or the pod has ended; raises when a container
        the workload needs cannot start."""
        status = pod.get("status") or {}
        main = self._container_status(pod, "containerStatuses", self.plan.main.name)
        for container in [*(status.get("initContainerStatuses") or []), main or {}]:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in START_FAILURES:
                raise self._cannot_start(container["name"], waiting)
        if main and "terminated" in (main.get("state") or {}):
            return True
        return status.get("phase") in ("Succeeded", "Failed")

    # -- results -------------------------------------------------------------------------------------

    def _outcome(self, pod: dict[str, Any]) -> RunOutcome:
        main_name = self.plan.main.name
        main = self._container_status(pod, "containerStatuses", main_name) or {}
        terminated = (main.get("state") or {}).get("terminated")
        if terminated is None:
            raise self._ended_before_workload(pod)
        exit_code = int(terminated.get("exitCode", -1))
        message = (terminated.get("message") or "").strip() or None
        log = self._log(main_name)
        tail = _tail(log)
        source = f"container {main_name} of pod {self.namespace}/{self.pod_name} (target {self.plan.target})"
        try:
            snapshot = extract_snapshot(log, source)
        except InfrastructureError as exc:
            ended = f"exited with code {exit_code}" + (
                f" ({terminated['reason']})" if terminated.get("reason") else ""
            )
            because = f"; termination message: {message}" if message else ""
            raise InfrastructureError(
                f"{source} {ended} without a complete snapshot ({exc.problem}){because}",
                "the entrypoint must end by exec-ing its arguments (parity replaces the pod's args with the "
                "probe); its last log lines follow",
                tail,
            ) from None
        return RunOutcome(
            snapshot=snapshot,
            exit_code=exit_code,
            image_id=main.get("imageID") or None,
            logs_tail=tail,
            failure_reason=message if exit_code != 0 else None,
            metadata={
                "pod": self.pod_name,
                "namespace": self.namespace,
                **({"node": node} if (node := (pod.get("spec") or {}).get("nodeName")) else {}),
            },
        )

    def _log(self, container: str, tail_lines: int | None = None) -> str:
        data = self._call(
            f"read the log of pod {self.namespace}/{self.pod_name}",
            self.core.read_namespaced_pod_log,
            self.pod_name,
            self.namespace,
            container=container,
            tail_lines=tail_lines,
        )
        return data.decode("utf-8", "replace")

    def _log_tail(self, container: str) -> str:
        """The container's last log lines for an error's details; empty when they cannot be read."""
        try:
            return self._log(container, tail_lines=LOG_TAIL_LINES)
        except InfrastructureError:
            return ""

    def _container_status(self, pod: dict[str, Any], key: str, name: str) -> dict[str, Any] | None:
        return next((s for s in (pod.get("status") or {}).get(key) or [] if s.get("name") == name), None)

    # -- errors --------------------------------------------------------------------------------------

    def _cannot_start(self, container: str, waiting: dict[str, Any]) -> InfrastructureError:
        reason = waiting["reason"]
        if reason == "CreateContainerConfigError":
            remedy = (
                f"create what it names in namespace {self.namespace}, or set "
                f"targets.{self.plan.target}.engine_options.apply_resources: true to create the target's "
                "resources for the run"
            )
        else:
            remedy = (
                "check the image reference and that the cluster's nodes can pull it (imagePullSecrets, the "
                "node role's registry permissions); parity never builds or pushes images"
            )
        return InfrastructureError(
            f"container {container} of pod {self.namespace}/{self.pod_name} cannot start (target "
            f"{self.plan.target}): {reason}: {waiting.get('message') or 'no message'}",
            remedy,
        )

    def _timed_out(self, pod: dict[str, Any]) -> InfrastructureError:
        status = pod.get("status") or {}
        seen = [f"phase {status.get('phase') or 'unknown'}"]
        for condition in status.get("conditions") or []:
            if condition.get("status") == "False" and condition.get("reason"):
                seen.append(
                    f"{condition['type']}: {condition['reason']}: {condition.get('message', '')}".strip()
                )
        main = self._container_status(pod, "containerStatuses", self.plan.main.name) or {}
        state = main.get("state") or {}
        if "waiting" in state:
            seen.append(f"{self.plan.main.name} waiting: {state['waiting'].get('reason')}")
        tail = ""
        if "running" in state:
            seen.append(f"{self.plan.main.name} running")
            tail = self._log_tail(self.plan.main.name)
        return InfrastructureError(
            f"pod {self.namespace}/{self.pod_name} did not finish within {self.timeout:g}s (target "
            f"{self.plan.target}; last seen: {'; '.join(seen)})",
            f"raise targets.{self.plan.target}.timeout_seconds in parity.yaml, or see what it waits on with "
            f"`kubectl describe pod` while parity runs" + (" (its last log lines follow)" if tail else ""),
            tail,
        )

    def _ended_before_workload(self, pod: dict[str, Any]) -> InfrastructureError:
        status = pod.get("status") or {}
        for init in status.get("initContainerStatuses") or []:
            terminated = (init.get("state") or {}).get("terminated") or {}
            if terminated.get("exitCode", 0) != 0:
                return InfrastructureError(
                    f"init container {init['name']} of pod {self.namespace}/{self.pod_name} exited with code "
                    f"{terminated['exitCode']} (target {self.plan.target})"
                    + (f": {terminated['message'].strip()}" if terminated.get("message") else ""),
                    "the workload container never started; fix the init container "
                    "(its last log lines follow)",
                    self._log_tail(init["name"]),
                )
        reason = ": ".join(part for part in (status.get("reason"), status.get("message")) if part)
        return InfrastructureError(
            f"pod {self.namespace}/{self.pod_name} ended {status.get('phase')} before container "
            f"{self.plan.main.name} ran (target {self.plan.target})" + (f": {reason}" if reason else ""),
            f"look at the pod's events (`kubectl get events -n {self.namespace}`) and run again",
        )

    def _pod_vanished(self) -> InfrastructureError:
        self._check_not_cancelled()
        return InfrastructureError(
            f"pod {self.namespace}/{self.pod_name} was deleted while parity waited for it (target "
            f"{self.plan.target})",
            f"something else removed it (an admission controller, an operator, `kubectl delete`); see "
            f"`kubectl get events -n {self.namespace}` and run again",
        )

    def _check_not_cancelled(self) -> None:
        if LIVE_RUNS.is_cancelled(self.run_id):
            raise InfrastructureError(
                f"run of target {self.plan.target} was cancelled",
                "the harness is shutting down (interrupted)",
            )

    def _call(
        self,
        action: str,
        call,
        *args,
        refine: Callable[[ApiException], ParityError | None] | None = None,
        **kwargs,
    ) -> bytes:
        """One API call with the run's timeout, its raw body back (no model round trip: a newer API
        server's fields survive). A refusal becomes the error of parity's interface: `refine`'s for the
        statuses it knows, else the general one."""
        try:
            response = call(
                *args, _preload_content=False, _request_timeout=self.options.request_timeout_seconds, **kwargs
            )
            return response.data
        except ApiException as exc:
            self._check_not_cancelled()
            raise ((refine and refine(exc)) or self._api_error(action, exc)) from None
        except urllib3.exceptions.HTTPError as exc:
            self._check_not_cancelled()
            raise self._unreachable(action, exc) from None

    def _api_error(self, action: str, exc: ApiException) -> InfrastructureError:
        message = _status_of(exc).get("message") or exc.reason or "no message"
        target = f"target {self.plan.target}"
        if exc.status == 401:
            return InfrastructureError(
                f"the API server at {self.configuration.host} rejected parity's credentials while trying to "
                f"{action} (401 Unauthorized; {target})",
                "refresh the kubeconfig's credentials (EKS: `aws eks update-kubeconfig --name CLUSTER`) and "
                "check them with `kubectl auth whoami`",
            )
        if exc.status == 403:
            return InfrastructureError(
                f"not allowed to {action} ({target}): {message}",
                f"grant parity's identity in namespace {self.namespace}: {RBAC_SUMMARY}; check with "
                f"`kubectl auth can-i create pods -n {self.namespace}`",
            )
        if exc.status == 404:
            return self._pod_vanished()
        return InfrastructureError(
            f"the API server refused to {action} ({target}): {exc.status} {exc.reason}: {message}",
            "run again; if it persists, check the API server's health (`kubectl get --raw /readyz`)",
        )

    def _unreachable(self, action: str, exc: urllib3.exceptions.HTTPError) -> InfrastructureError:
        reason = getattr(exc, "reason", None) or exc
        return InfrastructureError(
            f"cannot reach the Kubernetes API server at {self.configuration.host} to {action} "
            f"(target {self.plan.target}): {reason}",
            "check the cluster endpoint in the kubeconfig and the network path to it (VPN, security groups); "
            "`kubectl cluster-info` should answer",
        )


def _status_of(exc: ApiException) -> dict[str, Any]:
    """The API server's Status object in an error response, or {} when the body is not one."""
    try:
        body = json.loads(exc.body or b"{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _invalid_field(exc: ApiException) -> tuple[str, str] | None:
    """(field, problem) of a 422 Invalid that names a field of the object sent."""
    if exc.status != 422:
        return None
    status = _status_of(exc)
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("field"):
            return cause["field"], cause.get("message") or status.get("message") or "invalid"
    return None


def _tail(text: str) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-LOG_TAIL_LINES:])
