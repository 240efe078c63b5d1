"""The rule set's JSON document: validated with msgspec, checked for sense, read as a `RuleSet`.

Schema errors (wrong types, unknown fields, missing fields) come from msgspec, which stops at the
first; the checks that need the whole document (durations, times of day, days, time zones,
duplicate ids, reserved slots) run after decoding and report every fault at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time, timedelta
from enum import Enum
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import available_timezones

import msgspec
from msgspec import UNSET, UnsetType

from domain.assistant.intents import check_intents
from domain.policy.rules import (
    ALL_DAYS,
    DEFAULT_HOLD,
    ApprovalRule,
    ChannelOverride,
    ChannelPolicy,
    ConsentMode,
    DedupRule,
    FrequencyCap,
    OnExceed,
    QuietHours,
    QuietWindow,
    RuleSet,
)
from domain.policy.tone import ChannelTone, Structure
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.documents import field_of, json_fault
from domain.shared.durations import DurationText, format_duration, parse_duration
from domain.shared.errors import InvalidValue

__all__ = [
    "DAY_NAMES",
    "ID_PATTERN",
    "ApprovalIn",
    "BypassIn",
    "CapIn",
    "ChannelIn",
    "DedupIn",
    "QuietHoursIn",
    "QuietWindowIn",
    "RuleError",
    "RuleSetIn",
    "RuleSetInvalid",
    "ToneIn",
    "channels_in_force",
    "decode_rule_set",
    "rule_set_document",
]

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
ID_PATTERN_ANY_CASE = r"^[A-Za-z0-9][A-Za-z0-9_.?-]{0,63}$"  # intents: Banking77 has capitals
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday names in the document, Monday first (Monday = 0 in the domain)."""

RuleId = Annotated[
    str, msgspec.Meta(pattern=ID_PATTERN, description="Cited by every decision it shapes.")
]
TeamName = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Cost = Annotated[float, msgspec.Meta(ge=0)]
Duration = Annotated[DurationText, msgspec.Meta(examples=["24h", "7d", "1h30m"])]
TimeOfDay = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=16, description="Local time, HH:MM.", examples=["21:00"]),
]
Days = Annotated[list[str], msgspec.Meta(min_length=1, max_length=7)]
Channels = Annotated[list[Channel], msgspec.Meta(min_length=1)]
Purposes = Annotated[list[Purpose], msgspec.Meta(min_length=1)]


class ToneIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """How a text on the channel may read: `{"max_length": 320, "structure": "one_paragraph",
    "emoji": false, "links": true, "max_links": 1}` (docs/suggestions.md)."""

    max_length: Annotated[int, msgspec.Meta(ge=10, le=100_000)]
    structure: Structure = Structure.ONE_PARAGRAPH
    emoji: bool = False
    links: bool = True
    max_links: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None


class ChannelIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """What the document changes of a channel's built-in policy: each field given replaces
    the built-in value, each left out keeps it; `consent` sets the purposes it names, the
    others keep their built-in mode. `session_window: null` removes the window; `tone`
    replaces the tone whole (null: the channel's default tone). A channel left out of the
    document keeps its built-in policy whole."""

    consent: dict[Purpose, ConsentMode] = msgspec.field(default_factory=dict)
    session_window: Duration | UnsetType | None = UNSET
    requires_verified_identity: bool | UnsetType = UNSET
    hard_opt_out: bool | UnsetType = UNSET
    cost: Cost | UnsetType = UNSET
    tone: ToneIn | UnsetType | None = UNSET


class QuietWindowIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """`{"start": "21:00", "end": "08:00", "days": ["fri", "sat"]}`; `days` are start days."""

    start: TimeOfDay
    end: TimeOfDay
    days: Days | None = None


class BypassIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Messages of these purposes at or above `min_priority` ignore the quiet hours."""

    purposes: Purposes
    min_priority: int = 0


class QuietHoursIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Quiet windows in the customer's own time zone; omitted channels or purposes mean all."""

    id: RuleId
    windows: Annotated[list[QuietWindowIn], msgspec.Meta(min_length=1)]
    channels: Channels | None = None
    purposes: Purposes | None = None
    bypass: BypassIn | None = None


class CapIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """At most `limit` messages in any sliding `window`, over what matches its scope."""

    id: RuleId
    limit: Count
    window: Duration
    channel: Channel | None = None
    purpose: Purpose | None = None
    team: TeamName | None = None
    per_team: bool = False
    exempt_purposes: list[Purpose] | None = None  # None: transactional is exempt
    on_exceed: OnExceed = OnExceed.DEFER
    reserved: Count = 0
    reserved_priority: int = 0


class DedupIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """A dedup key already sent within `window` is not sent again."""

    id: RuleId = "dedup"
    window: Duration


Confidence = Annotated[float, msgspec.Meta(ge=0, le=1)]
Intent = Annotated[str, msgspec.Meta(pattern=ID_PATTERN_ANY_CASE)]


class ApprovalIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Holds a message for an operator when all of its conditions hold (at least one)."""

    id: RuleId
    intents: Annotated[list[Intent], msgspec.Meta(min_length=1)] | None = None
    min_confidence: Confidence = 0.0
    confidence_below: Confidence | None = None
    cost_above: Cost | None = None
    first_message_to: Annotated[list[str], msgspec.Meta(min_length=1)] | None = None
    tier_attribute: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "tier"
    audience_above: Count | None = None
    purposes: Purposes | None = None
    expires_after: Duration | None = None


class RuleSetIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """The whole rule set; its version is given when it is published, not in the document."""

    default_time_zone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "UTC"
    channels: dict[Channel, ChannelIn] = msgspec.field(default_factory=dict)
    quiet_hours: list[QuietHoursIn] = msgspec.field(default_factory=list)
    caps: list[CapIn] = msgspec.field(default_factory=list)
    dedup: DedupIn | None = None
    team_priorities: dict[TeamName, int] = msgspec.field(default_factory=dict)
    approvals: list[ApprovalIn] = msgspec.field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RuleError:
    """One fault in a rule-set document: where (a JSON path such as `$.caps[2].window`) and why."""

    path: str
    reason: str


class RuleSetInvalid(ValueError):
    """A rule-set document that cannot be published, with every fault found."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.path}: {e.reason}" for e in errors))


# --- times of day -------------------------------------------------------------------------------

_TIME_OF_DAY = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?")


def _parse_time(text: str) -> time:
    match = _TIME_OF_DAY.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a time of day: use 24-hour HH:MM, e.g. 08:00 or 21:30")
    hour, minute, second = match.groups()
    return time(int(hour), int(minute), int(second or 0))


def _format_time(value: time) -> str:
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


# --- decoding -------------------------------------------------------------------------------

_decoder = msgspec.json.Decoder(RuleSetIn)

# Ids the engine itself cites; a rule with one of them would make decisions ambiguous.
_ENGINE_IDS = frozenset({"expiry", "channels", "suppression"})
_DEFAULT_EXEMPT = FrequencyCap("default", 0, timedelta(days=1)).exempt_purposes
_ENGINE_PREFIXES = ("reachability.", "verification.", "opt_out.", "consent.", "session_window.")


def decode_rule_set(document: bytes | str, version: int) -> RuleSet:
    """Validates a rule-set document and returns it as the domain `RuleSet` of that version."""
    try:
        wire = _decoder.decode(document)
    except msgspec.ValidationError as error:
        # msgspec validates as it reads, so a document cut short can fail on a field first.
        if (broken := json_fault(document)) is not None:
            raise RuleSetInvalid([RuleError("$", f"not valid JSON: {broken}")]) from None
        raise RuleSetInvalid([_schema_error(error, document)]) from None
    except msgspec.DecodeError as error:
        raise RuleSetInvalid([RuleError("$", f"not valid JSON: {error}")]) from None
    return _Reader(version).read(wire)


