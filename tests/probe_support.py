"""Helpers shared by the probe tests: load the stdlib-only probe file as a module, build its run context."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import sys
from types import ModuleType

from conformance.snapshot import PROBE_PATH

# The collectors' sections of a snapshot, as docs/SNAPSHOT.md lists them.
COLLECTOR_SECTIONS = (
    "env",
    "identity",
    "credentials",
    "metrics",
    "hyperparameters",
    "spark",
    "filesystem",
    "network",
    "runtime",
    "resources",
    "process",
    "context",
)


def load_probe_module() -> ModuleType:
    """probes/parity_probe.py as a module, without leaving its `dont_write_bytecode` switch on in pytest."""
    spec = importlib.util.spec_from_file_location("parity_probe_under_test", PROBE_PATH)
    module = importlib.util.module_from_spec(spec)
    previous = sys.dont_write_bytecode
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = previous
    return module


def expected_hmac(key: bytes, value: bytes | str) -> str:
    data = value.encode() if isinstance(value, str) else value
    return "hmac-sha256:" + hmac.new(key, data, hashlib.sha256).hexdigest()
