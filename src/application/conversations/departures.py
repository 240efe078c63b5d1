"""An agent taken off a team leaves the team's conversations behind: nothing stays stuck with
someone who may no longer see it.

Each open conversation of the team the agent holds is released (`Conversation.release`): an
`Unassigned` event with the reason ("eve left team support"), in its own commit, which takes it
off the agent's load at once and puts it back in the team's queue. The queue's next drain
(`DrainQueues`, which the threads process runs after a departure) offers it in the queue's order
to the member with the most free capacity and the skills it waits for; the agent's freed places
go to their other teams' queues in the same drain.

Exactly once, however often a departure is read (a page retried, the log read again after a
crash): a conversation no longer held by the agent in that team is left as it is, and an agent
who is on the team again when the departure is read (put back since) keeps what they hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from application.conversations.route_conversation import ROUTER
from domain.conversation.agents import team_id
from domain.conversation.aggregate import Conversation

if TYPE_CHECKING:
    from collections.abc import Iterable
    from uuid import UUID

    from ports.clock import Clock
    from ports.conversation_roster import Roster
    from ports.unit_of_work import UnitsOfWork

__all__ = ["Departure", "ReleaseDeparted"]


@dataclass(frozen=True, slots=True)
class Departure:
    """An agent taken off a team: the team's id (as its `MemberRemoved` event names it) and
    the agent's key."""

    team_id: UUID
    agent: str


class ReleaseDeparted:
    """Releases the conversations that agents who left a team still hold there."""

    def __init__(self, uows: UnitsOfWork, roster: Roster, clock: Clock) -> None:
        self.uows = uows
        self.roster = roster
        self.clock = clock

    async def __call__(self, departures: Iterable[Departure]) -> list[UUID]:
        """The conversations released, in the order they were."""
        wanted = list(dict.fromkeys(departures))
        if not wanted:
            return []
        # The roster first: a unit of work holds a connection, and must not wait for another.
        teams = {team_id(view.key): view for view in await self.roster.teams()}
        released: list[UUID] = []
        for departure in wanted:
            team = teams.get(departure.team_id)
            if team is None or departure.agent in team.members:
                continue  # put back on the team since: they keep what they hold
            for conversation_id in await self.roster.held(departure.agent, team.key):
                if await self._release(conversation_id, departure.agent, team.key):
                    released.append(conversation_id)
        return released

    async def _release(self, conversation_id: UUID, agent: str, team: str) -> bool:
        async def attempt() -> bool:
            async with self.uows() as uow:
                conversations = uow.repository(Conversation)
                found = (await conversations.get([conversation_id])).get(conversation_id)
                if found is None or not found.release(agent, team, ROUTER, self.clock.now()):
                    return False
                conversations.add(found)
                return True

        return await retry_on_conflict(attempt)
