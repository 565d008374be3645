"""The Docker engine: execute a LaunchPlan on one Docker daemon and bring back the probe's snapshot.

How a plan becomes containers:

- **The probe is the workload.** A temp dir holding `parity_probe.py` and `config.json` is bind-mounted
  read-only at `/.parity`; the image is never changed. The main container keeps its image's ENTRYPOINT
  (unless the plan sets one) and its command is replaced by
  `python3 /.parity/parity_probe.py --config /.parity/config.json`, so the compat entrypoint runs first and
  execs the probe as it would exec user code. When the platform runs a program *by name* instead
  (`plan.probe_as`, SageMaker's `docker run IMAGE train`), the command is kept and a shim of that name is
  bind-mounted into the first directory of the container's PATH, where it shadows any program of the same
  name: an entrypoint that dispatches on `$1 = train` takes its real branch, and its `exec train` starts
  the probe with the same argv and environment as the command replacement would. The shim is a
  `#!/usr/bin/env python3` script (python3 is there for the probe anyway) and is listed in the probe's
  `exclude_paths`, like `/.parity`. An entrypoint that puts another directory holding its own `train`
  before the image's PATH would bypass it.
- **Pods.** A plan with init containers, sidecars or memory-backed volumes gets a holder container first
  (a pod's pause container: hostname, domainname, network `none`/`host`, a shareable IPC namespace,
  /dev/shm size), running `python3 -c "import signal; signal.pause()"` from the main image. Every other
  container joins it (`network_mode`/`ipc_mode` = `container:<holder>`), so a sidecar on localhost:8125 is
  reachable from the main container and /dev/shm is pod-wide. Init containers run to completion in order
  before the sidecars and the main container start; the main container starts once the sidecars have
  settled (every process asleep, at most SIDECAR_SETTLE_SECONDS), so the probe's first-millisecond test
  metric meets a listening sidecar as a real workload's first metric, seconds in, would. A plan without
  any of those (a SageMaker job) runs the main container alone with the same settings: the holder is one
  more container start (~0.2 s on the reference machine, as much as the whole bare `docker run`), paid
  only when the plan needs it.
- **Volumes** are Docker named volumes (`driver_opts` tmpfs for `medium: memory`, so Kubernetes Secret and
  projected volumes report fstype tmpfs), populated with one `put_archive` whose tar headers carry every
  entry's mode, uid, gid and symlink target (see conformance.engines.volumes). The daemon applies them as
  root, so this works from an unprivileged harness and against a remote daemon; host-staged directories
  would need the harness to run as root (chown) on the daemon's machine. A memory volume keeps its content
  only while mounted, so the holder keeps every volume mounted for the pod's lifetime and receives the
  archive. Without a holder, the created (not yet started) main container receives it when it mounts every
  volume whole and writable (a SageMaker job); otherwise a staging container that is never started.
  `sub_path` mounts bind the staged path under the volume's mountpoint on the daemon host (Docker 20.10
  has no volume subpath), after resolving symlinks inside the volume as kubelet does; files mounted over
  /etc/hosts, /etc/resolv.conf or /etc/hostname replace Docker's own.
- **Results.** The snapshot is read from the main container's stdout (framed) after it exits. A non-zero
  exit reads `plan.failure_message_path` from the stopped container (first `failure_message_limit` bytes)
  into the outcome and any error. Each sidecar's last log lines are read once the main container has
  exited (`RunOutcome.sidecar_logs`: a metrics sidecar's echo shows what reached it). No snapshot, a
  timeout, a missing image or a failing init container is an InfrastructureError (exit 3) carrying the
  container's last log lines.
- **Cleanup.** Every container and volume is labelled `org.parity.run=<uuid>` (plus `org.parity.target`,
  `org.parity.role`, `org.parity.owner` and the request's own `ProbeRequest.labels`) and removed by label
  on every path; the temp dir too. Interrupts reach runs in worker threads through
  conformance.engines.reaper. What a SIGKILLed parity left behind is swept by the next run on the host.
- Containers never use Docker's default bridge: network mode is `none`, `host` or `container:<holder>`,
  checked before every create.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container as DockerContainer
from docker.models.images import Image
from docker.types import Mount

from conformance.config import LoadedConfig
from conformance.dockerhost import connect
from conformance.engines.probe_files import MOUNTED_PROBE_DIR, probe_command, probe_files
from conformance.engines.reaper import (
    HOLDER_ROLE,
    LABEL_OWNER,
    LABEL_ROLE,
    LABEL_RUN,
    LABEL_TARGET,
    LIVE_RUNS,
    concurrently,
    install_interrupt_handlers,
    owner_id,
    remove_run_resources,
    sweep_orphans,
)
from conformance.engines.volumes import (
    VolumePathError,
    resolve_sub_path,
    with_sub_path_dirs,
    write_volumes_archive,
)
from conformance.errors import BadInput, InfrastructureError
from conformance.plan import Container, LaunchPlan, Volume
from conformance.runner import ProbeRequest, RunOutcome
from conformance.snapshot import extract_snapshot

PROBE_DIR = MOUNTED_PROBE_DIR
PROBE_COMMAND = probe_command(PROBE_DIR)
STAGE_DIR = "/.parity-stage"
HOLDER_COMMAND = ["python3", "-c", "import signal; signal.pause()"]
# Docker's PATH for an image that sets none (daemon/oci defaults); also containerd's (kubernetes-contract §1).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LOG_TAIL_LINES = 20
SANDBOX_NETWORKS = ("none", "host")
# kubelet's CFS period (kubernetes-contract §4): quota = millicores × 100 µs per 100 ms.
CPU_PERIOD_US = 100_000
# The longest the main container waits for the sidecars to finish starting, and how often they are looked at.
SIDECAR_SETTLE_SECONDS = 5.0
SIDECAR_POLL_SECONDS = 0.02
BUILD_HINT = (
    "build or load it on this daemon first (`docker build --network host -t {image} …` or `docker load`); "
    "parity never pulls images"
)


class DockerEngine:
    """Executes LaunchPlans on the Docker daemon of the environment (DOCKER_HOST or the local socket)."""

    def __init__(self, client: docker.DockerClient | None = None):
        self._client = client
        install_interrupt_handlers()

    @classmethod
    def for_target(cls, loaded: LoadedConfig, target_name: str) -> DockerEngine:
        """The daemon comes from the environment (DOCKER_HOST); the engine takes no options."""
        unknown = sorted(loaded.config.targets[target_name].engine_options)
        if unknown:
            raise BadInput(
                loaded.path,
                f"targets.{target_name}.engine_options.{unknown[0]}",
                "unknown option (the docker engine takes none; it uses DOCKER_HOST or the local socket)",
            )
        return cls()

    def run(self, plan: LaunchPlan, probe: ProbeRequest, timeout: float) -> RunOutcome:
        install_interrupt_handlers()
        client = self._client or connect()
        sweep_orphans(client)
        return _PlanRun(client, plan, probe, timeout).execute()


def checked_network_mode(mode: str) -> str:
    """The network mode, refused unless it keeps the container off Docker's default bridge."""
    if mode in SANDBOX_NETWORKS or mode.startswith("container:"):
        return mode
    raise ValueError(
        f"network mode {mode!r} would use a Docker network; parity allows none, host, container:<id>"
    )


