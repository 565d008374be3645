"""The differ: field-level divergences with the right kind, path, id, severity, rule and hint."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.config import ContractConfig, Equivalence
from conformance.contract import load_contract
from conformance.differ import Side, diff_snapshots
from conformance.paths import parse_path
from tests.snapshot_factory import KEY_ID, kubernetes_snapshot, sagemaker_snapshot, secret

DEFAULT = load_contract()
BARE = load_contract(ContractConfig(extends="none"))


def diff(left: dict, right: dict, contract=DEFAULT, *, baseline: bool = False, labels=("k8s", "sagemaker")):
    return diff_snapshots(
        Side.of(labels[0], contract.normalize(left)),
        Side.of(labels[1], contract.normalize(right)),
        contract,
        comparison="~".join(labels),
        baseline=baseline,
    )


def by_path(divergences) -> dict[str, Any]:
    return {d.path: d for d in divergences}


def values(snapshot: dict, path: str) -> Any:
    for segment in parse_path(path):
        snapshot = snapshot[segment]
    return snapshot


def test_a_working_compat_layer_gives_no_divergence_under_the_default_contract():
    """Everything each platform legitimately adds (reference sheets) is known to the default contract."""
    assert diff(kubernetes_snapshot(), sagemaker_snapshot()) == []


def test_without_the_default_contract_the_platform_additions_show():
    paths = set(by_path(diff(kubernetes_snapshot(), sagemaker_snapshot(), BARE)))
    assert {"env.vars.TRAINING_JOB_NAME", "env.vars.KUBERNETES_SERVICE_HOST", "probe.label"} <= paths


def test_kinds_missing_extra_changed_and_type_changed():
    left, right = kubernetes_snapshot(), sagemaker_snapshot()
    right["env"]["vars"]["NEW_VAR"] = "1"
    del right["env"]["vars"]["LANG"]
    right["identity"]["umask"] = "0077"
    right["hyperparameters"]["sources"]["/etc/hp/hyperparameters.json"]["values"]["lr"] = "0.1"
    right["resources"]["cgroup"]["memory_limit_bytes"] = None
    found = by_path(diff(left, right))
    assert found["env.vars.NEW_VAR"].kind == "extra" and found["env.vars.NEW_VAR"].right == "1"
    assert found["env.vars.LANG"].kind == "missing" and found["env.vars.LANG"].left == "C.UTF-8"
    assert found["identity.umask"].kind == "changed"
    lr = found["hyperparameters.sources['/etc/hp/hyperparameters.json'].values.lr"]
    assert (lr.kind, lr.left, lr.right) == ("type_changed", 0.1, "0.1")
    # a null is a changed value (unlimited vs a limit), not a type
    assert found["resources.cgroup.memory_limit_bytes"].kind == "changed"


@pytest.mark.parametrize(
    ("left", "right"), [(1, 1.0), (1, True), (0, False), ([1], ["1"]), ({"a": 1}, {"a": True})]
)
def test_values_python_calls_equal_but_json_types_differ_are_divergences(left, right):
    a, b = kubernetes_snapshot(), kubernetes_snapshot()
    a["hyperparameters"]["sources"]["/etc/hp/hyperparameters.json"]["values"]["x"] = left
    b["hyperparameters"]["sources"]["/etc/hp/hyperparameters.json"]["values"]["x"] = right
    (divergence,) = diff(a, b, labels=("a", "b"))
    assert divergence.kind == "type_changed"


def test_entries_saying_they_do_not_exist_count_as_absent():
    left, right = kubernetes_snapshot(), kubernetes_snapshot()
    left["filesystem"]["paths"]["/data"] = {"type": "missing"}
    right["filesystem"]["paths"]["/data"] = {"type": "dir", "mode": "0755", "uid": 0, "gid": 0}
    right["hyperparameters"]["sources"]["/etc/hp/hyperparameters.json"] = {
        "exists": False,
        "format": None,
        "values": None,
        "error": None,
    }
    found = {d.path: d.kind for d in diff(left, right, labels=("a", "b"))}
    assert found == {
        "filesystem.paths['/data']": "extra",
        "hyperparameters.sources['/etc/hp/hyperparameters.json']": "missing",
    }


def test_sagemakers_own_hyperparameters_file_is_a_platform_addition():
    left, right = kubernetes_snapshot(), sagemaker_snapshot()
    sagemaker_file = "/opt/ml/input/config/hyperparameters.json"
    left["hyperparameters"]["sources"][sagemaker_file] = {
        "exists": False,
        "format": None,
        "values": None,
        "error": None,
    }
    right["hyperparameters"]["sources"][sagemaker_file] = {
        "exists": True,
        "format": "json",
        "values": {"epochs": "10"},
        "error": None,
    }
    assert diff(left, right) == []


def test_an_inserted_list_item_is_one_divergence_not_a_cascade():
    left, right = kubernetes_snapshot(), kubernetes_snapshot()
    right["runtime"]["python"]["sys_path"].insert(1, "/opt/extra")
    (divergence,) = diff(left, right, labels=("a", "b"))
    assert (divergence.path, divergence.kind, divergence.right) == (
        "runtime.python.sys_path[1]",
        "extra",
        "/opt/extra",
    )


def test_reordered_list_is_reported_but_a_declared_set_is_not():
    left, right = kubernetes_snapshot(), kubernetes_snapshot()
    right["runtime"]["python"]["sys_path"].reverse()
    right["identity"]["groups"].reverse()
    paths = {d.path.split("[")[0] for d in diff(left, right, labels=("a", "b"))}
    assert paths == {"runtime.python.sys_path"}


def test_set_elements_are_their_own_divergences():
    left, right = kubernetes_snapshot(), kubernetes_snapshot()
    right["identity"]["capabilities"]["bounding"] = ["CAP_KILL", "CAP_NET_RAW"]
    found = {(d.kind, d.left, d.right) for d in diff(left, right, labels=("a", "b"))}
    assert found == {("missing", "CAP_CHOWN", None), ("extra", None, "CAP_NET_RAW")}


def test_quantities_compare_by_bytes():
    left, right = kubernetes_snapshot(), kubernetes_snapshot()
    right["resources"]["shm"]["size_bytes"] = "64M"
    right["spark"]["defaults"]["spark.executor.memory"] = "4096m"
    assert diff(left, right, labels=("a", "b")) == []
    right["spark"]["defaults"]["spark.executor.memory"] = "2g"
    (divergence,) = diff(left, right, labels=("a", "b"))
    assert (divergence.kind, divergence.left, divergence.right) == ("changed", "4g", "2g")


def test_ignored_paths_and_the_harness_section_are_never_compared():
    left, right = kubernetes_snapshot(), kubernetes_snapshot()
    right["probe"]["timings_ms"] = {"env": 900}
    right["process"]["pid"] = 1
    right["harness"]["image_id"] = "sha256:other"
    assert diff(left, right, labels=("a", "b")) == []


def test_present_rule_lets_values_differ_but_not_disappear():
    left, right = kubernetes_snapshot(), sagemaker_snapshot()
    assert "credentials.aws.resolved_source" not in by_path(diff(left, right))  # web_identity vs container
    right["credentials"]["aws"]["resolved_source"] = None
    divergence = by_path(diff(left, right))["credentials.aws.resolved_source"]
    assert divergence.kind == "missing" and divergence.rule == "present: credentials.aws.resolved_source"


def test_platform_only_values_fail_on_the_other_platform():
    left, right = kubernetes_snapshot(), sagemaker_snapshot()
    right["env"]["vars"]["KUBERNETES_SERVICE_HOST"] = left["env"]["vars"].pop("KUBERNETES_SERVICE_HOST")
    left["env"]["vars"]["TRAINING_JOB_ARN"] = right["env"]["vars"].pop("TRAINING_JOB_ARN")
    found = by_path(diff(left, right))
    assert {path: d.kind for path, d in found.items()} == {
        "env.vars.KUBERNETES_SERVICE_HOST": "extra",
        "env.vars.TRAINING_JOB_ARN": "missing",
    }


def test_service_link_variables_of_any_service_are_kubernetes_only_but_a_users_port_is_not():
    left, right = kubernetes_snapshot(), sagemaker_snapshot()
    left["env"]["vars"].update(
        {
            "REDIS_SERVICE_HOST": "10.100.3.4",
            "REDIS_SERVICE_PORT": "6379",
            "REDIS_SERVICE_PORT_CLIENT": "6379",
            "REDIS_PORT": "tcp://10.100.3.4:6379",
            "REDIS_PORT_6379_TCP": "tcp://10.100.3.4:6379",
            "REDIS_PORT_6379_TCP_ADDR": "10.100.3.4",
            "APP_PORT": "8080",  # the user's own
        }
    )
    assert set(by_path(diff(left, right))) == {"env.vars.APP_PORT"}


def test_an_unknown_platform_says_why_platform_only_was_not_applied():
    left, right = kubernetes_snapshot(), sagemaker_snapshot()
    del right["harness"]
    right["context"]["platform"] = "docker"
    divergence = by_path(diff(left, right))["env.vars.TRAINING_JOB_NAME"]
    assert divergence.rule == "platform_only.sagemaker: env.vars.TRAINING_JOB_NAME"
    assert "platform is unknown" in divergence.hint and "probe detected docker" in divergence.hint


def test_the_probes_own_detection_stands_in_for_a_missing_harness_section():
    left, right = kubernetes_snapshot(), sagemaker_snapshot()
    del left["harness"], right["harness"]
    assert diff(left, right) == []


def test_baselines_compare_without_the_cross_platform_rules():
    before, after = sagemaker_snapshot(), sagemaker_snapshot()
    after["env"]["vars"]["TRAINING_JOB_ARN"] = "arn:aws:sagemaker:eu-west-1:123456789012:training-job/x"
    after["credentials"]["aws"]["resolved_source"] = "env"
    paths = set(by_path(diff(before, after, baseline=True, labels=("baseline", "sagemaker"))))
    assert paths == {"env.vars.TRAINING_JOB_ARN", "credentials.aws.resolved_source"}


def test_equivalent_paths_are_compared_across_sides():
    kubernetes_file, sagemaker_file = (
        "/etc/hp/hyperparameters.json",
        "/opt/ml/input/config/hyperparameters.json",
    )
    contract = load_contract(
        ContractConfig(
            equivalent=[
                Equivalence(
                    left=f"hyperparameters.sources['{kubernetes_file}']",
                    right=f"hyperparameters.sources['{sagemaker_file}']",
                    severity="critical",
                )
            ]
        )
    )
    left, right = kubernetes_snapshot(), sagemaker_snapshot()
    absent = {"exists": False, "format": None, "values": None, "error": None}
    left["hyperparameters"]["sources"][sagemaker_file] = absent
    right_sources = right["hyperparameters"]["sources"]
    right_sources[sagemaker_file], right_sources[kubernetes_file] = right_sources[kubernetes_file], absent
    assert diff(left, right, contract) == []
    right_sources[sagemaker_file]["values"]["epochs"] = "10"
    (divergence,) = diff(left, right, contract)
    assert divergence.path == f"hyperparameters.sources['{kubernetes_file}'].values.epochs"
    assert divergence.kind == "type_changed" and divergence.severity == "critical"
    assert divergence.rule == (
        f"equivalent: hyperparameters.sources['{kubernetes_file}'] = "
        f"hyperparameters.sources['{sagemaker_file}']"
    )


def test_severity_comes_from_the_category_then_the_last_matching_path_rule():
    contract = load_contract(
        ContractConfig.model_validate({"severity": {"paths": {"env.vars.LANG": "info"}}})
    )
    left, right = kubernetes_snapshot(), kubernetes_snapshot()
    right["env"]["vars"]["LANG"] = "en_US.UTF-8"
    right["env"]["vars"]["STATSD_HOST"] = "10.0.0.5"
    right["resources"]["cpu"]["count"] = 96
    found = by_path(diff(left, right, contract, labels=("a", "b")))
    assert found["env.vars.LANG"].severity == "info"
    assert found["env.vars.STATSD_HOST"].severity == "high"
    assert found["resources.cpu.count"].severity == "low"  # the default contract's path rule


def test_equal_secrets_hashed_with_one_key_compare_equal_and_different_ones_do_not():
    left, right = kubernetes_snapshot(), sagemaker_snapshot()
    right["env"]["vars"]["DB_PASSWORD"] = secret("canary-Zq81")
    divergence = by_path(diff(left, right))["env.vars.DB_PASSWORD"]
    assert divergence.kind == "changed" and "different value" in divergence.hint
    assert divergence.right == secret("canary-Zq81")
    assert "canary-Zq81" not in str(divergence.model_dump())


def test_secrets_under_different_keys_are_compared_for_presence_and_the_report_says_so():
    left, right = kubernetes_snapshot(), sagemaker_snapshot()
    other_key = b"o" * 32
    right["env"]["vars"]["DB_PASSWORD"] = secret("hunter2", other_key)
    right["credentials"]["secret_files"]["/etc/app/db.conf"]["hmac"] = secret("db", other_key)
    right["probe"]["hash"]["key_id"] = "fedcba987654"
    (divergence,) = diff(left, right)
    assert divergence.path == "probe.hash" and divergence.severity == "low"
    assert (divergence.left["key_id"], divergence.right["key_id"]) == (KEY_ID, "fedcba987654")
    assert "2 secret value(s) were compared for presence only" in divergence.hint
    assert "parity check" in divergence.hint
    del right["env"]["vars"]["DB_PASSWORD"]
    assert "env.vars.DB_PASSWORD" in by_path(diff(left, right))  # presence is still compared


def test_a_probe_without_a_key_makes_secrets_incomparable():
    left, right = kubernetes_snapshot(), sagemaker_snapshot()
    right["probe"]["hash"]["comparable"] = False  # it invented a key: its hashes match nothing
    right["env"]["vars"]["DB_PASSWORD"] = secret("hunter2", b"r" * 32)
    (divergence,) = diff(left, right)
    assert "sagemaker's probe had no key" in divergence.hint


def test_ids_name_the_problem_not_the_values():
    left, right = kubernetes_snapshot(), kubernetes_snapshot()
    right["identity"]["uid"] = 0
    first = diff(left, right, labels=("a", "b"))[0].id
    right["identity"]["uid"] = 4242
    assert diff(left, right, labels=("a", "b"))[0].id == first
    assert first.startswith("identity-")


def test_every_divergence_field_is_filled():
    left, right = kubernetes_snapshot(), sagemaker_snapshot()
    right["identity"]["uid"] = 0
    (divergence,) = diff(left, right)
    assert divergence.model_dump() == {
        "id": divergence.id,
        "comparison": "k8s~sagemaker",
        "category": "identity",
        "path": "identity.uid",
        "kind": "changed",
        "left": 1000,
        "right": 0,
        "severity": "high",
        "waived": False,
        "waiver": None,
        "hint": divergence.hint,
        "rule": None,
    }
    assert "runAsUser" in divergence.hint


# ---- properties ------------------------------------------------------------------------------------------

keys = st.sampled_from(["a", "b", "c", "HOME", "PATH", "x y", "/opt/ml", "it's"])
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, 1.0, 2.5]),
    st.sampled_from(["", "a", "1", "0.5", "64M", "67108864", secret("s"), secret("t")]),
)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
    max_leaves=20,
)
sections = st.sampled_from(
    ["env", "identity", "resources", "network", "errors", "filesystem", "hyperparameters"]
)


@st.composite
def snapshots(draw) -> dict[str, Any]:
    snapshot = {section: draw(trees) for section in draw(st.sets(sections, max_size=4))}
    snapshot["probe"] = {
        "hash": {
            "algorithm": "hmac-sha256",
            "comparable": draw(st.booleans()),
            "key_id": draw(st.sampled_from(["k1", "k2"])),
        }
    }
    snapshot["context"] = {"platform": draw(st.sampled_from(["kubernetes", "sagemaker-training", "docker"]))}
    return snapshot


@st.composite
def related_pairs(draw) -> tuple[dict, dict]:
    """Two snapshots that share most of their content, so the diff has something to align."""
    left = draw(snapshots())
    right = copy.deepcopy(left)
    for section in draw(st.lists(st.sampled_from(sorted(left)), max_size=3)):
        right[section] = draw(trees)
    if draw(st.booleans()):
        right.update(draw(snapshots()))
    return left, right


contracts = st.sampled_from([DEFAULT, BARE])
MIRROR = {"missing": "extra", "extra": "missing", "changed": "changed", "type_changed": "type_changed"}


def shape(divergences, mirrored: bool = False) -> list[tuple]:
    return sorted(
        (
            d.path,
            MIRROR[d.kind] if mirrored else d.kind,
            repr(d.right if mirrored else d.left),
            repr(d.left if mirrored else d.right),
        )
        for d in divergences
    )


@given(snapshots(), contracts)
def test_a_snapshot_has_no_divergence_from_itself(snapshot, contract):
    assert diff(snapshot, copy.deepcopy(snapshot), contract, labels=("a", "b")) == []


@given(related_pairs(), contracts)
def test_diff_b_a_mirrors_diff_a_b(pair, contract):
    left, right = pair
    forward = diff(left, right, contract, labels=("a", "b"))
    backward = diff(right, left, contract, labels=("b", "a"))
    assert shape(backward) == shape(forward, mirrored=True)


@given(related_pairs(), contracts)
def test_every_divergence_path_exists_in_one_of_the_inputs(pair, contract):
    left, right = (contract.normalize(side) for side in pair)
    for divergence in diff(*pair, contract, labels=("a", "b")):
        assert _exists(left, divergence.path) or _exists(right, divergence.path), divergence.path


def _exists(tree: Any, path: str) -> bool:
    for segment in parse_path(path):
        if (
            isinstance(segment, int)
            and isinstance(tree, list)
            and segment < len(tree)
            or isinstance(segment, str)
            and isinstance(tree, dict)
            and segment in tree
        ):
            tree = tree[segment]
        else:
            return False
    return True


def _reordered(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {key: _reordered(tree[key]) for key in reversed(list(tree))}
    if isinstance(tree, list):
        return [_reordered(item) for item in tree]
    return tree


@given(related_pairs(), contracts)
def test_ids_are_stable_under_key_reordering(pair, contract):
    left, right = pair
    ids = sorted(d.id for d in diff(left, right, contract, labels=("a", "b")))
    assert sorted(d.id for d in diff(_reordered(left), _reordered(right), contract, labels=("a", "b"))) == ids
