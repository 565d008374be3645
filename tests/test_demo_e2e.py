"""`parity demo` end to end: the reference compat image on both emulated sides, moto in server mode, the
metrics gateway, the committed baselines and the certificate.

The image is built (or reused) once per session; the clean demo runs once, through the real CLI; each
break runs once, against one set of demo services (moto, credentials server, gateway) for the module.
Every container the demo starts carries `org.parity.demo=<run id>`; a leak shows up under that label.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from conformance.cli import cli
from conformance.compat_image import build_compat_image, load_breaks
from conformance.config import load_config
from conformance.demo import DEMO_CONFIG, DEMO_LABEL, DemoOutcome, demo_services, run_demo

BREAKS = load_breaks()
PARITY = Path(sys.executable).parent / "parity"


def demo_leftovers(client, run_id: str | None = None) -> dict[str, list[str]]:
    """Containers and volumes still labelled by a demo run (by any demo run when `run_id` is None)."""
    selector = {"label": DEMO_LABEL if run_id is None else f"{DEMO_LABEL}={run_id}"}
    return {
        "containers": [c["Id"] for c in client.api.containers(all=True, filters=selector)],
        "volumes": [v["Name"] for v in client.api.volumes(filters=selector).get("Volumes") or []],
    }


@pytest.fixture(scope="module")
def demo_image(docker_client, base_image) -> None:
    for tag in {target.image for target in load_config(DEMO_CONFIG).config.targets.values()}:
        build_compat_image(tag, base_image=base_image, client=docker_client, on_output=lambda line: None)


@dataclass
class CleanDemo:
    result: Result
    out: Path
    threads_left: list[str]


@pytest.fixture(scope="module")
def clean_demo(demo_image, tmp_path_factory) -> CleanDemo:
    """`parity demo --out-dir OUT`, through the real command, and the threads it left running."""
    out = tmp_path_factory.mktemp("clean-demo")
    before = set(threading.enumerate())
    result = CliRunner().invoke(cli, ["demo", "--out-dir", str(out)], catch_exceptions=False)
    return CleanDemo(result, out, [thread.name for thread in set(threading.enumerate()) - before])


def test_the_clean_demo_holds_and_says_so(clean_demo):
    result = clean_demo.result
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith(
        "✓ parity holds: user code sees the same world in the pod and in the training job, and both match "
        "their baselines"
    )
    assert "kubernetes: the probe's test metric arrived at the pod's statsd sidecar" in result.stderr


def test_the_clean_demo_matches_the_committed_baselines(clean_demo):
    """A change to the reference image that changes what user code observes fails here until
    `parity demo --update-baselines` is run and the new baselines are committed."""
    report = json.loads((clean_demo.out / "report.json").read_text())
    baselines = {c["name"]: c for c in report["comparisons"] if c["kind"] == "baseline"}
    assert set(baselines) == {"baseline:kubernetes", "baseline:sagemaker"}
    for name, comparison in baselines.items():
        assert [d["path"] for d in comparison["divergences"] if not d["waived"]] == [], name


def test_the_test_metric_arrives_on_both_sides(clean_demo):
    snapshots = clean_demo.out / "snapshots"
    for target in ("kubernetes", "sagemaker"):
        assert json.loads((snapshots / f"{target}.json").read_text())["metrics"]["delivered"] is True, target


def test_the_clean_demo_stops_everything_it_started(clean_demo, docker_client):
    assert demo_leftovers(docker_client) == {"containers": [], "volumes": []}
    assert clean_demo.threads_left == []  # moto's server and the credentials server are stopped


def test_the_clean_demo_certifies_and_the_certificate_catches_an_edit(clean_demo, tmp_path):
    out = clean_demo.out
    runner = CliRunner()
    certified = runner.invoke(
        cli,
        [
            "certify",
            "-c",
            str(DEMO_CONFIG),
            "--snapshots",
            str(out / "snapshots"),
            "--out-dir",
            str(tmp_path),
        ],
        catch_exceptions=False,
    )
    assert certified.exit_code == 0, certified.output
    certificate = json.loads((tmp_path / "certificate.json").read_text())
    assert certificate["result"] == "certified"
    assert [c["unwaived"] for c in certificate["comparisons"]] == [0, 0, 0]
    assert {w["owner"] for w in certificate["waivers"]} == {"ml-platform"}
    assert all(w["applied"] >= 1 for w in certificate["waivers"])

    verify = ["certify", "--verify", str(tmp_path / "certificate.json")]
    assert runner.invoke(cli, verify, catch_exceptions=False).exit_code == 0
    snapshot = tmp_path / "snapshots" / "sagemaker.json"
    snapshot.write_text(snapshot.read_text().replace('"uid": 1000', '"uid": 0', 1))
    tampered = runner.invoke(cli, verify, catch_exceptions=False)
    assert tampered.exit_code == 1
    assert "snapshot of sagemaker" in tampered.stderr and "changed after certification" in tampered.stderr


@pytest.fixture(scope="module")
def services():
    with demo_services() as running:
        yield running


@pytest.fixture(scope="module")
def break_runs(demo_image, services, docker_client) -> dict[str, DemoOutcome]:
    """Each break once; every run is checked for leftovers right after it."""
    runs = {}
    for name in BREAKS:
        runs[name] = run_demo(services, break_name=name)
        assert demo_leftovers(docker_client, runs[name].run_id) == {"containers": [], "volumes": []}, name
    return runs


@pytest.mark.parametrize("name", list(BREAKS))
def test_each_break_is_caught_with_its_category_and_hint_and_nothing_else(break_runs, name):
    expected = BREAKS[name]
    run = break_runs[name]
    comparisons = {c.name: c for c in run.result.comparisons}
    pair = comparisons["kubernetes~sagemaker"].unwaived
    assert any(
        d.category == expected.category and expected.hint_keyword.lower() in (d.hint or "").lower()
        for d in pair
    ), [(d.category, d.hint) for d in pair]
    assert {d.category for d in pair} <= {expected.category, *expected.also_affects}
    assert comparisons["baseline:kubernetes"].passed  # the pod is not touched by the break
    assert not comparisons["baseline:sagemaker"].passed  # and the job no longer matches its baseline
    assert run.verdict.holds, run.verdict.line


def test_without_the_relay_the_jobs_metrics_never_arrive(break_runs):
    delivered = break_runs["statsd-not-rerouted"].delivered
    assert delivered["kubernetes"] is not None and delivered["sagemaker"] is None


def test_an_interrupted_demo_removes_its_containers_and_exits_130(demo_image, docker_client):
    """Ctrl-C while both targets run: the real command, in its own process."""
    process = subprocess.Popen(
        [str(PARITY), "demo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not demo_leftovers(docker_client)["containers"] and time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the demo ended before it was interrupted: {process.communicate()}")
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "parity: interrupted; everything this run started was removed"
    assert demo_leftovers(docker_client) == {"containers": [], "volumes": []}
