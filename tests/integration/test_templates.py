from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from adapters.postgres.templates import PostgresTemplates
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import ManualClock
from adapters.templates.jinja import JinjaRenderer, JinjaTemplates
from application.templates.publish_template import PublishTemplate, TemplateDraft
from domain.policy.vocabulary import Channel
from domain.templates.aggregate import Template, Variant, template_id
from ports.unit_of_work import ConcurrencyConflict

if TYPE_CHECKING:
    import asyncpg

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
ANA = {"customer": {"first_name": "Ana"}, "vars": {"order": "A-1"}}


def draft(text: str = "Hi {{ customer.first_name }}", description: str = "") -> TemplateDraft:
    return TemplateDraft(
        (
            Variant(Channel.SMS, "en", body=text),
            Variant(Channel.SMS, "pt-BR", body="Olá {{ customer.first_name }}"),
            Variant(
                Channel.EMAIL, "en", subject="{{ vars.order }}", html="<p>{{ vars.order }}</p>"
            ),
        ),
        "en",
        description,
    )


def publisher(store: PostgresTemplates) -> PublishTemplate:
    """Publishes as one process does, through its own units of work, told to `store`."""
    return PublishTemplate(PostgresUnitsOfWork(store.pool), store, ManualClock(T0), JinjaRenderer())


class TestStoringTemplates:
    async def test_every_version_comes_back_from_the_event_store(self, pool: asyncpg.Pool) -> None:
        publish = publisher(PostgresTemplates(pool))
        await publish("order.shipped", draft("v1"), "ana")
        await publish("order.shipped", draft("v2", "shipping notice"), "bo")
        loaded = await PostgresTemplates(pool).load("order.shipped")
        assert loaded is not None
        assert [v.number for v in loaded.versions] == [1, 2]
        first, second = loaded.versions
        assert first.variant_for(Channel.SMS, "en") == Variant(Channel.SMS, "en", body="v1")
        assert (second.author, second.description, second.published_at) == (
            "bo",
            "shipping notice",
            T0,
        )
        assert second.variants == draft("v2").variants

    async def test_the_listing_is_written_with_the_events(self, pool: asyncpg.Pool) -> None:
        store = PostgresTemplates(pool)
        publish = publisher(store)
        await publish("welcome", draft("v1"), "ana")
        await publish("welcome", draft("v2", "the welcome"), "ana")
        await publish("a.reminder", draft(), "ana")
        listed = await store.summaries()
        assert [(s.key, s.latest_version, s.description) for s in listed] == [
            ("a.reminder", 1, ""),
            ("welcome", 2, "the welcome"),
        ]
        welcome = await store.load("welcome")
        assert welcome is not None
        assert listed[1].template_id == welcome.id

    async def test_racing_publishers_each_get_their_own_version(self, pool: asyncpg.Pool) -> None:
        publishers = [publisher(PostgresTemplates(pool)) for _ in range(6)]
        await asyncio.gather(
            *(p("welcome", draft(f"text {n}"), "ana") for n, p in enumerate(publishers))
        )
        loaded = await PostgresTemplates(pool).load("welcome")
        assert loaded is not None
        assert [v.number for v in loaded.versions] == [1, 2, 3, 4, 5, 6]
        assert {v.variants[0].body for v in loaded.versions} == {f"text {n}" for n in range(6)}
        assert await pool.fetchval("SELECT latest_version FROM templates") == 6

    async def test_a_stale_copy_writes_neither_events_nor_listing(self, pool: asyncpg.Pool) -> None:
        store = PostgresTemplates(pool)
        await publisher(store)("welcome", draft("v1"), "ana")
        stream = template_id("welcome")
        here, elsewhere = PostgresUnitsOfWork(pool), PostgresUnitsOfWork(pool)

        async def publish_from_a_stale_copy() -> None:
            async with elsewhere() as late:
                second = (await late.repository(Template).get([stream]))[stream]
                async with here() as early:
                    first = (await early.repository(Template).get([stream]))[stream]
                    first.publish(draft("from first").variants, "en", "", "ana", T0)
                    early.repository(Template).add(first)
                second.publish(draft("from second").variants, "en", "second", "bo", T0)
                late.repository(Template).add(second)

        with pytest.raises(ConcurrencyConflict):
            await publish_from_a_stale_copy()
        row = await pool.fetchrow("SELECT latest_version, description FROM templates")
        assert tuple(row) == (2, "")

    async def test_an_unknown_or_malformed_key_has_no_template(self, pool: asyncpg.Pool) -> None:
        store = PostgresTemplates(pool)
        assert await store.get("nobody") is None
        assert await store.load("Not A Key") is None
        assert await store.summaries() == []


class TestRenderingStoredTemplates:
    async def test_a_stored_template_renders_in_the_customers_locale(
        self, pool: asyncpg.Pool
    ) -> None:
        store = PostgresTemplates(pool)
        await publisher(store)("welcome", draft(), "ana")
        templates = JinjaTemplates(store)
        sms = await templates.render("welcome", Channel.SMS, "pt-BR", ANA)
        assert (sms.content.body, sms.locale, sms.version) == ("Olá Ana", "pt-BR", 1)
        email = await templates.render("welcome", Channel.EMAIL, "pt-BR", ANA)
        assert (email.content.subject, email.content.html, email.locale) == (
            "A-1",
            "<p>A-1</p>",
            "en",
        )

    async def test_a_version_published_by_another_process_is_found_at_once(
        self, pool: asyncpg.Pool
    ) -> None:
        here, elsewhere = PostgresTemplates(pool, fresh_for=3600), PostgresTemplates(pool)
        await publisher(here)("welcome", draft("v1"), "ana")
        templates = JinjaTemplates(here)
        assert (await templates.render("welcome", Channel.SMS, "en", ANA)).content.body == "v1"
        await publisher(elsewhere)("welcome", draft("v2"), "ana")
        latest = await templates.render("welcome", Channel.SMS, "en", ANA)
        assert latest.version == 1  # still warm here; within `fresh_for` the cache may lag
        asked = await templates.render("welcome", Channel.SMS, "en", ANA, version=2)
        assert (asked.content.body, asked.version) == ("v2", 2)

    async def test_publishing_here_is_read_here_at_once(self, pool: asyncpg.Pool) -> None:
        store = PostgresTemplates(pool, fresh_for=3600)
        templates = JinjaTemplates(store)
        await publisher(store)("welcome", draft("v1"), "ana")
        await templates.render("welcome", Channel.SMS, "en", ANA)
        await publisher(store)("welcome", draft("v2"), "ana")
        assert (await templates.render("welcome", Channel.SMS, "en", ANA)).content.body == "v2"
