"""What the SLA timers process keeps and reads: one durable deadline a conversation whose clock
runs, claimed when due by one timer run at a time, and the streams it reads the conversation,
its customer, its team and the routing book from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping
    from datetime import datetime, timedelta
    from uuid import UUID

    from ports.campaign_enrollments import Streams
    from ports.inbox import SlaDeadline
    from ports.processes import AggregateSaves

__all__ = ["SlaDeadlines", "SlaPorts", "TimedSla"]


class SlaDeadlines(Protocol):
    """At most one deadline a conversation: the breach its running clock waits for."""

    async def set(self, deadlines: Mapping[UUID, SlaDeadline]) -> None:
        """Sets (or moves) the deadlines of these conversations."""
        ...

    async def clear(self, conversation_ids: Collection[UUID]) -> None:
        """Drops the deadlines of these conversations: no clock runs for them."""
        ...

    async def claim_due(self, now: datetime, limit: int) -> list[UUID]:
        """Up to `limit` conversations whose deadline is due by `now` and not yet breached,
        soonest first; held by this transaction and skipped by any other until it ends."""
        ...

    async def put_off(self, conversation_id: UUID, by: timedelta) -> None:
        """Moves an unbreached deadline later, after its firing failed."""
        ...

    async def of(self, conversation_ids: Collection[UUID]) -> dict[UUID, SlaDeadline]:
        """The deadlines of these conversations, those that have one."""
        ...


class SlaPorts(Protocol):
    """The ports the SLA timers process works through, bound to one transaction."""

    @property
    def conversations(self) -> AggregateSaves:
        """Where the conversations whose breaches (and escalations) were recorded are saved, as
        every other writer of a conversation saves it: with its holder in the routing roster."""
        ...

    @property
    def streams(self) -> Streams:
        """Conversations, customers, teams and the routing book, as last committed."""
        ...

    @property
    def sla_deadlines(self) -> SlaDeadlines: ...


class TimedSla(Protocol):
    """The process's work that time alone brings: the deadlines that fall due."""

    @property
    def name(self) -> str: ...

    async def due(self, ports: SlaPorts, limit: int) -> int:
        """Fires up to `limit` due deadlines, each once; how many it fired."""
        ...
