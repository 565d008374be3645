"""Kubelet and containerd for one pod: each container's LaunchPlan entry, and the files every container gets.

- Start order: regular init containers run to completion in order; native sidecars (init containers with
  `restartPolicy: Always`) and the other regular containers run beside the workload container (the
  LaunchPlan starts them after all init containers, so a regular init container declared after a native
  sidecar runs without it — noted in the plan's metadata).
- Per container (kubelet `GenerateRunContainerOptions`): the environment (env.py), `command`/`args` with
  `$(VAR)` expanded against that environment (`ExpandContainerCommandAndArgs`), the volume mounts
  (volumes.py), the security context and resources (security.py).
- Files (kubernetes-contract §2): kubelet's /etc/hosts (mounted read-write), containerd's /etc/hostname and
  /etc/resolv.conf (read-only under readOnlyRootFilesystem), each skipped where the container mounts
  something itself, and the termination-log file (0666) at `terminationMessagePath`.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes.client import models as k8s

from conformance.config import LoadedConfig
from conformance.plan import Container, FileEntry, Mount, Volume
from conformance.platforms.ec2 import AMAZON_LINUX_HOSTS, instance_resolv_conf
from conformance.platforms.kubernetes.admission import all_containers
from conformance.platforms.kubernetes.env import container_env
from conformance.platforms.kubernetes.expansion import ExpansionError, expand, lookup_in
from conformance.platforms.kubernetes.files import (
    hostname_file,
    managed_hosts,
    node_hosts,
    parse_resolv_conf,
    pod_dns_config,
    render_resolv_conf,
)
from conformance.platforms.kubernetes.manifests import ManifestSet
from conformance.platforms.kubernetes.options import (
    KubernetesOptions,
    read_node_file,
)
from conformance.platforms.kubernetes.security import RuntimeResources, runtime_resources, runtime_security
from conformance.platforms.kubernetes.volumes import PodVolume, container_mounts
from conformance.platforms.kubernetes.workloads import PodFacts

POD_FILES_VOLUME = "kubelet.pod-files"  # not a valid pod volume name (it has a dot), so it cannot collide


def container_roles(
    pod: PodFacts, main_index: int
) -> tuple[list[tuple[k8s.V1Container, str, str]], dict[str, str]]:
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
                notes["note.init-order"] = (
                    f"init container {container.name!r} follows a native sidecar; here "
                    "sidecars start after all init containers"
                )
            roles.append((container, f"initContainers[{index}]", "init"))
    for index, container in enumerate(pod.spec.containers):
        roles.append((container, f"containers[{index}]", "main" if index == main_index else "sidecar"))
    return roles, notes


def sandbox_hostname(pod: PodFacts, hostname: str, domain: str, options: KubernetesOptions) -> str:
    """The UTS hostname, HOSTNAME and /etc/hostname: the node's on the host network; the FQDN with
    setHostnameAsFQDN (kuberuntime `GetNodenameForKernel`, at most 64 characters); else the pod hostname."""
    if pod.spec.host_network:
        return pod.node_name
    if pod.spec.set_hostname_as_fqdn and domain:
        fqdn = f"{hostname}.{domain}"
        if len(fqdn) > 64:
            raise pod.workload.bad(
                "setHostnameAsFQDN",
                f"the FQDN {fqdn!r} is longer than 64 characters; the pod sandbox would fail to start",
            )
        return fqdn
    return hostname


def pod_files_volume(
    pod: PodFacts,
    options: KubernetesOptions,
    hostname: str,
    domain: str,
    uts_hostname: str,
    target_name: str,
    loaded: LoadedConfig,
) -> Volume:
    """/etc/hosts, /etc/resolv.conf, /etc/hostname (0644) and a 0666 termination-log file per container."""
    aliases = pod.spec.host_aliases or []
    if pod.spec.host_network:
        node_file = read_node_file(
            options.node_hosts, AMAZON_LINUX_HOSTS, loaded.base_dir, target_name, "node_hosts", loaded.path
        )
        hosts = node_hosts(node_file, aliases)
    else:
        hosts = managed_hosts(pod.pod_ips, hostname, domain, aliases)
    node_resolv = read_node_file(
        options.node_resolv_conf,
        instance_resolv_conf(options.node_domain),
        loaded.base_dir,
        target_name,
        "node_resolv_conf",
        loaded.path,
    )
    dns = pod_dns_config(
        pod.spec, pod.namespace, options.cluster_domain, options.dns_server, parse_resolv_conf(node_resolv)
    )
    entries = [
        FileEntry(path="etc-hosts", content=hosts, mode=0o644),
        FileEntry(path="resolv.conf", content=render_resolv_conf(dns, node_resolv), mode=0o644),
        FileEntry(path="hostname", content=hostname_file(uts_hostname), mode=0o644),
    ]
    entries += [
        FileEntry(path=f"termination-log-{container.name}", mode=0o666)
        for container in all_containers(pod.spec)
    ]
    return Volume(name=POD_FILES_VOLUME, entries=entries)


def _pod_file_mounts(
    container: k8s.V1Container, own_mounts: list[Mount], read_only_rootfs: bool
) -> list[Mount]:
    """kubelet's /etc/hosts (read-write), containerd's /etc/hostname and /etc/resolv.conf (read-only with
    readOnlyRootFilesystem), each unless the container mounts something there; the termination log."""
    taken = {mount.target for mount in own_mounts}
    wanted = [
        ("/etc/hosts", "etc-hosts", False),
        ("/etc/hostname", "hostname", read_only_rootfs),
        ("/etc/resolv.conf", "resolv.conf", read_only_rootfs),
    ]
    mounts = [
        Mount(volume=POD_FILES_VOLUME, target=target, sub_path=entry, read_only=read_only)
        for target, entry, read_only in wanted
        if target not in taken
    ]
    mounts.append(
        Mount(
            volume=POD_FILES_VOLUME,
            target=container.termination_message_path,
            sub_path=f"termination-log-{container.name}",
        )
    )
    return mounts


@dataclass
class PreparedContainer:
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


def prepare_container(
    container: k8s.V1Container,
    path: str,
    role: str,
    pod: PodFacts,
    manifests: ManifestSet,
    service_env: dict[str, str],
    allocatable: dict[str, str],
    volumes: dict[str, PodVolume],
    image: str | None,
) -> PreparedContainer:
    bad = pod.workload.bad
    if not image:
        raise bad(f"{path}.image", "required")
    environment = container_env(container, path, pod, manifests, service_env, allocatable)
    return PreparedContainer(
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


def plan_container(
    prepared: PreparedContainer, image_user: str, pod: PodFacts, options: KubernetesOptions
) -> Container:
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


def _expand_all(
    values: list[str] | None, environment: list[tuple[str, str]], bad, where: str
) -> list[str] | None:
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
