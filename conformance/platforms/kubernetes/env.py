"""A container's environment exactly as kubelet builds it (kubernetes-contract §1).

`makeEnvironmentVariables` (k8s pkg/kubelet/kubelet_pods.go): envFrom sources in order (optional prefix,
later sources overwrite), then `env` in order (overriding envFrom; `$(VAR)` expanded against envFrom,
earlier env entries and the service variables — never the image's ENV), then the service-link variables
of the pod's Services for names not already set. Kubelet builds this from Go maps, so the order a
process sees is not deterministic; here it is insertion order, then services sorted by name.

The container runtime then lays image ENV over HOSTNAME and the pod's env over both (pod env > image ENV
> HOSTNAME; PATH defaults when the image has none). Docker merges `Config.Env` the same way and sets the
same default PATH, so the LaunchPlan carries only what kubelet sets and the engine's Docker does the rest.
"""

from __future__ import annotations

import hashlib

from kubernetes.client import models as k8s

from conformance.platforms.kubernetes.downward import DownwardError, field_value, resource_value
from conformance.platforms.kubernetes.expansion import ExpansionError, expand, lookup_in
from conformance.platforms.kubernetes.manifests import ConfigData, ManifestSet
from conformance.platforms.kubernetes.options import KubernetesOptions
from conformance.platforms.kubernetes.workloads import PodFacts

MASTER_SERVICES = frozenset({"kubernetes"})


def env_var_name(name: str) -> str:
    """`makeEnvVariableName`: upper-case, `-` → `_` (envvars.go)."""
    return name.replace("-", "_").upper()


def join_host_port(host: str, port: int) -> str:
    """Go's `net.JoinHostPort`: brackets around any host containing a colon (IPv6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def service_link_variables(services: list[k8s.V1Service]) -> dict[str, str]:
    """`envvars.FromServices`: per service with a cluster IP, the Docker-links-style variables."""
    result: dict[str, str] = {}
    for service in services:
        cluster_ip = service.spec.cluster_ip
        if not cluster_ip or cluster_ip == "None":
            continue
        prefix = env_var_name(service.metadata.name)
        ports = service.spec.ports or []
        result[f"{prefix}_SERVICE_HOST"] = cluster_ip
        result[f"{prefix}_SERVICE_PORT"] = str(ports[0].port)
        for port in ports:
            if port.name:
                result[f"{prefix}_SERVICE_PORT_{env_var_name(port.name)}"] = str(port.port)
        for index, port in enumerate(ports):
            protocol = port.protocol or "TCP"
            url = f"{protocol.lower()}://{join_host_port(cluster_ip, port.port)}"
            if index == 0:
                result[f"{prefix}_PORT"] = url  # Docker special-cases the first port
            port_prefix = f"{prefix}_PORT_{port.port}_{protocol.upper()}"
            result[port_prefix] = url
            result[f"{port_prefix}_PROTO"] = protocol.lower()
            result[f"{port_prefix}_PORT"] = str(port.port)
            result[f"{port_prefix}_ADDR"] = cluster_ip
    return result


def cluster_services(
    manifests: ManifestSet, options: KubernetesOptions
) -> dict[tuple[str, str], k8s.V1Service]:
    """Every Service of the manifest set with its cluster IP as the API server would allocate it, plus the
    `kubernetes` service in `default` (.1 of the service CIDR, port 443 `https`) unless declared."""
    services: dict[tuple[str, str], k8s.V1Service] = {}
    taken = {options.kubernetes_service_ip, options.dns_server}
    master_key = ("default", "kubernetes")
    if master_key not in manifests.services:
        services[master_key] = k8s.V1Service(
            metadata=k8s.V1ObjectMeta(name="kubernetes", namespace="default"),
            spec=k8s.V1ServiceSpec(
                cluster_ip=options.kubernetes_service_ip,
                type="ClusterIP",
                ports=[k8s.V1ServicePort(name="https", port=443, protocol="TCP")],
            ),
        )
    for key in sorted(manifests.services):
        loaded = manifests.services[key]
        service = loaded.obj.model_copy(deep=True)
        spec = service.spec or k8s.V1ServiceSpec()
        if (spec.type or "ClusterIP") != "ExternalName" and not spec.cluster_ip:
            if not spec.ports:
                raise loaded.origin.bad("spec.ports", "required for a Service with a cluster IP")
            spec.cluster_ip = _allocate_cluster_ip(key, options, taken)
            if spec.cluster_ip is None:
                raise loaded.origin.bad(
                    "spec.clusterIP", f"no free address left in service_cidr {options.service_cidr}"
                )
        if spec.cluster_ip:
            taken.add(spec.cluster_ip)
        service.spec = spec
        service.metadata.namespace = key[0]
        services[key] = service
    return services


def _allocate_cluster_ip(key: tuple[str, str], options: KubernetesOptions, taken: set[str]) -> str | None:
    """A free service-CIDR address picked from the Service's name (the API server draws it at random)."""
    network = options.service_cidr
    size = min(network.num_addresses, 2**32)
    start = int.from_bytes(hashlib.sha256(f"{key[0]}/{key[1]}".encode()).digest()[:8], "big")
    for attempt in range(size):
        offset = (start + attempt) % size
        if offset == 0 or (network.version == 4 and offset == size - 1):
            continue
        candidate = str(network.network_address + offset)
        if candidate not in taken:
            return candidate
    return None


