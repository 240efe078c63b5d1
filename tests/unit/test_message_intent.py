"""What a send request says it answers is an intent a classifier knows, by its key: a typo
would silently escape every approval rule naming the intent."""

from __future__ import annotations

import msgspec
import pytest

from domain.shared.errors import InvalidValue
from entrypoints.http.schemas import MessageIn


def request(intent: str) -> MessageIn:
    body = {"team": "billing", "purpose": "service", "channels": ["email"], "intent": intent}
    return msgspec.convert(body, MessageIn)


class TestTheIntentOfASendRequest:
    def test_the_datasets_spelling_is_read_as_its_key(self) -> None:
        assert request("Refund_not_showing_up").send_request().intent == "refund_not_showing_up"
        assert request("Request_Refund").send_request().intent == "request_refund"

    def test_an_intent_no_classifier_knows_is_refused_naming_the_field(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            request("refnud").send_request()
        assert caught.value.field == "intent"
        assert "not an intent a classifier knows" in caught.value.reason
