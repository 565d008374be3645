"""What every report agrees on: the counts, the one-line verdict, and the order divergences are listed in.

Each renderer takes these from here so the terminal, JSON, JUnit, Markdown and HTML reports can never
disagree about how many divergences there are or whether parity holds.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from conformance.config import CATEGORIES, SEVERITIES, Severity
from conformance.model import CheckResult, ComparisonResult, Divergence

SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tally(_Strict):
    total: int = Field(description="divergences, waived or not")
    unwaived: int = Field(description="divergences that fail the run")


class ComparisonTally(Tally):
    passed: bool
    waived: int


class ReportSummary(_Strict):
    """Counts computed from the check result; the JSON report carries them under `summary`."""

    verdict: str = Field(description="the one-line verdict every report ends or starts with")
    passed: bool = Field(
        description="true when no comparison has an unwaived divergence and no waiver expired"
    )
    exit_code: Literal[0, 1] = Field(description="what `parity check` exits with for this result")
    comparisons: int
    failed_comparisons: int
    divergences: int
    unwaived: int
    waived: int
    expired_waivers: int
    unused_waivers: int
    by_severity: dict[Severity, Tally] = Field(description="every severity, most severe first")
    by_category: dict[str, Tally] = Field(description="every snapshot category, plus any other that occurs")
    by_comparison: dict[str, ComparisonTally]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def verdict(result: CheckResult) -> str:
    """'parity holds: 2 comparisons, 0 divergences (3 waived)' or 'PARITY BROKEN: …'."""
    unwaived = sum(len(comparison.unwaived) for comparison in result.comparisons)
    if result.passed:
        waived = sum(len(comparison.divergences) for comparison in result.comparisons)
        line = f"parity holds: {plural(len(result.comparisons), 'comparison')}, 0 divergences"
        return f"{line} ({waived} waived)" if waived else line
    problems = []
    if unwaived:
        failed = sum(1 for comparison in result.comparisons if not comparison.passed)
        problems.append(f"{plural(unwaived, 'unwaived divergence')} in {plural(failed, 'comparison')}")
    if result.expired_waivers:
        problems.append(plural(len(result.expired_waivers), "expired waiver"))
    return "PARITY BROKEN: " + "; ".join(problems)


def _category_sort_key(category: str) -> tuple[int, str]:
    return (CATEGORIES.index(category), "") if category in CATEGORIES else (len(CATEGORIES), category)


def divergence_sort_key(divergence: Divergence) -> tuple[bool, int, str, str]:
    """Unwaived before waived, most severe first, then by path."""
    return (divergence.waived, SEVERITY_RANK[divergence.severity], divergence.path, divergence.kind)


def by_category(comparison: ComparisonResult) -> list[tuple[str, list[Divergence]]]:
    """The comparison's divergences grouped by category, the most urgent category first.

    A category's urgency is its most severe unwaived divergence; categories with only waived divergences
    come last; ties keep the snapshot's section order, so the listing is the same on every run.
    """
    groups: dict[str, list[Divergence]] = {}
    for divergence in comparison.divergences:
        groups.setdefault(divergence.category, []).append(divergence)

    def urgency(category: str) -> tuple[int, tuple[int, str]]:
        ranks = [SEVERITY_RANK[d.severity] for d in groups[category] if not d.waived]
        return (min(ranks) if ranks else len(SEVERITIES), _category_sort_key(category))

    return [
        (category, sorted(groups[category], key=divergence_sort_key))
        for category in sorted(groups, key=urgency)
    ]


def categories_of(result: CheckResult) -> list[str]:
    """Every snapshot category in section order, then any other category that occurs, alphabetically."""
    seen = {d.category for comparison in result.comparisons for d in comparison.divergences}
    return list(CATEGORIES) + sorted(seen - set(CATEGORIES))


def summarize(result: CheckResult) -> ReportSummary:
    divergences = [d for comparison in result.comparisons for d in comparison.divergences]
    by_severity = {
        severity: Tally(
            total=sum(1 for d in divergences if d.severity == severity),
            unwaived=sum(1 for d in divergences if d.severity == severity and not d.waived),
        )
        for severity in SEVERITIES
    }
    by_category_tally = {
        category: Tally(
            total=sum(1 for d in divergences if d.category == category),
            unwaived=sum(1 for d in divergences if d.category == category and not d.waived),
        )
        for category in categories_of(result)
    }
    by_comparison = {
        comparison.name: ComparisonTally(
            total=len(comparison.divergences),
            unwaived=len(comparison.unwaived),
            waived=len(comparison.divergences) - len(comparison.unwaived),
            passed=comparison.passed,
        )
        for comparison in result.comparisons
    }
    unwaived = sum(1 for d in divergences if not d.waived)
    return ReportSummary(
        verdict=verdict(result),
        passed=result.passed,
        exit_code=result.exit_code,
        comparisons=len(result.comparisons),
        failed_comparisons=sum(1 for comparison in result.comparisons if not comparison.passed),
        divergences=len(divergences),
        unwaived=unwaived,
        waived=len(divergences) - unwaived,
        expired_waivers=len(result.expired_waivers),
        unused_waivers=sum(1 for note in result.waiver_notes if note.problem == "unused"),
        by_severity=by_severity,
        by_category=by_category_tally,
        by_comparison=by_comparison,
    )
