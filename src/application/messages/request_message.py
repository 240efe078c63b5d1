"""Decides a send request on the customer's stream, so concurrent requests cannot beat a cap."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from application.conflicts import retry_on_conflict
from application.messages.compose import approved_as_sent, compose, message_for
from domain.customer.aggregate import Customer
from domain.policy.decision import Outcome
from domain.shared.errors import DomainError, NotFound
from ports.unit_of_work import EarlierRequest

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from application.messages.compose import MessageContent
    from domain.policy.decision import Decision, SendRequest
    from domain.policy.rules import RuleSet
    from ports.clock import Clock
    from ports.customers import CustomerRecords
    from ports.delivery import Delivery
    from ports.ids import IdGenerator
    from ports.rules import RuleSets
    from ports.templates import Templates
    from ports.unit_of_work import UnitOfWork, UnitsOfWork

__all__ = ["IdempotencyKeyReused", "MessageDecided", "RequestMessage", "decide_and_record"]


class IdempotencyKeyReused(DomainError):
    """The key already named a different request; answering with its decision would mislead."""


def fingerprint_of(
    customer_id: UUID, request: SendRequest, content: MessageContent | None = None
) -> bytes:
    """What a request asked for, so a retry can be told from a different request."""
    digest = hashlib.sha256(customer_id.bytes + msgspec.json.encode(request))
    if content is not None:
        said = (content.template, content.version, content.locale, content.variables)
        digest.update(
            msgspec.json.encode((*said, content.inline, content.campaign, content.fallback))
        )
    return digest.digest()


def decide_and_record(
    uow: UnitOfWork,
    customer: Customer,
    message_id: UUID,
    decision_id: UUID,
    request: SendRequest,
    rules: RuleSet,
    now: datetime,
    origin: str,
    idempotency_key: str | None = None,
    fingerprint: bytes | None = None,
    delivery: Delivery | None = None,
) -> Decision:
    """Decides on the customer and enlists the decision, its index, any deferral and, for an
    allowed message with content, the message and its outbox entry: all in one commit."""
    decision = customer.decide_message(message_id, decision_id, request, rules, now, origin)
    uow.decisions.add(decision_id, message_id, customer.id, customer.version)
    if idempotency_key is not None:
        uow.requests.add(
            idempotency_key, EarlierRequest(message_id, customer.id, decision_id, fingerprint)
        )
    if decision.outcome is Outcome.DEFER and decision.defer_until is not None:
        uow.deferrals.defer(
            message_id, customer.id, decision.defer_until, request, origin, delivery
        )
    if decision.allows_send and delivery is not None:
        made = message_for(customer, message_id, decision_id, request, decision, delivery, now)
        if made is not None:
            uow.outbox.put(*made)
    uow.repository(Customer).add(customer)
    return decision


@dataclass(frozen=True, slots=True)
class MessageDecided:
    message_id: UUID
    decision_id: UUID
    customer_id: UUID
    decision: Decision | None  # None: a retry of an earlier request, see decision_id
    repeated: bool = False


class RequestMessage:
    """Load the customer, decide, record the decision and its ledger entry, commit or retry."""

    def __init__(
        self,
        uows: UnitsOfWork,
        rule_sets: RuleSets,
        clock: Clock,
        ids: IdGenerator,
        templates: Templates | None = None,
        *,
        customers: CustomerRecords,
    ) -> None:
        self.uows = uows
        self.rule_sets = rule_sets
        self.clock = clock
        self.ids = ids
        self.templates = templates
        self.customers = customers

    async def __call__(
        self,
        customer_id: UUID,
        request: SendRequest,
        *,
        idempotency_key: str | None = None,
        origin: str = "api",
        content: MessageContent | None = None,
        delivery: Delivery | None = None,
    ) -> MessageDecided:
        """Without `content` the decision is only advice: the caller sends the message itself.
        `delivery` is content rendered earlier (a fallback's)."""
        rules = await self.rule_sets.current()
        message_id = self.ids.new_id()
        fingerprint = fingerprint_of(customer_id, request, content) if idempotency_key else None

        async def attempt() -> MessageDecided:
            async with self.uows() as uow:
                if idempotency_key is not None:
                    earlier = await uow.requests.earlier(idempotency_key)
                    if earlier is not None and earlier.fingerprint not in (None, fingerprint):
                        raise IdempotencyKeyReused(
                            "this idempotency key was used for a different request"
                        )
                    if earlier is not None:
                        return MessageDecided(
                            earlier.message_id,
                            earlier.decision_id,
                            earlier.customer_id,
                            None,
                            repeated=True,
                        )
                repository = uow.repository(Customer)
                customer = (await repository.get([customer_id])).get(customer_id)
                if customer is not None and customer.merged_into is not None:
                    survivor = await self.customers.survivor(customer_id)
                    customer = (
                        (await repository.get([survivor])).get(survivor) if survivor else None
                    )
                if customer is None:
                    raise NotFound(f"no customer {customer_id}")
                rendered = (
                    delivery
                    if content is None
                    else await compose(self.templates, content, customer, request.channels)
                )
                said = request if rendered is None else approved_as_sent(request, rendered)
                decision_id = self.ids.new_id()
                decision = decide_and_record(
                    uow,
                    customer,
                    message_id,
                    decision_id,
                    said,
                    rules,
                    self.clock.now(),
                    origin,
                    idempotency_key,
                    fingerprint,
                    rendered,
                )
                return MessageDecided(message_id, decision_id, customer.id, decision)

        return await retry_on_conflict(attempt)
