from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.templates.jinja import JinjaRenderer, JinjaTemplates
from domain.policy.vocabulary import Channel
from domain.templates.aggregate import Template, Variant
from ports.templates import Content, RenderError, TemplateNotFound
from tests.unit.fakes import InMemoryTemplates

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
ANA = {"customer": {"first_name": "Ana", "plan": "pro"}, "vars": {}}


def body(text: str, context: dict[str, Any] | None = None) -> str | None:
    return JinjaRenderer().render(Content(body=text), ANA if context is None else context).body


def failure(text: str, context: dict[str, Any] | None = None) -> RenderError:
    with pytest.raises(RenderError) as failed:
        body(text, context)
    return failed.value


class TestRendering:
    def test_customer_and_request_variables_fill_the_text(self) -> None:
        context = {**ANA, "vars": {"order": "A-1"}}
        assert body(
            "Hi {{ customer.first_name }}, {{ vars.order }} ({{ customer.plan }})",
            context,
        ) == ("Hi Ana, A-1 (pro)")

    def test_every_field_is_rendered_and_absent_ones_stay_absent(self) -> None:
        content = Content(
            subject="For {{ customer.first_name }}",
            html="<b>{{ customer.first_name }}</b>",
            whatsapp_template="order_update",
            whatsapp_parameters=("{{ customer.first_name }}", "2"),
        )
        rendered = JinjaRenderer().render(content, ANA)
        assert rendered.subject == "For Ana"
        assert rendered.html == "<b>Ana</b>"
        assert rendered.whatsapp_parameters == ("Ana", "2")
        assert rendered.body is None
        assert rendered.title is None

    def test_a_missing_variable_is_an_error_that_names_it(self) -> None:
        error = failure("Hi {{ customer.last_name }}")
        assert error.variable == "customer.last_name"
        assert "body" in str(error)

    def test_a_missing_top_level_variable_is_named(self) -> None:
        assert failure("{{ order.total }}").variable == "order"

    def test_a_missing_object_is_named_where_the_lookup_failed(self) -> None:
        assert failure("{{ customer.address.city }}").variable == "customer.address"

    def test_a_missing_item_in_a_loop_is_named_with_its_index(self) -> None:
        context = {"vars": {"lines": [{"sku": "a"}, {"price": 2}]}}
        error = failure("{% for line in vars.lines %}{{ line.sku }}{% endfor %}", context)
        assert error.variable == "vars.lines[1].sku"

    def test_null_counts_as_missing_so_hello_none_is_never_sent(self) -> None:
        error = failure("Hi {{ customer.first_name }}", {"customer": {"first_name": None}})
        assert error.variable == "customer.first_name"

    def test_a_default_or_a_defined_test_handles_an_optional_variable(self) -> None:
        assert body("Hi {{ customer.last_name | default('there') }}") == "Hi there"
        text = "{% if customer.last_name is defined %}x{% else %}y{% endif %}"
        assert body(text) == "y"

    def test_a_syntax_error_names_its_line(self) -> None:
        error = failure("Hello\n{{ customer.first_name ")
        assert "line 2" in str(error)
        assert error.variable is None

    def test_check_finds_syntax_errors_without_a_context(self) -> None:
        renderer = JinjaRenderer()
        renderer.check("{{ anything.at.all }}")
        with pytest.raises(RenderError, match="line 1"):
            renderer.check("{% if %}")

    def test_the_same_text_is_compiled_once(self) -> None:
        renderer = JinjaRenderer(cache_size=1)
        renderer.render(Content(body="{{ vars.a }}"), {"vars": {"a": 1}})
        compiled = dict(renderer._compiled)
        renderer.render(Content(body="{{ vars.a }}"), {"vars": {"a": 2}})
        assert renderer._compiled == compiled
        renderer.render(Content(body="other"), {})
        assert len(renderer._compiled) == 1


class TestSandbox:
    @pytest.mark.parametrize(
        "text",
        [
            "{{ ''.__class__ }}",
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "{{ customer.__init__.__globals__ }}",
            "{{ customer.update({'first_name': 'x'}) }}",
            "{{ vars.clear() }}",
        ],
    )
    def test_internals_and_changes_to_the_context_are_refused(self, text: str) -> None:
        error = failure(text)
        assert "not allowed" in str(error)

    def test_the_callers_context_is_left_as_it_was(self) -> None:
        context = {"customer": {"first_name": "Ana", "last_name": None}}
        body("{{ customer.first_name }}", context)
        assert context == {"customer": {"first_name": "Ana", "last_name": None}}


