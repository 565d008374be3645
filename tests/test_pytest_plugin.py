"""The pytest plugin: `pytest --parity-config parity.yaml` gates an existing pytest/JUnit pipeline on
parity."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
import yaml

# pytester puts sys.modules back after each in-process run: importing what the plugin uses once, here,
# spares every run re-importing (and assertion-rewriting) the harness.
import conformance.check
import conformance.reports  # noqa: F401
from conformance.snapshot import dumps_snapshot
from tests.snapshot_factory import kubernetes_snapshot, sagemaker_snapshot

pytest_plugins = ["pytester"]

CATEGORY_COUNT = 13  # conformance.config.CATEGORIES


@pytest.fixture
def repo(pytester: pytest.Pytester) -> pytest.Pytester:
    config = {
        "targets": {
            "k8s": {"platform": "kubernetes", "image": "compat:test", "spec": "pod.yaml"},
            "sagemaker": {"platform": "sagemaker", "image": "compat:test", "spec": "job.yaml"},
        }
    }
    pytester.makefile(".yaml", parity=yaml.safe_dump(config))
    snapshots = pytester.mkdir("snapshots")
    (snapshots / "k8s.json").write_text(dumps_snapshot(kubernetes_snapshot()))
    (snapshots / "sagemaker.json").write_text(dumps_snapshot(sagemaker_snapshot()))
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # Without hypothesis' plugin, whose terminal summary would re-import hypothesis in every run.
    return pytester.runpytest(
        "-p",
        "no:hypothesispytest",
        "--parity-config",
        "parity.yaml",
        "--parity-snapshots",
        "snapshots",
        *args,
    )


def test_without_the_option_the_plugin_adds_nothing(pytester: pytest.Pytester):
    pytester.makepyfile("def test_ordinary(): pass")
    result = pytester.runpytest("-p", "no:hypothesispytest")
    result.assert_outcomes(passed=1)


def test_one_item_per_comparison_and_category_and_a_missing_baseline_fails(repo: pytest.Pytester):
    result = run(repo, "-v")
    items = 3 * CATEGORY_COUNT + 1  # k8s~sagemaker, baseline:k8s, baseline:sagemaker; the waivers item
    result.assert_outcomes(passed=items - 2, failed=2)
    result.stdout.fnmatch_lines(
        [
            f"*collected {items} items",
            "*parity.yaml::k8s~sagemaker::env PASSED*",
            "*parity.yaml::baseline:k8s::probe FAILED*",
            "*No golden baseline for target 'k8s' yet*--update-baselines*",
        ]
    )


def test_update_baselines_then_a_divergence_fails_its_category_with_path_values_and_hint(
    repo: pytest.Pytester,
):
    updated = run(repo, "--parity-update-baselines")
    updated.assert_outcomes(passed=3 * CATEGORY_COUNT + 1)
    updated.stdout.fnmatch_lines(["*parity*", "baseline baselines/default/k8s.json: new"])
    assert (repo.path / "baselines/default/sagemaker.json").exists()
    broken = sagemaker_snapshot()
    broken["hyperparameters"]["sources"]["/etc/hp/hyperparameters.json"]["values"]["epochs"] = "10"
    (repo.path / "snapshots/sagemaker.json").write_text(dumps_snapshot(broken))
    result = run(repo, "--junitxml=report.xml")
    result.assert_outcomes(passed=3 * CATEGORY_COUNT - 1, failed=2)  # the pair and sagemaker's baseline
    output = result.stdout.str()
    assert (
        "HIGH type_changed hyperparameters.sources['/etc/hp/hyperparameters.json'].values.epochs"
        " [hyperparameters-bae6fd6bbc]\n  left:  10\n  right: '10'\n  hint:  Hyperparameter stringified"
    ) in output
    suite = ElementTree.parse(repo.path / "report.xml").getroot().find("testsuite")
    failed = {
        (case.get("classname"), case.get("name"))
        for case in suite.iter("testcase")
        if case.find("failure") is not None
    }
    assert failed == {
        ("parity.yaml.k8s~sagemaker", "hyperparameters"),
        ("parity.yaml.baseline:sagemaker", "hyperparameters"),
    }


def test_an_expired_waiver_fails_the_waivers_item(repo: pytest.Pytester):
    config = yaml.safe_load((repo.path / "parity.yaml").read_text())
    config["waivers"] = [
        {"path": "identity.uid", "reason": "temporary", "owner": "ml-platform", "expires": "2020-01-01"}
    ]
    (repo.path / "parity.yaml").write_text(yaml.safe_dump(config))
    result = run(repo, "--parity-update-baselines")
    result.assert_outcomes(passed=3 * CATEGORY_COUNT, failed=1)
    result.stdout.fnmatch_lines(
        ["*waiver path identity.uid (owner ml-platform) expired on 2020-01-01: temporary*"]
    )


def test_a_failing_check_fails_every_item_with_one_line(repo: pytest.Pytester):
    (repo.path / "snapshots/k8s.json").unlink()
    result = run(repo)
    result.assert_outcomes(failed=3 * CATEGORY_COUNT + 1)
    result.stdout.fnmatch_lines(["parity: snapshots/k8s.json: no snapshot for target 'k8s'*"])
    assert "Traceback" not in result.stdout.str()


def test_a_bad_config_is_a_usage_error(repo: pytest.Pytester):
    (repo.path / "parity.yaml").write_text("targets: {k8s: {platform: ecs}}")
    result = run(repo)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--parity-config: parity.yaml: targets.k8s.platform: Input should be*"])
