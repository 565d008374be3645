"""Normalization: mask volatile values with named placeholders, and the value semantics of comparison.

Masking makes two runs of the same target compare equal: a value that changes on every run (a timestamp,
a pod's random suffix, a credentials-endpoint UUID, a PID) is replaced by `<NAME>`, where NAME is the
rule's name. Rules come from the contract (`normalize:` in the default contract and in parity.yaml); each
is a regular expression applied to string values, to numbers (as their decimal text; a rule that matches
the whole text turns the number into the placeholder) and to the keys of mappings it covers. Secret hashes
(`hmac-sha256:…`) are never masked, and text that already is a placeholder is never matched again, so the
rules are applied until nothing changes and normalization is idempotent by construction.

The rest of this module is how values compare (the differ uses it): JSON types, canonical forms for set
elements, byte quantities with units, and which strings are secret hashes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from conformance.paths import Glob, child_path, compile_glob

PLACEHOLDER = re.compile(r"<[A-Za-z0-9_]+>")
SECRET_PREFIX = "hmac-sha256:"
# What a secret hash becomes in a baseline: its run's key is gone, so only its presence can be compared.
MASKED_SECRET = SECRET_PREFIX + "<SECRET>"
MASKED_KEY_ID = "<KEY_ID>"
_SECRET_HASH = re.compile(r"hmac-sha256:(?:[0-9a-f]{64}|<SECRET>)")


@dataclass(frozen=True)
class MaskRule:
    """Replace every match of `regex` with `<name>` in values (and keys) under any of the `scope` globs."""

    name: str
    regex: re.Pattern[str]
    scope: tuple[Glob, ...]

    @property
    def placeholder(self) -> str:
        return f"<{self.name}>"

    @classmethod
    def build(cls, name: str, pattern: str, scope: Iterable[str], flags: int = 0) -> MaskRule:
        return cls(name=name, regex=re.compile(pattern, flags), scope=tuple(compile_glob(p) for p in scope))


# Values that identify one run of a target and appear verbatim elsewhere in the snapshot. Each is read from
# the snapshot itself and masked wherever it occurs as a whole name (not inside a longer name).
#   network.hostname: kubelet/containerd make it the pod name (kubernetes-contract.md §1 HOSTNAME);
#     SageMaker the EC2 private DNS name ip-…ec2.internal (sagemaker-contract.md §1 Hostname).
#   env.vars.TRAINING_JOB_NAME: set by SageMaker, often with a timestamp; TRAINING_JOB_ARN holds it
#     lower-cased (sagemaker-contract.md §1 Environment variables), hence case-insensitive.
_RUN_IDENTITIES: tuple[tuple[tuple[str, ...], str, tuple[str, ...], int], ...] = (
    (("network", "hostname"), "HOSTNAME", ("network", "env.vars.HOSTNAME"), 0),
    (
        ("env", "vars", "TRAINING_JOB_NAME"),
        "JOB_NAME",
        ("env", "filesystem", "hyperparameters"),
        re.IGNORECASE,
    ),
)
_NAME_BOUNDARY_BEFORE = r"(?<![A-Za-z0-9-])"
_NAME_BOUNDARY_AFTER = r"(?![A-Za-z0-9-])"


def run_identity_rules(snapshot: dict[str, Any]) -> list[MaskRule]:
    """Mask rules for the names that identify this run (its hostname, its job name), read from `snapshot`."""
    rules = []
    for source, name, scope, flags in _RUN_IDENTITIES:
        value: Any = snapshot
        for key in source:
            value = value.get(key) if isinstance(value, dict) else None
        if not isinstance(value, str) or not value or PLACEHOLDER.fullmatch(value) or is_secret(value):
            continue
        names = [value] + ([value.split(".", 1)[0]] if "." in value else [])
        alternatives = "|".join(re.escape(candidate) for candidate in names)
        pattern = f"{_NAME_BOUNDARY_BEFORE}(?:{alternatives}){_NAME_BOUNDARY_AFTER}"
        rules.append(MaskRule.build(name, pattern, scope, flags))
    return rules


def mask_text(text: str, rules: Sequence[MaskRule]) -> str:
    """Apply `rules` to `text` until nothing changes, never touching existing placeholders."""
    if text.startswith(SECRET_PREFIX):
        return text
    while True:
        masked = text
        for rule in rules:
            if rule.regex.search(masked):
                masked = _substitute_outside_placeholders(masked, rule)
        if masked == text:
            return masked
        text = masked


def _substitute_outside_placeholders(text: str, rule: MaskRule) -> str:
    def replace(match: re.Match[str]) -> str:
        return rule.placeholder if match.end() > match.start() else match.group()

    parts: list[str] = []
    position = 0
    for placeholder in PLACEHOLDER.finditer(text):
        parts.append(rule.regex.sub(replace, text[position : placeholder.start()]))
        parts.append(placeholder.group())
        position = placeholder.end()
    parts.append(rule.regex.sub(replace, text[position:]))
    return "".join(parts)


def _mask_scalar(value: Any, rules: Sequence[MaskRule]) -> Any:
    if isinstance(value, str):
        return mask_text(value, rules)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = json.dumps(value)
        for rule in rules:
            if rule.regex.fullmatch(text):
                return rule.placeholder
    return value


def normalize(
    snapshot: dict[str, Any], rules: Sequence[MaskRule], *, mask_run_identities: bool = True
) -> dict:
    """A masked copy of `snapshot`. The `harness` section (never compared) is copied unchanged."""
    all_rules = list(rules) + (run_identity_rules(snapshot) if mask_run_identities else [])
    active = [rule for rule in all_rules if any(glob.matches_everything for glob in rule.scope)]
    pending = [rule for rule in all_rules if rule not in active]
    compared = {key: value for key, value in snapshot.items() if key != "harness"}
    result = _normalize_value(compared, "", active, pending)
    if "harness" in snapshot:
        result["harness"] = json.loads(json.dumps(snapshot["harness"]))
    return result


def _normalize_value(value: Any, path: str, active: list[MaskRule], pending: list[MaskRule]) -> Any:
    """`value` masked by the `active` rules; `pending` rules start applying where their scope matches."""
    if isinstance(value, dict):
        keys = _masked_keys(value, active) if active else None
        return {
            (keys[key] if keys else key): _normalize_child(item, path, key, active, pending)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_normalize_child(item, path, index, active, pending) for index, item in enumerate(value)]
    return _mask_scalar(value, active) if active else value


def _normalize_child(
    value: Any, path: str, segment: str | int, active: list[MaskRule], pending: list[MaskRule]
) -> Any:
    if not pending:  # nothing left that could start applying below: no need to track the path
        return _normalize_value(value, path, active, pending)
    child = child_path(path, segment)
    now_active = list(active)
    still_pending = []
    for rule in pending:
        if any(glob.matches(child) for glob in rule.scope):
            now_active.append(rule)
        elif any(glob.may_match_within(child) for glob in rule.scope):
            still_pending.append(rule)
    return _normalize_value(value, child, now_active, still_pending)


def _masked_keys(mapping: dict[str, Any], rules: Sequence[MaskRule]) -> dict[str, str]:
    """Each key's masked form; keys whose masked forms collide keep their original text (deterministic)."""
    masked = {key: mask_text(key, rules) for key in mapping}
    claims: dict[str, int] = {}
    for new_key in masked.values():
        claims[new_key] = claims.get(new_key, 0) + 1
    return {key: (new_key if claims[new_key] == 1 else key) for key, new_key in masked.items()}


