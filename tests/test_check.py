"""`parity diff`, `parity run`, `parity check` and golden baselines, through the real CLI."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conformance import baselines, runner
from conformance.check import run_check
from conformance.cli import cli
from conformance.config import load_config
from conformance.errors import InfrastructureError
from conformance.runner import RunOutcome
from conformance.snapshot import dumps_snapshot
from tests.snapshot_factory import kubernetes_snapshot, sagemaker_snapshot


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with parity.yaml, two targets and their stored snapshots; the working directory."""
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path)
    (tmp_path / "snapshots").mkdir()
    write_snapshots(tmp_path, kubernetes_snapshot(), sagemaker_snapshot())
    return tmp_path


def write_config(root: Path, **extra) -> None:
    config = {
        "targets": {
            "k8s": {"platform": "kubernetes", "image": "compat:test", "spec": "pod.yaml"},
            "sagemaker": {"platform": "sagemaker", "image": "compat:test", "spec": "job.yaml"},
        },
        **extra,
    }
    (root / "parity.yaml").write_text(yaml.safe_dump(config))


def write_snapshots(root: Path, k8s: dict, sagemaker: dict) -> None:
    (root / "snapshots" / "k8s.json").write_text(dumps_snapshot(k8s))
    (root / "snapshots" / "sagemaker.json").write_text(dumps_snapshot(sagemaker))


def check(*extra: str):
    return invoke("check", "-c", "parity.yaml", "--snapshots", "snapshots", *extra)


# ---- parity diff ----------------------------------------------------------------------------------------


def test_diff_of_two_snapshots_exits_0_when_parity_holds(project: Path):
    result = invoke("diff", "snapshots/k8s.json", "snapshots/sagemaker.json")
    assert result.exit_code == 0, result.output
    assert "parity holds" in result.stdout