class _Reader:
    """Turns a decoded document into domain rules, collecting every semantic fault."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.errors: list[RuleError] = []
        self.ids: dict[str, str] = {}

    def fail(self, path: str, reason: str) -> None:
        self.errors.append(RuleError(path, reason))

    def read(self, wire: RuleSetIn) -> RuleSet:
        if wire.default_time_zone not in _time_zones():
            self.fail(
                "$.default_time_zone",
                f"{wire.default_time_zone!r} is not an IANA time zone, "
                "e.g. Europe/London, America/New_York or UTC",
            )
        channels = {
            channel: self.channel(f"$.channels.{channel}", spec)
            for channel, spec in wire.channels.items()
        }
        quiet_hours = tuple(
            self.quiet_hours(f"$.quiet_hours[{i}]", spec) for i, spec in enumerate(wire.quiet_hours)
        )
        caps = tuple(self.cap(f"$.caps[{i}]", spec) for i, spec in enumerate(wire.caps))
        approvals = tuple(
            self.approval(f"$.approvals[{i}]", spec) for i, spec in enumerate(wire.approvals)
        )
        dedup = None
        if wire.dedup is not None:
            self.rule_id("$.dedup.id", wire.dedup.id)
            window = self.window("$.dedup.window", wire.dedup.window)
            dedup = DedupRule(wire.dedup.id, window)
        if self.errors:
            raise RuleSetInvalid(self.errors)
        return RuleSet(
            version=self.version,
            default_time_zone=wire.default_time_zone,
            channels=channels,
            quiet_hours=quiet_hours,
            caps=tuple(cap for cap in caps if cap is not None),
            dedup=dedup,
            team_priorities=dict(wire.team_priorities),
            approvals=tuple(approval for approval in approvals if approval is not None),
        )

    def intents(self, path: str, intents: list[str]) -> frozenset[str]:
        """The intents by their keys (`Refund_not_showing_up` is `refund_not_showing_up`), each
        one a classifier knows, as templates' tags are."""
        keys: set[str] = set()
        for n, intent in enumerate(intents):
            try:
                keys.update(check_intents([intent]))
            except InvalidValue as error:
                self.fail(f"{path}[{n}]", error.reason)
        return frozenset(keys)

    def rule_id(self, path: str, rule_id: str) -> None:
        first = self.ids.setdefault(rule_id, path)
        if first != path:
            self.fail(path, f"id {rule_id!r} is already used at {first.removesuffix('.id')}")
        elif rule_id in _ENGINE_IDS or rule_id.startswith(_ENGINE_PREFIXES):
            self.fail(path, f"id {rule_id!r} is reserved for the engine's own checks")

    def window(self, path: str, text: str) -> timedelta:
        try:
            span = parse_duration(text)
        except ValueError as error:
            self.fail(path, str(error))
            return timedelta(seconds=1)
        if span <= timedelta(0):
            self.fail(path, f"{text!r} is no time at all: a window must be longer than zero")
            return timedelta(seconds=1)
        return span

    def channel(self, path: str, spec: ChannelIn) -> ChannelOverride:
        session = spec.session_window
        tone = spec.tone
        return ChannelOverride(
            consent=dict(spec.consent),
            session_window=self.window(f"{path}.session_window", session)
            if isinstance(session, str)
            else session,
            requires_verified_identity=spec.requires_verified_identity,
            hard_opt_out=spec.hard_opt_out,
            cost=spec.cost,
            tone=self.tone(f"{path}.tone", tone) if isinstance(tone, ToneIn) else tone,
        )

    def tone(self, path: str, spec: ToneIn) -> ChannelTone:
        if not spec.links and spec.max_links:
            self.fail(f"{path}.max_links", "links are not allowed on this channel: leave it out")
        return ChannelTone(spec.max_length, spec.structure, spec.emoji, spec.links, spec.max_links)

    def quiet_hours(self, path: str, spec: QuietHoursIn) -> QuietHours:
        self.rule_id(f"{path}.id", spec.id)
        windows = tuple(
            self.quiet_window(f"{path}.windows[{i}]", w) for i, w in enumerate(spec.windows)
        )
        bypass = spec.bypass
        return QuietHours(
            id=spec.id,
            windows=windows,
            channels=None if spec.channels is None else frozenset(spec.channels),
            purposes=None if spec.purposes is None else frozenset(spec.purposes),
            bypass_purposes=frozenset(bypass.purposes) if bypass else frozenset(),
            bypass_min_priority=bypass.min_priority if bypass else None,
        )

    def quiet_window(self, path: str, spec: QuietWindowIn) -> QuietWindow:
        times = []
        for name in ("start", "end"):
            try:
                times.append(_parse_time(getattr(spec, name)))
            except ValueError as error:
                self.fail(f"{path}.{name}", str(error))
        if len(times) == 2 and times[0] == times[1]:
            self.fail(
                f"{path}.end",
                f"the window ends when it starts ({spec.start}); a window over midnight "
                "ends earlier than it starts, e.g. 21:00 to 08:00",
            )
        start, end = times if len(times) == 2 else (time(0), time(1))
        weekdays = ALL_DAYS
        if spec.days is not None:
            days = []
            for i, name in enumerate(spec.days):
                if name in DAY_NAMES:
                    days.append(DAY_NAMES.index(name))
                else:
                    self.fail(
                        f"{path}.days[{i}]",
                        f"{name!r} is not a day: use {', '.join(DAY_NAMES)}",
                    )
            weekdays = frozenset(days)
        return QuietWindow(start, end, weekdays)

    def cap(self, path: str, spec: CapIn) -> FrequencyCap | None:
        self.rule_id(f"{path}.id", spec.id)
        window = self.window(f"{path}.window", spec.window)
        if spec.reserved > spec.limit:
            self.fail(
                f"{path}.reserved",
                f"{spec.reserved} slots reserved but the limit is {spec.limit}: "
                "reserved slots are part of the limit, so they cannot exceed it",
            )
            return None
        exempt = (
            _DEFAULT_EXEMPT if spec.exempt_purposes is None else frozenset(spec.exempt_purposes)
        )
        return FrequencyCap(
            id=spec.id,
            limit=spec.limit,
            window=window,
            channel=spec.channel,
            purpose=spec.purpose,
            team=spec.team,
            per_team=spec.per_team,
            exempt_purposes=exempt,
            on_exceed=spec.on_exceed,
            reserved=spec.reserved,
            reserved_priority=spec.reserved_priority,
        )

    def approval(self, path: str, spec: ApprovalIn) -> ApprovalRule | None:
        self.rule_id(f"{path}.id", spec.id)
        expires = (
            DEFAULT_HOLD
            if spec.expires_after is None
            else self.window(f"{path}.expires_after", spec.expires_after)
        )
        conditions = (
            spec.intents,
            spec.confidence_below,
            spec.cost_above,
            spec.first_message_to,
            spec.audience_above,
        )
        if all(condition is None for condition in conditions):
            self.fail(
                path,
                "an approval rule needs a condition: intents, confidence_below, cost_above, "
                "first_message_to or audience_above",
            )
            return None
        intents = None if spec.intents is None else self.intents(f"{path}.intents", spec.intents)
        return ApprovalRule(
            id=spec.id,
            intents=intents,
            min_confidence=spec.min_confidence,
            confidence_below=spec.confidence_below,
            cost_above=spec.cost_above,
            first_message_to=None
            if spec.first_message_to is None
            else frozenset(spec.first_message_to),
            tier_attribute=spec.tier_attribute,
            audience_above=spec.audience_above,
            purposes=None if spec.purposes is None else frozenset(spec.purposes),
            expires_after=expires,
        )


