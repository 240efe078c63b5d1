"""Reads a journey document and checks it whole, naming the JSON path of every fault.

Every fault it can find is reported at once. The schema (types, unknown or missing fields) is
checked part by part: each step on its own (a fault in a step is named by its id,
`$.steps.welcome.channels[0]`), and within a step or a part each field on its own, so that
a step with a broken field still has its other fields checked, and a broken step does not hide
the faults of the others. A number JSON cannot hold as a finite value (`1e400`) is named by
its path too. Then the checks that need the whole journey, and what the caller knows (the
template keys and segment keys that exist), run over the steps that could be read: an unknown
template or segment, a step that cannot be reached (from the start, or from a step a new
version's migration moves enrolled customers to), a loop with no wait in it, a send with no
channel, a step named that does not exist, bad weights, numbers out of range, and the like. A
step that could not be read still leads where its document says, so the steps after it are not
called unreachable. A step or part with a faulty field is checked too, that field standing in
with a value of its type (`_repaired`): no fault is named at or under a stand-in, nor one of a
check across a part's fields of which one is a stand-in.
"""

from __future__ import annotations

import enum
import json
import math
import re
import types
import typing
from collections.abc import Collection, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Self, TypeVar

import msgspec

from domain.campaign.journey import (
    STEP_ID_PATTERN,
    Arm,
    Branch,
    Case,
    Control,
    Entry,
    Every,
    Fallback,
    Goal,
    Journey,
    NotDelivered,
    OnApi,
    OnSchedule,
    Policies,
    ReEntry,
    Response,
    ResponseIs,
    Send,
    Split,
    Step,
    Update,
    Wait,
    WaitForSignal,
)
from domain.campaign.local_time import DAY_NAMES, is_time_zone, parse_time_of_day
from domain.customer.profile import PROFILE_FIELDS, Profile, check_attributes
from domain.policy.vocabulary import Channel, Purpose
from domain.segments.conditions import (
    Condition,
    ConditionInvalid,
    Op,
    PropertyFilter,
    check_counts,
    check_size,
)
from domain.shared.counts import MAX_COUNT, count_fault
from domain.shared.documents import DocumentInvalid, DocumentReader, document_of
from domain.shared.durations import parse_duration
from domain.shared.errors import InvalidValue
from domain.shared.times import time_fault
from domain.triggers.definition import OnSegmentEntered

__all__ = [
    "MAX_COUNT",
    "MAX_PRIORITY",
    "MAX_SPAN",
    "MAX_STEPS",
    "MAX_WEIGHT",
    "JourneyFault",
    "JourneyInvalid",
    "decode_journey",
    "decode_part",
    "journey_document",
    "read_part",
    "under_faults",
]

MAX_STEPS = 200
"""Steps in one journey."""
MAX_PRIORITY = 100
"""A send's priority is 0 to this, as a send request's."""
MAX_WEIGHT = 1_000_000
"""A split arm's weight, at most."""
MAX_SPAN = timedelta(days=3650)
"""A wait, timeout, window or cool-down, at most: ten years, so that a timer set from any
moment of the journey is still a date."""

_STEP_ID = re.compile(STEP_ID_PATTERN)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class JourneyFault:
    """One fault in a journey document: where (a JSON path) and why."""

    path: str
    reason: str


class JourneyInvalid(DocumentInvalid):
    """A journey that cannot be used, with every fault found; `path` and `reason` are the first."""

    def __init__(self, path: str, reason: str, *more: JourneyFault) -> None:
        super().__init__(path, reason)
        self.faults = (JourneyFault(path, reason), *more)
        if more:
            self.args = ("; ".join(f"{f.path}: {f.reason}" for f in self.faults),)

    @classmethod
    def of(cls, faults: list[JourneyFault]) -> Self:
        first, *more = faults
        return cls(first.path, first.reason, *more)


# --- the schema --------------------------------------------------------------------------------

_CONDITION_TAGS = ", ".join(str(kind.__struct_config__.tag) for kind in typing.get_args(Condition))
_ENTRY_TAGS = "signal, segment_entered, schedule, api"
_ENUMS: dict[str, Any] = {
    "op": Op,
    "channel": Channel,
    "channels": Channel,
    "purpose": Purpose,
    "is": Response,
    "re_entry": ReEntry,
    "every": Every,
}
_BAD_TAG = re.compile(r"^Invalid value (?P<value>'[^']*'|-?\d+)$")
_IN_CONDITION = re.compile(r"\.condition(\.|$)|\.conditions\[")