def test_diff_exits_1_and_reports_each_divergence_with_its_hint(project: Path):
    broken = sagemaker_snapshot()
    broken["hyperparameters"]["sources"]["/etc/hp/hyperparameters.json"]["values"]["epochs"] = "10"
    write_snapshots(project, kubernetes_snapshot(), broken)
    result = invoke("diff", "snapshots/k8s.json", "snapshots/sagemaker.json", "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    (divergence,) = report["comparisons"][0]["divergences"]
    assert divergence["path"] == "hyperparameters.sources['/etc/hp/hyperparameters.json'].values.epochs"
    assert divergence["kind"] == "type_changed"
    assert "SageMaker passes HyperParameters as a {str: str} map" in divergence["hint"]
    assert report["comparisons"][0]["name"] == "k8s~sagemaker"


def test_diff_takes_the_contract_and_waivers_from_parity_yaml(project: Path):
    broken = sagemaker_snapshot()
    broken["identity"]["uid"] = 0
    write_snapshots(project, kubernetes_snapshot(), broken)
    write_config(
        project,
        waivers=[
            {"path": "identity.uid", "reason": "until the entrypoint drops root", "owner": "ml-platform"}
        ],
    )
    result = invoke(
        "diff", "snapshots/k8s.json", "snapshots/sagemaker.json", "-c", "parity.yaml", "--format", "json"
    )
    assert result.exit_code == 0
    (divergence,) = json.loads(result.stdout)["comparisons"][0]["divergences"]
    assert divergence["waived"] and divergence["waiver"]["owner"] == "ml-platform"


def test_diff_writes_the_report_to_out(project: Path):
    result = invoke(
        "diff", "snapshots/k8s.json", "snapshots/sagemaker.json", "--format", "markdown", "--out", "r.md"
    )
    assert result.exit_code == 0 and result.stdout == ""
    assert "parity holds" in (project / "r.md").read_text().lower()


# ---- parity check and baselines -------------------------------------------------------------------------


def test_a_missing_baseline_fails_with_the_command_that_creates_it(project: Path):
    result = check("--format", "json")
    assert result.exit_code == 1
    comparisons = {c["name"]: c for c in json.loads(result.stdout)["comparisons"]}
    assert comparisons["k8s~sagemaker"]["divergences"] == []
    (missing,) = comparisons["baseline:k8s"]["divergences"]
    assert missing["path"] == "baselines/default/k8s.json"
    assert "`parity check -c parity.yaml --snapshots snapshots --update-baselines`" in missing["hint"]
    assert not (project / "baselines").exists()  # nothing created silently


def test_a_caller_names_its_own_command_for_missing_baselines(project: Path):
    outcome = run_check(
        load_config("parity.yaml"),
        snapshots_dir=Path("snapshots"),
        update_command="parity demo --update-baselines",
    )
    hints = [d.hint for c in outcome.result.comparisons if c.kind == "baseline" for d in c.divergences]
    assert len(hints) == 2 and all("`parity demo --update-baselines`" in hint for hint in hints)


def test_update_baselines_writes_them_and_the_next_check_passes(project: Path):
    result = check("--update-baselines")
    assert result.exit_code == 0, result.output
    assert "baseline baselines/default/k8s.json: new" in result.stderr
    stored = (project / "baselines/default/k8s.json").read_text()
    assert stored == dumps_snapshot(json.loads(stored))  # canonical: sorted keys, trailing newline
    assert "hunter2" not in stored and "hmac-sha256:<SECRET>" in stored
    assert '"pid": "<PID>"' in stored and '"image_id"' not in stored
    assert check().exit_code == 0


def test_a_changed_target_fails_its_baseline_and_update_says_how_much_changed(project: Path):
    assert check("--update-baselines").exit_code == 0
    changed = kubernetes_snapshot()
    changed["identity"]["uid"] = 0
    changed["env"]["vars"]["NEW"] = "1"
    write_snapshots(project, changed, sagemaker_snapshot())
    result = check("--format", "json")
    assert result.exit_code == 1
    comparison = next(c for c in json.loads(result.stdout)["comparisons"] if c["name"] == "baseline:k8s")
    assert {d["path"] for d in comparison["divergences"]} == {"identity.uid", "env.vars.NEW"}
    updated = check("--update-baselines", "-t", "k8s")
    assert "baselines/default/k8s.json: changed (2 paths)" in updated.stderr


def test_a_run_that_differs_only_in_volatile_values_leaves_the_baseline_file_untouched(project: Path):
    assert check("--update-baselines").exit_code == 0
    baseline = project / "baselines/default/k8s.json"
    before = baseline.stat().st_mtime_ns
    rerun = kubernetes_snapshot()
    rerun["probe"]["started_at"] = "2026-01-01T00:00:00Z"
    rerun["process"]["pid"] = 999
    write_snapshots(project, rerun, sagemaker_snapshot())
    result = check("--update-baselines")
    assert "baselines/default/k8s.json: unchanged" in result.stderr
    assert baseline.stat().st_mtime_ns == before


def test_unused_baselines_are_reported_and_deleted_only_with_prune(project: Path):
    assert check("--update-baselines").exit_code == 0
    orphan = project / "baselines/default/retired.json"
    orphan.write_text((project / "baselines/default/k8s.json").read_text())
    result = check()
    assert result.exit_code == 0
    assert "retired.json: unused" in result.stderr and orphan.exists()
    assert check("--update-baselines").exit_code == 0 and orphan.exists()
    result = check("--update-baselines", "--prune-baselines")
    assert "retired.json: deleted" in result.stderr and not orphan.exists()


def test_prune_without_update_is_refused(project: Path):
    result = check("--prune-baselines")
    assert result.exit_code == 2
    assert result.stderr.strip() == "parity: --prune-baselines: only works together with --update-baselines"


def test_an_interrupted_update_leaves_the_old_baseline_intact(project: Path, monkeypatch: pytest.MonkeyPatch):
    assert check("--update-baselines").exit_code == 0
    baseline = project / "baselines/default/k8s.json"
    old = baseline.read_text()
    changed = kubernetes_snapshot()
    changed["identity"]["uid"] = 0
    write_snapshots(project, changed, sagemaker_snapshot())

    real_fsync = os.fsync

    def fail_after_writing(descriptor: int) -> None:
        if os.path.basename(os.readlink(f"/proc/self/fd/{descriptor}")).startswith(".k8s.json."):
            raise OSError(28, "No space left on device")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fail_after_writing)
    result = check("--update-baselines")
    assert result.exit_code == 3
    assert "cannot write baseline" in result.stderr and "previous baseline is unchanged" in result.stderr
    assert baseline.read_text() == old
    assert [p.name for p in baseline.parent.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"schema": "parity.snapshot/v1", ', "line 1, column 34: baseline is not valid JSON"),
        ("[]", "a baseline is a JSON object, found list"),
        ('{"schema": "parity.snapshot/v9"}', "schema: unknown snapshot schema 'parity.snapshot/v9'"),
        ('{"schema": "parity.snapshot/v1"}', "probe: missing section"),
    ],
)
def test_a_malformed_baseline_exits_2_naming_the_file(project: Path, content: str, problem: str):
    baseline = project / "baselines/default/k8s.json"
    baseline.parent.mkdir(parents=True)
    baseline.write_text(content)
    result = check()
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"parity: baselines/default/k8s.json: {problem}")