# --- schema errors with a precise path and a readable reason -------------------------------

_UNKNOWN = re.compile(r"Object contains unknown field `([^`]+)`")
_MISSING = re.compile(r"Object missing required field `[^`]+`")
_KEY = re.compile(r"^(?P<reason>.*) - at `key` in `(?P<path>[^`]*)`$")
_BAD_ENUM = re.compile(r"^Invalid enum value (?P<value>'[^']*'|-?\d+)$")
_STEP = re.compile(r"\.([A-Za-z0-9_]+)|\[(\d+)\]")
# What the values of each free-keyed object are, to find which key a `[...]` in a path is.
_DICT_VALUES: dict[str, Any] = {
    "$.channels": ChannelIn,
    "$.channels[...].consent": ConsentMode,
    "$.team_priorities": int,
}
_ENUM_OF_FIELD: dict[str, type[Enum]] = {
    "channels": Channel,
    "channel": Channel,
    "purposes": Purpose,
    "purpose": Purpose,
    "exempt_purposes": Purpose,
    "on_exceed": OnExceed,
    "structure": Structure,
}
_PATTERNS = {
    ID_PATTERN: "must be 1 to 64 characters of a-z, 0-9, '_', '.' or '-', "
    "starting with a letter or a digit",
}
_DICT_KEYS: dict[str, type[Enum]] = {"channels": Channel, "consent": Purpose}


