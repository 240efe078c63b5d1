"""The Template aggregate: a key and every version published under it, one event per version."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.assistant.intents import canonical_intent, check_intents
from domain.policy.vocabulary import Channel
from domain.shared.errors import InvalidValue
from domain.shared.topics import StoredAs

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = [
    "TEMPLATE_NAMESPACE",
    "Template",
    "TemplateVersion",
    "Variant",
    "canonical_locale",
    "check_key",
    "is_template_key",
    "template_id",
]

TEMPLATE_NAMESPACE = UUID("0b6f7c1e-3d2a-5e84-9c41-7a5d2e8f6b13")
"""Template ids are uuid5(TEMPLATE_NAMESPACE, key): one stream per key, found without an index."""

_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_MAX_VARIANTS = 100

# The fields each channel uses; a field a channel cannot send is refused, not silently dropped.
_CHANNEL_FIELDS: dict[Channel, frozenset[str]] = {
    Channel.EMAIL: frozenset({"subject", "body", "html"}),
    Channel.SMS: frozenset({"body"}),
    Channel.WHATSAPP: frozenset(
        {"body", "whatsapp_template", "whatsapp_language", "whatsapp_parameters"}
    ),
    Channel.PUSH: frozenset({"title", "body"}),
    Channel.VOICE: frozenset({"body"}),
    Channel.CHAT: frozenset({"body"}),
}


def is_template_key(key: str) -> bool:
    return bool(_KEY.match(key))


def check_key(key: str) -> str:
    """The key, if it is one: lower-case letters, digits, `_`, `.`, `-`; at most 64."""
    if not is_template_key(key):
        raise InvalidValue(
            "key", f"{key!r} is not a template key like 'order.shipped' (a-z, 0-9, _ . -, ≤ 64)"
        )
    return key


def template_id(key: str) -> UUID:
    return uuid5(TEMPLATE_NAMESPACE, check_key(key))


def canonical_locale(value: str, field: str = "locale") -> str:
    """A BCP 47 tag written one way: `pt_br` and `PT-BR` are both `pt-BR`."""
    if not _LOCALE.match(value):
        raise InvalidValue(field, f"{value!r} is not a locale like 'en' or 'pt-BR'")
    language, *rest = re.split(r"[-_]", value)
    parts = [language.lower()]
    for part in rest:
        if len(part) == 4 and part.isalpha():
            parts.append(part.title())  # script: zh-Hant
        elif len(part) == 2 or (len(part) == 3 and part.isdigit()):
            parts.append(part.upper())  # region: pt-BR, es-419
        else:
            parts.append(part.lower())
    return "-".join(parts)


@dataclass(frozen=True, slots=True)
class Variant:
    """The content for one channel in one locale; its text fields may hold template expressions."""

    channel: Channel
    locale: str
    subject: str | None = None  # email
    body: str | None = None  # email text part, SMS, WhatsApp session text, push, voice, chat
    html: str | None = None  # email
    title: str | None = None  # push
    whatsapp_template: str | None = None  # an approved WhatsApp template's name
    whatsapp_language: str | None = None
    whatsapp_parameters: tuple[str, ...] = ()

    def texts(self) -> Iterator[tuple[str, str]]:
        """Every text that will be rendered, named by its field: `body`, `whatsapp_parameters[0]`."""
        for name in _CONTENT_FIELDS:
            value = getattr(self, name)
            if name == "whatsapp_parameters":
                for n, parameter in enumerate(value):
                    yield f"{name}[{n}]", parameter
            elif value is not None:
                yield name, value

    def _checked(self, at: str) -> Variant:
        try:
            channel = Channel(self.channel)
        except ValueError:
            raise InvalidValue(f"{at}.channel", f"{self.channel!r} is not a channel") from None
        locale = canonical_locale(self.locale, f"{at}.locale")
        allowed = _CHANNEL_FIELDS[channel]
        for name in _CONTENT_FIELDS:
            if getattr(self, name) not in (None, ()) and name not in allowed:
                raise InvalidValue(f"{at}.{name}", f"is not used on {channel.value}")
        if channel is Channel.EMAIL:
            if not self.subject:
                raise InvalidValue(f"{at}.subject", "an email needs a subject")
            if not self.body and not self.html:
                raise InvalidValue(f"{at}.body", "an email needs a body, an html part, or both")
        elif channel is Channel.WHATSAPP:
            if not self.body and not self.whatsapp_template:
                raise InvalidValue(
                    f"{at}.body", "a WhatsApp message needs a body or a whatsapp_template"
                )
            if (self.whatsapp_parameters or self.whatsapp_language) and not self.whatsapp_template:
                raise InvalidValue(
                    f"{at}.whatsapp_template", "parameters and language need a whatsapp_template"
                )
        elif not self.body:
            raise InvalidValue(f"{at}.body", f"a {channel.value} message needs a body")
        return Variant(
            channel,
            locale,
            self.subject,
            self.body,
            self.html,
            self.title,
            self.whatsapp_template,
            self.whatsapp_language,
            tuple(self.whatsapp_parameters),
        )


_CONTENT_FIELDS = tuple(f.name for f in fields(Variant) if f.name not in ("channel", "locale"))


@dataclass(frozen=True, slots=True)
class TemplateVersion:
    """One published version: its variants, the locale to fall back to, who published it, when,
    and the intents it answers (its replies are suggested for messages of those intents)."""

    number: int
    variants: tuple[Variant, ...]
    default_locale: str
    description: str
    author: str
    published_at: datetime
    intents: tuple[str, ...] = ()

    @property
    def channels(self) -> tuple[Channel, ...]:
        return tuple(dict.fromkeys(v.channel for v in self.variants))

    def variant_for(self, channel: Channel, locale: str | None) -> Variant | None:
        """The exact locale (`pt-BR`), then its language (`pt`), then the default locale.

        None only when the version has nothing for the channel: every channel it has is
        in the default locale.
        """
        wanted: list[str] = []
        if locale:
            try:
                exact = canonical_locale(locale)
            except InvalidValue:
                exact = ""  # an unreadable locale falls back to the default
            if exact:
                wanted += [exact, exact.partition("-")[0]]
        wanted.append(self.default_locale)
        by_locale = {v.locale: v for v in self.variants if v.channel == channel}
        for candidate in wanted:
            if candidate in by_locale:
                return by_locale[candidate]
        return None

    def same_content(
        self,
        variants: tuple[Variant, ...],
        default_locale: str,
        description: str,
        intents: tuple[str, ...] = (),
    ) -> bool:
        return (self.variants, self.default_locale, self.description, self.intents) == (
            variants,
            default_locale,
            description,
            intents,
        )


def _checked_variants(variants: Sequence[Variant], default_locale: str) -> tuple[Variant, ...]:
    if not variants:
        raise InvalidValue("variants", "a template needs at least one variant")
    if len(variants) > _MAX_VARIANTS:
        raise InvalidValue("variants", f"at most {_MAX_VARIANTS} variants")
    checked: list[Variant] = []
    seen: set[tuple[Channel, str]] = set()
    for n, variant in enumerate(variants):
        good = variant._checked(f"variants[{n}]")
        if (good.channel, good.locale) in seen:
            raise InvalidValue(
                f"variants[{n}]",
                f"a second {good.channel.value} variant in {good.locale}; one per channel and locale",
            )
        seen.add((good.channel, good.locale))
        checked.append(good)
    for channel in dict.fromkeys(v.channel for v in checked):
        if (channel, default_locale) not in seen:
            raise InvalidValue(
                "default_locale",
                f"the {channel.value} variants need one in the default locale {default_locale}, "
                "for customers whose locale has none",
            )
    return tuple(checked)


class Template(Aggregate):
    """Content under a key. Versions are never changed or dropped: sent messages cite theirs."""

    stored_as = StoredAs("domain.templates.aggregate:Template")

    @event("Created")
    def __init__(self, id: UUID, timestamp: datetime, key: str) -> None:
        self.key = key
        self.versions: list[TemplateVersion] = []

    @classmethod
    def create(cls, key: str, at: datetime) -> Template:
        return cls(id=template_id(key), timestamp=at, key=key)

    @property
    def latest(self) -> TemplateVersion | None:
        return self.versions[-1] if self.versions else None

    def find_version(self, number: int) -> TemplateVersion | None:
        if 1 <= number <= len(self.versions):
            return self.versions[number - 1]
        return None

    def publish(
        self,
        variants: Sequence[Variant],
        default_locale: str,
        description: str,
        author: str,
        at: datetime,
        intents: Sequence[str] = (),
    ) -> tuple[TemplateVersion, bool]:
        """Publishes the next version; the same content as the latest publishes nothing.

        Returns the version now in force and whether it is new.
        """
        default = canonical_locale(default_locale, "default_locale")
        checked = _checked_variants(variants, default)
        tags = check_intents(list(intents))
        latest = self.latest
        if latest is not None and latest.same_content(checked, default, description, tags):
            return latest, False
        self._version_published(
            timestamp=at,
            number=len(self.versions) + 1,
            variants=checked,
            default_locale=default,
            description=description,
            author=author,
            intents=tags,
        )
        return self.versions[-1], True

    # events: each method body is the state change the event makes

    class VersionPublished(Aggregate.Event):
        """A version published; since version 2 with the intents it answers (those published
        before answer none)."""

        class_version = 2
        number: int
        variants: tuple[Variant, ...]
        default_locale: str
        description: str
        author: str
        intents: tuple[str, ...]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["intents"] = []

    @event(VersionPublished)
    def _version_published(
        self,
        timestamp: datetime,
        number: int,
        variants: tuple[Variant, ...],
        default_locale: str,
        description: str,
        author: str,
        intents: tuple[str, ...],
    ) -> None:
        # By their keys: versions tagged before keys existed may spell `Refund_not_showing_up`.
        keys = tuple(dict.fromkeys(canonical_intent(intent) for intent in intents))
        self.versions.append(
            TemplateVersion(number, variants, default_locale, description, author, timestamp, keys)
        )
