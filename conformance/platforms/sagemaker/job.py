"""What training and processing jobs share: the request in context, hosts, environment, the main container."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.errors import BadInput
from conformance.plan import Container, FileEntry, LaunchPlan, Mount, Volume
from conformance.platforms.ec2 import AMAZON_LINUX_HOSTS, instance_resolv_conf, private_dns_domain
from conformance.platforms.sagemaker import opt_ml
from conformance.platforms.sagemaker.identity import account_of_role, partition
from conformance.platforms.sagemaker.options import SageMakerOptions


@dataclass(frozen=True)
class JobRequest:
    """A validated Create*Job request and everything needed to place it.

    `reads_inputs` is False when the request goes to the real platform (`engine: aws`), which reads its
    input data itself: the plan's channel directories stay empty, nothing is downloaded, and the data
    sources only the emulation cannot reproduce (Pipe-mode processing inputs, manifest channels) are
    allowed.
    """

    target_name: str
    image: str
    request: dict[str, Any]
    options: SageMakerOptions
    spec_path: Path
    config_path: Path
    reads_inputs: bool = True

    @property
    def option_field(self) -> str:
        return f"targets.{self.target_name}.options"

    @property
    def region(self) -> str:
        return self.options.region

    @property
    def account(self) -> str:
        # RoleArn is required and its pattern carries a 12-digit account (BC RoleArn).
        return self.options.account_id or account_of_role(self.request["RoleArn"])

    def option_error(self, key: str, problem: str) -> BadInput:
        return BadInput(self.config_path, f"{self.option_field}.{key}", problem)

    def spec_error(self, field_path: str, problem: str) -> BadInput:
        return BadInput(self.spec_path, field_path, problem)

    def host_index(self, hosts: list[str]) -> int:
        """Index of the `current_host` option among the job's hosts (`algo-1` … `algo-N`)."""
        if self.options.current_host not in hosts:
            raise self.option_error(
                "current_host",
                f"{self.options.current_host} is not a host of this job (hosts: {', '.join(hosts)})",
            )
        return hosts.index(self.options.current_host)


def hosts_named(start: int, count: int) -> list[str]:
    """Logical host names `algo-<n>` (sagemaker-contract.md §1 "Hostname": they exist in
    resourceconfig.json)."""
    return [f"algo-{number}" for number in range(start, start + count)]


def platform_environment(
    platform: list[tuple[str, str]], user: dict[str, str] | None
) -> list[tuple[str, str]]:
    """The platform's variables, then the request's `Environment`.

    A user entry with the name of a platform variable is dropped: the platform's value is what the
    container gets (an assumption: no source shows the collision; Docker would pass both and getenv
    would return the first).
    """
    names = {name for name, _ in platform}
    return [*platform, *((name, value) for name, value in (user or {}).items() if name not in names)]


def job_plan(
    job: JobRequest,
    tree: Tree,
    *,
    api: str,
    name: str,
    arn: str,
    hostname: str,
    platform: list[tuple[str, str]],
    entrypoint: list[str] | None,
    command: list[str] | None,
    failure_file: str,
    probe_as: str | None = None,
) -> LaunchPlan:
    """One host of the job: a single container, the platform's variables then the request's `Environment`.

    SageMaker has no setting for user or working directory, so the image's USER and WORKDIR apply
    (sagemaker-contract.md §1 "Working directory and user").
    """
    host = job.options.current_host
    return LaunchPlan(
        platform="sagemaker",
        target=job.target_name,
        hostname=hostname,
        network=job.options.network,
        volumes=tree.volumes(),
        main=Container(
            name=host,
            image=job.image,
            role="main",
            entrypoint=entrypoint,
            command=command,
            env=platform_environment(platform, job.request.get("Environment")),
            mounts=tree.mounts,
        ),
        probe_as=probe_as,
        failure_message_path=failure_file,
        failure_message_limit=opt_ml.FAILURE_LIMIT,
        metadata={"job": name, "api": api, "arn": arn, "host": host},
    )


