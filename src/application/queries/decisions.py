"""Decisions as they were recorded; never recomputed for the audit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime  # views are rendered by their run-time type hints
from typing import TYPE_CHECKING, Any
from uuid import UUID

from application.messages.list_unsubscribe import list_unsubscribe_headers
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.errors import NotFound

if TYPE_CHECKING:
    from ports.customers import CustomerRecords
    from ports.unsubscribe import UnsubscribeTokens

__all__ = ["DecisionQueries", "DecisionView"]


@dataclass(frozen=True, slots=True)
class DecisionView:
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
    list_unsubscribe: dict[str, str] | None = None  # email headers, RFC 2369 and RFC 8058


class DecisionQueries:
    """Reads the decision's own event, as stored."""

    def __init__(
        self,
        customers: CustomerRecords,
        unsubscribe: UnsubscribeTokens | None = None,
        public_url: str = "",
    ) -> None:
        self.customers = customers
        self.unsubscribe = unsubscribe
        self.public_url = public_url.rstrip("/")

    def _list_unsubscribe(self, customer_id: UUID, data: dict[str, Any]) -> dict[str, str] | None:
        if data["outcome"] not in ("send", "reroute") or data["channel"] is None:
            return None
        return list_unsubscribe_headers(
            self.unsubscribe,
            self.public_url,
            customer_id,
            Channel(data["channel"]),
            Purpose(data["request"]["purpose"]),
        )

    async def by_id(self, decision_id: UUID) -> DecisionView:
        event = await self.customers.decision(decision_id)
        if event is None:
            raise NotFound(f"no decision {decision_id}")
        data: dict[str, Any] = dict(event.data)
        return DecisionView(
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
            list_unsubscribe=self._list_unsubscribe(event.stream_id, data),
        )
