"""The first answer to each write a client made with an idempotency key, kept for its retries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["KeptAnswer", "WriteAnswers"]


@dataclass(frozen=True, slots=True)
class KeptAnswer:
    """A write's answer as first given: what it was asked (`fingerprint`), its status and body."""

    fingerprint: bytes
    status_code: int
    body: bytes


class WriteAnswers(Protocol):
    """Answers by the scope that made them (an API key) and their idempotency key."""

    async def earlier(self, scope: str, key: str) -> KeptAnswer | None:
        """The answer kept under the key, if any."""
        ...

    async def keep(self, scope: str, key: str, answer: KeptAnswer) -> KeptAnswer:
        """Keeps `answer` unless one is kept under the key already; the one that stands."""
        ...
