"""The report renderers: every format tells the same story, safely, in a shape its consumer accepts."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from junitparser import Failure, JUnitXml, Skipped
from markdown_it import MarkdownIt
from rich.console import Console

from conformance import reports
from conformance.cli import REPORT_FORMATS, cli
from conformance.config import CATEGORIES, SEVERITIES
from conformance.errors import BadInput, InfrastructureError
from conformance.model import AppliedWaiver, CheckResult, ComparisonResult, Divergence, WaiverNote
from conformance.reports.html import CONTENT_SECURITY_POLICY
from conformance.reports.markdown import GITHUB_COMMENT_LIMIT
from conformance.reports.schema import ReportDocument, report_json_schema, schema_file_text

GENERATED_AT = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
RUN_KEY = b"k" * 32
CANARY = "canary-clear-text-7f3a9c"
CANARY_HASH = "hmac-sha256:" + hmac.new(RUN_KEY, CANARY.encode(), hashlib.sha256).hexdigest()
HYPERPARAMETER_HINT = "SageMaker passes hyperparameters as strings; decode them in the entrypoint"
HOME_HINT = "the SageMaker container runs as root; set HOME in the entrypoint"


def divergence(path: str, comparison: str = "k8s~sagemaker", **fields) -> Divergence:
    category = path.split(".", 1)[0].split("[", 1)[0]
    defaults = {"kind": "changed", "left": "a", "right": "b", "severity": "medium"}
    defaults.update(fields)
    identity = hashlib.sha256(f"{category}|{path}|{defaults['kind']}".encode()).hexdigest()[:16]
    return Divergence(id=identity, comparison=comparison, category=category, path=path, **defaults)


def pair(divergences: list[Divergence], name: str = "k8s~sagemaker") -> ComparisonResult:
    left, right = name.split("~")
    return ComparisonResult(name=name, kind="pair", left=left, right=right, divergences=divergences)


def check_result(comparisons: list[ComparisonResult], waiver_notes: list[WaiverNote] = ()) -> CheckResult:
    return CheckResult(
        generated_at=GENERATED_AT,
        config="parity.yaml",
        suite="default",
        comparisons=comparisons,
        waiver_notes=list(waiver_notes),
    )


WAIVER = AppliedWaiver(
    reason="accepted until the uid migration", owner="ml-platform", expires=dt.date(2031, 1, 1)
)


@pytest.fixture
def broken() -> CheckResult:
    """Two comparisons, four unwaived divergences, one waived, an unused and an expired waiver."""
    return check_result(
        [
            pair(
                [
                    divergence(
                        "env.vars.HOME",
                        left="/root",
                        right="/home/sagemaker-user",
                        severity="high",
                        hint=HOME_HINT,
                    ),
                    divergence(
                        "hyperparameters.sources['/opt/ml/input/config/hyperparameters.json'].values.lr",
                        kind="type_changed",
                        left=0.1,
                        right="0.1",
                        severity="critical",
                        hint=HYPERPARAMETER_HINT,
                    ),
                    divergence(
                        "env.vars.AWS_SECRET_ACCESS_KEY",
                        left=CANARY_HASH,
                        right=None,
                        kind="missing",
                        severity="critical",
                    ),
                    divergence(
                        "identity.uid", left=0, right=1000, severity="low", waived=True, waiver=WAIVER
                    ),
                ]
            ),
            ComparisonResult(
                name="baseline:sagemaker",
                kind="baseline",
                left="baselines/default/sagemaker.json",
                right="sagemaker",
                divergences=[
                    divergence(
                        "network.hostname",
                        comparison="baseline:sagemaker",
                        kind="extra",
                        left=None,
                        right="ip-10-0-0-1",
                    )
                ],
            ),
        ],
        waiver_notes=[
            WaiverNote(
                selector="env.vars.LEGACY_*", reason="old launcher", owner="data-eng", problem="unused"
            ),
            WaiverNote(
                selector="metrics.statsd.host",
                reason="gateway pending",
                owner="obs",
                expires=dt.date(2024, 1, 1),
                problem="expired",
            ),
        ],
    )


def all_waived() -> CheckResult:
    waived = [
        divergence(path, waived=True, waiver=WAIVER)
        for path in ("env.vars.A", "identity.gid", "resources.shm.size_bytes")
    ]
    return check_result([pair(waived)])


def every_format(result: CheckResult) -> dict[str, str]:
    return {fmt: reports.render(result, fmt) for fmt in reports.FORMATS}


def with_verdict(documents: dict[str, str]) -> dict[str, str]:
    """The formats a person reads a verdict in (JUnit's verdict is its failure count)."""
    return {fmt: text for fmt, text in documents.items() if fmt != "junit"}


# --- verdict and shared behaviour -------------------------------------------------------------------


def test_the_report_formats_are_the_ones_the_cli_offers():
    assert reports.FORMATS == REPORT_FORMATS


def test_an_unknown_format_is_bad_input(broken):
    with pytest.raises(BadInput, match="unknown report format 'pdf'"):
        reports.render(broken, "pdf")


def test_a_broken_result_has_one_verdict_in_every_format(broken):
    expected = "PARITY BROKEN: 4 unwaived divergences in 2 comparisons; 1 expired waiver"
    for fmt, text in with_verdict(every_format(broken)).items():
        assert expected in text, fmt


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (check_result([]), "parity holds: 0 comparisons, 0 divergences"),
        (all_waived(), "parity holds: 1 comparison, 0 divergences (3 waived)"),
    ],
    ids=["empty", "all-waived"],
)
def test_empty_and_all_waived_results_render_a_passing_verdict(result, expected):
    documents = every_format(result)
    for fmt, text in with_verdict(documents).items():
        assert expected in text, fmt
        assert "PARITY BROKEN" not in text, fmt
    summary = json.loads(documents["json"])["summary"]
    assert (summary["passed"], summary["exit_code"], summary["verdict"]) == (True, 0, expected)
    assert documents["markdown"].startswith(f"## ✅ {expected}")
    assert '<header class="verdict pass">' in documents["html"]
    assert JUnitXml.fromstring(documents["junit"]).failures == 0


