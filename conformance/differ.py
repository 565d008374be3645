"""Field-level diff of two normalized snapshots under a contract: every divergence a concrete parity bug.

The walk is our own rather than deepdiff's: it needs the contract while it walks (an ignored or
`present` subtree is not descended into, a `sets` list is compared as a set, a quantity by its bytes) and
it must name every divergence by a snapshot path (docs/SNAPSHOT.md). It is also faster on snapshots of
10k–200k leaves (benchmarks/diff_scaling.py prints both). Equal subtrees are recognized without a
Python-level walk: `==` first, then their canonical JSON, because `==` alone says `1 == 1.0 == True`.

Kinds: `missing` — on the left only; `extra` — on the right only (an entry saying it does not exist,
`{"type": "missing"}` or `"exists": false`, counts as absent); `changed` — both present, values differ
(including a null on one side); `type_changed` — both present and non-null, JSON types differ
(`0.1` vs `"0.1"`, `1` vs `1.0`, a mapping vs a list). Ordered lists are aligned (difflib) so an inserted
item is one divergence, not a cascade of shifted indices; `sets` lists compare unique elements.

Secrets (`hmac-sha256:` values) compare equal only when both sides were hashed with the same key (the
probes' `probe.hash.key_id` match and both are comparable). Otherwise they are compared for presence only,
and one `probe.hash` divergence says how many were, and how to get a full comparison. A baseline
carries no key (`<KEY_ID>`, secrets masked): its secrets are compared for presence, silently.

The `harness` section and `probe.hash` are never compared (the latter decides how secrets compare).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from conformance.contract import Contract, Equivalence, PathRule, Platform, platform_of, service_link_rules
from conformance.hints import HintContext, hint_for
from conformance.model import Divergence, DivergenceKind
from conformance.normalize import MASKED_KEY_ID, canonical, is_secret, json_type, parse_quantity
from conformance.paths import GlobIndex, Segment, ancestor_paths, category_of, child_path, section_of

_MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing>"})()
NEVER_COMPARED = ("harness", "probe.hash")


@dataclass(frozen=True)
class Side:
    """One snapshot of a comparison: its label in reports, its normalized content, its platform."""

    label: str
    snapshot: dict[str, Any]
    platform: Platform

    @classmethod
    def of(cls, label: str, normalized: dict[str, Any]) -> Side:
        return cls(label=label, snapshot=normalized, platform=platform_of(normalized))


@dataclass
class _Finding:
    path: str
    kind: DivergenceKind
    left: Any
    right: Any
    category: str
    identity: str
    rule: str | None = None
    severity_rule: PathRule | None = None
    severity: str | None = None
    hint: str | None = None


@dataclass(frozen=True)
class _Scope:
    """The contract in force for one subtree: rules that may still match in it, effects of those matched
    above."""

    rules: GlobIndex[PathRule]
    platform_only: tuple[PathRule, ...] = ()
    as_set: bool = False
    as_quantity: bool = False
    severity: PathRule | None = None

    def matched(self, path: str) -> list[PathRule]:
        return self.rules.matching((path,)) if self.rules else []

    def with_effects(self, matched: list[PathRule]) -> _Scope:
        """This scope plus the effects of `matched` rules, which hold for the whole subtree."""
        if not matched:
            return self
        severity = self.severity
        for rule in matched:
            if rule.kind == "severity" and (severity is None or rule.order > severity.order):
                severity = rule
        return replace(
            self,
            platform_only=self.platform_only + tuple(r for r in matched if r.kind == "platform_only"),
            as_set=self.as_set or any(rule.kind == "sets" for rule in matched),
            as_quantity=self.as_quantity or any(rule.kind == "quantities" for rule in matched),
            severity=severity,
        )

    def below(self, path: str) -> _Scope:
        """The scope for the children of `path`: only the rules that can still match under it."""
        return replace(self, rules=self.rules.within(path)) if self.rules else self


@dataclass
class _Walk:
    left: Side
    right: Side
    contract: Contract
    baseline: bool
    findings: list[_Finding] = field(default_factory=list)
    suppressed: set[str] = field(default_factory=set)
    secrets_by_presence: int = 0
    equivalence: Equivalence | None = None

    def __post_init__(self) -> None:
        self.secrets_comparable = _same_key(self.left.snapshot, self.right.snapshot)

    # -- entry points ----------------------------------------------------------------------------------

    def run(self) -> list[_Finding]:
        rules = list(self.contract.rules_for(baseline=self.baseline))
        if self.contract.derived_rules and not self.baseline:
            for side in (self.left, self.right):
                if side.platform.name == "kubernetes":
                    rules += service_link_rules(side.snapshot, len(rules))
        scope = _Scope(rules=GlobIndex((rule.glob, rule) for rule in rules))
        self.suppressed.update(NEVER_COMPARED)
        if not self.baseline:
            for equivalence in self.contract.equivalences:
                self.suppressed.update((equivalence.left_path, equivalence.right_path))
        self._mapping("", self.left.snapshot, self.right.snapshot, scope)
        if not self.baseline:
            for equivalence in self.contract.equivalences:
                self._equivalence(equivalence, scope)
        return self.findings

    def _equivalence(self, equivalence: Equivalence, scope: _Scope) -> None:
        left = _lookup(self.left.snapshot, equivalence.left)
        right = _lookup(self.right.snapshot, equivalence.right)
        if _same(left, right):
            return
        # Report under the path that exists (the left one when both do), with the rules of its ancestors.
        path = equivalence.left_path if left is not _MISSING or right is _MISSING else equivalence.right_path
        for ancestor in ancestor_paths(path)[:-1]:
            matched = scope.matched(ancestor)
            if any(rule.kind == "ignore" for rule in matched):
                return
            scope = scope.with_effects(matched).below(ancestor)
        self.equivalence = equivalence
        self._node(path, left, right, scope, identity=path)
        self.equivalence = None

    # -- the walk ----------------------------------------------------------------------------------------

    def _node(self, path: str, left: Any, right: Any, scope: _Scope, identity: str | None = None) -> None:
        """Compare two values known to differ (either may be _MISSING) at `path`."""
        if path in self.suppressed and self.equivalence is None:
            return
        matched = scope.matched(path)
        for rule in matched:
            if rule.kind == "ignore":
                return
        scope = scope.with_effects(matched)
        left_there, right_there = _exists(left), _exists(right)
        for rule in matched:
            if rule.kind == "present":
                if left_there != right_there:
                    self._record(
                        path,
                        "missing" if left_there else "extra",
                        left,
                        right,
                        scope,
                        identity,
                        rule=rule.label,
                    )
                return
        if left_there != right_there:
            holder = self.left if left_there else self.right
            for rule in scope.platform_only:
                if rule.platform == holder.platform.name:
                    return
            if scope.platform_only and holder.platform.name is None:
                rule = scope.platform_only[0]
                hint = (
                    f"{rule.label} was not applied: {holder.label}'s platform is unknown "
                    f"({holder.platform.evidence}); compare snapshots taken by `parity run`/`parity check`, "
                    "which record it in harness.platform."
                )
                kind = "missing" if left_there else "extra"
                self._record(path, kind, left, right, scope, identity, rule=rule.label, hint=hint)
                return
        if left is _MISSING or right is _MISSING or _says_absent(left) != _says_absent(right):
            kind = "extra" if left is _MISSING or _says_absent(left) else "missing"
            self._record(path, kind, left, right, scope, identity)
        elif isinstance(left, dict) and isinstance(right, dict):
            self._mapping(path, left, right, scope.below(path))
        elif isinstance(left, list) and isinstance(right, list):
            if scope.as_set:
                self._set(path, left, right, scope)
            else:
                self._sequence(path, left, right, scope.below(path))
        else:
            self._scalar(path, left, right, scope, identity)

    def _mapping(self, path: str, left: dict, right: dict, scope: _Scope) -> None:
        for key, value in left.items():
            other = right.get(key, _MISSING)
            if other is _MISSING or not _same(value, other):
                self._node(child_path(path, key), value, other, scope)
        for key, value in right.items():
            if key not in left:
                self._node(child_path(path, key), _MISSING, value, scope)

    def _scalar(self, path: str, left: Any, right: Any, scope: _Scope, identity: str | None) -> None:
        if is_secret(left) and is_secret(right) and not self.secrets_comparable:
            self.secrets_by_presence += 1
            return
        if scope.as_quantity:
            left_bytes, right_bytes = parse_quantity(left), parse_quantity(right)
            if left_bytes is not None and right_bytes is not None:
                if left_bytes != right_bytes:
                    self._record(path, "changed", left, right, scope, identity)
                return
        both_set = left is not None and right is not None
        kind: DivergenceKind = (
            "type_changed" if both_set and json_type(left) != json_type(right) else "changed"
        )
        self._record(path, kind, left, right, scope, identity)

    def _set(self, path: str, left: list, right: list, scope: _Scope) -> None:
        left_items = {canonical(item): item for item in left}
        right_items = {canonical(item): item for item in right}
        for key, item in left_items.items():
            if key not in right_items:
                self._record(path, "missing", item, None, scope, identity=f"{path}∋{key}")
        for key, item in right_items.items():
            if key not in left_items:
                self._record(path, "extra", None, item, scope, identity=f"{path}∋{key}")

    def _sequence(self, path: str, left: list, right: list, scope: _Scope) -> None:
        """Align the two lists; pair items only at equal indices so each path names the same place on both
        sides."""
        left_keys = [canonical(item) for item in left]
        right_keys = [canonical(item) for item in right]
        # Run the matcher in one canonical direction so diff(a, b) and diff(b, a) mirror each other.
        swapped = left_keys > right_keys
        matcher = difflib.SequenceMatcher(
            None, right_keys if swapped else left_keys, left_keys if swapped else right_keys, autojunk=False
        )
        for tag, a1, a2, b1, b2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            i1, i2, j1, j2 = (b1, b2, a1, a2) if swapped else (a1, a2, b1, b2)
            paired = range(max(i1, j1), min(i2, j2)) if tag == "replace" else range(0)
            for index in paired:
                self._node(child_path(path, index), left[index], right[index], scope)
            for index in range(i1, i2):
                if index not in paired:
                    self._node(
                        child_path(path, index), left[index], _MISSING, scope, f"{path}∋{left_keys[index]}"
                    )
            for index in range(j1, j2):
                if index not in paired:
                    self._node(
                        child_path(path, index), _MISSING, right[index], scope, f"{path}∋{right_keys[index]}"
                    )

    def _record(
        self,
        path: str,
        kind: DivergenceKind,
        left: Any,
        right: Any,
        scope: _Scope,
        identity: str | None,
        rule: str | None = None,
        hint: str | None = None,
    ) -> None:
        severity = None
        if self.equivalence is not None:
            rule = rule or self.equivalence.label
            severity = self.equivalence.severity
        self.findings.append(
            _Finding(
                path=path,
                kind=kind,
                left=None if left is _MISSING else left,
                right=None if right is _MISSING else right,
                category=_category(path),
                identity=identity or path,
                rule=rule,
                severity_rule=scope.severity,
                severity=severity,
                hint=hint,
            )
        )


def _says_absent(value: Any) -> bool:
    """An entry the probe wrote to say that something declared does not exist (docs/SNAPSHOT.md):
    `{"type": "missing"}` for a filesystem path, `{"exists": false, …}` for a hyperparameters source."""
    return isinstance(value, dict) and (value.get("type") == "missing" or value.get("exists") is False)


def _exists(value: Any) -> bool:
    """Whether a value counts as there for `present`, `platform_only` and missing/extra: not absent, not
    null."""
    return value is not _MISSING and value is not None and not _says_absent(value)


def _same(left: Any, right: Any) -> bool:
    """Equal as JSON: same values and same types all the way down."""
    if type(left) is not type(right):
        return False
    if isinstance(left, (dict, list)):
        return left == right and _json(left) == _json(right)
    return left == right


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _lookup(tree: Any, segments: Sequence[Segment]) -> Any:
    for segment in segments:
        if isinstance(segment, int):
            if not isinstance(tree, list) or not 0 <= segment < len(tree):
                return _MISSING
        elif not isinstance(tree, dict) or segment not in tree:
            return _MISSING
        tree = tree[segment]
    return tree


def _category(path: str) -> str:
    return category_of(section_of(path))


def _hash_info(snapshot: dict[str, Any]) -> dict[str, Any]:
    probe = snapshot.get("probe")
    info = probe.get("hash") if isinstance(probe, dict) else None
    return info if isinstance(info, dict) else {}


def _same_key(left: dict[str, Any], right: dict[str, Any]) -> bool:
    left_hash, right_hash = _hash_info(left), _hash_info(right)
    return (
        left_hash.get("comparable") is True
        and right_hash.get("comparable") is True
        and left_hash.get("key_id") not in (None, MASKED_KEY_ID)
        and left_hash.get("key_id") == right_hash.get("key_id")
    )


def _key_finding(walk: _Walk) -> _Finding | None:
    """The divergence that says secrets were compared by presence only, unless a side is a keyless
    baseline."""
    if not walk.secrets_by_presence:
        return None
    left_hash, right_hash = _hash_info(walk.left.snapshot), _hash_info(walk.right.snapshot)
    if MASKED_KEY_ID in (left_hash.get("key_id"), right_hash.get("key_id")):
        return None
    reasons = [
        f"{side.label}'s probe had no key and invented one"
        for side, info in ((walk.left, left_hash), (walk.right, right_hash))
        if info.get("comparable") is not True
    ] or [
        "the snapshots were hashed with different keys "
        f"({left_hash.get('key_id')} vs {right_hash.get('key_id')})"
    ]
    hint = (
        f"{walk.secrets_by_presence} secret value(s) were compared for presence only: {'; '.join(reasons)}. "
        "Take both snapshots in one `parity check` run, which gives every target the same key."
    )
    path = "probe.hash"
    return _Finding(
        path=path,
        kind="changed",
        left=left_hash or None,
        right=right_hash or None,
        category="probe",
        identity=path,
        severity="low",
        hint=hint,
    )


def divergence_id(category: str, identity: str, kind: str) -> str:
    """Stable across runs: derived from where and what the problem is, never from volatile values."""
    digest = hashlib.sha256(f"{category}\x1f{identity}\x1f{kind}".encode()).hexdigest()
    return f"{category}-{digest[:10]}"


def diff_snapshots(
    left: Side, right: Side, contract: Contract, *, comparison: str, baseline: bool = False
) -> list[Divergence]:
    """Every divergence between two normalized snapshots under `contract`, sorted by path.

    `baseline=True` compares a target with its golden baseline (left): only the rules that apply to
    every comparison are used (see conformance.contract).
    """
    walk = _Walk(left, right, contract, baseline)
    findings = walk.run()
    key_finding = _key_finding(walk)
    if key_finding:
        findings.append(key_finding)
    findings.sort(key=lambda found: (found.path, found.kind, found.identity))
    context = HintContext(
        left_label=left.label,
        right_label=right.label,
        left_platform=left.platform.name,
        right_platform=right.platform.name,
    ).with_counts(findings)
    return [
        Divergence(
            id=divergence_id(found.category, found.identity, found.kind),
            comparison=comparison,
            category=found.category,
            path=found.path,
            kind=found.kind,
            left=found.left,
            right=found.right,
            severity=found.severity or contract.severity_of(found.category, found.severity_rule),
            hint=found.hint or hint_for(found, context),
            rule=found.rule,
        )
        for found in findings
    ]
