"""The answers kept for writes made with an idempotency key, in memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ports.write_answers import KeptAnswer

__all__ = ["InMemoryWriteAnswers"]


class InMemoryWriteAnswers:
    """WriteAnswers in a dict: the first answer kept under a key stands."""

    def __init__(self) -> None:
        self.kept: dict[tuple[str, str], KeptAnswer] = {}

    async def earlier(self, scope: str, key: str) -> KeptAnswer | None:
        return self.kept.get((scope, key))

    async def keep(self, scope: str, key: str, answer: KeptAnswer) -> KeptAnswer:
        return self.kept.setdefault((scope, key), answer)