def test_an_expired_waiver_alone_breaks_parity():
    result = check_result(
        [pair([])],
        [
            WaiverNote(
                selector="env.vars.X", reason="r", owner="o", expires=dt.date(2020, 1, 1), problem="expired"
            )
        ],
    )
    assert reports.render(result, "text").rstrip().endswith("PARITY BROKEN: 1 expired waiver")
    assert json.loads(reports.render(result, "json"))["summary"]["exit_code"] == 1


def test_the_canary_secret_appears_only_as_its_hash_in_every_format(broken):
    for fmt, text in every_format(broken).items():
        assert CANARY not in text, fmt
        assert CANARY_HASH in text, fmt


def test_markdown_and_html_name_every_divergence_and_every_hint(broken):
    documents = every_format(broken)
    paths = [d.path for c in broken.comparisons for d in c.divergences]
    for fmt in ("markdown", "html", "text", "junit"):
        text = documents[fmt]
        for path in paths:
            shown = path if fmt != "html" else path.replace("'", "&#x27;")
            assert shown in text, (fmt, path)
        assert HYPERPARAMETER_HINT in text and HOME_HINT in text.replace("\n", " "), fmt


# --- JSON -------------------------------------------------------------------------------------------


def test_json_report_validates_against_the_shipped_schema_and_counts_right(broken):
    document = json.loads(reports.render(broken, "json"))
    jsonschema.Draft202012Validator(report_json_schema()).validate(document)
    summary = document["summary"]
    assert summary["passed"] is False and summary["exit_code"] == 1
    assert (summary["divergences"], summary["unwaived"], summary["waived"]) == (5, 4, 1)
    assert (summary["comparisons"], summary["failed_comparisons"]) == (2, 2)
    assert (summary["expired_waivers"], summary["unused_waivers"]) == (1, 1)
    assert summary["by_severity"]["critical"] == {"total": 2, "unwaived": 2}
    assert summary["by_severity"]["low"] == {"total": 1, "unwaived": 0}
    assert list(summary["by_severity"]) == list(SEVERITIES)
    assert summary["by_category"]["env"] == {"total": 2, "unwaived": 2}
    assert summary["by_comparison"]["baseline:sagemaker"] == {
        "total": 1,
        "unwaived": 1,
        "waived": 0,
        "passed": False,
    }
    assert document["comparisons"][0]["divergences"][0]["path"] == "env.vars.HOME"
    assert CheckResult.model_validate({k: v for k, v in document.items() if k != "summary"}) == broken


