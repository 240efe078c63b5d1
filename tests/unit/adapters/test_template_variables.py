"""Which variables of the context a template's text reads: what a suggestion says it used."""

from __future__ import annotations

from adapters.templates.jinja import JinjaRenderer


class TestVariablesReadByAText:
    def test_attribute_and_item_lookups_are_named_by_their_path(self) -> None:
        read = JinjaRenderer().read_by(
            "Hi {{ customer.first_name | default('there') }}, ETA {{ vars['eta'] }}"
        )
        assert read == {"customer.first_name", "vars.eta"}

    def test_a_loop_names_the_list_it_reads_not_its_items(self) -> None:
        read = JinjaRenderer().read_by("{% for line in vars.lines %}{{ line.sku }}{% endfor %}")
        assert read == {"vars.lines"}

    def test_a_root_read_whole_is_named_whole(self) -> None:
        assert JinjaRenderer().read_by("{{ customer }}") == {"customer"}

    def test_a_plain_text_reads_nothing_and_a_broken_one_reads_nothing_either(self) -> None:
        assert JinjaRenderer().read_by("Hello") == frozenset()
        assert JinjaRenderer().read_by("{% if %}") == frozenset()
