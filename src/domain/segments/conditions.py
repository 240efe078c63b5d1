"""The segment condition language: a JSON document checked by msgspec, evaluated purely.

A condition is a tree: `all`, `any` and `not` combine leaves about attributes, identities,
consents, signals and classified messages in time windows. Evaluation sees only `SegmentFacts` and `now`, and each
condition also says when, with no new facts, its answer could next change (`changes_at`), so
a scheduler can re-evaluate a customer exactly when a signal leaves or enters a window.
"""

from __future__ import annotations

import builtins
import math
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from typing import Annotated, Any, TypeAlias

import msgspec

from domain.assistant.classification import UNKNOWN_INTENT
from domain.assistant.intents import canonical_intent, check_intents
from domain.customer.classified import CLASSIFIED_SIGNAL, URGENCIES
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.counts import count_fault
from domain.shared.documents import DocumentInvalid, DocumentReader, Tagged, document_of
from domain.shared.durations import DurationText, format_duration, parse_duration
from domain.shared.errors import InvalidValue

__all__ = [
    "COMPARISONS",
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "MAX_WINDOW",
    "AllOf",
    "AnyOf",
    "AttributeIs",
    "Classified",
    "Condition",
    "ConditionInvalid",
    "ConsentIs",
    "ConsentStatus",
    "HasIdentity",
    "MessageSentiment",
    "NoSignal",
    "Not",
    "Op",
    "PropertyFilter",
    "Scalar",
    "SegmentFacts",
    "SignalCount",
    "SignalFact",
    "SignalSum",
    "UrgencyLevel",
    "Value",
    "check_counts",
    "check_size",
    "condition_document",
    "count_conditions",
    "decode_condition",
]

MAX_DEPTH = 8
"""Levels in a condition tree, the top-level condition being the first."""
MAX_CONDITIONS = 100
"""Leaf conditions (all but `all`, `any` and `not`) in one tree."""
MAX_WINDOW = timedelta(days=3650)


class Op(StrEnum):
    """How a value is compared with the one a condition gives."""

    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"


COMPARISONS = frozenset({Op.EQ, Op.NE, Op.GT, Op.GTE, Op.LT, Op.LTE})
"""The ops a count or a sum can be compared with."""


class ConsentStatus(StrEnum):
    """A consent as last recorded; unknown when none ever was."""

    GRANTED = "granted"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


Scalar: TypeAlias = str | int | float | bool
Value: TypeAlias = Scalar | tuple[Scalar, ...]

AttributeName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
PropertyPath = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=200,
        description="A property of the signal; dots reach into nested objects: address.city.",
    ),
]
SignalType = Annotated[
    str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:?-]+$")
]
IdentityType = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
Duration = Annotated[DurationText, msgspec.Meta(examples=["30d", "24h", "1h30m"])]
Count = Annotated[int, msgspec.Meta(ge=0)]


# --- facts -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignalFact:
    """One signal of the customer, as conditions see it."""

    occurred_at: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SegmentFacts:
    """Everything a condition may look at for one customer.

    `attributes` are the custom attributes merged with the profile fields (the profile wins);
    `consents` hold True for granted and False for revoked, and lack what was never recorded;
    `signals` hold, by type, at least the signals within the condition's `lookback` of now, in
    any order; `last_seen` holds the latest `occurred_at` of each type over all history.
    """

    attributes: Mapping[str, Any] = field(default_factory=dict)
    identity_types: frozenset[str] = frozenset()
    consents: Mapping[tuple[Channel, Purpose], bool] = field(default_factory=dict)
    signals: Mapping[str, Sequence[SignalFact]] = field(default_factory=dict)
    last_seen: Mapping[str, datetime] = field(default_factory=dict)


# --- the language ------------------------------------------------------------------------------


