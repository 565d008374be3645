"""The JUnit XML report, so an existing Jenkins or GitLab pipeline gates on parity with no new tooling.

Shape (the Jenkins junit-10 dialect, which GitLab also reads):

- `<testsuites>` root; one `<testsuite>` per comparison (`name` = comparison, properties `kind`, `left`,
  `right`), plus a `waivers` suite when parity.yaml has unused or expired waivers;
- one `<testcase classname="<comparison>" name="<category>">` for every snapshot category, divergent or
  not, so the set of tests is the same on every run and a fixed category shows up as a passing test;
- each unwaived divergence is a `<failure message="<path> <kind>" type="<kind>">` whose text holds the
  left and right values, the severity, the hint and the divergence id; waived divergences are listed in
  the test case's `<system-out>` and do not fail it;
- an expired waiver is a failing test case, an unused one a skipped test case.

Counts follow JUnit's meaning: `tests` is the number of test cases and `failures` / `skipped` the number
of test cases that failed / were skipped (a category with three divergences is one failed test with
three `<failure>` elements). `time` is 0: a comparison has no duration of its own.
Every string passes through `values.printable`, so characters XML 1.0 forbids never reach the file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from conformance.model import CheckResult, ComparisonResult, Divergence, WaiverNote
from conformance.reports.summary import by_category, categories_of
from conformance.reports.values import display_value, one_line, printable, waiver_note_text, waiver_text

WAIVERS_SUITE = "waivers"


def _failure_text(divergence: Divergence) -> str:
    lines = [
        f"left:     {display_value(divergence, 'left')}",
        f"right:    {display_value(divergence, 'right')}",
        f"severity: {divergence.severity}",
    ]
    if divergence.hint:
        lines.append(f"hint:     {one_line(divergence.hint)}")
    if divergence.rule:
        lines.append(f"rule:     {one_line(divergence.rule)}")
    if divergence.waiver:
        lines.append(waiver_text(divergence.waiver))
    lines.append(f"id:       {printable(divergence.id)}")
    return "\n".join(lines)


def _waived_text(divergence: Divergence) -> str:
    waiver = waiver_text(divergence.waiver) if divergence.waiver else "waived"
    return (
        f"{printable(divergence.path)} {divergence.kind} ({divergence.severity}): "
        f"{display_value(divergence, 'left')} -> {display_value(divergence, 'right')}; "
        f"{waiver}; id {printable(divergence.id)}"
    )


def _testsuite(parent: ET.Element, name: str, timestamp: str) -> ET.Element:
    """A <testsuite> whose counts `_set_counts` fills in once its test cases exist."""
    counts = dict.fromkeys(("tests", "failures", "errors", "skipped"), "0")
    return ET.SubElement(parent, "testsuite", name=printable(name), **counts, time="0", timestamp=timestamp)


def _set_counts(element: ET.Element, tests: int, failures: int, skipped: int | None) -> None:
    element.set("tests", str(tests))
    element.set("failures", str(failures))
    element.set("errors", "0")
    if skipped is not None:
        element.set("skipped", str(skipped))


def _comparison_suite(
    root: ET.Element, comparison: ComparisonResult, categories: list[str], timestamp: str
) -> ET.Element:
    suite = _testsuite(root, comparison.name, timestamp)
    properties = ET.SubElement(suite, "properties")
    for key in ("kind", "left", "right"):
        ET.SubElement(properties, "property", name=key, value=printable(getattr(comparison, key)))
    grouped = dict(by_category(comparison))
    failed = 0
    for category in categories:
        case = ET.SubElement(
            suite, "testcase", name=printable(category), classname=printable(comparison.name), time="0"
        )
        divergences = grouped.get(category, [])
        unwaived = [d for d in divergences if not d.waived]
        for divergence in unwaived:
            failure = ET.SubElement(
                case,
                "failure",
                message=f"{printable(divergence.path)} {divergence.kind}",
                type=divergence.kind,
            )
            failure.text = _failure_text(divergence)
        waived = [d for d in divergences if d.waived]
        if waived:
            ET.SubElement(case, "system-out").text = "waived divergences (not failures):\n" + "\n".join(
                _waived_text(d) for d in waived
            )
        failed += bool(unwaived)
    _set_counts(suite, tests=len(categories), failures=failed, skipped=0)
    return suite


def _waivers_suite(root: ET.Element, notes: list[WaiverNote], timestamp: str) -> ET.Element:
    suite = _testsuite(root, WAIVERS_SUITE, timestamp)
    for note in notes:
        case = ET.SubElement(
            suite, "testcase", name=printable(note.selector), classname=WAIVERS_SUITE, time="0"
        )
        if note.problem == "expired":
            ET.SubElement(
                case, "failure", message=f"waiver expired on {note.expires}", type="expired_waiver"
            ).text = waiver_note_text(note)
        else:
            ET.SubElement(case, "skipped", message="waiver matched no divergence").text = waiver_note_text(
                note
            )
    expired = sum(1 for note in notes if note.problem == "expired")
    _set_counts(suite, tests=len(notes), failures=expired, skipped=len(notes) - expired)
    return suite


def render_junit(result: CheckResult) -> str:
    timestamp = result.generated_at.isoformat(timespec="seconds")
    root = ET.Element("testsuites", name="parity", tests="0", failures="0", errors="0", time="0")
    categories = categories_of(result)
    suites = [_comparison_suite(root, comparison, categories, timestamp) for comparison in result.comparisons]
    if result.waiver_notes:
        suites.append(_waivers_suite(root, result.waiver_notes, timestamp))
    # <testsuites> takes no `skipped` attribute in the junit-10 dialect Jenkins validates against.
    _set_counts(
        root,
        tests=sum(int(suite.get("tests")) for suite in suites),
        failures=sum(int(suite.get("failures")) for suite in suites),
        skipped=None,
    )
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
