"""The JetStream consumer's own rules: which subjects it takes, how it asks for a message again,
and what a dead letter says."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

import pytest
from nats.aio.msg import Msg

from adapters.nats.consumer import JetStreamConsumer, subject_matches

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nats.aio.client import Client
    from nats.js.client import JetStreamContext


class Wire:
    """What the client and JetStream are asked to publish; `broken` makes JetStream refuse."""

    def __init__(self, *, broken: bool = False) -> None:
        self.broken = broken
        self.sent: list[tuple[str, bytes, dict[str, str] | None]] = []

    async def publish(
        self, subject: str, payload: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        if self.broken:
            raise ConnectionError("no JetStream")
        self.sent.append((subject, payload, headers))


def delivered(wire: Wire, times: int, *, msg_id: str | None = "order-1", seq: int = 7) -> Msg:
    reply = f"$JS.ACK.SIGNALS.ingest.{times}.{seq}.3.1733400000000000000.0"
    headers = {"Nats-Msg-Id": msg_id} if msg_id else None
    return Msg(cast("Client", wire), "t.signals.orders", reply, b'{"id": "order-1"}', headers)


async def ignore(msgs: Sequence[Msg]) -> None:
    return None


def consumer(wire: Wire, **options: Any) -> JetStreamConsumer:
    settings: dict[str, Any] = {
        "stream": "SIGNALS",
        "subjects": "t.signals.>",
        "durable": "ingest",
        "dead_letter_stream": "DEAD_LETTERS",
        "dead_letter_subjects": "t.dlq.>",
        "dead_letter_subject": "t.dlq.signals",
        "duplicate_window": 120.0,
        "retry_delay": 1.0,
        "max_retry_delay": 5.0,
        "max_deliver": 4,
    }
    settings.update(options)
    return JetStreamConsumer(cast("JetStreamContext", wire), ignore, **settings)


class TestSubjects:
    @pytest.mark.parametrize(
        ("pattern", "subject", "matches"),
        [
            ("chorus.signals.>", "chorus.signals.orders", True),
            ("chorus.signals.>", "chorus.signals.orders.eu", True),
            ("chorus.signals.>", "chorus.signals", False),
            ("chorus.*.signals", "chorus.eu.signals", True),
            ("chorus.*.signals", "chorus.eu.west.signals", False),
            ("chorus.dlq.signals", "chorus.dlq.signals", True),
            ("chorus.dlq.signals", "chorus.dlq", False),
        ],
    )
    def test_a_subject_falls_under_a_pattern_token_by_token(
        self, pattern: str, subject: str, matches: bool
    ) -> None:
        assert subject_matches(pattern, subject) is matches


class TestSettingUp:
    def test_dead_letters_on_a_subject_it_consumes_are_refused(self) -> None:
        with pytest.raises(ValueError, match="would be consumed again"):
            consumer(Wire(), dead_letter_subjects="t.>", dead_letter_subject="t.signals.dead")

    def test_a_dead_letter_subject_outside_the_dead_letter_stream_is_refused(self) -> None:
        with pytest.raises(ValueError, match="is not under"):
            consumer(Wire(), dead_letter_subject="t.letters.signals")

    def test_a_consumer_that_could_never_deliver_is_refused(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            consumer(Wire(), max_deliver=0)


class TestSettling:
    @pytest.mark.parametrize(("times", "delay"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0)])
    async def test_a_message_asked_for_again_waits_twice_as_long_each_delivery_up_to_the_max(
        self, times: int, delay: float
    ) -> None:
        wire = Wire()

        await consumer(wire).nak(delivered(wire, times))

        [(_, payload, _)] = wire.sent
        assert payload.startswith(b"-NAK ")
        assert json.loads(payload[5:]) == {"delay": int(delay * 10**9)}

    def test_the_last_delivery_is_the_one_at_max_deliver(self) -> None:
        wire = Wire()
        jetstream = consumer(wire)

        assert not jetstream.last_delivery(delivered(wire, 3))
        assert jetstream.last_delivery(delivered(wire, 4))

    async def test_a_dead_letter_carries_the_reason_and_where_the_message_came_from(
        self,
    ) -> None:
        wire = Wire()
        msg = delivered(wire, 2, seq=41)

        assert await consumer(wire).dead_letter(msg, msg.data, "$.type:\n  missing", "order-1")

        [(subject, data, headers)] = wire.sent
        assert subject == "t.dlq.signals"
        assert data == msg.data
        assert headers == {
            "Chorus-Reason": "$.type: missing",
            "Chorus-Subject": "t.signals.orders",
            "Chorus-Stream": "SIGNALS",
            "Chorus-Stream-Seq": "41",
            "Chorus-Delivered": "2",
            "Chorus-Correlation-Id": "order-1",
            "Chorus-Event-Id": "order-1",
            "Nats-Msg-Id": "dlq:SIGNALS:41",
        }

    async def test_each_part_of_a_batch_message_is_a_dead_letter_of_its_own(self) -> None:
        wire = Wire()
        msg = delivered(wire, 1, msg_id=None, seq=9)

        await consumer(wire).dead_letter(msg, b"{}", "bad", None, part=3)

        [(_, _, headers)] = wire.sent
        assert headers is not None
        assert headers["Nats-Msg-Id"] == "dlq:SIGNALS:9:3"
        assert headers["Chorus-Batch-Index"] == "3"
        assert headers["Chorus-Correlation-Id"] == "SIGNALS:9"
        assert "Chorus-Event-Id" not in headers

    async def test_a_reason_longer_than_a_header_holds_is_cut(self) -> None:
        wire = Wire()
        msg = delivered(wire, 1)

        await consumer(wire).dead_letter(msg, msg.data, "x" * 5000, None)

        [(_, _, headers)] = wire.sent
        assert headers is not None
        assert len(headers["Chorus-Reason"]) == 1024
        assert headers["Chorus-Reason"].endswith("…")

    async def test_a_dead_letter_jetstream_did_not_store_is_reported(self) -> None:
        wire = Wire(broken=True)
        msg = delivered(wire, 1)

        assert not await consumer(wire).dead_letter(msg, msg.data, "bad", "order-1")
