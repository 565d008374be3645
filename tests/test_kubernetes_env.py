"""A container's environment as kubelet builds it (kubernetes-contract §1)."""

from __future__ import annotations

import pytest
from kubernetes.client import models as k8s

from conformance.errors import BadInput
from conformance.platforms.kubernetes.env import service_link_variables
from tests.kubernetes_support import IMAGE, env_of, plan_for, pod


def service(name: str, cluster_ip: str, *ports: dict) -> k8s.V1Service:
    return k8s.V1Service(
        metadata=k8s.V1ObjectMeta(name=name),
        spec=k8s.V1ServiceSpec(cluster_ip=cluster_ip, ports=[k8s.V1ServicePort(**p) for p in ports]),
    )


def test_service_links_name_every_port_like_envvars_go():
    variables = service_link_variables(
        [
            service(
                "redis-cache",
                "10.0.0.11",
                {"port": 6379, "name": "redis"},
                {"port": 9121, "name": "metrics-port", "protocol": "UDP"},
            )
        ]
    )
    assert variables == {
        "REDIS_CACHE_SERVICE_HOST": "10.0.0.11",
        "REDIS_CACHE_SERVICE_PORT": "6379",  # first port only
        "REDIS_CACHE_SERVICE_PORT_REDIS": "6379",  # named ports, `-` → `_`, upper case
        "REDIS_CACHE_SERVICE_PORT_METRICS_PORT": "9121",
        "REDIS_CACHE_PORT": "tcp://10.0.0.11:6379",  # Docker-links form of the first port
        "REDIS_CACHE_PORT_6379_TCP": "tcp://10.0.0.11:6379",  # protocol defaults to TCP
        "REDIS_CACHE_PORT_6379_TCP_PROTO": "tcp",
        "REDIS_CACHE_PORT_6379_TCP_PORT": "6379",
        "REDIS_CACHE_PORT_6379_TCP_ADDR": "10.0.0.11",
        "REDIS_CACHE_PORT_9121_UDP": "udp://10.0.0.11:9121",
        "REDIS_CACHE_PORT_9121_UDP_PROTO": "udp",
        "REDIS_CACHE_PORT_9121_UDP_PORT": "9121",
        "REDIS_CACHE_PORT_9121_UDP_ADDR": "10.0.0.11",
    }


def test_ipv6_cluster_ips_are_bracketed_only_in_urls():
    variables = service_link_variables([service("api", "fd00::1f", {"port": 443})])
    assert variables["API_PORT"] == "tcp://[fd00::1f]:443"  # net.JoinHostPort
    assert variables["API_PORT_443_TCP"] == "tcp://[fd00::1f]:443"
    assert variables["API_SERVICE_HOST"] == "fd00::1f"
    assert variables["API_PORT_443_TCP_ADDR"] == "fd00::1f"


def test_headless_services_have_no_variables():
    assert service_link_variables([service("db", "None", {"port": 5432})]) == {}


SERVICES = """\
apiVersion: v1
kind: Service
metadata: {name: feature-store}
spec: {ports: [{port: 8080, name: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: elsewhere}
spec: {clusterIP: 10.100.7.7, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: headless}
spec: {clusterIP: None, ports: [{port: 80}]}
"""


def test_pod_sees_kubernetes_and_same_namespace_services(tmp_path):
    env = env_of(plan_for(tmp_path, pod(), SERVICES).main)
    assert env["KUBERNETES_SERVICE_HOST"] == "10.100.0.1"  # .1 of the EKS default service CIDR
    assert env["KUBERNETES_SERVICE_PORT"] == env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT_443_TCP"] == "tcp://10.100.0.1:443"
    assert env["FEATURE_STORE_SERVICE_PORT_HTTP"] == "8080"
    assert env["FEATURE_STORE_SERVICE_HOST"].startswith("10.100.")  # allocated from the service CIDR
    assert not any(name.startswith(("OTHER_", "HEADLESS_")) for name in env)


def test_enable_service_links_false_keeps_only_the_kubernetes_service(tmp_path):
    env = env_of(plan_for(tmp_path, pod(spec="enableServiceLinks: false\n"), SERVICES).main)
    assert "KUBERNETES_SERVICE_HOST" in env
    assert not any(name.startswith("FEATURE_STORE") for name in env)


def test_service_cidr_option_moves_the_kubernetes_service_and_dns(tmp_path):
    plan = plan_for(tmp_path, pod(), options={"service_cidr": "172.20.0.0/16"})
    assert env_of(plan.main)["KUBERNETES_SERVICE_HOST"] == "172.20.0.1"
    assert b"nameserver 172.20.0.10\n" in plan.volume("kubelet.pod-files").entries[1].content


