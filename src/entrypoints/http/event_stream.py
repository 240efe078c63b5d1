"""Server-sent events (`text/event-stream`) as the API writes them, on every route that streams
them: an opening sent the moment a stream opens, so that its status and headers reach the client
at once rather than with its first event (a browser's `EventSource` stays "connecting" until
then, and a proxy with a first-byte timeout gives up); events; and keep-alive comments.

The opening (a `retry:` field and a comment) and the keep-alive (a comment alone) hold no `data:`
line, so a browser's `EventSource` fires no event for them, and no `id:`, so they leave the last
event id a reconnecting client sends untouched.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from litestar.response import Stream

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Mapping

__all__ = ["KEEP_ALIVE", "OPENING", "RECONNECT_MS", "EventStream", "comment", "event"]

RECONNECT_MS = 3000
"""How long a client waits before it reconnects to a stream that ended (the `retry:` field)."""

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


OPENING = f"retry: {RECONNECT_MS}{_END}" + comment("open")
"""The first bytes of every stream, sent as it opens: the reconnection delay and a comment."""
KEEP_ALIVE = comment("keep-alive")
"""What a quiet stream sends now and then, so that proxies keep its connection open."""

_HEADERS = {"Cache-Control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no"}


async def _opened(frames: AsyncGenerator[str, None]) -> AsyncIterator[str]:
    try:
        yield OPENING
        async for frame in frames:
            yield frame
    finally:
        await frames.aclose()


class EventStream(Stream):
    """A `text/event-stream` answer: `OPENING` at once, then `frames` (from `event` and
    `comment`, `KEEP_ALIVE`) as they come; closing the answer closes `frames`."""

    def __init__(
        self, frames: AsyncGenerator[str, None], *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(
            _opened(frames),
            media_type="text/event-stream",
            headers={**_HEADERS, **(headers or {})},
        )
