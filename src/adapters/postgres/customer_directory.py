"""The customer_directory read model: one row per customer, from the Customer streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from domain.catalog import topic_of
from domain.customer.aggregate import PROFILE_EVENTS, Customer
from domain.customer.profile import PERSONAL_PROFILE_FIELDS, PROFILE_FIELDS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import asyncpg

    from ports.projections import LoggedEvent

__all__ = ["CustomerDirectory"]

_TABLE = "customer_directory"
_CUSTOMER = topic_of(Customer) + "."
_ERASED_TOPIC = _CUSTOMER + "Erased"
_COLUMNS = (
    "customer_id, identities, first_name, last_name, locale, country, time_zone, attributes,"
    " merged_into, updated_at, consents"
)
# jsonb columns: msgspec writes the same JSON values as json.dumps, several times faster.
_encode = msgspec.json.Encoder(order="sorted").encode
_decode = msgspec.json.decode


@dataclass(slots=True)
class _Entry:
    customer_id: UUID
    updated_at: datetime
    identities: set[str] = field(default_factory=set)
    profile: dict[str, str | None] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    merged_into: UUID | None = None
    consents: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> _Entry:
        return cls(
            row["customer_id"],
            row["updated_at"],
            set(row["identities"]),
            {name: row[name] for name in PROFILE_FIELDS},
            _decode(row["attributes"]),
            row["merged_into"],
            _decode(row["consents"]),
        )

    def as_row(self) -> tuple[Any, ...]:
        return (
            self.customer_id,
            sorted(self.identities),
            self.profile.get("first_name"),
            self.profile.get("last_name"),
            self.profile.get("locale"),
            self.profile.get("country"),
            self.profile.get("time_zone"),
            _encode(self.attributes).decode(),
            self.merged_into,
            self.updated_at,
            _encode(self.consents).decode(),
        )


def _identities(claims: Sequence[Mapping[str, Any]]) -> set[str]:
    return {f"{c['identity']['type']}:{c['identity']['value']}" for c in claims}


def _inherit_consents(entry: _Entry, data: Mapping[str, Any]) -> None:
    """As the Customer aggregate does: a withdrawal always carries over, a grant fills a gap."""
    for channel, purpose, state in data["consents"]:
        key = f"{channel}:{purpose}"
        known = entry.consents.get(key)
        at = datetime.fromisoformat(state["at"])
        if known is None or (not state["granted"] and at >= datetime.fromisoformat(known["at"])):
            entry.consents[key] = {"granted": state["granted"], "at": at.isoformat()}
    for channel, state in data["opted_out"]:
        since = datetime.fromisoformat(state["at"]).isoformat()
        entry.consents.setdefault(f"{channel}:*", {"granted": state["granted"], "at": since})


def _fold(entry: _Entry, kind: str, data: Mapping[str, Any], at: str) -> None:
    if kind == "IdentityLinked":
        entry.identities |= _identities([data["identity"]])
    elif kind == "ProfileUpdated":
        entry.profile.update(data["profile"])
        for name, value in data["attributes"].items():
            if value is None:
                entry.attributes.pop(name, None)
            else:
                entry.attributes[name] = value
    elif kind == "Absorbed":
        entry.identities |= _identities(data["identities"])
        entry.profile.update(data["profile"])
        entry.attributes.update(data["attributes"])
    elif kind == "ConsentChanged":
        key = f"{data['channel']}:{data['purpose'] or '*'}"
        entry.consents[key] = {"granted": data["granted"], "at": at}
    elif kind == "ConsentsInherited":
        _inherit_consents(entry, data)
    elif kind == "MergedInto":
        entry.merged_into = UUID(data["survivor_id"])
        entry.identities = set()
    elif kind == "Erased":
        _scrub(entry)


def _scrub(entry: _Entry) -> None:
    """An erased customer's row: no identities, personal names `null`, no attributes."""
    entry.identities = set()
    entry.profile.update(dict.fromkeys(PERSONAL_PROFILE_FIELDS))
    entry.attributes = {}


def _erased_with(event: LoggedEvent) -> list[UUID]:
    """The customers a `Customer.Erased` erased besides its own: those merged into it, whose
    rows keep what they held when they were absorbed (their keys went with it)."""
    erased = [UUID(str(c)) for c in event.data["customer_ids"]]
    return [c for c in erased if c != event.stream_id]


class CustomerDirectory:
    """Customers by id with their identities, profile and attributes; merged ones point on."""

    name = "customer_directory"
    topics = frozenset(_CUSTOMER + kind for kind in PROFILE_EVENTS)

    def __init__(self, suffix: str = "") -> None:
        self.table = _TABLE + suffix
        self.tables = (self.table,)

    def writing_to(self, suffix: str) -> CustomerDirectory:
        return CustomerDirectory(suffix)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        absorbed = {c for e in events if e.topic == _ERASED_TOPIC for c in _erased_with(e)}
        ids = list({e.stream_id for e in events} | absorbed)
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM {self.table} WHERE customer_id = ANY($1::uuid[])", ids
        )
        entries = {row["customer_id"]: _Entry.from_row(row) for row in rows}
        for e in events:
            kind = e.topic.rpartition(".")[2]
            if kind == "Registered":
                entries[e.stream_id] = _Entry(
                    e.stream_id, e.recorded_at, _identities(e.data["identities"])
                )
                continue
            entry = entries.setdefault(e.stream_id, _Entry(e.stream_id, e.recorded_at))
            _fold(entry, kind, e.data, e.recorded_at.isoformat())
            entry.updated_at = e.recorded_at
            if kind == "Erased":
                # Those merged into them go too: a rebuild reads their events erased, and the
                # live row must not keep in clear what the rebuild cannot read.
                for other in _erased_with(e):
                    found = entries.get(other)
                    if found is not None:
                        _scrub(found)
                        found.updated_at = e.recorded_at
        await conn.executemany(
            f"INSERT INTO {self.table} ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
            " $10, $11) ON CONFLICT (customer_id) DO UPDATE SET identities = EXCLUDED.identities,"
            " first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,"
            " locale = EXCLUDED.locale, country = EXCLUDED.country,"
            " time_zone = EXCLUDED.time_zone, attributes = EXCLUDED.attributes,"
            " merged_into = EXCLUDED.merged_into, updated_at = EXCLUDED.updated_at,"
            " consents = EXCLUDED.consents",
            [entry.as_row() for entry in entries.values()],
        )
