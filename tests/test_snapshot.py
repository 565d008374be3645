"""conformance.snapshot: finding the framed snapshot in logs, the schema check, loading, canonical writing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from conformance.cli import cli
from conformance.errors import BadInput, InfrastructureError
from conformance.snapshot import (
    FRAME_BEGIN,
    FRAME_END,
    SCHEMA,
    dumps_snapshot,
    extract_snapshot,
    load_snapshot,
    snapshot_json_schema,
    validate_snapshot,
)
from tests.probe_support import COLLECTOR_SECTIONS


def minimal_snapshot(**changes) -> dict:
    snapshot = {name: {} for name in COLLECTOR_SECTIONS}
    snapshot.update(
        schema=SCHEMA,
        probe={
            "version": "1.0.0",
            "hash": {"algorithm": "hmac-sha256", "comparable": True, "key_id": "abcdef012345"},
        },
        errors=[],
        truncated=[],
        excluded={"paths": [], "argv_items": 3, "env": [], "note": "n"},
    )
    snapshot["env"] = {
        "vars": {"HOME": "/root", "LATIN1": {"base64": "Y2Fm6Q=="}, "TOKEN": "hmac-sha256:" + "0" * 64}
    }
    snapshot.update(changes)
    return snapshot


def framed(snapshot: dict) -> str:
    return f"{FRAME_BEGIN}\n{json.dumps(snapshot, indent=1)}\n{FRAME_END}\n"


def test_extract_from_noisy_logs_with_crlf_and_a_partial_line_before_the_marker():
    snapshot = minimal_snapshot()
    logs = "compat: fetching credentials\ncompat: exporting 12 variables\nno newline here" + framed(snapshot)
    logs = logs.replace("\n", "\r\n") + "compat: workload exited\n"
    assert extract_snapshot(logs.encode(), "container main") == snapshot


def test_extract_takes_the_last_frame_when_a_container_printed_twice():
    first, second = minimal_snapshot(), minimal_snapshot()
    second["probe"]["version"] = "second"
    assert (
        extract_snapshot(framed(first) + "restarting\n" + framed(second), "job")["probe"]["version"]
        == "second"
    )


def test_no_frame_is_an_infrastructure_error_with_the_last_lines():
    logs = "\n".join(f"line {n}" for n in range(50)) + "\nexec: python3: not found\n"
    with pytest.raises(InfrastructureError) as caught:
        extract_snapshot(logs, "container main of target k8s")
    assert "no snapshot in the output of container main of target k8s" in caught.value.problem
    assert caught.value.details.splitlines()[-1] == "exec: python3: not found"
    assert len(caught.value.details.splitlines()) == 20


def test_truncated_frame_says_the_probe_was_cut_off():
    text = framed(minimal_snapshot())
    with pytest.raises(InfrastructureError) as caught:
        extract_snapshot(text[: len(text) // 2], "job train-1")
    assert "cut off (no end marker)" in caught.value.problem and caught.value.exit_code == 3


def test_interleaved_output_inside_the_frame_is_reported_with_its_position():
    body = json.dumps(minimal_snapshot(), indent=1).splitlines()
    body.insert(3, "sidecar: listening on 8125")
    with pytest.raises(InfrastructureError) as caught:
        extract_snapshot(FRAME_BEGIN + "\n" + "\n".join(body) + "\n" + FRAME_END, "pod")
    assert "not valid JSON (line 5," in caught.value.problem


def test_extract_refuses_a_frame_that_is_not_a_valid_snapshot():
    with pytest.raises(InfrastructureError) as caught:
        extract_snapshot(framed({**minimal_snapshot(), "env": []}), "pod")
    assert "printed an invalid snapshot" in caught.value.problem and "env" in caught.value.problem


def test_unknown_schema_version_is_refused_with_a_clear_message():
    with pytest.raises(BadInput) as caught:
        validate_snapshot(minimal_snapshot(schema="parity.snapshot/v2"), "new.json")
    assert caught.value.one_line() == (
        "new.json: schema: unknown snapshot schema 'parity.snapshot/v2' "
        "(this parity reads parity.snapshot/v1)"
    )
    assert caught.value.exit_code == 2


def test_a_json_object_without_schema_is_not_a_snapshot():
    with pytest.raises(BadInput, match="schema: missing: not a parity snapshot"):
        validate_snapshot({"env": {}}, "other.json")
    with pytest.raises(BadInput, match="expected a JSON object, got list"):
        validate_snapshot([], "list.json")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"env": {"vars": {"HOME": 42}}}, "env.vars.HOME"),
        ({"identity": "root"}, "identity"),
        ({"surprise": {}}, "(top level)"),
        ({"errors": [{"collector": "env"}]}, "errors[0]"),
        (
            {"filesystem": {"paths": {"/opt/ml": {"type": "dir", "mode": "755"}}}},
            "filesystem.paths['/opt/ml'].mode",
        ),
    ],
)
def test_schema_violations_name_the_snapshot_path(change, field):
    with pytest.raises(BadInput) as caught:
        validate_snapshot(minimal_snapshot(**change), "bad.json")
    assert caught.value.field == field and caught.value.source == "bad.json"


def test_sections_tolerate_unknown_keys_and_missing_keys():
    snapshot = minimal_snapshot(identity={"uid": 0, "added_by_a_newer_probe": {"x": 1}}, network={})
    assert validate_snapshot(snapshot, "newer.json") is snapshot
    missing_section = minimal_snapshot()
    del missing_section["network"]
    with pytest.raises(BadInput, match="network"):
        validate_snapshot(missing_section, "old.json")


def test_load_truncated_json_names_line_and_column(tmp_path: Path):
    path = tmp_path / "snap.json"
    path.write_text(dumps_snapshot(minimal_snapshot())[:60])
    with pytest.raises(BadInput) as caught:
        load_snapshot(path)
    assert caught.value.source == str(path) and caught.value.field.startswith("line ")
    assert ", column " in caught.value.field and "invalid JSON" in caught.value.problem
    assert "\n" not in caught.value.one_line()


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "file not found"),
        (b"", "empty file"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'"just a string"', "expected a JSON object"),
    ],
)
def test_load_failures_are_one_line_bad_input(tmp_path: Path, content, problem):
    path = tmp_path / "snap.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadInput, match=problem) as caught:
        load_snapshot(path)
    assert caught.value.exit_code == 2 and str(path) in caught.value.one_line()


def test_dumps_is_canonical_and_round_trips(tmp_path: Path):
    snapshot = minimal_snapshot()
    snapshot["env"]["vars"]["GREETING"] = "café ☕"
    text = dumps_snapshot(snapshot)
    assert text.endswith("}\n") and "café ☕" in text
    assert text == dumps_snapshot(json.loads(text))
    keys = [line.strip().split('"')[1] for line in text.splitlines() if line.startswith('  "')]
    assert keys == sorted(keys)
    path = tmp_path / "snap.json"
    path.write_text(text, encoding="utf-8")
    assert load_snapshot(path) == snapshot


def test_the_schema_is_valid_draft_2020_12_and_printed_by_the_cli():
    Draft202012Validator.check_schema(snapshot_json_schema())
    result = CliRunner().invoke(cli, ["schema", "snapshot"])
    assert result.exit_code == 0 and json.loads(result.output) == snapshot_json_schema()
