"""`targets.<name>.options` of a kubernetes target: the cluster and node facts a Pod manifest does not carry.

Everything a real cluster would decide (pod IP, node, service CIDR, the EKS webhook's configuration) is an
option with an EKS-like default, so the same manifest can be replayed against another cluster's shape.
Unknown keys and bad values raise BadInput naming `targets.<name>.options.<key>`.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conformance.config import describe_validation_error
from conformance.errors import BadInput
from conformance.platforms.ec2 import private_dns_domain
from conformance.platforms.kubernetes.quantity import QuantityError, parse_quantity

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class KubernetesOptions(BaseModel):
    """Adapter options. Defaults describe a pod on an EKS node in a 10.0.0.0/16 VPC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    container: str | None = Field(None, description="the workload container (default: the first container)")
    images: dict[str, str] = Field(
        default_factory=dict,
        description="manifest image -> local image, for init and sidecar containers (the workload container "
        "always runs the target's image)",
    )
    namespace: str | None = Field(None, description="overrides metadata.namespace (default: 'default')")
    pod_name: str | None = Field(None, description="overrides the pod name a controller would generate")
    pod_uid: str | None = Field(None, description="metadata.uid (default: derived from namespace/name)")
    cluster_domain: str = "cluster.local"
    service_cidr: IPNetwork = Field(
        ipaddress.ip_network("10.100.0.0/16"),
        description="the `kubernetes` service gets .1 and cluster DNS .10 (EKS KubernetesNetworkConfig)",
    )
    cluster_dns: IPAddress | None = Field(
        None, description="kubelet --cluster-dns (default: .10 of service_cidr)"
    )
    pod_ips: list[IPAddress] = Field(
        default_factory=lambda: [ipaddress.ip_address("10.0.1.23")], min_length=1, max_length=2
    )
    host_ip: IPAddress = ipaddress.ip_address("10.0.1.10")
    node_name: str | None = Field(None, description="default: ip-<host ip>.<region>.compute.internal")
    region: str | None = Field(
        None,
        description="the EKS webhook's --aws-default-region (AWS_REGION, AWS_DEFAULT_REGION); node domain",
    )
    node_resolv_conf: str | None = Field(
        None,
        description="the node's resolv.conf, relative to parity.yaml (default: Amazon DNS + node domain)",
    )
    node_hosts: str | None = Field(
        None, description="the node's /etc/hosts for hostNetwork pods (default: Amazon Linux's)"
    )
    node_allocatable: dict[Literal["cpu", "memory", "ephemeral-storage"], str] = Field(
        default_factory=dict,
        description="used by resourceFieldRef when a container has no limit (default: this machine)",
    )
    identity: Literal["webhook", "pod-identity", "none"] = Field(
        "webhook",
        description="webhook: IRSA from the ServiceAccount annotation; pod-identity: an EKS Pod Identity "
        "association exists for the pod's ServiceAccount; none: no EKS identity webhook",
    )
    pod_identity_endpoint: str | None = Field(
        None, description="AWS_CONTAINER_CREDENTIALS_FULL_URI (default: the EKS Pod Identity agent)"
    )
    sts_regional_endpoints: bool = Field(False, description="the webhook's --sts-regional-endpoints flag")
    seccomp_default: bool = Field(False, description="kubelet seccompDefault: RuntimeDefault when unset")
    network: Literal["none", "host"] = Field(
        "none", description="sandbox network on the Docker host; 'host' lets the pod reach local test servers"
    )
    probe_replaces: Literal["args", "command"] = Field(
        "args",
        description="args: the pod's `command` stays the entrypoint and the probe replaces `args`; "
        "command: the probe replaces both (use when `command` is the workload itself)",
    )

    @field_validator("node_allocatable")
    @classmethod
    def _quantities(cls, value: dict[str, str]) -> dict[str, str]:
        for name, quantity in value.items():
            try:
                parse_quantity(str(quantity))
            except QuantityError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return {name: str(quantity) for name, quantity in value.items()}

    @field_validator("pod_ips")
    @classmethod
    def _one_per_family(cls, value: list[IPAddress]) -> list[IPAddress]:
        if len({address.version for address in value}) != len(value):
            raise ValueError("at most one address per IP family (dual-stack)")
        return value

    # ---- derived facts -------------------------------------------------------------------------------
    @property
    def kubernetes_service_ip(self) -> str:
        return str(self.service_cidr.network_address + 1)

    @property
    def dns_server(self) -> str:
        return str(self.cluster_dns or (self.service_cidr.network_address + 10))

    @property
    def node_domain(self) -> str | None:
        """The node's EC2 DNS domain: `ec2.internal` in us-east-1, else `<region>.compute.internal`."""
        return None if self.region is None else private_dns_domain(self.region)

    @property
    def resolved_node_name(self) -> str:
        if self.node_name:
            return self.node_name
        dashed = str(self.host_ip).replace(".", "-").replace(":", "-")
        return f"ip-{dashed}.{self.node_domain}" if self.node_domain else f"ip-{dashed}"

    @property
    def pod_identity_uri(self) -> str:
        """The agent is 169.254.170.23, or fd00:ec2::23 on IPv6 clusters (kubernetes-contract §5)."""
        if self.pod_identity_endpoint:
            return self.pod_identity_endpoint
        host = "[fd00:ec2::23]" if self.service_cidr.version == 6 else "169.254.170.23"
        return f"http://{host}/v1/credentials"


def parse_options(target_name: str, raw: dict, config_path: Path) -> KubernetesOptions:
    try:
        return KubernetesOptions.model_validate(raw)
    except ValidationError as exc:
        field, message = describe_validation_error(exc)
        raise BadInput(config_path, f"targets.{target_name}.options.{field}", message) from None


def node_allocatable(options: KubernetesOptions) -> dict[str, str]:
    """Node allocatable for resourceFieldRef without a limit: the option, else this machine's capacity.

    The Docker engine runs the pod on this machine, so its CPUs and memory are what the container sees.
    """
    values = {
        "cpu": str(os.cpu_count() or 1),
        "memory": str(_machine_memory_bytes()),
        "ephemeral-storage": str(shutil.disk_usage("/").total),
    }
    values.update(options.node_allocatable)
    return values


def _machine_memory_bytes() -> int:
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise OSError("MemTotal missing from /proc/meminfo")


def read_node_file(
    option_value: str | None, default: str, base_dir: Path, target_name: str, key: str, config_path: Path
) -> str:
    """The content of a node file named by an option (relative to parity.yaml), or the default."""
    if option_value is None:
        return default
    path = Path(option_value) if Path(option_value).is_absolute() else base_dir / option_value
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(
            config_path, f"targets.{target_name}.options.{key}", f"cannot read {path}: {exc}"
        ) from None
