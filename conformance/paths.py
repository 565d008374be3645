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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from conformance.config import CATEGORIES

T = TypeVar("T")

Segment = str | int

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_WORD_WITH_WILDCARDS = re.compile(r"[A-Za-z0-9_*?-]+")
_INDEX = re.compile(r"[0-9]+")
_INDEX_WITH_WILDCARDS = re.compile(r"[0-9*?]+")

# The top-level keys of a `parity.snapshot/v1` document (docs/SNAPSHOT.md, "Top level"): the collectors'
# sections plus the probe's and the harness's own.
SECTIONS: tuple[str, ...] = ("schema", *CATEGORIES, "errors", "truncated", "excluded", "harness")
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


# One segment of a well-formed path: .key (or key at the start), [N], or ['quoted key'].
_SEGMENT = re.compile(r"(?:(?<=^)|\.)([A-Za-z_][A-Za-z0-9_-]*)|\[([0-9]+)\]|\['((?:[^'\\]|\\['\\])*)'\]")
_UNESCAPE = re.compile(r"\\(['\\])")


def _path_tokens(text: str) -> list[tuple[Segment, int]]:
    """(segment, end offset) of each segment; the fast path for well-formed paths, the careful one
    otherwise."""
    tokens: list[tuple[Segment, int]] = []
    position = 0
    while position < len(text):
        match = _SEGMENT.match(text, position)
        if not match or (match.start() == 0 and text.startswith(".")):
            return list(_tokens(text, allow_wildcards=False))  # raises PathSyntaxError saying where
        key, index, quoted = match.groups()
        segment: Segment = (
            key if key is not None else int(index) if index is not None else _UNESCAPE.sub(r"\1", quoted)
        )
        position = match.end()
        tokens.append((segment, position))
    if not tokens:
        raise PathSyntaxError("empty path")
    return tokens


def parse_path(text: str) -> tuple[Segment, ...]:
    """The segments of a path; the inverse of `format_path`. Raises PathSyntaxError."""
    return tuple(segment for segment, _ in _path_tokens(text))


def ancestor_paths(path: str) -> list[str]:
    """`path` and every ancestor of it, shortest first: `a.b[0]` → [`a`, `a.b`, `a.b[0]`]."""
    return [path[:end] for _, end in _path_tokens(path)]


def section_of(path: str) -> str:
    """The first segment of a path, as written: `env` for `env.vars.HOME`."""
    for index, char in enumerate(path):
        if char in ".[":
            return path[:index]
    return path


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

    def matches_path_or_ancestor(self, path: str, ancestors: Sequence[str] | None = None) -> bool:
        """Whether the glob matches `path` or an ancestor (pass `ancestor_paths(path)` when already known)."""
        if not self.may_match_within(path):
            return False
        return any(self.regex.fullmatch(candidate) for candidate in ancestors or ancestor_paths(path))

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


class GlobIndex(Generic[T]):
    """Values keyed by globs, answering "which globs match this path" without testing every glob.

    Exact globs (no wildcard) are a dictionary lookup; the others are tested only when their literal prefix
    is compatible with the path. Matches come back in the order the entries were given.
    """

    __slots__ = ("_exact", "_wildcards")

    def __init__(self, entries: Iterable[tuple[Glob, T]] = ()) -> None:
        self._exact: dict[str, list[tuple[int, T]]] = {}
        self._wildcards: list[tuple[int, Glob, T]] = []
        for position, (glob, value) in enumerate(entries):
            if glob.is_exact:
                self._exact.setdefault(glob.pattern, []).append((position, value))
            else:
                self._wildcards.append((position, glob, value))

    def __bool__(self) -> bool:
        return bool(self._exact or self._wildcards)

    def matching(self, paths: Sequence[str]) -> list[T]:
        """The values whose glob matches any of `paths` (a path and its ancestors: all share a prefix)."""
        found: list[tuple[int, T]] = []
        for path in paths:
            found += self._exact.get(path, ())
        if self._wildcards:
            longest = paths[-1]
            for position, glob, value in self._wildcards:
                prefix = glob.prefix
                if longest.startswith(prefix) and any(glob.regex.fullmatch(path) for path in paths):
                    found.append((position, value))
        if len(paths) > 1 or self._wildcards:
            found.sort(key=lambda entry: entry[0])
        return [value for _, value in found]

    def within(self, path: str) -> GlobIndex[T]:
        """The entries that may match `path` or a path below it."""
        narrowed: GlobIndex[T] = GlobIndex()
        narrowed._exact = {key: values for key, values in self._exact.items() if key.startswith(path)}
        narrowed._wildcards = [
            entry
            for entry in self._wildcards
            if entry[1].prefix.startswith(path) or path.startswith(entry[1].prefix)
        ]
        return narrowed
