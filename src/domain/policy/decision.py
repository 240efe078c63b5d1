"""What goes into a decision and what comes out: plain, immutable data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime  # events carry these types; msgspec resolves them at run time
from enum import StrEnum

from domain.policy.vocabulary import Channel, Purpose

__all__ = [
    "ApprovedHold",
    "ConsentState",
    "ContactRecord",
    "CustomerFacts",
    "Decision",
    "Effect",
    "FiredRule",
    "Outcome",
    "SendRequest",
]


class Outcome(StrEnum):
    SEND = "send"
    DEFER = "defer"
    REROUTE = "reroute"
    SUPPRESS = "suppress"
    HOLD = "hold"  # allowed by every other rule, but an operator must approve it first


class Effect(StrEnum):
    """What a fired rule did to the request."""

    ALLOWED = "allowed"  # evidence that let it through, e.g. the consent it relied on
    BLOCKED_CHANNEL = "blocked_channel"
    DEFERRED = "deferred"
    SUPPRESSED = "suppressed"
    HELD = "held"


@dataclass(frozen=True, slots=True)
class ConsentState:
    """A grant or withdrawal, with its proof."""

    granted: bool
    source: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """What the rules need to know about the customer, and nothing more."""

    time_zone: str | None = None
    time_zone_inferred: bool = False  # from the phone number's country, not the profile
    reachable: frozenset[Channel] = frozenset()
    verified: frozenset[Channel] = frozenset()
    consents: dict[tuple[Channel, Purpose], ConsentState] = field(default_factory=dict)
    opted_out: dict[Channel, ConsentState] = field(default_factory=dict)
    suppressed: dict[Channel | None, str] = field(default_factory=dict)
    last_inbound: dict[Channel, datetime] = field(default_factory=dict)
    attributes: dict[str, object] = field(default_factory=dict)  # the profile's custom ones


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """One message allowed earlier. The ledger lists them oldest first, as they were written;
    caps and dedup read it from the newest end and stop at their window."""

    at: datetime
    channel: Channel
    purpose: Purpose
    team: str
    priority: int = 0
    dedup_key: str | None = None


@dataclass(frozen=True, slots=True)
class ApprovedHold:
    """An operator approved what an approval rule held: that rule lets it through after."""

    rule_id: str
    by: str


@dataclass(frozen=True, slots=True)
class SendRequest:
    """A team asks to reach a customer for a purpose, on channels in order of preference."""

    team: str
    purpose: Purpose
    channels: tuple[Channel, ...]
    priority: int = 0
    dedup_key: str | None = None
    expires_at: datetime | None = None
    approved_template: bool = False
    sensitive: bool = False
    intent: str | None = None  # what the customer asked, when the message answers them
    intent_confidence: float | None = None
    audience: int | None = None  # how many customers the broadcast it is part of reaches
    approved: tuple[ApprovedHold, ...] = ()


@dataclass(frozen=True, slots=True)
class FiredRule:
    """A rule that shaped a decision, in words an auditor can read."""

    rule_id: str
    effect: Effect
    reason: str
    channel: Channel | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome, the channel it goes on, and every rule that fired. For a hold,
    `defer_until` is when the hold expires unless an operator decides first."""

    outcome: Outcome
    rule_set_version: int
    channel: Channel | None = None
    defer_until: datetime | None = None
    fired: tuple[FiredRule, ...] = ()

    @property
    def allows_send(self) -> bool:
        return self.outcome in (Outcome.SEND, Outcome.REROUTE)
