"""What a trigger fires on: a JSON document checked by msgspec, matched purely.

`{"type": "signal", "signal": "order.placed", "where": [...]}` fires on each recorded signal of
that type whose properties pass every filter (the segments' `PropertyFilter`);
`{"type": "segment_entered" | "segment_exited", "segment": "<key>"}` fires on each entry into
or exit from that segment. A trigger sees one source event at a time, nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, TypeAlias
from uuid import UUID

import msgspec

from domain.segments.conditions import Op, PropertyFilter, SignalType
from domain.shared.documents import DocumentInvalid, DocumentReader, Tagged, document_of
from domain.shared.keys import KEY_PATTERN

__all__ = [
    "MAX_FILTERS",
    "OnSegmentEntered",
    "OnSegmentExited",
    "OnSignal",
    "SourceEvent",
    "SourceKind",
    "TriggerInvalid",
    "TriggerOn",
    "decode_on",
    "on_document",
]

MAX_FILTERS = 20
"""Property filters in one signal trigger's `where`."""

SegmentKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=KEY_PATTERN)]


class SourceKind(StrEnum):
    """What kind of recorded event a trigger fires on."""

    SIGNAL = "signal"
    SEGMENT_ENTERED = "segment_entered"
    SEGMENT_EXITED = "segment_exited"


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """A recorded event a trigger may fire on, as triggers see it.

    `name` is the signal type for a signal and the segment key for an entry or an exit;
    `stream_id` and `version` name the event in the log, so a firing can name it too.
    """

    kind: SourceKind
    name: str
    customer_id: UUID
    stream_id: UUID
    version: int
    occurred_at: datetime
    recorded_at: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)
    signal_event_id: str | None = None
    exit_reason: str | None = None

    @property
    def route(self) -> tuple[SourceKind, str]:
        """The one `TriggerOn.route` that can match it."""
        return self.kind, self.name


class _On(Tagged, frozen=True, kw_only=True):
    """What every kind of trigger definition can answer."""

    @property
    def route(self) -> tuple[SourceKind, str]:
        """The kind and name of the only source events it can match, for a matcher's index."""
        raise NotImplementedError

    def matches(self, source: SourceEvent) -> bool:
        """Whether the trigger fires on `source`."""
        raise NotImplementedError


class OnSignal(_On, tag="signal", frozen=True, kw_only=True):
    """Each recorded signal of the type whose properties pass every filter in `where`."""

    signal: SignalType
    where: Annotated[tuple[PropertyFilter, ...], msgspec.Meta(max_length=MAX_FILTERS)] = ()

    @property
    def route(self) -> tuple[SourceKind, str]:
        return SourceKind.SIGNAL, self.signal

    def matches(self, source: SourceEvent) -> bool:
        return source.route == self.route and all(
            where.matches(source.properties) for where in self.where
        )


class OnSegmentEntered(_On, tag="segment_entered", frozen=True, kw_only=True):
    """Each entry of a customer into the segment with this key."""

    segment: SegmentKey

    @property
    def route(self) -> tuple[SourceKind, str]:
        return SourceKind.SEGMENT_ENTERED, self.segment

    def matches(self, source: SourceEvent) -> bool:
        return source.route == self.route


class OnSegmentExited(_On, tag="segment_exited", frozen=True, kw_only=True):
    """Each exit of a customer from the segment with this key, whatever the reason."""

    segment: SegmentKey

    @property
    def route(self) -> tuple[SourceKind, str]:
        return SourceKind.SEGMENT_EXITED, self.segment

    def matches(self, source: SourceEvent) -> bool:
        return source.route == self.route


TriggerOn: TypeAlias = OnSignal | OnSegmentEntered | OnSegmentExited
"""Any trigger definition; `decode_on` reads one by its `type`."""


class TriggerInvalid(DocumentInvalid):
    """A trigger definition that cannot be used: where (a JSON path such as `$.where[0].op`)
    and why."""


_reader: DocumentReader[TriggerOn] = DocumentReader(
    TriggerOn, TriggerInvalid, noun="trigger", parts=(PropertyFilter,), enums={"op": Op}
)


def decode_on(document: bytes | str | Mapping[str, Any]) -> TriggerOn:
    """Reads a definition from JSON text or from decoded JSON, checking it whole."""
    return _reader.read(document)


def on_document(on: TriggerOn) -> dict[str, Any]:
    """The JSON document `decode_on` reads back as `on`."""
    return document_of(on)
