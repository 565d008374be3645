"""The HTML report: one self-contained page a person would rather read than JSON.

Verdict banner, totals, then per comparison a side-by-side table (path | left | right | kind | severity |
hint) grouped by category, filterable by category and severity, with waived rows greyed out and
hideable. All CSS and JavaScript are inline and nothing is fetched: the page works from a CI artifact
store or an email attachment. Every value from a snapshot is attacker-controllable (it is whatever the
workload's environment held), so every string is made printable and HTML-escaped, and the page carries
a Content-Security-Policy that allows only its own style and script (by hash): even a value that got
past escaping could not run script or load anything.
"""

from __future__ import annotations

import base64
import hashlib
import html

from conformance.config import SEVERITIES
from conformance.model import CheckResult, ComparisonResult, Divergence
from conformance.reports.summary import ReportSummary, by_category, plural, summarize
from conformance.reports.values import (
    Side,
    display_value,
    is_present,
    one_line,
    printable,
    waiver_note_text,
    waiver_text,
)

STYLE = """
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --pass: #1a7f37; --fail: #cf222e; \
--bg-alt: #f6f8fa; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 0 auto;
  max-width: 1400px; padding: 1.5rem; }
code, .value { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.verdict { border-radius: 8px; padding: 1rem 1.25rem; color: #fff; }
.verdict.pass { background: var(--pass); } .verdict.fail { background: var(--fail); }
.verdict h1 { margin: 0; font-size: 1.4rem; } .verdict p { margin: .25rem 0 0; opacity: .9; }
.totals { display: flex; flex-wrap: wrap; gap: .5rem; margin: 1rem 0; }
.totals div { border: 1px solid var(--line); border-radius: 6px; padding: .3rem .7rem; font-size: 13px; }
.totals b { font-size: 1.2rem; display: block; }
.filters { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; position: sticky; top: 0;
  background: #fff; border-bottom: 1px solid var(--line); padding: .5rem 0; z-index: 1; }
.filters fieldset { border: 1px solid var(--line); border-radius: 6px; margin: 0; }
.filters label { margin-right: .6rem; white-space: nowrap; }
#shown { color: var(--muted); margin: .4rem 0; }
section.comparison { margin-top: 1.5rem; }
section.comparison h2 { margin-bottom: .2rem; font-size: 1.15rem; } \
section.comparison h2 code { font-size: 1.05rem; }
.status.pass { color: var(--pass); } .status.fail { color: var(--fail); }
.sides { color: var(--muted); margin-top: 0; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
th, td { border: 1px solid var(--line); padding: .35rem .5rem; text-align: left; vertical-align: top; }
thead th { background: var(--bg-alt); }
th.path { width: 21%; } th.side { width: 19%; } th.kind { width: 8%; } th.severity { width: 12%; }
tr.category th { background: #eef1f4; font-weight: 600; }
td .value, td.path code { white-space: pre-wrap; word-break: break-all; }
.absent { color: var(--muted); font-style: italic; }
.id { color: var(--muted); font-size: 11px; }
.badge { border-radius: 10px; padding: 0 .5rem; font-weight: 600; font-size: 12px; }
.sev-critical { background: #82071e; color: #fff; } .sev-high { background: #ffebe9; color: #a40e26; }
.sev-medium { background: #fff8c5; color: #7d4e00; } .sev-low { background: #ddf4ff; color: #0969da; }
.sev-info { background: #eaeef2; color: #57606a; }
tr.waived td { background: #f6f8fa; color: var(--muted); }
tr.waived .badge { text-decoration: line-through; }
.waiver { font-size: 12px; margin-top: .25rem; color: #8250df; } \
.waiver.expired { color: var(--fail); font-weight: 600; }
.hint { font-size: 13px; } .rule { color: var(--muted); font-size: 12px; }
.empty { color: var(--pass); }
ul.notes li.expired { color: var(--fail); }
footer { margin-top: 2rem; color: var(--muted); font-size: 12px; }
"""