class _Reader(DocumentReader[Any]):
    """A `DocumentReader` that also tells condition and entry types from step types, and
    names the enum of a list's item."""

    def explain(self, message: str) -> tuple[str, str]:
        reason, at, path = message.rpartition(" - at `")
        path = path.removesuffix("`") if at else "$"
        bad_tag = _BAD_TAG.match(reason)
        if bad_tag and path.endswith(".type"):
            value = bad_tag.group("value")
            if _IN_CONDITION.search(path):
                return path, f"{value} is not a condition type: use {_CONDITION_TAGS}"
            if path == "$.entry.type":
                return path, f"{value} is not an entry type: use {_ENTRY_TAGS}"
        path, reason = super().explain(message)
        listed = re.fullmatch(r"(?P<field>\w+)\[\d+\]", path.rpartition(".")[2])
        enum = _ENUMS.get(listed.group("field")) if listed else None
        value = re.match(r"^Invalid enum value (?P<value>'[^']*'|-?\d+)$", reason)
        if enum is not None and value is not None:
            return path, f"{value.group('value')} is not one of {', '.join(map(str, enum))}"
        return path, reason


_PARTS = (
    Fallback,
    NotDelivered,
    Case,
    ResponseIs,
    Arm,
    Control,
    PropertyFilter,
    *typing.get_args(Condition),
)
_steps = _Reader(Step, JourneyInvalid, noun="step", parts=_PARTS, enums=_ENUMS)
_journey = _Reader(
    Journey,
    JourneyInvalid,
    noun="step",
    parts=(Journey, Goal, Policies, OnSchedule, *_PARTS),
    enums=_ENUMS,
)


def decode_journey(
    document: bytes | str | Mapping[str, Any],
    *,
    templates: Set[str],
    segments: Set[str],
    entries: Set[str] = frozenset(),
    refused: Sequence[JourneyFault] = (),
) -> Journey:
    """Reads a journey from JSON text or decoded JSON and checks it whole against the template
    keys and segment keys that exist; raises `JourneyInvalid` naming every fault's path.

    `entries` are steps customers arrive at other than from the start: the steps a new
    version's migration moves enrolled customers to. They count as reached. `refused` are
    faults the caller found in the document (a control character in a string): named first,
    and no other fault is named at or under their paths, the rest checked as ever."""
    raw = _builtins(document)
    faults = [*refused, *_non_finite(raw, "$")]
    steps = raw.get("steps")
    if isinstance(steps, Mapping) and len(steps) > MAX_STEPS:
        raise JourneyInvalid("$.steps", f"{len(steps)} steps, but at most {MAX_STEPS}")
    read: dict[str, Step] = {}
    broken: dict[str, frozenset[str] | None] = {}
    if isinstance(steps, Mapping):
        for step_id, step in steps.items():
            found = list(_value_faults(step, Step, f"$.steps.{step_id}"))
            if not found:
                read[step_id] = _steps.read(step)
                continue
            faults.extend(found)
            fixed = _repaired(step, Step) if _known_tag(step, Step) else _UNREAD
            if fixed is not _UNREAD:
                read[step_id] = msgspec.convert(fixed, Step)
            else:
                broken[step_id] = frozenset(_raw_exits(step)) if isinstance(step, Mapping) else None
    rest = {name: value for name, value in raw.items() if name != "steps"}
    top = list(_struct_faults(rest, Journey, "$", skip=frozenset({"steps"})))
    faults.extend(top)
    if "steps" not in raw:
        faults.append(JourneyFault("$.steps", "required field is missing"))
    elif not isinstance(steps, Mapping):
        faults.extend(_value_faults(steps, dict[str, Step], "$.steps"))
    if not faults:
        journey: Journey = _journey.read(raw)
        if not (found := list(_Checks(journey, templates, segments, entries).faults())):
            return journey
        raise JourneyInvalid.of(found)
    faulty = frozenset(fault.path for fault in faults)
    unread = {fault.path.removeprefix("$.").split(".")[0].split("[")[0] for fault in top}
    journey = _partial(rest, read, unread)
    start_known = "start" in rest and "start" not in unread and isinstance(steps, Mapping)
    checks = _Checks(
        journey, templates, segments, entries, broken, start_known=start_known, faulty=faulty
    )
    faults.extend(checks.faults())
    raise JourneyInvalid.of(_first_per_path(faults))