CONFIG = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: base}
data: {LR: "0.1", EPOCHS: "3", SHARED: from-base}
binaryData: {blob: AAE=}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: override}
data: {SHARED: from-override}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {TOKEN: aHVudGVyMg==}
stringData: {USER: alice}
"""


def test_env_from_then_env_with_prefix_and_overrides(tmp_path):
    containers = f"""\
    - name: main
      image: {IMAGE}
      envFrom:
      - configMapRef: {{name: base}}
      - configMapRef: {{name: override}}
      - secretRef: {{name: creds}}
        prefix: DB_
      env:
      - {{name: EPOCHS, value: "10"}}
      - {{name: RUN, value: "$(EPOCHS)x$(LR)-$(LATER)-$(DB_USER)"}}
      - {{name: LATER, value: later}}
      - {{name: BLANK}}
    """
    env = env_of(plan_for(tmp_path, pod(containers), CONFIG).main)
    assert env["SHARED"] == "from-override"  # later envFrom sources overwrite
    assert env["EPOCHS"] == "10"  # env overrides envFrom
    assert env["RUN"] == "10x0.1-$(LATER)-alice"  # only envFrom and earlier env entries resolve
    assert env["DB_TOKEN"] == "hunter2" and env["DB_USER"] == "alice"  # Secret data + stringData, prefixed
    assert env["BLANK"] == ""
    assert "blob" not in env  # binaryData is not propagated to the environment


def test_env_values_override_service_variables_and_resolve_against_them(tmp_path):
    containers = f"""\
    - name: main
      image: {IMAGE}
      env:
      - {{name: API, value: "https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"}}
      - {{name: KUBERNETES_SERVICE_PORT, value: "6443"}}
    """
    env = env_of(plan_for(tmp_path, pod(containers)).main)
    assert env["API"] == "https://10.100.0.1:443"
    assert env["KUBERNETES_SERVICE_PORT"] == "6443"  # a pod-set name suppresses the service variable


def test_command_and_args_expand_against_the_final_environment(tmp_path):
    containers = f"""\
    - name: main
      image: {IMAGE}
      command: ["/entrypoint.sh", "$(MODE)"]
      args: ["--host=$(KUBERNETES_SERVICE_HOST)", "$(HOME)", "$$(MODE)"]
      env: [{{name: MODE, value: train}}]
    """
    main = plan_for(tmp_path, pod(containers)).main
    assert main.entrypoint == ["/entrypoint.sh", "train"]
    assert main.command == ["--host=10.100.0.1", "$(HOME)", "$(MODE)"]  # image ENV (HOME) is never visible


def test_optional_references_that_do_not_resolve_leave_the_variable_unset(tmp_path):
    containers = f"""\
    - name: main
      image: {IMAGE}
      envFrom: [{{configMapRef: {{name: missing, optional: true}}}}, {{configMapRef: {{name: base}}}}]
      env:
      - name: LR
        valueFrom: {{configMapKeyRef: {{name: base, key: nope, optional: true}}}}
      - name: GONE
        valueFrom: {{secretKeyRef: {{name: missing, key: x, optional: true}}}}
    """
    env = env_of(plan_for(tmp_path, pod(containers), CONFIG).main)
    assert env["LR"] == "0.1"  # the envFrom value stays
    assert "GONE" not in env


@pytest.mark.parametrize(
    ("reference", "field", "problem"),
    [
        (
            "configMapKeyRef: {name: absent, key: x}",
            "spec.containers[0].env[0].valueFrom.configMapKeyRef",
            "ConfigMap 'absent' not found",
        ),
        (
            "configMapKeyRef: {name: base, key: nope}",
            "spec.containers[0].env[0].valueFrom.configMapKeyRef",
            "has no key 'nope'",
        ),
        (
            "secretKeyRef: {name: creds, key: nope}",
            "spec.containers[0].env[0].valueFrom.secretKeyRef",
            "has no key 'nope'",
        ),
        (
            "fieldRef: {fieldPath: metadata.labels}",
            "spec.containers[0].env[0].valueFrom.fieldRef",
            "not supported in an environment variable",
        ),
    ],
)
def test_references_that_do_not_resolve_name_the_manifest_and_field(tmp_path, reference, field, problem):
    containers = f"""\
    - name: main
      image: {IMAGE}
      env:
      - name: X
        valueFrom: {{{reference}}}
    """
    with pytest.raises(BadInput) as caught:
        plan_for(tmp_path, pod(containers), CONFIG)
    assert caught.value.source == str(tmp_path / "pod.yaml")
    assert caught.value.field == field
    assert problem in caught.value.problem


def test_downward_api_fields(tmp_path):
    containers = f"""\
    - name: main
      image: {IMAGE}
      env:
      - {{name: NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
      - {{name: NS, valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}}}
      - {{name: UID, valueFrom: {{fieldRef: {{fieldPath: metadata.uid}}}}}}
      - {{name: TEAM, valueFrom: {{fieldRef: {{fieldPath: "metadata.labels['team']"}}}}}}
      - {{name: NOLABEL, valueFrom: {{fieldRef: {{fieldPath: "metadata.labels['absent']"}}}}}}
      - {{name: NODE, valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}}}
      - {{name: SA, valueFrom: {{fieldRef: {{fieldPath: spec.serviceAccountName}}}}}}
      - {{name: HOST_IP, valueFrom: {{fieldRef: {{fieldPath: status.hostIP}}}}}}
      - {{name: POD_IPS, valueFrom: {{fieldRef: {{fieldPath: status.podIPs}}}}}}
    """
    plan = plan_for(
        tmp_path,
        pod(containers, metadata="labels: {team: ml}\n"),
        options={"region": "eu-west-1", "pod_ips": ["10.0.1.23", "2600:1f14::17"], "pod_uid": "u-1"},
    )
    env = env_of(plan.main)
    assert (env["NAME"], env["NS"], env["UID"], env["TEAM"], env["NOLABEL"]) == (
        "trainer",
        "default",
        "u-1",
        "ml",
        "",
    )
    assert env["NODE"] == "ip-10-0-1-10.eu-west-1.compute.internal"
    assert env["SA"] == "default"
    assert env["HOST_IP"] == "10.0.1.10"
    assert env["POD_IPS"] == "10.0.1.23,2600:1f14::17"


@pytest.mark.parametrize(
    ("resource", "divisor", "expected"),
    [
        ("limits.cpu", None, "1"),  # 500m rounds up to 1
        ("limits.cpu", "1m", "500"),
        ("requests.cpu", "1m", "250"),
        ("limits.memory", None, "1610612736"),
        ("limits.memory", "1Gi", "2"),  # 1.5Gi rounds up
        ("limits.memory", "1M", "1611"),
        ("requests.memory", "1Mi", "1536"),  # requests default to limits
        ("limits.ephemeral-storage", "1Gi", "100"),  # no limit: node allocatable
        ("requests.ephemeral-storage", None, "0"),
    ],
)
def test_resource_field_ref_divides_and_rounds_up(tmp_path, resource, divisor, expected):
    divisor_text = f", divisor: {divisor}" if divisor else ""
    containers = f"""\
    - name: main
      image: {IMAGE}
      resources: {{limits: {{cpu: 500m, memory: 1.5Gi}}, requests: {{cpu: 0.25}}}}
      env:
      - name: VALUE
        valueFrom: {{resourceFieldRef: {{resource: {resource}{divisor_text}}}}}
    """
    plan = plan_for(tmp_path, pod(containers), options={"node_allocatable": {"ephemeral-storage": "100Gi"}})
    assert env_of(plan.main)["VALUE"] == expected


def test_resource_field_ref_without_limit_reads_node_allocatable(tmp_path):
    containers = f"""\
    - name: main
      image: {IMAGE}
      env:
      - {{name: CPUS, valueFrom: {{resourceFieldRef: {{resource: limits.cpu}}}}}}
      - {{name: MEM, valueFrom: {{resourceFieldRef: {{resource: limits.memory, divisor: 1Mi}}}}}}
    """
    plan = plan_for(
        tmp_path, pod(containers), options={"node_allocatable": {"cpu": "3920m", "memory": "15Gi"}}
    )
    assert env_of(plan.main)["CPUS"] == "4"
    assert env_of(plan.main)["MEM"] == "15360"


def test_a_divisor_the_api_rejects_is_bad_input(tmp_path):
    containers = f"""\
    - name: main
      image: {IMAGE}
      env:
      - {{name: CPUS, valueFrom: {{resourceFieldRef: {{resource: limits.cpu, divisor: 1Mi}}}}}}
    """
    with pytest.raises(BadInput, match="divisor '1Mi' is not allowed for cpu"):
        plan_for(tmp_path, pod(containers))


def test_environment_order_is_deterministic(tmp_path):
    containers = f"""\
    - name: main
      image: {IMAGE}
      envFrom: [{{configMapRef: {{name: base}}}}]
      env: [{{name: Z, value: z}}, {{name: A, value: a}}]
    """
    first = [name for name, _ in plan_for(tmp_path, pod(containers), CONFIG).main.env]
    second = [name for name, _ in plan_for(tmp_path, pod(containers), CONFIG).main.env]
    assert first == second
    assert first[:5] == ["LR", "EPOCHS", "SHARED", "Z", "A"]  # envFrom, then env, as declared
    assert all(name.startswith("KUBERNETES_") for name in first[5:])  # then the service variables
