"""Personal values are sealed at rest with their customer's key, and read as erased without it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest

from adapters.crypto.envelope import DataKey, MasterKey, SealBroken
from adapters.postgres.codec import EventCodec, _opened_at_top, _top_level_names
from adapters.postgres.customer_keys import (
    _LOAD,
    CustomerKeys,
    KeyNotLoaded,
    parsed_id,
    sealed_by,
)
from domain.catalog import topic_of
from domain.conversation.aggregate import Conversation
from domain.conversation.vocabulary import Sentiment
from domain.customer.aggregate import ClassifiedMessage, Customer
from domain.customer.held_edit import HeldEdit, HeldVersion, RenderedFor
from domain.customer.identities import Identity, IdentityClaim
from domain.message.content import Content
from domain.policy.vocabulary import Channel
from domain.shared.personal import ERASED, PersonalPath, map_personal
from domain.shared.topics import events_of
from domain.signals.intake import RECEIVED_TOPIC
from ports.audit import Unopened

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def keys_holding(*customer_ids: object, master: str = "a master key") -> CustomerKeys:
    """Keys as a reader holds them once loaded: each customer's unwrapped key, or None."""
    keys = CustomerKeys(MasterKey(master))
    for customer_id in customer_ids:
        wrapped = keys.master.new_wrapped(customer_id)  # type: ignore[arg-type]
        keys._kept[customer_id] = (keys.master.unwrap(customer_id, wrapped), 0.0)  # type: ignore[index,arg-type]
    return keys


def registered_ana() -> Customer:
    claims = (IdentityClaim(Identity("email", "ana@example.org")),)
    customer = Customer.register(uuid4(), T0, claims)
    customer.update_profile(T0, {"first_name": "Ana", "country": "PT"}, {"tier": "gold"})
    return customer


class TestTheEnvelope:
    def test_a_sealed_value_opens_with_its_customers_key_only(self) -> None:
        ana, bea, secret = uuid4(), uuid4(), bytes(range(32))
        key = DataKey(ana, secret)
        sealed = key.seal({"tier": "gold"})
        assert "gold" not in sealed
        assert key.open(sealed) == {"tier": "gold"}
        with pytest.raises(SealBroken):
            DataKey(bea, secret).open(sealed)  # the same bytes bound to another customer
        with pytest.raises(SealBroken):
            DataKey(ana, bytes(32)).open(sealed)

    def test_two_seals_of_one_value_differ(self) -> None:
        master = MasterKey("secret")
        ana = uuid4()
        key = master.unwrap(ana, master.new_wrapped(ana))
        assert key.seal("ana@example.org") != key.seal("ana@example.org")

    def test_a_wrapped_key_opens_under_its_master_key_only(self) -> None:
        ana = uuid4()
        wrapped = MasterKey("one").new_wrapped(ana)
        with pytest.raises(SealBroken):
            MasterKey("another").unwrap(ana, wrapped)
        with pytest.raises(SealBroken):
            MasterKey("one").unwrap(uuid4(), wrapped)


class TestSealingEvents:
    def test_personal_values_are_sealed_and_the_rest_is_stored_as_it_is(self) -> None:
        customer = registered_ana()
        codec = EventCodec(keys=keys_holding(customer.id))
        registered, updated = (codec.encode(e, customer.id) for e in customer.collect_events())
        for payload in (registered.payload, updated.payload):
            assert sealed_by(payload) == customer.id
            assert b"ana@example.org" not in payload
            assert b"Ana" not in payload
            assert b"gold" not in payload
        stored = msgspec.json.decode(updated.payload)
        assert stored["profile"] == {"first_name": "", "country": "PT"}  # its place kept
        assert stored["attributes"] == {"tier": ""}
        assert set(stored) == {"$k", "$v", "profile", "attributes"}

    def test_sealed_events_decode_to_what_was_recorded(self) -> None:
        customer = registered_ana()
        codec = EventCodec(keys=keys_holding(customer.id))
        events = customer.collect_events()
        encoded = [codec.encode(e, customer.id) for e in events]
        decoded = [codec.decode(*msgspec.structs.astuple(e)) for e in encoded]
        assert decoded == events

    def test_without_the_key_every_personal_value_reads_as_erased(self) -> None:
        customer = registered_ana()
        keys = keys_holding(customer.id)
        codec = EventCodec(keys=keys)
        encoded = [codec.encode(e, customer.id) for e in customer.collect_events()]
        keys._kept[customer.id] = (None, 0.0)
        registered, updated = (codec.decode(*msgspec.structs.astuple(e)) for e in encoded)
        assert [c.identity for c in registered.identities] == [Identity("email", ERASED)]  # type: ignore[attr-defined]
        assert updated.profile == {"first_name": ERASED, "country": "PT"}  # type: ignore[attr-defined]
        assert updated.attributes == {"tier": ERASED}  # type: ignore[attr-defined]
        plain = codec.to_plain(encoded[0].topic, encoded[0].payload)
        assert plain["identities"][0]["identity"] == {"type": "email", "value": ERASED}

    def test_an_erased_customer_has_its_new_personal_values_stored_erased(self) -> None:
        customer = registered_ana()
        keys = keys_holding()
        keys._kept[customer.id] = (None, 0.0)
        registered = EventCodec(keys=keys).encode(customer.collect_events()[0], customer.id)
        assert ERASED.encode() in registered.payload
        assert b"ana@example.org" not in registered.payload

    def test_events_stored_before_sealing_read_as_they_are(self) -> None:
        customer = registered_ana()
        codec = EventCodec(keys=keys_holding())
        for plain in (codec.encode(e) for e in customer.collect_events()):
            assert sealed_by(plain.payload) is None
            assert b"ana@example.org" in plain.payload or b"Ana" in plain.payload
            assert codec.decode(*msgspec.structs.astuple(plain)).originator_id == customer.id

    def test_a_key_never_loaded_is_an_error_not_an_erasure(self) -> None:
        customer = registered_ana()
        with pytest.raises(KeyNotLoaded):
            EventCodec(keys=keys_holding()).encode(customer.collect_events()[0], customer.id)


