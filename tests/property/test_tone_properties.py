from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.policy.tone import (
    DEFAULT_TONES,
    ELLIPSIS,
    ChannelTone,
    Structure,
    count_links,
    has_emoji,
    shape,
)

words = st.sampled_from(
    [
        "hello",
        "refund",
        "card",
        "😀",
        "👍🏽",
        "❤️",
        "https://example.com/a",
        "www.bank.example",
        "see:",
        "done.",
        "\n\n",
        "\n",
        "  ",
        "a" * 40,
        "Ana",
    ]
)
texts = st.lists(words, max_size=80).map(" ".join) | st.text(max_size=400)
tones = st.builds(
    ChannelTone,
    max_length=st.integers(min_value=1, max_value=300),
    structure=st.sampled_from(Structure),
    emoji=st.booleans(),
    links=st.booleans(),
    max_links=st.none() | st.integers(min_value=0, max_value=3),
)


class TestShapingToAChannelsTone:
    @given(texts, tones)
    def test_a_shaped_text_is_never_over_the_channels_limit(
        self, text: str, tone: ChannelTone
    ) -> None:
        assert len(shape(text, tone).text) <= tone.max_length

    @given(texts, tones)
    def test_no_emoji_is_left_where_the_channel_bans_them(
        self, text: str, tone: ChannelTone
    ) -> None:
        if not tone.emoji:
            assert not has_emoji(shape(text, tone).text)

    @given(texts, tones)
    def test_no_more_links_are_left_than_the_channel_allows(
        self, text: str, tone: ChannelTone
    ) -> None:
        allowed = tone.links_allowed
        if allowed is not None:
            assert count_links(shape(text, tone).text) <= allowed

    @given(texts, tones)
    def test_shaping_a_shaped_text_changes_nothing(self, text: str, tone: ChannelTone) -> None:
        once = shape(text, tone)
        twice = shape(once.text, tone)
        assert twice.text == once.text
        assert twice.changes == ()

    @given(texts, tones)
    def test_a_one_paragraph_channel_gets_one_line(self, text: str, tone: ChannelTone) -> None:
        if tone.structure is Structure.ONE_PARAGRAPH:
            assert "\n" not in shape(text, tone).text

    @given(texts, tones)
    def test_a_cut_is_reported_and_ends_with_an_ellipsis(
        self, text: str, tone: ChannelTone
    ) -> None:
        shaped = shape(text, tone)
        if any(change.change == "cut" for change in shaped.changes):
            assert shaped.text.endswith(ELLIPSIS)


class TestTheDefaultTones:
    def test_sms_is_short_and_plain(self) -> None:
        shaped = shape("Hi Ana 👋\n\nYour refund is on its way. " * 30, DEFAULT_TONES["sms"])
        assert len(shaped.text) <= 320
        assert not has_emoji(shaped.text)
        assert [c.change for c in shaped.changes] == ["emoji_stripped", "collapsed", "cut"]

    def test_a_cut_falls_on_a_word_boundary(self) -> None:
        shaped = shape("one two three four five", ChannelTone(12))
        assert shaped.text == "one two…"

    def test_email_keeps_its_paragraphs(self) -> None:
        shaped = shape("Hi Ana,\n\nYour refund is on its way.", DEFAULT_TONES["email"])
        assert shaped == shape(shaped.text, DEFAULT_TONES["email"])
        assert shaped.text == "Hi Ana,\n\nYour refund is on its way."
        assert shaped.changes == ()
