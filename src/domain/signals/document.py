"""What a signal is made of: the document producers send, checked whole and read as a report.

The same document comes over HTTP and NATS, in batches of at most `MAX_BATCH`. A document is
at most `MAX_SIGNAL_BYTES` of JSON, and the edge tells the reader what else no stored document
may hold (`refuse`: control characters, invalid UTF-8, deep nesting; ADR 8) before it is read;
a fault is said as where (a JSON path such as `$.identities[0].value`) and why. An inbound
message (`message.received`) must also say rightly what its conversation reads: a channel its
identities write on, and a topic key if it names a topic (`domain.conversation.inbound`).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from domain.conversation.inbound import INBOUND_MESSAGE_SIGNALS, message_fault
from domain.customer.identities import Identity, IdentityClaim, IdentityNormalizer, Verification
from domain.customer.profile import Profile, check_attributes
from domain.customer.signal_effects import CUSTOMER_SIGNALS, changes_consent
from domain.shared.documents import field_of
from domain.shared.errors import InvalidValue
from domain.shared.times import time_fault
from domain.signals.aggregate import SignalReport

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "MAX_BATCH",
    "MAX_SIGNAL_BYTES",
    "NAME_PATTERN",
    "TYPE_PATTERN",
    "IdentityIn",
    "InvalidSignal",
    "ProfileIn",
    "ReceivedSignal",
    "SignalIn",
    "SignalReader",
    "name_fault",
    "signal_id_of",
    "type_fault",
]

# The patterns are documented in the schema and checked by `SignalReader`, not by msgspec: a
# regex run from the decoder costs more than all the rest of decoding a signal.
# No surrounding whitespace and no control characters, C0, DEL or C1 (PostgreSQL refuses NUL).
NAME_PATTERN = r"^(?![^\x00-\x1f\x7f-\x9f]*[\x00-\x1f\x7f-\x9f])\S(.*\S)?$"
TYPE_PATTERN = r"^[A-Za-z0-9_.:-]+$"
Name = Annotated[
    str, msgspec.Meta(min_length=1, max_length=200, extra_json_schema={"pattern": NAME_PATTERN})
]
SignalType = Annotated[
    str, msgspec.Meta(min_length=1, max_length=100, extra_json_schema={"pattern": TYPE_PATTERN})
]
_name = re.compile(NAME_PATTERN)

MAX_BATCH = 1000
"""Signals in one batch (an HTTP body, a NATS message), at most."""
MAX_SIGNAL_BYTES = 64 * 1024
"""One signal's encoded JSON, at most: a larger one is refused, the rest of its batch stored."""
_TYPE_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_.:-")


def name_fault(value: str) -> str | None:
    """Why `value` does not match NAME_PATTERN, if it does not."""
    if value.isprintable():  # the common case, without a regex: only the ends to look at
        if not value[0].isspace() and not value[-1].isspace():
            return None
    elif _name.match(value):
        return None
    return "must not start or end with whitespace, nor hold control characters"


def type_fault(value: str) -> str | None:
    """Why `value` does not match TYPE_PATTERN, if it does not."""
    if _TYPE_CHARACTERS.issuperset(value):
        return None
    return "may hold only letters, digits and _ . : -"


class IdentityIn(msgspec.Struct, forbid_unknown_fields=True):
    """`{"type": "email", "value": "ana@example.org"}`; verification defaults to unverified."""

    type: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    verification: Verification = Verification.UNVERIFIED


class ProfileIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Typed profile fields; leave one out to keep it as it is."""

    first_name: str | None = None
    last_name: str | None = None
    time_zone: str | None = None
    locale: str | None = None
    country: str | None = None

    def changes(self) -> dict[str, Any]:
        """The fields given, by name."""
        return {f: getattr(self, f) for f in self.__struct_fields__ if getattr(self, f) is not None}


class SignalIn(msgspec.Struct, forbid_unknown_fields=True):
    """One signal: the producer's event id makes it idempotent."""

    id: Name
    type: SignalType
    occurred_at: datetime
    identities: Annotated[list[IdentityIn], msgspec.Meta(min_length=1, max_length=20)]
    properties: dict[str, Any] = msgspec.field(default_factory=dict)
    source: Name | None = None
    profile: ProfileIn | None = None
    attributes: dict[str, str | int | float | bool | None] = msgspec.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InvalidSignal:
    """Why the signal at `index` of a batch was refused."""

    index: int
    field: str
    reason: str
    signal_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReceivedSignal:
    """One valid signal as the producer sent it, with the producer's event id; `at_once` is
    its report when it must reach its customer before the answer (an opt-out, say)."""

    event_id: str
    payload: bytes
    at_once: SignalReport | None = None
    owner: Identity | None = None  # its first identity: what is received about it is sealed
    # What stays readable of it once its customer is erased, beside its id: what kind of
    # signal it was, when it occurred, and where from (its identities, properties, profile and
    # attributes are sealed with the owner's key).
    kept: Mapping[str, object] = field(default_factory=dict)


def signal_id_of(raw: msgspec.Raw | bytes) -> str | None:
    """The producer's id of a signal that failed validation, when it can be read at all."""
    try:
        found = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    value = found.get("id") if isinstance(found, dict) else None
    return value if isinstance(value, str) else None


_signal_decoder = msgspec.json.Decoder(SignalIn)


