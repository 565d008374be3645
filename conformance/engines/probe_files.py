"""What every engine puts into a target for the probe: its file, its config, and the command that runs it.

The config holds the run's secret-hashing key, so engines place it where only the container can read it
(a read-only mount, a Secret, a staged S3 object deleted after the run), never on a command line.
"""

from __future__ import annotations

import json

from conformance.runner import ProbeRequest
from conformance.snapshot import PROBE_PATH

PROBE_FILE = "parity_probe.py"
CONFIG_FILE = "config.json"
# Where the Docker and Kubernetes engines mount the probe's directory (left out of what the probe reports).
MOUNTED_PROBE_DIR = "/.parity"


def probe_command(directory: str) -> list[str]:
    """The probe's invocation from `directory`, with python3 from the image's PATH."""
    return ["python3", f"{directory}/{PROBE_FILE}", "--config", f"{directory}/{CONFIG_FILE}"]


def probe_files(probe: ProbeRequest, exclude_paths: list[str], **config: object) -> dict[str, bytes]:
    """The probe and its JSON config, by file name; `exclude_paths` and any extra `config` keys are added."""
    document = {**probe.probe_config(), "exclude_paths": exclude_paths, **config}
    return {PROBE_FILE: PROBE_PATH.read_bytes(), CONFIG_FILE: json.dumps(document).encode()}
