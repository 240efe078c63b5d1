"""Moves a conversation to another team, to its queue or to one of its agents, with the reason:
a `Transferred` event. The agent it leaves has one conversation less in the same commit; an
agent it goes to must have room, checked as for an assignment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.conversations.assign import (
    Assignment,
    NotOnRoster,
    acting,
    check_member,
    check_room,
    commit_assignment,
    conversation_to_change,
    remember_request,
    request_fingerprint,
)
from domain.shared.errors import InvalidValue

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
                conversations, conversation, done = await conversation_to_change(
                    uow, conversation_id, idempotency_key, fingerprint
                )
                if done is not None:
                    return done
                actor.acting_on(conversation)
                if team not in teams:
                    raise NotOnRoster("team", f"no team {team!r}")
                if who is not None:
                    check_member(who, team)
                    check_room(found, conversation)
                conversation.transfer(team, who, reason, actor.by, self.clock.now())
                remember_request(uow, idempotency_key, conversation, fingerprint)
                conversations.add(conversation)
                return Assignment(conversation.id, team, agent, changed=True)

        return await commit_assignment(attempt, agent or team)
