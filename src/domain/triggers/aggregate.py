"""A trigger: a named, versioned definition of what starts a campaign; and each time it fired."""

from __future__ import annotations

from datetime import datetime  # events carry these types; eventsourcing resolves them at run time
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.shared.definitions import KeyedDefinition
from domain.shared.keys import check_key, keyed_id
from domain.triggers.definition import SourceEvent, SourceKind, TriggerOn

__all__ = ["Firing", "Trigger", "check_trigger_key", "firing_id", "trigger_id"]

_NAMESPACE = UUID("9d4c2a71-5b3e-4f0a-8c6d-2e7f1a9b3c58")


def check_trigger_key(key: str) -> str:
    """The key, if it is one: lower-case letters, digits, `_`, `.`, `-`; at most 64."""
    return check_key(key, "trigger", "order-placed")


def trigger_id(key: str) -> UUID:
    return keyed_id(_NAMESPACE, check_trigger_key(key))


def firing_id(trigger: UUID, source_stream: UUID, source_version: int) -> UUID:
    """The one stream a trigger's firing on one source event can have: the same source event
    names the same firing, and the event store keeps one first event per stream."""
    return uuid5(trigger, f"{source_stream}:{source_version}")


class Trigger(KeyedDefinition[TriggerOn]):
    """What a campaign subscribes to. Each change of the definition is a new version; a firing
    names the version that matched. A deleted trigger fires no more; its firings stay."""

    @event("Defined")
    def __init__(
        self,
        id: UUID,
        timestamp: datetime,
        key: str,
        name: str,
        description: str,
        on: TriggerOn,
        author: str,
    ) -> None:
        self.key = key
        self.name = name
        self.description = description
        self.on = on
        self.number = 1
        self.deleted = False
        self.changed_at = timestamp

    @classmethod
    def define(
        cls, key: str, name: str, description: str, on: TriggerOn, author: str, at: datetime
    ) -> Trigger:
        return cls(
            id=trigger_id(key),
            timestamp=at,
            key=key,
            name=name,
            description=description,
            on=on,
            author=author,
        )

    @property
    def definition(self) -> TriggerOn:
        return self.on

    def matches(self, source: SourceEvent) -> bool:
        """Whether the definition in force fires on `source`."""
        return not self.deleted and self.on.matches(source)

    # events: each method body is the state change the event makes (Deleted and Restored are
    # KeyedDefinition's)

    @event("Redefined")
    def _redefined(
        self, timestamp: datetime, name: str, description: str, on: TriggerOn, author: str
    ) -> None:
        self.name = name
        self.description = description
        self.on = on
        self.number += 1
        self.changed_at = timestamp


class Firing(Aggregate):
    """A trigger fired on one source event: the one event of its stream (`firing_id`).

    Recorded by the matcher in the same transaction as its place in the log.
    """

    class Fired(Aggregate.Event):
        trigger_id: UUID
        trigger_key: str
        trigger_version: int
        customer_id: UUID
        source_kind: str  # SourceKind
        source_stream_id: UUID
        source_version: int
        source_occurred_at: datetime
        source_recorded_at: datetime
        signal_type: str | None
        signal_event_id: str | None
        segment_key: str | None
        exit_reason: str | None

        @property
        def subject_id(self) -> UUID:
            """The customer of the source event."""
            return self.customer_id

        def apply(self, aggregate: Aggregate) -> None:
            pass

    @classmethod
    def fired(
        cls, trigger: UUID, key: str, version: int, source: SourceEvent, at: datetime
    ) -> Firing.Fired:
        """The firing of version `version` of trigger `key` on `source`."""
        signal = source.kind == SourceKind.SIGNAL
        return cls.Fired(  # type: ignore[call-arg]  # eventsourcing makes it a dataclass
            originator_id=firing_id(trigger, source.stream_id, source.version),
            originator_version=cls.INITIAL_VERSION,
            timestamp=at,
            trigger_id=trigger,
            trigger_key=key,
            trigger_version=version,
            customer_id=source.customer_id,
            source_kind=source.kind.value,
            source_stream_id=source.stream_id,
            source_version=source.version,
            source_occurred_at=source.occurred_at,
            source_recorded_at=source.recorded_at,
            signal_type=source.name if signal else None,
            signal_event_id=source.signal_event_id,
            segment_key=None if signal else source.name,
            exit_reason=source.exit_reason,
        )
