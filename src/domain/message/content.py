"""What a message says, per channel: the fields each channel's providers take."""

from __future__ import annotations

from dataclasses import dataclass

from domain.policy.vocabulary import Channel
from domain.shared.errors import InvalidValue

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

    def check_for(self, channel: Channel) -> None:
        """Refuses content the channel cannot send (a field it does not use is left out)."""
        if channel is Channel.EMAIL:
            if not self.subject:
                raise InvalidValue("content.subject", "an email needs a subject")
            if not self.body and not self.html:
                raise InvalidValue("content.body", "an email needs a body, an html part, or both")
        elif channel is Channel.WHATSAPP:
            if not self.body and not self.whatsapp_template:
                raise InvalidValue(
                    "content.body", "a WhatsApp message needs a body or a whatsapp_template"
                )
        elif not self.body:
            raise InvalidValue("content.body", f"a {channel.value} message needs a body")
