"""Facts of the EC2 instance under both platforms: an EKS node and a SageMaker training instance.

A hostNetwork pod sees the node's files (kubernetes-contract.md §2) and a SageMaker job's container sees
its instance's — its HOSTNAME is the instance's private DNS name (sagemaker-contract.md §1 "Hostname"),
the mark of a container sharing the instance's network namespace.
"""

from __future__ import annotations

# The Amazon-provided DNS resolver, reachable from every VPC (AWS VPC documentation, "Amazon DNS server").
AMAZON_DNS_LINK_LOCAL = "169.254.169.253"
# Amazon Linux's stock /etc/hosts [obs].
AMAZON_LINUX_HOSTS = (
    "127.0.0.1   localhost localhost.localdomain localhost4 localhost4.localdomain4\n"
    "::1         localhost6 localhost6.localdomain6\n"
)


def private_dns_domain(region: str) -> str:
    """EC2's private DNS domain: `ec2.internal` in us-east-1, `<region>.compute.internal` elsewhere."""
    return "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"


def instance_resolv_conf(domain: str | None) -> str:
    """The instance's /etc/resolv.conf: its private DNS domain as search path, the Amazon resolver."""
    search = f"search {domain}\n" if domain else ""
    return f"{search}nameserver {AMAZON_DNS_LINK_LOCAL}\n"
