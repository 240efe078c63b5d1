"""Segment conditions, for any customer and condition hypothesis finds: `changes_at` never misses
a change, the combinators are the logic they say, and every condition survives its document."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.policy.vocabulary import Channel, Purpose
from domain.segments.conditions import (
    COMPARISONS,
    AllOf,
    AnyOf,
    AttributeIs,
    Condition,
    ConsentIs,
    ConsentStatus,
    HasIdentity,
    NoSignal,
    Not,
    Op,
    PropertyFilter,
    SegmentFacts,
    SignalCount,
    SignalFact,
    SignalSum,
    condition_document,
    decode_condition,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)
SIGNALS = ["order.placed", "app.opened"]
WINDOWS = ["12h", "1d", "3d", "1d12h"]
COMPARISON_OPS = sorted(COMPARISONS)

# Few distinct values, so that conditions and facts often meet.
numbers = st.sampled_from([0, 1, 2, 2.5, 10, -3, 0.1, 0.2, 0.3, 1e16, -1e16])
texts = st.sampled_from(["", "gold", "go", "FR", "2026-01-01"])
scalars = st.one_of(numbers, texts, st.booleans())
hours = st.integers(min_value=-24 * 4, max_value=24 * 1).map(lambda h: NOW + timedelta(hours=h))


@st.composite
def op_and_value(draw: st.DrawFn) -> tuple[Op, Any]:
    op = draw(st.sampled_from(list(Op)))
    if op in (Op.EXISTS, Op.NOT_EXISTS):
        return op, msgspec.UNSET
    if op in (Op.IN, Op.NOT_IN):
        kind = draw(st.sampled_from([numbers, texts, st.booleans()]))
        return op, tuple(draw(st.lists(kind, min_size=1, max_size=3)))
    if op == Op.STARTS_WITH:
        return op, draw(texts)
    if op in (Op.GT, Op.GTE, Op.LT, Op.LTE):
        return op, draw(st.one_of(numbers, texts))
    return op, draw(scalars)


@st.composite
def attributes(draw: st.DrawFn) -> AttributeIs:
    op, value = draw(op_and_value())
    return AttributeIs(name=draw(st.sampled_from(["tier", "orders", "vip"])), op=op, value=value)


@st.composite
def property_filters(draw: st.DrawFn) -> PropertyFilter:
    op, value = draw(op_and_value())
    path = draw(st.sampled_from(["total", "channel", "address.city", "tags"]))
    return PropertyFilter(property=path, op=op, value=value)


wheres = st.one_of(st.just(()), st.lists(property_filters(), min_size=1, max_size=2).map(tuple))
signals = st.sampled_from(SIGNALS)
windows = st.sampled_from(WINDOWS)
comparisons = st.sampled_from(COMPARISON_OPS)

counts = st.builds(
    SignalCount,
    signal=signals,
    within=windows,
    where=wheres,
    op=comparisons,
    value=st.integers(min_value=0, max_value=2),
)
sums = st.builds(
    SignalSum,
    signal=signals,
    property=st.just("total"),
    within=windows,
    where=wheres,
    op=comparisons,
    value=st.one_of(numbers.map(float), st.floats(-50, 50)),
)
absences = st.builds(NoSignal, signal=signals, for_=windows, where=wheres)
timed_leaves = st.one_of(counts, sums, absences)
leaves = st.one_of(
    timed_leaves,
    attributes(),
    st.builds(HasIdentity, identity_type=st.sampled_from(["email", "phone"])),
    st.builds(
        ConsentIs,
        channel=st.sampled_from([Channel.EMAIL, Channel.SMS]),
        purpose=st.just(Purpose.MARKETING),
        state=st.sampled_from(list(ConsentStatus)),
    ),
)


def trees(depth: int) -> st.SearchStrategy[Condition]:
    if depth == 1:
        return leaves
    children = trees(depth - 1)
    several = st.lists(children, min_size=1, max_size=3).map(tuple)
    return st.one_of(
        leaves,
        st.builds(AllOf, conditions=several),
        st.builds(AnyOf, conditions=several),
        st.builds(Not, condition=children),
    )


conditions = trees(4)

properties = st.fixed_dictionaries(
    {"total": st.one_of(numbers, numbers, texts, st.booleans(), st.none())},
    optional={
        "channel": texts,
        "address": st.one_of(st.fixed_dictionaries({"city": texts}), texts),
        "tags": st.lists(scalars, max_size=3),
    },
)
signal_facts = st.builds(SignalFact, occurred_at=hours, properties=properties)
facts = st.builds(
    SegmentFacts,
    attributes=st.dictionaries(st.sampled_from(["tier", "orders", "vip"]), scalars),
    identity_types=st.frozensets(st.sampled_from(["email", "phone", "crm_id"])),
    consents=st.dictionaries(
        st.tuples(st.sampled_from([Channel.EMAIL, Channel.SMS]), st.just(Purpose.MARKETING)),
        st.booleans(),
    ),
    signals=st.fixed_dictionaries({name: st.lists(signal_facts, max_size=6) for name in SIGNALS}),
    last_seen=st.dictionaries(signals, hours),
)


def later(draw: st.DrawFn, until: datetime) -> datetime:
    """An instant in [NOW, until)."""
    microseconds = (until - NOW) // timedelta(microseconds=1)
    return NOW + timedelta(microseconds=draw(st.integers(0, microseconds - 1)))


@settings(max_examples=200, deadline=None)
@given(conditions, facts, st.data())
def test_holds_does_not_change_before_changes_at(
    condition: Condition, customer: SegmentFacts, data: st.DataObject
) -> None:
    before = condition.holds(customer, NOW)
    change = condition.changes_at(customer, NOW)
    if change is None:
        moments = [NOW + timedelta(hours=h) for h in (1, 24, 24 * 45, 24 * 400)]
    else:
        assert change > NOW
        moments = [change - timedelta(microseconds=1)]
        moments += [later(data.draw, change) for _ in range(3)]
    for moment in moments:
        assert condition.holds(customer, moment) is before


@settings(max_examples=200, deadline=None)
@given(timed_leaves, facts)
def test_a_signal_condition_changes_exactly_at_changes_at(
    condition: SignalCount | SignalSum | NoSignal, customer: SegmentFacts
) -> None:
    change = condition.changes_at(customer, NOW)
    if change is not None:
        assert condition.holds(customer, change) is not condition.holds(customer, NOW)


@settings(max_examples=200, deadline=None)
@given(st.lists(conditions, min_size=1, max_size=3), facts, hours)
def test_combinators_are_the_logic_of_their_children(
    children: list[Condition], customer: SegmentFacts, now: datetime
) -> None:
    answers = [child.holds(customer, now) for child in children]

    assert AllOf(conditions=tuple(children)).holds(customer, now) is all(answers)
    assert AnyOf(conditions=tuple(children)).holds(customer, now) is any(answers)
    assert Not(condition=children[0]).holds(customer, now) is not answers[0]


@settings(max_examples=200, deadline=None)
@given(conditions)
def test_every_condition_reads_back_from_its_document(condition: Condition) -> None:
    document = condition_document(condition)

    assert decode_condition(document) == condition
    assert decode_condition(json.dumps(document)) == condition
