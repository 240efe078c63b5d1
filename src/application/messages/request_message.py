"""Decides a send request on the customer's stream, so concurrent requests cannot beat a cap."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import msgspec

from application.approvals.held import held_for_approval
from application.conflicts import retry_on_conflict
from application.messages.compose import (
    approved_as_sent,
    compose,
    compose_all,
    message_for,
    shaped_to_tone,
)
from domain.customer.aggregate import Customer
from domain.policy.decision import Outcome
from domain.shared.errors import DomainError, NotFound
from ports.unit_of_work import EarlierRequest

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from uuid import UUID

    from application.messages.compose import MessageContent
    from domain.policy.decision import Decision, SendRequest
    from domain.policy.rules import RuleSet
    from domain.policy.vocabulary import Channel
    from ports.clock import Clock
    from ports.customers import CustomerRecords
    from ports.delivery import Delivery
    from ports.ids import IdGenerator
    from ports.rules import RuleSets
    from ports.templates import Templates
    from ports.unit_of_work import UnitOfWork, UnitsOfWork

__all__ = [
    "IdempotencyKeyReused",
    "MessageDecided",
    "RequestMessage",
    "SendAsked",
    "SendDeciders",
    "decide_and_record",
]


class IdempotencyKeyReused(DomainError):
    """The key already named a different request; answering with its decision would mislead."""


def fingerprint_of(
    customer_id: UUID, request: SendRequest, content: MessageContent | None = None
) -> bytes:
    """What a request asked for, so a retry can be told from a different request. What the
    request says of the moment it was made (the intent it answers as classified then, the
    audience of its broadcast so far) is left out: a retry may see them changed."""
    asked = dataclasses.replace(request, intent=None, intent_confidence=None, audience=None)
    digest = hashlib.sha256(customer_id.bytes + msgspec.json.encode(asked))
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
    decision, _ = _decide_and_record(
        uow,
        customer,
        message_id,
        decision_id,
        request,
        rules,
        now,
        origin,
        idempotency_key,
        fingerprint,
        delivery,
    )
    return decision


def _decide_and_record(
    uow: UnitOfWork,
    customer: Customer,
    message_id: UUID,
    decision_id: UUID,
    request: SendRequest,
    rules: RuleSet,
    now: datetime,
    origin: str,
    idempotency_key: str | None,
    fingerprint: bytes | None,
    delivery: Delivery | None,
) -> tuple[Decision, bool]:
    """`decide_and_record`, and whether the message was put in the outbox."""
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
    if decision.outcome is Outcome.HOLD and decision.defer_until is not None:
        # The hold waits as a deferral due at its expiry; its id is the hold decision's.
        uow.deferrals.defer(
            message_id, customer.id, decision.defer_until, request, origin, delivery, decision_id
        )
        uow.approvals.hold(
            held_for_approval(customer.id, message_id, decision_id, request, decision, now, origin)
        )
    queued = False
    if decision.allows_send and delivery is not None:
        made = message_for(customer, message_id, decision_id, request, decision, delivery, now)
        if made is not None:
            uow.outbox.put(*made)
            queued = True
    uow.repository(Customer).add(customer)
    return decision, queued


@dataclass(frozen=True, slots=True)
class SendAsked:
    """One send of many asked at once (`RequestMessage.all`), as a call's arguments."""

    customer_id: UUID
    request: SendRequest
    idempotency_key: str | None = None
    origin: str = "api"
    content: MessageContent | None = None
    delivery: Delivery | None = None


@dataclass(frozen=True, slots=True)
class MessageDecided:
    message_id: UUID
    decision_id: UUID
    customer_id: UUID
    decision: Decision | None  # None: a retry of an earlier request, see decision_id
    repeated: bool = False
    # This decision put the message in the outbox (False for a retry: nothing new was put).
    queued: bool = False


