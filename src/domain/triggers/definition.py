"""What a trigger fires on: a JSON document checked by msgspec, matched purely.

`{"type": "signal", "signal": "order.placed", "where": [...]}` fires on each recorded signal of
that type whose properties pass every filter (the segments' `PropertyFilter`);
`{"type": "segment_entered" | "segment_exited", "segment": "<key>"}` fires on each entry into
or exit from that segment. A trigger sees one source event at a time, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, TypeAlias
from uuid import UUID

import msgspec

from domain.segments.conditions import Op, PropertyFilter
from domain.shared.errors import DomainError

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

SignalType = Annotated[
    str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
]
SegmentKey = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
]


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


class _On(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    tag_field="type",
):
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

_TYPES: tuple[type[_On], ...] = (OnSignal, OnSegmentEntered, OnSegmentExited)


class TriggerInvalid(DomainError, ValueError):
    """A trigger definition that cannot be used: where (a JSON path such as `$.where[0].op`)
    and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


_decoder: msgspec.json.Decoder[TriggerOn] = msgspec.json.Decoder(TriggerOn)


def decode_on(document: bytes | str | Mapping[str, Any]) -> TriggerOn:
    """Reads a definition from JSON text or from decoded JSON, checking it whole."""
    try:
        if isinstance(document, bytes | str):
            return _decoder.decode(document)
        on: TriggerOn = msgspec.convert(dict(document), TriggerOn)
    except msgspec.ValidationError as error:
        raise _invalid(str(error)) from None
    except msgspec.DecodeError as error:
        raise TriggerInvalid("$", f"not valid JSON: {error}") from None
    return on


def on_document(on: TriggerOn) -> dict[str, Any]:
    """The JSON document `decode_on` reads back as `on`."""
    document: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(on))
    return document


# --- schema errors -----------------------------------------------------------------------------

_STRUCTS: tuple[type[msgspec.Struct], ...] = (*_TYPES, PropertyFilter)
_FIELDS = frozenset(info.encode_name for kind in _STRUCTS for info in msgspec.structs.fields(kind))
_OWN = re.compile(r"^(?P<field>\w+): (?P<reason>.*)$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`$")
_BAD_TAG = re.compile(r"^Invalid value (?P<value>'[^']*'|-?\d+)$")
_BAD_OP = re.compile(r"^Invalid enum value (?P<value>'[^']*'|-?\d+)$")


def _invalid(message: str) -> TriggerInvalid:
    """Splits msgspec's `reason - at `$.path`` and says the reason in the definition's terms."""
    reason, at, path = message.rpartition(" - at `")
    if at:
        path = path.removesuffix("`")
    else:
        reason, path = message, "$"
    own = _OWN.match(reason)
    if own and own.group("field") in _FIELDS:
        return TriggerInvalid(f"{path}.{own.group('field')}", own.group("reason"))
    missing = _MISSING.match(reason)
    if missing:
        return TriggerInvalid(f"{path}.{missing.group('field')}", "required field is missing")
    unknown = _UNKNOWN.match(reason)
    if unknown:
        return TriggerInvalid(f"{path}.{unknown.group('field')}", "unknown field")
    bad_tag = _BAD_TAG.match(reason)
    if bad_tag and path.endswith(".type"):
        tags = ", ".join(str(kind.__struct_config__.tag) for kind in _TYPES)
        return TriggerInvalid(path, f"{bad_tag.group('value')} is not a trigger type: use {tags}")
    bad_op = _BAD_OP.match(reason)
    if bad_op and path.endswith(".op"):
        allowed = ", ".join(str(op) for op in Op)
        return TriggerInvalid(path, f"{bad_op.group('value')} is not one of {allowed}")
    return TriggerInvalid(path, reason)