class _Node(Tagged, frozen=True, kw_only=True):
    """What every condition can answer."""

    def holds(self, facts: SegmentFacts, now: datetime) -> bool:
        """Whether the customer described by `facts` meets the condition at `now`."""
        raise NotImplementedError

    def changes_at(self, facts: SegmentFacts, now: datetime) -> datetime | None:
        """The earliest moment after `now` at which `holds` could change with the same facts."""
        return _earliest(child.changes_at(facts, now) for child in self.children)

    @property
    def children(self) -> tuple[Condition, ...]:
        """The conditions this one combines; none for a leaf."""
        return ()

    @property
    def signal_types(self) -> frozenset[str]:
        """The signal types the condition looks at."""
        return frozenset().union(*(child.signal_types for child in self.children))

    @property
    def lookback(self) -> timedelta:
        """How far back `SegmentFacts.signals` must reach for the condition to be right."""
        return max((child.lookback for child in self.children), default=timedelta(0))


class AllOf(_Node, tag="all", frozen=True, kw_only=True):
    """Holds when every one of its conditions holds."""

    conditions: Annotated[tuple[Condition, ...], msgspec.Meta(min_length=1)]

    def __post_init__(self) -> None:
        _check_combination(self)

    @property
    def children(self) -> tuple[Condition, ...]:
        return self.conditions

    def holds(self, facts: SegmentFacts, now: datetime) -> bool:
        return all(condition.holds(facts, now) for condition in self.conditions)


class AnyOf(_Node, tag="any", frozen=True, kw_only=True):
    """Holds when at least one of its conditions holds."""

    conditions: Annotated[tuple[Condition, ...], msgspec.Meta(min_length=1)]

    def __post_init__(self) -> None:
        _check_combination(self)

    @property
    def children(self) -> tuple[Condition, ...]:
        return self.conditions

    def holds(self, facts: SegmentFacts, now: datetime) -> bool:
        return any(condition.holds(facts, now) for condition in self.conditions)


class Not(_Node, tag="not", frozen=True, kw_only=True):
    """Holds when its condition does not."""

    condition: Condition

    def __post_init__(self) -> None:
        _check_depth(self)

    @property
    def children(self) -> tuple[Condition, ...]:
        return (self.condition,)

    def holds(self, facts: SegmentFacts, now: datetime) -> bool:
        return not self.condition.holds(facts, now)


class AttributeIs(_Node, tag="attribute", frozen=True, kw_only=True):
    """Compares an attribute: a custom attribute or a profile field (first_name, country...)."""

    name: AttributeName
    op: Op
    value: Value | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        _check_operand(self.op, self.value)

    def holds(self, facts: SegmentFacts, now: datetime) -> bool:
        return _matches(self.op, facts.attributes.get(self.name), self.value)


class HasIdentity(_Node, tag="identity", frozen=True, kw_only=True):
    """Holds when the customer has at least one identity of the type (email, phone, ...)."""

    identity_type: IdentityType

    def holds(self, facts: SegmentFacts, now: datetime) -> bool:
        return self.identity_type in facts.identity_types


class ConsentIs(_Node, tag="consent", frozen=True, kw_only=True):
    """Holds when the consent for a channel and purpose is as last recorded, or unknown."""

    channel: Channel
    purpose: Purpose
    state: ConsentStatus

    def holds(self, facts: SegmentFacts, now: datetime) -> bool:
        granted = facts.consents.get((self.channel, self.purpose))
        if granted is None:
            return self.state == ConsentStatus.UNKNOWN
        return self.state == (ConsentStatus.GRANTED if granted else ConsentStatus.REVOKED)


