"""A signal as it was received: kept as the producer sent it, before it is attributed.

Intake commits the fact that a producer reported something, deduplicated by the producer's
event id; attributing it to a customer (identity resolution, merges, profile changes and the
`Signal.Recorded` event on the customer's timeline) follows from the log, asynchronously.
"""

from __future__ import annotations

from hashlib import md5
from uuid import UUID

from domain.shared.topics import StoredAs

__all__ = [
    "INTAKE_ID_PREFIX",
    "RECEIVED_PERSONAL",
    "RECEIVED_TOPIC",
    "REFUSED_TOPIC",
    "intake_id_for",
]

# Received signals have no event class: their payloads are documents, read as plain JSON.
_INTAKE = StoredAs("domain.signals.intake:Signal")

# The payload of a received signal is the producer's JSON as it arrived (the wire format of
# `POST /v1/events` and the NATS subjects, class version 1).
RECEIVED_TOPIC = _INTAKE.topic("Received")
# Its personal values, sealed with the key of its first identity until attribution knows the
# customer (ADR 0019): who it names, what it says, the names and attributes it sets.
RECEIVED_PERSONAL = (
    "identities[].value",
    "properties.*",
    "profile.first_name",
    "profile.last_name",
    "attributes.*",
)
# Version 2 of a received signal's stream, when attribution could not put it on a customer
# (a rule of the customer refused it): `{"reason": ...}`. Attribution goes on with the others.
REFUSED_TOPIC = _INTAKE.topic("Refused")

# The stream id is the MD5 of this prefix and the producer's event id, so PostgreSQL derives
# it in the insert itself (`md5(prefix || id)::uuid`) rather than Python per signal.
INTAKE_ID_PREFIX = "chorus-signal-intake:"


def intake_id_for(producer_event_id: str) -> UUID:
    """The received signal's stream: one per producer event id, so a retry is a duplicate."""
    return UUID(md5((INTAKE_ID_PREFIX + producer_event_id).encode()).hexdigest())
