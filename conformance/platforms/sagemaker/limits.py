"""SageMaker's API limits, enforced at the exact boundaries of the service model before anything runs.

The limits are not copied by hand: they are read from the botocore service model installed with boto3
(`botocore/data/sagemaker/2017-07-24/service-2.json.gz`), walking every shape reachable from the
operation's input. botocore itself checks only `required`, `min` and types client-side (its
`VALIDATED_METADATA_ATTRS`); maximums, patterns and enums are enforced by the service, which is why a
request can pass boto3 and still fail at submission — or, on a job spec that was never submitted, stay a
latent migration bug (sagemaker-contract.md §3, "Client-side checks"). So this module checks them all,
then runs botocore's own validator as well, so nothing botocore would reject slips through.

The model's patterns are Java regular expressions, matched against the whole value. They are translated
to the `regex` module's syntax: `.` excludes Java's line terminators, `\\w \\d \\s` and `\\p{Alnum}` are
ASCII as in Java, `\\p{L}`/`\\p{Z}`/`\\p{N}` stay Unicode, and Java's UTF-16 surrogate-pair ranges become
code-point ranges.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex
from botocore.loaders import Loader
from botocore.model import ServiceModel, Shape
from botocore.validate import ParamValidator

from conformance.errors import BadInput

OPERATIONS = {"training": "CreateTrainingJob", "processing": "CreateProcessingJob"}

# Java's line terminators: `.` matches none of them unless DOTALL (java.util.regex.Pattern).
_JAVA_DOT = r"[^\n\r\u0085\u2028\u2029]"
_JAVA_ESCAPES_OUTSIDE_SET = {
    "w": "[a-zA-Z0-9_]",
    "W": "[^a-zA-Z0-9_]",
    "d": "[0-9]",
    "D": "[^0-9]",
    "s": "[ \\t\\n\\x0B\\f\\r]",
    "S": "[^ \\t\\n\\x0B\\f\\r]",
}
_JAVA_POSIX_CLASSES = {
    "Alnum": "a-zA-Z0-9",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Lower": "a-z",
    "Upper": "A-Z",
}


def java_pattern_to_regex(pattern: str) -> str:
    """Translate a Java regular expression from the service model into `regex` V1 syntax (nested sets)."""
    out: list[str] = []
    depth = 0
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escape = pattern[index + 1]
            if escape == "u":
                code, index = _java_code_unit(pattern, index)
                out.append(f"\\U{code:08X}")
                continue
            if escape == "p" and pattern.startswith("{", index + 2):
                end = pattern.index("}", index)
                name = pattern[index + 3 : end]
                if name in _JAVA_POSIX_CLASSES:
                    ranges = _JAVA_POSIX_CLASSES[name]
                    out.append(ranges if depth else f"[{ranges}]")
                else:
                    out.append(pattern[index : end + 1])
                index = end + 1
                continue
            if escape in _JAVA_ESCAPES_OUTSIDE_SET:
                out.append(_JAVA_ESCAPES_OUTSIDE_SET[escape])  # a nested set inside a set (V1)
            else:
                out.append(pattern[index : index + 2])
            index += 2
            continue
        if char == "[":
            depth += 1
        elif char == "]" and depth:
            depth -= 1
        elif char == "." and not depth:
            char = _JAVA_DOT
        out.append(char)
        index += 1
    return "".join(out)


def _java_code_unit(pattern: str, index: int) -> tuple[int, int]:
    """Read `\\uXXXX` at `index`; a UTF-16 surrogate pair written as two escapes becomes one code point."""
    unit = int(pattern[index + 2 : index + 6], 16)
    index += 6
    if 0xD800 <= unit <= 0xDBFF and pattern.startswith("\\u", index):
        low = int(pattern[index + 2 : index + 6], 16)
        if 0xDC00 <= low <= 0xDFFF:
            return 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), index + 6
    return unit, index


@functools.cache
def service_model() -> ServiceModel:
    loader = Loader()
    return ServiceModel(loader.load_service_model("sagemaker", "service-2"), service_name="sagemaker")


def input_shape(api: str) -> Shape:
    return service_model().operation_model(OPERATIONS[api]).input_shape


@functools.cache
def compiled_pattern(pattern: str) -> regex.Pattern:
    return regex.compile(java_pattern_to_regex(pattern), flags=regex.V1)


@dataclass(frozen=True)
class FieldLimits:
    """The limits of one field of a request, as the service model states them."""

    shape: str
    type: str
    min: float | None
    max: float | None
    pattern: str | None
    enum: tuple[str, ...]


def field_limits(api: str, path: str) -> FieldLimits:
    """Limits at a dotted path of the request: `HyperParameters`, `HyperParameters.<value>`,
    `Environment.<key>`, `InputDataConfig[].ChannelName`, … (`<key>`/`<value>` step into a map,
    `[]` into a list)."""
    shape = input_shape(api)
    for part in path.replace("[]", ".[]").split("."):
        if part == "[]":
            shape = shape.member
        elif part == "<key>":
            shape = shape.key
        elif part == "<value>":
            shape = shape.value
        else:
            shape = shape.members[part]
    meta = shape.metadata
    return FieldLimits(
        shape=shape.name,
        type=shape.type_name,
        min=meta.get("min"),
        max=meta.get("max"),
        pattern=meta.get("pattern"),
        enum=tuple(getattr(shape, "enum", None) or ()),
    )


def validate_request(api: str, request: dict[str, Any], source: Path | str) -> None:
    """Raise BadInput(source, field path, problem) for the first way `request` breaks the API's rules."""
    _Checker(source).check(request, input_shape(api), "")
    report = ParamValidator().validate(request, input_shape(api))
    if report.has_errors():
        first = report.generate_report().splitlines()[0]
        raise BadInput(source, None, f"botocore rejects the request: {first}")


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "float": (float, int),
    "double": (float, int),
    "boolean": (bool,),
    "timestamp": (dt.datetime, str),
    "blob": (bytes, bytearray, str),
    "structure": (dict,),
    "map": (dict,),
    "list": (list, tuple),
}
_JSON_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "long": "an integer",
    "float": "a number",
    "double": "a number",
    "boolean": "true or false",
    "timestamp": "a timestamp",
    "blob": "binary data",
    "structure": "a mapping",
    "map": "a mapping",
    "list": "a list",
}


