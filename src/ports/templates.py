"""Templates: versioned message content per channel and locale, rendered for one customer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from domain.message.content import Content
from domain.shared.errors import DomainError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime
    from uuid import UUID

    from domain.policy.vocabulary import Channel
    from domain.templates.aggregate import Template

__all__ = [
    "Content",
    "PublishedTemplates",
    "RenderAsk",
    "RenderError",
    "RenderedContent",
    "TemplateNotFound",
    "TemplateSummary",
    "TemplateSyntax",
    "TemplateVariables",
    "Templates",
]


@dataclass(frozen=True, slots=True)
class RenderedContent:
    """Content ready to send, and the template version it came from (None: inline content)."""

    content: Content
    template: str | None = None
    version: int | None = None
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class RenderAsk:
    """One render of many (`Templates.render_all`): a stored template's (`key`, for `channel`
    in `locale`, the latest or `version`) or, with `inline`, that content's."""

    channel: Channel
    context: Mapping[str, Any]
    key: str | None = None
    locale: str | None = None
    version: int | None = None
    inline: Content | None = None


class TemplateNotFound(DomainError):
    """No template with that key, or none for the channel and locale asked for."""


class RenderError(DomainError):
    """The content cannot be rendered: a missing variable, a syntax error or a spent render
    budget (`operations`, `seconds` or `size`, with its limit), named."""

    def __init__(
        self,
        reason: str,
        *,
        variable: str | None = None,
        budget: str | None = None,
        limit: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.variable = variable
        self.budget = budget
        self.limit = limit

    @property
    def names(self) -> dict[str, Any]:
        """What the error names, for a problem's `errors[]` entry: `variable`, or `budget`
        and `limit`."""
        named = {"variable": self.variable, "budget": self.budget, "limit": self.limit}
        return {name: value for name, value in named.items() if value is not None}


class Templates(Protocol):
    """Renders stored templates and inline content in a sandbox."""

    async def render(
        self,
        key: str,
        channel: Channel,
        locale: str | None,
        context: Mapping[str, Any],
        version: int | None = None,
        *,
        preview: bool = False,
    ) -> RenderedContent:
        """The latest (or given) version's content for the channel, best locale first.

        Locale fallback: exact (`pt-BR`), then language (`pt`), then the template's default.
        Rendering runs off the event loop, within the render budgets; a `preview` renders
        apart from sends, so previews never queue sends behind them.
        Raises TemplateNotFound or RenderError.
        """
        ...

    async def render_inline(self, content: Content, context: Mapping[str, Any]) -> RenderedContent:
        """Inline content given with the request; raises RenderError."""
        ...

    async def render_all(self, asked: Sequence[RenderAsk]) -> list[RenderedContent | DomainError]:
        """Each ask as `render` or `render_inline` would answer it, in one trip off the event
        loop, each render within its own budgets; one that cannot be rendered is answered with
        its error (TemplateNotFound, RenderError), the others go on."""
        ...


@dataclass(frozen=True, slots=True)
class TemplateSummary:
    """A template as listed: its key and latest version."""

    key: str
    template_id: UUID
    latest_version: int
    description: str
    updated_at: datetime


class PublishedTemplates(Protocol):
    """Templates as published, every version of each; Template aggregates are changed through
    the unit of work (`uow.repository(Template)`, by `template_id(key)`)."""

    async def get(self, key: str) -> Template | None:
        """The template as committed, possibly a second old; shared, so never change it."""
        ...

    async def load(self, key: str) -> Template | None:
        """The template as committed now."""
        ...

    def forget(self, key: str) -> None:
        """The template was just published: what `get` kept of it is stale."""
        ...

    async def summaries(self) -> list[TemplateSummary]:
        """Every template, by key."""
        ...


class TemplateSyntax(Protocol):
    """Checks a text's template syntax before it is published."""

    async def check(self, text: str) -> None:
        """Raises RenderError with the line of the first syntax error."""
        ...


class TemplateVariables(Protocol):
    """Which variables of the context a text reads."""

    def read_by(self, text: str) -> frozenset[str]:
        """Each variable the text looks up, as a path (`customer.first_name`, `vars.eta`);
        an empty set for a text that cannot be parsed."""
        ...
