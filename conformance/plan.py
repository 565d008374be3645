"""The LaunchPlan: everything a platform puts around a workload, in engine-neutral terms.

A platform adapter (conformance.platforms.*) turns a real spec — a Pod manifest, a CreateTrainingJob
request — into a LaunchPlan; an engine (conformance.engines.*) executes it. The plan describes what the
platform would do (environment in order, files with modes and owners, mounts, hostname, user, /dev/shm,
security options, sidecars); the engine only decides *how* to reproduce it and injects the probe in place
of the workload's command, keeping the image's ENTRYPOINT unless the plan overrides it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileEntry(_Model):
    """One entry inside a volume, at `path` relative to the volume root."""

    path: str
    kind: Literal["file", "dir", "symlink"] = "file"
    content: bytes = b""
    target: str | None = Field(None, description="symlink target (kind=symlink)")
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


class Volume(_Model):
    """Storage the platform provides: pre-populated files, an empty directory, or memory-backed."""

    name: str
    medium: Literal["disk", "memory"] = "disk"
    size_bytes: int | None = Field(None, description="tmpfs size for medium=memory")
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    entries: list[FileEntry] = Field(default_factory=list)


class Mount(_Model):
    volume: str
    target: str = Field(description="absolute path in the container")
    sub_path: str | None = Field(None, description="mount one entry of the volume (Kubernetes subPath)")
    read_only: bool = False


class Container(_Model):
    name: str
    image: str
    role: Literal["init", "sidecar", "main"] = "main"
    entrypoint: list[str] | None = Field(None, description="None keeps the image's ENTRYPOINT")
    command: list[str] | None = Field(
        None, description="the platform's arguments (CMD); for the main container the probe replaces them"
    )
    env: list[tuple[str, str]] = Field(
        default_factory=list, description="in the order the platform sets them"
    )
    working_dir: str | None = None
    user: str | None = Field(None, description="'uid' or 'uid:gid'; None keeps the image's USER")
    group_add: list[int] = Field(default_factory=list)
    mounts: list[Mount] = Field(default_factory=list)
    read_only_rootfs: bool = False
    cap_add: list[str] = Field(default_factory=list)
    cap_drop: list[str] = Field(default_factory=list)
    no_new_privileges: bool = False
    seccomp_unconfined: bool = False
    privileged: bool = False
    cpu_limit_millicores: int | None = None
    cpu_shares: int | None = None
    memory_limit_bytes: int | None = None


class LaunchPlan(_Model):
    platform: Literal["kubernetes", "sagemaker"]
    target: str
    hostname: str
    domainname: str | None = None
    network: Literal["none", "host"] = Field(
        "none", description="network of the pod/job sandbox; containers join it (never the default bridge)"
    )
    shm_size_bytes: int = 64 * 1024 * 1024
    volumes: list[Volume] = Field(default_factory=list)
    init_containers: list[Container] = Field(default_factory=list)
    sidecars: list[Container] = Field(default_factory=list)
    main: Container
    probe_as: str | None = Field(
        None,
        description="a program the platform runs by name as main's command (SageMaker's `train`): the engine "
        "keeps main.command and makes that name resolve to the probe instead of replacing the command",
    )
    failure_message_path: str | None = Field(
        None, description="file whose first bytes become the failure reason after a non-zero exit"
    )
    failure_message_limit: int = 1024
    metadata: dict[str, str] = Field(default_factory=dict, description="names shown in reports (pod, job, …)")
    spec: dict[str, Any] | None = Field(
        None,
        description="the spec as the real platform receives it (the validated job request, the pod "
        "manifest): what an engine that submits to the platform itself sends, with the probe injected",
    )

    def volume(self, name: str) -> Volume:
        for volume in self.volumes:
            if volume.name == name:
                return volume
        raise KeyError(name)
