"""Volumes in kubelet's layout and modes (kubernetes-contract §2: atomic writer, fsGroup, tokens, subPath)."""

from __future__ import annotations

import base64
import json
import re

import pytest

from conformance.errors import BadInput
from tests.kubernetes_support import IMAGE, content, entries, mount, plan_for, pod

RESOURCES = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: hyper}
data: {lr: "0.1", "config.json": '{"epochs": 3}'}
---
apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: hunter2, user: alice}
"""


RUNNER_WITHOUT_AUTOMOUNT = (
    "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: runner}\nautomountServiceAccountToken: false\n"
)


def volume_pod(volumes: str, mounts: str, spec: str = "") -> str:
    containers = f"- name: main\n  image: {IMAGE}\n  volumeMounts:\n" + "".join(
        f"  - {line}\n" for line in mounts.strip().splitlines()
    )
    return pod(
        containers, spec=spec + "volumes:\n" + "".join(f"- {line}\n" for line in volumes.strip().splitlines())
    )


def test_configmap_volume_is_in_the_atomic_writer_layout(tmp_path):
    plan = plan_for(
        tmp_path,
        volume_pod("{name: hp, configMap: {name: hyper}}", "{name: hp, mountPath: /etc/hp}"),
        RESOURCES,
    )
    volume = plan.volume("hp")
    assert (volume.medium, volume.mode, volume.gid) == ("disk", 0o777, 0)  # a disk emptyDir underneath
    assert entries(volume) == {
        "..TS": ("dir", 0o755, 0, 0, None),
        "..TS/config.json": ("file", 0o644, 0, 0, None),
        "..TS/lr": ("file", 0o644, 0, 0, None),
        "..data": ("symlink", 0o777, 0, 0, "..TS"),
        "config.json": ("symlink", 0o777, 0, 0, "..data/config.json"),
        "lr": ("symlink", 0o777, 0, 0, "..data/lr"),
    }
    stamp = next(e.path for e in volume.entries if e.kind == "dir")
    assert re.fullmatch(
        r"\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d+", stamp
    )  # ..<UTC 2006_01_02_15_04_05>.<random>
    assert content(volume, "/lr") == b"0.1"
    assert mount(plan.main, "/etc/hp").read_only is True  # mounted read-only whatever the volumeMount says


def test_items_modes_and_nested_paths(tmp_path):
    volumes = (
        "{name: creds, secret: {secretName: db, defaultMode: 0400, "
        "items: [{key: password, path: db/password, mode: 0440}, {key: user, path: user}]}}"
    )
    plan = plan_for(tmp_path, volume_pod(volumes, "{name: creds, mountPath: /etc/creds}"), RESOURCES)
    volume = plan.volume("creds")
    assert (volume.medium, volume.mode) == ("memory", 0o1777)  # a tmpfs root
    assert entries(volume) == {
        "..TS": ("dir", 0o755, 0, 0, None),
        "..TS/db": ("dir", 0o755, 0, 0, None),
        "..TS/db/password": ("file", 0o440, 0, 0, None),
        "..TS/user": ("file", 0o400, 0, 0, None),
        "..data": ("symlink", 0o777, 0, 0, "..TS"),
        "db": ("symlink", 0o777, 0, 0, "..data/db"),  # one symlink per top-level name
        "user": ("symlink", 0o777, 0, 0, "..data/user"),
    }


def test_fs_group_gives_group_ownership_and_mode_bits(tmp_path):
    volumes = """\
    {name: hp, configMap: {name: hyper}}
    {name: creds, secret: {secretName: db, defaultMode: 0400}}
    {name: scratch, emptyDir: {}}
    """
    mounts = """\
    {name: hp, mountPath: /etc/hp}
    {name: creds, mountPath: /etc/creds}
    {name: scratch, mountPath: /scratch}
    """
    plan = plan_for(
        tmp_path, volume_pod(volumes, mounts, spec="securityContext: {fsGroup: 2000}\n"), RESOURCES
    )
    hp, creds, scratch = plan.volume("hp"), plan.volume("creds"), plan.volume("scratch")
    assert (hp.mode, hp.gid) == (0o2777, 2000)
    assert entries(hp)["..TS"] == ("dir", 0o2755, 0, 2000, None)  # setgid + 0110 on directories
    assert entries(hp)["..TS/lr"] == ("file", 0o644, 0, 2000, None)  # 0644 | 0440 stays 0644
    assert entries(hp)["lr"] == ("symlink", 0o777, 0, 2000, "..data/lr")  # symlinks only change group
    assert entries(creds)["..TS/password"] == ("file", 0o440, 0, 2000, None)  # 0400 | 0440 (read-only volume)
    assert (creds.mode, creds.gid) == (0o3777, 2000)  # the tmpfs root keeps its sticky bit
    assert (scratch.mode, scratch.gid) == (0o2777, 2000)  # emptyDir is read-write: | 0660


def token_entries(plan):
    volume = next(v for v in plan.volumes if v.name.startswith("kube-api-access-"))
    return volume, entries(volume)


def test_service_account_volume_without_fs_group_or_shared_user(tmp_path):
    plan = plan_for(tmp_path, pod())
    volume, layout = token_entries(plan)
    assert re.fullmatch(r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", volume.name)
    assert volume.medium == "memory"
    assert layout["..TS/token"] == ("file", 0o644, 0, 0, None)
    assert layout["..TS/ca.crt"] == ("file", 0o644, 0, 0, None)
    assert layout["..TS/namespace"] == ("file", 0o644, 0, 0, None)
    assert content(volume, "/namespace") == b"default"
    assert content(volume, "/ca.crt").startswith(b"-----BEGIN CERTIFICATE-----")
    sa_mount = mount(plan.main, "/var/run/secrets/kubernetes.io/serviceaccount")
    assert sa_mount.read_only is True and sa_mount.volume == volume.name


def test_token_is_owned_by_the_shared_run_as_user(tmp_path):
    _, layout = token_entries(plan_for(tmp_path, pod(spec="securityContext: {runAsUser: 1000}\n")))
    assert layout["..TS/token"] == ("file", 0o600, 1000, 0, None)
    assert layout["..TS/ca.crt"] == ("file", 0o644, 0, 0, None)


def test_token_is_0640_with_fs_group(tmp_path):
    _, layout = token_entries(plan_for(tmp_path, pod(spec="securityContext: {fsGroup: 3000}\n")))
    assert layout["..TS/token"] == ("file", 0o640, 0, 3000, None)


def test_token_keeps_0644_when_containers_run_as_different_users(tmp_path):
    containers = f"""\
    - name: main
      image: {IMAGE}
      securityContext: {{runAsUser: 1000}}
    - name: sidecar
      image: {IMAGE}
      securityContext: {{runAsUser: 1001}}
    """
    _, layout = token_entries(plan_for(tmp_path, pod(containers)))
    assert layout["..TS/token"] == ("file", 0o644, 0, 0, None)


def test_token_claims(tmp_path):
    plan = plan_for(tmp_path, pod(metadata="namespace: ml\n"), options={"region": "eu-west-1"})
    volume, _ = token_entries(plan)
    header, payload, signature = content(volume, "/token").split(b".")
    claims = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
    assert claims["sub"] == "system:serviceaccount:ml:default"
    assert claims["aud"] == ["https://kubernetes.default.svc"]
    assert claims["iss"].startswith("https://oidc.eks.eu-west-1.amazonaws.com/id/")
    assert claims["kubernetes.io"]["pod"]["name"] == "trainer"
    assert (
        claims["exp"] - claims["iat"] == 365 * 24 * 3600
    )  # the apiserver extends the 3607 s admission token
    assert claims["kubernetes.io"]["warnafter"] - claims["iat"] == 3607


@pytest.mark.parametrize(
    ("pod_setting", "account_setting"),
    [("automountServiceAccountToken: false\n", None), ("", False)],
)
def test_automount_off_on_the_pod_or_the_account(tmp_path, pod_setting, account_setting):
    resources = None
    spec = pod_setting
    if account_setting is not None:
        spec += "serviceAccountName: runner\n"
        resources = RUNNER_WITHOUT_AUTOMOUNT
    plan = plan_for(tmp_path, pod(spec=spec), resources)
    assert not any(v.name.startswith("kube-api-access-") for v in plan.volumes)
    assert not any(m.target.startswith("/var/run/secrets") for m in plan.main.mounts)


def test_the_pods_automount_wins_over_the_accounts(tmp_path):
    resources = RUNNER_WITHOUT_AUTOMOUNT
    plan = plan_for(
        tmp_path, pod(spec="serviceAccountName: runner\nautomountServiceAccountToken: true\n"), resources
    )
    assert any(v.name.startswith("kube-api-access-") for v in plan.volumes)


def test_an_undeclared_service_account_is_bad_input(tmp_path):
    with pytest.raises(BadInput) as caught:
        plan_for(tmp_path, pod(spec="serviceAccountName: ghost\n"))
    assert caught.value.field == "spec.serviceAccountName"
    assert "ServiceAccount default/ghost not found" in caught.value.problem


def test_downward_api_volume(tmp_path):
    volumes = """\
    name: info
      downwardAPI:
        items:
        - {path: labels, fieldRef: {fieldPath: metadata.labels}}
        - {path: annotations, fieldRef: {fieldPath: metadata.annotations}, mode: 0400}
        - {path: cpu_limit, resourceFieldRef: {containerName: main, resource: limits.cpu, divisor: 1m}}
    """
    manifest = pod(
        f"""\
    - name: main
      image: {IMAGE}
      resources: {{limits: {{cpu: 250m}}}}
      volumeMounts: [{{name: info, mountPath: /etc/podinfo}}]
    """,
        spec="volumes:\n- " + "\n".join(line[4:] for line in volumes.splitlines()).lstrip() + "\n",
        metadata='labels: {app: trainer, tier: "ml"}\nannotations: {note: "say \\"hi\\"\\n"}\n',
    )
    volume = plan_for(tmp_path, manifest).volume("info")
    assert volume.medium == "memory"
    assert content(volume, "/labels") == b'app="trainer"\ntier="ml"'  # sorted, Go-quoted, no final newline
    assert content(volume, "/annotations") == b'note="say \\"hi\\"\\n"'
    assert entries(volume)["..TS/annotations"][1] == 0o400
    assert content(volume, "/cpu_limit") == b"250"


def test_projected_volume_combines_sources_with_its_default_mode(tmp_path):
    volumes = (
        "{name: all, projected: {defaultMode: 0440, sources: [{configMap: {name: hyper, items: "
        "[{key: lr, path: hp/lr}]}}, {secret: {name: db}}, {downwardAPI: {items: [{path: ns, fieldRef: "
        "{fieldPath: metadata.namespace}}]}}, {serviceAccountToken: {path: vault-token, audience: vault, "
        "expirationSeconds: 600}}]}}"
    )
    volume = plan_for(tmp_path, volume_pod(volumes, "{name: all, mountPath: /projected}"), RESOURCES).volume(
        "all"
    )
    layout = entries(volume)
    assert {path for path in layout if path.startswith("..TS/")} == {
        "..TS/hp",
        "..TS/hp/lr",
        "..TS/password",
        "..TS/user",
        "..TS/ns",
        "..TS/vault-token",
    }
    assert layout["..TS/hp/lr"][1] == layout["..TS/password"][1] == layout["..TS/vault-token"][1] == 0o440


def test_missing_config_map_and_key_fail_unless_optional(tmp_path):
    with pytest.raises(BadInput) as caught:
        plan_for(tmp_path, volume_pod("{name: hp, configMap: {name: nope}}", "{name: hp, mountPath: /hp}"))
    assert caught.value.field == "spec.volumes[0].configMap"
    optional = plan_for(
        tmp_path,
        volume_pod("{name: hp, configMap: {name: nope, optional: true}}", "{name: hp, mountPath: /hp}"),
    )
    assert set(entries(optional.volume("hp"))) == {"..TS", "..data"}  # an empty atomic-writer volume
    with pytest.raises(BadInput, match="has no key 'absent'"):
        plan_for(
            tmp_path,
            volume_pod(
                "{name: hp, configMap: {name: hyper, items: [{key: absent, path: a}]}}",
                "{name: hp, mountPath: /hp}",
            ),
            RESOURCES,
        )


def test_sub_path_mounts_the_resolved_file(tmp_path):
    plan = plan_for(
        tmp_path,
        volume_pod(
            "{name: hp, configMap: {name: hyper}}",
            "{name: hp, mountPath: /etc/config.json, subPath: config.json}",
        ),
        RESOURCES,
    )
    sub = mount(plan.main, "/etc/config.json")
    assert re.fullmatch(r"\.\.\d{4}_[\d_]+\.\d+/config\.json", sub.sub_path)  # the file, not the symlink
    assert sub.read_only is True


def test_missing_sub_path_directory_is_created_with_the_roots_mode(tmp_path):
    manifest = pod(
        f"""\
    - name: main
      image: {IMAGE}
      env: [{{name: POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}]
      volumeMounts: [{{name: scratch, mountPath: /logs, subPathExpr: "logs/$(POD)"}}]
    """,
        spec="securityContext: {fsGroup: 2000}\nvolumes: [{name: scratch, emptyDir: {}}]\n",
    )
    plan = plan_for(tmp_path, manifest)
    assert mount(plan.main, "/logs").sub_path == "logs/trainer"
    layout = entries(plan.volume("scratch"))
    assert layout["logs/trainer"] == ("dir", 0o2777, 0, 2000, None)  # the root's mode, setgid included
    assert layout["logs"] == ("dir", 0o2755, 0, 2000, None)  # intermediate: 0777 & ~umask, setgid inherited


@pytest.mark.parametrize("sub_path", ["/abs", "../escape", "a/../../b"])
def test_sub_paths_that_leave_the_volume_are_refused(tmp_path, sub_path):
    with pytest.raises(BadInput, match="relative path without"):
        plan_for(
            tmp_path,
            volume_pod("{name: s, emptyDir: {}}", f"{{name: s, mountPath: /x, subPath: '{sub_path}'}}"),
        )


def test_sub_path_expr_with_an_unset_variable_is_refused(tmp_path):
    with pytest.raises(BadInput, match="missing value for NOPE"):
        plan_for(
            tmp_path,
            volume_pod("{name: s, emptyDir: {}}", "{name: s, mountPath: /x, subPathExpr: '$(NOPE)'}"),
        )


def test_memory_empty_dir_is_sized_like_kubelet(tmp_path):
    manifest = pod(
        f"""\
    - name: main
      image: {IMAGE}
      resources: {{limits: {{memory: 2Gi}}}}
      volumeMounts: [{{name: a, mountPath: /a}}, {{name: b, mountPath: /b}}]
    - name: sidecar
      image: {IMAGE}
      resources: {{limits: {{memory: 1Gi}}}}
    """,
        spec="volumes:\n- {name: a, emptyDir: {medium: Memory}}\n"
        "- {name: b, emptyDir: {medium: Memory, sizeLimit: 64Mi}}\n",
    )
    plan = plan_for(tmp_path, manifest, options={"node_allocatable": {"memory": "8Gi"}})
    assert (plan.volume("a").medium, plan.volume("a").mode) == ("memory", 0o1777)
    assert plan.volume("a").size_bytes == 3 * 2**30  # the pod's memory limit, below allocatable
    assert plan.volume("b").size_bytes == 64 * 2**20  # sizeLimit, smaller still


def test_claims_are_emulated_as_empty_directories_and_said_so(tmp_path):
    plan = plan_for(
        tmp_path,
        volume_pod(
            "{name: data, persistentVolumeClaim: {claimName: datasets}}", "{name: data, mountPath: /data}"
        ),
    )
    assert plan.volume("data").entries == []
    assert "emulated as an empty directory" in plan.metadata["note.volume.data"]


def test_host_path_volumes_are_refused(tmp_path):
    with pytest.raises(BadInput) as caught:
        plan_for(tmp_path, volume_pod("{name: h, hostPath: {path: /var/log}}", "{name: h, mountPath: /h}"))
    assert caught.value.field == "spec.volumes[0]" and "hostPath" in caught.value.problem


def test_a_mount_of_an_undeclared_volume_is_refused(tmp_path):
    with pytest.raises(BadInput) as caught:
        plan_for(tmp_path, volume_pod("{name: s, emptyDir: {}}", "{name: t, mountPath: /t}"))
    assert caught.value.field == "spec.containers[0].volumeMounts[0].name"