SCRIPT = """
(function () {
  const boxes = Array.from(document.querySelectorAll('input[data-filter]'));
  const showWaived = document.getElementById('show-waived');
  const rows = Array.from(document.querySelectorAll('tr.divergence'));
  const shown = document.getElementById('shown');
  function apply() {
    const allowed = { category: new Set(), severity: new Set() };
    boxes.forEach(function (box) { if (box.checked) { allowed[box.dataset.filter].add(box.value); } });
    let visible = 0;
    rows.forEach(function (row) {
      const show = allowed.category.has(row.dataset.category) && allowed.severity.has(row.dataset.severity)
        && (showWaived.checked || row.dataset.waived === 'false');
      row.hidden = !show;
      if (show) { visible += 1; }
    });
    document.querySelectorAll('tbody[data-category]').forEach(function (group) {
      group.hidden = !group.querySelector('tr.divergence:not([hidden])');
    });
    shown.textContent = 'showing ' + visible + ' of ' + rows.length + ' divergences';
  }
  boxes.concat([showWaived]).forEach(function (box) { box.addEventListener('change', apply); });
  apply();
})();
"""


def _csp_hash(source: str) -> str:
    return (
        "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"
    )


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_csp_hash(STYLE)}; script-src {_csp_hash(SCRIPT)}; "
    "base-uri 'none'; form-action 'none'"
)


def h(text: str) -> str:
    """Text safe anywhere in the page, attribute values included."""
    return html.escape(printable(text), quote=True)


def _value_cell(divergence: Divergence, side: Side) -> str:
    if not is_present(divergence, side):
        return '<td><span class="absent">(absent)</span></td>'
    return f'<td><code class="value">{h(display_value(divergence, side))}</code></td>'


def _severity_cell(divergence: Divergence) -> str:
    cell = f'<span class="badge sev-{h(divergence.severity)}">{h(divergence.severity)}</span>'
    if divergence.waiver:
        expired = " expired" if divergence.waiver.expired else ""
        cell += f'<div class="waiver{expired}">{h(waiver_text(divergence.waiver))}</div>'
    elif divergence.waived:
        cell += '<div class="waiver">waived</div>'
    return f'<td class="severity">{cell}</td>'


def _row(divergence: Divergence, anchor: str) -> str:
    hint = f'<div class="hint">{h(one_line(divergence.hint))}</div>' if divergence.hint else ""
    rule = f'<div class="rule">rule: {h(one_line(divergence.rule))}</div>' if divergence.rule else ""
    classes = "divergence waived" if divergence.waived else "divergence"
    return (
        f'<tr class="{classes}" id="{h(anchor)}" data-category="{h(divergence.category)}" '
        f'data-severity="{h(divergence.severity)}" data-waived="{str(divergence.waived).lower()}">'
        f'<td class="path"><code>{h(divergence.path)}</code><div class="id">{h(divergence.id)}</div></td>'
        f"{_value_cell(divergence, 'left')}{_value_cell(divergence, 'right')}"
        f"<td>{h(divergence.kind)}</td>{_severity_cell(divergence)}<td>{hint}{rule}</td></tr>"
    )


