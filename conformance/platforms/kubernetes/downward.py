"""Downward API values: pod fields (`fieldRef`) and container resources (`resourceFieldRef`).

kubernetes-contract §1 (Downward API): kubelet `podFieldSelectorRuntimeValue`, `k8s pkg/fieldpath`
(`ExtractFieldPathAsString`, `FormatMap`) and `pkg/api/v1/resource` (`ExtractContainerResourceValue`,
values divided by the divisor and rounded up; a missing limit is the node's allocatable).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from kubernetes.client import models as k8s

from conformance.platforms.kubernetes.quantity import QuantityError, milli_value, parse_quantity, value
from conformance.platforms.kubernetes.workloads import PodFacts

ENV_FIELD_PATHS = frozenset(
    {
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.serviceAccountName",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
    }
)
VOLUME_FIELD_PATHS = frozenset(
    {
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "metadata.labels",
        "metadata.annotations",
    }
)
_SUBSCRIPTED = re.compile(r"^(metadata\.labels|metadata\.annotations)\['(.*)'\]$")
CPU_DIVISORS = frozenset({"1m", "1"})
BYTE_DIVISORS = frozenset({"1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"})
DEFAULTED_LIMITS = ("cpu", "memory", "ephemeral-storage")


class DownwardError(ValueError):
    pass


def field_value(selector: k8s.V1ObjectFieldSelector, pod: PodFacts, for_volume: bool) -> str:
    if (selector.api_version or "v1") != "v1":
        raise DownwardError(f"unsupported apiVersion {selector.api_version!r} (only v1)")
    path = selector.field_path
    subscripted = _SUBSCRIPTED.match(path)
    if subscripted:
        source = pod.labels if subscripted.group(1) == "metadata.labels" else pod.annotations
        return source.get(subscripted.group(2), "")
    allowed = VOLUME_FIELD_PATHS if for_volume else ENV_FIELD_PATHS
    if path not in allowed:
        where = "a downwardAPI volume" if for_volume else "an environment variable"
        raise DownwardError(
            f"fieldPath {path!r} is not supported in {where} (supported: {', '.join(sorted(allowed))})"
        )
    return {
        "metadata.name": lambda: pod.name,
        "metadata.namespace": lambda: pod.namespace,
        "metadata.uid": lambda: pod.uid,
        "metadata.labels": lambda: format_map(pod.labels),
        "metadata.annotations": lambda: format_map(pod.annotations),
        "spec.nodeName": lambda: pod.node_name,
        "spec.serviceAccountName": lambda: pod.spec.service_account_name or "",
        "status.hostIP": lambda: pod.host_ips[0],
        "status.hostIPs": lambda: ",".join(pod.host_ips),
        "status.podIP": lambda: pod.pod_ips[0],
        "status.podIPs": lambda: ",".join(pod.pod_ips),
    }[path]()


def format_map(values: dict[str, str]) -> str:
    """`fieldpath.FormatMap`: sorted `key="value"` lines (Go %q quoting), newline-joined, no final newline."""
    return "\n".join(f"{key}={go_quote(values[key])}" for key in sorted(values))


def go_quote(text: str) -> str:
    """Go's `strconv.Quote`: printable runes kept, the usual escapes, others as \\x, \\u or \\U."""
    escapes = {
        "\a": "\\a",
        "\b": "\\b",
        "\f": "\\f",
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\v": "\\v",
        "\\": "\\\\",
        '"': '\\"',
    }
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def resource_value(
    selector: k8s.V1ResourceFieldSelector, container: k8s.V1Container, allocatable: dict[str, str]
) -> str:
    """`ExtractContainerResourceValue` on the container with limits defaulted to node allocatable."""
    kind, _, resource = selector.resource.partition(".")
    if kind not in ("limits", "requests") or not resource:
        raise DownwardError(f"unsupported resource {selector.resource!r}")
    is_cpu = resource == "cpu"
    if resource not in ("cpu", "memory", "ephemeral-storage") and not resource.startswith("hugepages-"):
        raise DownwardError(f"unsupported resource {selector.resource!r}")
    divisor = Fraction(1)  # an unset (zero) divisor means 1
    if selector.divisor is not None and not _is_zero(selector.divisor):
        if _canonical_divisor(selector.divisor, is_cpu) is None:
            allowed = CPU_DIVISORS if is_cpu else BYTE_DIVISORS
            raise DownwardError(
                f"divisor {selector.divisor!r} is not allowed for {resource} "
                f"(allowed: {', '.join(sorted(allowed, key=parse_quantity))})"
            )
        divisor = parse_quantity(selector.divisor)
    resources = container.resources or k8s.V1ResourceRequirements()
    table = dict((resources.limits if kind == "limits" else resources.requests) or {})
    if kind == "limits" and resource in DEFAULTED_LIMITS and resource not in table:
        table[resource] = allocatable[resource]
    amount = parse_quantity(table.get(resource, "0"))
    # float division then ceil, exactly as the Go code does it
    if is_cpu:
        return str(math.ceil(float(milli_value(amount)) / float(milli_value(divisor))))
    return str(math.ceil(float(value(amount)) / float(value(divisor))))


def _is_zero(text: str) -> bool:
    try:
        return parse_quantity(text) == 0
    except QuantityError:
        return False


def _canonical_divisor(text: str, is_cpu: bool) -> str | None:
    """The allowed divisor equal to `text` (validation compares values: `1000m` is `1`), else None."""
    allowed = CPU_DIVISORS if is_cpu else BYTE_DIVISORS
    try:
        target = parse_quantity(text)
    except QuantityError:
        return None
    for candidate in allowed:
        if parse_quantity(candidate) == target:
            return candidate
    return None