def service_environment(
    services: dict[tuple[str, str], k8s.V1Service], namespace: str, enable_service_links: bool
) -> dict[str, str]:
    """`getServiceEnvVarMap`: the master `kubernetes` service always; same-namespace services only with
    enableServiceLinks (a same-namespace Service named `kubernetes` then replaces the master one)."""
    selected: dict[str, k8s.V1Service] = {}
    for (service_namespace, name), service in services.items():
        ip = service.spec.cluster_ip
        if not ip or ip == "None":
            continue
        if service_namespace == "default" and name in MASTER_SERVICES:
            selected.setdefault(name, service)
        elif service_namespace == namespace and enable_service_links:
            selected[name] = service
    return service_link_variables([selected[name] for name in sorted(selected)])


def container_env(
    container: k8s.V1Container,
    path: str,
    pod: PodFacts,
    manifests: ManifestSet,
    service_env: dict[str, str],
    allocatable: dict[str, str],
) -> list[tuple[str, str]]:
    """The container's environment; `path` names the container in errors (`containers[0]`)."""
    bad = pod.workload.bad
    values: dict[str, str] = {}
    for index, source in enumerate(container.env_from or []):
        where = f"{path}.envFrom[{index}]"
        if source.config_map_ref is not None:
            data = _referenced(
                manifests.config_maps,
                "ConfigMap",
                source.config_map_ref.name,
                source.config_map_ref.optional,
                pod,
                f"{where}.configMapRef",
            )
        elif source.secret_ref is not None:
            data = _referenced(
                manifests.secrets,
                "Secret",
                source.secret_ref.name,
                source.secret_ref.optional,
                pod,
                f"{where}.secretRef",
            )
        else:
            raise bad(where, "needs configMapRef or secretRef")
        if data is None:
            continue
        for key, raw in data.env_values.items():
            values[(source.prefix or "") + key] = _text(raw, data, key, pod, where)

    lookup = lookup_in(values, service_env)
    for index, variable in enumerate(container.env or []):
        where = f"{path}.env[{index}]"
        if variable.value:
            try:
                resolved: str | None = expand(variable.value, lookup)
            except ExpansionError as exc:
                raise bad(f"{where}.value", str(exc)) from None
        elif variable.value_from is not None:
            resolved = _value_from(
                variable.value_from, container, f"{where}.valueFrom", pod, manifests, allocatable
            )
            if resolved is None:  # an optional reference that does not resolve: the variable is not set
                continue
        else:
            resolved = ""
        values[variable.name] = resolved

    environment = list(values.items()) + [(k, v) for k, v in service_env.items() if k not in values]
    for name, text in environment:
        if "\x00" in text or "\x00" in name:
            raise bad(
                path,
                f"environment variable {name!r} contains a NUL byte, which no container runtime can pass",
            )
    return environment


def _value_from(
    source: k8s.V1EnvVarSource,
    container: k8s.V1Container,
    where: str,
    pod: PodFacts,
    manifests: ManifestSet,
    allocatable: dict[str, str],
) -> str | None:
    bad = pod.workload.bad
    if source.field_ref is not None:
        try:
            return field_value(source.field_ref, pod, for_volume=False)
        except DownwardError as exc:
            raise bad(f"{where}.fieldRef", str(exc)) from None
    if source.resource_field_ref is not None:
        selector = source.resource_field_ref
        target = (
            container if not selector.container_name else find_container(pod.spec, selector.container_name)
        )
        if target is None:
            raise bad(
                f"{where}.resourceFieldRef.containerName", f"no container named {selector.container_name!r}"
            )
        try:
            return resource_value(selector, target, allocatable)
        except DownwardError as exc:
            raise bad(f"{where}.resourceFieldRef", str(exc)) from None
    for attribute, table, kind, field_name in (
        ("config_map_key_ref", manifests.config_maps, "ConfigMap", "configMapKeyRef"),
        ("secret_key_ref", manifests.secrets, "Secret", "secretKeyRef"),
    ):
        reference = getattr(source, attribute)
        if reference is None:
            continue
        data = _referenced(table, kind, reference.name, reference.optional, pod, f"{where}.{field_name}")
        if data is None:
            return None
        if reference.key not in data.env_values:
            if reference.optional:
                return None
            raise bad(
                f"{where}.{field_name}",
                f"{kind} {reference.name!r} has no key {reference.key!r} "
                f"(keys: {', '.join(sorted(data.env_values)) or 'none'}); kubelet would not start the "
                "container — add the key or set optional: true",
            )
        return _text(data.env_values[reference.key], data, reference.key, pod, f"{where}.{field_name}")
    if source.file_key_ref is not None:
        raise bad(f"{where}.fileKeyRef", "fileKeyRef (EnvFiles feature gate, alpha) is not emulated")
    raise bad(where, "needs fieldRef, resourceFieldRef, configMapKeyRef or secretKeyRef")


def _referenced(
    table: dict[tuple[str, str], ConfigData],
    kind: str,
    name: str | None,
    optional: bool | None,
    pod: PodFacts,
    where: str,
) -> ConfigData | None:
    data = table.get((pod.namespace, name or ""))
    if data is None and not optional:
        raise pod.workload.bad(
            where,
            f"{kind} {name!r} not found in namespace {pod.namespace!r}: add its "
            "manifest to the target's resources, or set optional: true (kubelet would not "
            "start the container)",
        )
    return data


def _text(raw: bytes, data: ConfigData, key: str, pod: PodFacts, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise pod.workload.bad(
            where,
            f"{data.kind} {data.name!r} key {key!r} is not UTF-8; the Docker API "
            "(JSON) cannot pass it as an environment variable",
        ) from None


def find_container(spec: k8s.V1PodSpec, name: str) -> k8s.V1Container | None:
    for container in [*spec.containers, *(spec.init_containers or [])]:
        if container.name == name:
            return container
    return None
