"""The files kubelet and containerd place in every container: /etc/hosts, /etc/resolv.conf, /etc/hostname.

kubernetes-contract §2. /etc/hosts: kubelet `managedHostsFileContent` / `nodeHostsFileContent`. resolv.conf:
kubelet `pkg/kubelet/network/dns/dns.go` (`GetPodDNS`, search list, limits) rendered by containerd
`parseDNSOptions`. /etc/hostname: containerd `setupSandboxFiles`. Docker writes its own versions of all
three (no header, ff00::/ff02:: lines, the daemon's resolv.conf), so the plan mounts these over them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubernetes.client import models as k8s

MANAGED_HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
MANAGED_HOSTS_HEADER_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"
# validation.MaxDNSSearchPaths / MaxDNSSearchListChars (ExpandedDNSConfig, GA) and MaxDNSNameservers
MAX_DNS_SEARCH_PATHS = 32
MAX_DNS_SEARCH_LIST_CHARS = 2048
MAX_DNS_NAMESERVERS = 3
MAX_SEARCH_DOMAIN_LENGTH = 253  # DNS1123SubdomainMaxLength: longer entries abort some resolvers (glibc)
CLUSTER_FIRST_OPTIONS = ["ndots:5"]


def pod_hostname_and_domain(
    pod_name: str, spec: k8s.V1PodSpec, namespace: str, cluster_domain: str
) -> tuple[str, str]:
    """kubelet `GeneratePodHostNameAndDomain`: spec.hostname or the pod name, cut to 63 characters
    (trailing `-`/`.` trimmed); with a subdomain, the domain `<sub>.<ns>.svc.<cluster domain>`."""
    hostname = spec.hostname or pod_name
    if len(hostname) > 63:
        hostname = hostname[:63].rstrip("-.")
    domain = f"{spec.subdomain}.{namespace}.svc.{cluster_domain}" if spec.subdomain else ""
    return hostname, domain


def managed_hosts(
    pod_ips: list[str], hostname: str, domain: str, host_aliases: list[k8s.V1HostAlias]
) -> bytes:
    lines = [
        MANAGED_HOSTS_HEADER,
        "127.0.0.1\tlocalhost\n",
        "::1\tlocalhost ip6-localhost ip6-loopback\n",
        "fe00::0\tip6-localnet\n",
        "fe00::0\tip6-mcastprefix\n",
        "fe00::1\tip6-allnodes\n",
        "fe00::2\tip6-allrouters\n",
    ]
    for ip in pod_ips:
        lines.append(f"{ip}\t{hostname}.{domain}\t{hostname}\n" if domain else f"{ip}\t{hostname}\n")
    return ("".join(lines)).encode("utf-8") + host_alias_entries(host_aliases)


def node_hosts(node_file: str, host_aliases: list[k8s.V1HostAlias]) -> bytes:
    """hostNetwork pods: the node's file under kubelet's host-network header."""
    return (MANAGED_HOSTS_HEADER_HOST_NETWORK + node_file).encode("utf-8") + host_alias_entries(host_aliases)


def host_alias_entries(host_aliases: list[k8s.V1HostAlias]) -> bytes:
    if not host_aliases:
        return b""
    lines = ["\n", "# Entries added by HostAliases.\n"]
    lines += [f"{alias.ip}\t{chr(9).join(alias.hostnames or [])}\n" for alias in host_aliases]
    return "".join(lines).encode("utf-8")


@dataclass
class DNSConfig:
    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


def parse_resolv_conf(text: str) -> DNSConfig:
    """kubelet `parseResolvConf`: nameservers accumulate, the last `search` wins (trailing dots dropped,
    a lone `.` ignored), options accumulate with later values for a name replacing earlier ones."""
    config = DNSConfig()
    for line in text.split("\n"):
        fields = line.strip().split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            config.servers.append(fields[1])
        elif fields[0] == "search":
            config.searches = [entry.removesuffix(".") for entry in fields[1:] if entry != "."]
        elif fields[0] == "options":
            config.options = merge_options(config.options, fields[1:])
    return config


def merge_options(existing: list[str], new: list[str]) -> list[str]:
    """Options keyed by name (`ndots:5` → `ndots`), later values win. Kubelet keeps them in a Go map; the
    order here is first appearance, for a deterministic file."""
    merged: dict[str, str] = {}
    for option in [*existing, *new]:
        merged[option.split(":")[0]] = option
    return list(merged.values())


def omit_duplicates(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def pod_dns_config(
    spec: k8s.V1PodSpec, namespace: str, cluster_domain: str, cluster_dns: str, node: DNSConfig
) -> DNSConfig:
    """kubelet `GetPodDNS`: ClusterFirst (ClusterFirstWithHostNet, or ClusterFirst off the host network) uses
    the cluster DNS and `<ns>.svc.<domain> svc.<domain> <domain>` + the node's searches with `ndots:5`;
    Default (and ClusterFirst on the host network) is the node's; None starts empty. Then `dnsConfig` is
    appended and the limits applied."""
    policy = spec.dns_policy or "ClusterFirst"
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not spec.host_network):
        cluster_search = [f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
        config = DNSConfig(
            [cluster_dns], omit_duplicates(cluster_search + node.searches), list(CLUSTER_FIRST_OPTIONS)
        )
    elif policy == "None":
        config = DNSConfig()
    else:
        config = DNSConfig(list(node.servers), list(node.searches), list(node.options))
    if spec.dns_config is not None:
        extra = spec.dns_config
        config.servers = omit_duplicates(config.servers + list(extra.nameservers or []))
        config.searches = omit_duplicates(config.searches + list(extra.searches or []))
        config.options = merge_options(
            config.options,
            [f"{o.name}:{o.value}" if o.value is not None else o.name for o in extra.options or []],
        )
    config.servers = config.servers[:MAX_DNS_NAMESERVERS]
    config.searches = _search_within_limits(config.searches)
    return config


def _search_within_limits(searches: list[str]) -> list[str]:
    """`formDNSSearchFitsLimits`: at most 32 entries, none over 253 characters, the line at most 2048."""
    searches = [entry for entry in searches[:MAX_DNS_SEARCH_PATHS] if len(entry) <= MAX_SEARCH_DOMAIN_LENGTH]
    while searches and len(" ".join(searches)) > MAX_DNS_SEARCH_LIST_CHARS:
        searches.pop()
    return searches


def render_resolv_conf(config: DNSConfig, node_file: str) -> bytes:
    """containerd `parseDNSOptions`; an entirely empty config makes containerd copy the node's file."""
    text = ""
    if config.searches:
        text += f"search {' '.join(config.searches)}\n"
    if config.servers:
        text += "".join(f"nameserver {server}\n" for server in config.servers)
    if config.options:
        text += f"options {' '.join(config.options)}\n"
    return (text or node_file).encode("utf-8")


def hostname_file(hostname: str) -> bytes:
    return f"{hostname}\n".encode()
