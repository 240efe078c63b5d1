"""Fires triggers: matches each recorded signal and segment entry or exit against the triggers
defined at that point of the log, and records a Fired event for each match.

Exactly once per trigger and source event: the Fired events are appended in the runner's
transaction, with the position that moves past their source, so a page that fails or a
process that dies records nothing and the page is matched again. Beyond that, a firing's
stream id derives from the trigger and the source event, so even a replay of the log (a reset
position) cannot record a second one: the event store keeps one first event per stream.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import msgspec
import structlog
from eventsourcing.utils import get_topic

from adapters.postgres.event_store import PostgresEventStore
from domain.segments.aggregate import Membership
from domain.signals.aggregate import Signal
from domain.triggers.aggregate import Firing, Trigger
from domain.triggers.definition import SourceEvent, SourceKind, TriggerOn, on_document

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import asyncpg

    from adapters.postgres.event_store import RecordedEvent
    from ports.clock import Clock
    from ports.projections import LoggedEvent

__all__ = ["TriggerMatcher"]

_SIGNAL = get_topic(Signal.Recorded)
_ENTERED = get_topic(Membership.Entered)
_EXITED = get_topic(Membership.Exited)
_TRIGGER = get_topic(Trigger) + "."
_DEFINED, _REDEFINED, _DELETED, _RESTORED = (
    _TRIGGER + kind for kind in ("Defined", "Redefined", "Deleted", "Restored")
)
_TRIGGER_TOPICS = frozenset({_DEFINED, _REDEFINED, _DELETED, _RESTORED})

_SEEN = "SELECT coalesce(sum(events_seen), 0) FROM trigger_matcher_state"
_STATE = (
    "SELECT trigger_id, key, version, definition, active, events_seen FROM trigger_matcher_state"
)
_SAVE_STATE = """
INSERT INTO trigger_matcher_state (trigger_id, key, version, definition, active, events_seen)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int4[], $4::jsonb[], $5::bool[], $6::int4[])
ON CONFLICT (trigger_id) DO UPDATE
SET key = EXCLUDED.key, version = EXCLUDED.version, definition = EXCLUDED.definition,
    active = EXCLUDED.active, events_seen = EXCLUDED.events_seen
"""
_on = msgspec.json.Decoder(TriggerOn)
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class _Known:
    """A trigger as of the matcher's place in the log."""

    trigger_id: UUID
    key: str
    version: int
    on: TriggerOn
    active: bool
    events_seen: int


