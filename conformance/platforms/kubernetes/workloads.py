"""The pod a controller would create from a workload: its name, labels, annotations and identity fields.

What the controllers derive from the template is reproduced (Deployment's `pod-template-hash` format,
StatefulSet's `<name>-0` with hostname/subdomain, Job's labels and an Indexed Job's completion index, a
CronJob's `<name>-<scheduled minute>` Job). The parts a real cluster draws at random — the 5-character
suffix of generated names, the pod and controller UIDs — are derived from the manifest instead, so a
baseline stays stable between runs; the `pod_name` and `pod_uid` options pin them explicitly.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import models as k8s

from conformance.platforms.kubernetes.manifests import Workload
from conformance.platforms.kubernetes.options import KubernetesOptions

# k8s.io/apimachinery/pkg/util/rand: the alphabet of generated names (no vowels, no confusable digits).
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
JOB_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"


@dataclass
class PodFacts:
    """Everything about the pod that kubelet reads besides its spec."""

    name: str
    namespace: str
    uid: str
    labels: dict[str, str]
    annotations: dict[str, str]
    node_name: str
    pod_ips: list[str]
    host_ips: list[str]
    spec: k8s.V1PodSpec
    workload: Workload
    controller: dict[str, str] = field(default_factory=dict)  # names shown in reports


def materialize_pod(workload: Workload, namespace: str, options: KubernetesOptions) -> PodFacts:
    """The pod as stored by the API server after its controller created it (before admission)."""
    spec = workload.spec.model_copy(deep=True)
    labels = dict(workload.metadata.labels or {})
    annotations = dict(workload.metadata.annotations or {})
    seed = _manifest_digest(workload)
    owner = workload.obj.metadata.name if workload.kind != "Pod" else None
    controller: dict[str, str] = {"kind": workload.kind}
    if owner:
        controller["name"] = owner

    if workload.kind == "Pod":
        name = workload.metadata.name or (workload.metadata.generate_name + random_suffix(seed))
    elif workload.kind == "Deployment":
        template_hash = pod_template_hash(seed)
        labels["pod-template-hash"] = template_hash
        name = f"{owner}-{template_hash}-{random_suffix(seed)}"
    elif workload.kind == "StatefulSet":
        # statefulset controller newStatefulSetPod/updateIdentity: ordinal 0, hostname = pod name,
        # subdomain = serviceName
        name = f"{owner}-0"
        labels.update(
            {
                "controller-revision-hash": f"{owner}-{pod_template_hash(seed)}",
                "statefulset.kubernetes.io/pod-name": name,
                "apps.kubernetes.io/pod-index": "0",
            }
        )
        spec.hostname = name
        if workload.obj.spec.service_name:
            spec.subdomain = workload.obj.spec.service_name
    else:
        job_spec = workload.obj.spec if workload.kind == "Job" else workload.obj.spec.job_template.spec
        job_name = owner if workload.kind == "Job" else f"{owner}-{int(time.time()) // 60}"
        controller["job"] = job_name
        controller_uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"job:{namespace}/{job_name}:{seed}"))
        labels.update(
            {
                "batch.kubernetes.io/controller-uid": controller_uid,
                "batch.kubernetes.io/job-name": job_name,
                "controller-uid": controller_uid,
                "job-name": job_name,
            }
        )
        if (job_spec.completion_mode or "NonIndexed") == "Indexed":
            # job controller: index annotation + label, hostname <job>-<index>, JOB_COMPLETION_INDEX env
            labels[JOB_COMPLETION_INDEX] = "0"
            annotations[JOB_COMPLETION_INDEX] = "0"
            spec.hostname = f"{job_name}-0"
            _add_completion_index_env(spec)
            name = f"{job_name}-0-{random_suffix(seed)}"
        else:
            name = f"{job_name}-{random_suffix(seed)}"

    name = options.pod_name or name
    uid = options.pod_uid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod:{namespace}/{name}:{seed}"))
    return PodFacts(
        name=name,
        namespace=namespace,
        uid=uid,
        labels=labels,
        annotations=annotations,
        node_name=spec.node_name or options.resolved_node_name,
        pod_ips=[str(options.host_ip)] if spec.host_network else [str(ip) for ip in options.pod_ips],
        host_ips=[str(options.host_ip)],
        spec=spec,
        workload=workload,
        controller=controller,
    )


def pod_manifest(pod: PodFacts, workload_container: int, image: str) -> dict[str, Any]:
    """The pod as its controller submits it to the API server, in API field names.

    The template's spec as written plus what the controller itself sets (hostname and subdomain, an
    Indexed Job's JOB_COMPLETION_INDEX), the controller's name, labels and annotations, and the target's
    image in the workload container (the image under test, as in the emulation). Nothing the API server,
    the admission webhooks or kubelet add: call it before admission changes `pod.spec`. There are no
    ownerReferences: the controller object does not exist in the cluster the pod is sent to.
    """
    spec = pod.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    spec["containers"][workload_container]["image"] = image
    metadata: dict[str, Any] = {"name": pod.name, "namespace": pod.namespace}
    if pod.labels:
        metadata["labels"] = dict(pod.labels)
    if pod.annotations:
        metadata["annotations"] = dict(pod.annotations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def random_suffix(seed: bytes, length: int = 5) -> str:
    """A name suffix in the apiserver's alphabet, derived from `seed` instead of drawn at random."""
    digest = hashlib.sha256(b"suffix:" + seed).digest()
    return "".join(NAME_ALPHABET[byte % len(NAME_ALPHABET)] for byte in digest[:length])


def pod_template_hash(seed: bytes) -> str:
    """`pod-template-hash`'s format: a uint32 in decimal, each digit mapped by `rand.SafeEncodeString`."""
    number = int.from_bytes(hashlib.sha256(b"template:" + seed).digest()[:4], "big")
    return "".join(NAME_ALPHABET[ord(digit) % len(NAME_ALPHABET)] for digit in str(number))


def _manifest_digest(workload: Workload) -> bytes:
    document = workload.obj.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode("utf-8")).digest()


def _add_completion_index_env(spec: k8s.V1PodSpec) -> None:
    """job controller addCompletionIndexEnvVariables: every (init) container, unless already set."""
    for container in [*(spec.init_containers or []), *spec.containers]:
        if any(env.name == "JOB_COMPLETION_INDEX" for env in container.env or []):
            continue
        reference = k8s.V1EnvVarSource(
            field_ref=k8s.V1ObjectFieldSelector(field_path=f"metadata.annotations['{JOB_COMPLETION_INDEX}']")
        )
        container.env = [
            *(container.env or []),
            k8s.V1EnvVar(name="JOB_COMPLETION_INDEX", value_from=reference),
        ]