def mask_secrets(tree: Any) -> Any:
    """A copy of `tree` with every secret hash replaced by MASKED_SECRET (for baselines: the key is gone)."""
    if isinstance(tree, dict):
        return {key: mask_secrets(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [mask_secrets(item) for item in tree]
    if isinstance(tree, str) and tree.startswith(SECRET_PREFIX):
        return MASKED_SECRET
    return tree


# ---- value semantics -------------------------------------------------------------------------------------


def is_secret(value: Any) -> bool:
    return isinstance(value, str) and _SECRET_HASH.fullmatch(value) is not None


def json_type(value: Any) -> str:
    """The JSON type user code sees; integers and non-integral numbers are different types to Python."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def canonical(value: Any) -> str:
    """A stable text form of any JSON value (sorted keys), used to compare set elements and list items."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


_QUANTITY = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(?:([kKmMgGtTpPeE])(i?)[bB]?|[bB])?\s*")
_POWERS = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}


def parse_quantity(value: Any) -> int | None:
    """Bytes in a quantity such as 67108864, "64M", "64Mi", "65536k", "1.5g"; None when it is not one.

    Unit letters are binary (k = 1024), as Docker, the JVM, Spark and tmpfs read them; a bare number is
    bytes. So "64M", "65536k" and "67108864" are the same quantity.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if not isinstance(value, str):
        return None
    match = _QUANTITY.fullmatch(value)
    if not match:
        return None
    number, unit, _binary = match.groups()
    scaled = float(number) * (1024 ** _POWERS[unit.lower()] if unit else 1)
    return int(scaled) if scaled.is_integer() else None
