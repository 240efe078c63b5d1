"""Reply suggestions for a conversation, and a template's variants per channel, each shaped by
the channel's tone. Both only read: nothing is sent from here (docs/suggestions.md)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter

from application.queries.inbox import ConversationHidden
from application.queries.reply_suggestions import (
    DEFAULT_SUGGESTIONS,
    ReplySuggestions,
    SuggestReplies,
)
from application.templates.channel_variants import ChannelVariants, MessageVariants
from application.templates.shaped_text import ShapedText
from domain.policy.vocabulary import Channel
from domain.shared.errors import InvalidValue
from entrypoints.http.auth import allow
from entrypoints.http.controllers.templates import check_template_key
from entrypoints.http.principal import principal_of
from entrypoints.http.problems import problem
from ports.api_keys import Role
from ports.templates import TemplateNotFound

__all__ = ["SuggestionsController", "TemplateVariantsController"]

MAX_SUGGESTIONS = 10


class ChangeOut(msgspec.Struct):
    """What shaping changed (`collapsed`, `emoji_stripped`, `links_dropped`, `cut`) and why."""

    change: str
    reason: str


class ShapedTextOut(msgspec.Struct):
    """A text for `channel` from the template's `written_for` variant, shaped: the context
    facts it `used` and the `changes` shaping made."""

    channel: str
    written_for: str
    locale: str | None
    subject: str | None
    text: str
    used: list[str]
    changes: list[ChangeOut]


class SuggestionOut(ShapedTextOut, kw_only=True):
    template: str
    version: int


class LeftOutOut(msgspec.Struct):
    template: str
    version: int
    reason: str


class SuggestionsOut(msgspec.Struct):
    """For the conversation's last inbound message: its intent and the suggested replies."""

    conversation_id: UUID
    message_id: UUID | None
    intent: str | None
    confidence: float | None
    channel: str | None
    suggestions: list[SuggestionOut]
    left_out: list[LeftOutOut]


class ToneOut(msgspec.Struct):
    max_length: int
    structure: str
    emoji: bool
    links: bool
    max_links: int | None


class ChannelVariantOut(ShapedTextOut, kw_only=True):
    tone: ToneOut


class VariantLeftOutOut(msgspec.Struct):
    channel: str
    reason: str


class VariantsOut(msgspec.Struct):
    template: str
    version: int
    variants: list[ChannelVariantOut]
    left_out: list[VariantLeftOutOut]


class VariantsIn(msgspec.Struct, forbid_unknown_fields=True):
    """`customer_id` renders with that customer's context (and `context.vars`, if given);
    without it, `context` is the sample `{"customer": {...}, "vars": {...}}` rendered (each
    part an object)."""

    customer_id: UUID | None = None
    context: dict[str, dict[str, Any]] | None = None
    channels: Annotated[list[Channel], msgspec.Meta(max_length=6)] = msgspec.field(
        default_factory=list
    )
    version: Annotated[int, msgspec.Meta(ge=1)] | None = None
    locale: Annotated[str, msgspec.Meta(min_length=2, max_length=35)] | None = None


def _shaped(shaped: ShapedText) -> dict[str, Any]:
    return {
        "channel": shaped.channel.value,
        "written_for": shaped.written_for.value,
        "locale": shaped.locale,
        "subject": shaped.subject,
        "text": shaped.text,
        "used": list(shaped.used),
        "changes": [ChangeOut(c.change, c.reason) for c in shaped.changes],
    }


def _suggestions_out(found: ReplySuggestions) -> SuggestionsOut:
    return SuggestionsOut(
        conversation_id=found.conversation_id,
        message_id=found.message_id,
        intent=found.intent,
        confidence=found.confidence,
        channel=None if found.channel is None else found.channel.value,
        suggestions=[
            SuggestionOut(template=s.template, version=s.version, **_shaped(s.reply))
            for s in found.suggestions
        ],
        left_out=[LeftOutOut(o.template, o.version, o.reason) for o in found.left_out],
    )


def _variants_out(found: MessageVariants) -> VariantsOut:
    return VariantsOut(
        template=found.template,
        version=found.version,
        variants=[
            ChannelVariantOut(
                tone=ToneOut(
                    v.tone.max_length,
                    v.tone.structure.value,
                    v.tone.emoji,
                    v.tone.links,
                    v.tone.max_links,
                ),
                **_shaped(v.message),
            )
            for v in found.variants
        ],
        left_out=[VariantLeftOutOut(o.channel.value, o.reason) for o in found.left_out],
    )


def _hidden(request: Request[Any, Any, Any], exc: ConversationHidden) -> Response[Any]:
    return problem(403, "forbidden", "This conversation is not one of your teams'", str(exc))


def _no_template(request: Request[Any, Any, Any], exc: TemplateNotFound) -> Response[Any]:
    return problem(404, "not-found", "Not found", str(exc))


class SuggestionsController(Controller):
    path = "/v1/conversations"
    tags = ["conversations"]
    exception_handlers = {ConversationHidden: _hidden}

    @get(
        "/{conversation_id:uuid}/suggestions",
        operation_id="suggestReplies",
        name="conversations:suggestions",
        guards=[allow(Role.AGENT)],
        summary="Suggested replies to the last inbound message, from templates tagged with its "
        "intent, rendered with the customer's context and shaped to their channel",
        description=(
            "Answers the last inbound message's intent and confidence and up to `?limit=` "
            f"(1-{MAX_SUGGESTIONS}, default {DEFAULT_SUGGESTIONS}) suggestions, each with its "
            "template and version, the channel it is shaped for, the text, the context facts "
            "it `used` and the `changes` shaping made; a template that cannot be rendered for "
            "this customer is in `left_out` with its reason. Nothing is sent: reply with "
            "`POST /v1/conversations/{id}/replies`. Another team's conversation: 403."
        ),
    )
    @inject
    async def suggest_replies(
        self,
        conversation_id: UUID,
        request: Request[Any, Any, Any],
        suggest: FromDishka[SuggestReplies],
        limit: Annotated[int, Parameter(ge=1, le=MAX_SUGGESTIONS)] = DEFAULT_SUGGESTIONS,
    ) -> SuggestionsOut:
        visible = (await principal_of(request)).visible_teams
        return _suggestions_out(await suggest(conversation_id, visible, limit))


class TemplateVariantsController(Controller):
    path = "/v1/templates"
    tags = ["templates"]
    exception_handlers = {TemplateNotFound: _no_template}

    @post(
        "/{key:str}/variants",
        operation_id="templateVariants",
        name="templates:variants",
        guards=[allow(Role.MARKETER)],
        status_code=200,
        summary="A template's message for each channel, shaped by the channel's tone",
        description=(
            'Body: `{"customer_id": "…"}` or `{"context": {"customer": {...}, "vars": {...}}}`, '
            "with optional `channels`, `version` and `locale`. One variant per channel the "
            "template has (or the request names), each shaped by the channel's tone policy "
            "(the rule set's `channels.<channel>.tone`), with the `changes` made and why; a "
            "channel whose render fails is in `left_out` with its reason. Nothing is sent."
        ),
    )
    @inject
    async def template_variants(
        self, key: str, data: VariantsIn, variants: FromDishka[ChannelVariants]
    ) -> VariantsOut:
        check_template_key(key)
        if data.customer_id is None and data.context is None:
            raise InvalidValue("customer_id", "give a customer_id or a sample context")
        found = await variants(
            key,
            customer_id=data.customer_id,
            context=data.context,
            channels=tuple(data.channels),
            version=data.version,
            locale=data.locale,
        )
        return _variants_out(found)
