"""Pod volumes as kubelet lays them out, and each container's mounts (kubernetes-contract §2).

- ConfigMap, Secret, projected and downwardAPI volumes use the atomic-writer layout
  (`k8s pkg/volume/util/atomic_writer.go`): the data in `..<UTC 2006_01_02_15_04_05>.<random>/` (0755),
  `..data` → that directory, and one symlink per top-level name, `name` → `..data/name`. Files get the
  item's `mode` or the volume's `defaultMode` (0644). They sit in a wrapped emptyDir: on disk for a
  ConfigMap (root 0777), in memory for the others (a tmpfs root, 1777), and are mounted read-only
  whatever the volumeMount says (kubelet `makeMounts`: `mustMountRO`).
- emptyDir (`pkg/volume/emptydir/empty_dir.go`): root 0777 on disk; `medium: Memory` is a tmpfs (root
  1777) sized min(node allocatable memory, the pod's memory limit, sizeLimit).
- fsGroup (`pkg/volume/volume_linux.go` SetVolumeOwnership): every entry's group becomes fsGroup; files
  get `| 0660` (read-write volumes) or `| 0440` (read-only ones); directories also setgid and `| 0110`;
  symlinks only change group.
- Service-account tokens in projected volumes are 0600 and owned by FsUser when fsGroup is set or all
  containers share one runAsUser (`projected.go`, `FsUserFrom`); with fsGroup that ends as 0640.
- subPath (`makeMounts`, `subpath.SafeMakeDir`): the resolved entry is mounted (a symlink is followed inside
  the volume, so a ConfigMap key is a plain file); a missing path is created as a directory with the volume
  root's mode. Absolute paths and `..` are rejected.
"""

from __future__ import annotations

import posixpath
import secrets
import time
from dataclasses import dataclass, field

from kubernetes.client import models as k8s

from conformance.plan import FileEntry, Mount, Volume
from conformance.platforms.kubernetes.downward import DownwardError, field_value, resource_value
from conformance.platforms.kubernetes.env import find_container
from conformance.platforms.kubernetes.expansion import ExpansionError, expand
from conformance.platforms.kubernetes.manifests import ConfigData, ManifestSet
from conformance.platforms.kubernetes.quantity import QuantityError, parse_quantity, value
from conformance.platforms.kubernetes.tokens import TokenSubject, service_account_token
from conformance.platforms.kubernetes.workloads import PodFacts

DEFAULT_MODE = 0o644  # k8s.io/api/core/v1 *VolumeSourceDefaultMode
TIMESTAMP_DIR_MODE = 0o755
EMPTY_DIR_MODE = 0o777
TMPFS_ROOT_MODE = 0o1777
KUBELET_UMASK = 0o022
RW_MASK, RO_MASK, EXEC_MASK, SETGID = 0o660, 0o440, 0o110, 0o2000
DATA_DIR = "..data"
DEFAULT_TOKEN_EXPIRATION = 3600  # ServiceAccountTokenProjection.expirationSeconds default
EMULATED_AS_EMPTY = ("persistent_volume_claim", "ephemeral")


@dataclass
class FileProjection:
    content: bytes
    mode: int
    fs_user: int | None = None


@dataclass
class PodVolume:
    """A plan volume plus what kubelet knows about it: whether mounts must be read-only."""

    volume: Volume
    read_only_source: bool
    note: str | None = None


@dataclass
class VolumeContext:
    pod: PodFacts
    manifests: ManifestSet
    allocatable: dict[str, str]
    fs_group: int | None
    fs_user: int | None
    token_subject: TokenSubject
    timestamp: str = field(default_factory=lambda: time.strftime("..%Y_%m_%d_%H_%M_%S", time.gmtime()))


def build_volumes(context: VolumeContext) -> dict[str, PodVolume]:
    volumes: dict[str, PodVolume] = {}
    for index, spec_volume in enumerate(context.pod.spec.volumes or []):
        where = f"volumes[{index}]"
        if spec_volume.name in volumes:
            raise context.pod.workload.bad(f"{where}.name", f"duplicate volume name {spec_volume.name!r}")
        volumes[spec_volume.name] = _build_volume(spec_volume, where, context)
    return volumes


