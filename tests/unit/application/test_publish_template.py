from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from adapters.inmemory.storage import InMemoryStorage
from adapters.inmemory.templates import InMemoryTemplates
from adapters.inmemory.unit_of_work import InMemoryUnitsOfWork
from adapters.system.clock import ManualClock
from adapters.templates.jinja import JinjaRenderer
from application.queries.templates import TemplateQueries
from application.templates.publish_template import PublishTemplate, TemplateDraft
from domain.policy.vocabulary import Channel
from domain.shared.errors import InvalidValue
from domain.templates.aggregate import Variant, template_id
from ports.templates import TemplateNotFound

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def draft(text: str = "Hi {{ customer.first_name }}", description: str = "") -> TemplateDraft:
    return TemplateDraft((Variant(Channel.SMS, "en", body=text),), "en", description)


def publisher(published: InMemoryTemplates) -> PublishTemplate:
    uows = InMemoryUnitsOfWork(published.storage)
    return PublishTemplate(uows, published, ManualClock(T0), JinjaRenderer())


class TestPublishTemplate:
    async def test_the_first_publish_creates_the_template_at_version_one(self) -> None:
        templates = InMemoryTemplates(InMemoryStorage())
        published = await publisher(templates)("welcome", draft(), "ana")
        assert published.created
        assert published.version.number == 1
        assert published.version.published_at == T0
        assert (await TemplateQueries(templates).get("welcome")).latest_version == 1

    async def test_the_same_draft_twice_is_one_version(self) -> None:
        published = InMemoryTemplates(InMemoryStorage())
        publish = publisher(published)
        await publish("welcome", draft(), "ana")
        again = await publish("welcome", draft(), "ana")
        assert not again.created
        assert again.version.number == 1
        assert published.storage.events.version_of(template_id("welcome")) == 2  # created, v1

    async def test_racing_publishers_each_get_a_version(self) -> None:
        published = InMemoryTemplates(InMemoryStorage())
        publish = publisher(published)
        await asyncio.gather(*(publish("welcome", draft(f"text {n}"), "ana") for n in range(5)))
        template = await published.load("welcome")
        assert template is not None
        assert [v.number for v in template.versions] == [1, 2, 3, 4, 5]

    async def test_a_syntax_error_is_refused_with_the_variant_field_and_line(self) -> None:
        published = InMemoryTemplates(InMemoryStorage())
        with pytest.raises(InvalidValue) as refusal:
            await publisher(published)("welcome", draft("Hi\n{% if %}"), "ana")
        assert refusal.value.field == "variants[0].body"
        assert "line 2" in refusal.value.reason
        assert published.storage.events.log == []

    async def test_a_bad_key_is_refused_before_anything_is_read(self) -> None:
        with pytest.raises(InvalidValue) as refusal:
            await publisher(InMemoryTemplates(InMemoryStorage()))("Welcome!", draft(), "ana")
        assert refusal.value.field == "key"


class TestTemplateQueries:
    async def test_a_version_that_does_not_exist_is_not_found(self) -> None:
        published = InMemoryTemplates(InMemoryStorage())
        await publisher(published)("welcome", draft(), "ana")
        queries = TemplateQueries(published)
        assert (await queries.get("welcome", 1)).version.number == 1
        with pytest.raises(TemplateNotFound):
            await queries.get("welcome", 2)
        with pytest.raises(TemplateNotFound):
            await queries.get("other")

    async def test_templates_are_listed_by_key(self) -> None:
        published = InMemoryTemplates(InMemoryStorage())
        publish = publisher(published)
        await publish("b.second", draft(), "ana")
        await publish("a.first", draft(description="first"), "ana")
        listed = await TemplateQueries(published).summaries()
        assert [(s.key, s.latest_version, s.description) for s in listed] == [
            ("a.first", 1, "first"),
            ("b.second", 1, ""),
        ]