class _Checker:
    def __init__(self, source: Path | str):
        self.source = source

    def fail(self, path: str, problem: str) -> None:
        raise BadInput(self.source, path or "(request)", problem)

    def check(self, value: Any, shape: Shape, path: str, role: str = "value", conceal: bool = False) -> None:
        """Check `value` against `shape`; `role` names it in messages ("key" for a map key) and `conceal`
        keeps map values (Environment, HyperParameters: possibly secrets) out of them."""
        kind = shape.type_name
        expected = _PYTHON_TYPES.get(kind)
        if expected and (not isinstance(value, expected) or (kind != "boolean" and isinstance(value, bool))):
            self.fail(path, f"must be {_JSON_NAMES[kind]} (got {type(value).__name__})")
        if kind == "structure":
            self._structure(value, shape, path)
        elif kind == "list":
            self._size(path, len(value), shape, "items")
            for index, item in enumerate(value):
                self.check(item, shape.member, f"{path}[{index}]")
        elif kind == "map":
            self._size(path, len(value), shape, "entries")
            for key, item in value.items():
                self.check(key, shape.key, _join(path, str(key)), role="key")
                self.check(item, shape.value, _join(path, str(key)), conceal=True)
        elif kind == "string":
            self._string(value, shape, path, role, conceal)
        elif kind in ("integer", "long", "float", "double"):
            self._number(value, shape, path)

    def _structure(self, value: dict, shape: Shape, path: str) -> None:
        for name in value:
            if name not in shape.members:
                known = ", ".join(shape.members)
                self.fail(_join(path, name), f"unknown field for {shape.name} (fields: {known})")
        for name in shape.required_members:
            if name not in value:
                self.fail(_join(path, name), f"required by {shape.name} and missing")
        for name, member in value.items():
            self.check(member, shape.members[name], _join(path, name))

    def _size(self, path: str, count: int, shape: Shape, unit: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if high is not None and count > high:
            self.fail(path, f"has {count} {unit}; SageMaker allows at most {high}")
        if low is not None and count < low:
            self.fail(path, f"has {count} {unit}; SageMaker requires at least {low}")

    def _string(self, value: str, shape: Shape, path: str, what: str, conceal: bool) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if high is not None and len(value) > high:
            self.fail(path, f"{what} is {len(value)} characters; SageMaker allows at most {high}")
        if low is not None and len(value) < low:
            self.fail(path, f"{what} is {len(value)} characters; SageMaker requires at least {low}")
        pattern = shape.metadata.get("pattern")
        if pattern is not None and compiled_pattern(pattern).fullmatch(value) is None:
            shown = "" if conceal else f" {_excerpt(value)}"
            because = (
                " (it contains a line break, which `.` does not match)" if _has_line_break(value) else ""
            )
            self.fail(path, f"{what}{shown} does not match SageMaker's pattern {pattern}{because}")
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            listed = ", ".join(enum[:8]) + (f", … ({len(enum)} values)" if len(enum) > 8 else "")
            self.fail(path, f"{what} {_excerpt(value)} is not one of {listed}")

    def _number(self, value: float, shape: Shape, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if high is not None and value > high:
            self.fail(path, f"value is {value}; SageMaker allows at most {high}")
        if low is not None and value < low:
            self.fail(path, f"value is {value}; SageMaker requires at least {low}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _has_line_break(value: str) -> bool:
    return any(char in value for char in "\n\r\u0085\u2028\u2029")


def _excerpt(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")
