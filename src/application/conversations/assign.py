"""Gives a conversation to an agent of its team, with the reason: an `Assigned` event.

Two agents racing for one conversation: one commits, the other's commit loses the stream's
version, is retried, and finds it held (`AlreadyAssigned`). An agent with no free capacity
for the conversation's channel kind is refused (`AgentAtCapacity`): read first, and checked
again by the commit itself, which fails whole if it would put the agent over capacity.

With an idempotency key, a retry of the same request answers what it did; the same key for
another request is refused (`IdempotencyKeyReused`). Keys share the unit of work's index with
send requests, under a `conversations/` prefix: no team key (which prefixes a send's key) and no
campaign's (`campaign:`) holds a `/`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import NAMESPACE_URL, uuid5

from application.conflicts import retry_on_conflict
from application.messages.request_message import IdempotencyKeyReused
from domain.conversation.aggregate import ActingAgent, Conversation
from domain.shared.errors import DomainError, InvalidValue, NotFound
from ports.conversation_roster import AgentOverCapacity
from ports.unit_of_work import EarlierRequest

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from uuid import UUID

    from application.conversations.actors import Actor
    from domain.conversation.routing import Candidate
    from ports.clock import Clock
    from ports.conversation_roster import Roster
    from ports.unit_of_work import Repository, UnitOfWork, UnitsOfWork

__all__ = [
    "AgentAtCapacity",
    "AssignConversation",
    "Assignment",
    "NotOnRoster",
    "acting",
    "check_member",
    "check_room",
    "commit_assignment",
    "conversation_to_change",
    "earlier_request",
    "remember_request",
    "request_fingerprint",
]


class NotOnRoster(NotFound):
    """An agent or a team a command names that nobody registered: a 404 naming the request's
    `field` (`agent`, `team`) that names it."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field


class AgentAtCapacity(DomainError):
    """The agent holds as many conversations of the kind as their capacity allows."""

    def __init__(self, agent: str, detail: str) -> None:
        super().__init__(detail)
        self.agent = agent


@dataclass(frozen=True, slots=True)
class Assignment:
    """Who holds the conversation after the command, and whether the command changed it."""

    conversation_id: UUID
    team: str | None
    agent: str | None
    changed: bool


async def acting(roster: Roster, agent: str) -> ActingAgent:
    """The agent with the teams they are on; `NotOnRoster` for an agent nobody registered."""
    if not await roster.candidates([agent]):
        raise NotOnRoster("agent", f"no agent {agent!r}")
    teams = frozenset(team.key for team in await roster.teams() if agent in team.members)
    return ActingAgent(agent, teams)


def check_member(agent: ActingAgent, team: str) -> None:
    """The agent a conversation goes to is on its team; else the request names the wrong one."""
    if team not in agent.teams:
        raise InvalidValue("agent", f"agent {agent.key!r} is not on team {team!r}")


def check_room(found: list[Candidate], conversation: Conversation) -> None:
    """Refuses an agent (`found`: them with their load, or nobody) with no free capacity for
    an open conversation's kind; the commit checks it again."""
    kind = conversation.channel_kind
    if kind is None or not conversation.is_open:
        return
    if not found or found[0].free(kind) < 1:
        agent = found[0].key if found else "nobody"
        raise AgentAtCapacity(agent, f"agent {agent!r} has no free {kind} capacity")


def request_fingerprint(*parts: object) -> bytes:
    """What a request asked, to tell a retry from another request under the same key."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()


async def earlier_request(
    uow: UnitOfWork, key: str | None, fingerprint: bytes
) -> EarlierRequest | None:
    """What a request with this key did already; refused if it asked something else."""
    if key is None:
        return None
    earlier = await uow.requests.earlier(f"conversations/{key}")
    if earlier is not None and earlier.fingerprint not in (None, fingerprint):
        raise IdempotencyKeyReused("this idempotency key was used for a different request")
    return earlier


def remember_request(
    uow: UnitOfWork, key: str | None, conversation: Conversation, fingerprint: bytes
) -> None:
    """Keeps the key with the change it made, in the change's commit."""
    if key is None:
        return
    change = uuid5(NAMESPACE_URL, f"chorus:conversation:{conversation.id}:{conversation.version}")
    uow.requests.add(
        f"conversations/{key}",
        EarlierRequest(conversation.id, conversation.customer_id, change, fingerprint),
    )


async def conversation_to_change(
    uow: UnitOfWork, conversation_id: UUID, key: str | None, fingerprint: bytes
) -> tuple[Repository[Conversation], Conversation, Assignment | None]:
    """The conversation's repository, the conversation, and the answer of an earlier request
    under `key` (None: this request is new)."""
    conversations = uow.repository(Conversation)
    conversation = (await conversations.get([conversation_id])).get(conversation_id)
    if conversation is None:
        raise NotFound(f"no conversation {conversation_id}")
    if await earlier_request(uow, key, fingerprint) is not None:
        done = Assignment(conversation.id, conversation.team, conversation.agent, changed=False)
        return conversations, conversation, done
    return conversations, conversation, None


async def commit_assignment(attempt: Callable[[], Awaitable[Assignment]], agent: str) -> Assignment:
    """Runs `attempt` until its commit holds; a commit that would put `agent` over capacity is
    `AgentAtCapacity`."""
    try:
        return await retry_on_conflict(attempt)
    except AgentOverCapacity as error:
        raise AgentAtCapacity(agent, str(error)) from error


class AssignConversation:
    """Assigns a conversation to an agent of its team (or of `team`, for one not routed yet)."""

    def __init__(self, uows: UnitsOfWork, roster: Roster, clock: Clock) -> None:
        self.uows = uows
        self.roster = roster
        self.clock = clock

    async def __call__(
        self,
        conversation_id: UUID,
        agent: str,
        reason: str,
        actor: Actor,
        team: str | None = None,
        idempotency_key: str | None = None,
    ) -> Assignment:
        """Refused (`NotOnTeam`) for an acting agent off the conversation's team."""
        if not reason.strip():
            raise InvalidValue("reason", "an assignment says why")
        fingerprint = request_fingerprint("assign", conversation_id, agent, team, reason)

        async def attempt() -> Assignment:
            # The roster first: a unit of work holds a connection, and must not wait for another.
            who = await acting(self.roster, agent)
            found = await self.roster.candidates([agent])
            async with self.uows() as uow:
                conversations, conversation, done = await conversation_to_change(
                    uow, conversation_id, idempotency_key, fingerprint
                )
                if done is not None:
                    return done
                to_team = team or conversation.team
                if to_team is None:
                    raise InvalidValue("team", "the conversation is in no team yet: name one")
                actor.acting_on(conversation)
                if conversation.team is not None and to_team != conversation.team:
                    raise InvalidValue(
                        "team", f"the conversation is with team {conversation.team}: transfer it"
                    )
                check_member(who, to_team)
                if conversation.agent != agent:
                    check_room(found, conversation)
                changed = conversation.assign(who, to_team, reason, actor.by, self.clock.now())
                if changed:
                    remember_request(uow, idempotency_key, conversation, fingerprint)
                    conversations.add(conversation)
                return Assignment(conversation.id, to_team, agent, changed)

        return await commit_assignment(attempt, agent)
