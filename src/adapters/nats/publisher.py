"""Publishes outbound events to a JetStream stream, many in flight at once, each acknowledged."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from ports.bus import PublishFailed

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nats.js.api import PubAck
    from nats.js.client import JetStreamContext

    from ports.bus import OutboundMessage

__all__ = ["OUTBOUND_STREAM", "JetStreamPublisher", "ensure_stream", "ensure_stream_config"]

OUTBOUND_STREAM = "CHORUS_OUT"
DUPLICATE_WINDOW = 120.0  # seconds; a page republished after a crash falls inside it
MSG_ID = "Nats-Msg-Id"


async def ensure_stream(
    js: JetStreamContext,
    name: str,
    subjects: str,
    *,
    duplicate_window: float = DUPLICATE_WINDOW,
    max_age: float | None = None,
) -> None:
    """Creates the stream, or adds the subjects and widens the duplicate window of an existing
    one; whatever else an operator configured on it (limits, replicas, max age) is kept."""
    await ensure_stream_config(
        js,
        StreamConfig(
            name=name,
            subjects=[subjects],
            storage=StorageType.FILE,
            duplicate_window=duplicate_window,
            max_age=max_age,
        ),
    )


async def ensure_stream_config(js: JetStreamContext, wanted: StreamConfig) -> None:
    """Adds the stream, or adds the wanted subjects and widens the duplicate window of an
    existing one; whatever else an operator configured on it is kept."""
    name = wanted.name or ""
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        try:
            await js.add_stream(wanted)
            return
        except BadRequestError as error:
            # Another worker created it meanwhile; anything else (subjects overlapping another
            # stream) is the caller's to fix.
            try:
                info = await js.stream_info(name)
            except NotFoundError:
                raise error from None
    current = info.config
    known = list(current.subjects or [])
    missing = [s for s in wanted.subjects or [] if s not in known]
    window = wanted.duplicate_window or 0
    if missing or current.duplicate_window < window:
        await js.update_stream(
            current.evolve(
                subjects=known + missing,
                duplicate_window=max(current.duplicate_window, window),
            )
        )


class JetStreamPublisher:
    """Sends a batch as pipelined JetStream publishes and waits for all their acks.

    `Nats-Msg-Id` carries each message's id, so the stream drops a copy published again within
    its duplicate window.
    """

    def __init__(
        self, js: JetStreamContext, *, stream: str | None = None, timeout: float = 5.0
    ) -> None:
        self.js = js
        self.stream = stream  # when set, a message no stream of that name stores is an error
        self.timeout = timeout

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        if not messages:
            return
        results = await asyncio.gather(
            *(self._publish(message) for message in messages), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise PublishFailed(
                f"{len(failures)} of {len(messages)} messages not acknowledged: {failures[0]!r}"
            ) from failures[0]

    async def _publish(self, message: OutboundMessage) -> PubAck:
        return await self.js.publish(
            message.subject,
            message.payload,
            timeout=self.timeout,
            stream=self.stream,
            headers={**message.headers, MSG_ID: message.message_id},
        )
