"""The inbox folded from the Conversation events in memory (InboxReadModel), with the SLA
deadlines of an in-memory SLA timers process, and the changes its streams wait for."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from domain.conversation.aggregate import Conversation
from domain.customer.aggregate import Customer
from ports.inbox import InboxPage, InboxRow, inbox_cursor, seq_of

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable
    from uuid import UUID

    from adapters.inmemory.event_store import RecordedEvent
    from adapters.inmemory.sla_timers import InMemorySlaDeadlines
    from ports.inbox import InboxFilter

__all__ = ["InMemoryInbox", "InMemoryInboxChanges"]


class InMemoryInboxChanges:
    """Wakes the waiting streams each time the inbox applies a change."""

    def __init__(self) -> None:
        self.latest = 0
        self._changed = asyncio.Event()

    def changed(self, seq: int) -> None:
        self.latest = max(self.latest, seq)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_beyond(self, seq: int, at_most: float) -> None:
        changed = self._changed
        if self.latest > seq:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), at_most)


class InMemoryInbox:
    """The rows `InboxListing` would write, folded from the events given, in order."""

    def __init__(
        self,
        deadlines: InMemorySlaDeadlines | None = None,
        changes: InMemoryInboxChanges | None = None,
    ) -> None:
        self.rows: dict[UUID, InboxRow] = {}
        self.seq = 0
        self.deadlines = deadlines
        self.changes = changes

    def apply(self, events: Iterable[RecordedEvent]) -> None:
        for recorded in events:
            event = recorded.event
            if isinstance(event, Conversation.Event) and type(event).__name__ == "Started":
                self.seq += 1
                self.rows[recorded.stream_id] = InboxRow.started(event, self.seq)
            elif isinstance(event, Conversation.Event) and recorded.stream_id in self.rows:
                self.seq += 1
                row = self.rows[recorded.stream_id]
                self.rows[recorded.stream_id] = row.folding(event, self.seq)
            elif isinstance(event, Customer.Erased):
                erased = set(event.customer_ids)
                for conversation_id, row in self.rows.items():
                    if row.customer_id in erased:
                        self.rows[conversation_id] = row.erased()
        if self.changes is not None:
            self.changes.changed(self.seq)

    def _with_deadlines(self) -> list[InboxRow]:
        known = {} if self.deadlines is None else self.deadlines.deadlines
        return [row.with_deadline(known.get(row.conversation_id)) for row in self.rows.values()]

    async def page(
        self,
        where: InboxFilter,
        visible: Collection[str] | None,
        *,
        after: str | None = None,
        limit: int = 50,
    ) -> InboxPage:
        before = seq_of(after)
        found = sorted(
            (
                row
                for row in self._with_deadlines()
                if where.holds(row, visible) and (before is None or row.seq < before)
            ),
            key=lambda row: row.seq,
            reverse=True,
        )
        items = found[:limit]
        more = len(found) > limit
        return InboxPage(items, inbox_cursor(items[-1].seq) if more else None, self.seq)

    async def get(self, conversation_id: UUID) -> InboxRow | None:
        return next(
            (r for r in self._with_deadlines() if r.conversation_id == conversation_id), None
        )

    async def changed_since(
        self, seq: int, where: InboxFilter, visible: Collection[str] | None, limit: int = 500
    ) -> list[InboxRow]:
        found = sorted(
            (r for r in self._with_deadlines() if r.seq > seq and where.holds(r, visible)),
            key=lambda row: row.seq,
        )
        return found[:limit]

    async def high_water(self) -> int:
        return self.seq
