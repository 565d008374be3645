"""Golden baselines: `baselines/<suite>/<target>.json`, one normalized snapshot per target, reviewed in PRs.

The workflow is syrupy's: a missing baseline fails the check (with the command that creates it) and is
never created silently; `--update-baselines` writes new and changed baselines — each atomically, so an
interrupted update leaves the old file intact — and says what changed; baselines no target uses are
reported, and deleted only with `--prune-baselines`.

A baseline is the target's normalized snapshot in canonical JSON (conformance.snapshot.dumps_snapshot),
without what cannot be compared with a later run: secret hashes become `hmac-sha256:<SECRET>` and the hash
key id `<KEY_ID>` (every run has its own key), and `harness` keeps only what names the target.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from conformance.atomic import write_atomically
from conformance.config import LoadedConfig
from conformance.contract import Contract
from conformance.differ import Side, diff_snapshots
from conformance.errors import BadInput, InfrastructureError
from conformance.normalize import MASKED_KEY_ID, mask_secrets
from conformance.snapshot import SCHEMA, dumps_snapshot, snapshot_json_schema

BASELINE_SUFFIX = ".json"
# The harness fields that say which target a baseline belongs to; the rest changes with every run or build.
KEPT_HARNESS_FIELDS = ("target", "platform", "engine", "image")

Status = Literal["new", "changed", "unchanged", "unused", "deleted"]


@dataclass(frozen=True)
class BaselineChange:
    """What `--update-baselines` did (or would do) to one baseline file."""

    target: str | None
    path: Path
    status: Status
    changed_paths: int = 0

    def describe(self) -> str:
        where = display_path(self.path)
        if self.status == "changed":
            return f"{where}: changed ({self.changed_paths} path{'s' if self.changed_paths != 1 else ''})"
        if self.status == "unused":
            return (
                f"{where}: unused (no target '{self.path.stem}'; "
                "delete it with --update-baselines --prune-baselines)"
            )
        return f"{where}: {self.status}"


def baseline_file(loaded: LoadedConfig, target: str) -> Path:
    return loaded.baselines_root / f"{target}{BASELINE_SUFFIX}"


def baseline_form(normalized: dict[str, Any]) -> dict[str, Any]:
    """What is stored as a target's baseline, from its normalized snapshot."""
    form = mask_secrets({key: value for key, value in normalized.items() if key != "harness"})
    probe_hash = form.get("probe", {}).get("hash")
    if isinstance(probe_hash, dict):
        probe_hash["key_id"] = MASKED_KEY_ID
    harness = normalized.get("harness")
    if isinstance(harness, dict):
        form["harness"] = {key: harness[key] for key in KEPT_HARNESS_FIELDS if key in harness}
    return form


def load_baseline(path: Path) -> dict[str, Any] | None:
    """The baseline at `path`, None when there is none; a malformed file raises BadInput naming it.

    A baseline is normalized (placeholders such as `<PID>` stand where a raw snapshot has numbers), so it
    is checked for the snapshot's shape — JSON object, schema version, every section of the right type —
    rather than against the raw snapshot's full schema.
    """
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(shown, None, f"cannot read the baseline: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(
            shown, f"line {exc.lineno}, column {exc.colno}", f"baseline is not valid JSON: {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise BadInput(shown, None, f"a baseline is a JSON object, found {type(data).__name__}")
    if data.get("schema") != SCHEMA:
        raise BadInput(
            shown, "schema", f"unknown snapshot schema {data.get('schema')!r} (this parity reads {SCHEMA})"
        )
    schema = snapshot_json_schema()
    for section in schema.get("required", []):
        if section not in data:
            raise BadInput(shown, section, "missing section: not a baseline written by parity")
    sections = schema.get("properties", {})
    for section, value in data.items():
        if section not in sections:
            raise BadInput(shown, section, "unknown section: not a baseline written by parity")
        expected = sections[section].get("type")
        if expected and not _json_type_is(value, expected):
            raise BadInput(shown, section, f"expected {expected}, found {type(value).__name__}")
    return data


def _json_type_is(value: Any, expected: str | list[str]) -> bool:
    python_types = {"object": dict, "array": list, "string": str}
    names = [expected] if isinstance(expected, str) else expected
    return any(isinstance(value, python_types.get(name, object)) for name in names)


def unused_baselines(loaded: LoadedConfig) -> list[Path]:
    """Baseline files in this suite's directory that belong to no target of parity.yaml."""
    root = loaded.baselines_root
    if not root.is_dir():
        return []
    return sorted(
        path
        for path in root.glob(f"*{BASELINE_SUFFIX}")
        if not path.name.startswith(".") and path.stem not in loaded.config.targets
    )


def update_baselines(
    loaded: LoadedConfig, forms: dict[str, dict[str, Any]], contract: Contract, *, prune: bool
) -> list[BaselineChange]:
    """Write new and changed baselines for `forms` (target → baseline form), report the rest.

    A baseline counts as changed when the contract finds a divergence between it and the new form, so a
    run that differs only in ignored or masked values leaves the file (and the PR) untouched.
    """
    changes = []
    for target, form in forms.items():
        path = baseline_file(loaded, target)
        old = load_baseline(path)
        if old is None:
            status: Status = "new"
            changed_paths = 0
        else:
            divergences = diff_snapshots(
                Side.of(str(path), old),
                Side.of(target, form),
                contract,
                comparison=f"baseline:{target}",
                baseline=True,
            )
            changed_paths = len({divergence.path for divergence in divergences})
            status = "changed" if divergences else "unchanged"
        if status != "unchanged":
            try:
                write_atomically(path, dumps_snapshot(form))
            except OSError as exc:
                raise InfrastructureError(
                    f"cannot write baseline {path}: {exc.strerror or exc}",
                    "check that the baselines directory is writable; the previous baseline is unchanged",
                ) from None
        changes.append(BaselineChange(target, path, status, changed_paths))
    for path in unused_baselines(loaded):
        if prune:
            path.unlink()
        changes.append(BaselineChange(None, path, "deleted" if prune else "unused"))
    return changes


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when it is under it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
