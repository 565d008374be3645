"""`parity probe`: the snapshot of the environment parity runs in, without Docker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conformance import local_probe
from conformance.cli import cli
from conformance.config import ProbeScope


def original_names() -> set[str]:
    """Variable names this test process was started with (os.environ may have gained some since)."""
    block = Path("/proc/self/environ").read_bytes()
    return {item.partition(b"=")[0].decode("utf-8", "replace") for item in block.split(b"\0") if item}


def test_probe_prints_and_writes_the_same_canonical_snapshot(tmp_path: Path):
    out = tmp_path / "snap.json"
    result = CliRunner().invoke(cli, ["probe", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == out.read_text(encoding="utf-8")
    snapshot = json.loads(result.stdout)
    assert snapshot["probe"]["label"] == "local" and snapshot["probe"]["hash"]["comparable"] is False
    assert snapshot["metrics"]["test_metric"]["sent"] is False


def test_the_probe_sees_the_environment_parity_was_started_with(monkeypatch):
    monkeypatch.setenv("PARITY_ADDED_AFTER_START", "only-in-os-environ")
    snapshot = local_probe.run_local_probe(ProbeScope())
    reported = set(snapshot["env"]["vars"]) | set(snapshot["env"]["redacted"])
    assert reported == original_names()
    assert "PARITY_ADDED_AFTER_START" not in reported


def test_scope_from_parity_yaml_and_the_private_config_dir_is_left_out(tmp_path: Path):
    declared = tmp_path / "declared"
    declared.mkdir()
    (declared / "settings.ini").write_text("x=1\n")
    config = tmp_path / "parity.yaml"
    config.write_text(f"probe:\n  paths: ['{declared}']\n  max_depth: 1\n")
    result = CliRunner().invoke(cli, ["probe", "-c", str(config)])
    assert result.exit_code == 0, result.output
    snapshot = json.loads(result.stdout)
    assert snapshot["filesystem"]["paths"][str(declared / "settings.ini")]["size"] == 4
    private = [path for path in snapshot["excluded"]["paths"] if Path(path).name.startswith("parity-probe-")]
    assert len(private) == 1
    assert not any(path.startswith(private[0]) for path in snapshot["filesystem"]["paths"])


def test_bad_parity_yaml_is_exit_2_in_one_line(tmp_path: Path):
    config = tmp_path / "parity.yaml"
    config.write_text("probe:\n  max_depth: deep\n")
    result = CliRunner().invoke(cli, ["probe", "-c", str(config)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        (
            f"parity: {config}: probe.max_depth: "
            "Input should be a valid integer, unable to parse string as an integer"
        )
    ]


def test_a_probe_that_crashes_is_exit_3_with_its_last_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    broken = tmp_path / "parity_probe.py"
    broken.write_text(
        "import sys\n"
        "sys.stderr.write('Traceback (most recent call last):\\nRuntimeError: boom\\n')\n"
        "sys.exit(1)\n"
    )
    monkeypatch.setattr(local_probe, "PROBE_PATH", broken)
    result = CliRunner().invoke(cli, ["probe"])
    assert result.exit_code == 3
    assert "no snapshot in the output of the local probe" in result.stderr
    assert result.stderr.rstrip().endswith("RuntimeError: boom")


def test_test_metric_only_when_parity_yaml_asks_for_it():
    assert local_probe.local_probe_config(ProbeScope(), "/tmp/x")["send_test_metric"] is False
    assert (
        local_probe.local_probe_config(ProbeScope(send_test_metric=True), "/tmp/x")["send_test_metric"]
        is True
    )
    assert local_probe.local_probe_config(ProbeScope(), "/tmp/x")["exclude_paths"] == ["/tmp/x"]
