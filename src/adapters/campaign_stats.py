"""The events the campaign stats projection reads, as calls on `StatsFold`; both read models
(PostgreSQL and in memory) fold them so."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.campaign.enrollment import Enrollment
from domain.campaign.origin import SendOrigin
from domain.catalog import topic_of
from domain.customer.aggregate import Customer
from domain.message.aggregate import Message

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from domain.campaign.stats import StatsFold
    from ports.projections import LoggedEvent

__all__ = ["FALLBACK_ORIGIN", "TOPICS", "fold", "named"]

_ENROLLMENT = topic_of(Enrollment)
_MESSAGE = topic_of(Message)
_ENTERED = f"{_ENROLLMENT}.Entered"
_STEP_TAKEN = f"{_ENROLLMENT}.StepTaken"
_WAITING = f"{_ENROLLMENT}.Waiting"
_SEND_REQUESTED = f"{_ENROLLMENT}.SendRequested"
_RESPONDED = f"{_ENROLLMENT}.Responded"
_CONVERTED = f"{_ENROLLMENT}.Converted"
_MIGRATED = f"{_ENROLLMENT}.Migrated"
_EXITED = f"{_ENROLLMENT}.Exited"
_ALLOWED = topic_of(Customer.MessageAllowed)
_FELL_BACK = f"{_MESSAGE}.FellBack"
_ACCEPTED = f"{_MESSAGE}.Accepted"
_STATUS_REPORTED = f"{_MESSAGE}.StatusReported"
_ENROLLMENT_TOPICS = frozenset(
    {
        _ENTERED,
        _STEP_TAKEN,
        _WAITING,
        _SEND_REQUESTED,
        _RESPONDED,
        _CONVERTED,
        _MIGRATED,
        _EXITED,
    }
)
_COSTS = frozenset({_ACCEPTED, _STATUS_REPORTED})
FALLBACK_ORIGIN = "fallback"
"""The origin of a fallback's decision (`application.delivery.fall_back`): whose send it
answers for is recorded in the same commit (`FellBack`), after it in the log; one decided by an
earlier version, which committed them apart, may have reported a cost before its `FellBack`."""
TOPICS = _ENROLLMENT_TOPICS | _COSTS | {_ALLOWED, _FELL_BACK}


def _sent_by(origin: str) -> tuple[UUID, str] | None:
    """The enrollment and step of a campaign send's origin."""
    send = SendOrigin.parse(origin)
    return None if send is None else (send.enrollment, send.step)


def _uuid(value: Any) -> UUID | None:
    return None if value is None else UUID(str(value))


def named(events: Sequence[LoggedEvent]) -> tuple[set[UUID], set[UUID]]:
    """The enrollments and the messages the events are about, to load before folding them.

    Every message an event may record or change is loaded, not only those whose cost it
    reports: a message the fold did not find would be recorded afresh, without the cost it
    already has, and its next cost counted without taking the last one back; what the table
    holds would then depend on whether the events fell in one page or in several."""
    enrollments: set[UUID] = set()
    messages: set[UUID] = set()
    for event in events:
        topic, data = event.topic, event.data
        if topic in _ENROLLMENT_TOPICS:
            enrollments.add(event.stream_id)
            if topic == _RESPONDED and (answered := _uuid(data.get("message_id"))) is not None:
                messages.add(answered)
        elif topic == _ALLOWED:
            origin = str(data.get("origin", ""))
            sent = _sent_by(origin)
            if sent is not None:
                enrollments.add(sent[0])
                messages.add(UUID(str(data["message_id"])))
            elif origin == FALLBACK_ORIGIN:
                messages.add(UUID(str(data["message_id"])))
        elif topic in _COSTS:
            messages.add(event.stream_id)
        elif topic == _FELL_BACK:
            messages.add(event.stream_id)
            messages.add(UUID(str(data["fallback_message_id"])))
    return enrollments, messages


def _cost(data: Mapping[str, Any]) -> tuple[Decimal | None, str | None]:
    cost = data.get("cost")
    return (None if cost is None else Decimal(str(cost))), data.get("currency")


def fold(into: StatsFold, events: Sequence[LoggedEvent]) -> None:
    """Folds the events, in log order, into the counters' changes."""
    for event in events:
        topic, data, stream = event.topic, event.data, event.stream_id
        if topic == _ENTERED:
            into.entered(stream, UUID(str(data["campaign_id"])))
        elif topic == _STEP_TAKEN:
            into.step_taken(stream, data["step"], data.get("came_from"), data.get("arm"))
        elif topic == _WAITING:
            into.waiting(stream, data["step"])
        elif topic == _SEND_REQUESTED:
            into.send_requested(stream, data["step"])
        elif topic == _RESPONDED:
            into.responded(
                stream,
                data["step"],
                data["response"],
                data["reason"],
                _uuid(data.get("message_id")),
            )
        elif topic == _CONVERTED:
            into.converted(stream)
        elif topic == _MIGRATED:
            into.migrated(stream, data["to_step"])
        elif topic == _EXITED:
            into.exited(stream, data.get("split"), data.get("arm"))
        elif topic == _ALLOWED:
            origin = str(data.get("origin", ""))
            sent = _sent_by(origin)
            if sent is not None:
                into.message_for(UUID(str(data["message_id"])), *sent)
            elif origin == FALLBACK_ORIGIN:
                into.fallback_allowed(UUID(str(data["message_id"])))
        elif topic == _FELL_BACK:
            into.fell_back(stream, UUID(str(data["fallback_message_id"])))
        elif topic in _COSTS:
            into.cost(stream, *_cost(data))
