from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.inmemory.storage import InMemoryStorage
from adapters.inmemory.templates import InMemoryTemplates
from adapters.templates.jinja import MAX_OUTPUT, JinjaRenderer, JinjaTemplates, RenderBudget
from domain.policy.vocabulary import Channel
from domain.templates.aggregate import Template, Variant
from ports.templates import Content, RenderAsk, RenderedContent, RenderError, TemplateNotFound

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

    def test_a_field_without_template_syntax_is_sent_exactly_as_written(self) -> None:
        for text in ("News", "Price: 5 } # % \\ }} #}", "two\nlines\n", "  spaced  "):
            assert body(text) == text
            assert body("{{ customer.first_name }}: " + text) == "Ana: " + text
        assert body("one\r\ntwo") == "one\ntwo"  # Jinja2's line breaks, as before

    def test_a_field_without_template_syntax_still_has_the_size_limit(self) -> None:
        error = failure("x" * (MAX_OUTPUT + 1))
        assert (error.budget, error.limit) == ("size", MAX_OUTPUT)

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

    async def test_check_finds_syntax_errors_without_a_context(self) -> None:
        renderer = JinjaRenderer()
        await renderer.check("{{ anything.at.all }}")
        with pytest.raises(RenderError, match="line 1"):
            await renderer.check("{% if %}")

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
    repository = InMemoryTemplates(InMemoryStorage())
    template = Template.create("welcome", T0)
    template.publish(variants, default_locale, "", "ana", T0)
    repository.storage.events.save(template)
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
        repository.storage.events.save(template)
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

    async def test_inline_content_renders_without_a_template(self) -> None:
        templates = JinjaTemplates(InMemoryTemplates(InMemoryStorage()))
        rendered = await templates.render_inline(Content(body="Hi {{ customer.first_name }}"), ANA)
        assert rendered.content.body == "Hi Ana"
        assert rendered.template is None
        assert rendered.version is None

    async def test_many_are_rendered_at_once_each_as_alone_and_a_failure_answers_for_itself(
        self,
    ) -> None:
        templates = JinjaTemplates(
            await stored(
                Variant(Channel.SMS, "en", body="Hi {{ customer.first_name }}"),
                Variant(Channel.SMS, "pt", body="Olá {{ customer.first_name }}"),
            )
        )
        made = await templates.render_all(
            [
                RenderAsk(Channel.SMS, ANA, "welcome", "pt-BR"),
                RenderAsk(Channel.SMS, {"customer": {}}, "welcome", "en"),
                RenderAsk(Channel.SMS, ANA, "nobody", "en"),
                RenderAsk(Channel.PUSH, ANA, "welcome", "en"),
                RenderAsk(Channel.SMS, ANA, inline=Content(body="Yo {{ customer.first_name }}")),
                RenderAsk(Channel.SMS, {"customer": {"first_name": "Bo"}}, "welcome", "de"),
            ]
        )
        first, missing, nobody, no_push, inline, fallback = made
        assert isinstance(first, RenderedContent)
        assert (first.content.body, first.template, first.version, first.locale) == (
            "Olá Ana",
            "welcome",
            1,
            "pt",
        )
        assert isinstance(missing, RenderError)
        assert missing.variable == "customer.first_name"
        assert isinstance(nobody, TemplateNotFound)
        assert isinstance(no_push, TemplateNotFound)
        assert isinstance(inline, RenderedContent)
        assert (inline.content.body, inline.template) == ("Yo Ana", None)
        assert isinstance(fallback, RenderedContent)
        assert (fallback.content.body, fallback.locale) == ("Hi Bo", "en")


EVIL = "{% set s = 'x' * 4000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"


def spent(text: str, budget: RenderBudget | None = None, **context: Any) -> RenderError:
    renderer = JinjaRenderer(budget=budget)
    with pytest.raises(RenderError) as failed:
        renderer.render(Content(body=text), {"customer": {"first_name": "Ana"}, **context})
    return failed.value


