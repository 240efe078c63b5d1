"""A rule set: versioned data, not code. Each rule has an id that decisions cite."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time, timedelta
from enum import StrEnum
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

from msgspec import UNSET, UnsetType

from domain.assistant.intents import canonical_intent
from domain.policy.tone import DEFAULT_TONES, ChannelTone
from domain.policy.vocabulary import Channel, Purpose

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ALL_DAYS",
    "BUILT_IN_CHANNELS",
    "BUILT_IN_NAMED",
    "DEFAULT_HOLD",
    "ApprovalRule",
    "ChannelOverride",
    "ChannelPolicy",
    "ConsentMode",
    "DedupRule",
    "FrequencyCap",
    "OnExceed",
    "QuietHours",
    "QuietWindow",
    "RuleSet",
]

ALL_DAYS = frozenset(range(7))

_T = TypeVar("_T")


class OnExceed(StrEnum):
    """What a cap does to a message that does not fit."""

    DEFER = "defer"
    SUPPRESS = "suppress"


class ConsentMode(StrEnum):
    """What a channel demands before a message of a purpose may go."""

    OPT_IN = "opt_in"  # an explicit grant is needed
    OPT_OUT = "opt_out"  # allowed unless withdrawn
    NONE = "none"  # consent does not apply (but a hard opt-out still does)


@dataclass(frozen=True, slots=True)
class QuietWindow:
    """Local times when nothing may arrive; `end` before `start` crosses midnight.

    `weekdays` are the days the window starts on, Monday = 0.
    """

    start: time
    end: time
    weekdays: frozenset[int] = ALL_DAYS


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Defers messages that would arrive in a quiet window of the customer's own time zone."""

    id: str
    windows: tuple[QuietWindow, ...]
    channels: frozenset[Channel] | None = None
    purposes: frozenset[Purpose] | None = None
    bypass_purposes: frozenset[Purpose] = frozenset()
    bypass_min_priority: int | None = None

    def applies(self, channel: Channel, purpose: Purpose, priority: int) -> bool:
        if self.channels is not None and channel not in self.channels:
            return False
        if self.purposes is not None and purpose not in self.purposes:
            return False
        urgent = self.bypass_min_priority is not None and priority >= self.bypass_min_priority
        return not (purpose in self.bypass_purposes and urgent)


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    """At most `limit` messages in any sliding `window`, counted over what matches its scope.

    A scope left as None counts every value: a cap with no channel, purpose or team is the
    customer's global contact budget, shared by all teams. With `per_team`, each team has its
    own budget. `reserved` slots of the limit are kept for priority >= `reserved_priority`.
    """

    id: str
    limit: int
    window: timedelta
    channel: Channel | None = None
    purpose: Purpose | None = None
    team: str | None = None
    per_team: bool = False
    exempt_purposes: frozenset[Purpose] = frozenset({Purpose.TRANSACTIONAL})
    on_exceed: OnExceed = OnExceed.DEFER
    reserved: int = 0
    reserved_priority: int = 0

    def __post_init__(self) -> None:
        if self.limit < 0 or self.window <= timedelta(0):
            raise ValueError(f"cap {self.id}: limit must be >= 0 and window positive")
        if not 0 <= self.reserved <= self.limit:
            raise ValueError(f"cap {self.id}: reserved must be between 0 and limit")


@dataclass(frozen=True, slots=True)
class DedupRule:
    """A message with a dedup key already sent within `window` is not sent again."""

    id: str
    window: timedelta


