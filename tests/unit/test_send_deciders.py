"""What a broadcast's batch and its answers carry between processes comes back equal."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from uuid import uuid4

from application.messages.compose import MessageContent
from application.messages.request_message import MessageDecided, SendAsked
from domain.policy.decision import Decision, Effect, FiredRule, Outcome, SendRequest
from domain.policy.vocabulary import Channel, Purpose
from entrypoints.send_deciders import ForkingPickler
from ports.delivery import Fallback


def _travelled(value: object) -> object:
    return pickle.loads(ForkingPickler.dumps(value))


class TestWhatTravels:
    def test_a_batch_of_sends_comes_back_equal(self) -> None:
        request = SendRequest(
            "growth",
            Purpose.MARKETING,
            (Channel.WHATSAPP, Channel.SMS),
            2,
            dedup_key="campaign:x:1:news",
            expires_at=datetime(2026, 12, 2, tzinfo=UTC),
            audience=100_000,
        )
        content = MessageContent(
            template="news",
            variables={"order": {"id": 7}},
            campaign="broadcast",
            correlation_id="e:news",
            fallback=Fallback((Channel.SMS,), 600.0),
        )
        asked = [SendAsked(uuid4(), request, "campaign:x:1:news", "campaign:b:1:news:e", content)]
        assert _travelled(asked) == asked

    def test_the_answers_come_back_equal(self) -> None:
        fired = FiredRule("quiet_hours", Effect.DEFERRED, "22:00-08:00 Europe/Lisbon", None)
        decision = Decision(
            Outcome.DEFER, 3, Channel.EMAIL, datetime(2026, 12, 2, tzinfo=UTC), (fired,)
        )
        answers = [MessageDecided(uuid4(), uuid4(), uuid4(), decision, queued=False)]
        travelled = _travelled(answers)
        assert travelled == answers
        assert isinstance(travelled, list)
        assert travelled[0].customer_id.version == answers[0].customer_id.version