def classified_ana() -> Customer:
    customer = registered_ana()
    customer.collect_events()
    message = ClassifiedMessage(
        uuid4(), Channel.EMAIL, T0, "card_arrival", 0.87, "negative", -0.75, "critical"
    )
    customer.note_classified(message, T0)
    return customer


class TestAClassifiedMessage:
    def test_its_intent_sentiment_and_score_are_sealed_and_read_back(self) -> None:
        customer = classified_ana()
        codec = EventCodec(keys=keys_holding(customer.id))
        (event,) = customer.collect_events()
        encoded = codec.encode(event, customer.id)
        for secret in (b"card_arrival", b"negative", b"-0.75"):
            assert secret not in encoded.payload
        stored = msgspec.json.decode(encoded.payload)
        assert (stored["confidence"], stored["urgency"], stored["channel"]) == (
            0.87,
            "critical",
            "email",
        )
        assert codec.decode(*msgspec.structs.astuple(encoded)) == event

    def test_without_the_key_they_read_as_erased_the_score_too(self) -> None:
        customer = classified_ana()
        keys = keys_holding(customer.id)
        codec = EventCodec(keys=keys)
        encoded = codec.encode(customer.collect_events()[0], customer.id)
        keys._kept[customer.id] = (None, 0.0)
        erased: Any = codec.decode(*msgspec.structs.astuple(encoded))
        assert (erased.intent, erased.sentiment, erased.score) == (ERASED, ERASED, ERASED)
        assert (erased.confidence, erased.urgency) == (0.87, "critical")

    def test_one_stored_in_clear_before_reads_as_it_was_stored(self) -> None:
        customer = classified_ana()
        codec = EventCodec(keys=keys_holding())
        (event,) = customer.collect_events()
        plain = codec.encode(event)
        assert sealed_by(plain.payload) is None
        assert b"card_arrival" in plain.payload
        assert codec.decode(*msgspec.structs.astuple(plain)) == event


def classified_conversation() -> Conversation:
    conversation = Conversation.start(uuid4(), "customer", T0)
    conversation.collect_events()
    conversation.classify(
        "card_arrival",
        Sentiment.NEGATIVE,
        "classifier",
        T0,
        confidence=0.87,
        urgency="critical",
        sentiment_score=-0.75,
    )
    return conversation