DEFAULT_HOLD = timedelta(hours=24)
"""How long a held message waits for an operator when its rule does not say."""


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    """Holds a message every other rule allows until an operator approves it, when all of its
    conditions hold; an operator who does not decide within `expires_after` lets it expire.

    The conditions: the message answers one of `intents` with at least `min_confidence`; its
    intent's confidence is below `confidence_below`; one message on the chosen channel costs
    more than `cost_above`; it is the first message (in the contact ledger's memory) to a
    customer whose `tier_attribute` is one of `first_message_to`; it is part of a broadcast to
    more than `audience_above` customers. `purposes` narrows the rule to those purposes.
    """

    id: str
    intents: frozenset[str] | None = None
    min_confidence: float = 0.0
    confidence_below: float | None = None
    cost_above: float | None = None
    first_message_to: frozenset[str] | None = None
    tier_attribute: str = "tier"
    audience_above: int | None = None
    purposes: frozenset[Purpose] | None = None
    expires_after: timedelta = DEFAULT_HOLD

    def __post_init__(self) -> None:
        conditions = (
            self.intents,
            self.confidence_below,
            self.cost_above,
            self.first_message_to,
            self.audience_above,
        )
        if all(condition is None for condition in conditions):
            raise ValueError(f"approval {self.id}: needs at least one condition")
        if self.expires_after <= timedelta(0):
            raise ValueError(f"approval {self.id}: expires_after must be positive")
        if self.intents is not None:
            # Intents by their keys, rules published with Banking77's spellings included.
            keys = frozenset(canonical_intent(intent) for intent in self.intents)
            object.__setattr__(self, "intents", keys)


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    """What a channel demands, whatever team or campaign sends on it."""

    channel: Channel
    consent: dict[Purpose, ConsentMode] = field(default_factory=dict)
    # WhatsApp: outside this many hours since the customer last wrote, only approved templates.
    session_window: timedelta | None = None
    requires_verified_identity: bool = False
    # An opt-out the channel's regulation makes absolute (SMS STOP) also stops transactional.
    hard_opt_out: bool = False
    cost: float = 0.0
    tone: ChannelTone | None = None  # None: the channel's DEFAULT_TONES entry

    def consent_mode(self, purpose: Purpose) -> ConsentMode:
        return self.consent.get(purpose, ConsentMode.OPT_OUT)


_OPT_IN_FOR_MARKETING = MappingProxyType({Purpose.MARKETING: ConsentMode.OPT_IN})
_OPT_IN_FOR_MARKETING_AND_SERVICE = MappingProxyType(
    {Purpose.MARKETING: ConsentMode.OPT_IN, Purpose.SERVICE: ConsentMode.OPT_IN}
)

BUILT_IN_CHANNELS: Mapping[Channel, ChannelPolicy] = MappingProxyType(
    {
        Channel.EMAIL: ChannelPolicy(Channel.EMAIL, dict(_OPT_IN_FOR_MARKETING), cost=0.0008),
        Channel.SMS: ChannelPolicy(
            Channel.SMS,
            dict(_OPT_IN_FOR_MARKETING_AND_SERVICE),
            hard_opt_out=True,
            cost=0.0079,
        ),
        Channel.WHATSAPP: ChannelPolicy(
            Channel.WHATSAPP,
            dict(_OPT_IN_FOR_MARKETING_AND_SERVICE),
            session_window=timedelta(hours=24),
            hard_opt_out=True,
            cost=0.0147,
        ),
        Channel.PUSH: ChannelPolicy(Channel.PUSH, {}, cost=0.0),
        Channel.VOICE: ChannelPolicy(Channel.VOICE, dict(_OPT_IN_FOR_MARKETING), hard_opt_out=True),
        Channel.CHAT: ChannelPolicy(Channel.CHAT, {}),
    }
)
"""What each channel's regulation demands: marketing needs opt-in everywhere, SMS and WhatsApp
service too; STOP on SMS, WhatsApp and voice is absolute; WhatsApp outside the 24 h session
window takes only approved templates. The default rule set names exactly these
(`BUILT_IN_NAMED`); a rule set that leaves a channel out keeps that channel's entry here, and
one that names it changes only the fields it gives (`ChannelOverride`)."""


def _given(value: _T | UnsetType, otherwise: _T) -> _T:
    return otherwise if isinstance(value, UnsetType) else value