def decode_part(document: Any, kind: type[T], path: str) -> T:
    """Reads another part of a campaign's document (its migration) as `kind`; raises
    `JourneyInvalid` naming every fault under `path`."""
    value, faults = read_part(document, kind, path)
    if faults:
        raise JourneyInvalid.of(faults)
    assert value is not None
    return value


def read_part(document: Any, kind: type[T], path: str) -> tuple[T | None, list[JourneyFault]]:
    """Reads another part of a campaign's document as `kind`, field by field: the value, and
    every fault under `path`. With faults, the value is the part as far as it could be read
    (each faulty field a stand-in, so that its other fields can still be checked: drop the
    checks' faults under `under_faults`), or None when too little of it could be."""
    faults = _first_per_path([*_non_finite(document, path), *_value_faults(document, kind, path)])
    if not faults:
        return msgspec.convert(document, kind), []
    fixed = _repaired(document, kind)
    return (None if fixed is _UNREAD else msgspec.convert(fixed, kind)), faults


def under_faults(fault: JourneyFault, faulty: Set[str]) -> bool:
    """Whether `fault` is at or under a path of `faulty`: found on a stand-in."""
    return any(_at_or_under(fault.path, path) for path in faulty)


def _at_or_under(path: str, prefix: str) -> bool:
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] in ".[")


def journey_document(journey: Journey) -> dict[str, Any]:
    """The JSON document `decode_journey` reads back as `journey`."""
    return document_of(journey)