class PropertyFilter(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which signals count: a property compared as an attribute is."""

    property: PropertyPath
    op: Op
    value: Value | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        _check_operand(self.op, self.value)

    def matches(self, properties: Mapping[str, Any]) -> bool:
        """Whether a signal with these properties passes the filter."""
        return _matches(self.op, _lookup(properties, self.property), self.value)


Filters = tuple[PropertyFilter, ...]


class SignalCount(_Node, tag="signal_count", frozen=True, kw_only=True):
    """Compares how many matching signals occurred in the last `within`."""

    signal: SignalType
    within: Duration
    where: Filters = ()
    op: Op
    value: Count

    def __post_init__(self) -> None:
        _check_window("within", self.within)
        _check_comparison(self.op)
        if self.value < 0:
            raise InvalidValue("value", "a count is never negative")

    @property
    def window(self) -> timedelta:
        """`within` as a span of time."""
        return _span(self.within)

    @property
    def signal_types(self) -> frozenset[str]:
        return frozenset((self.signal,))

    @property
    def lookback(self) -> timedelta:
        return self.window

    def holds(self, facts: SegmentFacts, now: datetime) -> bool:
        start = now - self.window
        found = sum(1 for at in _moments(facts, self.signal, self.where) if start < at <= now)
        return _compare(self.op, found, self.value)

    def changes_at(self, facts: SegmentFacts, now: datetime) -> datetime | None:
        moments = ((at, 1) for at in _moments(facts, self.signal, self.where))
        return _first_change(moments, self.window, now, self._meets)

    def _meets(self, count: Fraction | int) -> bool:
        return _compare(self.op, count, self.value)


class SignalSum(_Node, tag="signal_sum", frozen=True, kw_only=True):
    """Compares the sum of a numeric property over matching signals in the last `within`."""

    signal: SignalType
    property: PropertyPath
    within: Duration
    where: Filters = ()
    op: Op
    value: float

    def __post_init__(self) -> None:
        _check_window("within", self.within)
        _check_comparison(self.op)
        if not math.isfinite(self.value):
            raise InvalidValue("value", "must be a finite number")

    @builtins.property  # `property` is a field here
    def window(self) -> timedelta:
        """`within` as a span of time."""
        return _span(self.within)

    @builtins.property
    def signal_types(self) -> frozenset[str]:
        return frozenset((self.signal,))

    @builtins.property
    def lookback(self) -> timedelta:
        return self.window

    def holds(self, facts: SegmentFacts, now: datetime) -> bool:
        start = now - self.window
        amounts = [amount for at, amount in self._amounts(facts) if start < at <= now]
        return _compare(self.op, _sum(amounts), self.value)

    def changes_at(self, facts: SegmentFacts, now: datetime) -> datetime | None:
        # Whole numbers stay ints (exact and fast); others become exact Fractions.
        moments = (
            (at, amount if isinstance(amount, int) else Fraction(amount))
            for at, amount in self._amounts(facts)
        )
        return _first_change(moments, self.window, now, self._meets)

    def _meets(self, total: Fraction | int) -> bool:
        return _compare(self.op, _as_float(total), self.value)

    def _amounts(self, facts: SegmentFacts) -> Iterable[tuple[datetime, int | float]]:
        for signal in facts.signals.get(self.signal, ()):
            if all(where.matches(signal.properties) for where in self.where):
                amount = _lookup(signal.properties, self.property)
                if _kind(amount) == "number" and math.isfinite(amount):
                    yield signal.occurred_at, amount


class NoSignal(_Node, tag="no_signal", frozen=True, kw_only=True):
    """Holds when no matching signal occurred in the last `for`, or ever."""

    signal: SignalType
    for_: Duration = msgspec.field(name="for")
    where: Filters = ()

    def __post_init__(self) -> None:
        _check_window("for", self.for_)

    @property
    def window(self) -> timedelta:
        """`for` as a span of time."""
        return _span(self.for_)

    @property
    def signal_types(self) -> frozenset[str]:
        return frozenset((self.signal,))

    @property
    def lookback(self) -> timedelta:
        # Without a filter, `last_seen` answers on its own.
        return self.window if self.where else timedelta(0)

    def holds(self, facts: SegmentFacts, now: datetime) -> bool:
        start = now - self.window
        return not any(start < at <= now for at in self._moments(facts))

    def changes_at(self, facts: SegmentFacts, now: datetime) -> datetime | None:
        moments = ((at, 1) for at in self._moments(facts))
        return _first_change(moments, self.window, now, _is_zero)

    def _moments(self, facts: SegmentFacts) -> Iterable[datetime]:
        yield from _moments(facts, self.signal, self.where)
        if not self.where:
            last = facts.last_seen.get(self.signal)
            if last is not None:
                yield last


class UrgencyLevel(StrEnum):
    """How soon a person should look at a message, from `low` to `critical`."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class MessageSentiment(StrEnum):
    """The tone the classifier read in a message."""

    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


IntentName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:?-]+$")
]


