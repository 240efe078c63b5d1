"""Reads a routing document and checks it whole, naming the JSON path of every fault.

The schema (types, unknown or missing fields, a rule with neither team nor skills, a target that
is no duration) is checked first, and msgspec stops at the first fault. Then the checks that
need the whole document and what the caller knows (the team keys and segment keys that exist)
run over it and report every fault at once: an unknown team, segment or intent, an id used twice or
reserved for the router's own reasons, an overflow to the rule's own team, a condition too big,
a count beyond what PostgreSQL and JSON readers hold exactly (`domain.shared.counts`).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass
from typing import Any

from domain.assistant.intents import INTENTS
from domain.conversation.routing import (
    URGENCIES,
    CountIs,
    Escalation,
    Match,
    Overflow,
    RoutingDocument,
    RoutingRule,
    ScoreIs,
)
from domain.conversation.sla import OnBreach, SlaPolicy, Targets
from domain.conversation.vocabulary import ChannelKind, Priority, Sentiment
from domain.segments.conditions import (
    MAX_CONDITIONS,
    Condition,
    ConditionInvalid,
    Op,
    PropertyFilter,
    check_counts,
    count_conditions,
)
from domain.shared.counts import count_fault
from domain.shared.documents import DocumentInvalid, DocumentReader, document_of

__all__ = [
    "MAX_RULES",
    "RESERVED_IDS",
    "RoutingFault",
    "RoutingInvalid",
    "decode_routing",
    "routing_document",
]

MAX_RULES = 500
"""Rules and escalations in one document, together."""

RESERVED_IDS = frozenset({"default", "overflow", "agent", "queue"})
"""Ids the router cites for its own reasons."""


@dataclass(frozen=True, slots=True)
class RoutingFault:
    """One fault in a routing document: where (a JSON path) and why."""

    path: str
    reason: str


class RoutingInvalid(DocumentInvalid):
    """A routing document that cannot be published, with every fault found; `path` and `reason`
    are the first."""

    def __init__(self, path: str, reason: str, *more: RoutingFault) -> None:
        super().__init__(path, reason)
        self.faults = (RoutingFault(path, reason), *more)
        if more:
            self.args = ("; ".join(f"{f.path}: {f.reason}" for f in self.faults),)


_ENUMS: dict[str, Any] = {
    "op": Op,
    "priority": Priority,
    "sentiments": Sentiment,
    "urgencies": URGENCIES,
    "first_response": ChannelKind,
    "next_response": ChannelKind,
}
_AT_KEY = re.compile(r"^(?P<reason>.*) - at `key` in `(?P<path>[^`]*)`$", re.DOTALL)
_ENUM_VALUE = re.compile(r"^Invalid enum value (?P<value>'[^']*'|-?\d+)$")


class _Reader(DocumentReader[RoutingDocument]):
    """Names the enum of a list's item (`$.rules[0].sentiments[1]`) or of a map's key."""

    def explain(self, message: str) -> tuple[str, str]:
        key = _AT_KEY.match(message)
        if key is not None:  # a map's key: `$.sla.first_response.fax`
            path, reason = key.group("path"), key.group("reason")
            value = _ENUM_VALUE.match(reason)
            enum = _ENUMS.get(path.rpartition(".")[2])
            if value is None or enum is None:
                return path, f"a key: {reason}"
            bad = value.group("value")
            return (
                f"{path}.{bad.strip(chr(39))}",
                f"{bad} is not one of {', '.join(map(str, enum))}",
            )
        path, reason = super().explain(message)
        value = _ENUM_VALUE.match(reason)
        if value is None:
            return path, reason
        last = re.sub(r"\[\d+\]$", "", path.rpartition(".")[2])
        enum = _ENUMS.get(last) or _ENUMS.get(path.rpartition(".")[0].rpartition(".")[2])
        if enum is None:
            return path, reason
        return path, f"{value.group('value')} is not one of {', '.join(map(str, enum))}"


_reader = _Reader(
    RoutingDocument,
    RoutingInvalid,
    noun="condition",
    parts=(
        RoutingDocument,
        RoutingRule,
        Escalation,
        Match,
        CountIs,
        ScoreIs,
        Overflow,
        SlaPolicy,
        Targets,
        OnBreach,
        PropertyFilter,
        *typing.get_args(Condition),
    ),
    enums=_ENUMS,
)


def decode_routing(
    document: bytes | str | Mapping[str, Any], *, teams: Set[str], segments: Set[str]
) -> RoutingDocument:
    """Reads a routing document from JSON text or decoded JSON and checks it whole against the
    team keys and segment keys that exist; raises `RoutingInvalid` naming every fault's path."""
    routing = _reader.read(document)
    faults = list(_faults(routing, teams, segments))
    if faults:
        first, *more = faults
        raise RoutingInvalid(first.path, first.reason, *more)
    return routing