class TestAClassifiedConversation:
    def test_its_intent_sentiment_and_score_are_sealed_and_read_back(self) -> None:
        conversation = classified_conversation()
        codec = EventCodec(keys=keys_holding(conversation.customer_id))
        (event,) = conversation.collect_events()
        encoded = codec.encode(event, conversation.customer_id)
        for secret in (b"card_arrival", b"negative", b"-0.75"):
            assert secret not in encoded.payload
        stored = msgspec.json.decode(encoded.payload)
        assert (stored["confidence"], stored["urgency"], stored["by"]) == (
            0.87,
            "critical",
            "classifier",
        )
        assert codec.decode(*msgspec.structs.astuple(encoded)) == event

    def test_without_the_key_they_read_as_erased_and_the_conversation_forgets_them(
        self,
    ) -> None:
        conversation = classified_conversation()
        keys = keys_holding(conversation.customer_id)
        codec = EventCodec(keys=keys)
        started = Conversation.start(conversation.customer_id, "customer", T0).collect_events()
        stored = [codec.encode(e, conversation.customer_id) for e in started]
        stored += [codec.encode(e, conversation.customer_id) for e in conversation.collect_events()]
        keys._kept[conversation.customer_id] = (None, 0.0)
        erased: Any = codec.decode(*msgspec.structs.astuple(stored[1]))
        assert (erased.intent, erased.sentiment, erased.sentiment_score) == (ERASED,) * 3
        assert (erased.confidence, erased.urgency) == (0.87, "critical")
        replayed: Any = None
        for each in stored:
            replayed = codec.decode(*msgspec.structs.astuple(each)).mutate(replayed)
        known = replayed.classification
        assert known is not None
        assert (known.intent, known.sentiment, known.sentiment_score) == (ERASED, None, None)
        assert known.erased
        assert (known.confidence, known.urgency) == (0.87, "critical")

    def test_one_stored_in_clear_before_reads_as_it_was_stored(self) -> None:
        conversation = classified_conversation()
        codec = EventCodec(keys=keys_holding())
        (event,) = conversation.collect_events()
        plain = codec.encode(event)
        assert sealed_by(plain.payload) is None
        assert b"card_arrival" in plain.payload
        assert codec.decode(*msgspec.structs.astuple(plain)) == event


