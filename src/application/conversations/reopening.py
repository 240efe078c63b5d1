"""Whether a resolved conversation's agent has room to hold it open again, when a reply
reopens it (`Conversation.reply`, `Conversation.record_reply_sent`).

Read from the roster's loads before the commit; the holds' trigger checks it again as the
commit writes the conversation's holder, so one that loses a race for the agent's last place
fails with `AgentOverCapacity`, and is recorded again with no room.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.conversation.aggregate import Conversation, ConversationStatus

if TYPE_CHECKING:
    from ports.conversation_roster import Roster

__all__ = ["room_to_reopen"]


async def room_to_reopen(roster: Roster | None, conversation: Conversation) -> bool:
    """Whether the agent holding the conversation may hold it open again: True for one that is
    open, held by nobody, or when no roster is kept (nothing to check against); False for an
    agent taken off its team since it was resolved."""
    if roster is None or conversation.status is not ConversationStatus.RESOLVED:
        return True
    agent, kind = conversation.agent, conversation.channel_kind
    if agent is None or kind is None:
        return True
    team = next((t for t in await roster.teams() if t.key == conversation.team), None)
    if team is not None and agent not in team.members:
        return False
    return any(c.key == agent and c.free(kind) > 0 for c in await roster.candidates([agent]))
