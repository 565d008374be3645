"""The Markdown report: a pull-request comment or a CI step summary (GitHub-flavoured Markdown).

Verdict heading first; per comparison a summary table by category, then per category a table of
divergences (path, kind, left, right, severity, hint reference) with its hints listed under it.
Snapshot values go into code spans whose backtick fence is longer than any backtick run inside, with `|`
escaped (GFM splits table cells before it parses code spans); free text is backslash-escaped, and waiver
owners are code spans too, so a report never @-mentions anyone. Values longer than `VALUE_LIMIT` are
shortened here (report.json and report.html keep them whole), and the whole document stays under
GitHub's 65,536-character comment limit: rows that do not fit are dropped, most urgent ones kept, and an
explicit "N more divergences not shown — see report.json" line says so.
"""

from __future__ import annotations

import re

from conformance.model import CheckResult, ComparisonResult, Divergence, WaiverNote
from conformance.reports.summary import SEVERITY_RANK, by_category, plural, verdict
from conformance.reports.values import (
    Side,
    display_value,
    is_present,
    one_line,
    printable,
    shorten,
    waiver_note_action,
)

GITHUB_COMMENT_LIMIT = 65_536
VALUE_LIMIT = 200
TABLE_HEADER = ["| path | kind | left | right | severity | hint |", "|---|---|---|---|---|---|"]
# Keeps the verdict, the waiver notes and the "not shown" line inside the limit with room to spare.
_SAFETY_MARGIN = 256

# The characters that start emphasis, code, links, HTML, entities, strikethrough, math or a cell break
# anywhere in a line (line-start syntax cannot occur: escaped text never starts a line).
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]<>#|~&$])")
_BACKTICK_RUN = re.compile(r"`+")


