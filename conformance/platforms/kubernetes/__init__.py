"""The `kubernetes` platform adapter: a Pod manifest (plus its ConfigMaps, Secrets, ServiceAccounts and
Services) → the LaunchPlan of what kubelet and containerd would run on an EKS node.

The steps mirror the cluster: the controller makes the pod (workloads), the API server defaults and
admits it (admission, the EKS identity webhook), kubelet builds each container's environment, volumes,
mounts and files, and containerd applies the security context and resources. Every reproduced rule
cites /work/shared/reference/kubernetes-contract.md (the section) and the upstream source it comes from.

The plan also carries the pod as its controller submits it to the API server (`LaunchPlan.spec`), which
`engine: kubernetes` creates on a real cluster with the probe injected. For that engine only the first
step is reproduced: the cluster admits the pod and kubelet runs it, so nothing else is emulated (no image
is read from a local Docker daemon, no reference must resolve in the target's resources — the cluster
may hold objects they do not list — and no pod setting is refused for want of an emulation).
"""

from __future__ import annotations

import os

from conformance.config import LoadedConfig, TargetConfig
from conformance.errors import BadInput
from conformance.plan import Container, LaunchPlan
from conformance.platforms.kubernetes.admission import (
    apply_defaults,
    mount_service_account_token,
    publish_root_ca,
    service_account_of,
    should_automount,
)
from conformance.platforms.kubernetes.env import cluster_services, service_environment
from conformance.platforms.kubernetes.files import pod_hostname_and_domain
from conformance.platforms.kubernetes.identity import apply_identity, identity_patch
from conformance.platforms.kubernetes.images import ImageUsers, docker_image_users
from conformance.platforms.kubernetes.kubelet import (
    container_roles,
    plan_container,
    pod_files_volume,
    prepare_container,
    sandbox_hostname,
)
from conformance.platforms.kubernetes.manifests import ManifestSet, load_manifests
from conformance.platforms.kubernetes.options import KubernetesOptions, node_allocatable, parse_options
from conformance.platforms.kubernetes.security import fs_user_from
from conformance.platforms.kubernetes.tokens import TokenSubject, issuer_for
from conformance.platforms.kubernetes.volumes import VolumeContext, build_volumes
from conformance.platforms.kubernetes.workloads import PodFacts, materialize_pod, pod_manifest

SHM_BYTES = 64 * 1024 * 1024  # containerd sandbox /dev/shm (kubernetes-contract §2)
TERMINATION_MESSAGE_LIMIT = 4096  # bytes kubelet reads per container (kubernetes-contract §2)

__all__ = ["build_plan"]


