"""The terminal report (rich): comparisons as trees of categories and divergences, the verdict last.

`print_terminal` writes to a real console (colours when it is a TTY, none under NO_COLOR or in a pipe);
`render_text` draws the very same renderables into a plain-text buffer, so `--format text` output and
what a person saw on screen never differ in content. Everything taken from a snapshot goes through
`rich.text.Text` (never console markup), so a value such as `[bold]` or an escape sequence is shown,
not interpreted. Long values are shortened here only; the JSON and HTML reports keep them whole.
"""

from __future__ import annotations

import io

from rich.console import Console, Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from conformance.model import CheckResult, ComparisonResult, Divergence
from conformance.reports.summary import by_category, plural, verdict
from conformance.reports.values import (
    display_value,
    one_line,
    printable,
    shorten,
    waiver_note_text,
    waiver_text,
)

VALUE_LIMIT = 160
TEXT_WIDTH = 100
SEVERITY_STYLES = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}


def _comparison_label(comparison: ComparisonResult) -> Text:
    sides = (
        f"{comparison.left} ↔ {comparison.right}"
        if comparison.kind == "pair"
        else f"{comparison.right} against baseline {comparison.left}"
    )
    waived = len(comparison.divergences) - len(comparison.unwaived)
    if comparison.passed:
        status = Text("✓ passes", style="bold green")
        if waived:
            status.append(f" ({waived} waived)", style="green")
    else:
        status = Text(f"✗ {plural(len(comparison.unwaived), 'unwaived divergence')}", style="bold red")
        if waived:
            status.append(f", {waived} waived", style="red")
    return Text.assemble((printable(comparison.name), "bold"), "  ", (printable(sides), "dim"), "  ", status)


def _divergence_block(divergence: Divergence) -> Text:
    style = "dim" if divergence.waived else ""
    block = Text(style=style)
    block.append(
        f"{divergence.severity.upper():<8}",
        style="dim" if divergence.waived else SEVERITY_STYLES[divergence.severity],
    )
    block.append(f" {divergence.kind:<12} ")
    block.append(printable(divergence.path), style="bold")
    block.append(f"  {printable(divergence.id)}", style="dim")
    for side in ("left", "right"):
        block.append(f"\n  {side:<6}", style="dim")
        block.append(shorten(display_value(divergence, side), VALUE_LIMIT))
    if divergence.hint:
        block.append("\n  hint  ", style="dim")
        block.append(one_line(divergence.hint), style="italic")
    if divergence.rule:
        block.append("\n  rule  ", style="dim")
        block.append(one_line(divergence.rule))
    if divergence.waiver:
        block.append("\n  ")
        block.append(
            waiver_text(divergence.waiver), style="bold red" if divergence.waiver.expired else "magenta"
        )
    return block


def _comparison_tree(comparison: ComparisonResult) -> Tree:
    tree = Tree(_comparison_label(comparison), guide_style="dim")
    if not comparison.divergences:
        tree.add(Text("no divergences", style="green"))
    for category, divergences in by_category(comparison):
        unwaived = sum(1 for d in divergences if not d.waived)
        label = Text(printable(category), style="bold cyan" if unwaived else "cyan")
        label.append(f"  {plural(len(divergences), 'divergence')}, {unwaived} unwaived", style="dim")
        branch = tree.add(label)
        for divergence in divergences:
            branch.add(_divergence_block(divergence))
    return tree


def renderables(result: CheckResult) -> list[RenderableType]:
    """The report as rich renderables, in print order."""
    context = [plural(len(result.comparisons), "comparison")]
    if result.suite:
        context.append(f"suite {result.suite}")
    if result.config:
        context.append(f"config {result.config}")
    context.append(f"generated {result.generated_at.isoformat(timespec='seconds')}")
    parts: list[RenderableType] = [Text("parity report · " + printable(" · ".join(context)), style="dim")]
    parts.extend(_comparison_tree(comparison) for comparison in result.comparisons)
    if result.waiver_notes:
        notes = Tree(Text("waivers", style="bold"), guide_style="dim")
        for note in result.waiver_notes:
            notes.add(
                Text(waiver_note_text(note), style="bold red" if note.problem == "expired" else "yellow")
            )
        parts.append(notes)
    parts.append(Text(verdict(result), style="bold green" if result.passed else "bold red"))
    return parts


def print_terminal(result: CheckResult, console: Console | None = None) -> None:
    (console or Console(highlight=False)).print(Group(*renderables(result)))


def render_text(result: CheckResult) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=TEXT_WIDTH, color_system=None, force_terminal=False, no_color=True, highlight=False
    )
    console.print(Group(*renderables(result)))
    return buffer.getvalue()
