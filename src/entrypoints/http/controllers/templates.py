"""Templates: publish versions, read them, list them, preview one rendered."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, post, put
from litestar.exceptions import ValidationException
from litestar.params import Parameter

from application.queries.templates import TemplateQueries, TemplateView
from application.templates.publish_template import PublishTemplate, TemplateDraft
from domain.policy.vocabulary import Channel
from domain.templates.aggregate import Variant, is_template_key
from entrypoints.http.auth import allow, current_key, every_team
from entrypoints.http.problems import problem, unrenderable
from ports.api_keys import Role
from ports.templates import Content, RenderError, TemplateNotFound, Templates

__all__ = ["TemplatesController", "check_template_key"]

_READERS = (Role.MARKETER, Role.AGENT, Role.AUDITOR, Role.SERVICE)

_Text = Annotated[str, msgspec.Meta(max_length=100_000)]
_Short = Annotated[str, msgspec.Meta(max_length=1_000)]
_Locale = Annotated[str, msgspec.Meta(min_length=2, max_length=35)]


class VariantIn(msgspec.Struct, forbid_unknown_fields=True):
    """The content for one channel in one locale; see docs/templates.md for the fields."""

    channel: Channel
    locale: _Locale
    subject: _Short | None = None
    body: _Text | None = None
    html: Annotated[str, msgspec.Meta(max_length=1_000_000)] | None = None
    title: _Short | None = None
    whatsapp_template: Annotated[str, msgspec.Meta(max_length=512)] | None = None
    whatsapp_language: _Locale | None = None
    whatsapp_parameters: Annotated[list[_Short], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=list
    )

    def to_variant(self) -> Variant:
        return Variant(
            self.channel,
            self.locale,
            self.subject,
            self.body,
            self.html,
            self.title,
            self.whatsapp_template,
            self.whatsapp_language,
            tuple(self.whatsapp_parameters),
        )


class TemplateIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new version: every variant, the locale to fall back to, and what the template is for."""

    default_locale: _Locale
    variants: Annotated[list[VariantIn], msgspec.Meta(min_length=1, max_length=100)]
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""
    intents: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=100)
    ] = msgspec.field(default_factory=list)


class VariantOut(msgspec.Struct, omit_defaults=True):
    channel: str
    locale: str
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    title: str | None = None
    whatsapp_template: str | None = None
    whatsapp_language: str | None = None
    whatsapp_parameters: tuple[str, ...] = ()


class TemplateOut(msgspec.Struct):
    key: str
    version: int
    latest_version: int
    description: str
    default_locale: str
    channels: list[str]
    author: str
    published_at: datetime
    variants: list[VariantOut]
    intents: list[str]


class TemplateSummaryOut(msgspec.Struct):
    key: str
    latest_version: int
    description: str
    updated_at: datetime


class TemplatesOut(msgspec.Struct):
    items: list[TemplateSummaryOut]
    next_cursor: str | None


class PreviewIn(msgspec.Struct, forbid_unknown_fields=True):
    """`context` is what a send would render with: `{"customer": {...}, "vars": {...}}`."""

    channel: Channel
    locale: _Locale | None = None
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    version: Annotated[int, msgspec.Meta(ge=1)] | None = None


class ContentOut(msgspec.Struct, omit_defaults=True):
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    title: str | None = None
    whatsapp_template: str | None = None
    whatsapp_language: str | None = None
    whatsapp_parameters: tuple[str, ...] = ()


class PreviewOut(msgspec.Struct):
    template: str
    version: int
    channel: str
    locale: str | None
    content: ContentOut


def _variant_out(variant: Variant) -> VariantOut:
    return VariantOut(
        variant.channel.value,
        variant.locale,
        variant.subject,
        variant.body,
        variant.html,
        variant.title,
        variant.whatsapp_template,
        variant.whatsapp_language,
        variant.whatsapp_parameters,
    )


def _template_out(view: TemplateView) -> TemplateOut:
    version = view.version
    return TemplateOut(
        key=view.key,
        version=version.number,
        latest_version=view.latest_version,
        description=version.description,
        default_locale=version.default_locale,
        channels=[c.value for c in version.channels],
        author=version.author,
        published_at=version.published_at,
        variants=[_variant_out(v) for v in version.variants],
        intents=list(version.intents),
    )