class TestKeptKeys:
    def test_a_kept_key_is_used_for_its_time_then_read_again(self) -> None:
        now = [0.0]
        keys = CustomerKeys(MasterKey("m"), ttl=2.0, now=lambda: now[0])
        ana = uuid4()
        keys._kept[ana] = (None, 0.0)
        assert keys._fresh(ana, 100.0)  # erased is erased for good
        bea = uuid4()
        keys._kept[bea] = (keys.master.unwrap(bea, keys.master.new_wrapped(bea)), 0.0)
        assert keys._fresh(bea, 1.9)
        assert not keys._fresh(bea, 2.0)

    async def test_loading_reads_only_the_keys_not_kept_or_out_of_their_time(self) -> None:
        now = [0.0]
        keys = CustomerKeys(MasterKey("m"), ttl=2.0, now=lambda: now[0])
        erased, kept, stale, unknown = uuid4(), uuid4(), uuid4(), uuid4()
        keys._kept[erased] = (None, 0.0)
        keys._kept[kept] = (keys.master.unwrap(kept, keys.master.new_wrapped(kept)), 1.0)
        keys._kept[stale] = (keys.master.unwrap(stale, keys.master.new_wrapped(stale)), 0.0)
        asked: list[tuple[list[UUID], list[UUID]]] = []

        class Rows:
            async def fetch(self, _query: str, ids: list[UUID], kept: list[UUID]) -> list[Any]:
                asked.append((ids, kept))
                return []

        now[0] = 2.5
        absent = await keys.load(Rows(), [erased, kept, stale, unknown])  # type: ignore[arg-type]
        # The stale key is only checked for an erasure: no row, none, and it is kept again.
        assert asked == [([unknown], [stale])]
        assert absent == {unknown}
        assert keys._fresh(stale, 4.4)
        assert not keys._fresh(stale, 4.5)

    async def test_a_stale_key_found_erased_is_erased_and_what_it_opened_goes(self) -> None:
        now = [0.0]
        keys = CustomerKeys(MasterKey("m"), ttl=2.0, now=lambda: now[0])
        ana = uuid4()
        key = keys.master.unwrap(ana, keys.master.new_wrapped(ana))
        keys._kept[ana] = (key, 0.0)
        keys.keep_opened(b"sealed", key, b"plain")

        class Rows:
            async def fetch(self, _query: str, ids: list[UUID], kept: list[UUID]) -> list[Any]:
                return [(ana, None, False)]

        now[0] = 2.5
        assert await keys.load(Rows(), [ana]) == set()  # type: ignore[arg-type]
        assert keys.key_of(ana) is None
        assert keys.opened_before(b"sealed", key) is None

    async def test_a_key_read_while_this_process_erases_it_is_used_once_and_not_kept(
        self,
    ) -> None:
        now = [0.0]
        keys = CustomerKeys(MasterKey("m"), ttl=2.0, now=lambda: now[0])
        ana = uuid4()
        wrapped = keys.master.new_wrapped(ana)

        class Rows:
            """The erasing transaction has not committed: the key still reads as it was."""

            async def execute(self, _query: str, *_args: Any) -> None:
                return None

            async def fetch(self, query: str, *_args: Any) -> list[Any]:
                return [(ana, wrapped, False)] if query == _LOAD else []

        await keys.erase(Rows(), [ana], [], datetime(2026, 12, 6, tzinfo=UTC))  # type: ignore[arg-type]
        await keys.load(Rows(), [ana])  # type: ignore[arg-type]
        assert keys.key_of(ana) is not None  # the read that found it uses it
        assert not keys._fresh(ana, 0.0)  # and the next one reads it again, erased by then
        now[0] = 61.0
        await keys.load(Rows(), [ana])  # type: ignore[arg-type]
        assert keys._fresh(ana, 61.0)  # long after, a key found is kept again

    async def test_a_key_made_here_and_read_back_committed_is_not_unwrapped_again(self) -> None:
        keys = CustomerKeys(MasterKey("m"))
        ana, bea = uuid4(), uuid4()
        (made, key), (other_wrapped, _) = keys.master.new_keys([ana, bea])
        keys._tentative[ana] = key  # made in a transaction, which committed since
        keys._tentative[bea] = None

        class Rows:
            async def fetch(self, _query: str, ids: list[UUID], kept: list[UUID]) -> list[Any]:
                return [(ana, made, False), (bea, other_wrapped, False)]

        assert await keys.load(Rows(), [ana, bea]) == set()  # type: ignore[arg-type]
        assert keys.key_of(ana) is key
        found = keys.key_of(bea)  # another writer's: unwrapped
        assert found is not None
        assert found.wrapped == other_wrapped

    async def test_loads_at_once_of_the_same_customers_read_them_once(self) -> None:
        keys = CustomerKeys(MasterKey("m"))
        ana, bea, cid = uuid4(), uuid4(), uuid4()
        wrapped = {c: keys.master.new_wrapped(c) for c in (ana, bea, cid)}
        asked: list[list[UUID]] = []
        go = asyncio.Event()

        class Rows:
            async def fetch(self, _query: str, ids: list[UUID], kept: list[UUID]) -> list[Any]:
                asked.append(ids)
                await go.wait()
                return [(c, wrapped[c], False) for c in ids if c != cid]  # cid has no key row

        loads = [
            asyncio.ensure_future(keys.load(Rows(), ids))  # type: ignore[arg-type]
            for ids in ([ana, cid], [ana, cid], [ana, bea])
        ]
        await asyncio.sleep(0)
        assert asked == [[ana, cid]]  # the others wait for the first
        go.set()
        absent = await asyncio.gather(*loads)
        # What the first found missing is read again by those who waited, for themselves;
        # the key it kept is not.
        assert sorted(map(str, asked[1:])) == sorted(map(str, [[cid], [bea]]))
        assert absent == [{cid}, {cid}, set()]
        assert keys.key_of(ana) is not None

    async def test_a_load_in_a_transaction_is_waited_on_by_no_other(self) -> None:
        keys = CustomerKeys(MasterKey("m"))
        ana = uuid4()
        made = keys.master.new_wrapped(ana)
        asked: list[str] = []
        go = asyncio.Event()

        class Rows:
            def __init__(self, name: str, mine: bool) -> None:
                self.name, self.mine = name, mine

            def is_in_transaction(self) -> bool:
                return self.mine

            async def fetch(self, _query: str, ids: list[UUID], kept: list[UUID]) -> list[Any]:
                asked.append(self.name)
                await go.wait()
                return [(ana, made, self.mine)]

        inside = asyncio.ensure_future(keys.load(Rows("writer", mine=True), [ana]))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        outside = asyncio.ensure_future(keys.load(Rows("pool", mine=False), [ana]))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        assert asked == ["writer", "pool"]  # the writer's transaction may hold what none sees
        after = asyncio.ensure_future(keys.load(Rows("reader", mine=False), [ana]))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        go.set()
        await asyncio.gather(outside, inside, after)
        assert asked == ["writer", "pool"]  # the reader waited for the pool's load

    def test_keys_made_together_are_each_their_own(self) -> None:
        master = MasterKey("m")
        ids = [uuid4() for _ in range(3)]
        made = master.new_keys(ids)
        sealed = [key.seal("ana@example.org") for _, key in made]
        for (wrapped, key), customer_id, value in zip(made, ids, sealed, strict=True):
            assert master.unwrap(customer_id, wrapped).open(value) == "ana@example.org"
            assert key.customer_id == customer_id
        with pytest.raises(SealBroken):
            made[1][1].open(sealed[0])
        assert len({wrapped for wrapped, _ in made}) == 3


