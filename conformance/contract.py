"""The parity contract: which differences between two snapshots are bugs, how bad, and which are accepted.

`load_contract` compiles a `ContractConfig` (parity.yaml's `contract:`) on top of the built-in Kubernetes →
SageMaker contract (`default_contract.yaml`, shipped with the package) into path rules the differ applies
while it walks two snapshots:

- `ignore` — never compared; `sets` — lists compared as sets; `quantities` — compared as byte quantities;
  `severity` — per category, or per path (the rule declared last wins; parity.yaml's come after the
  default's). These apply to every comparison.
- `present` — must exist on both sides, the value may differ; `platform_only` — may exist on the named
  platform's side only; `equivalent` — a path on the left must equal another path on the right. These
  describe differences *between platforms* and apply to target pairs only, never to baselines.

Each side's platform is its snapshot's `harness.platform` (recorded by the harness), else the platform the
probe detected (`context.platform`); when neither says, `platform_only` rules cannot be applied to that
side and the divergences they would have covered say so in their hint.

Waivers (`waivers:` in parity.yaml) are applied after diffing, by `apply_waivers`.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from conformance.config import ContractConfig, Waiver, describe_validation_error, load_yaml_file
from conformance.errors import BadInput
from conformance.model import AppliedWaiver, ComparisonResult, WaiverNote
from conformance.normalize import MaskRule, normalize
from conformance.paths import Glob, PathSyntaxError, Segment, compile_glob, format_path, parse_path

DEFAULT_CONTRACT_PATH = Path(__file__).with_name("default_contract.yaml")
FALLBACK_SEVERITY = "medium"

RuleKind = Literal["ignore", "present", "platform_only", "sets", "quantities", "severity"]
# Rules that describe legitimate differences between two platforms; a baseline compares a target with itself.
PAIR_ONLY_KINDS = frozenset({"present", "platform_only"})


@dataclass(frozen=True)
class PathRule:
    kind: RuleKind
    glob: Glob
    order: int
    platform: str | None = None
    severity: str | None = None

    @property
    def label(self) -> str:
        """How the rule is named in reports, e.g. `platform_only.sagemaker: env.vars.TRAINING_JOB_*`."""
        kind = f"{self.kind}.{self.platform}" if self.platform else self.kind
        return f"{kind}: {self.glob.pattern}"


@dataclass(frozen=True)
class Equivalence:
    left: tuple[Segment, ...]
    right: tuple[Segment, ...]
    severity: str | None

    @property
    def left_path(self) -> str:
        return format_path(self.left)

    @property
    def right_path(self) -> str:
        return format_path(self.right)

    @property
    def label(self) -> str:
        return f"equivalent: {self.left_path} = {self.right_path}"


@dataclass(frozen=True)
class Contract:
    rules: tuple[PathRule, ...]
    equivalences: tuple[Equivalence, ...]
    category_severity: Mapping[str, str]
    mask_rules: tuple[MaskRule, ...]
    # The default contract's knowledge that is derived from the data rather than written as rules:
    # service-link variables (service_link_rules) and run identities (normalize.run_identity_rules).
    derived_rules: bool

    def rules_for(self, *, baseline: bool) -> tuple[PathRule, ...]:
        if not baseline:
            return self.rules
        return tuple(rule for rule in self.rules if rule.kind not in PAIR_ONLY_KINDS)

    def severity_of(self, category: str, path_rule: PathRule | None) -> str:
        if path_rule is not None and path_rule.severity:
            return path_rule.severity
        return self.category_severity.get(category, FALLBACK_SEVERITY)

    def normalize(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        return normalize(snapshot, self.mask_rules, mask_run_identities=self.derived_rules)


@functools.cache
def default_contract_config() -> ContractConfig:
    data = load_yaml_file(DEFAULT_CONTRACT_PATH)
    try:
        return ContractConfig.model_validate(data)
    except ValidationError as exc:
        field, problem = describe_validation_error(exc)
        raise BadInput(DEFAULT_CONTRACT_PATH, field, problem) from None


def load_contract(config: ContractConfig | None = None, source: str | Path | None = None) -> Contract:
    """The contract in force: `config` (from the parity.yaml at `source`) over the default, or the default.

    A malformed path pattern raises BadInput naming `source` and the field, e.g. `contract.ignore.3`.
    """
    layers = []
    if config is None or config.extends == "default":
        layers.append((default_contract_config(), _Origin(DEFAULT_CONTRACT_PATH, "")))
    if config is not None:
        layers.append((config, _Origin(source or "parity.yaml", "contract.")))

    rules: list[PathRule] = []
    equivalences: list[Equivalence] = []
    category_severity: dict[str, str] = {}
    mask_rules: list[MaskRule] = []
    for layer, origin in layers:
        listed: list[tuple[RuleKind, str, Sequence[str], str | None]] = [
            ("ignore", "ignore", layer.ignore, None),
            ("present", "present", layer.present, None),
            *(
                ("platform_only", f"platform_only.{p}", patterns, p)
                for p, patterns in layer.platform_only.items()
            ),
            ("sets", "sets", layer.sets, None),
            ("quantities", "quantities", layer.quantities, None),
        ]
        for kind, field, patterns, platform in listed:
            for index, pattern in enumerate(patterns):
                rules.append(
                    PathRule(kind, origin.glob(pattern, f"{field}.{index}"), len(rules), platform=platform)
                )
        for pattern, severity in layer.severity.paths.items():
            glob = origin.glob(pattern, f"severity.paths.{pattern}")
            rules.append(PathRule("severity", glob, len(rules), severity=severity))
        category_severity.update(layer.severity.categories)
        for index, pair in enumerate(layer.equivalent):
            left = origin.exact_path(pair.left, f"equivalent.{index}.left")
            right = origin.exact_path(pair.right, f"equivalent.{index}.right")
            equivalences.append(Equivalence(left=left, right=right, severity=pair.severity))
        for index, rule in enumerate(layer.normalize):
            scope = tuple(
                origin.glob(pattern, f"normalize.{index}.paths.{n}") for n, pattern in enumerate(rule.paths)
            )
            mask_rules.append(MaskRule(name=rule.name, regex=re.compile(rule.pattern), scope=scope))

    return Contract(
        rules=tuple(rules),
        equivalences=tuple(equivalences),
        category_severity=category_severity,
        mask_rules=tuple(mask_rules),
        derived_rules=config is None or config.extends == "default",
    )


@dataclass(frozen=True)
class _Origin:
    """Where a contract layer was written, for error messages: the file and the prefix of its fields."""

    source: str | Path
    field_prefix: str

    def glob(self, pattern: str, field: str) -> Glob:
        try:
            return compile_glob(pattern)
        except PathSyntaxError as exc:
            raise BadInput(
                self.source, self.field_prefix + field, f"bad path pattern {pattern!r}: {exc}"
            ) from None

    def exact_path(self, pattern: str, field: str) -> tuple[Segment, ...]:
        if not self.glob(pattern, field).is_exact:
            raise BadInput(
                self.source,
                self.field_prefix + field,
                f"an equivalence names one value: {pattern!r} must not contain * or ?",
            )
        return parse_path(pattern)


# ---- the side's platform --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    name: str | None
    evidence: str


def platform_of(snapshot: Mapping[str, Any]) -> Platform:
    """Which platform a snapshot was taken on: what the harness recorded, else what the probe detected."""
    harness = snapshot.get("harness")
    if isinstance(harness, Mapping) and harness.get("platform") in ("kubernetes", "sagemaker"):
        return Platform(harness["platform"], "harness.platform")
    context = snapshot.get("context")
    detected = context.get("platform") if isinstance(context, Mapping) else None
    if detected == "kubernetes":
        return Platform("kubernetes", "context.platform")
    if isinstance(detected, str) and detected.startswith("sagemaker"):
        return Platform("sagemaker", "context.platform")
    return Platform(
        None, f"the snapshot has no harness.platform and the probe detected {detected or 'nothing'!s}"
    )


# Per-port variable suffixes of a service link: NAME_PORT_<port>_<PROTO>{,_PROTO,_PORT,_ADDR} (K8s §1).
_SERVICE_LINK_SCHEMES = ("tcp://", "udp://", "sctp://")


def service_link_rules(snapshot: Mapping[str, Any], start_order: int) -> list[PathRule]:
    """platform_only.kubernetes rules for the service-link variables kubelet injected into this snapshot.

    kubelet adds, for each Service with a cluster IP, NAME_SERVICE_HOST, NAME_SERVICE_PORT[_<PORTNAME>],
    NAME_PORT=<proto>://ip:port and NAME_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR] (K8s §1 "Service links"). A
    service exists when its NAME_SERVICE_HOST does; NAME_PORT counts only with a proto:// value, so a
    user's own STATSD_PORT=8125 is still compared.
    """
    env = snapshot.get("env")
    variables = env.get("vars") if isinstance(env, Mapping) else None
    if not isinstance(variables, Mapping):
        return []
    services = {name[: -len("_SERVICE_HOST")] for name in variables if name.endswith("_SERVICE_HOST")}
    links = []
    for name, value in variables.items():
        for service in services:
            if name.startswith(f"{service}_SERVICE_") or _is_port_link(name, value, service):
                links.append(name)
                break
    return [
        PathRule(
            "platform_only", compile_glob(format_path(("env", "vars", name))), start_order + i, "kubernetes"
        )
        for i, name in enumerate(sorted(links))
    ]


def _is_port_link(name: str, value: Any, service: str) -> bool:
    if name == f"{service}_PORT":
        return isinstance(value, str) and value.startswith(_SERVICE_LINK_SCHEMES)
    if not name.startswith(f"{service}_PORT_"):
        return False
    parts = name[len(service) + len("_PORT_") :].split("_")
    return parts[0].isdigit() and len(parts) >= 2 and parts[1] in ("TCP", "UDP", "SCTP")


# ---- waivers --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledWaiver:
    waiver: Waiver
    glob: Glob | None

    @property
    def selector(self) -> str:
        selector = f"id {self.waiver.id}" if self.waiver.id else f"path {self.waiver.path}"
        return f"{selector} in {self.waiver.comparison}" if self.waiver.comparison else selector

    def expired(self, today: dt.date) -> bool:
        return self.waiver.expires is not None and self.waiver.expires < today

    def matches(self, comparison: str, divergence_id: str, path: str) -> bool:
        if self.waiver.comparison and self.waiver.comparison != comparison:
            return False
        if self.waiver.id and self.waiver.id == divergence_id:
            return True
        return self.glob is not None and self.glob.matches_path_or_ancestor(path)


def compile_waivers(waivers: Sequence[Waiver], source: str | Path) -> list[CompiledWaiver]:
    origin = _Origin(source, "")
    return [
        CompiledWaiver(waiver, origin.glob(waiver.path, f"waivers.{index}.path") if waiver.path else None)
        for index, waiver in enumerate(waivers)
    ]


def apply_waivers(
    comparisons: Sequence[ComparisonResult], waivers: Sequence[CompiledWaiver], today: dt.date
) -> list[WaiverNote]:
    """Mark divergences matched by a waiver; return notes for expired and unused waivers.

    A waiver is valid through its `expires` date. A matched divergence is waived unless the waiver expired;
    an expired waiver is always reported (and fails the run, see CheckResult.passed) so it is renewed or
    removed; a waiver that matched nothing is reported as unused. The first matching waiver applies.
    """
    used: set[int] = set()
    for comparison in comparisons:
        for divergence in comparison.divergences:
            for index, waiver in enumerate(waivers):
                if waiver.matches(comparison.name, divergence.id, divergence.path):
                    used.add(index)
                    expired = waiver.expired(today)
                    divergence.waived = not expired
                    divergence.waiver = AppliedWaiver(
                        reason=waiver.waiver.reason,
                        owner=waiver.waiver.owner,
                        expires=waiver.waiver.expires,
                        expired=expired,
                    )
                    break
    notes = []
    for index, waiver in enumerate(waivers):
        problem = "expired" if waiver.expired(today) else "unused" if index not in used else None
        if problem:
            notes.append(
                WaiverNote(
                    selector=waiver.selector,
                    reason=waiver.waiver.reason,
                    owner=waiver.waiver.owner,
                    expires=waiver.waiver.expires,
                    problem=problem,
                )
            )
    return notes
