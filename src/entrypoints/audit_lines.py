"""The audit log's wire: one JSON line per event, and the cursor a client resumes from.

Shared by `GET /v1/audit/events` and `chorus audit export`, so a file and a download hold the
same lines.
"""

from __future__ import annotations

import re
from datetime import datetime  # msgspec reads the field types at run time
from uuid import UUID

import msgspec

from application.audit.refusals import AuditQueryRefused
from ports.audit import AuditedEvent, LogCursor

__all__ = ["LINE_MEDIA_TYPE", "cursor_text", "line_of", "parse_cursor"]

LINE_MEDIA_TYPE = "application/x-ndjson"
_CURSOR = re.compile(r"([0-9]{1,19})\.([0-9]{1,19})")
_BIGINT = 2**63


class _Line(msgspec.Struct):
    position: int
    cursor: str
    stream: UUID
    version: int
    type: str
    recorded_at: datetime
    payload: msgspec.Raw  # the stored JSON as it is, never decoded and encoded again


_encode = msgspec.json.Encoder().encode


def cursor_text(cursor: LogCursor) -> str:
    """`<transaction>.<position>`: after this event, in the log's order."""
    return f"{cursor.transaction_id}.{cursor.position}"


def parse_cursor(text: str | None, parameter: str = "after") -> LogCursor:
    """The cursor a line or a page gave; the start of the log when there is none."""
    if not text:
        return LogCursor()
    found = _CURSOR.fullmatch(text)
    if found is None or any(int(part) >= _BIGINT for part in found.groups()):
        raise AuditQueryRefused(
            parameter, "is not a cursor: give the `cursor` of a line, or a page's next cursor"
        )
    return LogCursor(int(found[1]), int(found[2]))


def line_of(event: AuditedEvent) -> bytes:
    """The event as one line of JSON, its newline included."""
    return (
        _encode(
            _Line(
                event.position,
                cursor_text(event.cursor),
                event.stream_id,
                event.version,
                event.topic,
                event.recorded_at,
                msgspec.Raw(event.payload),
            )
        )
        + b"\n"
    )
