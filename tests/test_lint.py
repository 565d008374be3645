"""The code stays lint-clean and formatted (rules in pyproject.toml), so CI catches drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINTED = ["conformance", "probes", "tests", "benchmarks", "examples"]
# The probe must stay Python 3.8 syntax, which the formatter (targeting 3.10) is not told about.
FORMATTED = ["conformance", "tests", "benchmarks", "examples"]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_finds_nothing():
    result = _ruff("check", "--no-cache", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_formatted():
    result = _ruff("format", "--check", "--no-cache", *FORMATTED)
    assert result.returncode == 0, result.stdout + result.stderr