def _build_volume(spec_volume: k8s.V1Volume, where: str, context: VolumeContext) -> PodVolume:
    bad = context.pod.workload.bad
    name = spec_volume.name
    memory_size = tmpfs_size(context.pod.spec, context.allocatable, None)
    if spec_volume.empty_dir is not None:
        empty_dir = spec_volume.empty_dir
        if (empty_dir.medium or "") == "Memory":
            size_limit = _quantity(empty_dir.size_limit, bad, f"{where}.emptyDir.sizeLimit")
            volume = Volume(
                name=name,
                medium="memory",
                mode=TMPFS_ROOT_MODE,
                size_bytes=tmpfs_size(context.pod.spec, context.allocatable, size_limit),
            )
        elif (empty_dir.medium or "") == "":
            volume = Volume(name=name, medium="disk", mode=EMPTY_DIR_MODE)
        else:
            raise bad(f"{where}.emptyDir.medium", f"medium {empty_dir.medium!r} (huge pages) is not emulated")
        return PodVolume(apply_fs_group(volume, context.fs_group, read_only=False), read_only_source=False)
    if spec_volume.config_map is not None:
        source = spec_volume.config_map
        payload = _keys_payload(
            context.manifests.config_maps,
            "ConfigMap",
            source.name,
            source.items,
            source.optional,
            source.default_mode,
            f"{where}.configMap",
            context,
        )
        volume = Volume(
            name=name,
            medium="disk",
            mode=EMPTY_DIR_MODE,
            entries=atomic_writer_entries(payload, context.timestamp + "." + _random_suffix()),
        )
        return PodVolume(apply_fs_group(volume, context.fs_group, read_only=True), read_only_source=True)
    if spec_volume.secret is not None:
        source = spec_volume.secret
        payload = _keys_payload(
            context.manifests.secrets,
            "Secret",
            source.secret_name,
            source.items,
            source.optional,
            source.default_mode,
            f"{where}.secret",
            context,
        )
        return _memory_atomic_volume(name, payload, memory_size, context)
    if spec_volume.downward_api is not None:
        source = spec_volume.downward_api
        payload = _downward_payload(
            source.items or [],
            DEFAULT_MODE if source.default_mode is None else source.default_mode,
            f"{where}.downwardAPI",
            context,
        )
        return _memory_atomic_volume(name, payload, memory_size, context)
    if spec_volume.projected is not None:
        payload = _projected_payload(spec_volume.projected, f"{where}.projected", context)
        return _memory_atomic_volume(name, payload, memory_size, context)
    for attribute in EMULATED_AS_EMPTY:
        if getattr(spec_volume, attribute) is not None:
            volume = Volume(name=name, medium="disk", mode=0o755)
            note = f"{attribute} volume emulated as an empty directory (its real content is not reproduced)"
            return PodVolume(apply_fs_group(volume, context.fs_group, read_only=False), False, note)
    kinds = [key for key in spec_volume.model_dump(exclude_none=True, by_alias=True) if key != "name"]
    raise bad(
        where,
        f"volume type {', '.join(kinds) or '(none)'} is not emulated on Docker (emulated: emptyDir, "
        "configMap, secret, projected, downwardAPI; persistentVolumeClaim/ephemeral as empty directories)",
    )


def _memory_atomic_volume(
    name: str, payload: dict[str, FileProjection], size: int, context: VolumeContext
) -> PodVolume:
    volume = Volume(
        name=name,
        medium="memory",
        size_bytes=size,
        mode=TMPFS_ROOT_MODE,
        entries=atomic_writer_entries(payload, context.timestamp + "." + _random_suffix()),
    )
    return PodVolume(apply_fs_group(volume, context.fs_group, read_only=True), read_only_source=True)


