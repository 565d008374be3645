"""securityContext and resources as containerd applies them (kubernetes-contract §3, §4)."""

from __future__ import annotations

import pytest

from conformance.errors import BadInput
from conformance.platforms.kubernetes.security import milli_cpu_to_shares
from tests.kubernetes_support import IMAGE, plan_for, pod


def container(security: str = "", resources: str = "", image: str = IMAGE) -> str:
    text = f"- name: main\n  image: {image}\n"
    if security:
        text += f"  securityContext: {security}\n"
    if resources:
        text += f"  resources: {resources}\n"
    return text


@pytest.mark.parametrize(
    ("image_user", "security", "pod_security", "expected"),
    [
        ("", "", "", "0"),  # no USER, no runAsUser: root
        ("app", "", "", "app"),  # the image's user by name
        ("1000:1000", "", "", "1000"),  # kubelet keeps only the uid of the image's USER
        ("app:staff", "{runAsGroup: 50}", "", "app:50"),
        ("app", "{runAsUser: 4242}", "", "4242"),  # gid then comes from the image passwd, else 0
        ("", "{runAsUser: 4242, runAsGroup: 4242}", "", "4242:4242"),
        ("", "", "securityContext: {runAsUser: 7, runAsGroup: 8}\n", "7:8"),
        ("", "{runAsUser: 9}", "securityContext: {runAsUser: 7, runAsGroup: 8}\n", "9:8"),  # container wins
    ],
)
def test_user_the_process_starts_as(tmp_path, image_user, security, pod_security, expected):
    plan = plan_for(tmp_path, pod(container(security), spec=pod_security), image_users={IMAGE: image_user})
    assert plan.main.user == expected


@pytest.mark.parametrize(
    ("image_user", "security", "problem"),
    [
        ("", "{runAsNonRoot: true}", "will run as root"),
        ("app", "{runAsNonRoot: true}", "non-numeric user (app)"),
        ("", "{runAsNonRoot: true, runAsUser: 0}", "runAsUser 0 breaks the non-root policy"),
    ],
)
def test_run_as_non_root_stops_containers_kubelet_would_not_start(tmp_path, image_user, security, problem):
    with pytest.raises(BadInput) as caught:
        plan_for(tmp_path, pod(container(security)), image_users={IMAGE: image_user})
    assert caught.value.field == "spec.containers[0].securityContext.runAsNonRoot"
    assert problem in caught.value.problem


def test_run_as_non_root_accepts_a_numeric_non_root_image_user(tmp_path):
    plan = plan_for(tmp_path, pod(container("{runAsNonRoot: true}")), image_users={IMAGE: "1000:1000"})
    assert plan.main.user == "1000"


def test_groups_are_fs_group_then_supplemental_groups(tmp_path):
    spec = "securityContext: {fsGroup: 2000, supplementalGroups: [3000, 4000]}\n"
    assert plan_for(tmp_path, pod(spec=spec)).main.group_add == [2000, 3000, 4000]


def test_strict_supplemental_groups_policy_cannot_be_reproduced(tmp_path):
    with pytest.raises(BadInput, match="Docker always merges"):
        plan_for(tmp_path, pod(spec="securityContext: {supplementalGroupsPolicy: Strict}\n"))


def test_privilege_and_capability_settings(tmp_path):
    security = (
        "{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, "
        "capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}"
    )
    main = plan_for(tmp_path, pod(container(security))).main
    assert main.no_new_privileges is True
    assert main.read_only_rootfs is True
    assert (main.cap_drop, main.cap_add) == (["ALL"], ["NET_BIND_SERVICE"])
    default = plan_for(tmp_path, pod()).main
    assert default.no_new_privileges is False  # NoNewPrivs only when explicitly false
    assert (default.cap_add, default.cap_drop) == ([], [])  # containerd's default set is Docker's


@pytest.mark.parametrize(
    ("security", "pod_security", "options", "unconfined"),
    [
        ("", "", {}, True),  # the pod default is Unconfined, unlike Docker's default profile
        ("{seccompProfile: {type: RuntimeDefault}}", "", {}, False),
        ("", "securityContext: {seccompProfile: {type: RuntimeDefault}}\n", {}, False),
        (
            "{seccompProfile: {type: Unconfined}}",
            "securityContext: {seccompProfile: {type: RuntimeDefault}}\n",
            {},
            True,
        ),
        ("", "", {"seccomp_default": True}, False),  # kubelet seccompDefault: true
        ("{privileged: true, seccompProfile: {type: RuntimeDefault}}", "", {}, True),
    ],
)
def test_seccomp(tmp_path, security, pod_security, options, unconfined):
    plan = plan_for(tmp_path, pod(container(security), spec=pod_security), options=options)
    assert plan.main.seccomp_unconfined is unconfined


def test_localhost_seccomp_profiles_are_refused(tmp_path):
    with pytest.raises(BadInput, match="Localhost"):
        plan_for(tmp_path, pod(container("{seccompProfile: {type: Localhost, localhostProfile: p.json}}")))


@pytest.mark.parametrize(
    ("resources", "quota_millicores", "shares", "memory"),
    [
        ("", None, 2, None),  # best effort: shares 2, no quota, no memory limit
        ("{requests: {cpu: 250m}}", None, 256, None),
        ("{limits: {cpu: 2, memory: 512Mi}}", 2000, 2048, 512 * 2**20),  # requests default to limits
        ("{limits: {cpu: 1}, requests: {cpu: 100m}}", 1000, 102, None),
        ("{limits: {cpu: 1m}}", 10, 2, None),  # quota never below 1000 µs per 100 ms period
        ("{limits: {memory: 1e9}}", None, 2, 1_000_000_000),
    ],
)
def test_resources_become_cgroup_limits(tmp_path, resources, quota_millicores, shares, memory):
    main = plan_for(tmp_path, pod(container(resources=resources))).main
    assert (main.cpu_limit_millicores, main.cpu_shares, main.memory_limit_bytes) == (
        quota_millicores,
        shares,
        memory,
    )


def test_cpu_shares_are_clamped():
    assert milli_cpu_to_shares(0) == 2
    assert milli_cpu_to_shares(1) == 2
    assert milli_cpu_to_shares(1000) == 1024
    assert milli_cpu_to_shares(10_000_000) == 262144


@pytest.mark.parametrize("field", ["shareProcessNamespace", "hostPID", "hostIPC"])
def test_namespace_sharing_the_plan_cannot_express_is_refused(tmp_path, field):
    with pytest.raises(BadInput) as caught:
        plan_for(tmp_path, pod(spec=f"{field}: true\n"))
    assert caught.value.field == f"spec.{field}"
