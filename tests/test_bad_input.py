"""Every malformed input exits 2 with exactly one line on stderr naming the file and the field.

Through the real CLI (`parity check` / `parity diff`), never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from conformance.cli import cli
from conformance.snapshot import dumps_snapshot
from tests.snapshot_factory import kubernetes_snapshot, sagemaker_snapshot

TARGETS = """
targets:
  k8s: {platform: kubernetes, image: compat:test, spec: pod.yaml}
  sagemaker: {platform: sagemaker, image: compat:test, spec: job.yaml}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "snapshots").mkdir()
    (tmp_path / "snapshots/k8s.json").write_text(dumps_snapshot(kubernetes_snapshot()))
    (tmp_path / "snapshots/sagemaker.json").write_text(dumps_snapshot(sagemaker_snapshot()))
    return tmp_path


def one_line_error(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip()


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("targets: [unclosed", "parity.yaml: line 1, column 19: invalid YAML"),
        ("- just\n- a list", "parity.yaml: expected a mapping at the top level"),
        (TARGETS + "contract: {ignoore: [env.vars.X]}", "parity.yaml: contract.ignoore: unknown field"),
        (
            TARGETS + "contract: {ignore: ['env.vars[x']}",
            "parity.yaml: contract.ignore.0: bad path pattern 'env.vars[x': unclosed '['",
        ),
        (
            TARGETS + "contract: {present: [enviroment.vars.X]}",
            "parity.yaml: contract.present.0: bad path pattern 'enviroment.vars.X': "
            "unknown snapshot section 'enviroment'",
        ),
        (TARGETS + "contract: {sets: [identity..groups]}", "parity.yaml: contract.sets.0: bad path pattern"),
        (
            TARGETS + "contract: {platform_only: {ecs: [env.vars.X]}}",
            "parity.yaml: contract.platform_only.ecs: not an allowed key",
        ),
        (
            TARGETS + "contract: {severity: {categories: {env: urgent}}}",
            "parity.yaml: contract.severity.categories.env: Input should be 'critical'",
        ),
        (
            TARGETS + "contract: {severity: {paths: {'env.vars.[': low}}}",
            "parity.yaml: contract.severity.paths.env.vars.[: bad path pattern",
        ),
        (
            TARGETS + "contract: {normalize: [{name: X, pattern: '(', paths: ['*']}]}",
            "parity.yaml: contract.normalize.0.pattern: not a valid regular expression",
        ),
        (
            TARGETS + "contract: {equivalent: [{left: 'env.vars.*', right: env.vars.B}]}",
            "parity.yaml: contract.equivalent.0.left: an equivalence names one value",
        ),
        (
            TARGETS + "contract: {extends: parent}",
            "parity.yaml: contract.extends: Input should be 'default' or 'none'",
        ),
        (
            TARGETS + "waivers: [{path: env.vars.X, owner: me}]",
            "parity.yaml: waivers.0.reason: required field is missing",
        ),
        (
            TARGETS + "waivers: [{path: env.vars.X, owner: me, reason: ''}]",
            "parity.yaml: waivers.0.reason: String should have at least 1 character",
        ),
        (
            TARGETS + "waivers: [{reason: r, owner: me}]",
            "parity.yaml: waivers.0: a waiver needs an 'id' or a 'path'",
        ),
        (
            TARGETS + "waivers: [{path: env.vars.X, reason: r, owner: me, expires: 2025-13-01}]",
            "parity.yaml: waivers.0.expires: Input should be a valid date",
        ),
        (
            TARGETS + "waivers: [{path: env.vars.X, reason: r, owner: me, expires: next week}]",
            "parity.yaml: waivers.0.expires: Input should be a valid date",
        ),
        (
            TARGETS + "waivers: [{path: 'env.vars.[', reason: r, owner: me}]",
            "parity.yaml: waivers.0.path: bad path pattern",
        ),
        (
            TARGETS + "waivers: [{path: env.vars.X, reason: r, owner: me, comparison: k8s~sm}]",
            "parity.yaml: waivers.0.comparison: no comparison 'k8s~sm' "
            "(comparisons: k8s~sagemaker, baseline:k8s, baseline:sagemaker)",
        ),
        (
            TARGETS + "comparisons: [{left: k8s, right: ecs}]",
            "parity.yaml: comparisons.0.right: unknown target 'ecs' (targets: k8s, sagemaker)",
        ),
        (
            TARGETS.replace("platform: sagemaker", "platform: ecs"),
            "parity.yaml: targets.sagemaker.platform: Input should be 'kubernetes' or 'sagemaker'",
        ),
        ("suite: nightly", "parity.yaml: targets: no targets: declare at least one target to check"),
        ("suite: 'bad/suite'\n" + TARGETS, "parity.yaml: suite: String should match pattern"),
    ],
)
def test_a_malformed_parity_yaml_exits_2_naming_file_and_field(workdir: Path, config: str, expected: str):
    (workdir / "parity.yaml").write_text(config)
    assert one_line_error("check", "-c", "parity.yaml", "--snapshots", "snapshots").startswith(
        f"parity: {expected}"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"schema": "parity.snapshot/v1", "probe": {', "bad.json: line 1, column 44: invalid JSON"),
        (
            '{"schema": "parity.snapshot/v7"}',
            "bad.json: schema: unknown snapshot schema 'parity.snapshot/v7'",
        ),
        ('{"hello": 1}', "bad.json: schema: missing: not a parity snapshot"),
        ("", "bad.json: empty file"),
        ("[1, 2]", "bad.json: not a parity snapshot (expected a JSON object, got list)"),
    ],
)
def test_a_malformed_snapshot_exits_2_naming_the_file(workdir: Path, content: str, expected: str):
    (workdir / "bad.json").write_text(content)
    assert one_line_error("diff", "bad.json", "snapshots/k8s.json").startswith(f"parity: {expected}")


def test_a_snapshot_that_breaks_the_schema_names_the_field(workdir: Path):
    broken = kubernetes_snapshot()
    broken["identity"] = "root"
    (workdir / "bad.json").write_text(dumps_snapshot(broken))
    assert one_line_error("diff", "snapshots/k8s.json", "bad.json").startswith("parity: bad.json: identity:")


def test_missing_files_exit_2(workdir: Path):
    assert one_line_error("diff", "nope.json", "snapshots/k8s.json") == "parity: nope.json: file not found"
    assert one_line_error("check", "-c", "absent.yaml") == "parity: absent.yaml: file not found"


def test_a_missing_stored_snapshot_says_how_to_make_it(workdir: Path):
    (workdir / "parity.yaml").write_text(TARGETS)
    (workdir / "snapshots/sagemaker.json").unlink()
    assert one_line_error("check", "-c", "parity.yaml", "--snapshots", "snapshots") == (
        "parity: snapshots/sagemaker.json: no snapshot for target 'sagemaker' "
        "(write one with `parity run -t sagemaker`)"
    )


def test_an_unknown_target_on_the_command_line(workdir: Path):
    (workdir / "parity.yaml").write_text(TARGETS)
    assert one_line_error("check", "-c", "parity.yaml", "--snapshots", "snapshots", "-t", "ecs") == (
        "parity: --target: no target 'ecs' in parity.yaml (targets: k8s, sagemaker)"
    )
