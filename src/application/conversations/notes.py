"""Internal notes on a conversation: agents of its team see them, the customer never does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import uuid5

from application.conversations.actors import change_conversation
from application.messages.request_message import IdempotencyKeyReused
from domain.shared.errors import InvalidValue

if TYPE_CHECKING:
    from uuid import UUID

    from application.conversations.actors import Actor
    from domain.conversation.aggregate import Conversation, Note
    from ports.clock import Clock
    from ports.ids import IdGenerator
    from ports.unit_of_work import UnitsOfWork

__all__ = ["AddNote", "NoteAdded"]

MAX_NOTE = 20_000
"""Characters in one note."""


@dataclass(frozen=True, slots=True)
class NoteAdded:
    note: Note
    repeated: bool  # the same idempotency key added it before: nothing new was recorded


class AddNote:
    """A note by an agent of the conversation's team. With an idempotency key the note's id is
    the key's, so a retry finds the note it added and adds no second one; the key with another
    note (another text, or another agent's) is refused (`IdempotencyKeyReused`)."""

    def __init__(self, uows: UnitsOfWork, clock: Clock, ids: IdGenerator) -> None:
        self.uows = uows
        self.clock = clock
        self.ids = ids

    async def __call__(
        self, conversation_id: UUID, actor: Actor, text: str, idempotency_key: str | None = None
    ) -> NoteAdded:
        if not text.strip():
            raise InvalidValue("text", "a note says something")
        if len(text) > MAX_NOTE:
            raise InvalidValue("text", f"longer than {MAX_NOTE} characters")
        note_id = (
            self.ids.new_id()
            if idempotency_key is None
            else uuid5(conversation_id, f"note:{idempotency_key}")
        )

        def add(conversation: Conversation) -> NoteAdded:
            acting = actor.acting_on(conversation)
            for earlier in conversation.notes:
                if earlier.note_id != note_id:
                    continue
                if (earlier.text, earlier.author) != (text, acting.key):
                    raise IdempotencyKeyReused(
                        "this idempotency key was used for a different request"
                    )
                return NoteAdded(earlier, repeated=True)
            return NoteAdded(
                conversation.add_note(note_id, acting, text, self.clock.now()), repeated=False
            )

        return await change_conversation(self.uows, conversation_id, add)
