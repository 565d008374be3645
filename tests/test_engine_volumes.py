"""Volume archives and sub_path resolution (conformance.engines.volumes), without Docker."""

from __future__ import annotations

import io
import tarfile

import pytest

from conformance.engines.volumes import (
    VolumePathError,
    resolve_sub_path,
    with_sub_path_dirs,
    write_volumes_archive,
)
from conformance.plan import FileEntry, Volume

ATOMIC_WRITER = Volume(
    name="secret",
    medium="memory",
    entries=[
        FileEntry(path="..2024_01_01_00_00_00.1", kind="dir", mode=0o755),
        FileEntry(path="..2024_01_01_00_00_00.1/token", content=b"t", mode=0o600, uid=1000, gid=2000),
        FileEntry(path="..2024_01_01_00_00_00.1/conf/app.yaml", content=b"a: 1"),
        FileEntry(path="..data", kind="symlink", target="..2024_01_01_00_00_00.1"),
        FileEntry(path="token", kind="symlink", target="..data/token"),
        FileEntry(path="conf", kind="symlink", target="..data/conf"),
    ],
)


def archive_members(volumes: list[tuple[str, Volume]]) -> dict[str, tarfile.TarInfo]:
    stream = io.BytesIO()
    write_volumes_archive(stream, volumes, mtime=1_700_000_000)
    stream.seek(0)
    with tarfile.open(fileobj=stream) as archive:
        return {member.name: member for member in archive.getmembers()}


def test_archive_carries_modes_owners_and_symlinks():
    members = archive_members([("0", ATOMIC_WRITER)])
    token = members["0/..2024_01_01_00_00_00.1/token"]
    assert (token.mode, token.uid, token.gid, token.isfile()) == (0o600, 1000, 2000, True)
    assert members["0/token"].issym() and members["0/token"].linkname == "..data/token"
    assert members["0/..data"].linkname == "..2024_01_01_00_00_00.1"
    assert members["0/token"].mtime == 1_700_000_000


def test_archive_sets_the_volume_root_through_a_named_directory_entry():
    volume = Volume(name="data", mode=0o750, uid=1234, gid=2345)
    root = archive_members([("3", volume)])["3"]
    assert root.isdir() and (root.mode, root.uid, root.gid) == (0o750, 1234, 2345)


def test_archive_creates_undeclared_parents_before_their_children():
    volume = Volume(name="v", entries=[FileEntry(path="a/b/c.txt", content=b"x")])
    stream = io.BytesIO()
    write_volumes_archive(stream, [("0", volume)])
    stream.seek(0)
    with tarfile.open(fileobj=stream) as archive:
        names = [member.name for member in archive.getmembers()]
        parents = {member.name: member for member in archive.getmembers() if member.isdir()}
    assert names.index("0/a") < names.index("0/a/b") < names.index("0/a/b/c.txt")
    assert (parents["0/a/b"].mode, parents["0/a/b"].uid) == (0o755, 0)


def test_archive_refuses_an_entry_outside_its_volume():
    volume = Volume(name="v", entries=[FileEntry(path="../escape", content=b"x")])
    with pytest.raises(VolumePathError, match="inside the volume"):
        write_volumes_archive(io.BytesIO(), [("0", volume)])


@pytest.mark.parametrize(
    ("sub_path", "resolved"),
    [
        ("token", "..2024_01_01_00_00_00.1/token"),  # key -> ..data/key -> timestamped dir
        ("conf/app.yaml", "..2024_01_01_00_00_00.1/conf/app.yaml"),  # through a symlinked directory
        ("..data", "..2024_01_01_00_00_00.1"),
        ("./token", "..2024_01_01_00_00_00.1/token"),
    ],
)
def test_sub_path_follows_symlinks_like_kubelet(sub_path, resolved):
    assert resolve_sub_path(ATOMIC_WRITER, sub_path).path == resolved
    assert resolve_sub_path(ATOMIC_WRITER, sub_path).exists


def test_missing_sub_path_is_reported_and_created_with_the_volume_root_mode():
    volume = Volume(name="v", mode=0o750, uid=7, gid=8)
    resolved = resolve_sub_path(volume, "new/dir")
    assert (resolved.path, resolved.exists) == ("new/dir", False)
    created = with_sub_path_dirs(volume, [resolved.path]).entries
    assert [(e.path, e.kind, e.mode, e.uid, e.gid) for e in created] == [("new/dir", "dir", 0o750, 7, 8)]


@pytest.mark.parametrize("sub_path", ["/etc/passwd", "../outside", "a/../../outside"])
def test_sub_path_cannot_leave_the_volume(sub_path):
    with pytest.raises(VolumePathError):
        resolve_sub_path(Volume(name="v", entries=[FileEntry(path="a/f")]), sub_path)


def test_sub_path_through_an_absolute_symlink_is_refused():
    volume = Volume(name="v", entries=[FileEntry(path="host", kind="symlink", target="/etc")])
    with pytest.raises(VolumePathError, match="absolute symlink"):
        resolve_sub_path(volume, "host/passwd")


def test_symlink_loop_is_refused():
    volume = Volume(
        name="v",
        entries=[
            FileEntry(path="a", kind="symlink", target="b"),
            FileEntry(path="b", kind="symlink", target="a"),
        ],
    )
    with pytest.raises(VolumePathError, match="loops"):
        resolve_sub_path(volume, "a")