class SignalReader:
    """Reads signal documents and turns them into reports with normalised identities.

    `refuse` is the edge's check of a raw document for what no stored document may hold: the
    JSON path and reason of its first fault, if it has one."""

    def __init__(
        self,
        normalizer: IdentityNormalizer,
        refuse: Callable[[msgspec.Raw | bytes], tuple[str, str] | None] | None = None,
    ) -> None:
        self.normalizer = normalizer
        self.refuse = refuse
        self._claims: dict[tuple[str, str, Verification], IdentityClaim] = {}

    def claim(self, identity: IdentityIn) -> IdentityClaim:
        """The normalised claim; claims are immutable, so repeats share one object."""
        key = (identity.type, identity.value, identity.verification)
        found = self._claims.get(key)
        if found is None:
            found = IdentityClaim(
                self.normalizer.normalize(identity.type, identity.value), identity.verification
            )
            if len(self._claims) >= 100_000:
                self._claims.clear()
            self._claims[key] = found
        return found

    def decode(self, index: int, raw: msgspec.Raw | bytes) -> SignalIn | InvalidSignal:
        """The document at `index` of a batch, as its schema reads it, or the first fault."""
        if len(raw) > MAX_SIGNAL_BYTES:
            reason = f"is {len(raw):,} bytes of JSON; a signal may have {MAX_SIGNAL_BYTES:,}"
            return InvalidSignal(index, "$", reason, signal_id_of(raw))
        # Before anything stores it or walks it: text PostgreSQL refuses, and deep nesting.
        fault = self.refuse(raw) if self.refuse is not None else None
        if fault is not None:
            return InvalidSignal(index, *fault, signal_id_of(raw))
        return self._decoded(index, raw)

    def _decoded(self, index: int, raw: msgspec.Raw | bytes) -> SignalIn | InvalidSignal:
        try:
            return _signal_decoder.decode(raw)
        except msgspec.ValidationError as error:
            field, reason = field_of(error)
            return InvalidSignal(index, field, reason, signal_id_of(raw))
        except msgspec.DecodeError as error:
            return InvalidSignal(index, "$", str(error))

    def check(self, index: int, raw: msgspec.Raw | bytes) -> SignalIn | InvalidSignal:
        """The signal if it is valid, as `read` would take it, without building the report."""
        signal = self.decode(index, raw)
        if isinstance(signal, InvalidSignal):
            return signal
        checked = self._checked(index, signal)
        if isinstance(checked, InvalidSignal):
            return checked
        return self._message_fault(index, signal, checked[0]) or signal

    def received(self, index: int, signal: SignalIn, payload: bytes) -> ReceivedSignal:
        """A checked signal for intake; one that changes its customer's consent carries its
        report (an opt-out takes effect before the answer). Other inbound messages reach their
        customers through attribution, in its pages: the service window they open and their
        conversation follow from there."""
        at_once = None
        if signal.type in CUSTOMER_SIGNALS:
            report = self.report(index, signal)
            if isinstance(report, SignalReport) and changes_consent(signal.type, report.properties):
                at_once = report
        kept: dict[str, object] = {"type": signal.type, "occurred_at": signal.occurred_at}
        if signal.source is not None:
            kept["source"] = signal.source
        return ReceivedSignal(
            signal.id, payload, at_once, self.claim(signal.identities[0]).identity, kept
        )

    def read(self, index: int, raw: msgspec.Raw | bytes) -> SignalReport | InvalidSignal:
        """The report of the document at `index` of a batch, or the first fault."""
        signal = self.decode(index, raw)
        if isinstance(signal, InvalidSignal):
            return signal
        report = self.report(index, signal)
        if isinstance(report, InvalidSignal):
            return report
        return self._message_fault(index, signal, report.identities) or report

    def parse(self, payload: bytes) -> SignalReport | str:
        """A received signal's report, or why it is refused (for attribution: the edge's
        checks passed when it was received; what an inbound message says is not checked
        again, so one received before those checks still reaches its customer and thread)."""
        signal = self._decoded(0, payload)
        report = signal if isinstance(signal, InvalidSignal) else self.report(0, signal)
        if isinstance(report, InvalidSignal):
            return f"{report.field}: {report.reason}"
        return report

    def report(self, index: int, signal: SignalIn) -> SignalReport | InvalidSignal:
        """The decoded signal as the domain's report, or the first fault."""
        checked = self._checked(index, signal)
        if isinstance(checked, InvalidSignal):
            return checked
        claims, profile = checked
        return SignalReport(
            event_id=signal.id,
            type=signal.type,
            occurred_at=signal.occurred_at,
            identities=claims,
            properties=signal.properties,
            source=signal.source,
            profile=profile,
            attributes=dict(signal.attributes),
        )

    def _checked(
        self, index: int, signal: SignalIn
    ) -> tuple[tuple[IdentityClaim, ...], dict[str, Any]] | InvalidSignal:
        """The normalised identities and profile changes, or the first thing wrong."""
        field, fault = "$.id", name_fault(signal.id)
        if fault is None:
            field, fault = "$.type", type_fault(signal.type)
        if fault is None and signal.source is not None:
            field, fault = "$.source", name_fault(signal.source)
        if fault is None:
            field, fault = "$.occurred_at", time_fault(signal.occurred_at)
        if fault is not None:
            return InvalidSignal(index, field, fault, signal.id)
        try:
            claims = tuple(map(self.claim, signal.identities))
        except InvalidValue:
            return self._invalid_identity(index, signal)
        profile = signal.profile.changes() if signal.profile else {}
        try:
            if profile:
                Profile().merged_with(profile)
        except InvalidValue as error:
            return InvalidSignal(index, f"$.profile.{error.field}", error.reason, signal.id)
        try:
            if signal.attributes:
                check_attributes(signal.attributes)
        except InvalidValue as error:
            return InvalidSignal(index, f"$.{error.field}", error.reason, signal.id)
        return claims, profile

    @staticmethod
    def _message_fault(
        index: int, signal: SignalIn, claims: tuple[IdentityClaim, ...]
    ) -> InvalidSignal | None:
        """Why an inbound message cannot be threaded as it says (its channel, which its
        identities must write on, and its topic), if it cannot; at the edge only."""
        if signal.type not in INBOUND_MESSAGE_SIGNALS:
            return None
        kinds = [claim.identity.type for claim in claims]
        fault = message_fault(signal.type, signal.properties, kinds)
        return None if fault is None else InvalidSignal(index, *fault, signal.id)

    def _invalid_identity(self, index: int, signal: SignalIn) -> InvalidSignal:
        """The first identity of `signal` that does not normalise, and why."""
        for position, identity in enumerate(signal.identities):
            try:
                self.claim(identity)
            except InvalidValue as error:
                field = f"$.identities[{position}].value"
                return InvalidSignal(index, field, error.reason, signal.id)
        raise AssertionError("every identity normalises")