def _random_suffix() -> str:
    """`os.MkdirTemp`'s random part: a uint32 in decimal."""
    return str(secrets.randbits(32))


def atomic_writer_entries(payload: dict[str, FileProjection], timestamp_dir: str) -> list[FileEntry]:
    entries = [FileEntry(path=timestamp_dir, kind="dir", mode=TIMESTAMP_DIR_MODE)]
    directories: set[str] = set()
    for path in sorted(payload):
        parent = posixpath.dirname(path)
        while parent and parent not in directories:
            directories.add(parent)
            parent = posixpath.dirname(parent)
    for directory in sorted(directories):
        entries.append(
            FileEntry(path=f"{timestamp_dir}/{directory}", kind="dir", mode=0o777 & ~KUBELET_UMASK)
        )
    for path in sorted(payload):
        projection = payload[path]
        entries.append(
            FileEntry(
                path=f"{timestamp_dir}/{path}",
                kind="file",
                content=projection.content,
                mode=projection.mode,
                uid=projection.fs_user or 0,
            )
        )
    entries.append(FileEntry(path=DATA_DIR, kind="symlink", target=timestamp_dir, mode=0o777))
    for top in sorted({path.split("/")[0] for path in payload}):
        entries.append(FileEntry(path=top, kind="symlink", target=f"{DATA_DIR}/{top}", mode=0o777))
    return entries


def apply_fs_group(volume: Volume, fs_group: int | None, read_only: bool) -> Volume:
    """SetVolumeOwnership over the whole volume, root included."""
    if fs_group is None:
        return volume
    mask = RO_MASK if read_only else RW_MASK
    dir_bits = mask | EXEC_MASK | SETGID
    entries = []
    for entry in volume.entries:
        if entry.kind == "symlink":
            entries.append(entry.model_copy(update={"gid": fs_group}))
        else:
            bits = dir_bits if entry.kind == "dir" else mask
            entries.append(entry.model_copy(update={"gid": fs_group, "mode": entry.mode | bits}))
    return volume.model_copy(update={"gid": fs_group, "mode": volume.mode | dir_bits, "entries": entries})


def tmpfs_size(spec: k8s.V1PodSpec, allocatable: dict[str, str], size_limit: int | None) -> int:
    """`calculateEmptyDirMemorySize`: node allocatable memory, lowered to the pod's memory limit and then
    to the volume's sizeLimit when those are positive and smaller."""
    size = value(parse_quantity(allocatable["memory"]))
    pod_limit = pod_memory_limit(spec)
    if pod_limit and pod_limit <= size:
        size = pod_limit
    if size_limit and size_limit <= size:
        size = size_limit
    return size


def pod_memory_limit(spec: k8s.V1PodSpec) -> int | None:
    """The pod cgroup's memory limit: set only when every container has one — the larger of the regular
    containers' (and native sidecars') sum and the largest init container's."""

    def limit(container: k8s.V1Container) -> int | None:
        limits = (container.resources.limits if container.resources else None) or {}
        return value(parse_quantity(limits["memory"])) if "memory" in limits else None

    inits = spec.init_containers or []
    sidecars = [c for c in inits if c.restart_policy == "Always"]
    regular_inits = [c for c in inits if c.restart_policy != "Always"]
    long_running = [limit(c) for c in [*spec.containers, *sidecars]]
    init_limits = [limit(c) for c in regular_inits]
    if any(item is None for item in [*long_running, *init_limits]):
        return None
    total = sum(long_running)  # type: ignore[arg-type]
    return max([total, *init_limits])  # type: ignore[list-item]


def _quantity(text: str | None, bad, where: str) -> int | None:
    if text is None:
        return None
    try:
        return value(parse_quantity(text))
    except QuantityError as exc:
        raise bad(where, str(exc)) from None


def _check_item_path(path: str, bad, where: str) -> None:
    """KeyToPath.path validation: relative, no `..` element, not starting with `..`."""
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or path.startswith(".."):
        raise bad(where, f"path {path!r} must be relative, without '..', and not start with '..'")


