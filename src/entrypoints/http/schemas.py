"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from application.messages.compose import MessageContent
from application.queries.customers import CustomerView
from domain.assistant.intents import check_intents
from domain.message.content import Content
from domain.policy.decision import SendRequest
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.errors import InvalidValue
from domain.signals.document import IdentityIn, ProfileIn
from ports.delivery import Fallback

__all__ = [
    "ClockIn",
    "ClockOut",
    "ConsentChangeIn",
    "ConsentsIn",
    "ConsentsOut",
    "ContentIn",
    "CustomerUpsertIn",
    "CustomerUpsertOut",
    "FallbackIn",
    "IngestOut",
    "MessageIn",
    "SignalResultOut",
    "SuppressionIn",
    "SuppressionOut",
    "TimelineItemOut",
    "TimelineOut",
]


class CustomerUpsertIn(msgspec.Struct, forbid_unknown_fields=True):
    """Finds the customer by any of its identities (creating it if none is known) and updates it."""

    identities: Annotated[list[IdentityIn], msgspec.Meta(min_length=1, max_length=20)]
    profile: ProfileIn | None = None
    attributes: dict[str, str | int | float | bool | None] = msgspec.field(default_factory=dict)


class CustomerUpsertOut(msgspec.Struct):
    created: bool
    merged: list[UUID]
    customer: CustomerView


class SignalResultOut(msgspec.Struct, omit_defaults=True):
    """`accepted`: committed, to be attributed; `recorded`: on its customer's timeline;
    `refused`: committed, but a rule of its customer refused it (`reason`)."""

    index: int
    id: str
    status: Literal["accepted", "recorded", "refused", "duplicate"]
    signal_id: UUID | None = None
    customer_id: UUID | None = None
    reason: str | None = None


class IngestOut(msgspec.Struct, omit_defaults=True):
    accepted: int
    duplicates: int
    results: list[SignalResultOut]
    recorded: int | None = None


class TimelineItemOut(msgspec.Struct):
    position: int
    type: str
    stream_id: UUID
    version: int
    recorded_at: datetime
    data: dict[str, Any]


class TimelineOut(msgspec.Struct):
    customer_id: UUID
    items: list[TimelineItemOut]
    next_cursor: str | None


class ClockIn(msgspec.Struct, forbid_unknown_fields=True):
    """Give `set` to jump to a time, or `advance_seconds` to move forward."""

    set: datetime | None = None
    advance_seconds: Annotated[float, msgspec.Meta(ge=0)] | None = None


class ClockOut(msgspec.Struct):
    now: datetime


class ConsentChangeIn(msgspec.Struct, forbid_unknown_fields=True):
    """`purpose` null (or left out) is the whole channel: an opt-out such as STOP, or START."""

    channel: Channel
    granted: bool
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    purpose: Purpose | None = None


class ConsentsIn(msgspec.Struct, forbid_unknown_fields=True):
    changes: Annotated[list[ConsentChangeIn], msgspec.Meta(min_length=1, max_length=50)]


class ConsentsOut(msgspec.Struct):
    changed: int
    customer: CustomerView


_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]


class ContentIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Inline content; every text may use template expressions like `{{ customer.first_name }}`."""

    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=998)] | None = None
    body: _Text | None = None
    html: _Text | None = None
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    whatsapp_template: Annotated[str, msgspec.Meta(min_length=1, max_length=512)] | None = None
    whatsapp_language: Annotated[str, msgspec.Meta(min_length=2, max_length=15)] | None = None
    whatsapp_parameters: Annotated[list[str], msgspec.Meta(max_length=20)] = msgspec.field(
        default_factory=list
    )

    def content(self) -> Content:
        return Content(
            subject=self.subject,
            body=self.body,
            html=self.html,
            title=self.title,
            whatsapp_template=self.whatsapp_template,
            whatsapp_language=self.whatsapp_language,
            whatsapp_parameters=tuple(self.whatsapp_parameters),
        )


class FallbackIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """If the message is not delivered within `after_seconds` (or fails), request it on these
    channels; the rules decide the fallback like any request."""

    channels: Annotated[list[Channel], msgspec.Meta(min_length=1, max_length=5)]
    after_seconds: Annotated[int, msgspec.Meta(ge=1, le=7 * 24 * 3600)] = 600


class MessageIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A send request: who, why, on which channels in order of preference, and what it says.

    With `template` or `content`, an allowed message is sent; without either, the decision is
    advice and the caller sends the message itself.
    """

    customer_id: UUID | None = None
    identity: str | None = None  # TYPE:VALUE, instead of customer_id
    team: Annotated[
        str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    ]
    purpose: Purpose
    channels: Annotated[list[Channel], msgspec.Meta(min_length=1, max_length=6)]
    priority: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    dedup_key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    expires_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    approved_template: bool = False
    sensitive: bool = False
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    template: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")] | None = None
    template_version: Annotated[int, msgspec.Meta(ge=1)] | None = None
    locale: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] | None = (
        None
    )
    variables: dict[str, Any] = msgspec.field(default_factory=dict)
    content: ContentIn | None = None
    campaign: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    fallback: FallbackIn | None = None
    # What the message answers and how many it goes to, for the rules' approvals.
    intent: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.?-]{0,63}$")] | None = (
        None
    )
    intent_confidence: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    audience: Annotated[int, msgspec.Meta(ge=1)] | None = None

    def __post_init__(self) -> None:
        if self.template is not None and self.content is not None:
            raise ValueError("give `template` or `content`, not both")
        if self.fallback is not None and self.template is None and self.content is None:
            raise ValueError("a fallback needs `template` or `content` to send")

    def message_content(self, correlation_id: str | None) -> MessageContent | None:
        """What the message says, or None when the caller only asks for a decision."""
        if self.template is None and self.content is None:
            return None
        return MessageContent(
            template=self.template,
            version=self.template_version,
            locale=self.locale,
            variables=self.variables,
            inline=None if self.content is None else self.content.content(),
            campaign=self.campaign,
            correlation_id=correlation_id,
            fallback=None
            if self.fallback is None
            else Fallback(
                tuple(dict.fromkeys(self.fallback.channels)), self.fallback.after_seconds
            ),
        )

    def send_request(self) -> SendRequest:
        """The domain's request; a channel named twice counts once, an intent by its key (one a
        classifier knows, else InvalidValue naming `intent`)."""
        intent = None
        if self.intent is not None:
            try:
                (intent,) = check_intents((self.intent,))
            except InvalidValue as unknown:
                raise InvalidValue("intent", unknown.reason) from None
        return SendRequest(
            team=self.team,
            purpose=self.purpose,
            channels=tuple(dict.fromkeys(self.channels)),
            priority=self.priority,
            dedup_key=self.dedup_key,
            expires_at=self.expires_at,
            approved_template=self.approved_template,
            sensitive=self.sensitive,
            intent=intent,
            intent_confidence=self.intent_confidence,
            audience=self.audience,
        )

    def scoped_key(self, key: str | None) -> str | None:
        """Idempotency keys are per team: two teams may use the same key for different sends."""
        key = key or self.idempotency_key
        return f"{self.team}:{key}" if key else None


class SuppressionIn(msgspec.Struct, forbid_unknown_fields=True):
    """`channel` null is every channel; `active: false` takes the suppression off."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    channel: Channel | None = None
    active: bool = True


class SuppressionOut(msgspec.Struct):
    changed: bool
    customer: CustomerView