def _content_out(content: Content) -> ContentOut:
    return ContentOut(
        content.subject,
        content.body,
        content.html,
        content.title,
        content.whatsapp_template,
        content.whatsapp_language,
        content.whatsapp_parameters,
    )


def check_template_key(key: str) -> None:
    """A `{key}` in the path that is no template key: a 400 naming `path.key`."""
    if not is_template_key(key):
        raise ValidationException(
            "not a template key",
            extra=[
                {
                    "key": "key",
                    "source": "path",
                    "message": "a template key is 1-64 of a-z, 0-9, _ . - starting with a letter or digit",
                }
            ],
        )


def _not_found(request: Request[Any, Any, Any], exc: TemplateNotFound) -> Response[Any]:
    return problem(404, "not-found", "Not found", str(exc))


def _render_failed(request: Request[Any, Any, Any], exc: RenderError) -> Response[Any]:
    return unrenderable(exc, f"$.context.{exc.variable}" if exc.variable else "$")


class TemplatesController(Controller):
    path = "/v1/templates"
    tags = ["templates"]
    exception_handlers = {TemplateNotFound: _not_found, RenderError: _render_failed}

    @put(
        "/{key:str}",
        operation_id="publishTemplate",
        name="templates:publish",
        guards=[allow(Role.MARKETER), every_team("a template")],
        status_code=201,
        summary="Publish the next version of a template (created on its first version)",
        description=(
            "Body: `{default_locale, description, variants: [{channel, locale, subject, body, "
            "html, title, whatsapp_template, whatsapp_language, whatsapp_parameters}]}` "
            "(docs/templates.md). 201 with the new version; 200 with the latest version when "
            "the body is that version already. Every version is kept. A template carries no "
            "team (any team's sends and campaigns may use it), so a key limited to teams may "
            "not publish one: 403."
        ),
    )
    @inject
    async def publish_template(
        self,
        key: str,
        data: TemplateIn,
        request: Request[Any, Any, Any],
        publish: FromDishka[PublishTemplate],
    ) -> Response[TemplateOut]:
        check_template_key(key)
        draft = TemplateDraft(
            tuple(v.to_variant() for v in data.variants),
            data.default_locale,
            data.description,
            tuple(data.intents),
        )
        api_key = current_key(request)
        published = await publish(
            key, draft, author=f"{api_key.name} ({api_key.role.value} key {api_key.id})"
        )
        number = published.version.number
        return Response(
            _template_out(TemplateView(key, number, published.version)),
            status_code=201 if published.created else 200,
            headers={"Location": f"/v1/templates/{key}?version={number}"},
        )

    @get(
        "/{key:str}",
        operation_id="getTemplate",
        name="templates:get",
        guards=[allow(*_READERS)],
        summary="A template's latest version, or the one given by ?version=N",
    )
    @inject
    async def get_template(
        self,
        key: str,
        queries: FromDishka[TemplateQueries],
        version: Annotated[int | None, Parameter(ge=1)] = None,
    ) -> TemplateOut:
        return _template_out(await queries.get(key, version))

    @get(
        operation_id="listTemplates",
        name="templates:list",
        guards=[allow(*_READERS)],
        summary="Every template by key, with its latest version",
    )
    @inject
    async def list_templates(self, queries: FromDishka[TemplateQueries]) -> TemplatesOut:
        return TemplatesOut(
            [
                TemplateSummaryOut(s.key, s.latest_version, s.description, s.updated_at)
                for s in await queries.summaries()
            ],
            next_cursor=None,
        )

    @post(
        "/{key:str}/preview",
        operation_id="previewTemplate",
        name="templates:preview",
        guards=[allow(*_READERS)],
        status_code=200,
        summary="Render a template for a channel and locale with a given context",
        description=(
            'Body: `{"channel": "email", "locale": "pt-BR", "context": {"customer": {...}, '
            '"vars": {...}}, "version": N}` (version defaults to the latest). The answer is the '
            "rendered content and the variant's locale; a missing variable, or a render over "
            "its budget, is a 422 `render-error` problem naming it, as a send request with "
            "that context would get."
        ),
    )
    @inject
    async def preview_template(
        self, key: str, data: PreviewIn, templates: FromDishka[Templates]
    ) -> PreviewOut:
        rendered = await templates.render(
            key, data.channel, data.locale, data.context, data.version, preview=True
        )
        return PreviewOut(
            key,
            rendered.version or 0,
            data.channel.value,
            rendered.locale,
            _content_out(rendered.content),
        )
