"""The verdict model: divergences and the results every report renders.

These are the objects the differ produces and the reporters consume; the JSON report is their
serialization (`parity schema report` prints its JSON Schema).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from conformance.config import Severity

DivergenceKind = Literal["missing", "extra", "changed", "type_changed"]
REPORT_SCHEMA = "parity.report/v1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppliedWaiver(_Model):
    reason: str
    owner: str
    expires: dt.date | None = None
    expired: bool = False


class Divergence(_Model):
    """One concrete parity bug: a snapshot path whose value differs between two sides.

    `missing` — present on the left, absent on the right; `extra` — the reverse; `changed` — both present,
    values differ; `type_changed` — both present, JSON types differ (e.g. 0.1 vs "0.1"). Secret values
    appear only as their keyed hashes.
    """

    id: str = Field(description="stable across runs for the same problem")
    comparison: str
    category: str
    path: str
    kind: DivergenceKind
    left: Any = None
    right: Any = None
    severity: Severity
    waived: bool = False
    waiver: AppliedWaiver | None = None
    hint: str | None = None
    rule: str | None = Field(None, description="the contract rule that made this a divergence, if any")


class ComparisonResult(_Model):
    name: str = Field(description="'<left>~<right>' for a pair, 'baseline:<target>' for a baseline")
    kind: Literal["pair", "baseline"]
    left: str = Field(description="left target name, or the baseline file for a baseline comparison")
    right: str
    divergences: list[Divergence] = Field(default_factory=list)

    @property
    def unwaived(self) -> list[Divergence]:
        return [d for d in self.divergences if not d.waived]

    @property
    def passed(self) -> bool:
        return not self.unwaived


class WaiverNote(_Model):
    selector: str
    reason: str
    owner: str
    expires: dt.date | None = None
    problem: Literal["unused", "expired"]


class CheckResult(_Model):
    schema_: str = Field(REPORT_SCHEMA, alias="schema")
    generated_at: dt.datetime
    config: str | None = None
    suite: str | None = None
    comparisons: list[ComparisonResult] = Field(default_factory=list)
    waiver_notes: list[WaiverNote] = Field(default_factory=list)
    snapshots: dict[str, str] = Field(
        default_factory=dict, description="target -> snapshot file, when written"
    )

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @property
    def expired_waivers(self) -> list[WaiverNote]:
        return [note for note in self.waiver_notes if note.problem == "expired"]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons) and not self.expired_waivers

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1