class TestStoredKeyIds:
    def test_an_id_reads_the_same_as_text_or_as_bytes_and_is_parsed_once(self) -> None:
        ana = uuid4()
        assert parsed_id(str(ana).encode("ascii")) == ana
        assert parsed_id(ana.bytes) == ana
        assert parsed_id(ana.bytes) is parsed_id(ana.bytes)

    def test_an_id_that_is_not_one_is_refused(self) -> None:
        with pytest.raises(ValueError, match="hexadecimal"):
            parsed_id(b"not-an-id-not-an-id-not-an-id-not-an")


class TestReceivedDocuments:
    DOCUMENT = msgspec.json.encode(
        {
            "id": "web-1",
            "type": "page.viewed",
            "occurred_at": "2026-11-27T10:00:00Z",
            "identities": [{"type": "email", "value": "ana@example.org"}],
            "properties": {"path": "/pricing"},
        }
    )

    def test_a_document_is_sealed_whole_beside_its_id_and_opens_as_it_came(self) -> None:
        key_id = uuid4()
        codec = EventCodec(keys=keys_holding(key_id))
        sealed = codec.sealed_document(RECEIVED_TOPIC, self.DOCUMENT, key_id, {"id": "web-1"})
        assert sealed_by(sealed) == key_id
        assert b"ana@example.org" not in sealed
        assert b"pricing" not in sealed
        assert codec.to_plain(RECEIVED_TOPIC, sealed) == msgspec.json.decode(self.DOCUMENT)
        assert codec.as_recorded(RECEIVED_TOPIC, sealed) == (None, self.DOCUMENT)

    def test_it_is_stored_as_bytes_barely_larger_than_the_document(self) -> None:
        key_id = uuid4()
        codec = EventCodec(keys=keys_holding(key_id))
        sealed = codec.sealed_document(RECEIVED_TOPIC, self.DOCUMENT, key_id, {"id": "web-1"})
        # Prefix, key id, clear id, nonce and tag: no base64 of the document.
        assert len(sealed) <= len(self.DOCUMENT) + 2 + 16 + 4 + len(b'{"id":"web-1"}') + 12 + 16

    def test_a_batch_is_sealed_as_each_document_alone(self) -> None:
        ana, bea = uuid4(), uuid4()
        codec = EventCodec(keys=keys_holding(ana, bea))
        sealed = codec.sealed_documents(
            RECEIVED_TOPIC,
            [
                (self.DOCUMENT, ana, {"id": "web-1"}),
                (self.DOCUMENT, bea, {"id": "web-1"}),
                (self.DOCUMENT, ana, {"id": "web-1"}),
            ],
        )
        assert [sealed_by(payload) for payload in sealed] == [ana, bea, ana]
        assert len(set(sealed)) == 3  # a nonce each
        for payload in sealed:
            assert codec.to_plain(RECEIVED_TOPIC, payload) == msgspec.json.decode(self.DOCUMENT)

    def test_its_id_and_key_are_bound_to_it(self) -> None:
        key_id = uuid4()
        codec = EventCodec(keys=keys_holding(key_id))
        sealed = codec.sealed_document(RECEIVED_TOPIC, self.DOCUMENT, key_id, {"id": "web-1"})
        moved = sealed.replace(b'"web-1"', b'"web-2"', 1)
        with pytest.raises(SealBroken):
            codec.to_plain(RECEIVED_TOPIC, moved)

    def test_a_document_sealed_in_the_json_form_of_before_still_opens_and_erases(self) -> None:
        key_id = uuid4()
        keys = keys_holding(key_id)
        codec = EventCodec(keys=keys)
        key = keys.key_of(key_id)
        assert key is not None
        before = b"".join(
            (
                b'{"$k":"',
                key.id_text,
                b'","$d":"',
                key.seal_json(self.DOCUMENT).encode(),
                b'","id":"web-1"}',
            )
        )
        assert codec.to_plain(RECEIVED_TOPIC, before) == msgspec.json.decode(self.DOCUMENT)
        assert codec.as_recorded(RECEIVED_TOPIC, before) == (None, self.DOCUMENT)
        keys._kept[key_id] = (None, 0.0)
        assert codec.to_plain(RECEIVED_TOPIC, before)["identities"] == ERASED
        assert codec.to_plain(RECEIVED_TOPIC, before)["id"] == "web-1"

    def test_once_its_key_is_gone_it_reads_as_its_id_and_its_personal_fields_erased(
        self,
    ) -> None:
        key_id = uuid4()
        keys = keys_holding(key_id)
        codec = EventCodec(keys=keys)
        sealed = codec.sealed_document(RECEIVED_TOPIC, self.DOCUMENT, key_id, {"id": "web-1"})
        keys._kept[key_id] = (None, 0.0)
        assert codec.to_plain(RECEIVED_TOPIC, sealed) == {
            "id": "web-1",
            "identities": ERASED,
            "properties": ERASED,
            "profile": ERASED,
            "attributes": ERASED,
        }
        assert codec.as_recorded(RECEIVED_TOPIC, sealed) == (
            codec.to_plain(RECEIVED_TOPIC, sealed),
            None,
        )

    def test_once_erased_it_still_says_what_kind_of_signal_it_was_and_when(self) -> None:
        key_id = uuid4()
        keys = keys_holding(key_id)
        codec = EventCodec(keys=keys)
        kept = {"id": "web-1", "type": "page.viewed", "occurred_at": T0, "source": "web"}
        [sealed] = codec.sealed_documents(RECEIVED_TOPIC, [(self.DOCUMENT, key_id, kept)])
        assert codec.to_plain(RECEIVED_TOPIC, sealed) == msgspec.json.decode(self.DOCUMENT)
        keys._kept[key_id] = (None, 0.0)
        erased = codec.to_plain(RECEIVED_TOPIC, sealed)
        assert {name: erased[name] for name in ("id", "type", "source")} == {
            "id": "web-1",
            "type": "page.viewed",
            "source": "web",
        }
        assert erased["occurred_at"] == msgspec.json.decode(msgspec.json.encode(T0))
        assert erased["identities"] == erased["properties"] == ERASED
        assert b"ana@example.org" not in sealed

    def test_sealed_under_a_key_erased_already_it_holds_its_id_only(self) -> None:
        key_id = uuid4()
        keys = keys_holding(key_id)
        keys._kept[key_id] = (None, 0.0)
        codec = EventCodec(keys=keys)
        sealed = codec.sealed_documents(RECEIVED_TOPIC, [(self.DOCUMENT, key_id, {"id": "web-1"})])[
            0
        ]
        assert b"ana@example.org" not in sealed
        assert sealed_by(sealed) == key_id
        assert codec.to_plain(RECEIVED_TOPIC, sealed)["id"] == "web-1"
        assert codec.to_plain(RECEIVED_TOPIC, sealed)["properties"] == ERASED


