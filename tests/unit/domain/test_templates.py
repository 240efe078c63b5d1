from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid5

import pytest

from domain.policy.vocabulary import Channel
from domain.shared.errors import InvalidValue
from domain.templates.aggregate import (
    TEMPLATE_NAMESPACE,
    Template,
    Variant,
    canonical_locale,
    template_id,
)

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
EMAIL_EN = Variant(Channel.EMAIL, "en", subject="Hello {{ customer.first_name }}", body="Hi")
SMS_EN = Variant(Channel.SMS, "en", body="Hi {{ customer.first_name }}")


def created(key: str = "welcome") -> Template:
    return Template.create(key, T0)


def refused(template: Template, *variants: Variant, default_locale: str = "en") -> InvalidValue:
    with pytest.raises(InvalidValue) as refusal:
        template.publish(variants, default_locale, "", "ana", T0)
    assert template.versions == []
    return refusal.value


class TestKeys:
    def test_the_id_is_derived_from_the_key_so_a_key_names_one_stream(self) -> None:
        assert created("order.shipped").id == uuid5(TEMPLATE_NAMESPACE, "order.shipped")
        assert template_id("order.shipped") == created("order.shipped").id

    @pytest.mark.parametrize("key", ["", "Welcome", "-welcome", "with space", "x" * 65, "é"])
    def test_a_key_outside_the_pattern_is_refused(self, key: str) -> None:
        with pytest.raises(InvalidValue) as refusal:
            Template.create(key, T0)
        assert refusal.value.field == "key"


class TestPublishing:
    def test_the_first_version_is_number_one_with_its_author_and_time(self) -> None:
        template = created()
        version, new = template.publish([EMAIL_EN, SMS_EN], "en", "Welcome mail", "ana", T0)
        assert new
        assert (version.number, version.author, version.published_at) == (1, "ana", T0)
        assert version.channels == (Channel.EMAIL, Channel.SMS)
        events = template.collect_events()
        assert [type(e).__name__ for e in events] == ["Created", "VersionPublished"]

    def test_every_version_is_kept_for_the_messages_that_cite_it(self) -> None:
        template = created()
        template.publish([SMS_EN], "en", "", "ana", T0)
        changed = Variant(Channel.SMS, "en", body="Welcome aboard")
        template.publish([changed], "en", "", "bo", T0 + timedelta(days=1))
        first, second = template.find_version(1), template.find_version(2)
        assert first is not None
        assert first.variants == (SMS_EN,)
        assert second is not None
        assert second.variants == (changed,)
        assert second.author == "bo"
        assert template.latest == second
        assert template.find_version(3) is None
        assert template.find_version(0) is None

    def test_publishing_the_latest_content_again_publishes_nothing(self) -> None:
        template = created()
        template.publish([SMS_EN], "en", "d", "ana", T0)
        template.collect_events()
        version, new = template.publish([SMS_EN], "en", "d", "bo", T0 + timedelta(hours=1))
        assert not new
        assert version.number == 1
        assert template.collect_events() == []

    def test_locales_are_written_one_way(self) -> None:
        template = created()
        version, _ = template.publish(
            [Variant(Channel.SMS, "pt_br", body="Olá"), Variant(Channel.SMS, "EN", body="Hi")],
            "en",
            "",
            "ana",
            T0,
        )
        assert [v.locale for v in version.variants] == ["pt-BR", "en"]
        assert canonical_locale("zh-hant-tw") == "zh-Hant-TW"
        assert canonical_locale("es-419") == "es-419"


class TestInvariants:
    def test_a_version_needs_at_least_one_variant(self) -> None:
        assert refused(created()).field == "variants"

    def test_an_email_needs_a_subject(self) -> None:
        refusal = refused(created(), Variant(Channel.EMAIL, "en", body="Hi"))
        assert refusal.field == "variants[0].subject"

    def test_an_email_needs_a_body_or_an_html_part(self) -> None:
        assert refused(created(), Variant(Channel.EMAIL, "en", subject="Hi")).field == (
            "variants[0].body"
        )
        html_only = Variant(Channel.EMAIL, "en", subject="Hi", html="<p>Hi</p>")
        assert created().publish([html_only], "en", "", "ana", T0)[1]

    def test_sms_and_push_need_a_body(self) -> None:
        assert refused(created(), Variant(Channel.SMS, "en")).field == "variants[0].body"
        assert refused(created(), Variant(Channel.PUSH, "en", title="Hi")).field == (
            "variants[0].body"
        )

    def test_whatsapp_needs_a_body_or_an_approved_template(self) -> None:
        assert refused(created(), Variant(Channel.WHATSAPP, "en")).field == "variants[0].body"
        approved = Variant(
            Channel.WHATSAPP,
            "en",
            whatsapp_template="order_update",
            whatsapp_language="en_US",
            whatsapp_parameters=("{{ vars.order }}",),
        )
        assert created().publish([approved], "en", "", "ana", T0)[1]

    def test_whatsapp_parameters_without_a_template_are_refused(self) -> None:
        loose = Variant(Channel.WHATSAPP, "en", body="Hi", whatsapp_parameters=("x",))
        assert refused(created(), loose).field == "variants[0].whatsapp_template"

    def test_a_field_the_channel_cannot_send_is_refused_not_dropped(self) -> None:
        refusal = refused(created(), SMS_EN, Variant(Channel.SMS, "pt", body="Oi", html="<p/>"))
        assert refusal.field == "variants[1].html"

    def test_one_variant_per_channel_and_locale(self) -> None:
        twice = Variant(Channel.SMS, "EN", body="Hello")
        assert refused(created(), SMS_EN, twice).field == "variants[1]"

    def test_every_channel_has_a_variant_in_the_default_locale(self) -> None:
        refusal = refused(created(), SMS_EN, Variant(Channel.EMAIL, "pt", subject="a", body="b"))
        assert refusal.field == "default_locale"

    def test_a_malformed_locale_is_named(self) -> None:
        refusal = refused(created(), Variant(Channel.SMS, "english!", body="Hi"))
        assert refusal.field == "variants[0].locale"


class TestChoosingAVariant:
    @pytest.fixture
    def template(self) -> Template:
        template = created()
        template.publish(
            [
                Variant(Channel.EMAIL, "en", subject="Hello", body="en"),
                Variant(Channel.EMAIL, "pt", subject="Olá", body="pt"),
                Variant(Channel.EMAIL, "pt-BR", subject="Oi", body="pt-BR"),
                Variant(Channel.SMS, "en", body="en sms"),
            ],
            "en",
            "",
            "ana",
            T0,
        )
        return template

    @pytest.mark.parametrize(
        ("asked", "chosen"),
        [
            ("pt-BR", "pt-BR"),
            ("pt_br", "pt-BR"),
            ("pt-PT", "pt"),
            ("pt", "pt"),
            ("de-DE", "en"),
            (None, "en"),
            ("not a locale", "en"),
        ],
    )
    def test_exact_locale_then_language_then_default(
        self, template: Template, asked: str | None, chosen: str
    ) -> None:
        assert template.latest is not None
        variant = template.latest.variant_for(Channel.EMAIL, asked)
        assert variant is not None
        assert variant.locale == chosen

    def test_a_locale_missing_on_one_channel_falls_back_on_that_channel(
        self, template: Template
    ) -> None:
        assert template.latest is not None
        variant = template.latest.variant_for(Channel.SMS, "pt-BR")
        assert variant is not None
        assert variant.body == "en sms"

    def test_a_channel_without_variants_has_none(self, template: Template) -> None:
        assert template.latest is not None
        assert template.latest.variant_for(Channel.PUSH, "en") is None
