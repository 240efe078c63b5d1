"""Renders template text in Jinja2's immutable sandbox; a missing variable is an error, named."""

from __future__ import annotations

import contextvars
import re
from collections import OrderedDict
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, TemplateRuntimeError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

from domain.templates.aggregate import is_template_key
from ports.templates import Content, RenderedContent, RenderError, TemplateNotFound

if TYPE_CHECKING:
    import jinja2

    from domain.policy.vocabulary import Channel
    from domain.templates.aggregate import Variant
    from ports.templates import TemplateRepository

__all__ = ["JinjaRenderer", "JinjaTemplates"]

_LINE_BREAKS = re.compile(r"[\r\n]+")


class _MissingVariable(UndefinedError):
    """Raised by `_Missing`; keeps what was looked up and where, to name the variable."""

    def __init__(self, undefined: _Missing, message: str | None) -> None:
        super().__init__(message)
        self.owner = undefined._undefined_obj
        self.name = undefined._undefined_name


class _Missing(StrictUndefined):
    """StrictUndefined whose error remembers the lookup that failed."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[TemplateRuntimeError] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, exc)
        if exc is UndefinedError:  # the sandbox passes SecurityError for unsafe attributes
            self._undefined_exception = partial(_MissingVariable, self)  # type: ignore[assignment]


MAX_OUTPUT = 256 * 1024
"""Characters one rendered field may have; more is refused, and rendering stops there."""
RANGE_BUDGET = 50_000
"""Items `range()` may yield in one rendering, all loops together: nested loops stay cheap."""

_range_left: contextvars.ContextVar[int] = contextvars.ContextVar("range_left", default=0)


def _budgeted_range(*args: int) -> range:
    made = range(*args)
    left = _range_left.get() - len(made)
    if left < 0:
        raise SecurityError(f"loops may take at most {RANGE_BUDGET} items from range()")
    _range_left.set(left)
    return made


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with repetition (`'x' * n`) and powers kept small."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponents above 64 are not allowed")
        if operator == "*":
            sized, count = (left, right) if isinstance(right, int) else (right, left)
            repeated = isinstance(sized, str | list | tuple) and isinstance(count, int)
            if repeated and len(sized) * count > MAX_OUTPUT:
                raise SecurityError(f"a repetition longer than {MAX_OUTPUT} items")
        return super().call_binop(context, operator, left, right)


def _environment(*, html: bool) -> ImmutableSandboxedEnvironment:
    environment = _Sandbox(
        undefined=_Missing, autoescape=html, keep_trailing_newline=True, cache_size=0
    )
    environment.globals["range"] = _budgeted_range
    return environment


def _without_nulls(value: Any) -> Any:
    """A copy in which null values of mappings are missing: `Hello None` is never sent."""
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_without_nulls(v) for v in value]
    return value


def _path_to(target: Any, scope: Mapping[str, Any]) -> str | None:
    """Where in the context `target` sits, as `customer.address` or `vars.items[2]`."""
    stack: list[tuple[Any, str]] = [(value, name) for name, value in scope.items()]
    while stack:
        value, path = stack.pop()
        if value is target:
            return path
        if isinstance(value, Mapping):
            stack.extend((v, f"{path}.{k}") for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{n}]") for n, v in enumerate(value))
    return None


def _variable(error: _MissingVariable, scope: Mapping[str, Any]) -> str:
    name = str(error.name)
    if error.owner is missing:
        return name
    owner = _path_to(error.owner, scope)
    if owner is None:
        return name
    return f"{owner}[{name}]" if isinstance(error.name, int) else f"{owner}.{name}"


class JinjaRenderer:
    """Compiles each text once (the most recent `cache_size` kept) and renders it sandboxed.

    Variables render escaped in the `html` field only; other fields are plain text.
    """

    def __init__(self, cache_size: int = 4096) -> None:
        self.cache_size = cache_size
        self._environments = {False: _environment(html=False), True: _environment(html=True)}
        self._compiled: OrderedDict[tuple[bool, str], jinja2.Template] = OrderedDict()

    def check(self, text: str) -> None:
        self._compile(text, html=False, field=None)

    def render(self, content: Content, context: Mapping[str, Any]) -> Content:
        """The content with every text field rendered; raises RenderError naming the field."""
        scope = _without_nulls(context)

        def text(field: str, value: str | None, html: bool = False) -> str | None:
            if value is None:
                return None
            return self._render(self._compile(value, html=html, field=field), scope, field)

        subject = text("subject", content.subject)
        return Content(
            subject=_LINE_BREAKS.sub(" ", subject) if subject is not None else None,
            body=text("body", content.body),
            html=text("html", content.html, html=True),
            title=text("title", content.title),
            whatsapp_template=text("whatsapp_template", content.whatsapp_template),
            whatsapp_language=text("whatsapp_language", content.whatsapp_language),
            whatsapp_parameters=tuple(
                text(f"whatsapp_parameters[{n}]", parameter) or ""
                for n, parameter in enumerate(content.whatsapp_parameters)
            ),
        )

    def _compile(self, source: str, *, html: bool, field: str | None) -> jinja2.Template:
        key = (html, source)
        compiled = self._compiled.get(key)
        if compiled is not None:
            self._compiled.move_to_end(key)
            return compiled
        try:
            compiled = self._environments[html].from_string(source)
        except TemplateSyntaxError as error:
            where = f"{field}: " if field else ""
            raise RenderError(
                f"{where}syntax error on line {error.lineno}: {error.message}"
            ) from None
        self._compiled[key] = compiled
        if len(self._compiled) > self.cache_size:
            self._compiled.popitem(last=False)
        return compiled

    @staticmethod
    def _render(template: jinja2.Template, scope: Mapping[str, Any], field: str) -> str:
        budget = _range_left.set(RANGE_BUDGET)
        try:
            chunks: list[str] = []
            size = 0
            for chunk in template.generate(scope):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise RenderError(f"{field}: longer than {MAX_OUTPUT} characters")
                chunks.append(chunk)
            return "".join(chunks)
        except RenderError:
            raise
        except _MissingVariable as error:
            variable = _variable(error, scope)
            raise RenderError(f"{field}: missing variable {variable}", variable=variable) from None
        except SecurityError as error:
            raise RenderError(f"{field}: not allowed in a template: {error}") from None
        except Exception as error:  # a template's own mistake: a bad filter, 1 / 0, ...
            raise RenderError(f"{field}: {type(error).__name__}: {error}") from None
        finally:
            _range_left.reset(budget)


def _content_of(variant: Variant) -> Content:
    return Content(
        subject=variant.subject,
        body=variant.body,
        html=variant.html,
        title=variant.title,
        whatsapp_template=variant.whatsapp_template,
        whatsapp_language=variant.whatsapp_language,
        whatsapp_parameters=variant.whatsapp_parameters,
    )


class JinjaTemplates:
    """Stored templates: the version asked for, the best locale's variant, rendered."""

    def __init__(self, repository: TemplateRepository, renderer: JinjaRenderer | None = None):
        self.repository = repository
        self.renderer = renderer or JinjaRenderer()

    async def render(
        self,
        key: str,
        channel: Channel,
        locale: str | None,
        context: Mapping[str, Any],
        version: int | None = None,
    ) -> RenderedContent:
        template = await self.repository.get(key) if is_template_key(key) else None
        if template is None:
            raise TemplateNotFound(f"there is no template {key!r}")
        chosen = template.latest if version is None else template.find_version(version)
        if chosen is None and version is not None:
            # The cached copy may predate a version another process just published.
            fresh = await self.repository.load(key)
            chosen = fresh.find_version(version) if fresh is not None else None
        if chosen is None:
            raise TemplateNotFound(f"template {key!r} has no version {version}")
        variant = chosen.variant_for(channel, locale)
        if variant is None:
            raise TemplateNotFound(
                f"template {key!r} version {chosen.number} has no {channel} variant"
            )
        content = self.renderer.render(_content_of(variant), context)
        return RenderedContent(content, key, chosen.number, variant.locale)

    def render_inline(self, content: Content, context: Mapping[str, Any]) -> RenderedContent:
        return RenderedContent(self.renderer.render(content, context))
