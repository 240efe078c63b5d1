"""Fires triggers: matches each recorded signal and segment entry or exit against the triggers
defined at that point of the log, and records a Fired event for each match.

Exactly once per trigger and source event: the Fired events are recorded in the runner's
transaction, with the position that moves past their source, so a page that fails or a
process that dies records nothing and the page is matched again. Beyond that, a firing's
stream id derives from the trigger and the source event, so even a replay of the log (a reset
position) cannot record a second one: the event store keeps one first event per stream.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import structlog

from application.processes.pages import of_kinds
from domain.catalog import class_of, topic_of
from domain.segments.aggregate import Membership
from domain.signals.aggregate import Signal
from domain.triggers.aggregate import Firing, Trigger
from domain.triggers.definition import SourceEvent, SourceKind
from ports.trigger_matching import KnownTrigger

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from contextlib import AbstractContextManager
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

    from ports.clock import Clock
    from ports.signal_traces import SignalTraces
    from ports.trigger_matching import TriggerMatchingPorts, TriggerStates

__all__ = ["TriggerMatcher"]

_TRIGGER_EVENTS: tuple[type[Any], ...] = tuple(
    class_of(f"{topic_of(Trigger)}.{kind}")
    for kind in ("Defined", "Redefined", "Deleted", "Restored")
)
_DEFINED, _REDEFINED, _DELETED, _RESTORED = _TRIGGER_EVENTS


class TriggerMatcher:
    """Runs after the segment evaluator and the members read model, so the entries and exits
    recorded in the same round are matched in it. Not rebuildable: what it records are facts,
    and the `trigger_firings` read model is rebuilt from them.

    The triggers are cached; the cache stands for the stored states as long as the number of
    Trigger events folded into them is the one it counted (a failed page, or another process's
    runner, changes that number, and the cache is read again).
    """

    name = "triggers"
    handles: tuple[type[Any], ...] = (
        Signal.Recorded,
        Membership.Entered,
        Membership.Exited,
        *_TRIGGER_EVENTS,
    )
    follows: tuple[str, ...] = ()
    page_size: int | None = None

    def __init__(self, clock: Clock, traces: SignalTraces | None = None) -> None:
        self.clock = clock
        self.traces = traces
        self.log = structlog.get_logger("chorus.triggers")
        self._known: dict[UUID, KnownTrigger] = {}
        self._routes: dict[tuple[SourceKind, str], list[KnownTrigger]] = {}
        self._seen: int | None = None

    async def handle(
        self, events: Sequence[CanMutateAggregate[UUID]], ports: TriggerMatchingPorts
    ) -> None:
        await self._load(ports.trigger_states)
        if not self._routes and not of_kinds(events, *_TRIGGER_EVENTS):
            return  # no trigger before the page nor in it: nothing can fire
        try:
            await self._handle(events, ports)
        except BaseException:
            self._seen = None
            raise

    async def _handle(
        self, events: Sequence[CanMutateAggregate[UUID]], ports: TriggerMatchingPorts
    ) -> None:
        now = self.clock.now()
        changed: dict[UUID, KnownTrigger] = {}
        fired: list[Firing.Fired] = []
        traced = await self._traces_of(events)
        for event in events:
            if isinstance(event, _TRIGGER_EVENTS):
                known = self._fold(event)
                if known is not None:
                    changed[known.trigger_id] = known
                continue
            routed = self._routes.get(_route(event)) if self._routes else None
            if not routed:
                continue
            source = _source(event)
            matched = [t for t in routed if t.on.matches(source)]
            if matched:
                with self._in_trace_of(event, traced):
                    fired.extend(
                        Firing.fired(t.trigger_id, t.key, t.version, source, now) for t in matched
                    )
        if changed:
            await ports.trigger_states.save(list(changed.values()))
            self._seen = sum(known.events_seen for known in self._known.values())
        if fired:
            # Not `append`: a firing recorded already (only a replayed log could hold one) is
            # skipped rather than failing the page, which would stop the matcher for good.
            recorded = await ports.events.append_new(fired)
            if recorded < len(fired):
                self.log.warning("firings recorded before skipped", skipped=len(fired) - recorded)

    async def _traces_of(self, events: Sequence[CanMutateAggregate[UUID]]) -> Mapping[UUID, str]:
        """The trace contexts the page's signals that may fire a trigger were received in: all
        of them when the page also changes triggers (which the signals then meet)."""
        if self.traces is None:
            return {}
        changing = bool(of_kinds(events, *_TRIGGER_EVENTS))
        routed = [
            e.originator_id
            for e in events
            if isinstance(e, Signal.Recorded) and (changing or _route(e) in self._routes)
        ]
        return await self.traces.received_in(routed) if routed else {}

    def _in_trace_of(
        self, event: CanMutateAggregate[UUID], traced: Mapping[UUID, str]
    ) -> AbstractContextManager[object]:
        """A signal's firings, marked in the signal's trace (ADR 0020)."""
        if self.traces is None or not isinstance(event, Signal.Recorded):
            return nullcontext()
        return self.traces.continued(
            self.name, traced.get(event.originator_id), event.originator_id, event.customer_id
        )

    async def _load(self, states: TriggerStates) -> None:
        seen = await states.seen()
        if seen == self._seen:
            return
        self._known = {known.trigger_id: known for known in await states.load()}
        self._route_all()
        self._seen = seen

    def _fold(self, event: Any) -> KnownTrigger | None:
        """The trigger after one of its events, as its aggregate would be."""
        trigger: UUID = event.originator_id
        before = self._known.get(trigger)
        if isinstance(event, _DEFINED):
            after = KnownTrigger(trigger, event.key, 1, event.on, True, 1)
        elif before is None:
            self.log.warning("trigger event without its definition", trigger=trigger)
            return None
        elif isinstance(event, _REDEFINED):
            after = replace(before, version=before.version + 1, on=event.on, active=True)
        else:
            after = replace(before, active=isinstance(event, _RESTORED))
        after = replace(after, events_seen=event.originator_version)
        self._known[trigger] = after
        self._route_all()
        return after

    def _route_all(self) -> None:
        routes: dict[tuple[SourceKind, str], list[KnownTrigger]] = {}
        for known in self._known.values():
            if known.active:
                routes.setdefault(known.on.route, []).append(known)
        self._routes = routes


def _route(event: Any) -> tuple[SourceKind, str]:
    """The one route a source event can match, read before the rest of it."""
    if isinstance(event, Signal.Recorded):
        return SourceKind.SIGNAL, event.signal_type
    if isinstance(event, Membership.Entered):
        return SourceKind.SEGMENT_ENTERED, event.segment_key
    return SourceKind.SEGMENT_EXITED, event.segment_key


def _source(event: CanMutateAggregate[UUID]) -> SourceEvent:
    """What a trigger matches: a recorded signal, or an entry into or exit from a segment."""
    if isinstance(event, Signal.Recorded):
        return SourceEvent(
            SourceKind.SIGNAL,
            event.signal_type,
            event.customer_id,
            event.originator_id,
            event.originator_version,
            event.occurred_at,
            event.timestamp,
            event.properties,
            signal_event_id=event.event_id,
        )
    if isinstance(event, Membership.Entered):
        kind, reason = SourceKind.SEGMENT_ENTERED, None
    elif isinstance(event, Membership.Exited):
        kind, reason = SourceKind.SEGMENT_EXITED, event.reason
    else:
        raise TypeError(f"the matcher handles no {type(event).__name__}")
    return SourceEvent(
        kind,
        event.segment_key,
        event.customer_id,
        event.originator_id,
        event.originator_version,
        event.timestamp,
        event.timestamp,
        exit_reason=reason,
    )
