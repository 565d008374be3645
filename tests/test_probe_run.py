"""The probe as a process on this machine: framing, bounds, deadline, self-footprint, and the exact env."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.snapshot import FRAME_BEGIN, FRAME_END, PROBE_PATH, SCHEMA, extract_snapshot
from tests.probe_support import COLLECTOR_SECTIONS, expected_hmac, load_probe_module

KEY = bytes(range(32))


def run_probe(
    tmp_path: Path, config: dict | None = None, *extra: str, env: dict | None = None, timeout: float = 60
):
    """Run a private copy of the probe (so nothing it might write lands in the repository)."""
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir(exist_ok=True)
    probe_file = probe_dir / "parity_probe.py"
    shutil.copyfile(PROBE_PATH, probe_file)
    arguments = [sys.executable, str(probe_file)]
    if config is not None:
        config_file = probe_dir / "config.json"
        config_file.write_text(json.dumps(config))
        arguments += ["--config", str(config_file)]
    return subprocess.run(
        arguments + list(extra),
        capture_output=True,
        timeout=timeout,
        cwd=tmp_path,
        env=os.environ.copy() if env is None else env,
        check=False,
    )


def test_constants_match_the_harness():
    probe = load_probe_module()
    assert (probe.SCHEMA, probe.FRAME_BEGIN, probe.FRAME_END) == (SCHEMA, FRAME_BEGIN, FRAME_END)


def test_prints_a_valid_framed_snapshot_writes_only_its_out_file_and_leaves_itself_out(tmp_path):
    result = run_probe(
        tmp_path,
        {"hash_key": KEY.hex(), "label": "unit", "paths": [str(tmp_path)]},
        "--out",
        str(tmp_path / "out.json"),
    )
    assert result.returncode == 0 and result.stderr == b""
    lines = result.stdout.decode().splitlines()
    assert lines[0] == FRAME_BEGIN and lines[-1] == FRAME_END
    snapshot = extract_snapshot(result.stdout, "test")
    assert json.loads((tmp_path / "out.json").read_text()) == snapshot
    assert snapshot["errors"] == []
    assert snapshot["probe"]["label"] == "unit" and snapshot["probe"]["hash"]["comparable"] is True
    assert set(snapshot["probe"]["timings_ms"]) == set(COLLECTOR_SECTIONS)
    # Self-footprint: its file, config and --out are neither walked nor in argv, and the snapshot says so.
    own = {
        str(tmp_path / "probe" / "parity_probe.py"),
        str(tmp_path / "probe" / "config.json"),
        str(tmp_path / "out.json"),
    }
    assert own <= set(snapshot["excluded"]["paths"])
    assert not own & set(snapshot["filesystem"]["paths"])
    assert str(tmp_path) in snapshot["filesystem"]["paths"]
    assert snapshot["process"]["argv"] == [sys.executable] and snapshot["excluded"]["argv_items"] == 5
    assert str(tmp_path / "probe") not in snapshot["runtime"]["python"]["sys_path"]
    # Nothing else written anywhere: no .pyc beside the probe, nothing new in its working directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "probe"]
    assert sorted(p.name for p in (tmp_path / "probe").iterdir()) == ["config.json", "parity_probe.py"]


def test_a_hung_collector_is_cut_at_the_deadline_with_its_partial_data(tmp_path):
    """Reading a FIFO nobody writes to blocks forever: the probe still reports on time, exit 0."""
    fifo = tmp_path / "hyperparameters.fifo"
    os.mkfifo(fifo)
    result = run_probe(tmp_path, {"hyperparameter_paths": [str(fifo)], "deadline_seconds": 1.5}, timeout=20)
    assert result.returncode == 0
    snapshot = extract_snapshot(result.stdout, "test")
    assert snapshot["probe"]["duration_ms"] < 3000
    assert {
        "collector": "hyperparameters",
        "type": "Timeout",
        "message": "did not finish within its budget of 0.8 s; partial data kept",
    } in snapshot["errors"]
    assert any(t["collector"] == "hyperparameters" for t in snapshot["truncated"])
    # the SageMaker default source was read before the stuck one: partial data kept
    assert "/opt/ml/input/config/hyperparameters.json" in snapshot["hyperparameters"]["sources"]
    assert snapshot["env"]["vars"] and not any(e["collector"] == "env" for e in snapshot["errors"])


def test_bad_config_and_unwritable_out_still_produce_a_snapshot(tmp_path):
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    (probe_dir / "config.json").write_text('{"hash_key": "c0ffee-NOT-HEX-canary"')
    shutil.copyfile(PROBE_PATH, probe_dir / "parity_probe.py")
    result = subprocess.run(
        [
            sys.executable,
            str(probe_dir / "parity_probe.py"),
            "--config",
            str(probe_dir / "config.json"),
            "--out",
            str(tmp_path / "missing-dir" / "out.json"),
            "--canary-argument",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and b"canary" not in result.stdout + result.stderr
    snapshot = extract_snapshot(result.stdout, "test")
    kinds = {(e["collector"], e["type"]) for e in snapshot["errors"]}
    assert {("probe", "ConfigInvalid"), ("probe", "UsageError"), ("probe", "OutputError")} <= kinds
    assert snapshot["probe"]["hash"]["comparable"] is False


def test_output_size_bound_is_enforced_and_recorded(tmp_path):
    env = {**os.environ, **{f"PARITY_BULK_{i:04d}": "v" * 200 for i in range(1000)}}
    result = run_probe(tmp_path, {"max_output_bytes": 150_000}, env=env)
    assert result.returncode == 0
    frame = result.stdout.decode().split(FRAME_BEGIN + "\n")[1].split("\n" + FRAME_END)[0]
    assert len(frame) <= 150_000
    snapshot = extract_snapshot(result.stdout, "test")
    assert any(t["limit"] == "max_output_bytes=150000" for t in snapshot["truncated"])


def test_help_exits_zero_without_a_snapshot(tmp_path):
    result = run_probe(tmp_path, None, "--help")
    assert result.returncode == 0 and result.stdout.startswith(b"usage: parity_probe.py")


@pytest.mark.parametrize("variable", ["STATSD", "DD_DOGSTATSD_URL"])
def test_one_test_metric_reaches_the_configured_statsd_target(tmp_path, variable):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(10)
    port = receiver.getsockname()[1]
    env = {"PATH": os.environ.get("PATH", "/usr/bin")}
    if variable == "STATSD":
        env.update(STATSD_HOST="127.0.0.1", STATSD_PORT=str(port))
    else:
        env.update(DD_DOGSTATSD_URL=f"udp://127.0.0.1:{port}", STATSD_PORT="1")
    with receiver:
        result = run_probe(tmp_path, {"send_test_metric": True}, env=env)
        datagram = receiver.recv(4096).decode()
    metric = extract_snapshot(result.stdout, "test")["metrics"]["test_metric"]
    assert (
        metric["sent"] is True
        and metric["target"] == f"127.0.0.1:{port}"
        and metric["address"] == "127.0.0.1"
    )
    assert datagram == metric["payload"] == f"parity.probe.test:1|c|#parity_nonce:{metric['nonce']}"


# --- the env section is the exact environment, whatever it holds -------------------------------------------
ENV_DRIVER = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("probe", sys.argv[1])
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)
environ, source = probe.read_environ()
config = dict(probe.CONFIG_DEFAULTS)
ctx = probe.Context(config, probe.Secrets(bytes.fromhex(sys.argv[2]), True), environ, source, [], sys.argv[1])
section = {}
probe.collect_env(ctx, section)
print(json.dumps(section))
"""
# Names the dynamic loader or the C library act on before Python runs would change the experiment itself.
LOADER_PREFIXES = (b"LD_", b"GLIBC_TUNABLES", b"MALLOC_", b"GCONV_PATH", b"LOCPATH")
env_names = st.binary(min_size=1, max_size=12).filter(
    lambda name: b"=" not in name and b"\0" not in name and not name.upper().startswith(LOADER_PREFIXES)
)
env_values = st.binary(max_size=40).filter(lambda value: b"\0" not in value)