def _schema_error(error: msgspec.ValidationError, document: bytes | str) -> RuleError:
    message = str(error)
    key = _KEY.match(message)
    if key:
        path, reason = key.group("path"), key.group("reason")
    else:
        path, reason = field_of(error)
    if "[...]" in path:
        path = _name_keys(path, document)
    unknown = _UNKNOWN.search(reason)
    if unknown:
        return RuleError(f"{path}.{unknown.group(1)}", "unknown field")
    if _MISSING.search(reason):
        return RuleError(path, "required field is missing")
    bad_enum = _BAD_ENUM.match(reason)
    if key:
        container = path.rsplit(".", 1)[-1]
        if bad_enum:
            value = bad_enum.group("value").strip("'")
            return RuleError(f"{path}.{value}", _not_one_of(value, _DICT_KEYS.get(container)))
        culprit = _key_not_matching(path, document)
        if culprit is not None:
            return RuleError(f"{path}.{culprit}", f"the name {_readable(reason)}")
        return RuleError(path, f"a key {_readable(reason)}")
    if bad_enum:
        value = bad_enum.group("value").strip("'")
        return RuleError(path, _not_one_of(value, _enum_at(path)))
    return RuleError(path, _readable(reason))


_EXPECTED = re.compile(r"^Expected `(\w+)`(?:, got `(\w+)`| (>=|<=|>|<) (\S+))?$")
_KINDS = {
    "int": "a whole number",
    "float": "a number",
    "str": "text",
    "bool": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
}


def _readable(reason: str) -> str:
    for pattern, meaning in _PATTERNS.items():
        if pattern in reason:
            return meaning
    expected = _EXPECTED.match(reason)
    if expected is None:
        return reason
    kind, got, op, bound = expected.groups()
    wanted = f"must be {_KINDS.get(kind, kind)}"
    if got:
        return f"{wanted}, not {_KINDS.get(got, got)}"
    if op:
        bound = bound.removesuffix(".0")
        return f"{wanted} {op} {bound}"
    return wanted


def _not_one_of(value: str, enum: type[Enum] | None) -> str:
    if enum is None:
        return f"{value!r} is not an allowed value"
    return f"{value!r} is not one of {', '.join(str(m.value) for m in enum)}"


def _enum_at(path: str) -> type[Enum] | None:
    head, _, last = path.rpartition(".")
    if head.endswith(".consent") or last.startswith("consent["):
        return ConsentMode  # the mode given for one purpose
    return _ENUM_OF_FIELD.get(re.sub(r"\[\d+\]$", "", last))


def _name_keys(path: str, document: bytes | str) -> str:
    """Replaces each `[...]` msgspec writes for a value in a free-keyed object by its key."""
    try:
        root = msgspec.json.decode(document)
    except msgspec.DecodeError:
        return path
    generic = concrete = ""
    rest = path
    while "[...]" in rest:
        before, _, rest = rest.partition("[...]")
        generic += before
        concrete += before
        node = _walk(root, concrete)
        value_type = _DICT_VALUES.get(generic)
        if not isinstance(node, dict) or value_type is None:
            return concrete + "[...]" + rest
        culprit = next((k for k, v in node.items() if not _fits(v, value_type)), None)
        if culprit is None:
            return concrete + "[...]" + rest
        generic += "[...]"
        concrete += f".{culprit}"
    return concrete + rest


def _key_not_matching(path: str, document: bytes | str) -> str | None:
    """The first key of the object at `path` that is not a valid name, if any."""
    node = _walk(msgspec.json.decode(document), path)
    if not isinstance(node, dict):
        return None
    return next((k for k in node if re.fullmatch(ID_PATTERN, k) is None), None)


def _fits(value: Any, value_type: Any) -> bool:
    try:
        msgspec.convert(value, value_type)
    except msgspec.ValidationError:
        return False
    return True


def _walk(node: Any, path: str) -> Any:
    for step in _STEP.finditer(path):
        name, index = step.groups()
        if name is not None and isinstance(node, dict):
            node = node.get(name)
        elif index is not None and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
        else:
            return None
    return node


# --- encoding -------------------------------------------------------------------------------


def rule_set_document(rules: RuleSet) -> dict[str, Any]:
    """The document `decode_rule_set` reads back as `rules` (its version is kept apart).

    A quiet-hours bypass that can never apply (no minimum priority) is left out, which
    changes nothing the engine does.
    """
    wire = RuleSetIn(
        default_time_zone=rules.default_time_zone,
        channels={channel: _channel_out(policy) for channel, policy in rules.channels.items()},
        quiet_hours=[_quiet_out(quiet) for quiet in rules.quiet_hours],
        caps=[_cap_out(cap) for cap in rules.caps],
        dedup=None
        if rules.dedup is None
        else DedupIn(id=rules.dedup.id, window=format_duration(rules.dedup.window)),
        team_priorities=dict(rules.team_priorities),
        approvals=[_approval_out(approval) for approval in rules.approvals],
    )
    # The time zone is worth seeing even when it is the default.
    return {"default_time_zone": rules.default_time_zone, **msgspec.to_builtins(wire)}