def routing_document(routing: RoutingDocument) -> dict[str, Any]:
    """The JSON document `decode_routing` reads back as `routing`."""
    return document_of(routing)


def _faults(
    routing: RoutingDocument, teams: Set[str], segments: Set[str]
) -> Iterator[RoutingFault]:
    count = len(routing.rules) + len(routing.escalations)
    if count > MAX_RULES:
        yield RoutingFault("$", f"{count} rules and escalations, but at most {MAX_RULES}")
    yield from _team("$.default_team", routing.default_team, teams)
    ids: dict[str, str] = {}
    entries: list[tuple[str, RoutingRule | Escalation]] = [
        *((f"$.rules[{i}]", rule) for i, rule in enumerate(routing.rules)),
        *((f"$.escalations[{i}]", e) for i, e in enumerate(routing.escalations)),
    ]
    for path, entry in entries:
        first = ids.setdefault(entry.id, path)
        if first != path:
            yield RoutingFault(f"{path}.id", f"id {entry.id!r} is already used at {first}")
        elif entry.id in RESERVED_IDS:
            reserved = ", ".join(sorted(RESERVED_IDS))
            yield RoutingFault(f"{path}.id", f"ids {reserved} are the router's own reasons")
        if entry.team is not None:
            yield from _team(f"{path}.team", entry.team, teams)
        for j, intent in enumerate(entry.intents or ()):
            if intent not in INTENTS:
                yield RoutingFault(
                    f"{path}.intents[{j}]",
                    f"{intent!r} is not an intent a classifier knows, such as 'request_refund' "
                    "(data/banking77/categories.json, in lower case) or 'refund'",
                )
        for j, segment in enumerate(entry.segments or ()):
            if segment not in segments:
                yield RoutingFault(f"{path}.segments[{j}]", f"no segment {segment!r}")
        if entry.when is not None and count_conditions(entry.when) > MAX_CONDITIONS:
            yield RoutingFault(
                f"{path}.when", f"more than {MAX_CONDITIONS} conditions are combined"
            )
        elif entry.when is not None:
            yield from _counts_in(f"{path}.when", entry.when)
        if entry.open_conversations is not None:
            yield from _count(f"{path}.open_conversations.value", entry.open_conversations.value)
        if isinstance(entry, RoutingRule) and entry.overflow is not None:
            yield from _count(f"{path}.overflow.queue_at_least", entry.overflow.queue_at_least)
            yield from _team(f"{path}.overflow.team", entry.overflow.team, teams)
            if entry.overflow.team == entry.team:
                yield RoutingFault(
                    f"{path}.overflow.team", "overflows to the rule's own team: name another"
                )
    on_breach = routing.sla.on_breach
    if on_breach is not None and on_breach.team is not None:
        yield from _team("$.sla.on_breach.team", on_breach.team, teams)


def _count(path: str, count: int) -> Iterator[RoutingFault]:
    """A count the document gives beyond what PostgreSQL and JSON readers hold exactly."""
    reason = count_fault(count)
    if reason is not None:
        yield RoutingFault(path, reason)


def _counts_in(path: str, condition: Condition) -> Iterator[RoutingFault]:
    try:
        check_counts(condition)
    except ConditionInvalid as fault:
        yield RoutingFault(path + fault.path.removeprefix("$"), fault.reason)


def _team(path: str, team: str, teams: Set[str]) -> Iterator[RoutingFault]:
    if team not in teams:
        known = ", ".join(sorted(teams)) or "none yet"
        yield RoutingFault(path, f"no team {team!r} (teams: {known})")
