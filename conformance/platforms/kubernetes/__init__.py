"""The `kubernetes` platform adapter: a Pod manifest (plus its ConfigMaps, Secrets, ServiceAccounts and
Services) → the LaunchPlan of what kubelet and containerd would run on an EKS node.

The steps mirror the cluster: the controller makes the pod (workloads), the API server defaults and
admits it (admission, the EKS identity webhook), kubelet builds each container's environment, volumes,
mounts and files, and containerd applies the security context and resources. Every reproduced rule
cites /work/shared/reference/kubernetes-contract.md (the section) and the upstream source it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes.client import models as k8s

from conformance.config import LoadedConfig, TargetConfig
from conformance.errors import BadInput
from conformance.plan import Container, FileEntry, LaunchPlan, Mount, Volume
from conformance.platforms.kubernetes.admission import (
    apply_defaults,
    mount_service_account_token,
    publish_root_ca,
    service_account_of,
    should_automount,
)
from conformance.platforms.kubernetes.env import cluster_services, container_env, service_environment
from conformance.platforms.kubernetes.expansion import ExpansionError, expand, lookup_in
from conformance.platforms.kubernetes.files import (
    hostname_file,
    managed_hosts,
    node_hosts,
    parse_resolv_conf,
    pod_dns_config,
    pod_hostname_and_domain,
    render_resolv_conf,
)
from conformance.platforms.kubernetes.identity import apply_identity, identity_patch
from conformance.platforms.kubernetes.images import ImageUsers, docker_image_users
from conformance.platforms.kubernetes.manifests import ManifestSet, load_manifests
from conformance.platforms.kubernetes.options import (
    AMAZON_DNS_LINK_LOCAL,
    AMAZON_LINUX_HOSTS,
    KubernetesOptions,
    node_allocatable,
    parse_options,
    read_node_file,
)
from conformance.platforms.kubernetes.security import (
    RuntimeResources,
    fs_user_from,
    runtime_resources,
    runtime_security,
)
from conformance.platforms.kubernetes.tokens import TokenSubject, issuer_for
from conformance.platforms.kubernetes.volumes import PodVolume, VolumeContext, build_volumes, container_mounts
from conformance.platforms.kubernetes.workloads import PodFacts, materialize_pod

POD_FILES_VOLUME = "kubelet.pod-files"  # not a valid pod volume name (it has a dot), so it cannot collide
SHM_BYTES = 64 * 1024 * 1024  # containerd sandbox /dev/shm (kubernetes-contract §2)
TERMINATION_MESSAGE_LIMIT = 4096  # bytes kubelet reads per container (kubernetes-contract §2)

__all__ = ["build_plan"]


def build_plan(target_name: str, target: TargetConfig, loaded: LoadedConfig,
               image_users: ImageUsers = docker_image_users) -> LaunchPlan:
    options = parse_options(target_name, target.options, loaded.path)
    manifests, namespace = load_manifests(
        loaded.resolve(target.spec), [loaded.resolve(path) for path in target.resources],
        options.namespace, loaded.path, target_name)
    pod = materialize_pod(manifests.workload, namespace, options)
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
    main_index = _workload_container(pod, options, target_name, loaded)
    allocatable = node_allocatable(options)
    fs_group = pod.spec.security_context.fs_group if pod.spec.security_context else None
    volumes = build_volumes(VolumeContext(
        pod=pod, manifests=manifests, allocatable=allocatable, fs_group=fs_group, fs_user=fs_user_from(pod.spec),
        token_subject=TokenSubject(namespace, pod.spec.service_account_name, pod.name, pod.uid, pod.node_name,
                                   issuer_for(options.region, options.kubernetes_service_ip))))
    service_env = service_environment(cluster_services(manifests, options), namespace,
                                      bool(pod.spec.enable_service_links))
    hostname, domain = pod_hostname_and_domain(pod.name, pod.spec, namespace, options.cluster_domain)
    sandbox_hostname = _sandbox_hostname(pod, hostname, domain, options)
    pod_files = _pod_files(pod, options, hostname, domain, sandbox_hostname, target_name, loaded)

    # Everything the manifests alone decide is checked first, so a manifest error never waits on Docker.
    roles, notes = _container_roles(pod, main_index)
    prepared = [_prepare(container, path, role, pod, manifests, service_env, allocatable, volumes,
                         target.image if role == "main" else options.images.get(container.image, container.image))
                for container, path, role in roles]
    users = image_users(preparation.image for preparation in prepared)
    planned = [_plan_container(preparation, users.get(preparation.image, ""), pod, options)
               for preparation in prepared]
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
        "manifest": str(workload.origin.file),
        "service_account": pod.spec.service_account_name,
        "identity": patch.mode if patch else "none",
        **{f"controller.{k}": v for k, v in pod.controller.items() if k != "kind"},
        **notes,
    }
    return LaunchPlan(
        platform="kubernetes",
        target=target_name,
        hostname=sandbox_hostname,
        network="host" if pod.spec.host_network else options.network,
        shm_size_bytes=SHM_BYTES,
        volumes=[pod_files, *(pod_volume.volume for pod_volume in volumes.values())],
        init_containers=init_containers,
        sidecars=sidecars,
        main=main,
        failure_message_path=pod.spec.containers[main_index].termination_message_path,
        failure_message_limit=TERMINATION_MESSAGE_LIMIT,
        metadata=metadata,
    )


def _containers(spec: k8s.V1PodSpec) -> list[k8s.V1Container]:
    return [*(spec.init_containers or []), *spec.containers]


def _container_roles(pod: PodFacts, main_index: int) -> tuple[list[tuple[k8s.V1Container, str, str]], dict[str, str]]:
    """(container, field path, plan role) in start order, and notes on order the plan cannot express:
    regular init containers run to completion; native sidecars (init containers with restartPolicy
    Always) and the other regular containers are sidecars."""
    roles: list[tuple[k8s.V1Container, str, str]] = []
    notes: dict[str, str] = {}
    saw_native_sidecar = False
    for index, container in enumerate(pod.spec.init_containers or []):
        if container.restart_policy == "Always":
            saw_native_sidecar = True
            roles.append((container, f"initContainers[{index}]", "sidecar"))
        else:
            if saw_native_sidecar:
                notes["note.init-order"] = (f"init container {container.name!r} follows a native sidecar; here "
                                            "sidecars start after all init containers")
            roles.append((container, f"initContainers[{index}]", "init"))
    for index, container in enumerate(pod.spec.containers):
        roles.append((container, f"containers[{index}]", "main" if index == main_index else "sidecar"))
    return roles, notes


def _refuse_unemulated(pod: PodFacts) -> None:
    """Pod settings the Docker engine cannot reproduce: refused rather than silently approximated."""
    spec = pod.spec
    for flag, field_name in ((spec.share_process_namespace, "shareProcessNamespace"), (spec.host_pid, "hostPID"),
                             (spec.host_ipc, "hostIPC")):
        if flag:
            raise pod.workload.bad(field_name, "not emulated: the LaunchPlan has no PID/IPC namespace sharing")
    if spec.host_users is False:
        raise pod.workload.bad("hostUsers", "user namespaces are not emulated on Docker")


def _workload_container(pod: PodFacts, options: KubernetesOptions, target_name: str, loaded: LoadedConfig) -> int:
    if options.container is None:
        return 0
    names = [container.name for container in pod.spec.containers]
    if options.container not in names:
        raise BadInput(loaded.path, f"targets.{target_name}.options.container",
                       f"no container {options.container!r} in the pod (containers: {', '.join(names)})")
    return names.index(options.container)


def _sandbox_hostname(pod: PodFacts, hostname: str, domain: str, options: KubernetesOptions) -> str:
    """The UTS hostname, HOSTNAME and /etc/hostname: the node's on the host network; the FQDN with
    setHostnameAsFQDN (kuberuntime `GetNodenameForKernel`, at most 64 characters); else the pod hostname."""
    if pod.spec.host_network:
        return pod.node_name
    if pod.spec.set_hostname_as_fqdn and domain:
        fqdn = f"{hostname}.{domain}"
        if len(fqdn) > 64:
            raise pod.workload.bad("setHostnameAsFQDN", f"the FQDN {fqdn!r} is longer than 64 characters; "
                                   "the pod sandbox would fail to start")
        return fqdn
    return hostname


def _pod_files(pod: PodFacts, options: KubernetesOptions, hostname: str, domain: str, sandbox_hostname: str,
               target_name: str, loaded: LoadedConfig) -> Volume:
    """/etc/hosts, /etc/resolv.conf, /etc/hostname (0644) and a 0666 termination-log file per container."""
    aliases = pod.spec.host_aliases or []
    if pod.spec.host_network:
        node_file = read_node_file(options.node_hosts, AMAZON_LINUX_HOSTS, loaded.base_dir, target_name,
                                   "node_hosts", loaded.path)
        hosts = node_hosts(node_file, aliases)
    else:
        hosts = managed_hosts(pod.pod_ips, hostname, domain, aliases)
    default_node_resolv = "".join([f"search {options.node_domain}\n" if options.node_domain else "",
                                   f"nameserver {AMAZON_DNS_LINK_LOCAL}\n"])
    node_resolv = read_node_file(options.node_resolv_conf, default_node_resolv, loaded.base_dir, target_name,
                                 "node_resolv_conf", loaded.path)
    dns = pod_dns_config(pod.spec, pod.namespace, options.cluster_domain, options.dns_server,
                         parse_resolv_conf(node_resolv))
    entries = [
        FileEntry(path="etc-hosts", content=hosts, mode=0o644),
        FileEntry(path="resolv.conf", content=render_resolv_conf(dns, node_resolv), mode=0o644),
        FileEntry(path="hostname", content=hostname_file(sandbox_hostname), mode=0o644),
    ]
    entries += [FileEntry(path=f"termination-log-{container.name}", mode=0o666) for container in _containers(pod.spec)]
    return Volume(name=POD_FILES_VOLUME, entries=entries)


def _pod_file_mounts(container: k8s.V1Container, own_mounts: list[Mount], read_only_rootfs: bool) -> list[Mount]:
    """kubelet's /etc/hosts (read-write), containerd's /etc/hostname and /etc/resolv.conf (read-only with
    readOnlyRootFilesystem), each unless the container mounts something there; the termination log."""
    taken = {mount.target for mount in own_mounts}
    wanted = [("/etc/hosts", "etc-hosts", False), ("/etc/hostname", "hostname", read_only_rootfs),
              ("/etc/resolv.conf", "resolv.conf", read_only_rootfs)]
    mounts = [Mount(volume=POD_FILES_VOLUME, target=target, sub_path=entry, read_only=read_only)
              for target, entry, read_only in wanted if target not in taken]
    mounts.append(Mount(volume=POD_FILES_VOLUME, target=container.termination_message_path,
                        sub_path=f"termination-log-{container.name}"))
    return mounts


@dataclass
class _Prepared:
    """What kubelet decides for a container from the manifests alone."""

    container: k8s.V1Container
    path: str
    role: str
    image: str
    environment: list[tuple[str, str]]
    command: list[str] | None
    args: list[str] | None
    mounts: list[Mount]
    resources: RuntimeResources


def _prepare(container: k8s.V1Container, path: str, role: str, pod: PodFacts, manifests: ManifestSet,
             service_env: dict[str, str], allocatable: dict[str, str], volumes: dict[str, PodVolume],
             image: str | None) -> _Prepared:
    bad = pod.workload.bad
    if not image:
        raise bad(f"{path}.image", "required")
    environment = container_env(container, path, pod, manifests, service_env, allocatable)
    return _Prepared(
        container=container,
        path=path,
        role=role,
        image=image,
        environment=environment,
        command=_expand_all(container.command, environment, bad, f"{path}.command"),
        args=_expand_all(container.args, environment, bad, f"{path}.args"),
        mounts=container_mounts(container, path, pod, volumes, environment),
        resources=runtime_resources(container, path, pod),
    )


def _plan_container(prepared: _Prepared, image_user: str, pod: PodFacts, options: KubernetesOptions) -> Container:
    container, path = prepared.container, prepared.path
    security = runtime_security(container, path, pod, prepared.image, image_user, options.seccomp_default)
    resources = prepared.resources
    entrypoint = prepared.command
    if prepared.role == "main" and options.probe_replaces == "command":
        entrypoint = [] if container.command else None
    return Container(
        name=container.name,
        image=prepared.image,
        role=prepared.role,
        entrypoint=entrypoint,
        command=prepared.args,
        env=prepared.environment,
        working_dir=container.working_dir,
        user=security.user,
        group_add=security.group_add,
        mounts=[*prepared.mounts, *_pod_file_mounts(container, prepared.mounts, security.read_only_rootfs)],
        read_only_rootfs=security.read_only_rootfs,
        cap_add=security.cap_add,
        cap_drop=security.cap_drop,
        no_new_privileges=security.no_new_privileges,
        seccomp_unconfined=security.seccomp_unconfined,
        privileged=security.privileged,
        cpu_limit_millicores=resources.cpu_limit_millicores,
        cpu_shares=resources.cpu_shares,
        memory_limit_bytes=resources.memory_limit_bytes,
    )


def _expand_all(values: list[str] | None, environment: list[tuple[str, str]], bad, where: str) -> list[str] | None:
    """`ExpandContainerCommandAndArgs`: against the container's final environment (image ENV not included)."""
    if not values:
        return None
    lookup = lookup_in(dict(environment))
    expanded = []
    for index, text in enumerate(values):
        try:
            expanded.append(expand(text, lookup))
        except ExpansionError as exc:
            raise bad(f"{where}[{index}]", str(exc)) from None
    return expanded
