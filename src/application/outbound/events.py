"""Which stored events go out, on which subject, as which versioned payload: one entry a topic.

To publish another event, add an `OutboundEvent` for its stored topic (and a payload Struct in
`payloads.py`, and a section in docs/events.md); `OutboundEvents` picks up every entry given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from application.outbound.payloads import (
    ConsentChangedV1,
    CustomerRegisteredV1,
    CustomersMergedV1,
    IdentityLinkedV1,
    LinkedIdentityV1,
    ProfileUpdatedV1,
    SegmentEnteredV1,
    SegmentExitedV1,
    SuppressionAddedV1,
    SuppressionLiftedV1,
    TriggerFiredV1,
)
from domain.catalog import topic_of
from domain.customer.aggregate import Customer
from domain.segments.aggregate import Membership
from domain.triggers.aggregate import Firing
from ports.projections import LoggedEvent

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    import msgspec

__all__ = [
    "CUSTOMER_EVENTS",
    "OUTBOUND_EVENTS",
    "SEGMENT_EVENTS",
    "TRIGGER_EVENTS",
    "OutboundEvent",
    "StoredEvent",
    "by_topic",
]


class StoredEvent(LoggedEvent, Protocol):
    """An event of the global log with its place in its stream, which makes its id stable."""

    @property
    def version(self) -> int: ...


def _about_the_stream(event: StoredEvent) -> tuple[UUID, ...]:
    return (event.stream_id,)


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    """How events of one stored topic go out.

    `subject` follows `<prefix>.out.`; `type` is the CloudEvents type, the same whatever the
    prefix. `about` names the customers an event concerns, the first being the CloudEvents
    subject: each of them sees its events in log order.
    """

    topic: str
    subject: str
    type: str
    version: int
    build: Callable[[StoredEvent], msgspec.Struct]
    about: Callable[[StoredEvent], tuple[UUID, ...]] = _about_the_stream

    @property
    def dataschema(self) -> str:
        return f"urn:chorus:events:{self.subject}:v{self.version}"


def by_topic(entries: Iterable[OutboundEvent]) -> dict[str, OutboundEvent]:
    """The entries by stored topic; a topic may go out only one way."""
    found: dict[str, OutboundEvent] = {}
    for entry in entries:
        if entry.topic in found:
            raise ValueError(f"{entry.topic} is mapped twice")
        found[entry.topic] = entry
    return found


def _identity(claim: Mapping[str, Any]) -> LinkedIdentityV1:
    identity = claim["identity"]
    return LinkedIdentityV1(
        identity=f"{identity['type']}:{identity['value']}", verification=claim["verification"]
    )


def _registered(event: StoredEvent) -> CustomerRegisteredV1:
    return CustomerRegisteredV1(
        customer_id=event.stream_id,
        identities=[_identity(claim) for claim in event.data["identities"]],
    )


def _identity_linked(event: StoredEvent) -> IdentityLinkedV1:
    claim = _identity(event.data["identity"])
    return IdentityLinkedV1(
        customer_id=event.stream_id, identity=claim.identity, verification=claim.verification
    )


def _profile_updated(event: StoredEvent) -> ProfileUpdatedV1:
    return ProfileUpdatedV1(
        customer_id=event.stream_id,
        profile=dict(event.data["profile"]),
        attributes=dict(event.data["attributes"]),
    )


def _consent_changed(event: StoredEvent) -> ConsentChangedV1:
    data = event.data
    return ConsentChangedV1(
        customer_id=event.stream_id,
        channel=data["channel"],
        purpose=data["purpose"],
        granted=data["granted"],
        source=data["source"],
    )


def _suppression_added(event: StoredEvent) -> SuppressionAddedV1:
    return SuppressionAddedV1(
        customer_id=event.stream_id, channel=event.data["channel"], reason=event.data["reason"]
    )


def _suppression_lifted(event: StoredEvent) -> SuppressionLiftedV1:
    return SuppressionLiftedV1(
        customer_id=event.stream_id, channel=event.data["channel"], source=event.data["source"]
    )


def _merged(event: StoredEvent) -> CustomersMergedV1:
    data = event.data
    return CustomersMergedV1(
        survivor_id=event.stream_id,
        merged_id=UUID(data["merged_id"]),
        reason=data["reason"],
        identities=[_identity(claim) for claim in data["identities"]],
        profile=dict(data["profile"]),
        attributes=dict(data["attributes"]),
    )


def _survivor_and_merged(event: StoredEvent) -> tuple[UUID, ...]:
    return (event.stream_id, UUID(event.data["merged_id"]))


_CUSTOMER = topic_of(Customer) + "."

# A merge is recorded twice, Absorbed on the survivor and MergedInto on the merged customer;
# it goes out once, from Absorbed, which carries both ids and what moved.
CUSTOMER_EVENTS: tuple[OutboundEvent, ...] = (
    OutboundEvent(
        _CUSTOMER + "Registered",
        "customers.registered",
        "chorus.customer.registered",
        1,
        _registered,
    ),
    OutboundEvent(
        _CUSTOMER + "IdentityLinked",
        "customers.identity_linked",
        "chorus.customer.identity_linked",
        1,
        _identity_linked,
    ),
    OutboundEvent(
        _CUSTOMER + "ProfileUpdated",
        "customers.profile_updated",
        "chorus.customer.profile_updated",
        1,
        _profile_updated,
    ),
    OutboundEvent(
        _CUSTOMER + "ConsentChanged",
        "customers.consent_changed",
        "chorus.customer.consent_changed",
        1,
        _consent_changed,
    ),
    OutboundEvent(
        _CUSTOMER + "SuppressionAdded",
        "customers.suppression_added",
        "chorus.customer.suppression_added",
        1,
        _suppression_added,
    ),
    OutboundEvent(
        _CUSTOMER + "SuppressionLifted",
        "customers.suppression_lifted",
        "chorus.customer.suppression_lifted",
        1,
        _suppression_lifted,
    ),
    OutboundEvent(
        _CUSTOMER + "Absorbed",
        "customers.merged",
        "chorus.customer.merged",
        1,
        _merged,
        about=_survivor_and_merged,
    ),
)


def _segment_entered(event: StoredEvent) -> SegmentEnteredV1:
    data = event.data
    return SegmentEnteredV1(
        customer_id=UUID(data["customer_id"]),
        segment=data["segment_key"],
        segment_id=UUID(data["segment_id"]),
        segment_version=data["segment_version"],
    )


def _segment_exited(event: StoredEvent) -> SegmentExitedV1:
    data = event.data
    return SegmentExitedV1(
        customer_id=UUID(data["customer_id"]),
        segment=data["segment_key"],
        segment_id=UUID(data["segment_id"]),
        segment_version=data["segment_version"],
        reason=data["reason"],
    )


def _the_customer(event: StoredEvent) -> tuple[UUID, ...]:
    return (UUID(event.data["customer_id"]),)


SEGMENT_EVENTS: tuple[OutboundEvent, ...] = (
    OutboundEvent(
        topic_of(Membership.Entered),
        "segments.entered",
        "chorus.segment.entered",
        1,
        _segment_entered,
        about=_the_customer,
    ),
    OutboundEvent(
        topic_of(Membership.Exited),
        "segments.exited",
        "chorus.segment.exited",
        1,
        _segment_exited,
        about=_the_customer,
    ),
)


def _trigger_fired(event: StoredEvent) -> TriggerFiredV1:
    data = event.data
    return TriggerFiredV1(
        firing_id=event.stream_id,
        trigger=data["trigger_key"],
        trigger_id=UUID(data["trigger_id"]),
        trigger_version=data["trigger_version"],
        customer_id=UUID(data["customer_id"]),
        source_kind=data["source_kind"],
        source_event_id=f"{data['source_stream_id']}:{data['source_version']}",
        occurred_at=datetime.fromisoformat(data["source_occurred_at"]),
        recorded_at=datetime.fromisoformat(data["source_recorded_at"]),
        signal_type=data["signal_type"],
        signal_event_id=data["signal_event_id"],
        segment=data["segment_key"],
        exit_reason=data["exit_reason"],
    )


TRIGGER_EVENTS: tuple[OutboundEvent, ...] = (
    OutboundEvent(
        topic_of(Firing.Fired),
        "triggers.fired",
        "chorus.trigger.fired",
        1,
        _trigger_fired,
        about=_the_customer,
    ),
)

OUTBOUND_EVENTS: tuple[OutboundEvent, ...] = CUSTOMER_EVENTS + SEGMENT_EVENTS + TRIGGER_EVENTS
"""Everything Chorus publishes; segment and trigger events join here."""