def settled_with_an_edit() -> Customer:
    customer = registered_ana()
    customer.collect_events()
    held = HeldVersion(
        (Channel.EMAIL,),
        (RenderedFor(Channel.EMAIL, Content(subject="Refund", body="We refund Ana 50 EUR.")),),
    )
    approved = HeldVersion(
        (Channel.SMS,), (RenderedFor(Channel.SMS, Content(body="Ana, 40 EUR is on its way.")),)
    )
    customer.settle_approval(
        uuid4(), uuid4(), "edited", "lea", "40 is right", T0, HeldEdit(held, approved)
    )
    return customer


class TestAnEditedApproval:
    def test_the_contents_as_held_and_as_approved_are_sealed_and_read_back(self) -> None:
        customer = settled_with_an_edit()
        codec = EventCodec(keys=keys_holding(customer.id))
        (settled,) = customer.collect_events()
        encoded = codec.encode(settled, customer.id)
        assert sealed_by(encoded.payload) == customer.id
        assert b"50 EUR" not in encoded.payload
        assert b"40 EUR" not in encoded.payload
        assert b"40 is right" in encoded.payload  # the operator's note is theirs
        assert codec.decode(*msgspec.structs.astuple(encoded)) == settled

    def test_without_the_key_the_contents_read_as_erased(self) -> None:
        customer = settled_with_an_edit()
        keys = keys_holding(customer.id)
        codec = EventCodec(keys=keys)
        encoded = codec.encode(customer.collect_events()[0], customer.id)
        keys._kept[customer.id] = (None, 0.0)
        edit = codec.decode(*msgspec.structs.astuple(encoded)).edit  # type: ignore[attr-defined]
        assert edit.before.contents[0].content.body == ERASED
        assert edit.after.contents[0].content.body == ERASED
        assert edit.after.channels == (Channel.SMS,)

    def test_a_verdict_stored_before_edits_were_recorded_reads_with_none(self) -> None:
        customer = settled_with_an_edit()
        codec = EventCodec(keys=keys_holding())
        settled = codec.encode(customer.collect_events()[0])
        stored = msgspec.json.decode(settled.payload)
        del stored["edit"]
        old = msgspec.structs.replace(settled, class_version=1, payload=msgspec.json.encode(stored))
        read = codec.decode(*msgspec.structs.astuple(old))
        assert (read.verdict, read.edit) == ("edited", None)  # type: ignore[attr-defined]


