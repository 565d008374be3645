"""Load a Pod (or a workload's pod template) and the ConfigMaps, Secrets, ServiceAccounts, Services beside it.

Parsing is strict in the way `kubectl apply` with server-side field validation is: every object is validated
with the `kubernetes` client's models (pydantic v2, `extra="forbid"`, strict scalar types), and because
those models also accept Python attribute names (`env_from`) the validated object is dumped back with its
wire names and compared with the input, so a snake_case key is an unknown field here as it is in the API.
The one leniency is the API's own: resource quantities may be written as YAML numbers (`cpu: 1`).

Every problem raises BadInput naming the manifest file and the field path, e.g.
`pod.yaml: spec.containers[0].env[3].valueFrom.configMapKeyRef: ConfigMap 'x' not found …`.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from kubernetes.client import models as k8s
from pydantic import BaseModel, ValidationError

from conformance.config import read_input_text
from conformance.errors import BadInput

Model = TypeVar("Model", bound=BaseModel)

# kind -> (apiVersion, model name, path of the pod template inside the object). Models are looked up by
# name when a manifest uses them: each pulls in a large pydantic schema, so unused kinds cost nothing.
WORKLOAD_KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "Pod": ("v1", "V1Pod", ()),
    "Deployment": ("apps/v1", "V1Deployment", ("spec", "template")),
    "StatefulSet": ("apps/v1", "V1StatefulSet", ("spec", "template")),
    "Job": ("batch/v1", "V1Job", ("spec", "template")),
    "CronJob": ("batch/v1", "V1CronJob", ("spec", "jobTemplate", "spec", "template")),
}
RESOURCE_KINDS: dict[str, str] = {
    "ConfigMap": "V1ConfigMap",
    "Secret": "V1Secret",
    "ServiceAccount": "V1ServiceAccount",
    "Service": "V1Service",
}
# Kinds that change nothing a container observes; accepted in a manifest set and skipped.
INERT_KINDS = frozenset(
    {
        "Namespace",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "PersistentVolumeClaim",
        "Ingress",
        "PriorityClass",
        "LimitRange",
        "ResourceQuota",
    }
)
# Where the API accepts a number for a quantity (resource.Quantity unmarshals JSON numbers).
_QUANTITY_MAPS = frozenset({"limits", "requests", "overhead"})
_QUANTITY_SCALARS = frozenset({"sizeLimit", "divisor"})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Origin:
    """Where an object came from, to name it in errors: the file and, in a multi-document file, which one."""

    file: Path
    document: int | None = None

    def bad(self, path: str, problem: str) -> BadInput:
        field = f"[document {self.document}] {path}".rstrip() if self.document else path
        return BadInput(self.file, field or None, problem)


@dataclass(frozen=True)
class Loaded(Generic[Model]):
    obj: Model
    origin: Origin


@dataclass
class Workload:
    """The object that makes the pod, and its pod template."""

    kind: str
    obj: BaseModel
    origin: Origin
    metadata: k8s.V1ObjectMeta
    spec: k8s.V1PodSpec
    spec_path: str  # field path of the pod spec inside the manifest, e.g. "spec.template.spec"

    def bad(self, path: str, problem: str) -> BadInput:
        """BadInput for a field of the pod spec (`path` relative to it)."""
        return self.origin.bad(f"{self.spec_path}.{path}" if path else self.spec_path, problem)


@dataclass
class ConfigData:
    """A ConfigMap's or Secret's content as kubelet uses it.

    `env_values`: what envFrom / *KeyRef read (a ConfigMap's `data` only — binaryData is not propagated to
    env; all of a Secret's keys). `files`: what a volume projects (every key).
    """

    kind: str
    name: str
    env_values: dict[str, bytes]
    files: dict[str, bytes]


@dataclass
class ManifestSet:
    workload: Workload
    config_maps: dict[tuple[str, str], ConfigData] = field(default_factory=dict)
    secrets: dict[tuple[str, str], ConfigData] = field(default_factory=dict)
    service_accounts: dict[tuple[str, str], Loaded[k8s.V1ServiceAccount]] = field(default_factory=dict)
    services: dict[tuple[str, str], Loaded[k8s.V1Service]] = field(default_factory=dict)


def format_path(parts: list[str | int]) -> str:
    """`spec.containers[0].env[3].valueFrom`; other keys as `labels['app.kubernetes.io/name']`."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.match(part):
            text += f".{part}" if text else part
        else:
            text += "['" + part.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return text


def load_manifests(
    spec_file: Path,
    resource_files: list[Path],
    namespace_option: str | None,
    config_path: Path,
    target_name: str,
) -> tuple[ManifestSet, str]:
    """Parse the spec file (one workload, optionally resources) and the resource files.

    Returns the manifest set and the pod's namespace (metadata.namespace, else the `namespace` option,
    else `default`).
    """
    workloads: list[Workload] = []
    resources: list[tuple[str, Loaded[Any]]] = []
    for path, is_spec in [(spec_file, True)] + [(p, False) for p in resource_files]:
        for origin, document in _documents(path):
            kind = document.get("kind")
            if kind in WORKLOAD_KINDS:
                if not is_spec:
                    raise origin.bad(
                        "kind", f"a {kind} belongs in the target's `spec` file, not in `resources`"
                    )
                workloads.append(_load_workload(kind, document, origin))
            elif kind in RESOURCE_KINDS:
                model = getattr(k8s, RESOURCE_KINDS[kind])
                resources.append((kind, Loaded(_validate(model, document, origin, "v1"), origin)))
            elif kind not in INERT_KINDS:
                known = ", ".join(list(WORKLOAD_KINDS) + list(RESOURCE_KINDS))
                raise origin.bad("kind", f"kind {kind!r} is not understood here (known: {known})")
    if len(workloads) != 1:
        found = ", ".join(f"{w.kind} (document {w.origin.document or 1})" for w in workloads) or "none"
        raise BadInput(
            spec_file,
            None,
            f"expected exactly one Pod, Deployment, StatefulSet, Job or CronJob; found {found}",
        )
    workload = workloads[0]
    declared = (
        workload.obj.metadata.namespace if workload.obj.metadata else None
    )  # the pod's: its controller's
    namespace = declared or namespace_option or "default"
    if declared and namespace_option and namespace_option != declared:
        raise BadInput(
            config_path,
            f"targets.{target_name}.options.namespace",
            f"{namespace_option!r} conflicts with metadata.namespace {declared!r} in {spec_file}",
        )
    manifests = ManifestSet(workload=workload)
    for kind, loaded in resources:
        meta = loaded.obj.metadata
        if meta is None or not meta.name:
            raise loaded.origin.bad("metadata.name", "required")
        key = (meta.namespace or namespace, meta.name)
        table = {
            "ConfigMap": manifests.config_maps,
            "Secret": manifests.secrets,
            "ServiceAccount": manifests.service_accounts,
            "Service": manifests.services,
        }[kind]
        if key in table:
            raise loaded.origin.bad("metadata.name", f"{kind} {key[0]}/{key[1]} is declared twice")
        if kind == "ConfigMap":
            table[key] = _config_map_data(loaded)
        elif kind == "Secret":
            table[key] = _secret_data(loaded)
        else:
            table[key] = loaded
    return manifests, namespace


def resource_documents(files: list[Path]) -> list[tuple[Origin, dict]]:
    """The ConfigMap, Secret, ServiceAccount and Service documents of `files`, as written, in file order.

    What an engine creates on a real cluster beside the pod; `load_manifests` has validated them already.
    """
    return [
        (origin, document)
        for path in files
        for origin, document in _documents(path)
        if document.get("kind") in RESOURCE_KINDS
    ]


def _documents(path: Path) -> list[tuple[Origin, dict]]:
    text = read_input_text(path)
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        raise BadInput(path, where, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    expanded: list[dict] = []
    for document in documents:
        if (
            isinstance(document, dict)
            and document.get("kind") == "List"
            and isinstance(document.get("items"), list)
        ):
            expanded.extend(document["items"])
        else:
            expanded.append(document)
    several = len(expanded) > 1
    result = []
    for index, document in enumerate(expanded, start=1):
        origin = Origin(path, index if several else None)
        if not isinstance(document, dict):
            raise origin.bad("", "expected a Kubernetes object (a mapping with apiVersion and kind)")
        if "kind" not in document:
            raise origin.bad("kind", "required")
        result.append((origin, document))
    return result


def _load_workload(kind: str, document: dict, origin: Origin) -> Workload:
    api_version, model_name, template_path = WORKLOAD_KINDS[kind]
    obj = _validate(getattr(k8s, model_name), document, origin, api_version)
    template: Any = obj
    for part in template_path:
        template = getattr(template, _python_name(type(template), part))
        if template is None:
            raise origin.bad(format_path(list(template_path[: template_path.index(part) + 1])), "required")
    spec_path = format_path([*template_path, "spec"])
    if template.spec is None:
        raise origin.bad(spec_path, "required")
    metadata = template.metadata or k8s.V1ObjectMeta()
    if kind == "Pod":
        if not (metadata.name or metadata.generate_name):
            raise origin.bad("metadata.name", "required (or metadata.generateName)")
    elif obj.metadata is None or not obj.metadata.name:
        raise origin.bad("metadata.name", "required")
    return Workload(
        kind=kind, obj=obj, origin=origin, metadata=metadata, spec=template.spec, spec_path=spec_path
    )


def _python_name(model: type[BaseModel], wire_name: str) -> str:
    for python_name, wire in getattr(model, "attribute_map", {}).items():
        if wire == wire_name:
            return python_name
    return wire_name


def _validate(model: type[Model], document: dict, origin: Origin, api_version: str) -> Model:
    kind = document.get("kind")
    if document.get("apiVersion") != api_version:
        raise origin.bad(
            "apiVersion", f"a {kind} must be apiVersion {api_version!r} (got {document.get('apiVersion')!r})"
        )
    document = _numbers_as_quantities(document)
    try:
        obj = model.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        path = _path_in(document, error["loc"], error["type"])
        problem = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        if error["type"] == "missing":
            problem = "required"
        raise origin.bad(path, problem) from None
    unknown = _first_unknown_key(document, obj.model_dump(by_alias=True, exclude_unset=True), [])
    if unknown is not None:
        raise origin.bad(unknown, "unknown field (Kubernetes field names are camelCase)")
    return obj


def _path_in(document: Any, loc: tuple, error_type: str) -> str:
    """The part of a pydantic error location that exists in the document (drops union-member labels);
    for a missing field, the missing key itself."""
    parts: list[str | int] = []
    node = document
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            if error_type == "missing" and isinstance(node, dict):
                parts.append(part)
            break
        parts.append(part)
    return format_path(parts)


def _first_unknown_key(raw: Any, dumped: Any, path: list[str | int]) -> str | None:
    if isinstance(raw, dict) and isinstance(dumped, dict):
        for key, value in raw.items():
            if key not in dumped:
                return format_path([*path, key])
            found = _first_unknown_key(value, dumped[key], [*path, key])
            if found:
                return found
    elif isinstance(raw, list) and isinstance(dumped, list):
        for index, (raw_item, dumped_item) in enumerate(zip(raw, dumped, strict=False)):
            found = _first_unknown_key(raw_item, dumped_item, [*path, index])
            if found:
                return found
    return None


def _numbers_as_quantities(node: Any, key: str | None = None) -> Any:
    """Copy of `node` with YAML numbers in quantity positions turned into strings, as the API accepts them."""
    if isinstance(node, dict):
        if key in _QUANTITY_MAPS:
            return {k: _quantity_text(v) for k, v in node.items()}
        return {
            k: (_quantity_text(v) if k in _QUANTITY_SCALARS else _numbers_as_quantities(v, k))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_numbers_as_quantities(item) for item in node]
    return node


def _quantity_text(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return str(value)


def _config_map_data(loaded: Loaded[k8s.V1ConfigMap]) -> ConfigData:
    config_map = loaded.obj
    env_values = {key: text.encode("utf-8") for key, text in (config_map.data or {}).items()}
    files = dict(env_values)
    for key, encoded in (config_map.binary_data or {}).items():
        if key in env_values:
            raise loaded.origin.bad(format_path(["binaryData", key]), "duplicate of a key in data")
        files[key] = _base64(encoded, loaded.origin, ["binaryData", key])
    return ConfigData("ConfigMap", config_map.metadata.name, env_values, files)


def _secret_data(loaded: Loaded[k8s.V1Secret]) -> ConfigData:
    """`data` (base64) merged with `stringData`, which the API server writes over `data` on create."""
    secret = loaded.obj
    files = {
        key: _base64(encoded, loaded.origin, ["data", key]) for key, encoded in (secret.data or {}).items()
    }
    files.update({key: text.encode("utf-8") for key, text in (secret.string_data or {}).items()})
    return ConfigData("Secret", secret.metadata.name, files, files)


def _base64(encoded: str, origin: Origin, path: list[str | int]) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise origin.bad(format_path(path), "not valid base64") from None