def probe_shim(command: list[str]) -> str:
    """A Python script that replaces itself with `command`, handing on its environment byte for byte.

    The environment comes from /proc/self/environ, not os.environ: CPython's C-locale coercion (PEP 538)
    adds LC_CTYPE to os.environ, and a shell would export PWD — the probe would report either as set by
    the platform.
    """
    arguments = ", ".join(repr(part.encode()) for part in command)
    return (
        "#!/usr/bin/env python3\n"
        "# parity: for this run, this name starts the parity probe (conformance/engines/docker.py)\n"
        "import os, sys\n"
        "with open('/proc/self/environ', 'rb') as block:\n"
        "    environment = dict(item.split(b'=', 1) for item in block.read().split(b'\\0') if b'=' in item)\n"
        f"os.execve(sys.executable, [{arguments}], environment)\n"
    )


class _PlanRun:
    """One execution of one plan: everything it creates is labelled with its run id and removed at the end."""

    def __init__(self, client: docker.DockerClient, plan: LaunchPlan, probe: ProbeRequest, timeout: float):
        self.client = client
        self.plan = plan
        self.probe = probe
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.run_id = uuid.uuid4().hex
        self.labels = {
            **probe.labels,
            LABEL_RUN: self.run_id,
            LABEL_TARGET: plan.target,
            LABEL_OWNER: owner_id(),
        }
        self.volume_names: dict[str, str] = {}
        self.volume_mountpoints: dict[str, str] = {}
        self.volumes = self._volumes_with_sub_path_dirs()
        self.holder: DockerContainer | None = None
        self.temp_dir: Path | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def execute(self) -> RunOutcome:
        LIVE_RUNS.begin(self.run_id)
        succeeded = False
        try:
            outcome = self._execute()
            succeeded = True
            return outcome
        finally:
            self._cleanup(report_failure=succeeded)
            LIVE_RUNS.end(self.run_id)

    def _execute(self) -> RunOutcome:
        plan = self.plan
        images = self._images()
        main_image = images[plan.main.image]
        probe_mounts = self._write_probe_dir(main_image)
        self._create_volumes()
        if self._needs_holder():
            self.holder = self._start_holder()
            if self.volumes:
                self._stage_volumes(self.holder, STAGE_DIR, self._staged_by_index())
        for init in plan.init_containers:
            self._run_init(init)
        sidecars: dict[str, DockerContainer] = {}
        for sidecar in plan.sidecars:
            sidecars[sidecar.name] = self._create(sidecar, role="sidecar")
            self._start(sidecars[sidecar.name])
        main_targets = self._main_staging_targets() if self.holder is None else None
        if self.holder is None and main_targets is None and self.volumes:
            self._stage_through_stager()  # sub_path binds need their source before main is created
        command = (plan.main.command or [plan.probe_as]) if plan.probe_as else PROBE_COMMAND
        main = self._create(plan.main, role="main", command=command, extra_mounts=probe_mounts)
        if main_targets:
            self._stage_volumes(main, "/", [(main_targets[volume.name], volume) for volume in self.volumes])
        self._await_sidecars_settled(list(sidecars.values()))
        outcome = self._run_main(main, main_image)
        outcome.sidecar_logs = {name: self._logs_tail(container) for name, container in sidecars.items()}
        return outcome

    def _cleanup(self, report_failure: bool) -> None:
        problem = None
        try:
            remove_run_resources(self.client, self.run_id)
        except DockerException as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        if problem and report_failure:
            raise InfrastructureError(
                f"could not remove the containers and volumes of run {self.run_id} ({problem})",
                f"remove them with `docker rm -f $(docker ps -aq --filter label={LABEL_RUN}={self.run_id})` "
                f"and `docker volume rm $(docker volume ls -q --filter label={LABEL_RUN}={self.run_id})`",
            )

    # -- preparation -------------------------------------------------------------------------------

    def _images(self) -> dict[str, Image]:
        references = [c.image for c in (*self.plan.init_containers, *self.plan.sidecars, self.plan.main)]
        images: dict[str, Image] = {}
        for reference in dict.fromkeys(references):
            try:
                images[reference] = self.client.images.get(reference)
            except ImageNotFound:
                raise InfrastructureError(
                    f"image {reference} is not on the Docker daemon (target {self.plan.target})",
                    BUILD_HINT.format(image=reference),
                ) from None
        return images

    def _write_probe_dir(self, main_image: Image) -> list[Mount]:
        """The probe, its config and (for probe_as) the shim, in a temp dir bind-mounted read-only."""
        self.temp_dir = Path(tempfile.mkdtemp(prefix=f"parity-{self.run_id[:12]}-"))
        LIVE_RUNS.add_temp_dir(self.run_id, self.temp_dir)
        # Readable by whatever user the image runs as; it holds the run's hash key only for this run.
        self.temp_dir.chmod(0o755)
        mounts = [Mount(PROBE_DIR, str(self.temp_dir), type="bind", read_only=True)]
        excluded = [PROBE_DIR]
        if self.plan.probe_as:
            shim_path = f"{self._first_path_dir(main_image)}/{self.plan.probe_as}"
            shim = self.temp_dir / self.plan.probe_as
            shim.write_text(probe_shim(PROBE_COMMAND), encoding="utf-8")
            shim.chmod(0o755)
            mounts.append(Mount(shim_path, str(shim), type="bind", read_only=True))
            excluded.append(shim_path)
        for name, content in probe_files(self.probe, excluded).items():
            (self.temp_dir / name).write_bytes(content)
            (self.temp_dir / name).chmod(0o644)
        return mounts

    def _first_path_dir(self, image: Image) -> str:
        """First absolute directory of the PATH the main container's process starts with."""
        path = dict(self.plan.main.env).get("PATH")
        if path is None:
            image_env = dict(item.partition("=")[::2] for item in image.attrs["Config"].get("Env") or [])
            path = image_env.get("PATH", DEFAULT_PATH)
        for directory in path.split(":"):
            if directory.startswith("/"):
                return directory.rstrip("/") or "/"
        return DEFAULT_PATH.split(":")[0]

    def _volumes_with_sub_path_dirs(self) -> list[Volume]:
        """The plan's volumes plus the directories kubelet creates for sub_paths that do not exist yet."""
        missing: dict[str, list[str]] = {}
        for container in self._containers():
            for mount in container.mounts:
                volume = self._plan_volume(container, mount.volume)
                if not mount.sub_path:
                    continue
                try:
                    resolved = resolve_sub_path(volume, mount.sub_path)
                except VolumePathError as exc:
                    raise self._plan_error(
                        f"{container.name}.mounts[{mount.target}].sub_path", str(exc)
                    ) from None
                if not resolved.exists:
                    missing.setdefault(volume.name, []).append(resolved.path)
        return [with_sub_path_dirs(volume, missing.get(volume.name, ())) for volume in self.plan.volumes]

    def _create_volumes(self) -> None:
        def create(indexed: tuple[int, Volume]):
            index, volume = indexed
            options: dict[str, Any] = {}
            if volume.medium == "memory":
                size = f"size={volume.size_bytes}" if volume.size_bytes else ""
                options = {"type": "tmpfs", "device": "tmpfs", "o": size}
            return self._docker(
                f"create volume {volume.name}",
                self.client.volumes.create,
                name=f"parity-{self.run_id[:12]}-{index}",
                driver="local",
                driver_opts=options,
                labels={**self.labels, LABEL_ROLE: "volume", "org.parity.volume": volume.name},
            )

        for volume, created in zip(
            self.volumes, concurrently(create, list(enumerate(self.volumes))), strict=True
        ):
            self.volume_names[volume.name] = created.name
            self.volume_mountpoints[volume.name] = created.attrs["Mountpoint"]

    def _needs_holder(self) -> bool:
        plan = self.plan
        return bool(plan.init_containers or plan.sidecars or any(v.medium == "memory" for v in plan.volumes))

    def _stage_mounts(self) -> list[Mount]:
        return [
            Mount(f"{STAGE_DIR}/{index}", self.volume_names[volume.name], type="volume", no_copy=True)
            for index, volume in enumerate(self.volumes)
        ]

    def _start_holder(self) -> DockerContainer:
        plan = self.plan
        holder = self._create_raw(
            role=HOLDER_ROLE,
            name="holder",
            image=plan.main.image,
            entrypoint=HOLDER_COMMAND,
            command=[],
            hostname=plan.hostname,
            domainname=plan.domainname,
            network_mode=checked_network_mode(plan.network),
            ipc_mode="shareable",
            shm_size=plan.shm_size_bytes,
            mounts=self._stage_mounts(),
        )
        self._start(holder)
        return holder

    def _staged_by_index(self) -> list[tuple[str, Volume]]:
        return [(str(index), volume) for index, volume in enumerate(self.volumes)]

    def _main_staging_targets(self) -> dict[str, str] | None:
        """Where the created, not yet started, main container mounts each volume, when it can receive the
        volumes' archive itself (a SageMaker job): every volume mounted read-write as a whole, no sub_path
        (its bind source must exist before the container), a writable root (the daemon refuses to extract
        into read-only mounts). None otherwise."""
        main = self.plan.main
        if not self.volumes or main.read_only_rootfs or any(m.sub_path for m in main.mounts):
            return None
        targets = {m.volume: m.target.strip("/") for m in main.mounts if not m.read_only}
        return targets if all(volume.name in targets for volume in self.volumes) else None

    def _stage_through_stager(self) -> None:
        """Populate the volumes through a container that is created, receives the archive, and is removed."""
        stager = self._create_raw(
            role="stager",
            name="stager",
            image=self.plan.main.image,
            entrypoint=["true"],
            command=[],
            network_mode="none",
            mounts=self._stage_mounts(),
        )
        self._stage_volumes(stager, STAGE_DIR, self._staged_by_index())
        self._docker("remove the staging container", stager.remove, force=True)

    def _stage_volumes(
        self, container: DockerContainer, directory: str, volumes: list[tuple[str, Volume]]
    ) -> None:
        """Write the volumes' content as one archive extracted in `directory` of `container`, where each
        volume is mounted at its dirname (the archive's directory entry for it sets the volume root)."""
        with tempfile.TemporaryFile() as archive:
            try:
                write_volumes_archive(archive, volumes)
            except VolumePathError as exc:
                raise self._plan_error("volumes", str(exc)) from None
            archive.seek(0)
            self._docker("populate the volumes", container.put_archive, directory, archive)

    # -- containers --------------------------------------------------------------------------------

    def _containers(self) -> list[Container]:
        return [*self.plan.init_containers, *self.plan.sidecars, self.plan.main]

    def _sandbox_options(self) -> dict[str, Any]:
        """Namespaces: the holder's when there is one, otherwise the pod-level settings themselves."""
        if self.holder is not None:
            joined = f"container:{self.holder.id}"
            return {"network_mode": joined, "ipc_mode": joined}
        return {
            "network_mode": self.plan.network,
            "hostname": self.plan.hostname,
            "domainname": self.plan.domainname,
            "shm_size": self.plan.shm_size_bytes,
        }

    def _mounts(self, container: Container) -> list[Mount]:
        mounts = []
        for mount in container.mounts:
            volume = next(v for v in self.volumes if v.name == mount.volume)
            if mount.sub_path:
                relative = resolve_sub_path(volume, mount.sub_path).path
                source = f"{self.volume_mountpoints[volume.name]}/{relative}"
                mounts.append(Mount(mount.target, source, type="bind", read_only=mount.read_only))
            else:
                mounts.append(
                    Mount(
                        mount.target,
                        self.volume_names[volume.name],
                        type="volume",
                        read_only=mount.read_only,
                        no_copy=True,
                    )
                )
        return mounts

    def _create(
        self,
        container: Container,
        role: str,
        command: list[str] | None = None,
        extra_mounts: list[Mount] = (),
    ) -> DockerContainer:
        """Create one plan container with every option the plan gives it, joined to the sandbox."""
        security = []
        if container.no_new_privileges:
            security.append("no-new-privileges")
        if container.seccomp_unconfined:
            security.append("seccomp=unconfined")
        options: dict[str, Any] = {
            "environment": [f"{name}={value}" for name, value in container.env],
            "working_dir": container.working_dir,
            "user": container.user,
            "group_add": [str(gid) for gid in container.group_add] or None,
            "mounts": [*self._mounts(container), *extra_mounts],
            "read_only": container.read_only_rootfs,
            "cap_add": container.cap_add or None,
            "cap_drop": container.cap_drop or None,
            "security_opt": security or None,
            "privileged": container.privileged,
            "cpu_shares": container.cpu_shares,
            **self._sandbox_options(),
        }
        if container.cpu_limit_millicores is not None:
            options["cpu_quota"] = container.cpu_limit_millicores * CPU_PERIOD_US // 1000
            options["cpu_period"] = CPU_PERIOD_US
        if container.memory_limit_bytes is not None:
            # kubelet gives containers no swap: the swap limit equals the memory limit.
            options["mem_limit"] = container.memory_limit_bytes
            options["memswap_limit"] = container.memory_limit_bytes
        if container.entrypoint is not None:
            options["entrypoint"] = container.entrypoint
        final_command = command if command is not None else container.command
        if final_command is not None:
            options["command"] = final_command
        return self._create_raw(role=role, name=container.name, image=container.image, **options)

    def _create_raw(self, role: str, name: str, **options: Any) -> DockerContainer:
        options["network_mode"] = checked_network_mode(options["network_mode"])
        created = self._docker(
            f"create the {role} container {name}",
            self.client.containers.create,
            name=f"parity-{self.plan.target}-{name}-{self.run_id[:12]}"[:200],
            labels={**self.labels, LABEL_ROLE: role, "org.parity.container": name},
            **options,
        )
        self._check_not_cancelled()
        return created

    def _start(self, container: DockerContainer) -> None:
        self._docker(f"start container {container.name}", container.start)

    def _run_init(self, init: Container) -> None:
        container = self._create(init, role="init")
        self._start(container)
        exit_code = self._wait(container, what=f"init container {init.name}")
        if exit_code != 0:
            raise InfrastructureError(
                f"init container {init.name} exited with code {exit_code} (target {self.plan.target})",
                "the main container never started; fix the init container (its last log lines follow)",
                self._logs_tail(container),
            )

    def _await_sidecars_settled(self, sidecars: list[DockerContainer]) -> None:
        """Wait until every sidecar process is asleep (waiting for work) on two looks in a row, at most
        SIDECAR_SETTLE_SECONDS; a sidecar that has exited counts as settled.

        kubelet starts a pod's containers one after another without waiting for any to be ready. A real
        workload sends its first metric or reads its first injected file seconds after it starts (framework
        imports); the probe does so in its first milliseconds, while a CPU-limited sidecar is still
        starting. Starting the main container once the sidecars have settled shows the probe what a real
        workload finds when it gets going. Looks through `docker top` (ps on the daemon's host); when the
        daemon cannot say, the main container starts at once, as kubelet would start it.
        """
        deadline = min(self.deadline, time.monotonic() + SIDECAR_SETTLE_SECONDS)
        settled_looks = 0
        while sidecars and settled_looks < 2 and time.monotonic() < deadline:
            states: list[str] = []
            for container in sidecars:
                try:
                    top = self.client.api.top(container.id, ps_args="-o pid,stat")
                except NotFound:
                    return
                except APIError as exc:
                    if exc.status_code == 409:  # not running any more: nothing left to wait for
                        continue
                    return
                if "STAT" not in (top.get("Titles") or []):
                    return  # a ps without process states
                column = top["Titles"].index("STAT")
                states += [row[column] for row in top.get("Processes") or []]
            settled_looks = settled_looks + 1 if not any(state[:1] in ("R", "D") for state in states) else 0
            time.sleep(SIDECAR_POLL_SECONDS)

    def _run_main(self, container: DockerContainer, main_image: Image) -> RunOutcome:
        plan = self.plan
        self._start(container)
        exit_code = self._wait(container, what="probe")
        output = self._docker("read the probe's output", container.logs, stdout=True, stderr=False)
        tail = self._logs_tail(container)
        reason = self._failure_reason(container) if exit_code != 0 else None
        source = f"container {plan.main.name} of target {plan.target}"
        try:
            snapshot = extract_snapshot(output, source)
        except InfrastructureError as exc:
            because = f"; failure reason: {reason}" if reason else ""
            raise InfrastructureError(
                f"{source} exited with code {exit_code} without a complete snapshot ({exc.problem}){because}",
                "the entrypoint must end by exec-ing its arguments (parity replaces the command with the "
                "probe); its last log lines follow",
                tail,
            ) from None
        return RunOutcome(
            snapshot=snapshot,
            exit_code=exit_code,
            image_id=main_image.id,
            logs_tail=tail,
            failure_reason=reason,
        )

    def _wait(self, container: DockerContainer, what: str) -> int:
        remaining = self.deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise requests.exceptions.ReadTimeout()
            result = container.wait(timeout=remaining)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            self._check_not_cancelled()
            if time.monotonic() < self.deadline:
                raise InfrastructureError(
                    f"lost the connection to the Docker daemon while waiting for {what} "
                    f"(target {self.plan.target})",
                    "check that dockerd is still running (`docker info`)",
                ) from None
            self._docker(f"stop container {container.name}", container.kill)
            raise InfrastructureError(
                f"{what} did not finish within {self.timeout:g}s (target {self.plan.target})",
                f"raise targets.{self.plan.target}.timeout_seconds in parity.yaml, or look for what the "
                "entrypoint waits on (its last log lines follow)",
                self._logs_tail(container),
            ) from None
        except NotFound:
            self._check_not_cancelled()
            raise InfrastructureError(
                f"the container of {what} was removed while parity waited for it (target {self.plan.target})",
                "another process removed it; run again",
            ) from None
        return int(result.get("StatusCode", -1))

    # -- results -----------------------------------------------------------------------------------

    def _logs_tail(self, container: DockerContainer) -> str:
        try:
            return container.logs(tail=LOG_TAIL_LINES).decode("utf-8", "replace")
        except DockerException:
            return ""

    def _failure_reason(self, container: DockerContainer) -> str | None:
        """The first failure_message_limit bytes of the plan's failure file, read from the stopped
        container."""
        if not self.plan.failure_message_path:
            return None
        try:
            stream, _ = container.get_archive(self.plan.failure_message_path)
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
                member = next((m for m in archive.getmembers() if m.isfile()), None)
                if member is None:
                    return None
                content = archive.extractfile(member).read(self.plan.failure_message_limit)
        except (NotFound, APIError, tarfile.TarError):
            return None
        return content.decode("utf-8", "replace").strip() or None

    # -- errors ------------------------------------------------------------------------------------

    def _check_not_cancelled(self) -> None:
        if LIVE_RUNS.is_cancelled(self.run_id):
            raise InfrastructureError(
                f"run of target {self.plan.target} was cancelled",
                "the harness is shutting down (interrupted)",
            )

    def _docker(self, action: str, call, *args, **kwargs):
        """Call the docker SDK; a refusal becomes an InfrastructureError naming the action and the target."""
        try:
            return call(*args, **kwargs)
        except ImageNotFound as exc:
            raise InfrastructureError(
                f"cannot {action} (target {self.plan.target}): {exc.explanation or exc}",
                BUILD_HINT.format(image=kwargs.get("image", "the image")),
            ) from None
        except APIError as exc:
            self._check_not_cancelled()
            raise InfrastructureError(
                f"Docker refused to {action} (target {self.plan.target}): {exc.explanation or exc}",
                "check the launch plan's options against what this daemon supports",
            ) from None
        except (DockerException, requests.exceptions.ConnectionError) as exc:
            self._check_not_cancelled()
            raise InfrastructureError(
                f"cannot {action} (target {self.plan.target}): {exc}",
                "check that dockerd is still running (`docker info`)",
            ) from None

    def _plan_volume(self, container: Container, name: str) -> Volume:
        try:
            return self.plan.volume(name)
        except KeyError:
            raise self._plan_error(
                f"{container.name}.mounts", f"no volume named {name!r} in the plan"
            ) from None

    def _plan_error(self, field: str, problem: str) -> BadInput:
        return BadInput(f"launch plan of target {self.plan.target}", field, problem)
