"""A recorded event read from the log opens its sealed values when they are first read, with
the key loaded with its page: a reader that needs only its type, stream or version never
decrypts it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import msgspec
import pytest

from adapters.crypto.envelope import MasterKey, SealBroken
from adapters.postgres.codec import FIND, EventCodec
from adapters.postgres.customer_keys import CustomerKeys, stored_key_id
from adapters.postgres.event_store import RecordedEvent
from domain.shared.personal import ERASED
from domain.signals.aggregate import Signal, SignalReport
from domain.signals.intake import RECEIVED_TOPIC

if TYPE_CHECKING:
    from adapters.crypto.envelope import DataKey

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
PROPERTIES = {"url": "/pricing", "plan": "pro"}


class CountingCodec(EventCodec):
    """A codec that counts the payloads it opens."""

    def __init__(self, keys: CustomerKeys) -> None:
        super().__init__(keys=keys)
        self.opened_payloads = 0

    def as_recorded(
        self, topic: str, payload: bytes, key: DataKey | Any | None = FIND
    ) -> tuple[dict[str, Any] | None, bytes | None]:
        self.opened_payloads += 1
        return super().as_recorded(topic, payload, key)


def keys_holding(*customer_ids: UUID) -> CustomerKeys:
    keys = CustomerKeys(MasterKey("a master key"), now=lambda: 0.0)
    for customer_id in customer_ids:
        wrapped = keys.master.new_wrapped(customer_id)
        keys._kept[customer_id] = (keys.master.unwrap(customer_id, wrapped), 0.0)
    return keys


def recorded_signal(codec: EventCodec, customer_id: UUID, key: DataKey | None) -> RecordedEvent:
    report = SignalReport("order-1", "page.viewed", T0, (), dict(PROPERTIES), "web")
    stored = codec.encode(Signal.recorded(report, customer_id, T0), customer_id)
    assert b"/pricing" not in stored.payload
    return RecordedEvent(
        7,
        stored.stream_id,
        stored.version,
        stored.topic,
        stored.occurred_at,
        payload=stored.payload,
        sealed_with=(codec, key),
    )


class TestOpeningWhenRead:
    def test_its_type_stream_and_version_are_read_without_opening_it(self) -> None:
        ana = uuid4()
        keys = keys_holding(ana)
        codec = CountingCodec(keys)
        event = recorded_signal(codec, ana, keys.key_of(ana))
        assert (event.type, event.version, event.position) == ("Recorded", 1, 7)
        assert event.stream_id is not None
        assert codec.opened_payloads == 0

    def test_its_fields_open_once_when_first_read(self) -> None:
        ana = uuid4()
        keys = keys_holding(ana)
        codec = CountingCodec(keys)
        event = recorded_signal(codec, ana, keys.key_of(ana))
        assert event.data["properties"] == PROPERTIES
        assert event.data["customer_id"] == str(ana)
        assert msgspec.json.decode(event.payload) == event.data
        assert codec.opened_payloads == 1

    def test_it_opens_with_the_key_of_its_page_once_the_keys_are_forgotten(self) -> None:
        ana = uuid4()
        keys = keys_holding(ana)
        event = recorded_signal(EventCodec(keys=keys), ana, keys.key_of(ana))
        keys.forget()
        assert event.data["properties"] == PROPERTIES

    def test_read_without_its_key_its_personal_values_are_erased(self) -> None:
        ana = uuid4()
        keys = keys_holding(ana)
        event = recorded_signal(EventCodec(keys=keys), ana, None)
        assert event.data["properties"] == {"url": ERASED, "plan": ERASED}
        assert event.data["signal_type"] == "page.viewed"
        assert b"/pricing" not in event.payload

    def test_a_document_sealed_whole_opens_to_the_bytes_it_was_given(self) -> None:
        key_id = uuid4()
        keys = keys_holding(key_id)
        codec = CountingCodec(keys)
        document = b'{"id":"o-1","type":"order.paid","email":"ana@example.org"}'
        sealed = codec.sealed_document(RECEIVED_TOPIC, document, key_id, {"id": "o-1"})
        event = RecordedEvent(
            1,
            uuid4(),
            1,
            RECEIVED_TOPIC,
            T0,
            payload=sealed,
            sealed_with=(codec, keys.key_of(key_id)),
        )
        assert codec.opened_payloads == 0
        assert event.payload == document
        assert event.data["email"] == "ana@example.org"
        assert codec.opened_payloads == 1


def sealed_payload(customer_id: UUID, keys: CustomerKeys | None = None) -> bytes:
    """A signal's payload as stored, sealed by the customer's key (of `keys`, or another)."""
    report = SignalReport("order-1", "page.viewed", T0, (), dict(PROPERTIES), "web")
    codec = EventCodec(keys=keys or keys_holding(customer_id))
    return codec.encode(Signal.recorded(report, customer_id, T0), customer_id).payload


class TestAPagesKeys:
    async def test_they_are_found_by_the_ids_the_payloads_store_and_only_stale_ones_fetched(
        self,
    ) -> None:
        ana, bea, erased = uuid4(), uuid4(), uuid4()
        keys = keys_holding(ana)
        keys._kept[erased] = (None, 0.0)
        bea_wrapped = keys.master.new_wrapped(bea)
        fetched: list[list[UUID]] = []

        class Rows:
            async def fetch(self, _query: str, ids: list[UUID], stale: list[UUID]) -> list[Any]:
                fetched.append(ids + stale)
                return [(bea, bea_wrapped, False)]

        document = EventCodec(keys=keys).sealed_document(RECEIVED_TOPIC, b"{}", ana, {"id": "1"})
        payloads = [
            sealed_payload(ana),
            sealed_payload(ana),
            document,  # ana's id stored as 16 bytes
            sealed_payload(erased),
            sealed_payload(bea),
            b'{"plain":true}',
            None,
        ]

        found = await keys.load_for(Rows(), payloads)  # type: ignore[arg-type]

        assert fetched == [[bea]]  # the only one not kept
        assert stored_key_id(document) == ana.bytes
        assert found == {
            str(ana).encode("ascii"): keys.key_of(ana),
            ana.bytes: keys.key_of(ana),
            str(erased).encode("ascii"): None,
            str(bea).encode("ascii"): keys.key_of(bea),
        }


class CountingOpens(EventCodec):
    """A codec that counts the payloads it decrypts."""

    def __init__(self, keys: CustomerKeys) -> None:
        super().__init__(keys=keys)
        self.decrypted = 0

    def opened(
        self, topic: str, payload: bytes, key: DataKey | Any | None = FIND
    ) -> dict[str, Any] | None:
        self.decrypted += 1
        return super().opened(topic, payload, key)


class TestEventsReadByManyLanes:
    def test_an_event_opened_by_one_lane_is_read_by_the_next_without_decrypting_again(
        self,
    ) -> None:
        ana = uuid4()
        keys = keys_holding(ana)
        codec = CountingOpens(keys)
        payload = sealed_payload(ana, keys)
        topic = recorded_signal(codec, ana, None).topic
        first, _ = codec.as_recorded(topic, payload, keys.key_of(ana))
        data, plain = codec.as_recorded(topic, payload, keys.key_of(ana))
        assert first is not None
        assert first["properties"] == PROPERTIES
        assert data is None
        assert plain is not None
        assert msgspec.json.decode(plain) == first
        assert codec.decrypted == 1

    def test_another_key_or_none_opens_it_again(self) -> None:
        ana = uuid4()
        keys = keys_holding(ana)
        codec = CountingOpens(keys)
        payload = sealed_payload(ana, keys)
        topic = recorded_signal(codec, ana, None).topic
        codec.as_recorded(topic, payload, keys.key_of(ana))
        erased, _ = codec.as_recorded(topic, payload, None)
        assert erased is not None
        assert erased["properties"] == {"url": ERASED, "plan": ERASED}
        other = keys.master.unwrap(ana, keys.master.new_wrapped(ana))
        with pytest.raises(SealBroken):
            codec.as_recorded(topic, payload, other)
        assert codec.decrypted == 3

    async def test_what_a_key_opened_is_forgotten_once_it_is_erased(self) -> None:
        ana = uuid4()
        keys = keys_holding(ana)
        codec = CountingOpens(keys)
        payload = sealed_payload(ana, keys)
        topic = recorded_signal(codec, ana, None).topic
        key = keys.key_of(ana)
        assert key is not None
        codec.as_recorded(topic, payload, key)
        keys.ttl = 0.0  # read again at once, as after its time

        class ErasedElsewhere:
            async def fetch(self, _query: str, ids: list[UUID], stale: list[UUID]) -> list[Any]:
                assert stale == [ana]  # kept, out of its time: checked for an erasure
                return [(ana, None, False)]

        assert await keys.load_for(ErasedElsewhere(), [payload]) == {  # type: ignore[arg-type]
            str(ana).encode("ascii"): None
        }
        assert keys.opened_before(payload, key) is None
        codec.as_recorded(topic, payload, key)
        keys.forget([uuid4()])
        assert keys.opened_before(payload, key) is None

    def test_what_keys_opened_is_kept_up_to_a_number_of_bytes_then_dropped_whole(self) -> None:
        ana = uuid4()
        keys = keys_holding(ana)
        key = keys.key_of(ana)
        assert key is not None
        keys.opened_capacity = 100
        keys.keep_opened(b"a" * 30, key, b"A" * 30)
        assert keys.opened_before(b"a" * 30, key) == b"A" * 30
        keys.keep_opened(b"b" * 30, key, b"B" * 30)  # 120 bytes: the first goes
        assert keys.opened_before(b"a" * 30, key) is None
        assert keys.opened_before(b"b" * 30, key) == b"B" * 30
