"""What PostgreSQL cannot hold, or should not, refused at the edge with the JSON path of the value.

Shared by HTTP and NATS: a text with NUL (which PostgreSQL text and jsonb refuse), another
control character, a lone surrogate or invalid UTF-8, and a document nested deeper than
MAX_DEPTH, are refused before anything stores them or walks them recursively. Every string
and key refuses every control character (ids, names, keys, identities, types), but free text,
the strings under a `FREE_TEXT` field, keeps tab, line feed and carriage return.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "FREE_TEXT",
    "MAX_DEPTH",
    "InputRefused",
    "TextFault",
    "document_fault",
    "line_fault",
    "number_fault",
    "raw_fault",
    "text_fault",
    "wire_fault",
]

MAX_DEPTH = 32
"""Arrays and objects nested in any JSON document taken over HTTP or NATS, at most."""

FREE_TEXT = frozenset(
    {"body", "html", "description", "properties", "attributes", "variables", "context"}
)
"""Fields whose strings (and the strings of all they hold) may keep tabs and line breaks."""

# Category Cc (C0, DEL, C1) and lone surrogates.
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_FREE_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_BACKSLASH, _DEL, _OPEN_BRACE, _OPEN_BRACKET = b"\\\x7f{["
# The JSON escapes that can make a control character or a surrogate; `\/`, `\"` or `\u00e9`
# cannot. (After an escaped backslash this may see one that is not there: only slower.)
_RISKY_ESCAPE = re.compile(rb"\\(?:[bfnrt]|u(?:00[01]|007[fF]|00[89]|[dD][89a-fA-F]))")
# C1 control characters (U+0080-U+009F) in UTF-8.
_C1 = re.compile(rb"\xc2[\x80-\x9f]")


@dataclass(frozen=True, slots=True)
class TextFault:
    """Where in a document (`$.identities[0].value`, `query.identity`) and what is wrong."""

    path: str
    reason: str


class InputRefused(ValueError):
    """A request or message holds what the edge refuses; `fault` says where and why, and
    `faults` every place at fault (two fields that disagree), `fault` first."""

    def __init__(self, fault: TextFault, *more: TextFault) -> None:
        super().__init__("; ".join(f"{each.path}: {each.reason}" for each in (fault, *more)))
        self.fault = fault
        self.faults = (fault, *more)


def _described(found: re.Match[str]) -> str:
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        return f"holds a lone surrogate (U+{code:04X}); send valid Unicode"
    return f"holds the control character U+{code:04X} at position {found.start()}"


def line_fault(value: str) -> str | None:
    """Why `value` cannot be a name, id, key or identity: a control character or a surrogate."""
    if value.isprintable():  # the common case, without a regex
        return None
    found = _ANY_CONTROL.search(value)
    return None if found is None else _described(found)


def text_fault(value: str) -> str | None:
    """Why `value` cannot be free text: as `line_fault`, but tab and line breaks are text."""
    if value.isprintable():
        return None
    found = _FREE_CONTROL.search(value)
    return None if found is None else _described(found)


def _segment(step: str | int) -> str:
    if isinstance(step, int):
        return f"[{step}]"
    return f".{step}" if _PLAIN_KEY.match(step) else f"[{step!a}]"


def document_fault(value: Any, path: str = "$", *, free: bool = False) -> TextFault | None:
    """The first string, key or nesting in a decoded JSON document that the edge refuses.

    Strings are lines (no control characters at all) unless `free` or under a FREE_TEXT field.
    """
    found = _fault(value, free, 0)
    if found is None:
        return None
    trail, reason = found
    return TextFault(path + "".join(map(_segment, reversed(trail))), reason)


_Found = tuple[list[str | int], str]


def _fault(value: Any, free: bool, depth: int) -> _Found | None:
    """Where (the steps in from `value`, innermost first) and why; the path is only built for
    a fault, since this runs on every signal that holds an escape."""
    kind = type(value)
    if kind is str:
        reason = text_fault(value) if free else line_fault(value)
        return None if reason is None else ([], reason)
    if kind is dict:
        if depth >= MAX_DEPTH:
            return [], f"is nested deeper than {MAX_DEPTH} levels"
        for key, item in value.items():
            if not key.isprintable():
                reason = line_fault(key)
                if reason is not None:
                    return [key], f"its name {reason}"
            step = type(item)
            if step is str:
                if item.isprintable():
                    continue
            elif step is not dict and step is not list:
                continue
            found = _fault(item, free or key in FREE_TEXT, depth + 1)
            if found is not None:
                found[0].append(key)
                return found
    elif kind is list:
        if depth >= MAX_DEPTH:
            return [], f"is nested deeper than {MAX_DEPTH} levels"
        for index, item in enumerate(value):
            step = type(item)
            if step is str:
                if item.isprintable():
                    continue
            elif step is not dict and step is not list:
                continue
            found = _fault(item, free, depth + 1)
            if found is not None:
                found[0].append(index)
                return found
    return None


def raw_fault(raw: bytes | msgspec.Raw, path: str = "$", *, free: bool = False) -> TextFault | None:
    """The first fault of a JSON document as it came over the wire, invalid UTF-8 included.

    Nothing is decoded for a document that cannot hold a fault: valid UTF-8 without an escape
    that makes a control character or a surrogate (raw ones are not JSON), DEL or C1 control
    characters, and with too few brackets to nest deeper than MAX_DEPTH. A document that is
    not JSON is left to its own decoder.
    """
    data = raw if isinstance(raw, bytes) else bytes(raw)
    ascii_only = data.isascii()
    if not ascii_only:
        try:
            data.decode()
        except UnicodeDecodeError as error:
            return TextFault(path, f"is not valid UTF-8 (at byte {error.start})")
    # Bytes as ints: `in` is then a memchr, and `count` a third faster.
    if (
        (_BACKSLASH not in data or _RISKY_ESCAPE.search(data) is None)
        and _DEL not in data
        and (ascii_only or _C1.search(data) is None)
        and data.count(_OPEN_BRACE) + data.count(_OPEN_BRACKET) <= MAX_DEPTH
    ):
        return None
    try:
        value = msgspec.json.decode(data)
    except RecursionError:
        steps = _too_deep(data)
        where = path if steps is None else path + "".join(map(_segment, steps))
        return TextFault(where, f"is nested deeper than {MAX_DEPTH} levels")
    except msgspec.DecodeError:
        return None
    return document_fault(value, path, free=free)


# A JSON string (skipped whole, whatever brackets it holds), or a bracket.
_STRUCTURE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_QUOTE = ord('"')
_SCAN_AT_MOST = 250_000
"""Strings and brackets looked at to find where a document is too deep (a tenth of a second
or so): one deep only further on is refused at `$`."""


def _too_deep(data: bytes) -> list[str | int] | None:
    """The steps in to the first array or object nested deeper than MAX_DEPTH, outermost
    first, found without recursion, however deep the document: None if there is none, or the
    document is not JSON up to it, or it is further on than _SCAN_AT_MOST tokens.

    The document up to that bracket, with a stand-in for it and its enclosers closed, is
    JSON at most MAX_DEPTH deep: read, its last item at each level is the way in."""
    closers: list[int] = []
    keys: list[bytes | None] = []  # per level: the key that led into it, in an object
    last = b""
    for scanned, found in enumerate(_STRUCTURE.finditer(data)):
        if scanned == _SCAN_AT_MOST:
            return None
        token = found.group()
        if token[0] == _QUOTE:
            last = token
            continue
        if token in b"[{":
            key = last if closers and closers[-1] == ord("}") else None
            if len(closers) == MAX_DEPTH:
                keys.append(key)
                return _way_in(data[: found.start()] + b"0" + bytes(reversed(closers)), keys)
            closers.append(ord("]") if token == b"[" else ord("}"))
            keys.append(key)
        elif not closers:
            return None
        else:
            closers.pop()
            keys.pop()
    return None


def _way_in(prefix: bytes, keys: list[bytes | None]) -> list[str | int] | None:
    try:
        value = msgspec.json.decode(prefix)
        steps: list[str | int] = []
        for key in keys[1:]:  # the outermost has no way in
            if key is None:
                steps.append(len(value) - 1)
                value = value[-1]
            else:
                name = msgspec.json.decode(key)
                steps.append(name)
                value = value[name]
    except (msgspec.DecodeError, RecursionError, LookupError, TypeError):
        return None
    return steps


def number_fault(raw: bytes, error: str, path: str = "$") -> TextFault | None:
    """Where a JSON document holds a number too large to be finite (`1e400`), for msgspec's
    `error` on reading it, which does not say where; None for any other error."""
    if not error.startswith("Number out of range"):
        return None
    try:
        value = json.loads(raw)  # Python's reader takes such a number as infinite
    except (ValueError, RecursionError):
        return None
    found = _infinite(value)
    if found is None:
        return None
    return TextFault(
        path + "".join(map(_segment, reversed(found))),
        "is a number too large to hold: it must be finite",
    )


def _infinite(value: Any) -> list[str | int] | None:
    """The steps in to the first number that is not finite, innermost first."""
    if isinstance(value, float) and not math.isfinite(value):
        return []
    items: Iterable[tuple[str | int, Any]] = ()
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    for step, item in items:
        found = _infinite(item)
        if found is not None:
            found.append(step)
            return found
    return None


def wire_fault(raw: bytes | msgspec.Raw) -> tuple[str, str] | None:
    """`raw_fault`'s path and reason, for the domain's document readers."""
    fault = raw_fault(raw)
    return None if fault is None else (fault.path, fault.reason)