def test_an_expired_waiver_fails_the_check_and_says_so(project: Path):
    check("--update-baselines")
    write_config(
        project,
        waivers=[{"path": "identity.uid", "reason": "temporary", "owner": "me", "expires": "2020-01-01"}],
    )
    result = check("--format", "markdown")
    assert result.exit_code == 1
    assert "expired" in result.stdout and "identity.uid" in result.stdout


def test_out_dir_holds_every_report_and_the_snapshots(project: Path):
    result = check("--update-baselines", "--out-dir", "out", "--format", "junit")
    assert result.exit_code == 0
    names = sorted(p.name for p in (project / "out").iterdir())
    assert names == ["report.html", "report.json", "report.junit.xml", "report.md", "snapshots"]
    report = json.loads((project / "out/report.json").read_text())
    assert report["snapshots"] == {
        "k8s": "out/snapshots/k8s.json",
        "sagemaker": "out/snapshots/sagemaker.json",
    }
    assert result.stdout.startswith("<?xml")


# ---- running targets ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_real_plans(monkeypatch: pytest.MonkeyPatch):
    """The specs in these projects are placeholders: plans are only built by the real runner."""
    monkeypatch.setattr(runner, "build_plans", lambda loaded, targets: dict.fromkeys(targets))


def fake_run_target(calls: list):
    """A stand-in for runner.run_target: returns the factory snapshots, recording how it was called."""

    def run_target(loaded, target: str, hash_key: bytes, plan=None, labels=None) -> RunOutcome:
        calls.append((target, hash_key, threading.current_thread().name))
        snapshot = kubernetes_snapshot() if target == "k8s" else sagemaker_snapshot()
        return RunOutcome(snapshot=snapshot, exit_code=0)

    return run_target


def test_check_runs_every_target_in_its_own_thread_with_one_hash_key(
    project: Path, monkeypatch: pytest.MonkeyPatch
):
    calls: list = []
    monkeypatch.setattr(runner, "run_target", fake_run_target(calls))
    outcome = run_check(load_config("parity.yaml"), update_baselines=True)
    assert outcome.result.passed
    assert sorted(target for target, _, _ in calls) == ["k8s", "sagemaker"]
    assert len({key for _, key, _ in calls}) == 1 and len(calls[0][1]) == 32
    assert all(thread.startswith("parity-target") for _, _, thread in calls)
    assert set(outcome.raw) == set(outcome.normalized) == {"k8s", "sagemaker"}
    assert [change.status for change in outcome.baselines] == ["new", "new"]


def test_an_infrastructure_failure_in_one_target_exits_3_with_what_to_do(
    project: Path, monkeypatch: pytest.MonkeyPatch
):
    def run_target(loaded, target, hash_key, plan=None, labels=None):
        if target == "sagemaker":
            raise InfrastructureError("image 'compat:test' is missing", "build it with docker build")
        return RunOutcome(snapshot=kubernetes_snapshot(), exit_code=0)

    monkeypatch.setattr(runner, "run_target", run_target)
    result = invoke("check", "-c", "parity.yaml")
    assert result.exit_code == 3
    assert result.stderr == "parity: image 'compat:test' is missing — build it with docker build\n"


def test_run_writes_the_snapshot_beside_parity_yaml(project: Path, monkeypatch: pytest.MonkeyPatch):
    calls: list = []
    monkeypatch.setattr(runner, "run_target", fake_run_target(calls))
    result = invoke("run", "-t", "k8s", "-c", "parity.yaml")
    assert result.exit_code == 0
    written = project / ".parity/snapshots/k8s.json"
    assert result.stdout == "k8s: snapshot written to .parity/snapshots/k8s.json\n"
    assert json.loads(written.read_text()) == kubernetes_snapshot()
    assert invoke("run", "-t", "k8s", "-c", "parity.yaml", "--out", "elsewhere.json").exit_code == 0
    assert (project / "elsewhere.json").read_text() == written.read_text()


def test_check_only_selected_targets(project: Path):
    write_config(
        project, waivers=[{"path": "env", "comparison": "k8s~sagemaker", "reason": "r", "owner": "me"}]
    )
    result = check("-t", "k8s", "--update-baselines", "--format", "json")
    report = json.loads(result.stdout)
    assert [c["name"] for c in report["comparisons"]] == ["baseline:k8s"]
    assert report["waiver_notes"] == []  # its comparison was not made: neither used nor unused
    assert not (project / "baselines/default/sagemaker.json").exists()


def test_baseline_files_are_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target = tmp_path / "b.json"
    target.write_text("old")

    def broken_replace(source, destination):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        baselines.write_atomically(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["b.json"]
