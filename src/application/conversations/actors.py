"""Who acts on a conversation, and loading, changing and saving one conversation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from application.conflicts import retry_on_conflict
from domain.conversation.aggregate import ActingAgent, Conversation, NotOnTeam
from domain.shared.errors import NotFound

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from ports.unit_of_work import Repository, UnitsOfWork

__all__ = ["Actor", "change_conversation", "load_conversation"]

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
