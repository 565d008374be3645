"""What the API server does to a pod before kubelet sees it: defaulting and ServiceAccount admission.

- Defaults (`k8s pkg/apis/core/v1/defaults.go`): dnsPolicy ClusterFirst, enableServiceLinks true,
  terminationMessagePath /dev/termination-log, and resource requests defaulted to limits (SetDefaults_Pod).
- ServiceAccount admission (`plugin/pkg/admission/serviceaccount/admission.go`, kubernetes-contract §2):
  serviceAccountName defaults to `default`; a named account must exist; unless automount is off (the
  pod's `automountServiceAccountToken` wins over the account's), a projected `kube-api-access-<5>` volume
  (token 3607 s, `ca.crt` from the `kube-root-ca.crt` ConfigMap, `namespace` from the downward API,
  defaultMode 0644) is mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount in every
  container that has nothing mounted there.
"""

from __future__ import annotations

from kubernetes.client import models as k8s

from conformance.platforms.kubernetes.manifests import ConfigData, ManifestSet
from conformance.platforms.kubernetes.tokens import ADMISSION_TOKEN_SECONDS, CLUSTER_CA_PEM
from conformance.platforms.kubernetes.workloads import PodFacts, random_suffix

SERVICE_ACCOUNT_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
SERVICE_ACCOUNT_VOLUME_PREFIX = "kube-api-access-"
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"


def all_containers(spec: k8s.V1PodSpec) -> list[k8s.V1Container]:
    return [*(spec.init_containers or []), *spec.containers]


def apply_defaults(spec: k8s.V1PodSpec) -> None:
    spec.dns_policy = spec.dns_policy or "ClusterFirst"
    if spec.enable_service_links is None:
        spec.enable_service_links = True
    if not spec.service_account_name:
        spec.service_account_name = spec.service_account or "default"
    for container in all_containers(spec):
        container.termination_message_path = container.termination_message_path or TERMINATION_MESSAGE_PATH
        resources = container.resources
        if resources is not None and resources.limits:
            requests = dict(resources.requests or {})
            for name, quantity in resources.limits.items():
                requests.setdefault(name, quantity)
            resources.requests = requests


def service_account_of(pod: PodFacts, manifests: ManifestSet) -> k8s.V1ServiceAccount:
    """The pod's ServiceAccount: declared in the resources, or the `default` every namespace has."""
    name = pod.spec.service_account_name
    loaded = manifests.service_accounts.get((pod.namespace, name))
    if loaded is not None:
        return loaded.obj
    if name == "default":
        return k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="default", namespace=pod.namespace))
    raise pod.workload.bad(
        "serviceAccountName",
        f"ServiceAccount {pod.namespace}/{name} not found: add its manifest "
        "to the target's resources (the API server would refuse the pod)",
    )


def publish_root_ca(manifests: ManifestSet, namespace: str) -> None:
    """The root-ca-cert-publisher controller puts `kube-root-ca.crt` in every namespace."""
    key = (namespace, ROOT_CA_CONFIG_MAP)
    if key not in manifests.config_maps:
        content = {"ca.crt": CLUSTER_CA_PEM}
        manifests.config_maps[key] = ConfigData("ConfigMap", ROOT_CA_CONFIG_MAP, content, content)


def should_automount(pod: PodFacts, account: k8s.V1ServiceAccount) -> bool:
    if pod.spec.automount_service_account_token is not None:
        return pod.spec.automount_service_account_token
    if account.automount_service_account_token is not None:
        return account.automount_service_account_token
    return True


def mount_service_account_token(pod: PodFacts) -> None:
    spec = pod.spec
    existing = next(
        (v.name for v in spec.volumes or [] if v.name.startswith(SERVICE_ACCOUNT_VOLUME_PREFIX)), None
    )
    volume_name = existing or SERVICE_ACCOUNT_VOLUME_PREFIX + random_suffix(pod.uid.encode("utf-8"))
    needs_volume = False
    for container in all_containers(spec):
        if any(mount.mount_path == SERVICE_ACCOUNT_MOUNT_PATH for mount in container.volume_mounts or []):
            continue
        container.volume_mounts = [
            *(container.volume_mounts or []),
            k8s.V1VolumeMount(name=volume_name, read_only=True, mount_path=SERVICE_ACCOUNT_MOUNT_PATH),
        ]
        needs_volume = True
    if existing is None and needs_volume:
        spec.volumes = [
            *(spec.volumes or []),
            k8s.V1Volume(name=volume_name, projected=token_volume_source()),
        ]


def token_volume_source() -> k8s.V1ProjectedVolumeSource:
    return k8s.V1ProjectedVolumeSource(
        default_mode=0o644,
        sources=[
            k8s.V1VolumeProjection(
                service_account_token=k8s.V1ServiceAccountTokenProjection(
                    path="token", expiration_seconds=ADMISSION_TOKEN_SECONDS
                )
            ),
            k8s.V1VolumeProjection(
                config_map=k8s.V1ConfigMapProjection(
                    name=ROOT_CA_CONFIG_MAP, items=[k8s.V1KeyToPath(key="ca.crt", path="ca.crt")]
                )
            ),
            k8s.V1VolumeProjection(
                downward_api=k8s.V1DownwardAPIProjection(
                    items=[
                        k8s.V1DownwardAPIVolumeFile(
                            path="namespace",
                            field_ref=k8s.V1ObjectFieldSelector(
                                api_version="v1", field_path="metadata.namespace"
                            ),
                        )
                    ]
                )
            ),
        ],
    )