@dataclass
class Tree:
    """Volumes and their mounts under construction; a directory is placed in the volume that covers it."""

    entries: dict[str, list[FileEntry]] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)

    def add(
        self,
        name: str,
        mount_point: str,
        entries: list[FileEntry],
        read_only: bool = False,
        mode: int = opt_ml.DIR_MODE,
    ) -> list[FileEntry]:
        """A volume mounted at `mount_point`; returns its entry list, to which more can be added."""
        self.entries[name] = entries
        self.modes[name] = mode
        self.mounts.append(Mount(volume=name, target=mount_point, read_only=read_only))
        return entries

    def ensure_directory(self, path: str, volume_name: str) -> None:
        """Make `path` exist: inside the mounted volume that covers it, else as a volume of its own."""
        for mount in sorted(self.mounts, key=lambda m: len(m.target), reverse=True):
            relative = opt_ml.relative_to(mount.target, path)
            if relative is not None:
                if relative:
                    self.entries[mount.volume].append(opt_ml.directory(relative))
                return
        self.add(volume_name, path.rstrip("/"), [])

    def volumes(self) -> list[Volume]:
        return [opt_ml.volume(name, entries, mode=self.modes[name]) for name, entries in self.entries.items()]


def add_instance_files(job: JobRequest, tree: Tree, hostname: str) -> None:
    """/etc/hosts, /etc/resolv.conf and /etc/hostname as the instance has them.

    The container shares its instance's network namespace (its HOSTNAME is the instance's private DNS name,
    sagemaker-contract.md §1 "Hostname"), so it sees the instance's files: Amazon Linux's hosts [obs] and
    the VPC resolver with the private DNS domain — never the emulating machine's, whatever the network option.
    """
    name = "instance-files"
    tree.entries[name] = [
        FileEntry(path="hosts", content=AMAZON_LINUX_HOSTS.encode()),
        FileEntry(path="resolv.conf", content=instance_resolv_conf(private_dns_domain(job.region)).encode()),
        FileEntry(path="hostname", content=f"{hostname}\n".encode()),
    ]
    tree.modes[name] = opt_ml.DIR_MODE
    tree.mounts += [
        Mount(volume=name, target=f"/etc/{file_name}", sub_path=file_name)
        for file_name in ("hosts", "resolv.conf", "hostname")
    ]


def notebook_metadata(job: JobRequest) -> dict[str, str] | None:
    """/opt/ml/metadata/resource-metadata.json for the `notebook` option (sagemaker-contract.md §2
    "Studio and notebook instances": DG nbi-metadata.md, notebooks-run-and-manage-metadata.md)."""
    context = job.options.notebook
    if context is None:
        return None
    arn_prefix = f"arn:{partition(job.region)}:sagemaker:{job.region}:{job.account}"
    if context.kind == "notebook-instance":
        return {
            "ResourceArn": f"{arn_prefix}:notebook-instance/{context.resource_name}",
            "ResourceName": context.resource_name,
        }
    app = context.app_type.lower()
    return {
        "AppType": context.app_type,
        "DomainId": context.domain_id,
        "UserProfileName": context.user_profile_name,
        "ExecutionRoleArn": context.execution_role_arn or job.request["RoleArn"],
        "ResourceArn": (
            f"{arn_prefix}:app/{context.domain_id}/{context.user_profile_name}/{app}/{context.resource_name}"
        ),
        "ResourceName": context.resource_name,
    }


def add_context_volumes(job: JobRequest, tree: Tree) -> list[tuple[str, str]]:
    """Warm-pool cache and notebook metadata volumes; returns the variables they bring."""
    env: list[tuple[str, str]] = []
    if job.options.warm_pool:
        # A reused warm-pool instance keeps this directory between jobs and points a variable at it
        # (sagemaker-contract.md §4, DG train-warm-pools).
        tree.add("warm-pool-cache", opt_ml.WARM_POOL_CACHE, [])
        env.append(("SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY", opt_ml.WARM_POOL_CACHE))
    metadata = notebook_metadata(job)
    if metadata is not None:
        tree.add(
            "metadata", opt_ml.METADATA, [opt_ml.file("resource-metadata.json", opt_ml.go_json(metadata))]
        )
    return env
