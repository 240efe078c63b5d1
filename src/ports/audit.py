"""The event log read for auditors: a customer's streams up to an instant, and the raw log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

__all__ = [
    "AuditLog",
    "AuditedEvent",
    "CustomerHistory",
    "KeptReplay",
    "LogCursor",
    "LogFilter",
    "LogPlan",
    "MessageHistory",
    "Unopened",
    "WaitingContent",
]


class Unopened(str):
    """A personal value of an event in a `CustomerHistory` left sealed until it is shown: it
    reads as the empty text (the place a sealed value leaves in a stored event) until
    `opened()` gives it.

    Only values the aggregate keeps without looking at them come so (a profile's names, the
    custom attributes): most are replaced by later ones before any view shows them, and
    opening each costs more than everything else a replay does with its event."""

    __slots__ = ()

    def opened(self) -> Any:
        """The value as it was recorded."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True, order=True)
class LogCursor:
    """A place in the global log, which is read in (transaction_id, position) order: the order
    in which events became visible, so a reader resuming after a cursor skips nothing."""

    transaction_id: int = 0
    position: int = 0


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which events of the log: empty `streams` or `topics` means any; `since` included,
    `until` excluded, on the time each event was recorded."""

    streams: tuple[UUID, ...] = ()
    topics: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditedEvent:
    """An event as stored: its payload is the stored JSON, byte for byte."""

    cursor: LogCursor
    stream_id: UUID
    version: int
    topic: str
    recorded_at: datetime
    payload: bytes

    @property
    def position(self) -> int:
        return self.cursor.position


@dataclass(frozen=True, slots=True)
class LogPlan:
    """One page of the log chosen before it is read: the places of its events in order,
    where the next page starts, and whether this page reached the end readable now."""

    places: list[LogCursor]
    next: LogCursor
    at_end: bool


@dataclass(frozen=True, slots=True)
class CustomerHistory:
    """A customer's stream as it stood at an instant, and the segment facts about them."""

    events: Sequence[CanMutateAggregate[UUID]]
    """The Customer stream's events up to the instant, decisions left out (they change no
    profile, identity or consent; the decisions listing has them). Read them at once: they
    may be decoded only as they are read, with the customer's key as it is then. Some of their
    personal values may be `Unopened`."""
    version: int
    """The stream's version at the instant, decisions counted."""
    memberships: list[CanMutateAggregate[UUID]] = field(default_factory=list)
    """`Membership.Entered` and `Exited` about the customer up to the instant, oldest first."""
    erased: bool = False
    """Whether the customer's key is erased now (whatever the instant): their personal values
    read as erased, in this history and in any replay kept from before the erasure."""


@dataclass(frozen=True, slots=True)
class KeptReplay:
    """A customer's stream replayed up to `version`, whose event was recorded at
    `recorded_at`: `state` is the replaying code's own, opaque to the log that keeps it."""

    version: int
    recorded_at: datetime
    state: bytes


@dataclass(frozen=True, slots=True)
class WaitingContent:
    """What a message deferred or held (not sent yet) will say on one channel, as rendered when
    it was requested and kept with its deferral: the template and version it came from (None
    for inline content)."""

    channel: str
    template: str | None
    version: int | None


@dataclass(frozen=True, slots=True)
class MessageHistory:
    """What the log holds about one message: its decisions and its own stream."""

    decisions: list[CanMutateAggregate[UUID]]
    """The `Customer.MessageDecided` events that decided it (deferred, then allowed, say), in
    the order they were recorded, from the stream of the customer each was decided on; and an
    operator's `Customer.ApprovalSettled` verdict on it, just before the decision it led to."""
    events: list[CanMutateAggregate[UUID]]
    """The `Message` stream, from `Queued` on; empty when it was never allowed."""
    waiting: tuple[WaitingContent, ...] = ()
    """While it waits deferred or held: what its deferral keeps to send, per channel, in the
    order rendered (the deferral is written with its decision, in one transaction)."""


class AuditLog(Protocol):
    """Reads the event store for auditors; never writes, never reads a read model."""

    async def customer_history(
        self, customer_id: UUID, as_of: datetime, after_version: int = 0
    ) -> CustomerHistory:
        """The customer's stream up to `as_of`: every event recorded at or before it, up to
        the first one recorded after it (a stream is never read with a hole); only those
        after `after_version`, for a reader that holds the stream up to there already. Its
        `version` is the stream's at the instant, whatever `after_version` is."""
        ...

    async def registered_at(self, customer_id: UUID) -> datetime | None:
        """When the customer was registered; None if no customer ever had that id."""
        ...

    async def kept_replay(self, customer_id: UUID, as_of: datetime, code: str) -> KeptReplay | None:
        """The replay kept of the customer by the code named `code` with the highest version
        whose event was recorded at or before `as_of`; None when there is none, or once the
        customer is erased (kept replays are sealed with their key, and go with it)."""
        ...

    async def keep_replays(
        self, customer_id: UUID, code: str, replays: Sequence[KeptReplay]
    ) -> None:
        """Keeps these replays for any process to start from, sealed with the customer's key
        (none once they are erased). A replay kept at a version by the same code stays."""
        ...

    async def plan(self, where: LogFilter, after: LogCursor, limit: int) -> LogPlan:
        """The next page after `after`: at most `limit` events, and a bounded amount of
        the log looked at, so a page of a rare filter may hold fewer with more to come."""
        ...

    async def read(self, where: LogFilter, places: Sequence[LogCursor]) -> list[AuditedEvent]:
        """The events at `places` (from one plan, in order), as stored."""
        ...

    async def end(self) -> LogCursor:
        """The last place readable now, for a reader to tell how far along it is."""
        ...

    async def merged_into(self, customer_id: UUID) -> list[UUID]:
        """The customers merged into this one, ever: their decisions are its history too."""
        ...

    async def message_history(self, message_id: UUID) -> MessageHistory:
        """The decisions about the message and its own stream, as recorded."""
        ...

    async def stream(self, stream_id: UUID) -> list[CanMutateAggregate[UUID]]:
        """One stream's events, oldest first (a conversation's, to find who replied)."""
        ...