class TestRenderBudgets:
    @pytest.mark.parametrize(
        "text",
        [
            EVIL,
            "{% for i in range(6000) %}{% for j in range(6000) %}{% endfor %}{% endfor %}",
            "{% for a in vars.rows %}{% for b in vars.rows %}{% endfor %}{% endfor %}",
            "{% for a in vars.rows %}{% for b in vars.rows if false %}{% endfor %}{% endfor %}",
            "{% macro row() %}{% for c in vars.rows %}{% endfor %}{% endmacro %}"
            "{% for a in vars.rows %}{{ row() }}{% endfor %}",
            "{% macro twice(n) %}{% if n %}{{ twice(n - 1) }}{{ twice(n - 1) }}{% endif %}"
            "{% endmacro %}{{ twice(40) }}",
            "{% for n in vars.tree recursive %}"
            "{% if loop.depth < 40 %}{{ loop(vars.tree) }}{% endif %}{% endfor %}",
            "{{ vars.long | select('odd') | list | length }}",
            "{{ vars.long | groupby('real') | length }}",
        ],
        ids=[
            "strings",
            "range",
            "lists",
            "lists-filtered-out",
            "macro-loop",
            "macro-recursion",
            "recursive-loop",
            "filter-testing-each-item",
            "filter-looking-up-each-item",
        ],
    )
    def test_nested_loops_and_calls_are_refused_naming_the_operations_budget(
        self, text: str
    ) -> None:
        # Time enough that the operations run out first, even on a loaded machine.
        budget = RenderBudget(operations=100_000, seconds=30)
        rows, long = list(range(1000)), list(range(120_000))
        error = spent(text, budget, vars={"rows": rows, "tree": [1, 2], "long": long})
        assert (error.budget, error.limit) == ("operations", 100_000)
        assert "100000 operations" in str(error)

    @pytest.mark.parametrize(
        "text",
        [
            "{{ 'x' * 100000000 }}",
            "{% set s = 'x' * 200000 %}{{ s + s }}",
            "{% set s = 'x' * 200000 %}{% set t = s ~ s %}",
            "{{ '%999999999d' % 1 }}",
            "{{ '%*d' % (999999999, 1) }}",
            "{{ '{:>999999999}'.format(1) }}",
            "{{ '{:>{w}}'.format(1, w=999999999) }}",
            "{{ 'x'.ljust(999999999) }}",
            "{{ 'x' | center(999999999) }}",
            "{% set s = 'x' * 1000 %}{{ s | replace('x', s) }}",
            "{% set s = 'x' * 1000 %}{{ s | join(s) }}",
            "{{ [1] | batch(999999999, 0) | list }}",
            "{% set s = 'x' * 1000 %}{% set rows = [s] * 1000 %}",
            "{% set s = 'x' * 200000 %}{{ [s, s] }}",
            "{% set s = 'x' * 200000 %}{{ {'a': s, 'b': s} }}",
            "{% set s = 'x' * 1000 %}{{ vars.rows | map('string') | join(s) }}",
            "{% set s = 'x' * 100000 %}{% macro m() %}{{ s }}{{ s }}{{ s }}{% endmacro %}{{ m() }}",
            "{% set s = 'x' * 100000 %}{% set t %}{{ s }}{{ s }}{{ s }}{% endset %}",
            "{% set s = 'x' * 100000 %}{% set ns = namespace(a=s) %}{% set ns.b = s %}"
            "{% set ns.c = s %}{{ ns }}",
        ],
    )
    def test_values_that_would_grow_past_the_size_limit_are_refused_unbuilt(
        self, text: str
    ) -> None:
        error = spent(text, vars={"rows": list(range(1000))})
        assert (error.budget, error.limit) == ("size", MAX_OUTPUT)

    def test_output_stops_at_the_size_limit(self) -> None:
        error = spent("{% for i in range(20000) %}0123456789abcdefghij{% endfor %}")
        assert (error.budget, error.limit) == ("size", MAX_OUTPUT)

    def test_a_slow_render_stops_itself_at_its_deadline_naming_the_time_budget(self) -> None:
        started = time.monotonic()
        error = spent(EVIL, RenderBudget(operations=10**9, seconds=0.05))
        assert (error.budget, error.limit) == ("seconds", 0.05)
        assert time.monotonic() - started < 0.5

    def test_a_context_longer_than_the_size_limit_is_refused(self) -> None:
        error = spent("{{ vars.text | sort }}", vars={"text": "x" * (MAX_OUTPUT + 1)})
        assert (error.budget, error.limit) == ("size", MAX_OUTPUT)
        assert "vars" in str(error)

    def test_numbers_cannot_grow_without_end(self) -> None:
        error = spent(
            "{% set ns = namespace(x=3) %}"
            "{% for i in range(40) %}{% set ns.x = ns.x * ns.x %}{% endfor %}"
        )
        assert "not allowed" in str(error)

    def test_endless_recursion_is_refused(self) -> None:
        # A time budget out of reach, so a loaded machine still meets the depth first.
        error = spent("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", RenderBudget(seconds=60))
        assert "nested too deeply" in str(error)

    def test_the_budget_is_configurable(self) -> None:
        text = "{% for i in range(20) %}{{ i }}{% endfor %}"
        error = spent(text, RenderBudget(operations=10))
        assert (error.budget, error.limit) == ("operations", 10)

    def test_one_budget_covers_every_field_of_a_content(self) -> None:
        loop = "{% for i in range(6) %}{% endfor %}"
        renderer = JinjaRenderer(budget=RenderBudget(operations=10))
        assert renderer.render(Content(body=loop), {}).body == ""
        with pytest.raises(RenderError) as failed:
            renderer.render(Content(subject=loop, body=loop), {})
        assert failed.value.budget == "operations"

    def test_an_ordinary_template_renders_within_the_budget(self) -> None:
        text = (
            "{% macro line(item) %}{{ item.sku | upper }} x{{ item.qty }}{% endmacro %}"
            "Hi {{ customer.first_name ~ '!' }} "
            "{% for item in vars.lines if item.qty %}{{ line(item) }}"
            "{% if not loop.last %}, {% endif %}{% endfor %}; "
            "{{ '%05.2f' % vars.total }} {{ '{:>6}'.format(vars.total) }} "
            "{{ vars.lines | map(attribute='sku') | join('/') }} {{ 'ab' * 2 }}"
        )
        lines = [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 0}, {"sku": "c", "qty": 2}]
        assert body(text, {**ANA, "vars": {"lines": lines, "total": 9.5}}) == (
            "Hi Ana! A x1, C x2; 09.50    9.5 a/b/c abab"
        )

    async def test_a_render_in_a_worker_leaves_the_event_loop_free(self) -> None:
        renderer = JinjaRenderer(budget=RenderBudget(operations=10**9, seconds=0.5))
        rendering = asyncio.ensure_future(renderer.render_in_worker(Content(body=EVIL), {}))
        gaps = []
        while not rendering.done():
            before = time.monotonic()
            await asyncio.sleep(0.005)
            gaps.append(time.monotonic() - before)
        with pytest.raises(RenderError, match="seconds"):
            await rendering
        assert len(gaps) > 10
        assert max(gaps) < 0.1, gaps
        renderer.close()

    async def test_the_time_budget_counts_the_renders_own_cpu_not_its_wait_for_the_cpu(
        self,
    ) -> None:
        # The event loop holds the GIL in C (a sort) for most of a second while a short render
        # waits for it: the render is not cut short, as a busy machine must not drop sends.
        renderer = JinjaRenderer(budget=RenderBudget(operations=10**9, seconds=0.1))
        draw = random.Random(0)
        shuffled = [draw.random() for _ in range(1_000_000)]  # each sort holds the GIL ~0.3 s
        try:
            rendering = asyncio.ensure_future(
                renderer.render_in_worker(
                    Content(body="{% for i in range(2000) %}{{ i }}{% endfor %}"), {}
                )
            )
            await asyncio.sleep(0)
            started = time.monotonic()
            while not rendering.done():
                sorted(shuffled)
                await asyncio.sleep(0)
            waited = time.monotonic() - started
            rendered = await rendering
        finally:
            renderer.close()
        assert rendered.body is not None
        assert rendered.body.startswith("0123")
        assert waited > 0.1  # longer than its budget, and it still rendered

    async def test_renders_many_in_one_trip_each_within_its_own_budget(self) -> None:
        renderer = JinjaRenderer(budget=RenderBudget(operations=50))
        loop = "{% for i in range(30) %}{% endfor %}"
        try:
            made = await renderer.render_all_in_worker(
                [
                    (Content(body=loop + "a"), {}),
                    (Content(body="{{ nobody }}"), {}),
                    (Content(body=loop + "b"), {}),
                    (Content(body=EVIL), {}),
                    (Content(body=loop + "c"), {}),
                ]
            )
        finally:
            renderer.close()
        assert [m.body if isinstance(m, Content) else None for m in made] == [
            "a",
            None,
            "b",
            None,
            "c",
        ]
        assert isinstance(made[1], RenderError)
        assert made[1].variable == "nobody"
        assert isinstance(made[3], RenderError)
        assert made[3].budget == "operations"


class TestPreviewsApartFromSends:
    async def test_a_send_is_rendered_while_a_costly_preview_runs(self) -> None:
        renderer = JinjaRenderer(budget=RenderBudget(operations=10**9, seconds=3))
        try:
            endless = EVIL.replace("4000", "40000")  # stopped by the 3 s, not finished
            preview = asyncio.create_task(
                renderer.render_in_worker(Content(body=endless), {}, preview=True)
            )
            await asyncio.sleep(0.05)
            started = time.monotonic()
            sent = await renderer.render_in_worker(Content(body="Hi {{ name }}"), {"name": "Ana"})
            waited = time.monotonic() - started
            assert sent.body == "Hi Ana"
            assert not preview.done()  # the send did not wait for the preview to end
            assert waited < 1
        finally:
            renderer.close()
        with pytest.raises(RenderError):
            await preview
