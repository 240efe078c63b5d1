"""Dishka providers of the agent desk: agents, teams, the routing document, and the agent's
commands on a conversation. Dishka reads the annotations at run time: nothing here is imported
only for type checking."""

from __future__ import annotations

import asyncpg
from dishka import Provider, Scope, provide

from adapters.postgres.snooze_timers import PostgresSnoozeTimers
from adapters.postgres.staff import PostgresStaffDirectory
from application.access.create_key import CreateKey
from application.conversations.agents import (
    AgentQueries,
    ChangeAgentCapacity,
    ChangeAgentPresence,
    ChangeAgentSkills,
    RegisterAgent,
)
from application.conversations.assign import AssignConversation
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
from application.conversations.transfer import TransferConversation
from application.messages.request_message import RequestMessage
from application.queries.decisions import DecisionQueries
from entrypoints.conversation_commands import ConversationDesk
from ports.api_keys import ApiKeyStore
from ports.campaigns import JourneyReferences
from ports.clock import Clock
from ports.conversation_roster import Roster
from ports.ids import IdGenerator
from ports.providers import ProviderDirectory
from ports.rules import RuleSets
from ports.snooze_timers import SnoozeTimers
from ports.staff import StaffDirectory
from ports.templates import PublishedTemplates
from ports.unit_of_work import UnitsOfWork

__all__ = ["DeskProvider"]


class DeskProvider(Provider):
    """Agents, teams, routing as data, and the commands agents give on conversations."""

    scope = Scope.APP

    @provide
    def staff_directory(self, pool: asyncpg.Pool) -> StaffDirectory:
        return PostgresStaffDirectory(pool)

    @provide
    def create_key(self, keys: ApiKeyStore, staff: StaffDirectory) -> CreateKey:
        return CreateKey(keys, staff)

    @provide
    def register_agent(self, uows: UnitsOfWork, clock: Clock) -> RegisterAgent:
        return RegisterAgent(uows, clock)

    @provide
    def change_agent_skills(self, uows: UnitsOfWork, clock: Clock) -> ChangeAgentSkills:
        return ChangeAgentSkills(uows, clock)

    @provide
    def change_agent_capacity(self, uows: UnitsOfWork, clock: Clock) -> ChangeAgentCapacity:
        return ChangeAgentCapacity(uows, clock)

    @provide
    def change_agent_presence(self, uows: UnitsOfWork, clock: Clock) -> ChangeAgentPresence:
        return ChangeAgentPresence(uows, clock)

    @provide
    def agent_queries(
        self, uows: UnitsOfWork, staff: StaffDirectory, roster: Roster
    ) -> AgentQueries:
        return AgentQueries(uows, staff, roster)

    @provide
    def create_team(self, uows: UnitsOfWork, clock: Clock) -> CreateTeam:
        return CreateTeam(uows, clock)

    @provide
    def add_team_member(self, uows: UnitsOfWork, clock: Clock) -> AddTeamMember:
        return AddTeamMember(uows, clock)

    @provide
    def remove_team_member(self, uows: UnitsOfWork, clock: Clock) -> RemoveTeamMember:
        return RemoveTeamMember(uows, clock)

    @provide
    def change_team_skills(self, uows: UnitsOfWork, clock: Clock) -> ChangeTeamSkills:
        return ChangeTeamSkills(uows, clock)

    @provide
    def set_working_hours(self, uows: UnitsOfWork, clock: Clock) -> SetWorkingHours:
        return SetWorkingHours(uows, clock)

    @provide
    def team_queries(self, uows: UnitsOfWork, staff: StaffDirectory, clock: Clock) -> TeamQueries:
        return TeamQueries(uows, staff, clock)

    @provide
    def routing_queries(self, uows: UnitsOfWork) -> RoutingQueries:
        return RoutingQueries(uows)

    @provide
    def snooze_timers(self, pool: asyncpg.Pool) -> SnoozeTimers:
        return PostgresSnoozeTimers(pool)

    @provide
    def snooze(self, uows: UnitsOfWork, clock: Clock, timers: SnoozeTimers) -> SnoozeConversation:
        return SnoozeConversation(uows, clock, timers)

    @provide
    def wake_snoozed(
        self, uows: UnitsOfWork, clock: Clock, timers: SnoozeTimers
    ) -> WakeSnoozedConversations:
        return WakeSnoozedConversations(uows, clock, timers)

    @provide
    def resolve(self, uows: UnitsOfWork, clock: Clock) -> ResolveConversation:
        return ResolveConversation(uows, clock)

    @provide
    def reopen(self, uows: UnitsOfWork, clock: Clock) -> ReopenConversation:
        return ReopenConversation(uows, clock)

    @provide
    def publish_routing(
        self,
        uows: UnitsOfWork,
        staff: StaffDirectory,
        references: JourneyReferences,
        clock: Clock,
    ) -> PublishRouting:
        return PublishRouting(uows, staff, references, clock)

    @provide
    def add_note(self, uows: UnitsOfWork, clock: Clock, ids: IdGenerator) -> AddNote:
        return AddNote(uows, clock, ids)

    @provide
    def reply(
        self,
        uows: UnitsOfWork,
        rule_sets: RuleSets,
        clock: Clock,
        request_message: RequestMessage,
        templates: PublishedTemplates,
        roster: Roster,
        providers: ProviderDirectory,
    ) -> ReplyToConversation:
        return ReplyToConversation(
            uows, rule_sets, clock, request_message, templates, roster, providers
        )

    @provide
    def change_tags(self, uows: UnitsOfWork, clock: Clock) -> ChangeTags:
        return ChangeTags(uows, clock)

    @provide
    def change_priority(self, uows: UnitsOfWork, clock: Clock) -> ChangePriority:
        return ChangePriority(uows, clock)

    @provide
    def desk(
        self,
        reply: ReplyToConversation,
        add_note: AddNote,
        snooze: SnoozeConversation,
        resolve: ResolveConversation,
        reopen: ReopenConversation,
        decisions: DecisionQueries,
        assign: AssignConversation,
        transfer: TransferConversation,
        tags: ChangeTags,
        priority: ChangePriority,
    ) -> ConversationDesk:
        return ConversationDesk(
            reply, add_note, snooze, resolve, reopen, decisions, assign, transfer, tags, priority
        )