def _keys_payload(
    table: dict[tuple[str, str], ConfigData],
    kind: str,
    name: str | None,
    items: list[k8s.V1KeyToPath] | None,
    optional: bool | None,
    default_mode: int | None,
    where: str,
    context: VolumeContext,
) -> dict[str, FileProjection]:
    """ConfigMap/Secret content: every key, or the listed `items` (a missing key fails unless optional)."""
    bad = context.pod.workload.bad
    mode = DEFAULT_MODE if default_mode is None else default_mode
    data = table.get((context.pod.namespace, name or ""))
    if data is None:
        if optional:
            return {}
        raise bad(
            where,
            f"{kind} {name!r} not found in namespace {context.pod.namespace!r}: add its manifest to "
            "the target's resources, or set optional: true (the pod would not start)",
        )
    if not items:
        return {key: FileProjection(content, mode) for key, content in data.files.items()}
    payload = {}
    for index, item in enumerate(items):
        _check_item_path(item.path, bad, f"{where}.items[{index}].path")
        if item.key not in data.files:
            if optional:
                continue
            raise bad(
                f"{where}.items[{index}].key",
                f"{kind} {name!r} has no key {item.key!r} (keys: {', '.join(sorted(data.files)) or 'none'})",
            )
        payload[item.path] = FileProjection(data.files[item.key], mode if item.mode is None else item.mode)
    return payload


def _downward_payload(
    items: list[k8s.V1DownwardAPIVolumeFile], default_mode: int, where: str, context: VolumeContext
) -> dict[str, FileProjection]:
    bad = context.pod.workload.bad
    payload = {}
    for index, item in enumerate(items):
        item_where = f"{where}.items[{index}]"
        _check_item_path(item.path, bad, f"{item_where}.path")
        try:
            if item.field_ref is not None:
                text = field_value(item.field_ref, context.pod, for_volume=True)
            elif item.resource_field_ref is not None:
                selector = item.resource_field_ref
                container = find_container(context.pod.spec, selector.container_name or "")
                if container is None:
                    raise bad(
                        f"{item_where}.resourceFieldRef.containerName",
                        f"required, and must name a container of the pod (got {selector.container_name!r})",
                    )
                text = resource_value(selector, container, context.allocatable)
            else:
                raise bad(item_where, "needs fieldRef or resourceFieldRef")
        except DownwardError as exc:
            raise bad(item_where, str(exc)) from None
        payload[item.path] = FileProjection(
            text.encode("utf-8"), default_mode if item.mode is None else item.mode
        )
    return payload


def _projected_payload(
    source: k8s.V1ProjectedVolumeSource, where: str, context: VolumeContext
) -> dict[str, FileProjection]:
    bad = context.pod.workload.bad
    default_mode = DEFAULT_MODE if source.default_mode is None else source.default_mode
    payload: dict[str, FileProjection] = {}
    for index, projection in enumerate(source.sources or []):
        item_where = f"{where}.sources[{index}]"
        if projection.config_map is not None:
            part = projection.config_map
            payload.update(
                _keys_payload(
                    context.manifests.config_maps,
                    "ConfigMap",
                    part.name,
                    part.items,
                    part.optional,
                    default_mode,
                    f"{item_where}.configMap",
                    context,
                )
            )
        elif projection.secret is not None:
            part = projection.secret
            payload.update(
                _keys_payload(
                    context.manifests.secrets,
                    "Secret",
                    part.name,
                    part.items,
                    part.optional,
                    default_mode,
                    f"{item_where}.secret",
                    context,
                )
            )
        elif projection.downward_api is not None:
            payload.update(
                _downward_payload(
                    projection.downward_api.items or [], default_mode, f"{item_where}.downwardAPI", context
                )
            )
        elif projection.service_account_token is not None:
            token = projection.service_account_token
            _check_item_path(token.path, bad, f"{item_where}.serviceAccountToken.path")
            expiration = token.expiration_seconds or DEFAULT_TOKEN_EXPIRATION
            owned = context.fs_user is not None or context.fs_group is not None
            payload[token.path] = FileProjection(
                service_account_token(context.token_subject, token.audience, expiration),
                0o600 if owned else default_mode,
                context.fs_user,
            )
        else:
            raise bad(
                item_where,
                "only configMap, secret, downwardAPI and serviceAccountToken projections are emulated",
            )
    return payload


