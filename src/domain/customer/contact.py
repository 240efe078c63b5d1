"""What the rules see of a customer: consents, opt-outs, reachable channels and recent contact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import phonenumbers
from phonenumbers import timezone as phone_time_zones

from domain.customer.identities import Verification
from domain.policy.decision import ConsentState, ContactRecord, CustomerFacts
from domain.policy.vocabulary import CHANNEL_IDENTITIES, Channel, Purpose

if TYPE_CHECKING:
    from collections import deque
    from collections.abc import Mapping
    from datetime import datetime

    from domain.customer.identities import Identity

__all__ = [
    "LEDGER_RETENTION",
    "ConsentRecord",
    "customer_facts",
    "forget_expired",
    "infer_time_zone",
]

LEDGER_RETENTION = timedelta(days=90)
"""Contact history older than this is forgotten by the aggregate; rules cannot look further."""


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """A consent as events carry it: purpose None means the whole channel (STOP)."""

    channel: Channel
    purpose: Purpose | None
    granted: bool
    source: str


def infer_time_zone(identities: dict[Identity, Verification]) -> str | None:
    """The time zone of the customer's phone number's country, when it has exactly one."""
    for identity in sorted(identities):
        if identity.type != "phone":
            continue
        try:
            number = phonenumbers.parse(identity.value, None)
        except phonenumbers.NumberParseException:
            continue
        zones = [z for z in phone_time_zones.time_zones_for_number(number) if z != "Etc/Unknown"]
        if len(zones) == 1:
            return zones[0]
    return None


def customer_facts(
    identities: dict[Identity, Verification],
    time_zone: str | None,
    consents: dict[tuple[Channel, Purpose], ConsentState],
    opted_out: dict[Channel, ConsentState],
    suppressed: dict[Channel | None, str],
    last_inbound: dict[Channel, datetime],
    attributes: Mapping[str, object] | None = None,
) -> CustomerFacts:
    """The plain data the policy engine decides on."""
    types: dict[str, Verification] = {}
    for identity, level in identities.items():
        known = types.get(identity.type)
        if known is None or level.at_least(known):
            types[identity.type] = level
    reachable, verified = _channels_of(frozenset(types.items()))
    inferred = None if time_zone else infer_time_zone(identities)
    return CustomerFacts(
        time_zone=time_zone or inferred,
        time_zone_inferred=inferred is not None,
        reachable=reachable,
        verified=verified,
        consents=dict(consents),
        opted_out=dict(opted_out),
        suppressed=dict(suppressed),
        last_inbound=dict(last_inbound),
        attributes=dict(attributes or {}),
    )


@lru_cache(maxsize=1024)
def _channels_of(
    types: frozenset[tuple[str, Verification]],
) -> tuple[frozenset[Channel], frozenset[Channel]]:
    """The channels a customer holding identities of these types (at their best verification)
    can be reached on, and those of them on a verified identity. Customers hold a few
    combinations of types and levels between them: each is worked out once (of the last 1,024
    seen), not per decision."""
    levels = dict(types)
    reachable = frozenset(
        channel for channel, kinds in CHANNEL_IDENTITIES.items() if any(k in levels for k in kinds)
    )
    verified = frozenset(
        channel
        for channel, kinds in CHANNEL_IDENTITIES.items()
        if any(k in levels and levels[k].at_least(Verification.VERIFIED) for k in kinds)
    )
    return reachable, verified


def forget_expired(ledger: deque[ContactRecord], now: datetime) -> None:
    """Drops, from the old end, what is past the retention; the rules never look that far."""
    since = now - LEDGER_RETENTION
    while ledger and ledger[0].at <= since:
        ledger.popleft()
