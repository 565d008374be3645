"""`parity certify` on stored snapshots: the certificate's content, its verification, and tampering."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from conformance.cli import cli
from conformance.snapshot import dumps_snapshot
from tests.snapshot_factory import kubernetes_snapshot, sagemaker_snapshot


def _project(tmp_path: Path, sagemaker: dict | None = None, waivers: list | None = None) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\n")
    (tmp_path / "job.yaml").write_text("TrainingJobName: demo\n")
    config = {
        "suite": "cert",
        "targets": {
            "k8s": {"platform": "kubernetes", "image": "img:1", "spec": "pod.yaml"},
            "sm": {"platform": "sagemaker", "image": "img:1", "spec": "job.yaml"},
        },
        "waivers": waivers or [],
    }
    (tmp_path / "parity.yaml").write_text(yaml.safe_dump(config))
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    (snapshots / "k8s.json").write_text(dumps_snapshot(kubernetes_snapshot()))
    (snapshots / "sm.json").write_text(dumps_snapshot(sagemaker or sagemaker_snapshot()))
    return tmp_path


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _certify(project: Path, out: Path):
    config = str(project / "parity.yaml")
    snapshots = str(project / "snapshots")
    # baselines are part of the verdict: create them first, as a team does once and commits
    _invoke("check", "-c", config, "--snapshots", snapshots, "--update-baselines")
    return _invoke("certify", "-c", config, "--snapshots", snapshots, "--out-dir", str(out))


def test_clean_snapshots_certify_and_the_certificate_names_what_was_certified(tmp_path):
    project = _project(tmp_path / "repo")
    out = tmp_path / "cert"
    result = _certify(project, out)
    assert result.exit_code == 0, result.output
    certificate = json.loads((out / "certificate.json").read_text())
    assert certificate["schema"] == "parity.certificate/v1"
    assert certificate["result"] == "certified"
    assert set(certificate["targets"]) == {"k8s", "sm"}
    assert certificate["targets"]["k8s"]["probe_version"] == "1.0.0"
    assert certificate["targets"]["sm"]["snapshot"]["digest"].startswith("sha256:")
    assert certificate["contract"]["digest"].startswith("sha256:")
    assert {c["name"] for c in certificate["comparisons"]} == {"k8s~sm", "baseline:k8s", "baseline:sm"}
    assert all(c["verdict"] == "pass" for c in certificate["comparisons"])
    assert set(certificate["reports"]) == {"json", "junit", "markdown", "html"}
    assert "certified" in (out / "certificate.md").read_text()
    verified = _invoke("certify", "--verify", str(out / "certificate.json"))
    assert verified.exit_code == 0, verified.output


def test_an_edited_snapshot_or_config_fails_verification(tmp_path):
    project = _project(tmp_path / "repo")
    out = tmp_path / "cert"
    assert _certify(project, out).exit_code == 0
    snapshot = out / "snapshots" / "sm.json"
    snapshot.write_text(snapshot.read_text().replace('"uid": 1000', '"uid": 0', 1))
    failed = _invoke("certify", "--verify", str(out / "certificate.json"))
    assert failed.exit_code == 1
    assert "snapshot of sm" in failed.output and "changed after certification" in failed.output

    snapshot.unlink()
    (project / "parity.yaml").write_text((project / "parity.yaml").read_text() + "\n# edited\n")
    failed = _invoke("certify", "--verify", str(out / "certificate.json"))
    assert "snapshot of sm" in failed.output and "missing" in failed.output
    assert "config" in failed.output


def test_a_divergence_gives_a_not_certified_certificate_listing_the_waivers_in_force(tmp_path):
    broken = sagemaker_snapshot()
    broken["identity"]["uid"] = 0
    waivers = [
        {
            "path": "env.vars.LANG",
            "reason": "locale set by the base image",
            "owner": "platform-team",
            "expires": "2099-01-01",
        }
    ]
    project = _project(tmp_path / "repo", sagemaker=broken, waivers=waivers)
    out = tmp_path / "cert"
    result = _certify(project, out)
    assert result.exit_code == 1
    certificate = json.loads((out / "certificate.json").read_text())
    assert certificate["result"] == "not certified"
    pair = next(c for c in certificate["comparisons"] if c["name"] == "k8s~sm")
    assert pair["verdict"] == "fail" and pair["unwaived"] >= 1
    assert certificate["waivers"][0]["owner"] == "platform-team"
    assert certificate["waivers"][0]["expires"] == "2099-01-01"


def test_verify_refuses_a_file_that_is_not_a_certificate(tmp_path):
    bogus = tmp_path / "certificate.json"
    bogus.write_text('{"schema": "something-else"}')
    result = CliRunner().invoke(cli, ["certify", "--verify", str(bogus)])
    assert result.exit_code == 2
    assert "schema" in result.output