class _Left(Unopened):
    def __new__(cls, fields: Any, field: str, name: str) -> _Left:
        left = super().__new__(cls, "")
        left.__dict__.update(fields=fields, field=field, name=name)
        return left

    def opened(self) -> Any:
        return self.__dict__["fields"].opened()[self.__dict__["field"]][self.__dict__["name"]]


def _unopened_values(event: Any) -> list[Any]:
    return [
        value
        for mapping in (event.profile, event.attributes)
        for value in mapping.values()
        if isinstance(value, Unopened)
    ]


class TestDecodingLeftSealed:
    """A replay leaves a profile's names and the attributes sealed until it shows them."""

    def updated(self) -> tuple[Customer, EventCodec, list[Any]]:
        customer = registered_ana()
        customer.update_profile(
            T0, {"first_name": "Ana Maria", "last_name": "Lima"}, {"tier": None, "visits": 3}
        )
        codec = EventCodec(keys=keys_holding(customer.id))
        encoded = [codec.encode(e, customer.id) for e in customer.collect_events()]
        return customer, codec, [msgspec.structs.astuple(e) for e in encoded]

    def test_only_values_in_a_mapping_of_the_event_are_left_sealed(self) -> None:
        codec = EventCodec()
        topics = {name: topic_of(cls) for name, cls in events_of(Customer).items()}
        assert codec.unopened_places(topics["ProfileUpdated"]) == (
            ("profile", "first_name"),
            ("profile", "last_name"),
            ("attributes", "*"),
        )
        assert codec.unopened_places(topics["Registered"]) is None  # in each item of a list
        assert codec.unopened_places(topics["IdentityLinked"]) is None  # a field's field's
        assert codec.unopened_places(topics["ConsentChanged"]) is None  # none at all

    def test_each_value_opens_to_what_was_recorded_and_the_rest_is_as_decoded(self) -> None:
        customer, codec, rows = self.updated()
        key = codec.keys.key_of(customer.id)
        for row in rows[1:]:
            decoded = codec.decode(*row)
            left = codec.decode_unopened(*row, key, _Left)
            sealed = _unopened_values(left)
            assert sealed
            assert all(value == "" for value in sealed)  # the place a sealed value leaves
            opened = {
                field: {
                    name: value.opened() if isinstance(value, Unopened) else value
                    for name, value in getattr(left, field).items()
                }
                for field in ("profile", "attributes")
            }
            assert opened == {"profile": decoded.profile, "attributes": decoded.attributes}  # type: ignore[attr-defined]
            assert {**vars(left), **opened} == vars(decoded)
        assert [e.profile for e in map(lambda r: codec.decode(*r), rows[1:])] == [  # type: ignore[attr-defined]
            {"first_name": "Ana", "country": "PT"},
            {"first_name": "Ana Maria", "last_name": "Lima"},
        ]

    def test_without_a_key_found_or_for_other_events_it_is_decoded(self) -> None:
        customer, codec, rows = self.updated()
        for row in rows:  # the registration: an identity is a key of the aggregate's state
            assert codec.decode_unopened(*row, None, _Left) == codec.decode(*row)
        codec.keys._kept[customer.id] = (None, 0.0)  # type: ignore[index]
        erased = codec.decode_unopened(*rows[1], None, _Left)
        assert erased.profile == {"first_name": ERASED, "country": "PT"}  # type: ignore[attr-defined]
        assert not _unopened_values(erased)


class TestOpeningInPlace:
    """Opened values go back to their places as `map_personal` puts them, without its walk."""

    @pytest.mark.parametrize(
        "fields",
        [
            {"profile": {"first_name": "Ana", "last_name": None, "country": "PT"}, "tags": None},
            {"profile": {}, "attributes": {"tier": "gold", "gone": None, "visits": 3}},
            {"profile": None, "attributes": {}, "name": "Ana"},
            {"profile": "not a mapping", "attributes": ["nor", "this"], "name": None},
            {"name": "Ana", "profile": {"last_name": "Lima"}, "attributes": {"a": 1, "b": 2}},
        ],
    )
    def test_it_is_map_personal(self, fields: dict[str, Any]) -> None:
        paths = tuple(
            PersonalPath.parse(text)
            for text in ("name", "profile.first_name", "profile.last_name", "attributes.*")
        )
        places = _top_level_names(paths)
        assert places is not None
        found: list[Any] = []
        map_personal(msgspec.json.decode(msgspec.json.encode(fields)), paths, found.append)
        sealed = [f"opened {n}" for n in range(len(found))]
        expected = map_personal(
            msgspec.json.decode(msgspec.json.encode(fields)), paths, lambda _: sealed.pop(0)
        )
        sealed = [f"opened {n}" for n in range(len(found))]
        opened = _opened_at_top(
            msgspec.json.decode(msgspec.json.encode(fields)), places, iter(sealed)
        )
        assert opened == expected

    def test_a_path_deeper_or_through_a_list_is_walked(self) -> None:
        for text in ("identity.identity.value", "identities[].identity.value", "items[]"):
            assert _top_level_names((PersonalPath.parse(text),)) is None


