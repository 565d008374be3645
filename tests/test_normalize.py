"""Normalization masks what changes from run to run, nothing else, and is idempotent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.contract import load_contract
from conformance.differ import Side, diff_snapshots
from conformance.normalize import MaskRule, json_type, mask_secrets, mask_text, normalize, parse_quantity
from tests.snapshot_factory import kubernetes_snapshot, sagemaker_snapshot, secret

DEFAULT = load_contract()


def test_kubernetes_run_values_are_masked_with_named_placeholders():
    normalized = DEFAULT.normalize(kubernetes_snapshot())
    assert normalized["probe"]["started_at"] == "<TIMESTAMP>"
    assert normalized["probe"]["duration_ms"] == "<DURATION>"
    assert normalized["process"]["pid"] == "<PID>"
    assert normalized["network"]["hostname"] == "<HOSTNAME>"  # the pod name, with its random suffix
    assert normalized["env"]["vars"]["HOSTNAME"] == "<HOSTNAME>"
    assert normalized["network"]["etc_hostname"] == "<HOSTNAME>\n"
    assert normalized["network"]["hosts"][1] == {"ip": "<IP>", "names": ["<HOSTNAME>"]}
    assert normalized["metrics"]["test_metric"]["payload"] == "parity.probe.test:1|c|#parity_nonce:<NONCE>"
    assert normalized["metrics"]["test_metric"]["nonce"] == "<NONCE>"
    # kubelet's atomic-writer directory in a key
    assert "/var/run/secrets/kubernetes.io/serviceaccount/..<TIMESTAMP>" in normalized["filesystem"]["paths"]


def test_sagemaker_run_values_are_masked_with_named_placeholders():
    normalized = DEFAULT.normalize(sagemaker_snapshot())
    variables = normalized["env"]["vars"]
    assert variables["TRAINING_JOB_NAME"] == "<JOB_NAME>"
    assert variables["TRAINING_JOB_ARN"].endswith(":training-job/<JOB_NAME>")
    assert variables["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] == "/v2/credentials/<UUID>"
    assert variables["HOSTNAME"] == "<HOSTNAME>"  # ip-10-0-119-27.ec2.internal


def test_meaningful_values_are_left_alone():
    normalized = DEFAULT.normalize(kubernetes_snapshot())
    assert normalized["env"]["vars"]["STATSD_HOST"] == "localhost"
    assert (
        normalized["env"]["vars"]["KUBERNETES_SERVICE_HOST"] == "10.100.0.1"
    )  # IPs outside network.hosts stay
    assert normalized["network"]["hosts"][0] == {"ip": "127.0.0.1", "names": ["localhost"]}
    assert normalized["identity"]["uid"] == 1000
    assert normalized["process"]["is_pid1"] is False


def test_secret_hashes_are_never_masked_and_the_harness_section_is_copied_as_is():
    snapshot = kubernetes_snapshot()
    rules = [MaskRule.build("HEX", "[0-9a-f]{8,}", ["*"])]
    normalized = normalize(snapshot, rules)
    assert normalized["env"]["vars"]["DB_PASSWORD"] == secret("hunter2")
    assert normalized["harness"] == snapshot["harness"]


def test_two_runs_of_one_target_compare_equal_after_normalization():
    first, second = kubernetes_snapshot(), kubernetes_snapshot()
    second["probe"]["started_at"] = "2025-11-23T08:00:01Z"
    second["probe"]["duration_ms"] = 977
    second["process"]["pid"], second["process"]["ppid"] = 311, 310
    second["metrics"]["test_metric"].update(nonce="77aa", payload="parity.probe.test:1|c|#parity_nonce:77aa")
    pod = "trainer-7d9f8-q9k2w"  # a new pod of the same Deployment: new suffix, new IP
    second["network"].update(hostname=pod, fqdn=pod, etc_hostname=pod + "\n")
    second["network"]["hosts"][1] = {"ip": "10.1.9.77", "names": [pod]}
    second["env"]["vars"]["HOSTNAME"] = pod
    divergences = diff_snapshots(
        Side.of("before", DEFAULT.normalize(first)),
        Side.of("after", DEFAULT.normalize(second)),
        DEFAULT,
        comparison="baseline:k8s",
        baseline=True,
    )
    assert divergences == []


def test_keys_whose_masked_forms_collide_keep_their_original_text():
    rule = MaskRule.build("N", r"\d+", ["filesystem"])
    snapshot = {"filesystem": {"paths": {"/data/1": "a", "/data/2": "b", "/logs/7": "c"}}}
    assert normalize(snapshot, [rule], mask_run_identities=False)["filesystem"]["paths"] == {
        "/data/1": "a",
        "/data/2": "b",
        "/logs/<N>": "c",
    }


def test_a_rule_covering_one_variable_does_not_rename_the_variable():
    rule = MaskRule.build("JOB", ".+", ["env.vars.JOB_ID"])
    snapshot = {"env": {"vars": {"JOB_ID": "job-1234", "OTHER": "job-1234"}}}
    assert normalize(snapshot, [rule], mask_run_identities=False)["env"]["vars"] == {
        "JOB_ID": "<JOB>",
        "OTHER": "job-1234",
    }


def test_numbers_become_placeholders_only_when_the_rule_matches_them_whole():
    snapshot = {"process": {"pid": 4242, "ppid": 1.5}}
    rule = MaskRule.build("PID", r"\d+", ["process"])
    assert normalize(snapshot, [rule], mask_run_identities=False)["process"] == {"pid": "<PID>", "ppid": 1.5}


def test_empty_matches_do_not_insert_placeholders():
    assert mask_text("abc", [MaskRule.build("X", "z*", ["*"])]) == "abc"


def test_masking_in_baselines_hides_secret_hashes():
    assert mask_secrets({"a": [secret("x")], "b": "plain"}) == {"a": ["hmac-sha256:<SECRET>"], "b": "plain"}


# ---- idempotence -----------------------------------------------------------------------------------------

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)
snapshots = st.fixed_dictionaries(
    {
        "env": st.fixed_dictionaries(
            {"vars": st.dictionaries(st.text(max_size=10), st.text(max_size=40), max_size=6)}
        )
    },
    optional={
        "network": st.fixed_dictionaries({"hostname": st.text(max_size=20)}, optional={"hosts": json_values}),
        "process": json_values,
        "filesystem": json_values,
    },
)
patterns = st.sampled_from(
    [r"\d+", "[a-f]+", "ab|ba", "^x", "y$", r"\bq\w*", "(?<=-)[a-z]{2}", ".", "<", "[A-Z]+"]
)
rules = st.lists(
    st.builds(
        lambda name, pattern, scope: MaskRule.build(name, pattern, [scope]),
        st.sampled_from(["A", "B", "LONG_NAME", "PID"]),
        patterns,
        st.sampled_from(["*", "env", "env.vars", "network", "process", "filesystem"]),
    ),
    max_size=4,
)


@given(snapshots, rules)
def test_normalize_is_idempotent(snapshot, mask_rules):
    once = normalize(snapshot, mask_rules)
    assert normalize(once, mask_rules) == once


@given(snapshots)
def test_normalize_with_the_default_contract_is_idempotent(snapshot):
    once = DEFAULT.normalize(snapshot)
    assert DEFAULT.normalize(once) == once


@given(st.text(max_size=40), rules)
def test_mask_text_is_idempotent(text, mask_rules):
    once = mask_text(text, mask_rules)
    assert mask_text(once, mask_rules) == once


# ---- value semantics -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("64M", 67108864),
        ("67108864", 67108864),
        ("65536k", 67108864),
        ("64Mi", 67108864),
        ("64MiB", 67108864),
        (" 4g ", 4 * 1024**3),
        ("1.5k", 1536),
        (67108864, 67108864),
        (2.0, 2),
        ("512b", 512),
        ("lots", None),
        ("64 apples", None),
        (True, None),
        (None, None),
        (1.5, None),
    ],
)
def test_quantities_with_units_are_read_as_bytes(value, expected):
    assert parse_quantity(value) == expected


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "null"),
        (True, "boolean"),
        (1, "integer"),
        (1.0, "number"),
        ("1", "string"),
        ([], "array"),
        ({}, "object"),
    ],
)
def test_json_types_keep_integers_and_booleans_apart(value, name):
    assert json_type(value) == name


def test_a_contract_normalize_rule_must_be_a_valid_regular_expression():
    from pydantic import ValidationError

    from conformance.config import NormalizeRule

    with pytest.raises(ValidationError, match="not a valid regular expression"):
        NormalizeRule(name="X", pattern="(")