def _builtins(document: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(document, bytes | str):
        text = document
        try:
            document = msgspec.json.decode(text)
        except msgspec.DecodeError as error:
            if not str(error).startswith("Number out of range"):
                raise JourneyInvalid("$", f"not valid JSON: {error}") from None
            # msgspec does not say where: Python's reader takes such a number as infinite,
            # and the document is then read on, the number named by its path.
            try:
                document = json.loads(text)
            except ValueError:
                raise JourneyInvalid("$", f"not valid JSON: {error}") from None
    if not isinstance(document, Mapping):
        raise JourneyInvalid("$", "must be an object")
    return document


def _non_finite(value: Any, path: str) -> Iterator[JourneyFault]:
    """Each number of the document that is not finite (JSON's `1e400` read as infinite)."""
    if isinstance(value, float) and not math.isfinite(value):
        yield JourneyFault(path, "is a number too large to hold: it must be finite")
    elif isinstance(value, Mapping):
        for name, item in value.items():
            yield from _non_finite(item, f"{path}.{name}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _non_finite(item, f"{path}[{i}]")


def _first_per_path(faults: list[JourneyFault]) -> list[JourneyFault]:
    """One fault a path, the first found: a number not finite is also of the wrong type."""
    seen: set[str] = set()
    kept = []
    for fault in faults:
        if fault.path not in seen:
            seen.add(fault.path)
            kept.append(fault)
    return kept


# --- the schema, part by part ------------------------------------------------------------------


def _value_faults(value: Any, kind: Any, path: str) -> Iterator[JourneyFault]:
    """Every fault of `value` as a `kind` that can be told apart: a Struct's fields one by one,
    a list's items one by one, a tagged union's member by its `type`; else msgspec's first."""
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError as error:
        first = _explained(path, str(error))
    else:
        return
    found = list(_parts_faults(value, _bare(kind), path))
    if found:
        yield from found
    else:
        yield first


def _parts_faults(value: Any, kind: Any, path: str) -> Iterator[JourneyFault]:
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        if isinstance(value, Mapping):
            yield from _struct_faults(value, kind, path)
        return
    origin = typing.get_origin(kind)
    members = typing.get_args(kind)
    if origin is tuple and len(members) == 2 and members[1] is Ellipsis:
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield from _value_faults(item, members[0], f"{path}[{i}]")
        return
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return
        options = [m for m in members if m is not type(None)]
        if len(options) == 1:
            yield from _parts_faults(value, _bare(options[0]), path)
            return
        tags = {_tag_of(m): m for m in options}
        if _tagged(value, tags):
            yield from _struct_faults(value, tags[value["type"]], path)


def _struct_faults(
    value: Mapping[str, Any], kind: type[msgspec.Struct], path: str, skip: Set[str] = frozenset()
) -> Iterator[JourneyFault]:
    """Each unknown field, missing field, and fault of a field of `value` as a `kind`."""
    fields = {info.encode_name: info for info in msgspec.structs.fields(kind)}
    tag_field = kind.__struct_config__.tag_field
    for name in value:
        if name not in fields and name != tag_field and name not in skip:
            yield JourneyFault(f"{path}.{name}", "unknown field")
    for name, info in fields.items():
        if name in skip:
            continue
        if name not in value:
            if info.required:
                yield JourneyFault(f"{path}.{name}", "required field is missing")
            continue
        yield from _value_faults(value[name], info.type, f"{path}.{name}")
    if tag_field is not None and tag_field in value and value[tag_field] != _tag_of(kind):
        yield JourneyFault(f"{path}.{tag_field}", f"must be {_tag_of(kind)!r}")


def _explained(path: str, message: str) -> JourneyFault:
    """msgspec's message about a value at `path`, its own path made whole, in the document's
    terms."""
    reason, at, inner = message.rpartition(" - at `")
    if not at:
        reason, inner = message, "$`"
    whole = path + inner.removesuffix("`").removeprefix("$")
    reader = _steps if whole.startswith("$.steps.") else _journey
    return JourneyFault(*reader.explain(f"{reason} - at `{whole}`"))


def _bare(kind: Any) -> Any:
    """The type without its `Annotated` constraints."""
    while typing.get_origin(kind) is typing.Annotated:
        kind = typing.get_args(kind)[0]
    return kind


def _tagged(value: Any, tags: Collection[Any]) -> bool:
    """Whether `value` is an object whose `type` is one of `tags` (any JSON value may stand
    there, a list too)."""
    if not isinstance(value, Mapping):
        return False
    tag = value.get("type")
    return isinstance(tag, str | int) and tag in tags


def _tag_of(kind: Any) -> Any:
    config = getattr(kind, "__struct_config__", None)
    return None if config is None else config.tag


_EXIT_FIELDS = frozenset({"next", "else", "on_signal", "on_timeout"})


def _raw_exits(value: Any) -> Iterator[str]:
    """Where a step that could not be read says it leads, wherever in it."""
    if isinstance(value, Mapping):
        for name, item in value.items():
            if name in _EXIT_FIELDS and isinstance(item, str):
                yield item
            else:
                yield from _raw_exits(item)
    elif isinstance(value, list):
        for item in value:
            yield from _raw_exits(item)


def _partial(rest: Mapping[str, Any], steps: dict[str, Step], broken: Set[str]) -> Journey:
    """The journey as far as it could be read, for the checks of the parts that could: a part
    that could not is left out (an API entry, no goal, the default policies)."""

    def part(name: str, kind: Any, otherwise: Any) -> Any:
        if name not in rest:
            return otherwise
        if name in broken:
            if not _known_tag(rest[name], kind):
                return otherwise
            fixed = _repaired(rest[name], kind)
            return otherwise if fixed is _UNREAD else msgspec.convert(fixed, kind)
        return msgspec.convert(rest[name], kind)

    return Journey(
        entry=part("entry", Entry, OnApi()),
        start=part("start", str, ""),
        steps=steps,
        goal=part("goal", Goal | None, None),
        policies=part("policies", Policies, Policies()),
    )


# --- the parts that could not be read, as far as they could --------------------------------------

_UNREAD: Any = object()
"""What `_repaired` and `_stand_in` answer for a value they cannot make."""
_STAND_INS: dict[Any, tuple[Any, ...]] = {
    str: (" ", "x"),
    int: (1,),
    float: (1.0,),
    bool: (False,),
    datetime: ("2000-01-01T00:00:00Z",),
    date: ("2000-01-01",),
}


def _known_tag(value: Any, kind: Any) -> bool:
    """Whether `value` says which member of a tagged union `kind` it is, one `kind` has (or
    `kind` is no tagged union): a part of unknown type is not guessed at."""
    options = [m for m in typing.get_args(_bare(kind)) if m is not type(None)]
    tags = {_tag_of(m) for m in options} - {None}
    if not tags:
        return True
    return _tagged(value, tags)


def _repaired(value: Any, kind: Any) -> Any:
    """`value` with each field, item or member that is not a `kind`'s replaced by a stand-in of
    its type (an unknown field left out, a missing one added), so that it reads as a `kind`;
    `_UNREAD` if it cannot."""
    if _converts(value, kind):
        return value
    bare = _bare(kind)
    fixed: Any = _UNREAD
    if isinstance(bare, type) and issubclass(bare, msgspec.Struct) and isinstance(value, Mapping):
        fixed = {}
        config = bare.__struct_config__
        if config.tag_field is not None:
            fixed[config.tag_field] = config.tag
        for info in msgspec.structs.fields(bare):
            if info.encode_name in value:
                item = _repaired(value[info.encode_name], info.type)
                if item is _UNREAD and info.required:
                    return _UNREAD
                if item is not _UNREAD:
                    fixed[info.encode_name] = item
            elif info.required:
                item = _stand_in(info.type)
                if item is _UNREAD:
                    return _UNREAD
                fixed[info.encode_name] = item
    elif typing.get_origin(bare) is tuple and isinstance(value, list):
        member = typing.get_args(bare)[0]
        fixed = [_repaired(item, member) for item in value]
        if any(item is _UNREAD for item in fixed):
            return _UNREAD
    elif typing.get_origin(bare) is dict and isinstance(value, Mapping):
        member = typing.get_args(bare)[1]
        fixed = {name: _repaired(item, member) for name, item in value.items()}
        if any(item is _UNREAD for item in fixed.values()):
            return _UNREAD
    elif typing.get_origin(bare) in (typing.Union, types.UnionType):
        options = [m for m in typing.get_args(bare) if m is not type(None)]
        tags = {_tag_of(m): m for m in options if _tag_of(m) is not None}
        if _tagged(value, tags):
            fixed = _repaired(value, tags[value["type"]])
        elif len(options) == 1:
            fixed = _repaired(value, options[0])
    if fixed is not _UNREAD and _converts(fixed, kind):
        return fixed
    if isinstance(bare, type) and issubclass(bare, msgspec.Struct):
        return _UNREAD  # its stand-in is the same fields' (or its own checks refuse them)
    return _stand_in(kind)


def _stand_in(kind: Any) -> Any:
    """A value of `kind`, standing in for one that is not: `_UNREAD` if none is at hand."""
    bare = _bare(kind)
    candidates: list[Any] = list(_STAND_INS.get(bare, ()))
    if isinstance(bare, type) and issubclass(bare, enum.Enum):
        candidates = [member.value for member in bare]
    elif isinstance(bare, type) and issubclass(bare, msgspec.Struct):
        candidates = [_repaired({}, bare)]
    elif typing.get_origin(bare) in (tuple, list):
        candidates = [[]]
    elif typing.get_origin(bare) is dict:
        candidates = [{}]
    elif typing.get_origin(bare) in (typing.Union, types.UnionType):
        members = typing.get_args(bare)
        # not a tagged member's: a condition's can hold a condition
        candidates = [_stand_in(m) for m in members if _tag_of(m) is None and m is not type(None)]
        if type(None) in members:
            candidates.append(None)
    for candidate in candidates:
        if candidate is not _UNREAD and _converts(candidate, kind):
            return candidate
    return _UNREAD


def _converts(value: Any, kind: Any) -> bool:
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError:
        return False
    return True


# --- the whole journey -------------------------------------------------------------------------


class _Checks:
    """The checks that need the whole journey and what exists beside it. `broken` are the
    steps that could not be read, with where their documents lead (None: not an object, so
    nobody can tell); `entries` the steps customers arrive at other than from the start (a
    migration's targets); `faulty` the paths of the faults the schema found, whose values are
    stand-ins: no fault is named at or under them, nor one of a part's checks across its fields
    (a wait's for or until) where one of those fields is a stand-in."""

    def __init__(
        self,
        journey: Journey,
        templates: Set[str],
        segments: Set[str],
        entries: Set[str] = frozenset(),
        broken: Mapping[str, frozenset[str] | None] | None = None,
        *,
        start_known: bool = True,
        faulty: Set[str] = frozenset(),
    ) -> None:
        self.journey = journey
        self.templates = templates
        self.segments = segments
        self.entries = entries
        self.steps = journey.steps
        self.broken = broken or {}
        self.start_known = start_known
        self.faulty = faulty

    def faults(self) -> Iterator[JourneyFault]:
        for fault in self.all_faults():
            if not under_faults(fault, self.faulty):
                yield fault

    def local(self, faults: Iterator[JourneyFault]) -> Iterator[JourneyFault]:
        """The faults of one part's checks, but those above a stand-in of it (a check across
        its fields)."""
        for fault in faults:
            if not any(_at_or_under(path, fault.path) for path in self.faulty):
                yield fault

    def all_faults(self) -> Iterator[JourneyFault]:
        yield from self.local(self.entry())
        if self.start_known and not self.known(self.journey.start):
            yield JourneyFault("$.start", self.missing(self.journey.start))
        for step_id in (*self.steps, *self.broken):
            if not _STEP_ID.match(step_id):
                yield JourneyFault(
                    f"$.steps.{step_id}",
                    "a step id is 1 to 64 of a-z, 0-9, '_' or '-', starting with a-z or 0-9",
                )
        for step_id, step in self.steps.items():
            path = f"$.steps.{step_id}"
            for field, target in step.exits:
                if not self.known(target):
                    yield JourneyFault(f"{path}.{field}", self.missing(target))
            yield from self.local(self.step(path, step_id, step))
        yield from self.unreachable()
        yield from self.spinning_loops()
        yield from self.local(self.goal_and_policies())

    def known(self, step_id: str) -> bool:
        return step_id in self.steps or step_id in self.broken

    def missing(self, target: str) -> str:
        known = ", ".join(sorted((*self.steps, *self.broken))[:20]) or "none"
        return f"{target!r} is not a step of the journey (steps: {known})"

    def entry(self) -> Iterator[JourneyFault]:
        entry = self.journey.entry
        if isinstance(entry, OnSegmentEntered | OnSchedule):
            yield from self.segment("$.entry.segment", entry.segment)
        if isinstance(entry, OnSchedule):
            yield from _schedule(entry)

    def segment(self, path: str, key: str) -> Iterator[JourneyFault]:
        if key not in self.segments:
            yield JourneyFault(path, f"{key!r} is not a segment")

    def step(self, path: str, step_id: str, step: Step) -> Iterator[JourneyFault]:
        if isinstance(step, Send):
            yield from self.send(path, step)
        elif isinstance(step, Wait):
            yield from _wait(path, step)
        elif isinstance(step, WaitForSignal):
            yield from _duration(f"{path}.timeout", step.timeout)
        elif isinstance(step, Branch):
            yield from self.branch(path, step_id, step)
        elif isinstance(step, Split):
            yield from _split(path, step)
        elif isinstance(step, Update):
            yield from _update(path, step)

    def send(self, path: str, step: Send) -> Iterator[JourneyFault]:
        if not 0 <= step.priority <= MAX_PRIORITY:
            yield JourneyFault(f"{path}.priority", f"a priority is 0 to {MAX_PRIORITY}")
        if not step.channels:
            yield JourneyFault(f"{path}.channels", "a send needs at least one channel")
        yield from _no_repeats(f"{path}.channels", step.channels)
        if step.template not in self.templates:
            yield JourneyFault(f"{path}.template", f"{step.template!r} is not a template")
        if step.fallback is not None:
            if not step.fallback.channels:
                yield JourneyFault(
                    f"{path}.fallback.channels", "a fallback needs at least one channel"
                )
            yield from _duration(f"{path}.fallback.after", step.fallback.after)
        if step.on_not_delivered is not None:
            yield from _duration(f"{path}.on_not_delivered.within", step.on_not_delivered.within)

    def branch(self, path: str, step_id: str, step: Branch) -> Iterator[JourneyFault]:
        if not step.cases:
            yield JourneyFault(f"{path}.cases", "a branch needs at least one case")
        for i, case in enumerate(step.cases):
            at = f"{path}.cases[{i}]"
            given = [
                name
                for name in ("condition", "in_segment", "response")
                if getattr(case, name) is not None
            ]
            if len(given) != 1:
                yield JourneyFault(
                    at, "a case needs exactly one of condition, in_segment or response"
                )
            if case.condition is not None:
                yield from _condition(f"{at}.condition", case.condition)
            if case.in_segment is not None:
                yield from self.segment(f"{at}.in_segment", case.in_segment)
            if case.response is not None:
                yield from self.response(f"{at}.response", step_id, case.response)

    def response(self, path: str, step_id: str, response: ResponseIs) -> Iterator[JourneyFault]:
        sent = self.steps.get(response.step)
        if response.step in self.broken:
            pass  # its own faults are named
        elif not isinstance(sent, Send):
            yield JourneyFault(f"{path}.step", f"{response.step!r} is not a send step")
        elif step_id not in self.reachable_from(response.step):
            yield JourneyFault(
                f"{path}.step", f"{response.step!r} is not a send that can come before this branch"
            )
        if not response.is_:
            yield JourneyFault(f"{path}.is", "name at least one response")

    def exits_of(self, step_id: str) -> Iterator[str]:
        step = self.steps.get(step_id)
        if step is not None:
            yield from (target for _, target in step.exits)
        else:
            yield from self.broken.get(step_id) or ()

    def reachable_from(self, *first: str) -> set[str]:
        """The steps a customer at any of `first` can go on to, not counting those unless a
        loop leads back."""
        seen: set[str] = set()
        todo = [target for step_id in first for target in self.exits_of(step_id)]
        while todo:
            step_id = todo.pop()
            if step_id in seen or not self.known(step_id):
                continue
            seen.add(step_id)
            todo.extend(self.exits_of(step_id))
        return seen

    def unreachable(self) -> Iterator[JourneyFault]:
        start = self.journey.start
        if not (self.start_known and self.known(start)) or None in self.broken.values():
            return
        roots = {start, *(step_id for step_id in self.entries if self.known(step_id))}
        reached = self.reachable_from(*roots) | roots
        moved = " nor from a step the migration moves customers to" if self.entries else ""
        for step_id in (*self.steps, *self.broken):
            if step_id not in reached:
                yield JourneyFault(
                    f"$.steps.{step_id}", f"cannot be reached from the start ({start!r}){moved}"
                )

    def spinning_loops(self) -> Iterator[JourneyFault]:
        """Each loop of steps none of which waits, named at the exit that closes it."""
        done: set[str] = set()
        for first in self.steps:
            trail: list[str] = []
            yield from self.loops_from(first, trail, set(), done)

    def loops_from(
        self, step_id: str, trail: list[str], on_trail: set[str], done: set[str]
    ) -> Iterator[JourneyFault]:
        step = self.steps.get(step_id)
        if step_id in done or step is None or step.waits:
            return
        trail.append(step_id)
        on_trail.add(step_id)
        for field, target in step.exits:
            if target in on_trail:
                loop = [*trail[trail.index(target) :], target]
                yield JourneyFault(
                    f"$.steps.{step_id}.{field}",
                    f"goes back to {target!r} in a loop with no wait in it "
                    f"({' → '.join(loop)}): put a wait or a wait_for_signal in the loop",
                )
            else:
                yield from self.loops_from(target, trail, on_trail, done)
        trail.pop()
        on_trail.discard(step_id)
        done.add(step_id)

    def goal_and_policies(self) -> Iterator[JourneyFault]:
        goal = self.journey.goal
        if goal is not None:
            yield from _duration("$.goal.within", goal.within)
            if goal.condition is not None:
                yield from _condition("$.goal.condition", goal.condition)
        policies = self.journey.policies
        cooling = policies.re_entry is ReEntry.AFTER_COOL_DOWN
        if "$.policies.re_entry" in self.faulty:
            if policies.cool_down is not None:
                yield from _duration("$.policies.cool_down", policies.cool_down)
        elif cooling and policies.cool_down is None:
            yield JourneyFault("$.policies.cool_down", "after_cool_down needs a cool_down")
        elif not cooling and policies.cool_down is not None:
            yield JourneyFault(
                "$.policies.cool_down",
                f"a cool_down is only for after_cool_down, not {policies.re_entry}",
            )
        elif policies.cool_down is not None:
            yield from _duration("$.policies.cool_down", policies.cool_down)
        for name in ("enrollment_cap", "send_limit"):
            count = getattr(policies, name)
            reason = None if count is None else count_fault(count)
            if reason is not None:
                yield JourneyFault(f"$.policies.{name}", reason)


def _condition(path: str, condition: Condition) -> Iterator[JourneyFault]:
    try:
        check_size(condition)
        check_counts(condition)
    except ConditionInvalid as fault:
        yield JourneyFault(path + fault.path.removeprefix("$"), fault.reason)


def _duration(path: str, text: str) -> Iterator[JourneyFault]:
    try:
        span = parse_duration(text)
    except ValueError as error:
        yield JourneyFault(path, str(error))
        return
    if span <= timedelta(0):
        yield JourneyFault(path, f"{text!r} is no time at all: it must be longer than zero")
    elif span > MAX_SPAN:
        yield JourneyFault(path, f"{text!r} is too long: at most {MAX_SPAN.days}d")


def _time_of_day(path: str, text: str) -> Iterator[JourneyFault]:
    try:
        parse_time_of_day(text)
    except ValueError as error:
        yield JourneyFault(path, str(error))


def _days(path: str, days: tuple[str, ...]) -> Iterator[JourneyFault]:
    for i, day in enumerate(days):
        if day not in DAY_NAMES:
            yield JourneyFault(f"{path}[{i}]", f"{day!r} is not a day: use {', '.join(DAY_NAMES)}")
    yield from _no_repeats(path, days)


def _no_repeats(path: str, values: tuple[Any, ...]) -> Iterator[JourneyFault]:
    seen: set[Any] = set()
    for i, value in enumerate(values):
        if value in seen:
            yield JourneyFault(f"{path}[{i}]", f"{str(value)!r} is already in the list")
        seen.add(value)


def _wait(path: str, step: Wait) -> Iterator[JourneyFault]:
    if (step.for_ is None) == (step.until is None):
        yield JourneyFault(path, "a wait needs exactly one of for (a duration) or until (HH:MM)")
    if step.for_ is not None:
        yield from _duration(f"{path}.for", step.for_)
        if step.days:
            yield JourneyFault(f"{path}.days", "days go with until, not with for")
    if step.until is not None:
        yield from _time_of_day(f"{path}.until", step.until)
    yield from _days(f"{path}.days", step.days)


def _split(path: str, step: Split) -> Iterator[JourneyFault]:
    if not step.arms:
        yield JourneyFault(f"{path}.arms", "a split needs at least one arm")
    names: set[str] = set()
    for i, arm in enumerate(step.arms):
        if arm.name in names or arm.name == "control":
            yield JourneyFault(f"{path}.arms[{i}].name", f"{arm.name!r} is already an arm's name")
        names.add(arm.name)
        yield from _weight(f"{path}.arms[{i}].weight", arm.weight)
    if step.control is not None:
        yield from _weight(f"{path}.control.weight", step.control.weight)
    if all(weight >= 0 for _, weight in step.weights) and sum(w for _, w in step.weights) <= 0:
        yield JourneyFault(
            f"{path}.arms", "the weights add up to nothing: give one a weight above 0"
        )


def _weight(path: str, weight: int) -> Iterator[JourneyFault]:
    if weight < 0:
        yield JourneyFault(path, "a weight is never negative")
    elif weight > MAX_WEIGHT:
        yield JourneyFault(path, f"a weight is at most {MAX_WEIGHT:,}")


def _update(path: str, step: Update) -> Iterator[JourneyFault]:
    if not step.profile and not step.attributes:
        yield JourneyFault(path, "an update needs profile fields or attributes to change")
    for name in step.profile:
        if name not in PROFILE_FIELDS:
            yield JourneyFault(
                f"{path}.profile.{name}", f"not a profile field: use {', '.join(PROFILE_FIELDS)}"
            )
    try:
        Profile(**{k: v for k, v in step.profile.items() if k in PROFILE_FIELDS})
    except InvalidValue as error:
        yield JourneyFault(f"{path}.profile.{error.field}", error.reason)
    try:
        check_attributes(dict(step.attributes))
    except InvalidValue as error:
        yield JourneyFault(f"{path}.{error.field}", error.reason)


def _schedule(entry: OnSchedule) -> Iterator[JourneyFault]:
    path = "$.entry"
    given = [name for name in ("at", "on", "every") if getattr(entry, name) is not None]
    if len(given) != 1:
        yield JourneyFault(path, "a schedule needs exactly one of at, on or every")
    if entry.at is not None:
        fault = time_fault(entry.at)
        if fault is not None:
            yield JourneyFault(f"{path}.at", fault)
        for name in ("time", "time_zone", "from", "until"):
            if getattr(entry, "from_" if name == "from" else name) is not None:
                yield JourneyFault(f"{path}.{name}", "goes with on or every, not with at")
    elif entry.time is None:
        yield JourneyFault(f"{path}.time", "on and every need the time of day")
    else:
        yield from _time_of_day(f"{path}.time", entry.time)
    if entry.time_zone is not None and not is_time_zone(entry.time_zone):
        yield JourneyFault(
            f"{path}.time_zone", f"{entry.time_zone!r} is not an IANA time zone, e.g. Europe/Lisbon"
        )
    if entry.days and entry.every is not Every.WEEK:
        yield JourneyFault(f"{path}.days", "days go with every: week")
    yield from _days(f"{path}.days", entry.days)
    if entry.from_ is not None and entry.until is not None and entry.until < entry.from_:
        yield JourneyFault(f"{path}.until", "ends before it begins (from)")
