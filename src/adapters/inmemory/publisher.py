"""A bus that keeps what is published, and drops a republished copy as JetStream does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ports.bus import PublishFailed

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ports.bus import OutboundMessage

__all__ = ["RecordingPublisher"]


class RecordingPublisher:
    """`failing` makes the next publishes fail after storing only the first message of each."""

    def __init__(self) -> None:
        self.published: list[OutboundMessage] = []
        self.failing = 0

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        known = {m.message_id for m in self.published}
        fresh = [m for m in messages if m.message_id not in known]
        if self.failing:
            self.failing -= 1
            self.published.extend(fresh[:1])
            raise PublishFailed(f"{len(fresh) - 1} of {len(messages)} not acknowledged")
        self.published.extend(fresh)