@dataclass(frozen=True, slots=True)
class ChannelOverride:
    """What a rule set says about a channel it names: each field it gives changes only that,
    over the channel's built-in policy (`BUILT_IN_CHANNELS`), and each it leaves UNSET keeps
    the built-in value. `consent` sets the mode of each purpose it names; the purposes it does
    not name keep their built-in mode. `session_window=None` removes the built-in window;
    `tone` replaces the tone whole (None: the channel's default tone).

    `{"sms": {"tone": ...}}` changes SMS's tone and nothing else: marketing still needs an
    opt-in and STOP stays absolute.
    """

    consent: dict[Purpose, ConsentMode] = field(default_factory=dict)
    session_window: timedelta | UnsetType | None = UNSET
    requires_verified_identity: bool | UnsetType = UNSET
    hard_opt_out: bool | UnsetType = UNSET
    cost: float | UnsetType = UNSET
    tone: ChannelTone | UnsetType | None = UNSET

    def over(self, built_in: ChannelPolicy) -> ChannelPolicy:
        """The policy in force: `built_in` with what this override gives in its place."""
        return ChannelPolicy(
            channel=built_in.channel,
            consent={**built_in.consent, **self.consent},
            session_window=_given(self.session_window, built_in.session_window),
            requires_verified_identity=_given(
                self.requires_verified_identity, built_in.requires_verified_identity
            ),
            hard_opt_out=_given(self.hard_opt_out, built_in.hard_opt_out),
            cost=_given(self.cost, built_in.cost),
            tone=_given(self.tone, built_in.tone),
        )


def _as_named(policy: ChannelPolicy) -> ChannelOverride:
    """A built-in policy as the default rule set names it: what it says beyond the defaults."""
    return ChannelOverride(
        consent=dict(policy.consent),
        session_window=UNSET if policy.session_window is None else policy.session_window,
        requires_verified_identity=policy.requires_verified_identity or UNSET,
        hard_opt_out=policy.hard_opt_out or UNSET,
        cost=policy.cost or UNSET,
        tone=UNSET if policy.tone is None else policy.tone,
    )


BUILT_IN_NAMED: Mapping[Channel, ChannelOverride] = MappingProxyType(
    {channel: _as_named(policy) for channel, policy in BUILT_IN_CHANNELS.items()}
)
"""Every channel as the built-in rule set names it: over its built-in policy, the same."""


# Not slotted: the policies in force are worked out once per rule set and kept on it, apart
# from its fields (which are what is stored and compared).
@dataclass(frozen=True)
class RuleSet:
    """Everything the engine needs to decide; `version` is cited by every decision.

    `channels` holds what the rule set says of the channels it names, each field over the
    channel's built-in policy (`ChannelOverride`); a channel it leaves out is governed by its
    built-in policy (`BUILT_IN_CHANNELS`), never by nothing. `channel_policy` answers the
    policy in force.
    """

    version: int
    default_time_zone: str = "UTC"
    channels: dict[Channel, ChannelOverride] = field(default_factory=dict)
    quiet_hours: tuple[QuietHours, ...] = ()
    caps: tuple[FrequencyCap, ...] = ()
    dedup: DedupRule | None = None
    team_priorities: dict[str, int] = field(default_factory=dict)
    approvals: tuple[ApprovalRule, ...] = ()

    @cached_property
    def _in_force(self) -> dict[Channel, ChannelPolicy]:
        # Once per rule set: the engine asks for a channel's policy on every decision.
        named = self.channels
        return {
            channel: built_in if channel not in named else named[channel].over(built_in)
            for channel, built_in in BUILT_IN_CHANNELS.items()
        }

    def channel_policy(self, channel: Channel) -> ChannelPolicy:
        """The channel's policy in force: its built-in one with what this rule set says of it
        in its place. Naming a channel changes what it says, never drops the rest."""
        return self._in_force[channel]

    def effective_channels(self) -> dict[Channel, ChannelPolicy]:
        """Every channel's policy in force under this rule set, named or built in."""
        return dict(self._in_force)

    def tone_for(self, channel: Channel) -> ChannelTone:
        """The channel's tone as this rule set says it, or its default."""
        return self.channel_policy(channel).tone or DEFAULT_TONES[channel]