def container_mounts(
    container: k8s.V1Container,
    path: str,
    pod: PodFacts,
    volumes: dict[str, PodVolume],
    environment: list[tuple[str, str]],
) -> list[Mount]:
    """The container's volumeMounts as bind mounts of plan volumes; creates missing subPath directories."""
    bad = pod.workload.bad
    lookup = dict(environment)
    mounts = []
    for index, volume_mount in enumerate(container.volume_mounts or []):
        where = f"{path}.volumeMounts[{index}]"
        pod_volume = volumes.get(volume_mount.name)
        if pod_volume is None:
            raise bad(f"{where}.name", f"no volume named {volume_mount.name!r} in the pod")
        if not volume_mount.mount_path.startswith("/"):
            raise bad(f"{where}.mountPath", "must be an absolute path")
        sub_path = volume_mount.sub_path or None
        if volume_mount.sub_path_expr:
            sub_path = _expand_sub_path(volume_mount.sub_path_expr, lookup, bad, f"{where}.subPathExpr")
        if sub_path:
            if sub_path.startswith("/") or ".." in sub_path.split("/"):
                raise bad(f"{where}.subPath", f"{sub_path!r} must be a relative path without '..'")
            sub_path = resolve_sub_path(pod_volume, sub_path)
        mounts.append(
            Mount(
                volume=volume_mount.name,
                target=volume_mount.mount_path,
                sub_path=sub_path,
                read_only=bool(volume_mount.read_only) or pod_volume.read_only_source,
            )
        )
    return mounts


def _expand_sub_path(expression: str, lookup: dict[str, str], bad, where: str) -> str:
    """`ExpandContainerVolumeMounts`: every referenced variable must be set and non-empty."""
    missing: set[str] = set()

    def strict(name: str) -> str:
        if not lookup.get(name):
            missing.add(name)
        return lookup.get(name, "")

    try:
        expanded = expand(expression, strict)
    except ExpansionError as exc:
        raise bad(where, str(exc)) from None
    if missing:
        raise bad(where, f"missing value for {', '.join(sorted(missing))}")
    return expanded


def resolve_sub_path(pod_volume: PodVolume, sub_path: str) -> str:
    """The entry the subPath names, following symlinks inside the volume; missing directories are
    created (the last with the root's mode, the ones above it with 0777 & ~umask)."""
    volume = pod_volume.volume
    by_path = {entry.path: entry for entry in volume.entries}
    resolved: list[str] = []
    parts = [part for part in sub_path.split("/") if part not in ("", ".")]
    hops = 0
    while parts:
        part = parts.pop(0)
        candidate = "/".join([*resolved, part])
        entry = by_path.get(candidate)
        if entry is not None and entry.kind == "symlink" and hops < 40:
            hops += 1
            target = posixpath.normpath(posixpath.join("/".join(resolved), entry.target or ""))
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            resolved = []
            continue
        resolved.append(part)
    final = "/".join(resolved)
    missing = [
        prefix
        for prefix in ("/".join(resolved[: i + 1]) for i in range(len(resolved)))
        if prefix not in by_path
    ]
    inherit_gid = bool(volume.mode & SETGID)
    for prefix in missing:
        is_last = prefix == final
        mode = volume.mode if is_last else (volume.mode & 0o777 & ~KUBELET_UMASK) | (volume.mode & SETGID)
        volume.entries.append(
            FileEntry(path=prefix, kind="dir", mode=mode, uid=0, gid=volume.gid if inherit_gid else 0)
        )
        by_path[prefix] = volume.entries[-1]
    return final
