"""Every Docker resource a run has made and not yet removed, and the one place that removes them.

A run registers itself before it creates anything, and every container and volume it creates carries the
label `org.parity.run=<run id>`. Removal lists by that label, so it also catches a resource whose create
call was interrupted half-way. Runs may execute in worker threads (`parity check` runs targets
concurrently) where KeyboardInterrupt never arrives, and a worker blocked on its container would keep
the interpreter from exiting: the main thread's SIGINT/SIGTERM handlers (installed once, chaining to the
previous handlers) and an atexit hook reap every live run of the process first, which also releases the
workers — their containers are gone, so they return, see their run cancelled, and stop.

Runs of engines whose resources are not Docker's (a SageMaker job, its staged S3 objects) register a
cleanup callback instead (`LiveRuns.begin_with_cleanup`); reaping calls it, and Docker is not touched
for them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import docker

T = TypeVar("T")
R = TypeVar("R")
LABEL_RUN = "org.parity.run"
LABEL_TARGET = "org.parity.target"
LABEL_ROLE = "org.parity.role"
# Which process made a resource: "<host>:<pid>:<process start time>" (the start time tells a live process
# from a later one that reused its pid).
LABEL_OWNER = "org.parity.owner"
HOLDER_ROLE = "holder"


def _process_start_ticks(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot; None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is parenthesised and may contain spaces: split after its closing paren.
    return stat.rsplit(")", 1)[1].split()[19]


def owner_id() -> str:
    """This process, as the LABEL_OWNER value of everything it creates."""
    return f"{socket.gethostname()}:{os.getpid()}:{_process_start_ticks(os.getpid())}"


def _owner_is_gone(owner: str) -> bool:
    """True for a parity process on this host that no longer runs (killed with SIGKILL, crashed)."""
    host, _, rest = owner.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's parity on a shared daemon: not ours to judge
    return _process_start_ticks(int(pid)) != start


def sweep_orphans(client: docker.DockerClient) -> list[str]:
    """Remove what runs of dead parity processes on this host left behind; returns their run ids.

    Interrupts, exceptions and timeouts are cleaned up by the run itself; only a SIGKILL (or a crash of
    the interpreter) can leave resources, and the next run on the same host removes them here.
    """
    owned = {"label": [LABEL_OWNER, LABEL_RUN]}
    labels = [c.get("Labels") or {} for c in client.api.containers(all=True, filters=owned)]
    labels += [v.get("Labels") or {} for v in client.api.volumes(filters=owned).get("Volumes") or []]
    orphaned = sorted({label[LABEL_RUN] for label in labels if _owner_is_gone(label[LABEL_OWNER])})
    for run_id in orphaned:
        remove_run_resources(client, run_id)
    return orphaned


def run_filter(run_id: str) -> dict[str, str]:
    return {"label": f"{LABEL_RUN}={run_id}"}


def remove_run_resources(client: docker.DockerClient, run_id: str) -> None:
    """Force-remove every container, then every volume, labelled with `run_id`.

    The holder goes last: the other containers share its namespaces. Raises DockerException when the
    daemon cannot be asked; anything already gone is fine.
    """
    from docker.errors import NotFound

    def remove_container(summary: dict) -> None:
        try:
            client.api.remove_container(summary["Id"], force=True)
        except NotFound:
            pass

    def remove_volume(volume: dict) -> None:
        try:
            client.api.remove_volume(volume["Name"], force=True)
        except NotFound:
            pass

    containers = client.api.containers(all=True, filters=run_filter(run_id))
    holders = [c for c in containers if (c.get("Labels") or {}).get(LABEL_ROLE) == HOLDER_ROLE]
    concurrently(remove_container, [c for c in containers if c not in holders])
    concurrently(remove_container, holders)
    concurrently(remove_volume, client.api.volumes(filters=run_filter(run_id)).get("Volumes") or [])


def concurrently(function: Callable[[T], R], items: list[T]) -> list[R]:
    """`function` over `items` on a few threads (Docker API calls are I/O-bound); the first error is
    raised."""
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(len(items), 8)) as pool:
        return list(pool.map(function, items))


class LiveRuns:
    """Thread-safe registry of the runs in progress in this process: Docker runs with their host temp
    directories, and runs of other engines with their cleanup callbacks."""

    def __init__(self) -> None:
        # Re-entrant: the signal handler may run on the main thread while it holds the lock.
        self._lock = threading.RLock()
        self._temp_dirs: dict[str, list[Path]] = {}
        self._cleanups: dict[str, Callable[[], None]] = {}
        self._cancelled: set[str] = set()

    def begin(self, run_id: str) -> None:
        """Register a Docker run: reaping removes its containers and volumes by label, and its temp dirs."""
        with self._lock:
            self._temp_dirs[run_id] = []

    def begin_with_cleanup(self, run_id: str, cleanup: Callable[[], None]) -> None:
        """Register a run whose resources only `cleanup` can remove: reaping calls it, not Docker.

        `cleanup` may run on the main thread inside a signal handler while the run's own thread is in the
        middle of a call, or after the run's own cleanup has started: it must be idempotent and use
        connections of its own. An exception from it is swallowed (reaping must reach every run); the run's
        own cleanup, which runs again as the run unwinds, reports what is left.
        """
        with self._lock:
            self._cleanups[run_id] = cleanup

    def add_temp_dir(self, run_id: str, path: Path) -> None:
        with self._lock:
            self._temp_dirs.setdefault(run_id, []).append(path)

    def end(self, run_id: str) -> None:
        with self._lock:
            self._temp_dirs.pop(run_id, None)
            self._cleanups.pop(run_id, None)
            self._cancelled.discard(run_id)

    def is_cancelled(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._cancelled

    def reap(self) -> None:
        """Remove everything every live run has made; those runs are marked cancelled."""
        with self._lock:
            runs = {run_id: list(dirs) for run_id, dirs in self._temp_dirs.items()}
            cleanups = list(self._cleanups.values())
            self._cancelled.update(runs)
            self._cancelled.update(self._cleanups)
        for cleanup in cleanups:
            try:
                cleanup()
            except Exception:  # noqa: BLE001 - see begin_with_cleanup: the run's own cleanup reports it
                pass
        if not runs:
            return
        import docker
        from docker.errors import DockerException

        try:
            # A client of its own: the interrupted thread may be in the middle of a request on its client.
            client = docker.from_env(timeout=60)
        except DockerException:
            client = None
        for run_id, dirs in runs.items():
            if client is not None:
                try:
                    remove_run_resources(client, run_id)
                except DockerException:
                    pass  # the daemon is gone, and its containers with it
            for path in dirs:
                shutil.rmtree(path, ignore_errors=True)
        if client is not None:
            client.close()


LIVE_RUNS = LiveRuns()
_install_lock = threading.Lock()
_installed = False


def install_interrupt_handlers() -> None:
    """Reap live runs on SIGINT, SIGTERM and interpreter exit, then do what the previous handler did.

    Only the main thread can install signal handlers; a call from another thread does nothing. The
    engine calls this whenever it is constructed or run, and the `parity` command calls it on its main
    thread before any target runs (imports nothing heavy: docker is imported only to reap).
    """
    global _installed
    if threading.current_thread() is not threading.main_thread():
        return
    with _install_lock:
        if _installed:
            return
        _installed = True
    atexit.register(LIVE_RUNS.reap)
    _chain(signal.SIGINT, KeyboardInterrupt)
    _chain(signal.SIGTERM, lambda: SystemExit(128 + signal.SIGTERM))


def _chain(signum: signal.Signals, default_exception) -> None:
    previous = signal.getsignal(signum)
    if previous in (signal.SIG_IGN, None):
        return

    def handler(number, frame):
        LIVE_RUNS.reap()
        if callable(previous):
            previous(number, frame)
        else:
            raise default_exception()

    signal.signal(signum, handler)
