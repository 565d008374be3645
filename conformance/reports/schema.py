"""The JSON Schema of the JSON report, shipped as `conformance/schemas/report.schema.json`.

`parity schema report` prints the shipped file; the test suite checks that it is exactly what the models
generate, so the schema users validate against and the reports we write cannot drift apart. After
changing conformance/model.py or the summary, regenerate it with
`uv run python -m conformance.reports.schema`.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from conformance.model import REPORT_SCHEMA, CheckResult
from conformance.reports.summary import ReportSummary

SCHEMA_PACKAGE = "conformance"
SCHEMA_FILE = "schemas/report.schema.json"


class ReportDocument(CheckResult):
    """The JSON report: a check result and the summary computed from it."""

    schema_: Literal["parity.report/v1"] = Field(REPORT_SCHEMA, alias="schema")
    summary: ReportSummary


def generate_report_schema() -> dict[str, Any]:
    """The JSON Schema of the JSON report, generated from the models."""
    schema = ReportDocument.model_json_schema(by_alias=True, mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "parity report",
        "description": "What `parity check` and `parity diff --format json` write: every divergence "
        "between the compared snapshots, the verdict and summary counts.",
    }


def schema_file_text() -> str:
    return json.dumps(generate_report_schema(), indent=2, sort_keys=True) + "\n"


def report_json_schema() -> dict[str, Any]:
    """The shipped JSON Schema of the JSON report."""
    return json.loads(resources.files(SCHEMA_PACKAGE).joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


if __name__ == "__main__":
    target = Path(str(resources.files(SCHEMA_PACKAGE).joinpath(SCHEMA_FILE)))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(schema_file_text(), encoding="utf-8")
    print(f"wrote {target}")
