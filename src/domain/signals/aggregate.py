"""A signal is recorded once, under an id derived from its producer's event id."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha1
from typing import Any
from uuid import UUID, SafeUUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic

from domain.customer.identities import IdentityClaim
from domain.customer.signal_effects import CUSTOMER_SIGNALS
from domain.shared.personal import PersonalFields
from domain.shared.topics import StoredAs

__all__ = ["Signal", "SignalReport", "signal_id_for"]

_SIGNALS = UUID("6f1c8d52-4a4e-4bb8-9b8e-3f0a4f6f2c11").bytes
# uuid5 bit for bit (RFC 4122: SHA-1 of namespace and name, version 5, RFC variant), without
# `UUID.__init__`, whose checks cost more than the hash: attribution names every signal.
_KEEP = ~(0xF000 << 64 | 0xC000 << 48)
_VERSION_5_RFC_VARIANT = 0x5000 << 64 | 0x8000 << 48
_new = object.__new__
_set = object.__setattr__
_from_bytes = int.from_bytes
_UNKNOWN = SafeUUID.unknown  # an enum member looked up once: a lookup costs a tenth of the id


def signal_id_for(producer_event_id: str) -> UUID:
    """The same producer event id always names the same signal, so a retry changes nothing."""
    digest = sha1(_SIGNALS + producer_event_id.encode()).digest()
    signal_id = _new(UUID)
    _set(signal_id, "int", _from_bytes(digest[:16]) & _KEEP | _VERSION_5_RFC_VARIANT)
    _set(signal_id, "is_safe", _UNKNOWN)
    return signal_id


@dataclass(frozen=True, slots=True)
class SignalReport:
    """What a producer sent: the event, who it is about, and profile facts it carries."""

    event_id: str
    type: str
    occurred_at: datetime
    identities: tuple[IdentityClaim, ...]
    properties: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    signal_id: UUID = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "signal_id", signal_id_for(self.event_id))

    @property
    def changes_profile(self) -> bool:
        return bool(self.profile or self.attributes)

    @property
    def changes_customer(self) -> bool:
        """An inbound message or a consent change: it acts on the customer, see signal_effects."""
        return self.type in CUSTOMER_SIGNALS

    @property
    def needs_customer(self) -> bool:
        """Whether recording it changes the customer, not only the signal log."""
        return self.changes_profile or self.changes_customer


class Signal(Aggregate):
    """Something that happened about one customer; immutable once recorded."""

    stored_as = StoredAs("domain.signals.aggregate:Signal")
    # What a producer said about the customer: an inbound message's text, a page, an order.
    personal = PersonalFields({"Recorded": ("properties.*",)})

    class Recorded(Aggregate.Created):
        customer_id: UUID
        event_id: str
        signal_type: str
        occurred_at: datetime
        properties: dict[str, Any]
        source: str | None

        @property
        def subject_id(self) -> UUID:
            """The customer the signal is about, recorded without its aggregate."""
            return self.customer_id

    @event(Recorded)
    def __init__(
        self,
        id: UUID,
        timestamp: datetime,
        customer_id: UUID,
        event_id: str,
        signal_type: str,
        occurred_at: datetime,
        properties: dict[str, Any],
        source: str | None,
    ) -> None:
        self.customer_id = customer_id
        self.event_id = event_id
        self.signal_type = signal_type
        self.occurred_at = occurred_at
        self.properties = properties
        self.source = source

    @property
    def subject_id(self) -> UUID:
        """The customer the signal is about."""
        return self.customer_id

    @classmethod
    def recorded(cls, report: SignalReport, customer_id: UUID, at: datetime) -> Signal.Recorded:
        """The one event a signal ever has, without building the aggregate around it."""
        # The same event the dataclass's __init__ makes, its fields set at once: attribution
        # makes one per signal, and the frozen __init__ costs as much as the rest of recording it.
        # The id is a UUID by construction, which is all __post_init__ checks.
        recorded = _new(cls.Recorded)
        recorded.__dict__.update(
            originator_id=report.signal_id,
            originator_version=cls.INITIAL_VERSION,
            timestamp=at,
            originator_topic=_TOPIC,
            customer_id=customer_id,
            event_id=report.event_id,
            signal_type=report.type,
            occurred_at=report.occurred_at,
            properties=report.properties,
            source=report.source,
        )
        return recorded


# In memory a created event names its aggregate as eventsourcing resolves it; the codec stores
# the stable name (domain.catalog) instead.
_TOPIC = get_topic(Signal)
