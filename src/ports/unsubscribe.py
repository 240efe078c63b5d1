"""Unsubscribe links: tokens that name a customer, a channel and a purpose, and cannot be forged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from uuid import UUID

    from domain.policy.vocabulary import Channel, Purpose

__all__ = ["UnsubscribeTarget", "UnsubscribeTokens"]


@dataclass(frozen=True, slots=True)
class UnsubscribeTarget:
    customer_id: UUID
    channel: Channel
    purpose: Purpose | None  # None: the whole channel


class UnsubscribeTokens(Protocol):
    """Issues and checks the tokens in List-Unsubscribe links."""

    def issue(self, target: UnsubscribeTarget) -> str: ...

    def read(self, token: str) -> UnsubscribeTarget | None:
        """The target, or None when the token was altered or is not ours."""
        ...
