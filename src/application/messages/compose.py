"""Renders what a send request asks to say, for each channel it may go on, before deciding."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from domain.message.aggregate import Message
from domain.policy.tone import shape
from domain.policy.vocabulary import Channel
from domain.shared.errors import DomainError
from ports.delivery import Delivery, FallbackPlan
from ports.templates import RenderAsk, RenderError, TemplateNotFound

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from uuid import UUID

    from domain.customer.aggregate import Customer
    from domain.message.content import Content
    from domain.policy.decision import Decision, SendRequest
    from domain.policy.rules import RuleSet
    from ports.delivery import Fallback
    from ports.templates import RenderedContent, Templates

__all__ = [
    "MessageContent",
    "approved_as_sent",
    "compose",
    "compose_all",
    "message_for",
    "render_context",
    "shaped_to_tone",
]


@dataclass(frozen=True, slots=True)
class MessageContent:
    """A stored template (with variables) or inline content; either is rendered per channel."""

    template: str | None = None
    version: int | None = None
    locale: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    inline: Content | None = None
    campaign: str | None = None
    correlation_id: str | None = None
    fallback: Fallback | None = None


def render_context(customer: Customer, variables: dict[str, Any]) -> dict[str, Any]:
    """What templates see: `customer` (profile and custom attributes) and `vars`."""
    profile: dict[str, Any] = {**customer.attributes, **customer.profile.as_dict()}
    profile["id"] = str(customer.id)
    return {"customer": profile, "vars": variables}


async def compose(
    templates: Templates | None,
    content: MessageContent,
    customer: Customer,
    channels: Sequence[Channel],
) -> Delivery:
    """Renders for every requested (and fallback) channel, so a missing variable fails the
    request now, whichever channel the rules pick."""
    context = render_context(customer, content.variables)
    locale = content.locale or customer.profile.locale
    rendered: dict[Channel, RenderedContent] = {}
    fallback = content.fallback.channels if content.fallback else ()
    for channel in dict.fromkeys((*channels, *fallback)):
        if content.template is not None:
            if templates is None:
                raise TemplateNotFound("templates are not available here")
            rendered[channel] = await templates.render(
                content.template, channel, locale, context, content.version
            )
        elif content.inline is not None:
            if templates is None:
                raise RenderError("inline content cannot be rendered here")
            content.inline.check_for(channel)
            rendered[channel] = await templates.render_inline(content.inline, context)
    return Delivery(rendered, content.campaign, content.correlation_id, content.fallback)


async def compose_all(
    templates: Templates | None,
    asked: Sequence[tuple[MessageContent, Customer, Sequence[Channel]]],
) -> list[Delivery | DomainError]:
    """`compose` of each (content, customer, channels), every render in one trip to the
    renderer (a broadcast's batch); one that fails is answered with the error `compose` would
    raise, the others go on."""
    asks: list[RenderAsk] = []
    plans: list[tuple[MessageContent, list[Channel]] | DomainError] = []
    for content, customer, channels in asked:
        try:
            plans.append((content, _plan(templates, content, customer, channels, asks)))
        except DomainError as error:
            plans.append(error)
    rendered = iter(await templates.render_all(asks) if templates is not None and asks else [])
    deliveries: list[Delivery | DomainError] = []
    for plan in plans:
        if isinstance(plan, DomainError):
            deliveries.append(plan)
            continue
        content, channels = plan
        contents: dict[Channel, RenderedContent] = {}
        failed: DomainError | None = None
        for channel in channels:
            made = next(rendered)
            if isinstance(made, DomainError):
                failed = failed or made
            else:
                contents[channel] = made
        deliveries.append(
            failed
            if failed is not None
            else Delivery(contents, content.campaign, content.correlation_id, content.fallback)
        )
    return deliveries


def _plan(
    templates: Templates | None,
    content: MessageContent,
    customer: Customer,
    channels: Sequence[Channel],
    asks: list[RenderAsk],
) -> list[Channel]:
    """Adds the renders `compose` would make to `asks`; the channels they are for, in order."""
    context = render_context(customer, content.variables)
    locale = content.locale or customer.profile.locale
    fallback = content.fallback.channels if content.fallback else ()
    planned: list[tuple[Channel, RenderAsk]] = []
    for channel in dict.fromkeys((*channels, *fallback)):
        if content.template is not None:
            if templates is None:
                raise TemplateNotFound("templates are not available here")
            ask = RenderAsk(channel, context, content.template, locale, content.version)
            planned.append((channel, ask))
        elif content.inline is not None:
            if templates is None:
                raise RenderError("inline content cannot be rendered here")
            content.inline.check_for(channel)
            planned.append((channel, RenderAsk(channel, context, inline=content.inline)))
    asks.extend(ask for _, ask in planned)
    return [channel for channel, _ in planned]


def shaped_to_tone(delivery: Delivery, rules: RuleSet) -> Delivery:
    """A campaign send's text as each channel's tone in the rule set allows it (its default
    where the rule set says none), as `POST /v1/templates/{key}/variants` shows it: the text
    part (a push without one, its title) shaped; an email's subject and html part and a
    WhatsApp template's parameters are the template's own."""
    contents: dict[Channel, RenderedContent] = {}
    changed = False
    for channel, rendered in delivery.contents.items():
        content = rendered.content
        text = content.body or content.title
        shaped = None if text is None else shape(text, rules.tone_for(channel))
        if shaped is None or not shaped.changes:
            contents[channel] = rendered
            continue
        changed = True
        if content.body:
            contents[channel] = replace(rendered, content=replace(content, body=shaped.text))
        else:
            contents[channel] = replace(rendered, content=replace(content, title=shaped.text))
    return replace(delivery, contents=contents) if changed else delivery


def approved_as_sent(request: SendRequest, delivery: Delivery) -> SendRequest:
    """With content, whether a WhatsApp message is an approved template is what it says, not
    what the caller claims: free text outside the 24-hour window stays refused."""
    whatsapp = delivery.contents.get(Channel.WHATSAPP)
    if whatsapp is None:
        return request
    is_template = whatsapp.content.whatsapp_template is not None
    if is_template == request.approved_template:
        return request
    return replace(request, approved_template=is_template)


def message_for(
    customer: Customer,
    message_id: UUID,
    decision_id: UUID,
    request: SendRequest,
    decision: Decision,
    delivery: Delivery,
    at: datetime,
) -> tuple[Message, FallbackPlan | None] | None:
    """The message an allowed decision sends (and its fallback, if asked for), or None if
    nothing was rendered for its channel."""
    channel = decision.channel
    if channel is None:
        return None
    rendered = delivery.contents.get(channel)
    recipient = customer.address_for(channel)
    if rendered is None or recipient is None:
        return None
    plan = _fallback_plan(request, delivery, channel, at)
    message = Message.queue(
        id=message_id,
        timestamp=at,
        customer_id=customer.id,
        decision_id=decision_id,
        channel=channel,
        purpose=request.purpose,
        team=request.team,
        recipient=recipient,
        content=rendered.content,
        campaign=delivery.campaign,
        template=rendered.template,
        template_version=rendered.version,
        correlation_id=delivery.correlation_id,
        fallback_channels=plan.request.channels if plan else (),
        fallback_due=plan.due_at if plan else None,
        expires_at=request.expires_at,
    )
    return message, plan


def _fallback_plan(
    request: SendRequest, delivery: Delivery, sent_on: Channel, at: datetime
) -> FallbackPlan | None:
    """The same message on the fallback channels (not the one it went on), without its dedup
    key: the first was never delivered, so the second is not a duplicate."""
    fallback = delivery.fallback
    if fallback is None:
        return None
    channels = tuple(c for c in fallback.channels if c is not sent_on)
    if not channels:
        return None
    contents = {c: delivery.contents[c] for c in channels if c in delivery.contents}
    return FallbackPlan(
        replace(request, channels=channels, dedup_key=None),
        Delivery(contents, delivery.campaign, delivery.correlation_id),
        at + timedelta(seconds=fallback.after_seconds),
    )