class Classified(_Node, tag="classified", frozen=True, kw_only=True):
    """Compares how many of the customer's messages, classified as the filters say (intent,
    sentiment, urgency at least `min_urgency`, channel), arrived in the last `within`; by
    default, whether at least one did. Counted as `signal_count` counts signals, over the
    customer's classified messages (`CLASSIFIED_SIGNAL`)."""

    within: Duration
    intent: IntentName | msgspec.UnsetType = msgspec.UNSET
    sentiment: MessageSentiment | msgspec.UnsetType = msgspec.UNSET
    min_urgency: UrgencyLevel | msgspec.UnsetType = msgspec.UNSET
    channel: Channel | msgspec.UnsetType = msgspec.UNSET
    op: Op = Op.GTE
    value: Count = 1

    def __post_init__(self) -> None:
        _check_window("within", self.within)
        _check_comparison(self.op)
        if self.value < 0:
            raise InvalidValue("value", "a count is never negative")
        if not isinstance(self.intent, msgspec.UnsetType) and self.intent != UNKNOWN_INTENT:
            try:  # `unknown` counts the messages no intent could be told of
                check_intents((self.intent,))
            except InvalidValue as unknown:
                raise InvalidValue("intent", unknown.reason) from None

    @property
    def counted(self) -> SignalCount:
        """The same count, as a `signal_count` over the classified messages."""
        return _counted(self)

    @property
    def signal_types(self) -> frozenset[str]:
        return frozenset((CLASSIFIED_SIGNAL,))

    @property
    def lookback(self) -> timedelta:
        return _span(self.within)

    def holds(self, facts: SegmentFacts, now: datetime) -> bool:
        return self.counted.holds(facts, now)

    def changes_at(self, facts: SegmentFacts, now: datetime) -> datetime | None:
        return self.counted.changes_at(facts, now)


@lru_cache(maxsize=1024)
def _counted(condition: Classified) -> SignalCount:
    """A `classified` condition as the `signal_count` it is, built once per condition."""
    where: list[PropertyFilter] = []
    if not isinstance(condition.intent, msgspec.UnsetType):
        where.append(
            PropertyFilter(property="intent", op=Op.EQ, value=canonical_intent(condition.intent))
        )
    if not isinstance(condition.sentiment, msgspec.UnsetType):
        where.append(PropertyFilter(property="sentiment", op=Op.EQ, value=str(condition.sentiment)))
    if not isinstance(condition.min_urgency, msgspec.UnsetType):
        rank = URGENCIES[str(condition.min_urgency)]
        where.append(PropertyFilter(property="urgency_rank", op=Op.GTE, value=rank))
    if not isinstance(condition.channel, msgspec.UnsetType):
        where.append(PropertyFilter(property="channel", op=Op.EQ, value=str(condition.channel)))
    return SignalCount(
        signal=CLASSIFIED_SIGNAL,
        within=condition.within,
        where=tuple(where),
        op=condition.op,
        value=condition.value,
    )


Condition: TypeAlias = (
    AllOf
    | AnyOf
    | Not
    | AttributeIs
    | HasIdentity
    | ConsentIs
    | SignalCount
    | SignalSum
    | NoSignal
    | Classified
)
"""Any condition; `msgspec.convert(document, Condition)` reads one by its `type`."""


# --- documents ---------------------------------------------------------------------------------


class ConditionInvalid(DocumentInvalid):
    """A condition document that cannot be used: where (a JSON path such as `$.conditions[0].op`)
    and why."""


_reader: DocumentReader[Condition] = DocumentReader(
    Condition,
    ConditionInvalid,
    noun="condition",
    parts=(PropertyFilter,),
    enums={
        "op": Op,
        "channel": Channel,
        "purpose": Purpose,
        "state": ConsentStatus,
        "sentiment": MessageSentiment,
        "min_urgency": UrgencyLevel,
    },
)


def decode_condition(document: bytes | str | Mapping[str, Any]) -> Condition:
    """Reads a condition from JSON text or from decoded JSON, checking it whole."""
    condition = _reader.read(document)
    check_size(condition)
    check_counts(condition)
    return condition


