"""securityContext and resources as the process sees them (kubernetes-contract §3, §4).

- User: runAsUser, else the image's USER *without its group* — kubelet `getImageUser` keeps only the uid
  or name (containerd `getUserFromImage` splits at `:`), else uid 0; then runAsGroup if set
  (containerd `generateUserString`). Without runAsGroup the gid comes from the image's /etc/passwd, else
  0 (containerd `WithUserID` [obs]); Docker resolves a bare uid/name the same way, so the plan passes
  `uid` or `uid:gid` and the image's passwd stays authoritative.
- runAsNonRoot (kubelet `verifyRunAsNonRoot`): a root or non-numeric effective user stops the container.
- Supplementary groups: fsGroup, then supplementalGroups; the image's /etc/group memberships are merged
  (supplementalGroupsPolicy Merge) — Docker merges them too. `Strict` cannot be reproduced on Docker.
- Capabilities: containerd's default set is Docker's default set, so add/drop map one to one.
- allowPrivilegeEscalation: false → NoNewPrivs; unset → not set.
- seccomp: Unconfined unless RuntimeDefault (or kubelet seccompDefault); Docker's own default profile
  stands in for containerd's RuntimeDefault (both report `Seccomp: 2`).
- Resources (kuberuntime `calculateLinuxResources`): CPU quota = limit milliCPU × period / 1000 (at least
  1000 µs, i.e. 10m), shares = request milliCPU × 1024 / 1000 in [2, 262144] (the limit when there is no
  request; 2 for a best-effort container), memory limit in bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubernetes.client import models as k8s

from conformance.platforms.kubernetes.admission import all_containers
from conformance.platforms.kubernetes.quantity import QuantityError, milli_value, parse_quantity, value
from conformance.platforms.kubernetes.workloads import PodFacts

MIN_SHARES, MAX_SHARES = 2, 262144
MIN_QUOTA_MILLICORES = 10  # milliCPUToQuota: quota never below 1000 µs of a 100000 µs period


@dataclass
class EffectiveSecurity:
    """`DetermineEffectiveSecurityContext`: the container's settings over the pod's."""

    run_as_user: int | None
    run_as_group: int | None
    run_as_non_root: bool | None
    seccomp_type: str | None
    container: k8s.V1SecurityContext = field(default_factory=k8s.V1SecurityContext)


@dataclass
class RuntimeSecurity:
    user: str
    group_add: list[int]
    read_only_rootfs: bool
    cap_add: list[str]
    cap_drop: list[str]
    no_new_privileges: bool
    seccomp_unconfined: bool
    privileged: bool


@dataclass
class RuntimeResources:
    cpu_limit_millicores: int | None
    cpu_shares: int
    memory_limit_bytes: int | None


def effective(pod_context: k8s.V1PodSecurityContext | None, container: k8s.V1Container) -> EffectiveSecurity:
    pod_sc = pod_context or k8s.V1PodSecurityContext()
    sc = container.security_context or k8s.V1SecurityContext()
    seccomp = sc.seccomp_profile or pod_sc.seccomp_profile
    return EffectiveSecurity(
        run_as_user=sc.run_as_user if sc.run_as_user is not None else pod_sc.run_as_user,
        run_as_group=sc.run_as_group if sc.run_as_group is not None else pod_sc.run_as_group,
        run_as_non_root=sc.run_as_non_root if sc.run_as_non_root is not None else pod_sc.run_as_non_root,
        seccomp_type=seccomp.type if seccomp else None,
        container=sc,
    )


def fs_user_from(spec: k8s.V1PodSpec) -> int | None:
    """`FsUserFrom`: the runAsUser every (init) container shares, or None when one has none or they differ."""
    users = {effective(spec.security_context, c).run_as_user for c in all_containers(spec)}
    return users.pop() if len(users) == 1 and None not in users else None


def runtime_security(
    container: k8s.V1Container, path: str, pod: PodFacts, image: str, image_user: str, seccomp_default: bool
) -> RuntimeSecurity:
    bad = pod.workload.bad
    pod_sc = pod.spec.security_context or k8s.V1PodSecurityContext()
    sc = effective(pod_sc, container)
    image_part = image_user.split(":", 1)[0]
    user = str(sc.run_as_user) if sc.run_as_user is not None else (image_part or "0")
    if sc.run_as_non_root:
        where = f"{path}.securityContext.runAsNonRoot"
        if sc.run_as_user == 0:
            raise bad(where, "runAsUser 0 breaks the non-root policy: kubelet would not start the container")
        if sc.run_as_user is None and not user.isdigit():
            raise bad(
                where,
                f"the image has non-numeric user ({user}); kubelet cannot verify it is non-root and "
                "would not start the container — set runAsUser",
            )
        if sc.run_as_user is None and int(user) == 0:
            raise bad(where, f"the image {image} will run as root: kubelet would not start the container")
    if sc.run_as_group is not None:
        user = f"{user}:{sc.run_as_group}"
    if pod_sc.supplemental_groups_policy not in (None, "Merge"):
        raise bad(
            "securityContext.supplementalGroupsPolicy",
            f"{pod_sc.supplemental_groups_policy} is not reproduced: Docker always merges the image's "
            "/etc/group memberships",
        )
    groups = ([pod_sc.fs_group] if pod_sc.fs_group is not None else []) + list(
        pod_sc.supplemental_groups or []
    )
    capabilities = sc.container.capabilities or k8s.V1Capabilities()
    privileged = bool(sc.container.privileged)
    seccomp_type = sc.seccomp_type or ("RuntimeDefault" if seccomp_default else "Unconfined")
    if seccomp_type == "Localhost":
        raise bad(
            f"{path}.securityContext.seccompProfile",
            "Localhost profiles (files on the node) are not emulated",
        )
    return RuntimeSecurity(
        user=user,
        group_add=groups,
        read_only_rootfs=bool(sc.container.read_only_root_filesystem),
        cap_add=list(capabilities.add or []),
        cap_drop=list(capabilities.drop or []),
        no_new_privileges=sc.container.allow_privilege_escalation is False,
        seccomp_unconfined=privileged or seccomp_type != "RuntimeDefault",
        privileged=privileged,
    )


def runtime_resources(container: k8s.V1Container, path: str, pod: PodFacts) -> RuntimeResources:
    resources = container.resources or k8s.V1ResourceRequirements()
    limits, requests = resources.limits or {}, resources.requests or {}

    def quantity(table: dict[str, str], name: str, kind: str):
        if name not in table:
            return None
        try:
            return parse_quantity(table[name])
        except QuantityError as exc:
            raise pod.workload.bad(f"{path}.resources.{kind}.{name}", str(exc)) from None

    cpu_limit, cpu_request = quantity(limits, "cpu", "limits"), quantity(requests, "cpu", "requests")
    memory_limit = quantity(limits, "memory", "limits")
    limit_milli = milli_value(cpu_limit) if cpu_limit else 0
    request_milli = milli_value(cpu_request) if cpu_request else 0
    share_milli = limit_milli if request_milli == 0 and limit_milli else request_milli
    return RuntimeResources(
        cpu_limit_millicores=max(limit_milli, MIN_QUOTA_MILLICORES) if limit_milli else None,
        cpu_shares=milli_cpu_to_shares(share_milli),
        memory_limit_bytes=value(memory_limit) if memory_limit else None,
    )


def milli_cpu_to_shares(milli_cpu: int) -> int:
    if milli_cpu == 0:
        return MIN_SHARES
    return min(max(milli_cpu * 1024 // 1000, MIN_SHARES), MAX_SHARES)