def build_plan(
    target_name: str, target: TargetConfig, loaded: LoadedConfig, image_users: ImageUsers = docker_image_users
) -> LaunchPlan:
    options = parse_options(target_name, target.options, loaded.path)
    manifests, namespace = load_manifests(
        loaded.resolve(target.spec),
        [loaded.resolve(path) for path in target.resources],
        options.namespace,
        loaded.path,
        target_name,
    )
    pod = materialize_pod(manifests.workload, namespace, options)
    main_index = _workload_container(pod, options, target_name, loaded)
    submitted = pod_manifest(pod, main_index, target.image)
    if target.engine != "docker":
        return _cluster_plan(target_name, target, pod, main_index, manifests, options, loaded, submitted)
    _refuse_unemulated(pod)

    # API server: defaults, ServiceAccount admission, the EKS identity webhook
    apply_defaults(pod.spec)
    account = service_account_of(pod, manifests)
    publish_root_ca(manifests, namespace)
    if should_automount(pod, account):
        mount_service_account_token(pod)
    patch = identity_patch(pod, account, options)
    if patch is not None:
        apply_identity(pod, patch)

    # kubelet + containerd
    allocatable = node_allocatable(options)
    fs_group = pod.spec.security_context.fs_group if pod.spec.security_context else None
    volumes = build_volumes(
        VolumeContext(
            pod=pod,
            manifests=manifests,
            allocatable=allocatable,
            fs_group=fs_group,
            fs_user=fs_user_from(pod.spec),
            token_subject=TokenSubject(
                namespace,
                pod.spec.service_account_name,
                pod.name,
                pod.uid,
                pod.node_name,
                issuer_for(options.region, options.kubernetes_service_ip),
            ),
        )
    )
    service_env = service_environment(
        cluster_services(manifests, options), namespace, bool(pod.spec.enable_service_links)
    )
    hostname, domain = pod_hostname_and_domain(pod.name, pod.spec, namespace, options.cluster_domain)
    uts_hostname = sandbox_hostname(pod, hostname, domain, options)
    pod_files = pod_files_volume(pod, options, hostname, domain, uts_hostname, target_name, loaded)

    # Everything the manifests alone decide is checked first, so a manifest error never waits on Docker.
    roles, notes = container_roles(pod, main_index)
    prepared = [
        prepare_container(
            container,
            path,
            role,
            pod,
            manifests,
            service_env,
            allocatable,
            volumes,
            target.image if role == "main" else options.images.get(container.image, container.image),
        )
        for container, path, role in roles
    ]
    users = image_users(preparation.image for preparation in prepared)
    planned = [
        plan_container(preparation, users.get(preparation.image, ""), pod, options)
        for preparation in prepared
    ]
    init_containers = [c for c in planned if c.role == "init"]
    sidecars = [c for c in planned if c.role == "sidecar"]
    main = next(c for c in planned if c.role == "main")

    for name, pod_volume in volumes.items():
        if pod_volume.note:
            notes[f"note.volume.{name}"] = pod_volume.note
    workload = manifests.workload
    metadata = {
        "pod": pod.name,
        "namespace": namespace,
        "node": pod.node_name,
        "workload": f"{workload.kind}/{workload.obj.metadata.name or pod.name}",
        "manifest": os.path.relpath(workload.origin.file, loaded.base_dir),
        "service_account": pod.spec.service_account_name,
        "identity": patch.mode if patch else "none",
        **{f"controller.{k}": v for k, v in pod.controller.items() if k != "kind"},
        **notes,
    }
    return LaunchPlan(
        platform="kubernetes",
        target=target_name,
        hostname=uts_hostname,
        network="host" if pod.spec.host_network else options.network,
        shm_size_bytes=SHM_BYTES,
        volumes=[pod_files, *(pod_volume.volume for pod_volume in volumes.values())],
        init_containers=init_containers,
        sidecars=sidecars,
        main=main,
        failure_message_path=pod.spec.containers[main_index].termination_message_path,
        failure_message_limit=TERMINATION_MESSAGE_LIMIT,
        metadata=metadata,
        spec=submitted,
    )


def _cluster_plan(
    target_name: str,
    target: TargetConfig,
    pod: PodFacts,
    main_index: int,
    manifests: ManifestSet,
    options: KubernetesOptions,
    loaded: LoadedConfig,
    submitted: dict,
) -> LaunchPlan:
    """The plan for an engine that runs the pod on a real cluster: the pod to submit, which container is
    the workload, and how the probe takes its place — `entrypoint` is the pod's `command` (`[]` when the
    probe replaces it too, `probe_replaces: command`), `command` its `args`, as in the emulation."""
    container = pod.spec.containers[main_index]
    entrypoint = container.command
    if options.probe_replaces == "command" and container.command:
        entrypoint = []
    workload = manifests.workload
    return LaunchPlan(
        platform="kubernetes",
        target=target_name,
        hostname=pod.spec.hostname or pod.name,
        main=Container(
            name=container.name, image=target.image, entrypoint=entrypoint, command=container.args
        ),
        metadata={
            "pod": pod.name,
            "namespace": pod.namespace,
            "workload": f"{workload.kind}/{workload.obj.metadata.name or pod.name}",
            "manifest": os.path.relpath(workload.origin.file, loaded.base_dir),
            **{f"controller.{k}": v for k, v in pod.controller.items() if k != "kind"},
        },
        spec=submitted,
    )


def _refuse_unemulated(pod: PodFacts) -> None:
    """Pod settings the Docker engine cannot reproduce: refused rather than silently approximated."""
    spec = pod.spec
    for flag, field_name in (
        (spec.share_process_namespace, "shareProcessNamespace"),
        (spec.host_pid, "hostPID"),
        (spec.host_ipc, "hostIPC"),
    ):
        if flag:
            raise pod.workload.bad(
                field_name, "not emulated: the LaunchPlan has no PID/IPC namespace sharing"
            )
    if spec.host_users is False:
        raise pod.workload.bad("hostUsers", "user namespaces are not emulated on Docker")


def _workload_container(
    pod: PodFacts, options: KubernetesOptions, target_name: str, loaded: LoadedConfig
) -> int:
    if options.container is None:
        return 0
    names = [container.name for container in pod.spec.containers]
    if options.container not in names:
        raise BadInput(
            loaded.path,
            f"targets.{target_name}.options.container",
            f"no container {options.container!r} in the pod (containers: {', '.join(names)})",
        )
    return names.index(options.container)
