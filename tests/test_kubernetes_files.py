"""/etc/hosts, /etc/resolv.conf and /etc/hostname byte for byte (kubernetes-contract §2)."""

from __future__ import annotations

from kubernetes.client import models as k8s

from conformance.platforms.kubernetes.files import (
    DNSConfig,
    managed_hosts,
    parse_resolv_conf,
    pod_dns_config,
    pod_hostname_and_domain,
    render_resolv_conf,
)
from tests.kubernetes_support import IMAGE, env_of, mount, plan_for, pod

KUBELET_HOSTS_HEAD = (
    b"# Kubernetes-managed hosts file.\n"
    b"127.0.0.1\tlocalhost\n"
    b"::1\tlocalhost ip6-localhost ip6-loopback\n"
    b"fe00::0\tip6-localnet\n"
    b"fe00::0\tip6-mcastprefix\n"
    b"fe00::1\tip6-allnodes\n"
    b"fe00::2\tip6-allrouters\n"
)


def pod_file(plan, name: str) -> bytes:
    return next(e.content for e in plan.volume("kubelet.pod-files").entries if e.path == name)


def test_hosts_file_is_kubelets(tmp_path):
    plan = plan_for(tmp_path, pod())
    assert pod_file(plan, "etc-hosts") == KUBELET_HOSTS_HEAD + b"10.0.1.23\ttrainer\n"


def test_hosts_file_with_subdomain_dual_stack_and_host_aliases(tmp_path):
    spec = """\
    hostname: worker-0
    subdomain: workers
    hostAliases:
    - {ip: 10.1.2.3, hostnames: [foo.local, bar.local]}
    - {ip: 10.1.2.4, hostnames: [baz]}
    """
    plan = plan_for(tmp_path, pod(spec=spec), options={"pod_ips": ["10.0.1.23", "2600:1f14::17"]})
    assert pod_file(plan, "etc-hosts") == KUBELET_HOSTS_HEAD + (
        b"10.0.1.23\tworker-0.workers.default.svc.cluster.local\tworker-0\n"
        b"2600:1f14::17\tworker-0.workers.default.svc.cluster.local\tworker-0\n"
        b"\n# Entries added by HostAliases.\n"
        b"10.1.2.3\tfoo.local\tbar.local\n"
        b"10.1.2.4\tbaz\n"
    )
    assert plan.hostname == "worker-0"


def test_host_network_pods_get_the_nodes_file_under_kubelets_header(tmp_path):
    (tmp_path / "node-hosts").write_text("127.0.0.1 localhost\n10.0.1.10 node\n")
    spec = "hostNetwork: true\nhostAliases: [{ip: 10.9.9.9, hostnames: [x]}]\n"
    plan = plan_for(tmp_path, pod(spec=spec), options={"node_hosts": "node-hosts", "region": "us-east-1"})
    assert pod_file(plan, "etc-hosts") == (
        b"# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n10.0.1.10 node\n"
        b"\n# Entries added by HostAliases.\n10.9.9.9\tx\n"
    )
    assert plan.network == "host"
    assert plan.hostname == "ip-10-0-1-10.ec2.internal"  # us-east-1 node names use ec2.internal
    # ClusterFirst on the host network falls back to the node's DNS settings
    assert pod_file(plan, "resolv.conf") == b"search ec2.internal\nnameserver 169.254.169.253\n"


def test_cluster_first_resolv_conf(tmp_path):
    plan = plan_for(tmp_path, pod(metadata="namespace: ml\n"), options={"region": "us-west-2"})
    assert pod_file(plan, "resolv.conf") == (
        b"search ml.svc.cluster.local svc.cluster.local cluster.local us-west-2.compute.internal\n"
        b"nameserver 10.100.0.10\n"
        b"options ndots:5\n"
    )


def test_cluster_first_with_a_node_file_drops_duplicates_and_keeps_only_cluster_dns(tmp_path):
    (tmp_path / "node-resolv.conf").write_text(
        "# generated\nnameserver 10.0.0.2\nsearch old.example\n"
        "search cluster.local eu-west-1.compute.internal.\n"
        "options timeout:2 attempts:5\n"
    )
    spec = """\
    dnsConfig:
      nameservers: [1.1.1.1]
      searches: [extra.example, svc.cluster.local]
      options: [{name: ndots, value: "2"}, {name: edns0}]
    """
    plan = plan_for(tmp_path, pod(spec=spec), options={"node_resolv_conf": "node-resolv.conf"})
    assert pod_file(plan, "resolv.conf") == (
        b"search default.svc.cluster.local svc.cluster.local cluster.local eu-west-1.compute.internal"
        b" extra.example\n"
        b"nameserver 10.100.0.10\nnameserver 1.1.1.1\n"
        b"options ndots:2 edns0\n"
    )