class SendDeciders(Protocol):
    """What decides many sends at once as `RequestMessage.all` does: this process's own, or
    other processes doing it beside it (a broadcast's)."""

    async def all(self, asked: Sequence[SendAsked]) -> list[MessageDecided | DomainError]: ...


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
        asked = SendAsked(customer_id, request, idempotency_key, origin, content, delivery)
        message_id = self.ids.new_id()
        fingerprint = fingerprint_of(customer_id, request, content) if idempotency_key else None

        async def attempt() -> MessageDecided:
            async with self.uows() as uow:
                earlier = (
                    None if idempotency_key is None else await uow.requests.earlier(idempotency_key)
                )
                return await self._decide(uow, {}, asked, message_id, fingerprint, earlier, rules)

        return await retry_on_conflict(attempt)

    async def within(self, uow: UnitOfWork, asked: SendAsked, rules: RuleSet) -> MessageDecided:
        """Decides one send as a call would, in the caller's unit of work: what the caller
        records with it commits together with the decision, or neither does. `rules` are read
        before the unit of work opens (`rule_sets.current()`); the caller retries a conflict."""
        key = asked.idempotency_key
        fingerprint = (
            fingerprint_of(asked.customer_id, asked.request, asked.content) if key else None
        )
        earlier = None if key is None else await uow.requests.earlier(key)
        return await self._decide(uow, {}, asked, self.ids.new_id(), fingerprint, earlier, rules)

    async def all(self, asked: Sequence[SendAsked]) -> list[MessageDecided | DomainError]:
        """Decides many sends in one commit, each as a call would: the same rules, decisions,
        index rows and outbox rows, and the same idempotency; their contents are rendered in one
        trip to the renderer. A send that cannot be decided (its template, its customer, a key
        reused) is answered with its error; the others go on. A conflict on any customer's
        stream (a decision made meanwhile) takes them all again."""
        rules = await self.rule_sets.current()
        message_ids = [self.ids.new_id() for _ in asked]
        prints = [
            fingerprint_of(a.customer_id, a.request, a.content) if a.idempotency_key else None
            for a in asked
        ]

        async def attempt() -> list[MessageDecided | DomainError]:
            async with self.uows() as uow:
                keys = {a.idempotency_key for a in asked if a.idempotency_key is not None}
                earlier = await uow.requests.earlier_all(keys) if keys else {}
                ids = list(dict.fromkeys(a.customer_id for a in asked))
                loaded: dict[UUID, Customer | None] = dict(await uow.repository(Customer).get(ids))
                rendered = await self._render_all(uow, loaded, asked, earlier)
                answers: list[MessageDecided | DomainError] = []
                for n, (one, message_id, fingerprint) in enumerate(
                    zip(asked, message_ids, prints, strict=True)
                ):
                    key = one.idempotency_key
                    try:
                        answer = await self._decide(
                            uow,
                            loaded,
                            one,
                            message_id,
                            fingerprint,
                            None if key is None else earlier.get(key),
                            rules,
                            rendered.get(n),
                        )
                    except DomainError as error:
                        answers.append(error)
                        continue
                    if key is not None and answer.decision is not None:
                        # A twin later in the batch answers as a retry would.
                        earlier[key] = EarlierRequest(
                            answer.message_id, answer.customer_id, answer.decision_id, fingerprint
                        )
                    answers.append(answer)
                return answers

        return await retry_on_conflict(attempt)

    async def _render_all(
        self,
        uow: UnitOfWork,
        loaded: dict[UUID, Customer | None],
        asked: Sequence[SendAsked],
        earlier: dict[str, EarlierRequest],
    ) -> dict[int, Delivery | DomainError]:
        """The content of each send that will be decided (not a retry, its customer found),
        by its place in `asked`, rendered in one trip to the renderer rather than one a send."""
        places: list[int] = []
        composing: list[tuple[MessageContent, Customer, Sequence[Channel]]] = []
        for n, one in enumerate(asked):
            key = one.idempotency_key
            if one.content is None or (key is not None and key in earlier):
                continue
            customer = await self._recipient(uow, loaded, one.customer_id)
            if customer is not None:
                places.append(n)
                composing.append((one.content, customer, one.request.channels))
        if not composing:
            return {}
        return dict(zip(places, await compose_all(self.templates, composing), strict=True))

    async def _recipient(
        self, uow: UnitOfWork, loaded: dict[UUID, Customer | None], customer_id: UUID
    ) -> Customer | None:
        """The customer a send goes to: the survivor, if they were merged into another."""
        customer = await _customer(uow, loaded, customer_id)
        if customer is not None and customer.merged_into is not None:
            survivor = await self.customers.survivor(customer_id)
            customer = None if survivor is None else await _customer(uow, loaded, survivor)
        return customer

    async def _decide(
        self,
        uow: UnitOfWork,
        loaded: dict[UUID, Customer | None],
        asked: SendAsked,
        message_id: UUID,
        fingerprint: bytes | None,
        earlier: EarlierRequest | None,
        rules: RuleSet,
        rendered: Delivery | DomainError | None = None,
    ) -> MessageDecided:
        """Decides one send in `uow`, its customer from `loaded` if read there already;
        `rendered` is its content, if rendered ahead with others (`_render_all`)."""
        if earlier is not None and earlier.fingerprint not in (None, fingerprint):
            raise IdempotencyKeyReused("this idempotency key was used for a different request")
        if earlier is not None:
            return MessageDecided(
                earlier.message_id,
                earlier.decision_id,
                earlier.customer_id,
                None,
                repeated=True,
            )
        customer = await self._recipient(uow, loaded, asked.customer_id)
        if customer is None:
            raise NotFound(f"no customer {asked.customer_id}")
        request, content = asked.request, asked.content
        if isinstance(rendered, DomainError):
            raise rendered
        if content is None:
            rendered = asked.delivery
        elif rendered is None:
            rendered = await compose(self.templates, content, customer, request.channels)
        if rendered is not None and content is not None and content.campaign is not None:
            rendered = shaped_to_tone(rendered, rules)
        said = request if rendered is None else approved_as_sent(request, rendered)
        decision_id = self.ids.new_id()
        decision, queued = _decide_and_record(
            uow,
            customer,
            message_id,
            decision_id,
            said,
            rules,
            self.clock.now(),
            asked.origin,
            asked.idempotency_key,
            fingerprint,
            rendered,
        )
        return MessageDecided(message_id, decision_id, customer.id, decision, queued=queued)


async def _customer(
    uow: UnitOfWork, loaded: dict[UUID, Customer | None], customer_id: UUID
) -> Customer | None:
    if customer_id not in loaded:
        found = await uow.repository(Customer).get([customer_id])
        loaded[customer_id] = found.get(customer_id)
    return loaded[customer_id]
