"""The contract: the built-in default, extending and replacing it, platforms, and waivers."""

from __future__ import annotations

import datetime as dt
import subprocess
import zipfile
from pathlib import Path

import pytest

from conformance.config import ContractConfig, Waiver
from conformance.contract import (
    DEFAULT_CONTRACT_PATH,
    apply_waivers,
    compile_waivers,
    default_contract_config,
    load_contract,
    platform_of,
)
from conformance.errors import BadInput
from conformance.model import ComparisonResult, Divergence

TODAY = dt.date(2026, 6, 1)


def test_the_default_contract_is_a_valid_contract_citing_the_reference_sheets():
    config = default_contract_config()
    assert config.extends == "none"
    assert {"kubernetes", "sagemaker"} == set(config.platform_only)
    text = DEFAULT_CONTRACT_PATH.read_text()
    assert "K8s §" in text and "SM §" in text


def test_a_repository_contract_extends_the_default_unless_it_says_none():
    own = ContractConfig(ignore=["env.vars.BUILD_ID"])
    extended = load_contract(own)
    replaced = load_contract(own.model_copy(update={"extends": "none"}))
    assert {rule.glob.pattern for rule in replaced.rules} == {"env.vars.BUILD_ID"}
    assert {"env.vars.BUILD_ID", "probe.started_at"} <= {rule.glob.pattern for rule in extended.rules}
    assert replaced.mask_rules == () and not replaced.derived_rules
    assert extended.derived_rules


def test_severity_categories_are_overridden_by_the_repository():
    contract = load_contract(
        ContractConfig.model_validate({"severity": {"categories": {"network": "critical"}}})
    )
    assert contract.severity_of("network", None) == "critical"
    assert contract.severity_of("env", None) == "high"  # the default's


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"ignore": ["env..x"]}, "contract.ignore.0"),
        ({"present": ["ok.x"]}, "contract.present.0"),
        (
            {"platform_only": {"sagemaker": ["env.vars.A", "env.vars['B"]}},
            "contract.platform_only.sagemaker.1",
        ),
        ({"sets": ["identity.groups[x]"]}, "contract.sets.0"),
        ({"severity": {"paths": {"env.vars.": "low"}}}, "contract.severity.paths.env.vars."),
        (
            {"normalize": [{"name": "A", "pattern": "a", "paths": ["env", "bogus"]}]},
            "contract.normalize.0.paths.1",
        ),
        ({"equivalent": [{"left": "env.vars.A*", "right": "env.vars.B"}]}, "contract.equivalent.0.left"),
    ],
)
def test_a_bad_path_pattern_names_the_file_and_field(config, field):
    with pytest.raises(BadInput) as raised:
        load_contract(ContractConfig.model_validate(config), "parity.yaml")
    assert raised.value.source == "parity.yaml" and raised.value.field == field


def test_platform_comes_from_the_harness_then_the_probe():
    assert (
        platform_of({"harness": {"platform": "sagemaker"}, "context": {"platform": "kubernetes"}}).name
        == "sagemaker"
    )
    assert platform_of({"context": {"platform": "sagemaker-processing"}}).name == "sagemaker"
    unknown = platform_of({"context": {"platform": "local"}})
    assert unknown.name is None and "detected local" in unknown.evidence


def test_the_default_contract_ships_inside_the_wheel(tmp_path: Path):
    project = Path(__file__).resolve().parents[1]
    subprocess.run(
        ["uv", "build", "--wheel", "--out-dir", str(tmp_path), str(project)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    assert "conformance/default_contract.yaml" in zipfile.ZipFile(wheel).namelist()


# ---- waivers --------------------------------------------------------------------------------------------


def _comparison(*paths: str, name: str = "k8s~sagemaker") -> ComparisonResult:
    return ComparisonResult(
        name=name,
        kind="pair",
        left="k8s",
        right="sagemaker",
        divergences=[
            Divergence(
                id=f"env-{n:010d}",
                comparison=name,
                category="env",
                path=path,
                kind="changed",
                severity="high",
            )
            for n, path in enumerate(paths)
        ],
    )


def _waiver(**fields) -> Waiver:
    return Waiver(reason="accepted until the entrypoint is fixed", owner="platform-team", **fields)


def test_a_waiver_by_path_glob_waives_but_still_reports():
    comparison = _comparison("env.vars.A", "env.vars.B")
    notes = apply_waivers([comparison], compile_waivers([_waiver(path="env.vars.A")], "parity.yaml"), TODAY)
    waived = {d.path: d.waived for d in comparison.divergences}
    assert waived == {"env.vars.A": True, "env.vars.B": False}
    assert comparison.divergences[0].waiver.owner == "platform-team"
    assert notes == []


def test_a_waiver_by_id_and_comparison():
    comparison = _comparison("env.vars.A")
    other = _comparison("env.vars.A", name="k8s~processing")
    waivers = compile_waivers([_waiver(id="env-0000000000", comparison="k8s~processing")], "parity.yaml")
    apply_waivers([comparison, other], waivers, TODAY)
    assert not comparison.divergences[0].waived and other.divergences[0].waived


def test_an_expired_waiver_stops_waiving_and_is_reported():
    comparison = _comparison("env.vars.A")
    notes = apply_waivers(
        [comparison], compile_waivers([_waiver(path="env.vars.*", expires=dt.date(2026, 5, 31))], "p"), TODAY
    )
    assert not comparison.divergences[0].waived
    assert comparison.divergences[0].waiver.expired
    assert [(n.problem, n.selector) for n in notes] == [("expired", "path env.vars.*")]


def test_a_waiver_is_valid_through_its_expiry_date():
    comparison = _comparison("env.vars.A")
    notes = apply_waivers(
        [comparison], compile_waivers([_waiver(path="env.vars.A", expires=TODAY)], "p"), TODAY
    )
    assert comparison.divergences[0].waived and notes == []


def test_a_waiver_that_matches_nothing_is_reported_as_unused():
    notes = apply_waivers(
        [_comparison("env.vars.A")], compile_waivers([_waiver(path="identity.uid")], "p"), TODAY
    )
    assert [(n.problem, n.selector, n.owner) for n in notes] == [
        ("unused", "path identity.uid", "platform-team")
    ]


def test_a_waiver_with_a_bad_path_names_its_field():
    with pytest.raises(BadInput, match=r"waivers\.1\.path: bad path pattern"):
        compile_waivers([_waiver(path="env"), _waiver(path="env[")], "parity.yaml")
