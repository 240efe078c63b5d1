"""One in-memory installation with conversations, for the inbox and SLA timer tests: customers,
teams, a routing book, conversations made through the domain and the unit of work, the inbox
folded from the log and the SLA timers process following it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from adapters.inmemory.campaigns import InMemoryCampaigns
from adapters.inmemory.customer_context import InMemoryContextReads
from adapters.inmemory.customer_records import InMemoryCustomerRecords
from adapters.inmemory.directory import InMemoryDirectory
from adapters.inmemory.enrollments import InMemoryEnrollments
from adapters.inmemory.inbox import InMemoryInbox, InMemoryInboxChanges
from adapters.inmemory.processes import InMemoryProcessRunner
from adapters.inmemory.segments import InMemorySegments
from adapters.inmemory.sla_timers import InMemorySlaPorts
from adapters.inmemory.storage import InMemoryStorage
from adapters.inmemory.unit_of_work import InMemoryUnitsOfWork
from adapters.system.clock import ManualClock
from application.processes.sla_timers import SlaTimers
from application.queries.customer_context import ContextQueries
from application.queries.customers import CustomerQueries
from application.queries.inbox import InboxQueries
from domain.conversation.agents import Agent, Team, agent_id
from domain.conversation.aggregate import ActingAgent, Conversation
from domain.conversation.routing_book import ROUTING_BOOK_ID, RoutingBook
from domain.conversation.routing_reader import decode_routing
from domain.conversation.vocabulary import ChannelKind
from domain.customer.aggregate import Customer
from domain.customer.identities import IdentityClaim, IdentityNormalizer, Verification
from domain.policy.defaults import default_rule_set

if TYPE_CHECKING:
    from domain.conversation.working_hours import WorkingHours
    from domain.policy.vocabulary import Channel

__all__ = ["MONDAY", "SLA", "InboxWorld"]

MONDAY = datetime(2026, 3, 2, 10, tzinfo=UTC)
SLA: dict[str, Any] = {
    "first_response": {"chat": "2m", "email": "4h"},
    "next_response": {"chat": "5m", "email": "8h"},
    "tiers": {"vip": {"first_response": {"email": "1h"}}},
    "on_breach": {"priority": "urgent"},
}
_NORMALIZE = IdentityNormalizer("GB")


class InboxWorld:
    def __init__(self, at: datetime = MONDAY) -> None:
        self.storage = InMemoryStorage()
        self.store = self.storage.events
        self.clock = ManualClock(at)
        self.uows = InMemoryUnitsOfWork(self.storage)
        self.changes = InMemoryInboxChanges()
        self.sla_process = SlaTimers(self.clock)
        self.sla_ports = InMemorySlaPorts(self.storage)
        self.sla = InMemoryProcessRunner(self.sla_process, self.sla_ports, self.store)  # type: ignore[arg-type]
        self.inbox = InMemoryInbox(self.sla_ports.sla_deadlines, self.changes)
        self.inbox_position = 0
        self.enrollments = InMemoryEnrollments()
        self.queries = InboxQueries(
            self.inbox,
            self.changes,
            self.uows,
            ContextQueries(
                CustomerQueries(InMemoryCustomerRecords(self.storage)),
                InMemoryContextReads(self.storage),
                InMemoryDirectory(self.storage),
                InMemorySegments(self.storage),
                self.enrollments,
                InMemoryCampaigns(self.storage),
                self.inbox,
                self.uows,
                self.clock,
            ),
            self.clock,
        )
        self.rules = default_rule_set()

    async def settle(self) -> None:
        """The inbox and the SLA timers catch up with the log."""
        await self.sla.catch_up()
        self.inbox.apply(self.store.log[self.inbox_position :])
        self.inbox_position = len(self.store.log)

    async def customer(
        self,
        email: str = "ana@example.org",
        verification: Verification = Verification.UNVERIFIED,
        **attributes: Any,
    ) -> UUID:
        customer = Customer.register(
            uuid4(),
            self.clock.now(),
            (IdentityClaim(_NORMALIZE.parse(f"email:{email}"), verification),),
        )
        if attributes:
            customer.update_profile(self.clock.now(), {}, attributes)
        await self._save(customer)
        return customer.id

    async def team(self, key: str, hours: WorkingHours | None = None) -> None:
        await self._save(
            Team.create(key, key.title(), "admin", self.clock.now(), working_hours=hours)
        )

    async def routing(
        self, sla: dict[str, Any] | None = None, teams: set[str] | None = None
    ) -> None:
        document = {"default_team": "support", "sla": SLA if sla is None else sla}
        routing = decode_routing(document, teams=teams or {"support", "billing"}, segments=set())
        async with self.uows() as uow:
            books = uow.repository(RoutingBook)
            book = (await books.get([ROUTING_BOOK_ID])).get(ROUTING_BOOK_ID)
            book = book or RoutingBook.open(self.clock.now())
            book.publish(routing, "admin", self.clock.now())
            books.add(book)

    async def conversation(
        self,
        customer_id: UUID,
        channel: Channel,
        text: str = "hello",
        *,
        topic: str = "support",
        team: str | None = None,
        agent: str | None = None,
    ) -> UUID:
        """A conversation started with one inbound message, held by a team or an agent."""
        conversation = Conversation.start(customer_id, "customer", self.clock.now(), topic)
        conversation.receive(uuid4(), channel, text, self.clock.now(), self.clock.now())
        if agent is not None and team is not None:
            await self._registered(agent)  # a commit never puts an agent over capacity
            acting = ActingAgent(agent, frozenset({team}))
            conversation.assign(acting, team, "least loaded", "router", self.clock.now())
        elif team is not None:
            conversation.transfer(team, None, "routed", "router", self.clock.now())
        await self._save(conversation)
        return conversation.id

    async def change(self, conversation_id: UUID, *calls: tuple[str, tuple[Any, ...]]) -> None:
        """Loads the conversation, calls its methods by name, and saves it."""
        async with self.uows() as uow:
            repo = uow.repository(Conversation)
            conversation = (await repo.get([conversation_id]))[conversation_id]
            for name, arguments in calls:
                getattr(conversation, name)(*arguments)
            repo.add(conversation)

    async def load(self, conversation_id: UUID) -> Conversation:
        async with self.uows() as uow:
            return (await uow.repository(Conversation).get([conversation_id]))[conversation_id]

    async def _registered(self, key: str) -> None:
        """The agent, registered with room for every conversation these tests give them."""
        async with self.uows() as uow:
            agents = uow.repository(Agent)
            if agent_id(key) not in await agents.existing([agent_id(key)]):
                room = dict.fromkeys(ChannelKind, 50)
                agents.add(Agent.register(key, key, frozenset(), room, "admin", self.clock.now()))

    async def _save(self, aggregate: Any) -> None:
        async with self.uows() as uow:
            uow.repository(type(aggregate)).add(aggregate)