BOUNCE = "550 5.1.1 <ana@example.org>: Recipient address rejected"


def a_bounced_message() -> tuple[UUID, list[Any]]:
    """A message's Queued, then a bounce whose reason names its recipient, then a delivery
    report with no reason: the events, as the message's customer's."""
    from domain.message.aggregate import Message, MessageStatus
    from domain.policy.vocabulary import Purpose

    customer_id = uuid4()
    message = Message.queue(
        id=uuid4(),
        timestamp=T0,
        customer_id=customer_id,
        decision_id=uuid4(),
        channel=Channel.EMAIL,
        purpose=Purpose.TRANSACTIONAL,
        team="orders",
        recipient="ana@example.org",
        content=Content(subject="Hi", body="Hello"),
        campaign=None,
        template=None,
        template_version=None,
        correlation_id=None,
    )
    message.report(MessageStatus.BOUNCED, "mail", T0, BOUNCE)
    message.report(MessageStatus.DELIVERED, "mail", T0)
    return customer_id, message.collect_events()


class TestWhatProvidersSaid:
    """A provider's status reason and a suppression's reason are free text that may name the
    person (a bounce notice echoes the address): sealed like the rest of what is theirs."""

    def test_a_status_reason_is_sealed_and_reads_back(self) -> None:
        customer_id, events = a_bounced_message()
        codec = EventCodec(keys=keys_holding(customer_id))
        _, bounced, delivered = (codec.encode(e, customer_id) for e in events)
        assert sealed_by(bounced.payload) == customer_id
        assert b"ana@example.org" not in bounced.payload
        assert b"Recipient address rejected" not in bounced.payload
        assert b'"status":"bounced"' in bounced.payload  # the status itself stays in clear
        assert codec.decode(*msgspec.structs.astuple(bounced)) == events[1]
        assert codec.decode(*msgspec.structs.astuple(delivered)) == events[2]

    def test_once_erased_a_status_reason_reads_as_erased_and_none_stays_none(self) -> None:
        customer_id, events = a_bounced_message()
        keys = keys_holding(customer_id)
        codec = EventCodec(keys=keys)
        _, bounced, delivered = (codec.encode(e, customer_id) for e in events)
        keys._kept[customer_id] = (None, 0.0)
        assert codec.decode(*msgspec.structs.astuple(bounced)).reason == ERASED  # type: ignore[attr-defined]
        assert codec.decode(*msgspec.structs.astuple(delivered)).reason is None  # type: ignore[attr-defined]
        plain = codec.to_plain(bounced.topic, bounced.payload)
        assert (plain["status"], plain["reason"]) == ("bounced", ERASED)

    def test_a_status_reason_stored_in_clear_before_reads_as_it_is(self) -> None:
        _, events = a_bounced_message()
        codec = EventCodec(keys=keys_holding())
        clear = codec.encode(events[1])  # as it was stored before reasons were sealed
        assert sealed_by(clear.payload) is None
        assert b"ana@example.org" in clear.payload
        assert codec.decode(*msgspec.structs.astuple(clear)).reason == BOUNCE  # type: ignore[attr-defined]

    def test_a_suppression_reason_is_sealed_and_once_erased_reads_as_erased(self) -> None:
        customer = registered_ana()
        customer.collect_events()
        customer.suppress(Channel.EMAIL, f"hard bounce reported by mail: {BOUNCE}", T0)
        (added,) = customer.collect_events()
        keys = keys_holding(customer.id)
        codec = EventCodec(keys=keys)
        encoded = codec.encode(added, customer.id)
        assert b"ana@example.org" not in encoded.payload
        assert b'"channel":"email"' in encoded.payload
        assert codec.decode(*msgspec.structs.astuple(encoded)) == added
        keys._kept[customer.id] = (None, 0.0)
        erased = codec.decode(*msgspec.structs.astuple(encoded))
        assert (erased.channel, erased.reason) == (Channel.EMAIL, ERASED)  # type: ignore[attr-defined]
