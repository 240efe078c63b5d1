"""Channels, purposes and the identities that reach a customer on each channel."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CHANNEL_IDENTITIES", "Channel", "Purpose"]


class Channel(StrEnum):
    """Where a message goes."""

    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    PUSH = "push"
    VOICE = "voice"
    CHAT = "chat"


class Purpose(StrEnum):
    """Why a message goes: consent and caps depend on it."""

    TRANSACTIONAL = "transactional"
    SERVICE = "service"
    MARKETING = "marketing"


CHANNEL_IDENTITIES: dict[Channel, tuple[str, ...]] = {
    Channel.EMAIL: ("email",),
    Channel.SMS: ("phone",),
    Channel.WHATSAPP: ("whatsapp_id", "phone"),
    Channel.PUSH: ("device_token",),
    Channel.VOICE: ("phone",),
    Channel.CHAT: ("account_id",),
}
"""Which identity types can carry a message on a channel, best first."""
