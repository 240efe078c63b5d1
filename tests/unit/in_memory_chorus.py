"""Chorus's use cases wired to the in-memory adapters, as a test drives them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from adapters.inmemory.customer_records import InMemoryCustomerRecords
from adapters.inmemory.delivery import InMemoryDeliveryStore
from adapters.inmemory.ids import SequentialIds
from adapters.inmemory.rule_sets import InMemoryRuleSets
from adapters.inmemory.signal_intake import InMemorySignalIntake
from adapters.inmemory.storage import InMemoryStorage
from adapters.inmemory.templates import InMemoryTemplates
from adapters.inmemory.unit_of_work import InMemoryUnitsOfWork
from adapters.system.clock import ManualClock
from adapters.templates.jinja import JinjaTemplates
from application.customer.change_consent import ChangeConsent
from application.customer.change_suppression import ChangeSuppression
from application.customer.signals import AcceptSignals, AttributeSignals, IngestSignals
from application.customer.upsert_customer import UpsertCustomer
from application.delivery.fall_back import FallBackDue
from application.messages.redecide_due import RedecideDueMessages
from application.messages.request_message import RequestMessage
from application.rules.publish_rules import PublishRules
from domain.customer.identities import IdentityClaim, IdentityNormalizer
from domain.message.aggregate import Message
from domain.policy.defaults import default_rule_set
from domain.signals.aggregate import SignalReport
from domain.signals.document import IdentityIn, ReceivedSignal, SignalIn, SignalReader
from domain.signals.intake import RECEIVED_TOPIC

if TYPE_CHECKING:
    from uuid import UUID

    from domain.customer.aggregate import Customer
    from domain.policy.rules import RuleSet
    from domain.policy.vocabulary import Channel

__all__ = ["MONDAY_NOON", "InMemoryChorus", "claim", "received", "report"]

MONDAY_NOON = datetime(2026, 11, 30, 12, tzinfo=UTC)
_normalize = IdentityNormalizer().normalize


def claim(kind: str, value: str) -> IdentityClaim:
    return IdentityClaim(_normalize(kind, value))


def report(
    event_id: str,
    *claims: IdentityClaim,
    kind: str = "page.viewed",
    occurred_at: datetime = MONDAY_NOON,
    **extra: Any,
) -> SignalReport:
    return SignalReport(event_id, kind, occurred_at, claims, **extra)


def received(event_id: str, email: str, kind: str = "page.viewed") -> ReceivedSignal:
    """A signal as a producer sends it, about one email address."""
    document = SignalIn(event_id, kind, MONDAY_NOON, [IdentityIn("email", email)])
    return ReceivedSignal(event_id, msgspec.json.encode(document))


class InMemoryChorus:
    """One installation: one storage, a manual clock, ids counted up from one."""

    def __init__(self, at: datetime = MONDAY_NOON) -> None:
        self.storage = InMemoryStorage()
        self.clock = ManualClock(at)
        self.ids = SequentialIds()
        self.uows = InMemoryUnitsOfWork(self.storage)
        self.customers = InMemoryCustomerRecords(self.storage)
        self.rule_sets = InMemoryRuleSets(self.storage, self.clock)
        self.templates = JinjaTemplates(InMemoryTemplates(self.storage))
        self.intake = InMemorySignalIntake(self.storage)
        self.delivery = InMemoryDeliveryStore(self.storage)

        self.ingest = IngestSignals(self.uows, self.clock, self.ids)
        self.accept = AcceptSignals(self.intake, self.clock, self.ingest, poll_every=0.001)
        self.attribute = AttributeSignals(
            self.ingest, SignalReader(IdentityNormalizer()), self.intake, self.clock
        )
        self.upsert = UpsertCustomer(self.uows, self.clock, self.ids)
        self.change_consent = ChangeConsent(self.uows, self.clock, self.customers)
        self.change_suppression = ChangeSuppression(self.uows, self.clock, self.customers)
        self.request_message = RequestMessage(
            self.uows,
            self.rule_sets,
            self.clock,
            self.ids,
            self.templates,
            customers=self.customers,
        )
        self.redecide_due = RedecideDueMessages(self.uows, self.rule_sets, self.clock, self.ids)
        self.fall_back_due = FallBackDue(self.uows, self.request_message, self.clock)

    async def publish(self, **changes: Any) -> RuleSet:
        """Publishes the built-in rules with these fields changed."""
        rules = replace(default_rule_set(), **changes)
        return (await PublishRules(self.uows, self.rule_sets, self.clock)(rules, "test")).rules

    async def attribute_received(self) -> None:
        """Attribution's page: every received signal in the log, applied again as a rerun is."""
        await self.attribute.apply(None, list(self.storage.events.read({RECEIVED_TOPIC})))

    async def lease(self, channel: Channel) -> list[Message]:
        """The messages a dispatcher would lease now on this channel, leased for 30 seconds."""
        async with self.uows() as uow:
            leased = await uow.outbox.claim(channel, 10, 30, self.clock.now())
            found = await uow.repository(Message).get([entry.message_id for entry in leased])
        return [found[entry.message_id] for entry in leased]

    async def customer(self, customer_id: UUID) -> Customer:
        found = await self.customers.get(customer_id)
        assert found is not None, f"no customer {customer_id}"
        return found

    async def owner(self, kind: str, value: str) -> UUID | None:
        return await self.customers.find(_normalize(kind, value))

    def count(self, kind: str) -> int:
        """How many events of this type (`Customer.Registered`, say) the log holds."""
        return sum(e.topic.endswith(":" + kind) for e in self.storage.events.log)
