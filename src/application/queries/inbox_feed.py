"""One reader of the inbox's changes for every live stream of a process.

Each time the inbox projection commits, the feed reads the rows changed since it last read,
once, whatever their filters, and hands them to every stream, which keeps those its filter and
teams let through. So 50 agents watching the inbox cost one query a change, not fifty.
A stream that falls too far behind is let go (`FeedOverrun`): its client reconnects with
`Last-Event-ID` and catches up from the projection.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from ports.inbox import InboxFilter

if TYPE_CHECKING:
    from ports.inbox import InboxChanges, InboxReadModel, InboxRow

__all__ = ["FeedOverrun", "InboxFeed", "Subscription"]

_EVERYTHING = InboxFilter()


class FeedOverrun(Exception):
    """A stream fell further behind the feed than it may: its client reconnects."""


class Subscription:
    """What the feed hands one stream: batches of changed rows, in order."""

    def __init__(self, feed: InboxFeed, behind_at_most: int) -> None:
        self.feed = feed
        self.queue: asyncio.Queue[list[InboxRow] | None] = asyncio.Queue(behind_at_most)

    def hand(self, rows: list[InboxRow]) -> None:
        try:
            self.queue.put_nowait(rows)
        except asyncio.QueueFull:
            self.feed.subscriptions.discard(self)
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)  # overrun: the stream ends

    async def next(self, at_most: float) -> list[InboxRow]:
        """The next batch, or none after `at_most` seconds."""
        try:
            rows = await asyncio.wait_for(self.queue.get(), at_most)
        except TimeoutError:
            return []
        if rows is None:
            raise FeedOverrun("this stream fell too far behind the inbox: reconnect")
        return rows

    def close(self) -> None:
        self.feed.subscriptions.discard(self)


class InboxFeed:
    """Reads each change of the inbox once for every subscribed stream; it runs while anyone
    subscribes, from the inbox's last change when the first one did."""

    def __init__(
        self,
        inbox: InboxReadModel,
        changes: InboxChanges,
        *,
        batch: int = 1000,
        behind_at_most: int = 1000,
        idle_check: float = 15.0,
        retry_after: float = 1.0,
    ) -> None:
        self.inbox = inbox
        self.changes = changes
        self.batch = batch
        self.behind_at_most = behind_at_most
        self.idle_check = idle_check
        self.retry_after = retry_after
        self.subscriptions: set[Subscription] = set()
        self.seen = 0
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()

    async def subscribe(self) -> tuple[Subscription, int]:
        """A subscription, and the `seq` after which it gets every change."""
        async with self._starting:  # streams opening together start one reader
            if self._task is None or self._task.done():
                self.seen = await self.inbox.high_water()
                self._task = asyncio.create_task(self._follow(), name="inbox-feed")
        subscription = Subscription(self, self.behind_at_most)
        self.subscriptions.add(subscription)
        return subscription, self.seen

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self) -> None:
        while self.subscriptions:
            try:
                await self.changes.wait_beyond(self.seen, self.idle_check)
                await self._read()
            except Exception:
                await asyncio.sleep(self.retry_after)

    async def _read(self) -> None:
        while True:
            rows = await self.inbox.changed_since(self.seen, _EVERYTHING, None, self.batch)
            if not rows:
                return
            self.seen = rows[-1].seq
            for subscription in list(self.subscriptions):
                subscription.hand(rows)
            if len(rows) < self.batch:
                return