def test_dns_policy_default_and_none():
    node = parse_resolv_conf("nameserver 10.0.0.2\nsearch ec2.internal\noptions timeout:2\n")
    default = pod_dns_config(
        k8s.V1PodSpec(containers=[], dns_policy="Default"), "ns", "cluster.local", "10.100.0.10", node
    )
    assert render_resolv_conf(default, "") == b"search ec2.internal\nnameserver 10.0.0.2\noptions timeout:2\n"
    none = pod_dns_config(
        k8s.V1PodSpec(
            containers=[], dns_policy="None", dns_config=k8s.V1PodDNSConfig(nameservers=["8.8.8.8"])
        ),
        "ns",
        "cluster.local",
        "10.100.0.10",
        node,
    )
    assert render_resolv_conf(none, "") == b"nameserver 8.8.8.8\n"
    assert (
        render_resolv_conf(DNSConfig(), "nameserver 9.9.9.9\n") == b"nameserver 9.9.9.9\n"
    )  # containerd copies


def test_search_list_limits():
    searches = [f"d{i}.example" for i in range(40)] + ["x" * 254 + ".example"]
    config = pod_dns_config(
        k8s.V1PodSpec(
            containers=[],
            dns_policy="None",
            dns_config=k8s.V1PodDNSConfig(
                searches=searches, nameservers=["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"]
            ),
        ),
        "ns",
        "cluster.local",
        "10.100.0.10",
        DNSConfig(),
    )
    assert config.searches == searches[:32]  # at most 32 entries
    assert config.servers == ["1.1.1.1", "2.2.2.2", "3.3.3.3"]  # at most 3 nameservers
    long = [("a" * 250) + str(i) for i in range(10)]
    config = pod_dns_config(
        k8s.V1PodSpec(containers=[], dns_policy="None", dns_config=k8s.V1PodDNSConfig(searches=long)),
        "ns",
        "cluster.local",
        "10.100.0.10",
        DNSConfig(),
    )
    assert len(" ".join(config.searches)) <= 2048 and config.searches == long[:8]


def test_hostname_is_the_pod_name_cut_to_63_characters():
    name = "a" * 62 + "-b-c"
    hostname, domain = pod_hostname_and_domain(name, k8s.V1PodSpec(containers=[]), "ns", "cluster.local")
    assert hostname == "a" * 62 and domain == ""  # cut at 63, trailing '-' trimmed


def test_hostname_file_and_environment(tmp_path):
    plan = plan_for(tmp_path, pod())
    assert pod_file(plan, "hostname") == b"trainer\n"
    assert plan.hostname == "trainer"  # the engine's holder hostname: Docker sets HOSTNAME from it
    assert "HOSTNAME" not in env_of(plan.main)


def test_set_hostname_as_fqdn(tmp_path):
    plan = plan_for(tmp_path, pod(spec="subdomain: train\nsetHostnameAsFQDN: true\n"))
    assert plan.hostname == "trainer.train.default.svc.cluster.local"
    assert pod_file(plan, "hostname") == b"trainer.train.default.svc.cluster.local\n"
    assert b"10.0.1.23\ttrainer.train.default.svc.cluster.local\ttrainer\n" in pod_file(plan, "etc-hosts")


def test_pod_files_are_mounted_like_kubelet_and_containerd(tmp_path):
    containers = f"""\
    - name: main
      image: {IMAGE}
      securityContext: {{readOnlyRootFilesystem: true}}
    - name: sidecar
      image: {IMAGE}
      terminationMessagePath: /tmp/why
    """
    plan = plan_for(tmp_path, pod(containers))
    main = plan.main
    assert mount(main, "/etc/hosts").read_only is False  # kubelet asks for read-write
    assert mount(main, "/etc/hostname").read_only is True  # containerd: read-only with readOnlyRootFilesystem
    assert mount(main, "/etc/resolv.conf").read_only is True
    assert mount(main, "/dev/termination-log").sub_path == "termination-log-main"
    assert mount(plan.sidecars[0], "/etc/resolv.conf").read_only is False
    assert mount(plan.sidecars[0], "/tmp/why").sub_path == "termination-log-sidecar"
    log = next(e for e in plan.volume("kubelet.pod-files").entries if e.path == "termination-log-main")
    assert (log.mode, log.content) == (0o666, b"")
    assert plan.failure_message_path == "/dev/termination-log" and plan.failure_message_limit == 4096


def test_managed_hosts_without_pod_ip_lines():
    assert managed_hosts([], "h", "", []) == KUBELET_HOSTS_HEAD
