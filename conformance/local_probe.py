"""`parity probe`: snapshot the environment parity itself runs in, with the probe the containers run.

The probe runs as a fresh subprocess rather than being imported: in-process it would report parity's own
argv, threads, signal handlers and imported state, and a process's `/proc/self/environ` is fixed at exec.
The child gets the environment *this* process was started with, read byte for byte from
`/proc/self/environ` (CPython may have added LC_CTYPE to os.environ, PEP 538), and runs under the same
interpreter as parity (`sys.executable`: present and recent enough by construction). Its config lives in a
private temporary directory that the probe is told to leave out of what it reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from conformance.atomic import write_atomically
from conformance.config import ProbeScope, load_config
from conformance.errors import BadInput, InfrastructureError
from conformance.snapshot import PROBE_PATH, dumps_snapshot, extract_snapshot

LOCAL_LABEL = "local"
# Beyond the probe's own deadline: interpreter start-up and printing a large snapshot.
TIMEOUT_MARGIN_SECONDS = 30.0


def probe_command(out: Path | None, config_path: Path | None) -> int:
    """Run the probe here, print its snapshot as canonical JSON and write it to `out` when given."""
    scope = load_config(config_path).config.probe if config_path is not None else ProbeScope()
    text = dumps_snapshot(run_local_probe(scope))
    if out is not None:
        try:
            write_atomically(out, text)
        except OSError as exc:
            raise BadInput(out, None, f"cannot write the snapshot: {exc.strerror or exc}") from None
    sys.stdout.write(text)
    return 0


def run_local_probe(scope: ProbeScope) -> dict[str, Any]:
    """The validated snapshot of this environment under `scope` (a `parity.yaml` probe section)."""
    with tempfile.TemporaryDirectory(prefix="parity-probe-") as private_dir:
        config_file = Path(private_dir) / "config.json"
        config_file.write_text(json.dumps(local_probe_config(scope, private_dir)), encoding="utf-8")
        config_file.chmod(0o600)
        command = [sys.executable, str(PROBE_PATH), "--config", str(config_file)]
        timeout = scope.deadline_seconds + TIMEOUT_MARGIN_SECONDS
        try:
            result = subprocess.run(
                command, env=original_environment(), capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise InfrastructureError(
                f"the probe did not finish within {timeout:.0f} s",
                "something in this environment blocks it (a hung NFS mount or name resolution); "
                "lower probe.deadline_seconds or narrow probe.paths in parity.yaml",
            ) from None
        except OSError as exc:
            raise InfrastructureError(
                f"cannot start the probe with {sys.executable} ({exc.strerror or exc})",
                "reinstall parity in a working Python environment",
            ) from None
    # stderr after stdout: the frame is found in stdout, and a crash leaves its traceback as the tail shown.
    return extract_snapshot(result.stdout + b"\n" + result.stderr, "the local probe")


def local_probe_config(scope: ProbeScope, private_dir: str) -> dict[str, Any]:
    """The probe's config: the scope, its private directory excluded, and no key (hashes not comparable).

    The UDP test metric goes out only when parity.yaml asks for it explicitly: on a workstation nobody
    confirms its arrival, and a real local StatsD agent would count it.
    """
    config = scope.model_dump()
    config["send_test_metric"] = scope.send_test_metric and "send_test_metric" in scope.model_fields_set
    config.update(label=LOCAL_LABEL, exclude_paths=[private_dir])
    return config


def original_environment() -> dict[bytes, bytes]:
    """The environment this process was started with, bytes-exact; os.environb where /proc is missing."""
    try:
        block = Path("/proc/self/environ").read_bytes()
    except OSError:
        return dict(os.environb)
    environment: dict[bytes, bytes] = {}
    for item in block.split(b"\0"):
        name, separator, value = item.partition(b"=")
        if separator and name and name not in environment:
            environment[name] = value
    return environment