def check_size(condition: Condition) -> None:
    """Refuses a tree with more leaf conditions than `MAX_CONDITIONS`; msgspec checks the rest."""
    count = count_conditions(condition)
    if count > MAX_CONDITIONS:
        raise ConditionInvalid(
            "$", f"{count} conditions, but at most {MAX_CONDITIONS} may be combined"
        )


def check_counts(condition: Condition) -> None:
    """Refuses a count to compare with (`signal_count`, `classified`) beyond
    `domain.shared.counts.MAX_COUNT`, by its path in the tree; stored conditions are read
    without this check."""
    for path, reason in _count_faults(condition, "$"):
        raise ConditionInvalid(path, reason)


def _count_faults(condition: Condition, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(condition, AllOf | AnyOf):
        for i, child in enumerate(condition.conditions):
            yield from _count_faults(child, f"{path}.conditions[{i}]")
    elif isinstance(condition, Not):
        yield from _count_faults(condition.condition, f"{path}.condition")
    elif isinstance(condition, SignalCount | Classified):
        reason = count_fault(condition.value)
        if reason is not None:
            yield f"{path}.value", reason


def count_conditions(condition: Condition) -> int:
    """The leaf conditions of a tree, not counting `all`, `any` and `not`."""
    children = condition.children
    return sum(count_conditions(child) for child in children) if children else 1


def condition_document(condition: Condition) -> dict[str, Any]:
    """The JSON document `decode_condition` reads back as `condition`."""
    return document_of(condition)


# --- checks ------------------------------------------------------------------------------------


def _check_combination(node: AllOf | AnyOf) -> None:
    if not node.conditions:
        raise InvalidValue("conditions", "needs at least one condition")
    _check_depth(node)


def _check_depth(node: _Node) -> None:
    depth = _depth(node)
    if depth > MAX_DEPTH:
        raise ValueError(f"conditions nest {depth} levels deep, but at most {MAX_DEPTH} may")


def _depth(node: _Node) -> int:
    return 1 + max((_depth(child) for child in node.children), default=0)


def _check_window(name: str, text: str) -> None:
    try:
        span = parse_duration(text)
    except ValueError as error:
        raise InvalidValue(name, str(error)) from None
    if span <= timedelta(0):
        raise InvalidValue(name, f"{text!r} is no time at all: a window must be longer than zero")
    if span > MAX_WINDOW:
        raise InvalidValue(name, f"{text!r} is longer than {format_duration(MAX_WINDOW)}")


def _check_comparison(op: Op) -> None:
    if op not in COMPARISONS:
        raise InvalidValue("op", f"'{op}' cannot compare numbers: use {_listed(COMPARISONS)}")


def _check_operand(op: Op, value: Value | msgspec.UnsetType) -> None:
    if op not in _OPS:
        raise InvalidValue("op", f"'{op}' is not one of {_listed(Op)}")
    if op in (Op.EXISTS, Op.NOT_EXISTS):
        if not isinstance(value, msgspec.UnsetType):
            raise InvalidValue("value", f"{op} takes no value")
        return
    if isinstance(value, msgspec.UnsetType):
        raise InvalidValue("value", f"{op} needs a value to compare with")
    if op in (Op.IN, Op.NOT_IN):
        if not isinstance(value, tuple):
            raise InvalidValue("value", f"{op} needs a list of values")
        if not value:
            raise InvalidValue("value", f"{op} needs at least one value in the list")
        if len({_kind(item) for item in value}) > 1:
            raise InvalidValue(
                "value", "a list must hold values of one type: text, numbers or booleans"
            )
        for item in value:
            _check_scalar(item)
        return
    if isinstance(value, tuple):
        raise InvalidValue("value", f"a list is only for in and not_in, not for {op}")
    _check_scalar(value)
    if op == Op.STARTS_WITH and not isinstance(value, str):
        raise InvalidValue("value", "starts_with needs text")
    if op in _ORDERINGS and isinstance(value, bool):
        raise InvalidValue("value", f"true and false compare only with eq and ne, not {op}")


def _check_scalar(value: Scalar) -> None:
    if _kind(value) is None:
        raise InvalidValue("value", f"{value!r} is not text, a number or a boolean")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue("value", "must be a finite number")


def _listed(ops: Iterable[Op]) -> str:
    return ", ".join(str(op) for op in Op if op in set(ops))


# --- evaluation --------------------------------------------------------------------------------

_OPS = frozenset(Op)
_ORDERINGS = frozenset({Op.GT, Op.GTE, Op.LT, Op.LTE})
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.GT: operator.gt,
    Op.GTE: operator.ge,
    Op.LT: operator.lt,
    Op.LTE: operator.le,
}


