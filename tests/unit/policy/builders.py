"""Small builders so policy tests read as specifications."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.policy.decision import ConsentState, ContactRecord, CustomerFacts, SendRequest
from domain.policy.vocabulary import Channel, Purpose

NOON = datetime(2026, 11, 27, 12, tzinfo=UTC)
ALL_CHANNELS = frozenset(Channel)


def opted_in(
    *pairs: tuple[Channel, Purpose], at: datetime = NOON
) -> dict[tuple[Channel, Purpose], ConsentState]:
    return {pair: ConsentState(True, "signup form", at - timedelta(days=30)) for pair in pairs}


def customer(**overrides: object) -> CustomerFacts:
    values: dict[str, object] = {
        "time_zone": "Europe/London",
        "reachable": ALL_CHANNELS,
        "verified": ALL_CHANNELS,
        "consents": opted_in(*((c, p) for c in Channel for p in Purpose)),
    }
    values.update(overrides)
    return CustomerFacts(**values)  # type: ignore[arg-type]


def request(
    *channels: Channel, purpose: Purpose = Purpose.MARKETING, team: str = "growth", **extra: object
) -> SendRequest:
    return SendRequest(team, purpose, channels or (Channel.EMAIL,), **extra)  # type: ignore[arg-type]


def sent(
    hours_ago: float,
    channel: Channel = Channel.EMAIL,
    purpose: Purpose = Purpose.MARKETING,
    team: str = "growth",
    dedup_key: str | None = None,
) -> ContactRecord:
    return ContactRecord(NOON - timedelta(hours=hours_ago), channel, purpose, team, 0, dedup_key)
