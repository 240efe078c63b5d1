"""Every recorded decision, the suppressed and deferred too, as recorded: never recomputed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime  # views are rendered by their run-time type hints
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from application.audit.event_log import check_period
from application.audit.refusals import AuditQueryRefused
from domain.catalog import topic_of
from domain.customer.aggregate import Customer
from domain.policy.decision import Outcome
from ports.audit import LogFilter

if TYPE_CHECKING:
    from collections.abc import Collection

    from ports.audit import AuditedEvent, AuditLog, LogCursor

__all__ = ["AuditDecisions", "AuditedDecision", "DecisionPage"]

_MAX_PAGE = 1_000
_TOPICS = {
    Outcome.SEND: topic_of(Customer.MessageAllowed),
    Outcome.REROUTE: topic_of(Customer.MessageAllowed),
    Outcome.DEFER: topic_of(Customer.MessageDeferred),
    Outcome.SUPPRESS: topic_of(Customer.MessageSuppressed),
    Outcome.HOLD: topic_of(Customer.MessageHeld),
}


@dataclass(frozen=True, slots=True)
class AuditedDecision:
    """A decision as `GET /v1/decisions/{id}` shows it, named by its id in a list."""

    id: str
    decision_id: str
    message_id: str
    customer_id: UUID
    outcome: str
    channel: str | None
    defer_until: str | None
    rule_set_version: int
    fired: list[dict[str, Any]]
    decided_at: datetime
    request: dict[str, Any]
    origin: str


@dataclass(frozen=True, slots=True)
class DecisionPage:
    decisions: list[AuditedDecision]
    next: LogCursor
    at_end: bool


def _view(event: AuditedEvent) -> AuditedDecision:
    data: dict[str, Any] = msgspec.json.decode(event.payload)
    return AuditedDecision(
        id=data["decision_id"],
        decision_id=data["decision_id"],
        message_id=data["message_id"],
        customer_id=event.stream_id,
        outcome=data["outcome"],
        channel=data["channel"],
        defer_until=data["defer_until"],
        rule_set_version=data["rule_set_version"],
        fired=data["fired"],
        decided_at=event.recorded_at,
        request=data["request"],
        origin=data["origin"],
    )


class AuditDecisions:
    """Decisions in the order they were recorded, by customer (and the customers merged into
    them), period and outcome, a page at a time."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log

    async def __call__(
        self,
        *,
        customer: UUID | None,
        since: datetime | None,
        until: datetime | None,
        outcomes: Collection[Outcome],
        after: LogCursor,
        limit: int,
    ) -> DecisionPage:
        if not 1 <= limit <= _MAX_PAGE:
            raise AuditQueryRefused("limit", f"must be from 1 to {_MAX_PAGE}")
        wanted = set(outcomes or Outcome)
        streams: tuple[UUID, ...] = ()
        if customer is not None:
            streams = (customer, *await self.log.merged_into(customer))
        where = LogFilter(
            streams=streams,
            topics=tuple(sorted({_TOPICS[o] for o in wanted})),
            since=since,
            until=until,
        )
        check_period(where)
        plan = await self.log.plan(where, after, limit)
        views = [_view(event) for event in await self.log.read(where, plan.places)]
        return DecisionPage([v for v in views if v.outcome in wanted], plan.next, plan.at_end)
