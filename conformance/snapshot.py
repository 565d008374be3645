"""The snapshot on the harness side: find it in logs, check it against the schema, load and write it.

The probe (probes/parity_probe.py) prints one JSON document between two marker lines; engines hand the
container's or job's output to `extract_snapshot`, files go through `load_snapshot`, and everything that
writes a snapshot (baselines, `--out`) uses `dumps_snapshot` so the same snapshot is always the same bytes.
The format is described in docs/SNAPSHOT.md; `snapshot_json_schema()` is its JSON Schema.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

import probes
from conformance.errors import BadInput, InfrastructureError
from conformance.paths import format_path

SCHEMA = "parity.snapshot/v1"
PROBE_PATH = Path(probes.__file__).with_name("parity_probe.py")
# The probe is stdlib-only and cannot import these: tests hold the two copies equal.
FRAME_BEGIN = "===== PARITY SNAPSHOT BEGIN v1 ====="
FRAME_END = "===== PARITY SNAPSHOT END v1 ====="
SCHEMA_FILE = Path(__file__).with_name("schemas") / "snapshot.schema.json"
LOG_TAIL_LINES = 20


@lru_cache(maxsize=1)
def snapshot_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a `parity.snapshot/v1` document."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(snapshot_json_schema())


def validate_snapshot(data: Any, source: str) -> dict[str, Any]:
    """`data` if it is a valid snapshot, else BadInput naming `source` and the first offending path."""
    if not isinstance(data, dict):
        raise BadInput(
            source, None, f"not a parity snapshot (expected a JSON object, got {type(data).__name__})"
        )
    version = data.get("schema")
    if version is None:
        raise BadInput(source, "schema", f"missing: not a parity snapshot (this parity reads {SCHEMA})")
    if version != SCHEMA:
        raise BadInput(source, "schema", f"unknown snapshot schema {version!r} (this parity reads {SCHEMA})")
    error = best_match(_validator().iter_errors(data))
    if error is not None:
        field = format_path(error.absolute_path) or "(top level)"
        raise BadInput(source, field, f"does not match the snapshot schema: {_short(error.message)}")
    return data


def extract_snapshot(output: str | bytes, source: str) -> dict[str, Any]:
    """The validated snapshot framed in a container's or job's output (other log lines may surround it).

    When the output holds several frames the last one counts (a restarted container prints again).
    Raises InfrastructureError, with the output's last lines as details, when there is no complete frame:
    the probe never ran, crashed, or was killed while printing.
    """
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
    tail = _tail(text)
    begin = text.rfind(FRAME_BEGIN)
    if begin < 0:
        raise InfrastructureError(
            f"no snapshot in the output of {source}: the probe did not run or died before printing",
            "check that the image's ENTRYPOINT ends by exec-ing its arguments and that python3 is on its "
            "PATH "
            "(the last output lines follow)",
            tail,
        )
    body_start = text.find("\n", begin)
    end = text.find(FRAME_END, body_start) if body_start >= 0 else -1
    if end < 0:
        raise InfrastructureError(
            f"the snapshot in the output of {source} is cut off (no end marker): the probe was killed or "
            "timed out while printing",
            "raise the target's timeout_seconds, or look for an out-of-memory kill "
            "(the last output lines follow)",
            tail,
        )
    try:
        data = json.loads(text[body_start:end])
    except json.JSONDecodeError as exc:
        raise InfrastructureError(
            f"the snapshot framed in the output of {source} is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno} of the frame): other output was interleaved with it",
            "make the entrypoint's background processes write to stderr or a file, not stdout",
            tail,
        ) from None
    try:
        return validate_snapshot(data, source)
    except BadInput as exc:
        raise InfrastructureError(
            f"the probe in {source} printed an invalid snapshot ({exc.one_line()})",
            "the probe and this parity disagree on the format: use the probe that ships with this parity",
            tail,
        ) from None


def load_snapshot(path: str | Path) -> dict[str, Any]:
    """Read, parse and validate a snapshot file; every failure is one BadInput line naming the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(path, None, "file not found") from None
    except IsADirectoryError:
        raise BadInput(path, None, "is a directory, not a snapshot file") from None
    except OSError as exc:
        raise BadInput(path, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(path, f"byte {exc.start}", "not UTF-8 text: not a snapshot file") from None
    if not text.strip():
        raise BadInput(path, None, "empty file: not a snapshot")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(path, f"line {exc.lineno}, column {exc.colno}", f"invalid JSON: {exc.msg}") from None
    return validate_snapshot(data, str(path))


def dumps_snapshot(data: dict[str, Any]) -> str:
    """Canonical JSON: sorted keys, two-space indent, UTF-8 characters as they are, a trailing newline."""
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _tail(text: str) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-LOG_TAIL_LINES:])


def _short(message: str, limit: int = 200) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"