def test_a_json_report_that_breaks_the_schema_is_rejected(broken):
    document = json.loads(reports.render(broken, "json"))
    document["comparisons"][0]["divergences"][0]["kind"] = "renamed"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, report_json_schema())


def test_the_shipped_schema_is_what_the_models_generate():
    shipped = Path(reports.__file__).parent.parent / "schemas" / "report.schema.json"
    assert shipped.read_text(encoding="utf-8") == schema_file_text(), (
        "conformance/schemas/report.schema.json is stale: run `uv run python -m conformance.reports.schema`"
    )


def test_parity_schema_report_prints_the_shipped_schema():
    outcome = CliRunner().invoke(cli, ["schema", "report"])
    assert outcome.exit_code == 0
    assert json.loads(outcome.output) == report_json_schema()


# --- JUnit ------------------------------------------------------------------------------------------

# What the Jenkins junit-10 dialect allows on each element, the attributes it requires, and which children
# may appear, in order for <testsuite>. Jenkins (and GitLab) reject or misread anything else.
JUNIT_ATTRIBUTES = {
    "testsuites": ({"name", "time", "tests", "failures", "disabled", "errors"}, set()),
    "testsuite": (
        {
            "name",
            "tests",
            "failures",
            "errors",
            "time",
            "disabled",
            "skipped",
            "timestamp",
            "hostname",
            "id",
            "package",
            "file",
            "log",
            "url",
            "version",
        },
        {"name", "tests"},
    ),
    "properties": (set(), set()),
    "property": ({"name", "value"}, {"name", "value"}),
    "testcase": ({"name", "assertions", "time", "classname", "status"}, {"name"}),
    "failure": ({"type", "message"}, set()),
    "error": ({"type", "message"}, set()),
    "skipped": ({"message"}, set()),
    "system-out": (set(), set()),
    "system-err": (set(), set()),
}
TESTSUITE_CHILD_ORDER = ["properties", "testcase", "system-out", "system-err"]
TESTCASE_CHILDREN = {"skipped", "error", "failure", "system-out", "system-err"}
COUNT_ATTRIBUTES = {"tests", "failures", "errors", "skipped", "disabled"}


def assert_jenkins_junit(document: str) -> ET.Element:
    root = ET.fromstring(document.encode("utf-8"))  # expat: refuses any character XML 1.0 forbids
    assert root.tag == "testsuites"
    for element in root.iter():
        allowed, required = JUNIT_ATTRIBUTES[element.tag]
        assert set(element.attrib) <= allowed, (element.tag, element.attrib)
        assert required <= set(element.attrib), (element.tag, element.attrib)
        for name in COUNT_ATTRIBUTES & set(element.attrib):
            assert re.fullmatch(r"\d+", element.get(name)), (element.tag, name)
        if "time" in element.attrib:
            assert re.fullmatch(r"\d+(\.\d+)?", element.get("time"))
        if "timestamp" in element.attrib:
            assert dt.datetime.fromisoformat(element.get("timestamp"))
    for suite in root:
        assert suite.tag == "testsuite"
        order = [TESTSUITE_CHILD_ORDER.index(child.tag) for child in suite]
        assert order == sorted(order) and order.count(0) <= 1, [child.tag for child in suite]
        for case in suite.iter("testcase"):
            assert {child.tag for child in case} <= TESTCASE_CHILDREN
            assert case.get("name")
    return root


