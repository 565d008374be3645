"""Kubelet's `$(VAR)` expansion, byte for byte (kubernetes-contract §1, `k8s third_party/forked/golang/
expansion/expand.go`).

Rules reproduced exactly: `$(NAME)` is replaced when the lookup knows NAME and kept literally otherwise;
`$$` is an escaped `$`; an unclosed `$(` is kept; a `$` before any other byte is kept with that byte; a
trailing `$` is kept. The Go code walks bytes and turns the byte after a lone `$` into a rune, so `$` in
front of a non-ASCII character yields invalid UTF-8 — reported as an error here, since that value cannot
be passed through the Docker API (JSON) and is almost certainly a mistake in the manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

_OPERATOR = 0x24  # $
_OPENER = 0x28  # (
_CLOSER = 0x29  # )


class ExpansionError(ValueError):
    pass


def lookup_in(*contexts: Mapping[str, str]) -> Callable[[str], str | None]:
    """`MappingFuncFor`: the first context that has the name wins."""

    def lookup(name: str) -> str | None:
        for context in contexts:
            if name in context:
                return context[name]
        return None

    return lookup


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    data = text.encode("utf-8")
    out = bytearray()
    checkpoint = 0
    cursor = 0
    while cursor < len(data):
        if data[cursor] == _OPERATOR and cursor + 1 < len(data):
            out += data[checkpoint:cursor]
            read, is_variable, advance = _read_variable_name(data[cursor + 1 :])
            if is_variable:
                name = read.decode("utf-8")
                found = lookup(name)
                out += (f"$({name})" if found is None else found).encode("utf-8")
            else:
                out += read
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out += data[checkpoint:]
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise ExpansionError(
            f"kubelet's byte-wise $(VAR) expansion turns {text!r} into invalid UTF-8 "
            "(a `$` directly before a non-ASCII character); escape it as `$$`"
        ) from None


def _read_variable_name(rest: bytes) -> tuple[bytes, bool, int]:
    """`tryReadVariableName`: (bytes read, whether they name a variable, bytes consumed after the `$`)."""
    first = rest[0]
    if first == _OPERATOR:
        return rest[:1], False, 1
    if first == _OPENER:
        closer = rest.find(bytes([_CLOSER]), 1)
        if closer != -1:
            return rest[1:closer], True, closer + 1
        return b"$(", False, 1
    # Go's `string(input[0])` converts the byte to a rune: bytes >= 0x80 become two UTF-8 bytes.
    return b"$" + chr(first).encode("utf-8"), False, 1
