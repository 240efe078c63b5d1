"""A message's trace: its decisions, every provider attempt, every status, and its cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime  # views are rendered by their run-time type hints
from typing import TYPE_CHECKING, Any
from uuid import UUID

from application.queries.decisions import DecisionView  # MessageView's type, read at run time
from domain.campaign.origin import SendOrigin
from domain.shared.errors import NotFound

if TYPE_CHECKING:
    from collections.abc import Sequence

    from application.queries.decisions import DecisionQueries
    from ports.approvals import ApprovalRecord, ApprovalsRead
    from ports.delivery import CostLine, DeliveryStore

__all__ = [
    "CostReport",
    "MessageQueries",
    "MessageView",
    "approval_view",
    "campaign_of",
    "undelivered_status",
]


@dataclass(frozen=True, slots=True)
class MessageView:
    message_id: UUID
    customer_id: UUID
    status: str  # a delivery status; nothing sent: deferred, suppressed, held, or allowed
    channel: str | None
    team: str | None
    campaign: str | None
    provider: str | None
    provider_message_id: str | None
    cost: str | None
    currency: str | None
    template: str | None
    template_version: int | None
    correlation_id: str | None
    queued_at: datetime | None
    expires_at: datetime | None  # it is withdrawn (`expired`) if no provider took it by then
    failure: str | None
    recipient: str | None
    content: dict[str, Any] | None  # what was sent, as rendered when it was requested
    fell_back_to: UUID | None
    decisions: list[DecisionView]
    attempts: list[dict[str, Any]]
    statuses: list[dict[str, Any]]
    # each hold for an operator's approval, with its verdict: who, when, what it led to
    approvals: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CostReport:
    since: datetime
    until: datetime
    group_by: list[str]
    total_messages: int
    totals: dict[str, str]  # cost per currency
    lines: list[dict[str, Any]]


class MessageQueries:
    """Reads a message's own stream and the decisions recorded on its customer."""

    def __init__(
        self,
        store: DeliveryStore,
        decisions: DecisionQueries,
        approvals: ApprovalsRead | None = None,
    ) -> None:
        self.store = store
        self.decisions = decisions
        self.approvals = approvals

    async def by_id(self, message_id: UUID) -> MessageView:
        decision_ids = await self.store.decisions_of(message_id)
        if not decision_ids:
            raise NotFound(f"no message {message_id}")
        decisions = [await self.decisions.by_id(d) for d in decision_ids]
        approvals = [] if self.approvals is None else await self.approvals.of_message(message_id)
        held = [approval_view(record) for record in approvals]
        message = await self.store.get(message_id)
        last = decisions[-1]
        if message is None:
            return MessageView(
                message_id=message_id,
                customer_id=last.customer_id,
                status=undelivered_status(last.outcome),
                channel=last.channel,
                team=last.request.get("team"),
                campaign=campaign_of(decisions[0].origin),
                provider=None,
                provider_message_id=None,
                cost=None,
                currency=None,
                template=None,
                template_version=None,
                correlation_id=None,
                queued_at=None,
                expires_at=None,
                failure=None,
                recipient=None,
                content=None,
                fell_back_to=None,
                decisions=decisions,
                attempts=[],
                statuses=[],
                approvals=held,
            )
        return MessageView(
            message_id=message_id,
            customer_id=message.customer_id,
            status=message.status.value,
            channel=message.channel.value,
            team=message.team,
            campaign=message.campaign,
            provider=message.provider,
            provider_message_id=message.provider_message_id,
            cost=None if message.cost is None else str(message.cost),
            currency=message.currency,
            template=message.template,
            template_version=message.template_version,
            correlation_id=message.correlation_id,
            queued_at=message.queued_at,
            expires_at=message.expires_at,
            failure=message.failure,
            recipient=message.recipient,
            content={k: v for k, v in asdict(message.content).items() if v not in (None, ())},
            fell_back_to=message.fell_back_to,
            decisions=decisions,
            attempts=[
                {
                    "provider": a.provider,
                    "at": a.at.isoformat(),
                    "latency_ms": round(a.latency_ms, 3),
                    "accepted": a.accepted,
                    "answer": a.answer,
                    "retryable": a.retryable,
                }
                for a in message.attempts
            ],
            statuses=[
                {
                    "status": s.status.value,
                    "at": s.at.isoformat(),
                    "provider": s.provider,
                    "source": s.source,
                    "reason": s.reason,
                    "reported_at": None if s.reported_at is None else s.reported_at.isoformat(),
                }
                for s in message.statuses
            ],
            approvals=held,
        )

    async def costs(
        self,
        since: datetime,
        until: datetime,
        group_by: Sequence[str],
        teams: frozenset[str] | None = None,
    ) -> CostReport:
        """The cost of the messages queued in [since, until); with `teams`, of those teams'
        messages only (a reader limited to teams: `TeamScope.sends`)."""
        lines = await self.store.costs(since, until, group_by, teams)
        totals: dict[str, Any] = {}
        for line in lines:
            if line.currency is not None:
                totals[line.currency] = totals.get(line.currency, 0) + line.cost
        return CostReport(
            since=since,
            until=until,
            group_by=list(group_by),
            total_messages=sum(line.messages for line in lines),
            totals={currency: str(amount) for currency, amount in totals.items()},
            lines=[_line(line) for line in lines],
        )


def _line(line: CostLine) -> dict[str, Any]:
    return {
        **line.group,
        "currency": line.currency,
        "messages": line.messages,
        "cost": str(line.cost),
        "by_status": line.by_status,
    }


def undelivered_status(outcome: str) -> str:
    """The status of a message with no delivery, from its last decision's outcome: why (or it
    was decided as advice only). The audit's story of a message says the same."""
    if outcome in ("send", "reroute"):
        return "allowed"
    return {"defer": "deferred", "suppress": "suppressed", "hold": "held"}.get(outcome, outcome)


def campaign_of(origin: str) -> str | None:
    """The campaign (its key) whose send the message is, from its first decision's origin:
    named whatever became of the send, a deferred or suppressed one too."""
    send = SendOrigin.parse(origin)
    return None if send is None else send.campaign


def approval_view(record: ApprovalRecord) -> dict[str, Any]:
    """An approval as operators and auditors read it."""
    return {
        "id": str(record.approval_id),
        "message_id": str(record.message_id),
        "customer_id": str(record.customer_id),
        "status": record.status.value,
        "rule_id": record.rule_id,
        "reason": record.reason,
        "team": record.team,
        "purpose": record.purpose,
        "channel": record.channel,
        "origin": record.origin,
        "held_at": record.held_at.isoformat(),
        "expires_at": record.expires_at.isoformat(),
        "settled_at": None if record.settled_at is None else record.settled_at.isoformat(),
        "settled_by": record.settled_by,
        "note": record.note,
        "decision_id": None if record.decision_id is None else str(record.decision_id),
    }