def test_junit_is_valid_for_jenkins_and_its_counts_match_what_junitparser_counts(broken):
    document = reports.render(broken, "junit")
    root = assert_jenkins_junit(document)
    xml = JUnitXml.fromstring(document)
    suites = {suite.name: suite for suite in xml}
    assert list(suites) == ["k8s~sagemaker", "baseline:sagemaker", "waivers"]

    for suite in suites.values():
        cases = list(suite)
        assert suite.tests == len(cases)
        assert suite.failures == sum(1 for case in cases if any(isinstance(r, Failure) for r in case.result))
        assert suite.skipped == sum(1 for case in cases if any(isinstance(r, Skipped) for r in case.result))
        assert suite.errors == 0
    assert int(root.get("tests")) == sum(suite.tests for suite in suites.values())
    assert int(root.get("failures")) == sum(suite.failures for suite in suites.values())

    pair_suite = suites["k8s~sagemaker"]
    cases = {case.name: case for case in pair_suite}
    assert list(cases) == list(CATEGORIES)  # one test case per category, divergent or not
    assert all(case.classname == "k8s~sagemaker" for case in cases.values())
    env_failures = [r for r in cases["env"].result if isinstance(r, Failure)]
    assert sorted(f.message for f in env_failures) == [
        "env.vars.AWS_SECRET_ACCESS_KEY missing",
        "env.vars.HOME changed",
    ]
    home = next(f for f in env_failures if f.message == "env.vars.HOME changed")
    assert '"/root"' in home.text and '"/home/sagemaker-user"' in home.text and HOME_HINT in home.text
    assert cases["hyperparameters"].result[0].type == "type_changed"
    # the waived uid divergence is reported, not failed
    assert cases["identity"].is_passed and "identity.uid" in cases["identity"].system_out
    assert "ml-platform" in cases["identity"].system_out
    assert sum(len(case.result) for case in pair_suite) == 3  # the three unwaived divergences

    waivers = {case.name: case for case in suites["waivers"]}
    assert isinstance(waivers["metrics.statsd.host"].result[0], Failure)
    assert isinstance(waivers["env.vars.LEGACY_*"].result[0], Skipped)


def test_junit_escapes_characters_xml_forbids_and_markup():
    nasty = 'nul\x00 bell\x07 vt\x0b esc\x1b ff\x0c nonchar\ufffe surrogate\ud800 ]]> <tag> & "q"'
    result = check_result(
        [
            pair(
                [
                    divergence(
                        "env.vars['WEIRD\x01NAME']", left=nasty, right="\x7f", hint="see <this> & \x02that"
                    )
                ]
            )
        ]
    )
    document = reports.render(result, "junit")
    assert_jenkins_junit(document)
    document.encode("utf-8")  # no lone surrogate left
    [suite] = list(JUnitXml.fromstring(document))
    case = next(case for case in suite if case.name == "env")
    [found] = case.result
    assert found.message == "env.vars['WEIRD\\x01NAME'] changed"
    assert "\\u0000" in found.text and "\\ufffe" in found.text and "\\ud800" in found.text
    assert "]]> <tag> &" in found.text and "see <this> & \\x02that" in found.text


# --- Markdown ---------------------------------------------------------------------------------------


def markdown_tables(text: str) -> list[list[list[str]]]:
    """The Markdown rendered as GitHub would (GFM tables), as tables of rows of cell HTML."""
    rendered = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(text)
    tables = re.findall(r"<table>(.*?)</table>", rendered, re.DOTALL)
    return [
        [
            re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.DOTALL)
            for row in re.findall(r"<tr>(.*?)</tr>", table, re.DOTALL)
        ]
        for table in tables
    ]


def test_markdown_starts_with_the_verdict_and_has_a_summary_table_per_comparison(broken):
    text = reports.render(broken, "markdown")
    assert text.startswith("## ❌ PARITY BROKEN: 4 unwaived divergences in 2 comparisons")
    tables = markdown_tables(text)
    summaries = [table for table in tables if table[0][0] == "category"]
    assert len(summaries) == 2
    assert summaries[0][1:] == [
        ["env", "2", "2", "0", "critical"],
        ["hyperparameters", "1", "1", "0", "critical"],
        ["identity", "1", "0", "1", "—"],
    ]
    divergence_tables = [table for table in tables if table[0][0] == "path"]
    assert all(len(row) == 6 for table in divergence_tables for row in table)
    assert "~~low~~ · waived by `ml-platform` until 2031-01-01: accepted until the uid migration" in text
    assert "**expired** waiver `metrics.statsd.host`" in text and "unused waiver `env.vars.LEGACY_*`" in text


