"""Reports: one CheckResult rendered as terminal text, JSON, JUnit XML, Markdown or HTML.

    render(result, fmt)          -> the report as a string, fmt in FORMATS
    write_all(result, out_dir)   -> report.json, report.junit.xml, report.md, report.html (each atomic)
    print_terminal(result)       -> the rich terminal report on stdout (or the console given)

Every format shows the same divergences in the same order with the same verdict (see `summary`), and
shows secrets only as the `hmac-sha256:` hashes the snapshot already holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conformance.atomic import write_atomically
from conformance.errors import BadInput, InfrastructureError
from conformance.model import CheckResult
from conformance.reports.html import render_html
from conformance.reports.json_report import render_json
from conformance.reports.junit import render_junit
from conformance.reports.markdown import render_markdown
from conformance.reports.terminal import print_terminal, render_text

FORMATS = ("text", "json", "junit", "markdown", "html")

_RENDERERS: dict[str, Callable[[CheckResult], str]] = {
    "text": render_text,
    "json": render_json,
    "junit": render_junit,
    "markdown": render_markdown,
    "html": render_html,
}
REPORT_FILES = {
    "json": "report.json",
    "junit": "report.junit.xml",
    "markdown": "report.md",
    "html": "report.html",
}

__all__ = ["FORMATS", "REPORT_FILES", "print_terminal", "render", "write_all"]


def render(result: CheckResult, fmt: str) -> str:
    try:
        renderer = _RENDERERS[fmt]
    except KeyError:
        raise BadInput(
            None, "--format", f"unknown report format {fmt!r} (choose from {', '.join(FORMATS)})"
        ) from None
    return renderer(result)


def write_all(result: CheckResult, out_dir: Path) -> dict[str, Path]:
    """Write the JSON, JUnit, Markdown and HTML reports into `out_dir`; return their paths by format.

    All four are rendered before the first is written, so a failure leaves no mixed set behind, and
    each file is replaced atomically (temp file + fsync + os.replace).
    """
    out_dir = Path(out_dir)
    documents = {fmt: render(result, fmt) for fmt in REPORT_FILES}
    written: dict[str, Path] = {}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for fmt, name in REPORT_FILES.items():
            write_atomically(out_dir / name, documents[fmt])
            written[fmt] = out_dir / name
    except OSError as exc:
        raise InfrastructureError(
            f"cannot write the reports to {out_dir}: {exc.strerror or exc}",
            "make --out-dir a writable directory with free space, or choose another one",
        ) from exc
    return written
