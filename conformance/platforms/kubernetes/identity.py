"""EKS identity as the mutating webhook injects it.

kubernetes-contract §5; aws/amazon-eks-pod-identity-webhook `pkg/handler/handler.go`.

- IRSA: for a ServiceAccount annotated `eks.amazonaws.com/role-arn`, every container and init container
  (except those named in the pod annotation `eks.amazonaws.com/skip-containers`) gets, appended to `env`:
  AWS_STS_REGIONAL_ENDPOINTS=regional (webhook flag or SA annotation `sts-regional-endpoints: "true"`),
  AWS_DEFAULT_REGION and AWS_REGION (when the webhook has a region), AWS_ROLE_ARN and
  AWS_WEB_IDENTITY_TOKEN_FILE — each group only if the container's `env` sets none of its keys (envFrom
  is not looked at, so a region from a ConfigMap is overridden) — and a read-only mount of the projected
  `aws-iam-token` volume (audience `sts.amazonaws.com` or the SA's `audience` annotation, 86400 s or the
  `token-expiration` annotation, path `token`).
- EKS Pod Identity (an association for the ServiceAccount; takes precedence over IRSA): the same with
  AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, the
  `eks-pod-identity-token` volume (audience `pods.eks.amazonaws.com`) and the pod label
  `eks.amazonaws.com/pod-identity=enabled`.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes.client import models as k8s

from conformance.platforms.kubernetes.admission import all_containers
from conformance.platforms.kubernetes.options import KubernetesOptions
from conformance.platforms.kubernetes.workloads import PodFacts

ANNOTATION_PREFIX = "eks.amazonaws.com/"
ROLE_ARN = ANNOTATION_PREFIX + "role-arn"
AUDIENCE = ANNOTATION_PREFIX + "audience"
STS_REGIONAL = ANNOTATION_PREFIX + "sts-regional-endpoints"
TOKEN_EXPIRATION = ANNOTATION_PREFIX + "token-expiration"
SKIP_CONTAINERS = ANNOTATION_PREFIX + "skip-containers"
DEFAULT_EXPIRATION = 86400
REGION_KEYS = ("AWS_REGION", "AWS_DEFAULT_REGION")
STS_KEY = "AWS_STS_REGIONAL_ENDPOINTS"


@dataclass(frozen=True)
class IdentityPatch:
    mode: str  # "irsa" | "pod-identity"
    volume_name: str
    mount_path: str
    token_path: str
    audience: str
    expiration: int
    credential_env: tuple[tuple[str, str], ...]  # the reserved keys, in the order the webhook appends them
    regional_sts: bool
    region: str | None


IRSA_MOUNT = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
POD_IDENTITY_MOUNT = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
POD_IDENTITY_TOKEN = "eks-pod-identity-token"


def identity_patch(
    pod: PodFacts, account: k8s.V1ServiceAccount, options: KubernetesOptions
) -> IdentityPatch | None:
    """What the webhook would inject for this pod, or None."""
    annotations = (account.metadata.annotations if account.metadata else None) or {}
    regional = options.sts_regional_endpoints or annotations.get(STS_REGIONAL) == "true"
    expiration = _expiration(pod.annotations.get(TOKEN_EXPIRATION) or annotations.get(TOKEN_EXPIRATION))
    if options.identity == "pod-identity":
        token_file = f"{POD_IDENTITY_MOUNT}/{POD_IDENTITY_TOKEN}"
        return IdentityPatch(
            "pod-identity",
            POD_IDENTITY_TOKEN,
            POD_IDENTITY_MOUNT,
            POD_IDENTITY_TOKEN,
            "pods.eks.amazonaws.com",
            DEFAULT_EXPIRATION,
            (
                ("AWS_CONTAINER_CREDENTIALS_FULL_URI", options.pod_identity_uri),
                ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file),
            ),
            regional,
            options.region,
        )
    if options.identity == "webhook" and annotations.get(ROLE_ARN):
        return IdentityPatch(
            "irsa",
            "aws-iam-token",
            IRSA_MOUNT,
            "token",
            annotations.get(AUDIENCE) or "sts.amazonaws.com",
            expiration,
            (("AWS_ROLE_ARN", annotations[ROLE_ARN]), ("AWS_WEB_IDENTITY_TOKEN_FILE", f"{IRSA_MOUNT}/token")),
            regional,
            options.region,
        )
    return None


def _expiration(text: str | None) -> int:
    try:
        return int(text) if text else DEFAULT_EXPIRATION
    except ValueError:
        return DEFAULT_EXPIRATION


def apply_identity(pod: PodFacts, patch: IdentityPatch) -> None:
    skipped = {name.strip() for name in pod.annotations.get(SKIP_CONTAINERS, "").split(",") if name.strip()}
    for container in all_containers(pod.spec):
        if container.name not in skipped:
            _patch_container(container, patch)
    if not any(volume.name == patch.volume_name for volume in pod.spec.volumes or []):
        token = k8s.V1ServiceAccountTokenProjection(
            audience=patch.audience, expiration_seconds=patch.expiration, path=patch.token_path
        )
        pod.spec.volumes = [
            *(pod.spec.volumes or []),
            k8s.V1Volume(
                name=patch.volume_name,
                projected=k8s.V1ProjectedVolumeSource(
                    sources=[k8s.V1VolumeProjection(service_account_token=token)]
                ),
            ),
        ]
    if patch.mode == "pod-identity":
        pod.labels["eks.amazonaws.com/pod-identity"] = "enabled"


def _patch_container(container: k8s.V1Container, patch: IdentityPatch) -> None:
    """`addEnvToContainer`: look only at `env`, append what is missing, then the token mount."""
    names = {variable.name for variable in container.env or []}
    reserved_defined = any(key in names for key, _ in patch.credential_env)
    region_defined = any(key in names for key in REGION_KEYS)
    sts_defined = STS_KEY in names
    if reserved_defined and region_defined and sts_defined:
        return  # the webhook leaves such a container alone, mount included
    additions: list[tuple[str, str]] = []
    if not sts_defined and patch.regional_sts:
        additions.append((STS_KEY, "regional"))
    if not region_defined and patch.region:
        additions += [("AWS_DEFAULT_REGION", patch.region), ("AWS_REGION", patch.region)]
    if not reserved_defined:
        additions += list(patch.credential_env)
    if additions:
        container.env = [*(container.env or []), *(k8s.V1EnvVar(name=k, value=v) for k, v in additions)]
    if not any(mount.name == patch.volume_name for mount in container.volume_mounts or []):
        container.volume_mounts = [
            *(container.volume_mounts or []),
            k8s.V1VolumeMount(name=patch.volume_name, read_only=True, mount_path=patch.mount_path),
        ]
