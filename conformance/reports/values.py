"""Turning divergence values and free text into something every report format can show safely.

Everything a report shows can come from the workload: env var names and values, file paths, hostnames.
A value may hold terminal escape sequences, bidi overrides that reorder what a reader sees (the
"Trojan Source" trick), characters XML 1.0 forbids even as references, or lone surrogates that no UTF-8
file can hold. `printable` makes any such text visible and inert as `\\xNN` / `\\uNNNN` escapes, so the same
safe string can go into a terminal, an XML attribute, a Markdown cell or an HTML page.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from conformance.model import AppliedWaiver, Divergence, WaiverNote

Side = Literal["left", "right"]
ABSENT = "(absent)"

# C0 and C1 controls, DEL, bidi embeddings/overrides/isolates, the two XML-forbidden noncharacters and
# lone surrogates: the characters that can hide, reorder or break the text around them.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufffe\uffff\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control, bidi-override, XML-forbidden or unencodable character escaped."""
    return _UNSAFE.sub(_escape, text)


def one_line(text: str) -> str:
    """Free text (a hint, a waiver reason) on one line: whitespace runs collapsed, then made printable."""
    return printable(" ".join(text.split()))


def is_present(divergence: Divergence, side: Side) -> bool:
    """Whether the path exists on `side`: `missing` has no right value, `extra` no left value."""
    if side == "right":
        return divergence.kind != "missing"
    return divergence.kind != "extra"


def display_value(divergence: Divergence, side: Side) -> str:
    """One side's value as JSON text (so `0.1` and `"0.1"` look different), or `(absent)`."""
    if not is_present(divergence, side):
        return ABSENT
    value: Any = getattr(divergence, side)
    return printable(json.dumps(value, ensure_ascii=False, sort_keys=True))


def shorten(text: str, limit: int) -> str:
    """`text` cut to about `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    kept = max(limit - 20, 1)
    return f"{text[:kept]}… (+{len(text) - kept} chars)"


def waiver_text(waiver: AppliedWaiver) -> str:
    """How a divergence's waiver reads in a report: who accepted it, until when, and why."""
    if waiver.expired:
        return one_line(f"waiver by {waiver.owner} EXPIRED on {waiver.expires}: {waiver.reason}")
    until = f" until {waiver.expires.isoformat()}" if waiver.expires else ""
    return one_line(f"waived by {waiver.owner}{until}: {waiver.reason}")


def waiver_note_action(note: WaiverNote) -> str:
    """What is wrong with an unused or expired waiver and what to do about it."""
    if note.problem == "expired":
        return f"expired on {note.expires}; fix the divergence or renew the waiver with a new expiry date"
    return "matched no divergence; remove it or fix its selector"


def waiver_note_text(note: WaiverNote) -> str:
    """An unused or expired waiver from parity.yaml, with what to do about it, on one line."""
    return one_line(
        f"{note.problem} waiver {note.selector} (owner {note.owner}, reason: {note.reason}) "
        f"{waiver_note_action(note)}"
    )