def md_text(text: str) -> str:
    """Free text made literal: on one line, every Markdown-significant character backslash-escaped."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", one_line(text))


def md_code(text: str) -> str:
    """`text` as an inline code span that survives any backticks or pipes it contains."""
    text = printable(text).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in _BACKTICK_RUN.findall(text)), default=0) + 1)
    padding = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def _severity_cell(divergence: Divergence) -> str:
    severity = (
        f"**{divergence.severity}**"
        if SEVERITY_RANK[divergence.severity] <= SEVERITY_RANK["high"]
        else divergence.severity
    )
    waiver = divergence.waiver
    if waiver is None:
        return f"{severity} · waived" if divergence.waived else severity
    owner, reason = md_code(shorten(waiver.owner, VALUE_LIMIT)), md_text(shorten(waiver.reason, VALUE_LIMIT))
    if waiver.expired:
        return f"{severity} · waiver by {owner} **expired** {waiver.expires}: {reason}"
    until = f" until {waiver.expires}" if waiver.expires else ""
    return f"~~{divergence.severity}~~ · waived by {owner}{until}: {reason}"


def _value_cell(divergence: Divergence, side: Side) -> str:
    if not is_present(divergence, side):
        return "*(absent)*"
    return md_code(shorten(display_value(divergence, side), VALUE_LIMIT))


def _row(divergence: Divergence, hint_ref: str) -> str:
    cells = [
        md_code(shorten(divergence.path, 2 * VALUE_LIMIT)),
        divergence.kind,
        _value_cell(divergence, "left"),
        _value_cell(divergence, "right"),
        _severity_cell(divergence),
        hint_ref,
    ]
    return "| " + " | ".join(cells) + " |"


def _waiver_note_line(note: WaiverNote) -> str:
    marker = "❌ **expired**" if note.problem == "expired" else "⚠️ unused"
    selector, owner = (md_code(shorten(text, VALUE_LIMIT)) for text in (note.selector, note.owner))
    reason = md_text(shorten(note.reason, VALUE_LIMIT))
    return (
        f"- {marker} waiver {selector} (owner {owner}, reason: {reason}): {md_text(waiver_note_action(note))}"
    )


class _Document:
    """Lines of Markdown with a character budget (each line costs its length plus a newline)."""

    def __init__(self, budget: int):
        self.lines: list[str] = []
        self.budget = budget
        self.used = 0
        self.divergences_shown = 0

    @staticmethod
    def cost(lines: list[str]) -> int:
        return sum(len(line) + 1 for line in lines)

    def fits(self, extra_cost: int) -> bool:
        return self.used + extra_cost <= self.budget

    def add(self, lines: list[str]) -> None:
        self.lines.extend(lines)
        self.used += self.cost(lines)

    def add_category(self, category: str, divergences: list[Divergence]) -> bool:
        """Add as many of the category's divergences as fit; False once something had to be left out."""
        unwaived = sum(1 for d in divergences if not d.waived)
        header = [
            "",
            f"#### {md_text(category)} — {plural(len(divergences), 'divergence')}, {unwaived} unwaived",
            "",
        ]
        header += TABLE_HEADER
        rows: list[str] = []
        hint_numbers: dict[str, int] = {}
        hint_lines: list[str] = []
        cost = self.cost(header) + 1  # the blank line before the hints
        for divergence in divergences:
            hint = one_line(divergence.hint) if divergence.hint else ""
            new_hint_lines = []
            if hint and hint not in hint_numbers:
                hint_numbers[hint] = len(hint_numbers) + 1
                new_hint_lines = [f"- **H{hint_numbers[hint]}** {md_text(hint)}"]
            row = _row(divergence, f"H{hint_numbers[hint]}" if hint else "")
            row_cost = self.cost([row, *new_hint_lines])
            if not self.fits(cost + row_cost):
                break
            rows.append(row)
            hint_lines.extend(new_hint_lines)
            cost += row_cost
        if rows:
            self.add(header + rows + ([""] + hint_lines if hint_lines else []))
            self.divergences_shown += len(rows)
        return len(rows) == len(divergences)

    def add_comparison(self, comparison: ComparisonResult) -> bool:
        """Add the comparison's summary and divergences; False once something had to be left out."""
        waived = len(comparison.divergences) - len(comparison.unwaived)
        status = (
            "✅ passes"
            if comparison.passed
            else f"❌ {plural(len(comparison.unwaived), 'unwaived divergence')}"
        )
        sides = (
            f"{md_code(comparison.left)} ↔ {md_code(comparison.right)}"
            if comparison.kind == "pair"
            else f"{md_code(comparison.right)} against baseline {md_code(comparison.left)}"
        )
        section = ["", f"### {md_code(comparison.name)} — {status}, {waived} waived", "", sides, ""]
        grouped = by_category(comparison)
        if grouped:
            section += [
                "| category | divergences | unwaived | waived | most severe unwaived |",
                "|---|--:|--:|--:|---|",
            ]
            for category, divergences in grouped:
                unwaived = [d for d in divergences if not d.waived]
                worst = min((d.severity for d in unwaived), key=SEVERITY_RANK.__getitem__, default="—")
                section.append(
                    f"| {md_text(category)} | {len(divergences)} | {len(unwaived)} | "
                    f"{len(divergences) - len(unwaived)} | {worst} |"
                )
        else:
            section.append("No divergences.")
        if not self.fits(self.cost(section)):
            return False
        self.add(section)
        return all(self.add_category(category, divergences) for category, divergences in grouped)


def render_markdown(result: CheckResult, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    mark = "✅" if result.passed else "❌"
    context = [f"generated {result.generated_at.isoformat(timespec='seconds')}"]
    if result.config:
        context.append(f"config {md_code(result.config)}")
    if result.suite:
        context.append(f"suite {md_code(result.suite)}")
    head = [f"## {mark} {verdict(result)}", "", "parity report · " + " · ".join(context)]
    total = sum(len(comparison.divergences) for comparison in result.comparisons)
    not_shown_line = f"**{total} more divergences not shown — see report.json**"
    document = _Document(budget=limit - _Document.cost(head + ["", not_shown_line]) - _SAFETY_MARGIN)

    # Waiver notes come before divergences in the budget: an expired waiver is a reason the run failed.
    waivers = ["", "### Waivers", ""] if result.waiver_notes else []
    document.used += _Document.cost(waivers)
    for shown, note in enumerate(result.waiver_notes):
        line = _waiver_note_line(note)
        if not document.fits(_Document.cost([line])):
            waivers.append(
                f"- {len(result.waiver_notes) - shown} more waiver notes not shown — see report.json"
            )
            break
        waivers.append(line)
        document.used += _Document.cost([line])

    for comparison in result.comparisons:
        if not document.add_comparison(comparison):
            break
    lines = head + document.lines
    hidden = total - document.divergences_shown
    if hidden:
        lines += ["", f"**{plural(hidden, 'more divergence')} not shown — see report.json**"]
    return "\n".join(lines + waivers) + "\n"
