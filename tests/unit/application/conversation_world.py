"""Chorus in memory with agents, teams, a routing document, and the conversation threads
process following the log, as the conversation tests drive it."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from adapters.assistant.keywords import KeywordClassifier
from adapters.inmemory.conversation_roster import InMemoryRoster
from adapters.inmemory.processes import InMemoryProcessPorts, InMemoryProcessRunner
from application.conversations.assign import AssignConversation
from application.conversations.departures import ReleaseDeparted
from application.conversations.drain_queues import DrainQueues
from application.conversations.receive_inbound import ReceiveInbound
from application.conversations.transfer import TransferConversation
from application.processes.conversation_threads import ConversationThreads
from domain.conversation.agents import Agent, Team, agent_id, team_id
from domain.conversation.aggregate import Conversation, conversation_id
from domain.conversation.routing_book import ROUTING_BOOK_ID, RoutingBook
from domain.conversation.routing_reader import decode_routing
from domain.conversation.vocabulary import ChannelKind, Presence
from domain.customer.keywords import INBOUND_SIGNAL
from tests.unit.in_memory_chorus import InMemoryChorus, claim, report

if TYPE_CHECKING:
    from collections.abc import Mapping
    from uuid import UUID

    from domain.customer.identities import IdentityClaim

__all__ = ["SUPPORT_ONLY", "ConversationWorld", "customer"]

SUPPORT_ONLY: dict[str, Any] = {"default_team": "support"}
"""A routing document that sends everything to the support team."""


class ConversationWorld:
    """One installation in memory: inbound signals go through attribution, then the threads
    process; `settle` runs it over what the log holds."""

    def __init__(self) -> None:
        self.chorus = InMemoryChorus()
        self.clock = self.chorus.clock
        self.uows = self.chorus.uows
        self.store = self.chorus.storage.events
        self.roster = InMemoryRoster(self.chorus.storage)
        self.receive = ReceiveInbound(self.uows, KeywordClassifier(), self.roster, self.clock)
        self.drain = DrainQueues(self.uows, self.roster, self.clock)
        self.assign = AssignConversation(self.uows, self.roster, self.clock)
        self.transfer = TransferConversation(self.uows, self.roster, self.clock)
        self.release = ReleaseDeparted(self.uows, self.roster, self.clock)
        self.process = ConversationThreads(self.receive, self.drain, self.release)
        self.runner = InMemoryProcessRunner(
            self.process, InMemoryProcessPorts(self.store), self.store
        )
        self.sent = 0

    async def settle(self) -> None:
        """Lets the process read the log to its end, again while it records more."""
        while await self.runner.catch_up():
            pass

    async def team(self, key: str, *members: str, skills: frozenset[str] = frozenset()) -> None:
        async with self.uows() as uow:
            teams = uow.repository(Team)
            team = (await teams.get([team_id(key)])).get(team_id(key))
            if team is None:
                team = Team.create(key, key.title(), "test", self.clock.now(), skills)
            for member in members:
                team.add_member(member, "test", self.clock.now())
            teams.add(team)

    async def leave(self, key: str, member: str) -> None:
        """Takes an agent off a team, as `DELETE /v1/teams/{key}/members/{agent}` does."""
        async with self.uows() as uow:
            teams = uow.repository(Team)
            team = (await teams.get([team_id(key)]))[team_id(key)]
            team.remove_member(member, "test", self.clock.now())
            teams.add(team)

    async def agent(
        self,
        key: str,
        capacity: Mapping[ChannelKind, int],
        skills: frozenset[str] = frozenset(),
        presence: Presence = Presence.AVAILABLE,
    ) -> None:
        async with self.uows() as uow:
            agent = Agent.register(key, key.title(), skills, capacity, "test", self.clock.now())
            agent.change_presence(presence, "test", self.clock.now())
            uow.repository(Agent).add(agent)

    async def change_agent(
        self,
        key: str,
        presence: Presence | None = None,
        capacity: Mapping[ChannelKind, int] | None = None,
    ) -> None:
        async with self.uows() as uow:
            agents = uow.repository(Agent)
            agent = (await agents.get([agent_id(key)]))[agent_id(key)]
            if presence is not None:
                agent.change_presence(presence, "test", self.clock.now())
            if capacity is not None:
                agent.change_capacity(capacity, "test", self.clock.now())
            agents.add(agent)

    async def routing(
        self, document: Mapping[str, Any], segments: frozenset[str] = frozenset()
    ) -> None:
        teams = {team.key for team in await self.roster.teams()}
        routing = decode_routing(dict(document), teams=teams, segments=segments)
        async with self.uows() as uow:
            books = uow.repository(RoutingBook)
            book = (await books.get([ROUTING_BOOK_ID])).get(ROUTING_BOOK_ID)
            if book is None:
                book = RoutingBook.open(self.clock.now())
            book.publish(routing, "test", self.clock.now())
            books.add(book)

    async def inbound(
        self,
        who: IdentityClaim,
        channel: str,
        text: object,
        event_id: str | None = None,
        **properties: Any,
    ) -> None:
        """A message from the customer, as a provider webhook records it; then the process."""
        self.sent += 1
        self.clock.advance(timedelta(seconds=1))
        event = report(
            event_id or f"twilio:m{self.sent}",
            who,
            kind=INBOUND_SIGNAL,
            occurred_at=self.clock.now(),
            properties={"channel": channel, "text": text, **properties},
        )
        await self.chorus.ingest([event])
        await self.settle()

    async def conversation(self, who: IdentityClaim, topic: str = "support") -> Conversation:
        customer = await self.customer_of(who)
        thread = conversation_id(customer, topic)
        async with self.uows() as uow:
            return (await uow.repository(Conversation).get([thread]))[thread]

    async def customer_of(self, who: IdentityClaim) -> UUID:
        async with self.uows() as uow:
            return (await uow.identities.resolve([who.identity]))[who.identity]

    async def load(self, agent: str) -> dict[ChannelKind, int]:
        found = await self.roster.candidates([agent])
        return dict(found[0].load) if found else {}


def customer(n: int) -> IdentityClaim:
    return claim("email", f"customer{n}@example.org")
