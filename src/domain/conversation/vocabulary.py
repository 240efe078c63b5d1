"""The words conversations share: channel kinds, priorities, sentiments, presence.

A conversation is about a customer, never about a channel; the one thing about a channel that
routing and SLAs may read is its kind (`kind_of`), a channel policy: how many of them an agent
can hold at once, and how soon a customer expects an answer on it.
"""

from __future__ import annotations

from enum import StrEnum

from domain.policy.vocabulary import Channel

__all__ = [
    "CHANNEL_KINDS",
    "ChannelKind",
    "Presence",
    "Priority",
    "Sentiment",
    "highest",
    "kind_of",
]


class ChannelKind(StrEnum):
    """How a channel is worked: live chats in parallel, emails in a longer stack, calls one by one."""

    CHAT = "chat"
    EMAIL = "email"
    VOICE = "voice"


CHANNEL_KINDS: dict[Channel, ChannelKind] = {
    Channel.CHAT: ChannelKind.CHAT,
    Channel.WHATSAPP: ChannelKind.CHAT,
    Channel.SMS: ChannelKind.CHAT,
    Channel.PUSH: ChannelKind.CHAT,
    Channel.EMAIL: ChannelKind.EMAIL,
    Channel.VOICE: ChannelKind.VOICE,
}
"""The channel policy routing and SLAs read: each channel's kind. A new channel is one line."""


def kind_of(channel: Channel) -> ChannelKind:
    """The kind of a channel, for capacity and SLA targets."""
    return CHANNEL_KINDS[channel]


class Priority(StrEnum):
    """How soon a conversation must be worked; queues take the highest first."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        """0 for low up to 3 for urgent."""
        return _RANKS[self]


_RANKS = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}


def highest(*priorities: Priority) -> Priority:
    """The most urgent of the priorities given."""
    return max(priorities, key=lambda p: p.rank)


class Sentiment(StrEnum):
    """How the customer sounds, as the classifier heard it."""

    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class Presence(StrEnum):
    """Whether an agent takes new conversations: only an available one does."""

    AVAILABLE = "available"
    AWAY = "away"
    OFFLINE = "offline"
