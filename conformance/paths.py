"""Snapshot paths and path globs, exactly as docs/SNAPSHOT.md defines them.

A path addresses one value in a snapshot: identifier-like keys are joined with dots (`env.vars.HOME`), any
other key is written in brackets with single quotes (`filesystem.paths['/opt/ml'].mode`, with `'` and `\\`
escaped by `\\`), list items are `[N]`. Reports, waivers and every `parity.yaml` rule use this syntax.

A glob is a path with `*` (any run of characters, dots and brackets included) and `?` (one character);
everything else is literal. A rule applies to a value when its glob matches the value's path or any
ancestor path, so `env.vars.TRAINING_JOB_*` covers those variables and `filesystem.paths['/opt/ml*']`
covers the whole tree under /opt/ml.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

Segment = str | int

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_WORD_WITH_WILDCARDS = re.compile(r"[A-Za-z0-9_*?-]+")
_INDEX = re.compile(r"[0-9]+")
_INDEX_WITH_WILDCARDS = re.compile(r"[0-9*?]+")

# The top-level keys of a `parity.snapshot/v1` document (docs/SNAPSHOT.md, "Top level").
SECTIONS: tuple[str, ...] = (
    "schema",
    "probe",
    "env",
    "identity",
    "credentials",
    "metrics",
    "hyperparameters",
    "spark",
    "filesystem",
    "network",
    "runtime",
    "resources",
    "process",
    "context",
    "errors",
    "truncated",
    "excluded",
    "harness",
)
# Sections that report on the probe itself rather than on the environment: their category is "probe".
PROBE_SECTIONS = frozenset({"schema", "probe", "errors", "truncated", "excluded", "harness"})


class PathSyntaxError(ValueError):
    """A path or glob that does not follow the snapshot-path syntax. The message says where and why."""


def quote_key(key: str) -> str:
    """The bracketed form of a key: `['/opt/ml']`, with `'` and `\\` escaped."""
    escaped = key.replace("\\", "\\\\").replace("'", "\\'")
    return f"['{escaped}']"


def child_path(parent: str, segment: Segment) -> str:
    """The path of `segment` under `parent` ("" for the snapshot root)."""
    if isinstance(segment, int):
        return f"{parent}[{segment}]"
    if IDENTIFIER.fullmatch(segment):
        return f"{parent}.{segment}" if parent else segment
    return parent + quote_key(segment)


def format_path(segments: Iterable[Segment]) -> str:
    path = ""
    for segment in segments:
        path = child_path(path, segment)
    return path


def parse_path(text: str) -> tuple[Segment, ...]:
    """The segments of a path; the inverse of `format_path`. Raises PathSyntaxError."""
    return tuple(segment for segment, _ in _tokens(text, allow_wildcards=False))


def ancestor_paths(path: str) -> list[str]:
    """`path` and every ancestor of it, shortest first: `a.b[0]` → [`a`, `a.b`, `a.b[0]`]."""
    return [path[:end] for _, end in _tokens(path, allow_wildcards=False)]


def category_of(section: str) -> str:
    """The divergence category of a top-level key: the collector's name, or "probe" for the probe's own."""
    return "probe" if section in PROBE_SECTIONS or section not in SECTIONS else section


def _tokens(text: str, *, allow_wildcards: bool) -> Iterable[tuple[Segment, int]]:
    """(segment, end offset) for each segment of a path or glob; wildcard segments are returned as text."""
    if not text:
        raise PathSyntaxError("empty path")
    word = _WORD_WITH_WILDCARDS if allow_wildcards else IDENTIFIER
    index = _INDEX_WITH_WILDCARDS if allow_wildcards else _INDEX
    position = 0
    length = len(text)
    while position < length:
        char = text[position]
        if char == "[":
            if text.startswith("'", position + 1):
                key, position = _quoted_key(text, position + 2)
                yield key, position
                continue
            close = text.find("]", position)
            if close < 0:
                raise PathSyntaxError(f"unclosed '[' at offset {position}")
            inner = text[position + 1 : close]
            if not index.fullmatch(inner):
                raise PathSyntaxError(
                    f"'[{inner}]' at offset {position} is neither a list index [N] nor a quoted key ['...']"
                )
            position = close + 1
            yield (inner if not inner.isdigit() else int(inner)), position
            continue
        if position > 0:
            if char == ".":
                position += 1
            elif allow_wildcards and char in "*?" and text[position - 1] == "]":
                pass  # a wildcard right after a bracket, e.g. ['/opt/ml']*
            else:
                raise PathSyntaxError(f"expected '.' or '[' at offset {position}, found {char!r}")
        match = word.match(text, position)
        if not match:
            found = repr(text[position]) if position < length else "the end"
            raise PathSyntaxError(f"expected a key at offset {position}, found {found}")
        segment = match.group()
        if not IDENTIFIER.fullmatch(segment) and not (allow_wildcards and set(segment) & {"*", "?"}):
            raise PathSyntaxError(f"key {segment!r} is not an identifier: write it as {quote_key(segment)}")
        position = match.end()
        yield segment, position


def _quoted_key(text: str, position: int) -> tuple[str, int]:
    """Read a quoted key starting just after `['`; returns the key and the offset after the closing `']`."""
    chars: list[str] = []
    start = position
    while position < len(text):
        char = text[position]
        if char == "\\":
            if position + 1 >= len(text) or text[position + 1] not in "'\\":
                raise PathSyntaxError(f"at offset {position}: only \\' and \\\\ are escapes inside ['...']")
            chars.append(text[position + 1])
            position += 2
        elif char == "'":
            if not text.startswith("]", position + 1):
                raise PathSyntaxError(f"quoted key at offset {start} must end with ']")
            return "".join(chars), position + 2
        else:
            chars.append(char)
            position += 1
    raise PathSyntaxError(f"unterminated quoted key starting at offset {start - 2}")


@dataclass(frozen=True)
class Glob:
    """A compiled path glob. `prefix` is its literal text before the first wildcard."""

    pattern: str
    regex: re.Pattern[str] = field(repr=False, compare=False)
    prefix: str = field(repr=False, compare=False)

    @property
    def is_exact(self) -> bool:
        return self.prefix == self.pattern

    @property
    def matches_everything(self) -> bool:
        return self.pattern.strip("*") == "" and "*" in self.pattern

    def matches(self, path: str) -> bool:
        return self.regex.fullmatch(path) is not None

    def matches_path_or_ancestor(self, path: str) -> bool:
        if not self.may_match_within(path):
            return False
        return any(self.regex.fullmatch(candidate) for candidate in ancestor_paths(path))

    def may_match_within(self, path: str) -> bool:
        """False when no path in the subtree at `path` (or its ancestors) can match: a cheap prefix test."""
        return self.prefix.startswith(path) or path.startswith(self.prefix)


def compile_glob(pattern: str) -> Glob:
    """Compile a path glob, checking it is a well-formed path with wildcards. Raises PathSyntaxError."""
    tokens = list(_tokens(pattern, allow_wildcards=True))
    first = tokens[0][0]
    if isinstance(first, str) and not set(first) & {"*", "?"} and first not in SECTIONS:
        raise PathSyntaxError(f"unknown snapshot section {first!r} (sections: {', '.join(SECTIONS)})")
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    wildcard_at = min((i for i, char in enumerate(pattern) if char in "*?"), default=len(pattern))
    return Glob(pattern=pattern, regex=re.compile(regex, re.DOTALL), prefix=pattern[:wildcard_at])
