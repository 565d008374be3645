"""conformance.runner: plans are built before anything runs, and the harness section is recorded."""

from __future__ import annotations

import pytest
import yaml

from conformance import runner
from conformance.check import run_check
from conformance.config import load_config
from conformance.errors import BadInput
from conformance.plan import Container, LaunchPlan
from conformance.runner import RunOutcome
from tests.snapshot_factory import kubernetes_snapshot


@pytest.fixture
def loaded(tmp_path):
    (tmp_path / "parity.yaml").write_text(
        yaml.safe_dump(
            {
                "targets": {
                    "k8s": {"platform": "kubernetes", "image": "img:1", "spec": "pod.yaml"},
                    "sm": {"platform": "sagemaker", "image": "img:1", "spec": "job.yaml"},
                }
            }
        )
    )
    return load_config(tmp_path / "parity.yaml")


def _plan(platform: str, target: str) -> LaunchPlan:
    return LaunchPlan(
        platform=platform,
        target=target,
        hostname="h",
        main=Container(name="main", image="img:1"),
        metadata={"pod": "trainer"},
    )


def test_a_bad_spec_in_any_target_fails_the_check_before_any_target_runs(loaded, monkeypatch):
    started = []

    def build_plan(loaded, name):
        if name == "sm":
            raise BadInput("job.yaml", "HyperParameters.lr", "must be a string")
        return _plan("kubernetes", name)

    monkeypatch.setattr(runner, "build_plan", build_plan)
    monkeypatch.setattr(runner, "run_target", lambda *args, **kwargs: started.append(args))
    with pytest.raises(BadInput, match="HyperParameters.lr"):
        run_check(loaded)
    assert started == []


def test_run_target_records_which_target_platform_and_image_produced_the_snapshot(loaded, monkeypatch):
    class FakeEngine:
        @classmethod
        def for_target(cls, loaded, target_name):
            return cls()

        def run(self, plan, probe, timeout):
            assert probe.label == "k8s" and probe.hash_key == b"k" * 32
            return RunOutcome(snapshot=kubernetes_snapshot(), exit_code=0, image_id="sha256:abc")

    monkeypatch.setattr(runner, "engine_class", lambda loaded, target: FakeEngine)
    outcome = runner.run_target(loaded, "k8s", b"k" * 32, _plan("kubernetes", "k8s"))
    assert outcome.snapshot["harness"] == {
        "target": "k8s",
        "platform": "kubernetes",
        "engine": "docker",
        "image": "img:1",
        "image_id": "sha256:abc",
        "exit_code": 0,
        "metadata": {"pod": "trainer"},
    }


def test_an_engine_this_build_lacks_is_bad_input_naming_the_target(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "ENGINES", {"docker": runner.ENGINES["docker"]})
    (tmp_path / "parity.yaml").write_text(
        yaml.safe_dump(
            {"targets": {"sm": {"platform": "sagemaker", "engine": "aws", "image": "i", "spec": "j"}}}
        )
    )
    with pytest.raises(BadInput, match=r"targets\.sm\.engine: engine 'aws' is not available"):
        runner.engine_class(load_config(tmp_path / "parity.yaml"), "sm")


def test_the_docker_engine_refuses_options_it_does_not_have(tmp_path):
    from conformance.engines.docker import DockerEngine

    (tmp_path / "parity.yaml").write_text(
        yaml.safe_dump(
            {
                "targets": {
                    "sm": {"platform": "sagemaker", "image": "i", "spec": "j", "engine_options": {"ns": 1}}
                }
            }
        )
    )
    with pytest.raises(BadInput, match=r"targets\.sm\.engine_options\.ns: unknown option"):
        DockerEngine.for_target(load_config(tmp_path / "parity.yaml"), "sm")


def test_an_unknown_target_is_bad_input_naming_the_known_ones(loaded):
    with pytest.raises(BadInput, match=r"targets\.nope: no such target \(targets: k8s, sm\)"):
        runner.run_target(loaded, "nope", b"k" * 32)