@settings(max_examples=30, deadline=None)
@given(environment=st.dictionaries(env_names, env_values, max_size=12))
def test_env_round_trips_exactly(environment):
    """Any names and values (bytes, not only UTF-8) come back exactly, or as the HMAC of the exact bytes."""
    result = subprocess.run(
        [sys.executable, "-I", "-B", "-c", ENV_DRIVER, str(PROBE_PATH), KEY.hex()],
        env=environment,
        capture_output=True,
        timeout=60,
        check=True,
    )
    section = json.loads(result.stdout)
    assert section["count"] == len(environment) and section["duplicates"] == []
    seen = {}
    for name, value in section["vars"].items():
        seen[name.encode()] = value
    for entry in section["undecodable"]:
        name = base64.b64decode(entry["name_base64"])
        seen[name] = entry.get("value") or {"base64": entry["value_base64"]}
    assert set(seen) == set(environment)
    redacted = set(section["redacted"])
    for name, value in environment.items():
        reported = seen[name]
        if isinstance(reported, str) and reported == expected_hmac(KEY, value):
            assert name.decode("utf-8", "replace") in redacted or any(
                base64.b64decode(e["name_base64"]) == name and e.get("redacted")
                for e in section["undecodable"]
            )
        elif isinstance(reported, dict):
            assert base64.b64decode(reported["base64"]) == value
        else:
            assert reported.encode() == value
