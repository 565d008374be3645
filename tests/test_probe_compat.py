"""The probe must run on Python 3.8+: vermin checks it statically everywhere, and it runs on 3.8 here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conformance.snapshot import PROBE_PATH, extract_snapshot


def test_vermin_finds_nothing_newer_than_python_3_8():
    # --eval-annotations: the probe has no `from __future__ import annotations`, annotations run at import.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, vermin; sys.exit(vermin.main())",
            "--no-tips",
            "--eval-annotations",
            "-t=3.8-",
            "--violations",
            str(PROBE_PATH),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def python38() -> tuple[str, dict[str, str]] | None:
    """A working python3.8 on PATH; a pyenv shim needs the version selected for the call."""
    found = shutil.which("python3.8")
    if found is None:
        return None
    for env in (dict(os.environ), {**os.environ, "PYENV_VERSION": "3.8"}):
        check = subprocess.run(
            [found, "-c", "import sys; assert sys.version_info[:2] == (3, 8)"],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if check.returncode == 0:
            return found, env
    return None


def test_the_probe_runs_on_python_3_8_and_prints_a_valid_snapshot():
    interpreter = python38()
    if interpreter is None:
        pytest.skip("no working python3.8 on PATH (vermin still checks the syntax)")
    executable, env = interpreter
    result = subprocess.run(
        [executable, str(PROBE_PATH)], env=env, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0 and result.stderr == b""
    snapshot = extract_snapshot(result.stdout, "python3.8 probe")
    assert snapshot["runtime"]["python"]["version"].startswith("3.8.")
    assert snapshot["errors"] == []
