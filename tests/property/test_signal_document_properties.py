from __future__ import annotations

import re

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from domain.customer.identities import IdentityNormalizer
from domain.signals.document import (
    NAME_PATTERN,
    TYPE_PATTERN,
    InvalidSignal,
    SignalReader,
    name_fault,
    type_fault,
)

# Ids as producers write them, and the characters that break them: whitespace of every kind,
# control characters, separators and format characters.
awkward = st.sampled_from(" \t\n\r\x00\x1f\x7f\x85\xa0\u2028\u200b\u3000\ufeff")
texts = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), awkward, st.sampled_from("az09-_.:")),
    min_size=1,
    max_size=40,
)


@given(texts)
def test_a_name_is_refused_exactly_when_it_does_not_match_the_documented_pattern(
    value: str,
) -> None:
    assert (name_fault(value) is None) == bool(re.fullmatch(NAME_PATTERN, value))


@given(texts)
def test_a_type_is_refused_exactly_when_it_does_not_match_the_documented_pattern(
    value: str,
) -> None:
    assert (type_fault(value) is None) == bool(re.fullmatch(TYPE_PATTERN, value))


@given(texts)
def test_a_signal_id_that_does_not_match_is_refused_on_its_field(value: str) -> None:
    signal = {
        "id": value,
        "type": "order.placed",
        "occurred_at": "2026-11-28T09:00:00Z",
        "identities": [{"type": "email", "value": "ana@example.org"}],
    }
    checked = SignalReader(IdentityNormalizer("GB")).read(0, msgspec.json.encode(signal))
    if re.fullmatch(NAME_PATTERN, value):
        assert not isinstance(checked, InvalidSignal)
    else:
        assert isinstance(checked, InvalidSignal)
        assert checked.field == "$.id"
