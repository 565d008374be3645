"""The JSON report: the check result as CI and the certificate consume it, with its summary counts.

The document is the check result as `model_dump(mode="json", by_alias=True)` would give it, plus a
`summary` object (verdict, passed, exit_code, counts per severity, category and comparison);
`conformance.reports.schema` holds its JSON Schema.
"""

from __future__ import annotations

import datetime as dt
import json

from conformance.model import CheckResult
from conformance.reports.summary import summarize


def _iso_date(value: object) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def render_json(result: CheckResult) -> str:
    """The JSON report; the same document as `model_dump(mode="json", by_alias=True)` plus `summary`.

    The dump is taken in python mode and dates are encoded here because pydantic's json mode fails on a
    dict key holding a lone surrogate, which a hand-edited snapshot or baseline can contain. The output
    is ASCII-only, so such a character becomes a \\u escape and the file is always valid UTF-8 JSON.
    """
    document = result.model_dump(by_alias=True)
    schema = document.pop("schema")
    summary = summarize(result).model_dump()
    return json.dumps({"schema": schema, "summary": summary, **document}, indent=2, default=_iso_date) + "\n"
