"""The `classified` segment condition, for any condition and classified messages hypothesis
finds: it counts what its filters say in its window, changes only at `changes_at`, survives its
document, and a bad field is refused at its JSON path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.customer.classified import CLASSIFIED_SIGNAL, URGENCIES, classified_properties
from domain.policy.vocabulary import Channel
from domain.segments.conditions import (
    COMPARISONS,
    Classified,
    ConditionInvalid,
    MessageSentiment,
    Op,
    SegmentFacts,
    SignalFact,
    UrgencyLevel,
    condition_document,
    decode_condition,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)
INTENTS = ["refund", "delivery", "unknown"]
CHANNELS = [Channel.EMAIL, Channel.WHATSAPP]
hours = st.integers(min_value=-24 * 4, max_value=24).map(lambda h: NOW + timedelta(hours=h))


def unset_or(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(msgspec.UNSET), values)


conditions = st.builds(
    Classified,
    within=st.sampled_from(["12h", "1d", "3d"]),
    intent=unset_or(st.sampled_from(INTENTS)),
    sentiment=unset_or(st.sampled_from(list(MessageSentiment))),
    min_urgency=unset_or(st.sampled_from(list(UrgencyLevel))),
    channel=unset_or(st.sampled_from(CHANNELS)),
    op=st.sampled_from(sorted(COMPARISONS)),
    value=st.integers(min_value=0, max_value=3),
)


@st.composite
def messages(draw: st.DrawFn) -> SignalFact:
    event = {
        "intent": draw(st.sampled_from(INTENTS)),
        "confidence": 0.9,
        "sentiment": draw(st.sampled_from(list(MessageSentiment))).value,
        "score": 0.0,
        "urgency": draw(st.sampled_from(list(UrgencyLevel))).value,
        "channel": draw(st.sampled_from(CHANNELS)).value,
    }
    return SignalFact(draw(hours), classified_properties(event))


facts = st.lists(messages(), max_size=8).map(
    lambda found: SegmentFacts(signals={CLASSIFIED_SIGNAL: found})
)


def counted(condition: Classified, known: SegmentFacts, now: datetime) -> int:
    """The count as the condition's document says it, read plainly."""
    start = now - condition.lookback
    found = 0
    for message in known.signals.get(CLASSIFIED_SIGNAL, ()):
        said = message.properties
        if not start < message.occurred_at <= now:
            continue
        if condition.intent is not msgspec.UNSET and said["intent"] != condition.intent:
            continue
        if condition.sentiment is not msgspec.UNSET and said["sentiment"] != condition.sentiment:
            continue
        if condition.channel is not msgspec.UNSET and said["channel"] != condition.channel:
            continue
        if (
            condition.min_urgency is not msgspec.UNSET
            and URGENCIES[said["urgency"]] < URGENCIES[condition.min_urgency]
        ):
            continue
        found += 1
    return found


_COMPARE = {
    Op.EQ: lambda a, b: a == b,
    Op.NE: lambda a, b: a != b,
    Op.GT: lambda a, b: a > b,
    Op.GTE: lambda a, b: a >= b,
    Op.LT: lambda a, b: a < b,
    Op.LTE: lambda a, b: a <= b,
}


@given(conditions, facts, hours)
def test_it_holds_when_the_count_of_matching_messages_compares(
    condition: Classified, known: SegmentFacts, now: datetime
) -> None:
    expected = _COMPARE[condition.op](counted(condition, known, now), condition.value)
    assert condition.holds(known, now) == expected


@given(conditions, facts, st.integers(min_value=1, max_value=24 * 6))
def test_it_changes_only_at_changes_at(
    condition: Classified, known: SegmentFacts, step_hours: int
) -> None:
    change = condition.changes_at(known, NOW)
    before = condition.holds(known, NOW)
    later = NOW + timedelta(hours=step_hours)
    if change is None or later < change:
        assert condition.holds(known, later) == before
    else:
        assert condition.holds(known, change) != before


@given(conditions)
def test_every_condition_reads_back_from_its_document(condition: Classified) -> None:
    document = condition_document(condition)
    assert decode_condition(document) == condition
    assert decode_condition(json.dumps(document)) == condition


@given(
    st.sampled_from(["sentiment", "min_urgency", "channel", "op", "within", "value", "intent"]),
    st.sampled_from(["furious", "", "soon", -1, 2.5, "30 days", "not a key!"]),
    st.integers(min_value=0, max_value=2),
)
def test_a_bad_field_is_refused_at_its_path(field: str, bad: Any, position: int) -> None:
    document: dict[str, Any] = {"type": "classified", "within": "30d", field: bad}
    try:
        decode_condition(document)
    except ConditionInvalid:
        pass
    else:
        return  # some values are good for some fields (`"soon"` is an intent)
    siblings: list[dict[str, Any]] = [{"type": "identity", "identity_type": "email"}] * position
    wrapped = {"type": "any", "conditions": [*siblings, document]}
    with pytest.raises(ConditionInvalid) as caught:
        decode_condition(wrapped)
    assert caught.value.path == f"$.conditions[{position}].{field}"
