"""Writes a client may retry, answered once per idempotency key.

The first answer to a write made with a key is kept with what was asked (a fingerprint of the
method, path and body); the same key and body again is answered from it, without writing again,
and the same key with another request is refused (`IdempotencyKeyReused`, as for sends).

The answer is kept after the write commits, not in its transaction: the writes it guards
(campaign changes, API entries) are harmless to repeat by content, so a process that dies in
between leaves a retry to write again, which records nothing new and answers as they do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from application.messages.request_message import IdempotencyKeyReused
from ports.write_answers import KeptAnswer

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ports.write_answers import WriteAnswers

__all__ = ["Answered", "IdempotentWrites"]


@dataclass(frozen=True, slots=True)
class Answered:
    """A write's answer; `repeated` when it is the kept answer of an earlier request."""

    status_code: int
    body: bytes
    repeated: bool


class IdempotentWrites:
    """Runs a write once per (scope, key), and answers its retries as it was answered first."""

    def __init__(self, answers: WriteAnswers) -> None:
        self.answers = answers

    async def answer(
        self,
        scope: str,
        key: str | None,
        fingerprint: bytes,
        write: Callable[[], Awaitable[tuple[int, bytes]]],
    ) -> Answered:
        """The answer of `write`, run unless the key was answered already; a write that fails
        keeps nothing, so it may be retried."""
        if key is None:
            status_code, body = await write()
            return Answered(status_code, body, repeated=False)
        earlier = await self.answers.earlier(scope, key)
        if earlier is None:
            status_code, body = await write()
            fresh = KeptAnswer(fingerprint, status_code, body)
            earlier = await self.answers.keep(scope, key, fresh)
            if earlier is fresh:
                return Answered(status_code, body, repeated=False)
        if earlier.fingerprint != fingerprint:
            raise IdempotencyKeyReused("this idempotency key was used for a different request")
        return Answered(earlier.status_code, earlier.body, repeated=True)