def channels_in_force(rules: RuleSet) -> dict[str, Any]:
    """Every channel's policy as the engine applies it under `rules`, in the document's form,
    every field given (a tone only when it is not the channel's default): what a channel the
    rule set names says over its built-in policy, a channel it leaves out as built in. Read
    back as a document's `channels`, it gives the same policies."""
    return {
        str(channel): msgspec.to_builtins(_policy_out(policy))
        for channel, policy in rules.effective_channels().items()
    }


def _ordered(values: frozenset[Any], kind: type[Enum]) -> list[Any]:
    return [member for member in kind if member in values]


def _channel_out(named: ChannelOverride) -> ChannelIn:
    """A channel as the rule set names it: the fields it gives, and only those."""
    session = named.session_window
    tone = named.tone
    return ChannelIn(
        consent=dict(named.consent),
        session_window=format_duration(session) if isinstance(session, timedelta) else session,
        requires_verified_identity=named.requires_verified_identity,
        hard_opt_out=named.hard_opt_out,
        cost=named.cost,
        tone=_tone_out(tone) if isinstance(tone, ChannelTone) else tone,
    )


def _policy_out(policy: ChannelPolicy) -> ChannelIn:
    """A channel's policy in force, every field given (the tone when it is not the default)."""
    given = ChannelOverride(
        consent=dict(policy.consent),
        session_window=policy.session_window,
        requires_verified_identity=policy.requires_verified_identity,
        hard_opt_out=policy.hard_opt_out,
        cost=policy.cost,
        tone=UNSET if policy.tone is None else policy.tone,
    )
    return _channel_out(given)


def _tone_out(tone: ChannelTone) -> ToneIn:
    return ToneIn(
        max_length=tone.max_length,
        structure=tone.structure,
        emoji=tone.emoji,
        links=tone.links,
        max_links=tone.max_links,
    )


def _quiet_out(quiet: QuietHours) -> QuietHoursIn:
    bypass = None
    if quiet.bypass_purposes and quiet.bypass_min_priority is not None:
        bypass = BypassIn(
            purposes=_ordered(quiet.bypass_purposes, Purpose),
            min_priority=quiet.bypass_min_priority,
        )
    return QuietHoursIn(
        id=quiet.id,
        windows=[
            QuietWindowIn(
                start=_format_time(w.start),
                end=_format_time(w.end),
                days=None if w.weekdays == ALL_DAYS else [DAY_NAMES[d] for d in sorted(w.weekdays)],
            )
            for w in quiet.windows
        ],
        channels=None if quiet.channels is None else _ordered(quiet.channels, Channel),
        purposes=None if quiet.purposes is None else _ordered(quiet.purposes, Purpose),
        bypass=bypass,
    )


def _cap_out(cap: FrequencyCap) -> CapIn:
    return CapIn(
        id=cap.id,
        limit=cap.limit,
        window=format_duration(cap.window),
        channel=cap.channel,
        purpose=cap.purpose,
        team=cap.team,
        per_team=cap.per_team,
        exempt_purposes=None
        if cap.exempt_purposes == _DEFAULT_EXEMPT
        else _ordered(cap.exempt_purposes, Purpose),
        on_exceed=cap.on_exceed,
        reserved=cap.reserved,
        reserved_priority=cap.reserved_priority,
    )


def _approval_out(approval: ApprovalRule) -> ApprovalIn:
    return ApprovalIn(
        id=approval.id,
        intents=None if approval.intents is None else sorted(approval.intents),
        min_confidence=approval.min_confidence,
        confidence_below=approval.confidence_below,
        cost_above=approval.cost_above,
        first_message_to=None
        if approval.first_message_to is None
        else sorted(approval.first_message_to),
        tier_attribute=approval.tier_attribute,
        audience_above=approval.audience_above,
        purposes=None if approval.purposes is None else _ordered(approval.purposes, Purpose),
        expires_after=None
        if approval.expires_after == DEFAULT_HOLD
        else format_duration(approval.expires_after),
    )