def test_markdown_keeps_pipes_backticks_and_html_inside_their_cells():
    value = "a|b `tick` ``double`` <script>alert(1)</script> *bold* @someone"
    result = check_result(
        [pair([divergence("env.vars['A|`B`']", left=value, right="x\ny", hint="use `x` | *y* <b>")])]
    )
    text = reports.render(result, "markdown")
    [table] = [table for table in markdown_tables(text) if table[0][0] == "path"]
    [row] = table[1:]
    assert len(row) == 6
    assert row[0] == "<code>env.vars['A|`B`']</code>"
    assert row[2] == (
        "<code>&quot;a|b `tick` ``double`` &lt;script&gt;alert(1)&lt;/script&gt; *bold* @someone&quot;</code>"
    )
    assert row[3] == "<code>&quot;x\\ny&quot;</code>"
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    assert "<script" not in rendered and "<b>" not in rendered
    assert "use `x` | *y* &lt;b&gt;" in re.sub(r"</?code>", "`", rendered)


def test_markdown_stays_under_the_github_comment_limit_and_says_what_it_left_out():
    many = [
        divergence(f"env.vars.VAR_{i:05d}", left="x" * 300, right="y" * 300, severity="low")
        for i in range(3000)
    ]
    urgent = divergence(
        "credentials.aws.resolved_source", left="web_identity", right="none", severity="critical"
    )
    result = check_result([pair([*many, urgent])])
    text = reports.render(result, "markdown")
    assert len(text) <= GITHUB_COMMENT_LIMIT
    shown = sum(len(table) - 1 for table in markdown_tables(text) if table[0][0] == "path")
    assert 0 < shown < 3001
    assert f"**{3001 - shown} more divergences not shown — see report.json**" in text
    assert "credentials.aws.resolved_source" in text  # the most urgent category comes first
    assert "x" * 300 not in text  # long values are shortened in Markdown …
    assert "x" * 300 in reports.render(result, "json")  # … never in the JSON report


# --- HTML -------------------------------------------------------------------------------------------


def test_html_is_one_self_contained_page_with_filters(broken):
    page = reports.render(broken, "html")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(
        r"<link\b|\bsrc=|https?://(?!www\.w3\.org)", page.replace(CONTENT_SECURITY_POLICY, "")
    )
    for severity in SEVERITIES:
        assert f'data-filter="severity" value="{severity}"' in page
    for category in ("env", "hyperparameters", "identity", "network"):
        assert f'data-filter="category" value="{category}"' in page
    assert 'id="show-waived"' in page
    rows = re.findall(
        r'<tr class="(divergence[^"]*)"[^>]*data-category="([^"]+)" data-severity="([^"]+)"', page
    )
    assert len(rows) == 5
    assert ("divergence waived", "identity", "low") in rows
    assert "waived by ml-platform until 2031-01-01: accepted until the uid migration" in page
    assert '<th class="side">left · k8s</th><th class="side">right · sagemaker</th>' in page


def test_html_content_security_policy_admits_exactly_the_inline_style_and_script(broken):
    page = reports.render(broken, "html")
    (style,) = re.findall(r"<style>(.*?)</style>", page, re.DOTALL)
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    for source, directive in ((style, "style-src"), (script, "script-src")):
        digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY and CONTENT_SECURITY_POLICY in page


def test_html_escapes_attacker_controlled_values_everywhere():
    attack = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    result = check_result(
        [
            pair(
                [
                    divergence(
                        f"env.vars['{attack}']",
                        left=attack,
                        right="\u202eevil\x1b[2J",
                        hint=attack,
                        waived=True,
                        waiver=AppliedWaiver(reason=attack, owner=attack),
                    )
                ],
                name="k8s~sagemaker",
            )
        ],
        [WaiverNote(selector=attack, reason=attack, owner=attack, problem="unused")],
    )
    page = reports.render(result, "html")
    assert page.count("<script") == 1  # ours
    assert "<img" not in page and "onerror=alert(2)>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\u202e" not in page and "\x1b" not in page and "\\u202eevil" in page


