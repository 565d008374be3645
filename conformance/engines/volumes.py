"""A LaunchPlan's volumes as tar archives, and Kubernetes-style `subPath` resolution inside them.

The Docker engine populates volumes through the Engine API's archive endpoint (`put_archive`): tar headers
carry each entry's mode, uid, gid and symlink target, and the daemon applies them as root, so the harness
itself needs neither root nor a local filesystem shared with the daemon. Each volume travels as a
directory entry named after its staging mount point, which is how the volume root gets its own mode and
owner (the daemon skips a `.` entry, but applies a named directory entry to an existing mount point).
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from conformance.plan import FileEntry, Volume

# Linux's own limit on symlinks followed while resolving one path (MAXSYMLINKS).
MAX_SYMLINK_HOPS = 40


class VolumePathError(ValueError):
    """A volume path (entry or sub_path) that leaves its volume, or loops through symlinks."""


@dataclass(frozen=True)
class ResolvedSubPath:
    path: str
    """Relative to the volume root, symlinks followed."""
    exists: bool
    """False when nothing in the volume is at `path`: kubelet then creates it as a directory."""


def entry_index(volume: Volume) -> dict[str, FileEntry]:
    return {_normalized(entry.path): entry for entry in volume.entries}


def resolve_sub_path(volume: Volume, sub_path: str) -> ResolvedSubPath:
    """Follow `sub_path` through the volume's entries the way kubelet resolves it on the node.

    Symlinks are followed (the atomic-writer layout makes every key a symlink into `..data`), absolute
    paths and `..` that climb out of the volume are refused, and a missing final component is reported
    so the caller can create it (kubernetes-contract.md §2, subPath).
    """
    if posixpath.isabs(sub_path):
        raise VolumePathError(f"sub_path {sub_path!r} must be relative to the volume")
    entries = entry_index(volume)
    pending = [part for part in sub_path.split("/") if part not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if not resolved:
                raise VolumePathError(f"sub_path {sub_path!r} leaves the volume")
            resolved.pop()
            continue
        candidate = "/".join([*resolved, part])
        entry = entries.get(candidate)
        if entry is not None and entry.kind == "symlink":
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise VolumePathError(f"sub_path {sub_path!r} loops through symlinks")
            target = entry.target or ""
            if posixpath.isabs(target):
                raise VolumePathError(
                    f"sub_path {sub_path!r} reaches the absolute symlink {candidate} -> {target}"
                )
            pending = [p for p in target.split("/") if p not in ("", ".")] + pending
            continue
        if entry is None and not _is_implicit_dir(entries, candidate):
            return ResolvedSubPath("/".join([*resolved, part, *pending]), exists=False)
        resolved.append(part)
    return ResolvedSubPath("/".join(resolved), exists=True)


def with_sub_path_dirs(volume: Volume, missing: Iterable[str]) -> Volume:
    """The volume plus a directory for each missing sub_path, with the volume root's mode and owner."""
    extra = [
        FileEntry(path=path, kind="dir", mode=volume.mode, uid=volume.uid, gid=volume.gid)
        for path in sorted(set(missing))
        if path
    ]
    if not extra:
        return volume
    return volume.model_copy(update={"entries": [*volume.entries, *extra]})


def write_volumes_archive(
    stream: IO[bytes], volumes: Iterable[tuple[str, Volume]], mtime: float | None = None
) -> None:
    """Write one tar holding every volume as `<dirname>/...`, to be extracted in the staging directory.

    Parents that no entry declares are created 0755 root:root, the mode kubelet's atomic writer and
    SageMaker's /opt/ml tree both use for intermediate directories.
    """
    stamp = int(time.time() if mtime is None else mtime)
    with tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for dirname, volume in volumes:
            archive.addfile(_header(dirname, tarfile.DIRTYPE, volume.mode, volume.uid, volume.gid, stamp))
            declared = entry_index(volume)
            for path in _implicit_parents(declared):
                archive.addfile(_header(f"{dirname}/{path}", tarfile.DIRTYPE, 0o755, 0, 0, stamp))
            for path, entry in sorted(declared.items(), key=lambda item: (item[0].count("/"), item[0])):
                name = f"{dirname}/{path}"
                if entry.kind == "dir":
                    archive.addfile(_header(name, tarfile.DIRTYPE, entry.mode, entry.uid, entry.gid, stamp))
                elif entry.kind == "symlink":
                    header = _header(name, tarfile.SYMTYPE, 0o777, entry.uid, entry.gid, stamp)
                    header.linkname = entry.target or ""
                    archive.addfile(header)
                else:
                    header = _header(name, tarfile.REGTYPE, entry.mode, entry.uid, entry.gid, stamp)
                    header.size = len(entry.content)
                    archive.addfile(header, io.BytesIO(entry.content))


def _header(name: str, kind: bytes, mode: int, uid: int, gid: int, mtime: int) -> tarfile.TarInfo:
    header = tarfile.TarInfo(name)
    header.type = kind
    header.mode = mode
    header.uid = uid
    header.gid = gid
    header.mtime = mtime
    return header


def _normalized(path: str) -> str:
    normalized = posixpath.normpath(path.lstrip("/"))
    if normalized == "." or normalized == ".." or normalized.startswith("../"):
        raise VolumePathError(f"volume entry path {path!r} must name something inside the volume")
    return normalized


def _is_implicit_dir(entries: dict[str, FileEntry], path: str) -> bool:
    prefix = path + "/"
    return any(key.startswith(prefix) for key in entries)


def _implicit_parents(entries: dict[str, FileEntry]) -> list[str]:
    parents: set[str] = set()
    for path in entries:
        parent = posixpath.dirname(path)
        while parent and parent not in entries:
            parents.add(parent)
            parent = posixpath.dirname(parent)
    return sorted(parents, key=lambda path: (path.count("/"), path))