def _kind(value: Any) -> str | None:
    """Which values compare with which: booleans, numbers and text apart; nothing else."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "str"
    return None


def _matches(op: Op, actual: Any, expected: Value | msgspec.UnsetType) -> bool:
    """`actual op expected`, false whenever their types do not compare; None is absent."""
    if op == Op.EXISTS:
        return actual is not None
    if op == Op.NOT_EXISTS:
        return actual is None
    if isinstance(expected, msgspec.UnsetType):
        return False
    if op == Op.CONTAINS:
        if isinstance(actual, str):
            return isinstance(expected, str) and expected in actual
        if isinstance(actual, list | tuple):
            return any(_same(item, expected) for item in actual)
        return False
    kind = _kind(actual)
    if kind is None:
        return False
    if isinstance(expected, tuple):
        if kind != _kind(expected[0]):
            return False
        found = any(actual == item for item in expected)
        return found if op == Op.IN else not found
    if kind != _kind(expected):
        return False
    if op == Op.STARTS_WITH:
        return bool(actual.startswith(expected))
    return _compare(op, actual, expected)


def _same(actual: Any, expected: Value) -> bool:
    kind = _kind(actual)
    return kind is not None and kind == _kind(expected) and bool(actual == expected)


def _compare(op: Op, actual: Any, expected: Any) -> bool:
    return _COMPARE[op](actual, expected)


def _lookup(properties: Mapping[str, Any], path: str) -> Any:
    """A property by name or, failing that, by a dotted path into nested objects."""
    if path in properties:
        return properties[path]
    node: Any = properties
    for step in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(step)
    return node


def _moments(facts: SegmentFacts, signal: str, where: Filters) -> Iterable[datetime]:
    for fact in facts.signals.get(signal, ()):
        if all(condition.matches(fact.properties) for condition in where):
            yield fact.occurred_at


def _sum(amounts: list[int | float]) -> float:
    """The exact sum, rounded once: the same whatever the order, as `_as_float` of a Fraction."""
    try:
        return math.fsum(amounts)
    except OverflowError:
        return _as_float(sum(map(Fraction, amounts), Fraction(0)))


def _as_float(total: Fraction | int) -> float:
    try:
        return float(total)
    except OverflowError:
        return math.inf if total > 0 else -math.inf


def _is_zero(count: Fraction | int) -> bool:
    return count == 0


def _first_change(
    moments: Iterable[tuple[datetime, Fraction | int]],
    window: timedelta,
    now: datetime,
    meets: Callable[[Fraction | int], bool],
) -> datetime | None:
    """When the total of what lies in the window (`(at - window, at]`) first stops or starts
    meeting `meets`, after `now`; a moment enters the window at `at`, leaves at `at + window`."""
    total: Fraction | int = 0
    steps: defaultdict[datetime, Fraction | int] = defaultdict(int)
    for at, weight in moments:
        leaves = _later(at, window)
        if at > now:
            steps[at] += weight
        elif leaves is None or leaves > now:
            total += weight
        else:
            continue
        if leaves is not None:
            steps[leaves] -= weight
    before = meets(total)
    for at in sorted(steps):
        total += steps[at]
        if meets(total) != before:
            return at
    return None


def _later(at: datetime, span: timedelta) -> datetime | None:
    try:
        return at + span
    except OverflowError:
        return None


def _earliest(moments: Iterable[datetime | None]) -> datetime | None:
    return min((at for at in moments if at is not None), default=None)


@lru_cache(maxsize=4096)
def _span(text: str) -> timedelta:
    return parse_duration(text)