# --- terminal and text ------------------------------------------------------------------------------


def grouped_result() -> CheckResult:
    return check_result(
        [
            pair(
                [
                    divergence("env.vars.B", severity="medium"),
                    divergence("identity.home", severity="critical", left="/root", right="/home/user"),
                    divergence("env.vars.A", severity="high"),
                ],
                name="k8s~sagemaker",
            ),
            pair(
                [divergence("network.hostname", comparison="k8s~processing", severity="info")],
                name="k8s~processing",
            ),
        ]
    )


def test_terminal_groups_by_comparison_then_category_most_urgent_first():
    lines = reports.render(grouped_result(), "text").splitlines()

    def line_of(fragment: str) -> int:
        return next(i for i, line in enumerate(lines) if fragment in line)

    order = [
        line_of("k8s~sagemaker"),
        line_of("identity  1 divergence"),  # critical: the most urgent category first
        line_of("identity.home"),
        line_of("env  2 divergences"),
        line_of("env.vars.A"),  # high before medium within the category
        line_of("env.vars.B"),
        line_of("k8s~processing"),
        line_of("network  1 divergence"),
        line_of("network.hostname"),
        line_of("PARITY BROKEN"),
    ]
    assert order == sorted(order)
    assert lines[-1] == "PARITY BROKEN: 4 unwaived divergences in 2 comparisons"


def test_terminal_shows_hints_waivers_and_waiver_notes(broken):
    text = reports.render(broken, "text")
    flat = " ".join(text.split())
    assert HOME_HINT in flat and HYPERPARAMETER_HINT in flat
    assert "waived by ml-platform until 2031-01-01: accepted until the uid migration" in flat
    assert (
        "unused waiver env.vars.LEGACY_* (owner data-eng, reason: old launcher) matched no divergence" in flat
    )
    assert "expired waiver metrics.statsd.host" in flat and "expired on 2024-01-01" in flat


def test_terminal_colours_only_a_real_terminal_and_prints_the_same_content(broken):
    buffer = io.StringIO()
    reports.print_terminal(
        broken, Console(file=buffer, force_terminal=True, color_system="standard", width=100)
    )
    coloured = buffer.getvalue()
    assert "\x1b[" in coloured
    plain = reports.render(broken, "text")
    assert "\x1b" not in plain
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_terminal_neutralises_escape_sequences_and_markup_and_shortens_long_values():
    result = check_result(
        [pair([divergence("env.vars['\x1b]0;pwned\x07']", left="[bold red]x[/] \x1b[2J", right="v" * 5000)])]
    )
    text = reports.render(result, "text")
    assert "\x1b" not in text and "\x07" not in text
    assert "env.vars['\\x1b]0;pwned\\x07']" in text
    assert '"[bold red]x[/] \\u001b[2J"' in text
    assert "v" * 5000 not in text and "(+" in text
    assert "v" * 5000 in reports.render(result, "html")


# --- every format, any input ------------------------------------------------------------------------

