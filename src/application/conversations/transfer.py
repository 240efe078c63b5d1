"""Moves a conversation to another team, to its queue or to one of its agents, with the reason:
a `Transferred` event. The agent it leaves has one conversation less in the same commit; an
agent it goes to must have room, checked as for an assignment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from application.conversations.assign import (
    AgentAtCapacity,
    Assignment,
    acting,
    check_member,
    check_room,
    earlier_request,
    remember_request,
    request_fingerprint,
)
from domain.conversation.aggregate import Conversation
from domain.shared.errors import InvalidValue, NotFound
from ports.conversation_roster import AgentOverCapacity

if TYPE_CHECKING:
    from uuid import UUID

    from application.conversations.actors import Actor
    from ports.clock import Clock
    from ports.conversation_roster import Roster
    from ports.unit_of_work import UnitsOfWork

__all__ = ["TransferConversation"]


class TransferConversation:
    """Transfers a conversation to `team`, to `agent` of it, or to its queue (no agent)."""

    def __init__(self, uows: UnitsOfWork, roster: Roster, clock: Clock) -> None:
        self.uows = uows
        self.roster = roster
        self.clock = clock

    async def __call__(
        self,
        conversation_id: UUID,
        team: str,
        reason: str,
        actor: Actor,
        agent: str | None = None,
        idempotency_key: str | None = None,
    ) -> Assignment:
        """Refused (`NotOnTeam`) for an acting agent off the conversation's team."""
        if not reason.strip():
            raise InvalidValue("reason", "a transfer says why")
        fingerprint = request_fingerprint("transfer", conversation_id, team, agent, reason)

        async def attempt() -> Assignment:
            # The roster first: a unit of work holds a connection, and must not wait for another.
            teams = {known.key for known in await self.roster.teams()}
            who = None if agent is None else await acting(self.roster, agent)
            found = [] if who is None else await self.roster.candidates([who.key])
            async with self.uows() as uow:
                conversations = uow.repository(Conversation)
                conversation = (await conversations.get([conversation_id])).get(conversation_id)
                if conversation is None:
                    raise NotFound(f"no conversation {conversation_id}")
                if await earlier_request(uow, idempotency_key, fingerprint) is not None:
                    return Assignment(
                        conversation.id, conversation.team, conversation.agent, changed=False
                    )
                actor.acting_on(conversation)
                if team not in teams:
                    raise NotFound(f"no team {team!r}")
                if who is not None:
                    check_member(who, team)
                    check_room(found, conversation)
                conversation.transfer(team, who, reason, actor.by, self.clock.now())
                remember_request(uow, idempotency_key, conversation, fingerprint)
                conversations.add(conversation)
                return Assignment(conversation.id, team, agent, changed=True)

        try:
            return await retry_on_conflict(attempt)
        except AgentOverCapacity as error:
            raise AgentAtCapacity(agent or team, str(error)) from error