def _comparison_section(index: int, comparison: ComparisonResult) -> str:
    waived = len(comparison.divergences) - len(comparison.unwaived)
    if comparison.passed:
        status = f'<span class="status pass">✓ passes{f" ({waived} waived)" if waived else ""}</span>'
    else:
        status = (
            f'<span class="status fail">✗ {plural(len(comparison.unwaived), "unwaived divergence")}'
            f"{f', {waived} waived' if waived else ''}</span>"
        )
    if comparison.kind == "pair":
        sides = f"left <code>{h(comparison.left)}</code> · right <code>{h(comparison.right)}</code>"
    else:
        sides = f"<code>{h(comparison.right)}</code> against baseline <code>{h(comparison.left)}</code>"
    parts = [
        f'<section class="comparison" id="comparison-{index}">',
        f"<h2><code>{h(comparison.name)}</code> {status}</h2>",
        f'<p class="sides">{sides}</p>',
    ]
    grouped = by_category(comparison)
    if not grouped:
        parts.append('<p class="empty">No divergences.</p></section>')
        return "\n".join(parts)
    parts.append(
        '<table><thead><tr><th class="path">path</th>'
        f'<th class="side">left · {h(comparison.left)}</th>'
        f'<th class="side">right · {h(comparison.right)}</th>'
        '<th class="kind">kind</th><th class="severity">severity</th><th>hint</th></tr></thead>'
    )
    for category, divergences in grouped:
        unwaived = sum(1 for d in divergences if not d.waived)
        parts.append(
            f'<tbody data-category="{h(category)}"><tr class="category"><th colspan="6">{h(category)} — '
            f"{plural(len(divergences), 'divergence')}, {unwaived} unwaived</th></tr>"
        )
        parts.extend(_row(d, f"c{index}-{d.id}") for d in divergences)
        parts.append("</tbody>")
    parts.append("</table></section>")
    return "\n".join(parts)


def _filters(summary: ReportSummary) -> str:
    severities = "".join(
        f'<label><input type="checkbox" data-filter="severity" value="{severity}" checked> {severity} '
        f"({summary.by_severity[severity].total})</label>"
        for severity in SEVERITIES
    )
    categories = "".join(
        f'<label><input type="checkbox" data-filter="category" value="{h(category)}" checked> {h(category)} '
        f"({tally.total})</label>"
        for category, tally in summary.by_category.items()
        if tally.total
    )
    return (
        '<nav class="filters" aria-label="filters">'
        f"<fieldset><legend>severity</legend>{severities}</fieldset>"
        f"<fieldset><legend>category</legend>{categories or 'none'}</fieldset>"
        "<fieldset><legend>show</legend>"
        '<label><input type="checkbox" id="show-waived" checked> waived</label>'
        '</fieldset><p id="shown" aria-live="polite"></p></nav>'
    )


def _totals(summary: ReportSummary) -> str:
    cards = [
        ("comparisons", summary.comparisons),
        ("failed comparisons", summary.failed_comparisons),
        ("unwaived divergences", summary.unwaived),
        ("waived", summary.waived),
    ]
    cards += [(f"{severity} (unwaived)", summary.by_severity[severity].unwaived) for severity in SEVERITIES]
    return (
        '<div class="totals">'
        + "".join(f"<div><b>{count}</b>{h(label)}</div>" for label, count in cards)
        + "</div>"
    )


def render_html(result: CheckResult) -> str:
    summary = summarize(result)
    context = [f"generated {result.generated_at.isoformat(timespec='seconds')}"]
    if result.config:
        context.append(f"config {result.config}")
    if result.suite:
        context.append(f"suite {result.suite}")
    notes = ""
    if result.waiver_notes:
        items = "".join(
            f'<li class="{note.problem}">{h(waiver_note_text(note))}</li>' for note in result.waiver_notes
        )
        notes = f'<section class="waivers"><h2>Waivers</h2><ul class="notes">{items}</ul></section>'
    comparisons = "\n".join(_comparison_section(i, c) for i, c in enumerate(result.comparisons))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>parity: {h(summary.verdict)}</title>
<style>{STYLE}</style>
</head>
<body>
<header class="verdict {"pass" if result.passed else "fail"}"><h1>{h(summary.verdict)}</h1>\
<p>{h(" · ".join(context))}</p></header>
{_totals(summary)}
{_filters(summary)}
<main>
{comparisons or '<p class="empty">No comparisons were run.</p>'}
{notes}
</main>
<footer>parity report · schema {h(result.schema_)} · the complete data is in report.json</footer>
<script>{SCRIPT}</script>
</body>
</html>
"""