NASTY_TEXT = [
    "<script>alert(1)</script>",
    "a|b`c``d",
    "\x00\x01\x0b\x1b[31m",
    "\ufffe\uffff",
    "\ud800",
    "\u202eevil",
    "]]>",
    "&amp;",
    "[bold]x[/bold]",
    "line\nbreak",
    "hmac-sha256:" + "0" * 64,
]
texts = st.one_of(st.text(max_size=20), st.sampled_from(NASTY_TEXT))
names = st.one_of(st.text(min_size=1, max_size=12), st.sampled_from(NASTY_TEXT))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=6,
)
waivers = st.builds(
    AppliedWaiver, reason=names, owner=names, expires=st.none() | st.dates(), expired=st.booleans()
)
divergences = st.builds(
    Divergence,
    id=st.text(alphabet="0123456789abcdef", min_size=8, max_size=16),
    comparison=names,
    category=st.sampled_from([*CATEGORIES, "<odd category>"]),
    path=names,
    kind=st.sampled_from(["missing", "extra", "changed", "type_changed"]),
    left=json_values,
    right=json_values,
    severity=st.sampled_from(SEVERITIES),
    waived=st.booleans(),
    waiver=st.none() | waivers,
    hint=st.none() | texts,
    rule=st.none() | texts,
)
comparisons = st.builds(
    ComparisonResult,
    name=names,
    kind=st.sampled_from(["pair", "baseline"]),
    left=names,
    right=names,
    divergences=st.lists(divergences, max_size=5),
)
waiver_notes = st.builds(
    WaiverNote,
    selector=names,
    reason=names,
    owner=names,
    expires=st.none() | st.dates(),
    problem=st.sampled_from(["unused", "expired"]),
)
results = st.builds(
    CheckResult,
    generated_at=st.datetimes(timezones=st.just(dt.timezone.utc)),
    config=st.none() | names,
    suite=st.none() | names,
    comparisons=st.lists(comparisons, max_size=3, unique_by=lambda c: c.name),
    waiver_notes=st.lists(waiver_notes, max_size=2),
)
SCHEMA_VALIDATOR = jsonschema.Draft202012Validator(report_json_schema())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(results)
def test_every_format_renders_any_result_safely_and_consistently(result):
    documents = every_format(result)
    for fmt, text in documents.items():
        text.encode("utf-8")  # writable as UTF-8: no lone surrogate survives
        assert "\x1b" not in text and "\u202e" not in text, fmt

    document = json.loads(documents["json"])
    SCHEMA_VALIDATOR.validate(document)
    assert ReportDocument.model_validate(document).summary.passed == result.passed
    assert document["summary"]["exit_code"] == result.exit_code

    assert_jenkins_junit(documents["junit"])
    xml = JUnitXml.fromstring(documents["junit"])
    unwaived = sum(len(comparison.unwaived) for comparison in result.comparisons)
    comparison_suites = [suite for suite in xml][: len(result.comparisons)]
    assert (
        sum(1 for suite in comparison_suites for case in suite for r in case.result if isinstance(r, Failure))
        == unwaived
    )

    assert documents["html"].count("<script") == 1
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(documents["markdown"])
    assert "<script" not in rendered
    assert all(
        len(row) == 6
        for table in markdown_tables(documents["markdown"])
        if table[0][0] == "path"
        for row in table
    )
    assert documents["text"].rstrip().endswith(document["summary"]["verdict"])


# --- writing the files ------------------------------------------------------------------------------


def test_write_all_writes_the_four_reports_and_leaves_no_temporary_files(broken, tmp_path):
    out_dir = tmp_path / "out" / "reports"
    written = reports.write_all(broken, out_dir)
    assert {fmt: path.name for fmt, path in written.items()} == {
        "json": "report.json",
        "junit": "report.junit.xml",
        "markdown": "report.md",
        "html": "report.html",
    }
    for fmt, path in written.items():
        assert path.read_text(encoding="utf-8") == reports.render(broken, fmt)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(p.name for p in written.values())


def test_an_interrupted_write_keeps_the_previous_report_whole(broken, tmp_path, monkeypatch):
    reports.write_all(all_waived(), tmp_path)
    before = {path.name: path.read_text(encoding="utf-8") for path in tmp_path.iterdir()}

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", disk_full)
    with pytest.raises(InfrastructureError, match="No space left on device"):
        reports.write_all(broken, tmp_path)
    assert {path.name: path.read_text(encoding="utf-8") for path in tmp_path.iterdir()} == before


def test_an_out_dir_that_is_a_file_is_an_infrastructure_error_not_a_traceback(broken, tmp_path):
    blocker = tmp_path / "reports"
    blocker.write_text("not a directory")
    with pytest.raises(InfrastructureError, match="cannot write the reports to .*reports"):
        reports.write_all(broken, blocker)
