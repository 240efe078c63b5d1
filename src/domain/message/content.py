"""What a message says, per channel: the fields each channel's providers take."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Content"]


@dataclass(frozen=True, slots=True)
class Content:
    """Message content; before rendering, every text field may hold template expressions."""

    subject: str | None = None  # email
    body: str | None = None  # email text part, SMS, WhatsApp session text, push body
    html: str | None = None  # email
    title: str | None = None  # push
    whatsapp_template: str | None = None  # an approved WhatsApp template's name
    whatsapp_language: str | None = None
    whatsapp_parameters: tuple[str, ...] = ()  # each may hold template expressions
