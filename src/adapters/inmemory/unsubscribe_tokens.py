"""Unsubscribe tokens kept in a table: readable in a test, and unknown ones refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ports.unsubscribe import UnsubscribeTarget

__all__ = ["InMemoryUnsubscribeTokens"]


class InMemoryUnsubscribeTokens:
    def __init__(self) -> None:
        self.issued: dict[str, UnsubscribeTarget] = {}

    def issue(self, target: UnsubscribeTarget) -> str:
        token = f"{target.customer_id.hex}.{target.channel.value}.{target.purpose or '*'}"
        self.issued[token] = target
        return token

    def read(self, token: str) -> UnsubscribeTarget | None:
        return self.issued.get(token)