class TestEscaping:
    def test_html_escapes_variables_but_text_fields_do_not(self) -> None:
        context = {"vars": {"name": "<script>x</script> & co"}}
        content = Content(
            subject="{{ vars.name }}", body="{{ vars.name }}", html="<p>{{ vars.name }}</p>"
        )
        rendered = JinjaRenderer().render(content, context)
        assert rendered.html == "<p>&lt;script&gt;x&lt;/script&gt; &amp; co</p>"
        assert rendered.body == "<script>x</script> & co"
        assert rendered.subject == "<script>x</script> & co"

    def test_a_line_break_in_a_subject_cannot_add_a_header(self) -> None:
        rendered = JinjaRenderer().render(
            Content(subject="Hi {{ vars.x }}"), {"vars": {"x": "a\r\nBcc: all@example.org"}}
        )
        assert rendered.subject == "Hi a Bcc: all@example.org"


async def stored(*variants: Variant, default_locale: str = "en") -> InMemoryTemplates:
    repository = InMemoryTemplates()
    template = Template.create("welcome", T0)
    template.publish(variants, default_locale, "", "ana", T0)
    await repository.save(template)
    return repository


class TestStoredTemplates:
    async def test_the_best_locale_is_rendered_and_cited_with_its_version(self) -> None:
        templates = JinjaTemplates(
            await stored(
                Variant(Channel.SMS, "en", body="Hi {{ customer.first_name }}"),
                Variant(Channel.SMS, "pt", body="Olá {{ customer.first_name }}"),
            )
        )
        rendered = await templates.render("welcome", Channel.SMS, "pt-BR", ANA)
        assert rendered.content.body == "Olá Ana"
        assert (rendered.template, rendered.version, rendered.locale) == ("welcome", 1, "pt")
        fallback = await templates.render("welcome", Channel.SMS, "de", ANA)
        assert (fallback.content.body, fallback.locale) == ("Hi Ana", "en")

    async def test_an_older_version_is_rendered_when_asked_for(self) -> None:
        repository = await stored(Variant(Channel.SMS, "en", body="v1"))
        template = await repository.load("welcome")
        assert template is not None
        template.publish([Variant(Channel.SMS, "en", body="v2")], "en", "", "ana", T0)
        await repository.save(template)
        templates = JinjaTemplates(repository)
        assert (await templates.render("welcome", Channel.SMS, None, {})).content.body == "v2"
        old = await templates.render("welcome", Channel.SMS, None, {}, version=1)
        assert (old.content.body, old.version) == ("v1", 1)

    @pytest.mark.parametrize(
        ("key", "channel", "version"),
        [
            ("nobody", Channel.SMS, None),
            ("Not A Key", Channel.SMS, None),
            ("welcome", Channel.PUSH, None),
            ("welcome", Channel.SMS, 2),
        ],
    )
    async def test_no_template_version_or_channel_is_template_not_found(
        self, key: str, channel: Channel, version: int | None
    ) -> None:
        templates = JinjaTemplates(await stored(Variant(Channel.SMS, "en", body="Hi")))
        with pytest.raises(TemplateNotFound):
            await templates.render(key, channel, "en", {}, version=version)

    async def test_a_missing_variable_fails_the_render_not_the_dispatch(self) -> None:
        templates = JinjaTemplates(await stored(Variant(Channel.SMS, "en", body="{{ vars.code }}")))
        with pytest.raises(RenderError) as failed:
            await templates.render("welcome", Channel.SMS, "en", ANA)
        assert failed.value.variable == "vars.code"

    def test_inline_content_renders_without_a_template(self) -> None:
        templates = JinjaTemplates(InMemoryTemplates())
        rendered = templates.render_inline(Content(body="Hi {{ customer.first_name }}"), ANA)
        assert rendered.content.body == "Hi Ana"
        assert rendered.template is None
        assert rendered.version is None


class TestRenderingLimits:
    def render(self, body: str) -> str | None:
        return JinjaRenderer().render(Content(body=body), {"customer": {"first_name": "Ana"}}).body

    def test_nested_loops_over_range_stop_at_the_budget(self) -> None:
        with pytest.raises(RenderError, match="range"):
            self.render(
                "{% for i in range(6000) %}{% for j in range(6000) %}{% endfor %}{% endfor %}"
            )

    def test_a_huge_repetition_is_refused_before_it_is_built(self) -> None:
        with pytest.raises(RenderError, match="repetition"):
            self.render("{{ 'x' * 100000000 }}")

    def test_output_stops_at_the_size_limit(self) -> None:
        with pytest.raises(RenderError, match="longer than"):
            self.render("{% for i in range(20000) %}0123456789abcdefghij{% endfor %}")

    def test_ordinary_loops_render(self) -> None:
        assert self.render("{% for i in range(3) %}{{ i }}{% endfor %}") == "012"
