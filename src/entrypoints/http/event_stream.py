"""Server-sent events (`text/event-stream`) as the API writes them, on every route that streams
them: events, and keep-alive comments.

A keep-alive is a comment alone: no `data:` line, so a browser's `EventSource` fires no event for
it, and no `id:`, so it leaves the last event id a reconnecting client sends untouched.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from litestar.response import Stream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

__all__ = ["KEEP_ALIVE", "EventStream", "comment", "event"]

_END = "\r\n"
_LINES = re.compile(r"\r\n|\r|\n")


def comment(text: str) -> str:
    """A comment: lines a client reads and ignores, ending with the blank line."""
    return "".join(f": {line}{_END}" for line in _LINES.split(text)) + _END


def event(kind: str, event_id: int | str, data: str) -> str:
    """An event of type `kind` whose id a reconnecting client sends back as `Last-Event-ID`."""
    fields = [f"event: {_LINES.sub('', kind)}", f"id: {_LINES.sub('', str(event_id))}"]
    fields += [f"data: {line}" for line in _LINES.split(data)]
    return _END.join(fields) + _END + _END


KEEP_ALIVE = comment("keep-alive")
"""What a quiet stream sends now and then, so that proxies keep its connection open."""

_HEADERS = {"Cache-Control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no"}


class EventStream(Stream):
    """A `text/event-stream` answer: `frames` (from `event` and `comment`, `KEEP_ALIVE`) as
    they come."""

    def __init__(
        self, frames: AsyncIterator[str], *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(
            frames,
            media_type="text/event-stream",
            headers={**_HEADERS, **(headers or {})},
        )