class TriggerMatcher:
    """Runs as a projection after the segment evaluator and the members read model, so the
    entries and exits recorded in the same round are matched in it. Not rebuildable: what it
    records are facts, and the `trigger_firings` read model is rebuilt from them.

    The triggers are cached; the cache stands for the state table as long as the number of
    Trigger events folded into the table is the one it counted (a failed page, or another
    process's runner, changes that number, and the cache is read again).
    """

    name = "triggers"
    topics = frozenset({_SIGNAL, _ENTERED, _EXITED, *_TRIGGER_TOPICS})
    tables: tuple[str, ...] = ()

    def __init__(self, clock: Clock, events: PostgresEventStore | None = None) -> None:
        self.clock = clock
        self.events = events or PostgresEventStore()
        self.log = structlog.get_logger("chorus.triggers")
        self._known: dict[UUID, _Known] = {}
        self._routes: dict[tuple[SourceKind, str], list[_Known]] = {}
        self._seen: int | None = None

    def writing_to(self, suffix: str) -> TriggerMatcher:
        return self

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        # The runner hands out RecordedEvents, which carry their stream version.
        stored = cast("Sequence[RecordedEvent]", events)
        await self._load(conn)
        try:
            await self._apply(conn, stored)
        except BaseException:
            self._seen = None
            raise

    async def _apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        now = self.clock.now()
        changed: dict[UUID, _Known] = {}
        fired: list[Firing.Fired] = []
        for event in events:
            if event.topic in _TRIGGER_TOPICS:
                known = self._fold(event)
                if known is not None:
                    changed[known.trigger_id] = known
                continue
            if not self._routes:  # no trigger listens: the payload need not even be read
                continue
            routed = self._routes.get(_route(event))
            if not routed:
                continue
            source = _source(event)
            fired.extend(
                Firing.fired(t.trigger_id, t.key, t.version, source, now)
                for t in routed
                if t.on.matches(source)
            )
        if changed:
            await conn.execute(_SAVE_STATE, *_columns(_state_row(k) for k in changed.values()))
            self._seen = sum(known.events_seen for known in self._known.values())
        if fired:
            await self._record(conn, fired)

    async def _load(self, conn: asyncpg.Connection) -> None:
        seen: int = await conn.fetchval(_SEEN)
        if seen == self._seen:
            return
        self._known = {
            row["trigger_id"]: _Known(
                row["trigger_id"],
                row["key"],
                row["version"],
                _on.decode(row["definition"]),
                row["active"],
                row["events_seen"],
            )
            for row in await conn.fetch(_STATE)
        }
        self._route_all()
        self._seen = seen

    def _fold(self, event: RecordedEvent) -> _Known | None:
        """The trigger after one of its events, as its aggregate would be."""
        data: dict[str, Any] = dict(event.data)
        before = self._known.get(event.stream_id)
        if event.topic == _DEFINED:
            after = _Known(
                event.stream_id, data["key"], 1, msgspec.convert(data["on"], TriggerOn), True, 1
            )
        elif before is None:
            self.log.warning("trigger event without its definition", trigger=event.stream_id)
            return None
        elif event.topic == _REDEFINED:
            on = msgspec.convert(data["on"], TriggerOn)
            after = replace(before, version=before.version + 1, on=on, active=True)
        else:
            after = replace(before, active=event.topic == _RESTORED)
        after = replace(after, events_seen=event.version)
        self._known[after.trigger_id] = after
        self._route_all()
        return after

    def _route_all(self) -> None:
        routes: dict[tuple[SourceKind, str], list[_Known]] = {}
        for known in self._known.values():
            if known.active:
                routes.setdefault(known.on.route, []).append(known)
        self._routes = routes

    async def _record(self, conn: asyncpg.Connection, fired: list[Firing.Fired]) -> None:
        # Not `append`: a firing recorded already (only a replayed log could hold one) is
        # skipped rather than failing the page, which would stop the matcher for good.
        recorded = await self.events.append_new(conn, fired)
        if recorded < len(fired):
            self.log.warning("firings recorded before skipped", skipped=len(fired) - recorded)


def _route(event: RecordedEvent) -> tuple[SourceKind, str]:
    if event.topic == _SIGNAL:
        return SourceKind.SIGNAL, event.data["signal_type"]
    kind = SourceKind.SEGMENT_ENTERED if event.topic == _ENTERED else SourceKind.SEGMENT_EXITED
    return kind, event.data["segment_key"]


def _source(event: RecordedEvent) -> SourceEvent:
    data = event.data
    kind, name = _route(event)
    if kind == SourceKind.SIGNAL:
        return SourceEvent(
            kind,
            name,
            UUID(data["customer_id"]),
            event.stream_id,
            event.version,
            datetime.fromisoformat(data["occurred_at"]),
            event.recorded_at,
            data["properties"],
            signal_event_id=data["event_id"],
        )
    return SourceEvent(
        kind,
        name,
        UUID(data["customer_id"]),
        event.stream_id,
        event.version,
        event.recorded_at,
        event.recorded_at,
        exit_reason=data.get("reason"),
    )


def _state_row(known: _Known) -> tuple[Any, ...]:
    definition = _encoder.encode(on_document(known.on)).decode()
    return (
        known.trigger_id,
        known.key,
        known.version,
        definition,
        known.active,
        known.events_seen,
    )


def _columns(rows: Iterable[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]
