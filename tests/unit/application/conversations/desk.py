"""The agent desk's use cases on the in-memory adapters, with a customer's conversation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.inmemory.campaigns import InMemoryJourneyReferences
from adapters.inmemory.conversation_roster import InMemoryRoster
from adapters.inmemory.providers import InMemoryProviders, RecordingProvider
from adapters.inmemory.snooze_timers import InMemorySnoozeTimers
from adapters.inmemory.staff import InMemoryStaffDirectory
from adapters.inmemory.templates import InMemoryTemplates
from application.conversations.actors import Actor
from application.conversations.agents import (
    AgentQueries,
    ChangeAgentCapacity,
    ChangeAgentPresence,
    ChangeAgentSkills,
    RegisterAgent,
)
from application.conversations.labels import ChangePriority, ChangeTags
from application.conversations.lifecycle import (
    ReopenConversation,
    ResolveConversation,
    SnoozeConversation,
    WakeSnoozedConversations,
)
from application.conversations.notes import AddNote
from application.conversations.replies import ReplyToConversation
from application.conversations.routing_document import PublishRouting, RoutingQueries
from application.conversations.teams import (
    AddTeamMember,
    ChangeTeamSkills,
    CreateTeam,
    RemoveTeamMember,
    SetWorkingHours,
    TeamQueries,
)
from domain.conversation.aggregate import ActingAgent, Conversation
from domain.conversation.routing import RoutingDecision
from domain.conversation.vocabulary import ChannelKind, Priority
from domain.customer.aggregate import Customer
from domain.customer.contact import ConsentRecord
from domain.policy.vocabulary import Channel, Purpose
from tests.unit.in_memory_chorus import InMemoryChorus, claim

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID


__all__ = ["ADMIN", "SERVED", "Desk", "ana", "bruno"]

ADMIN = Actor("admin key")
SERVED = (Channel.EMAIL, Channel.SMS, Channel.WHATSAPP, Channel.PUSH)
"""The channels the desk's providers serve, as the demo's do: no chat, no voice."""


def ana(*teams: str) -> Actor:
    return Actor("ana.silva", ActingAgent("ana.silva", frozenset(teams)))


def bruno(*teams: str) -> Actor:
    return Actor("bruno.costa", ActingAgent("bruno.costa", frozenset(teams)))


class Desk(InMemoryChorus):
    """Chorus with the agent desk's use cases."""

    def __init__(self) -> None:
        super().__init__()
        self.staff = InMemoryStaffDirectory(self.storage)
        self.register_agent = RegisterAgent(self.uows, self.clock)
        self.change_agent_skills = ChangeAgentSkills(self.uows, self.clock)
        self.change_agent_capacity = ChangeAgentCapacity(self.uows, self.clock)
        self.change_agent_presence = ChangeAgentPresence(self.uows, self.clock)
        self.agents = AgentQueries(self.uows, self.staff, InMemoryRoster(self.storage))
        self.create_team = CreateTeam(self.uows, self.clock)
        self.add_member = AddTeamMember(self.uows, self.clock)
        self.remove_member = RemoveTeamMember(self.uows, self.clock)
        self.change_team_skills = ChangeTeamSkills(self.uows, self.clock)
        self.set_working_hours = SetWorkingHours(self.uows, self.clock)
        self.teams = TeamQueries(self.uows, self.staff, self.clock)
        self.publish_routing = PublishRouting(
            self.uows, self.staff, InMemoryJourneyReferences(self.storage), self.clock
        )
        self.routing = RoutingQueries(self.uows)
        self.reply = ReplyToConversation(
            self.uows,
            self.rule_sets,
            self.clock,
            self.request_message,
            InMemoryTemplates(self.storage),
            InMemoryRoster(self.storage),
            InMemoryProviders(*(RecordingProvider(str(c), c) for c in SERVED)),
        )
        self.add_note = AddNote(self.uows, self.clock, self.ids)
        self.timers = InMemorySnoozeTimers()
        self.snooze = SnoozeConversation(self.uows, self.clock, self.timers)
        self.wake_snoozed = WakeSnoozedConversations(self.uows, self.clock, self.timers)
        self.resolve = ResolveConversation(self.uows, self.clock)
        self.reopen = ReopenConversation(self.uows, self.clock)
        self.change_tags = ChangeTags(self.uows, self.clock)
        self.change_priority = ChangePriority(self.uows, self.clock)

    async def staffed(self) -> None:
        """Ana on support, Bruno on billing."""
        capacity = {ChannelKind.CHAT: 3, ChannelKind.EMAIL: 10}
        for key, team in (("ana.silva", "support"), ("bruno.costa", "billing")):
            await self.register_agent(key, key.title(), frozenset({team}), capacity, "admin")
            await self.create_team(team, team.title(), "admin", frozenset({team}))
            await self.add_member(team, key, "admin")

    async def conversation(
        self, channel: Channel, team: str | None = "support", at: datetime | None = None
    ) -> UUID:
        """Ana Pereira wrote on `channel` at `at` (now by default); her conversation is with
        `team`."""
        customer = await self.upsert(
            (claim("email", "ana.pereira@example.org"), claim("phone", "+351912345678")),
            {"first_name": "Ana"},
            {},
        )
        # WhatsApp carries service messages to those who opted in; writing first is not enough.
        opted_in = ConsentRecord(Channel.WHATSAPP, Purpose.SERVICE, True, "wrote to us")
        await self.change_consent(customer.customer_id, [opted_in])
        now = self.clock.now()
        async with self.uows() as uow:
            conversations = uow.repository(Conversation)
            conversation = Conversation.start(customer.customer_id, "customer", now)
            found = (await conversations.get([conversation.id])).get(conversation.id)
            conversation = found or conversation
            conversation.receive(self.ids.new_id(), channel, "Where is my refund?", at or now, now)
            # as inbound messages do: the customer's service window on the channel opens
            who = (await uow.repository(Customer).get([customer.customer_id]))[customer.customer_id]
            who.note_inbound(channel, at or now, now)
            uow.repository(Customer).add(who)
            if team is not None and conversation.team != team:
                decision = RoutingDecision(
                    version=1,
                    team=team,
                    agent=None,
                    priority=Priority.NORMAL,
                    escalated=False,
                    skills=frozenset(),
                    rule=None,
                    reasons=(),
                )
                conversation.apply_routing(decision, "router", now)
            conversations.add(conversation)
        return conversation.id

    async def thread(self, conversation_id: UUID) -> Conversation:
        async with self.uows() as uow:
            return (await uow.repository(Conversation).get([conversation_id]))[conversation_id]
