"""Who acts on a conversation, and loading, changing and saving one conversation.

`acting_agent_key` and `actor_of` are the one rule for who a key acts as, whichever edge it came
by: HTTP (`entrypoints.http.principal`) and NATS (`entrypoints.workers.conversation_responder`)
both call them, so a key acts on a conversation the same way over either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from application.conflicts import retry_on_conflict
from domain.conversation.aggregate import ActingAgent, Conversation, NotOnTeam
from domain.shared.errors import NotFound
from ports.api_keys import Role

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from ports.api_keys import ApiKey
    from ports.unit_of_work import Repository, UnitsOfWork

__all__ = [
    "SUPERVISORS",
    "Actor",
    "MayNotAct",
    "acting_agent_key",
    "actor_of",
    "change_conversation",
    "load_conversation",
]

SUPERVISORS = frozenset({Role.ADMIN, Role.SERVICE})
"""Roles that act on any team's conversations (a key limited to teams, on those teams')."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an agent, on their teams' conversations only; or, with `agent` None, a
    supervising key (admin or service) that may act on any team's conversation. `by` is who the
    events record."""

    by: str
    agent: ActingAgent | None = None

    def acting_on(self, conversation: Conversation) -> ActingAgent:
        """The agent acting on this conversation, refused (`NotOnTeam`) off its team."""
        if self.agent is None:
            team = conversation.team
            return ActingAgent(self.by, frozenset() if team is None else frozenset({team}))
        if conversation.team is not None and conversation.team not in self.agent.teams:
            raise NotOnTeam(self.agent.key, conversation.team)
        return self.agent


class MayNotAct(Exception):
    """A key that may not act on conversations, or not as the agent a request names: a 403 at
    the edge. `field` is the request's field that named another agent, when that is why."""

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


def acting_agent_key(key: ApiKey, named: str | None = None, field: str = "agent") -> str | None:
    """The agent whose key acts for `key` when a request names `named` as the acting agent
    (None: it names none; over HTTP it never does). An agent key acts as its own agent only:
    naming another is refused (`MayNotAct` naming `field`), naming the same or none is its
    agent. An admin or service key acts as the agent named, if any. Any other key: None (and
    `actor_of` says why it may not act)."""
    if key.role is Role.AGENT:
        if named is not None and key.agent is not None and named != key.agent:
            raise MayNotAct(
                f"this agent key acts as {key.agent!r} only, not as {named!r}: leave `{field}` "
                f"out or name {key.agent!r}",
                field,
            )
        return key.agent
    if key.role in SUPERVISORS:
        return named
    return None


def actor_of(key: ApiKey, by: str, agent: ActingAgent | None) -> Actor:
    """Who acts on a conversation for `key`, recorded as `by` when no agent acts; `agent` is the
    one `acting_agent_key` named, with their teams. An agent acts on their teams' conversations,
    within the key's teams when it has any; an admin or service key naming no agent acts as
    itself on any team's conversation, or as an agent of its teams when it is limited to teams,
    so that the desk refuses (`not-on-team`) any other team's conversation as it refuses an
    agent's. `MayNotAct` for a key that may not act on any conversation."""
    teams = key.teams
    if agent is not None and (key.role is Role.AGENT or key.role in SUPERVISORS):
        scoped = agent.teams & teams if teams else agent.teams
        return Actor(agent.key, ActingAgent(agent.key, scoped))
    if key.role in SUPERVISORS:
        return Actor(by, ActingAgent(by, teams) if teams else None)
    if key.role is Role.AGENT:
        raise MayNotAct(
            "this agent key names no agent: create one with `chorus keys create --role "
            "agent --agent <agent key>`"
        )
    raise MayNotAct(
        f"role '{key.role.value}' may not act on conversations; needs agent, admin or service"
    )


async def load_conversation(conversations: Repository[Conversation], id: UUID) -> Conversation:
    """The conversation under `id`; NotFound if there is none."""
    found = (await conversations.get([id])).get(id)
    if found is None:
        raise NotFound(f"no conversation {id}")
    return found


async def change_conversation(
    uows: UnitsOfWork, id: UUID, change: Callable[[Conversation], T]
) -> T:
    """Loads the conversation, calls `change` and saves what it recorded, if anything."""

    async def attempt() -> T:
        async with uows() as uow:
            conversations = uow.repository(Conversation)
            conversation = await load_conversation(conversations, id)
            answer = change(conversation)
            if conversation.pending_events:
                conversations.add(conversation)
            return answer

    return await retry_on_conflict(attempt)
