from __future__ import annotations

from uuid import uuid4

import pytest

from adapters.system.unsubscribe_tokens import SignedUnsubscribeTokens
from domain.policy.vocabulary import Channel, Purpose
from ports.unsubscribe import UnsubscribeTarget

TOKENS = SignedUnsubscribeTokens(b"0123456789abcdef0123456789abcdef")


class TestUnsubscribeTokens:
    @pytest.mark.parametrize("purpose", [Purpose.MARKETING, None])
    def test_a_token_reads_back_as_what_it_names(self, purpose: Purpose | None) -> None:
        target = UnsubscribeTarget(uuid4(), Channel.EMAIL, purpose)
        assert TOKENS.read(TOKENS.issue(target)) == target

    def test_an_altered_token_names_nobody(self) -> None:
        token = TOKENS.issue(UnsubscribeTarget(uuid4(), Channel.EMAIL, Purpose.MARKETING))
        body, _, signature = token.partition(".")
        other = TOKENS.issue(UnsubscribeTarget(uuid4(), Channel.EMAIL, Purpose.MARKETING))
        assert TOKENS.read(other.partition(".")[0] + "." + signature) is None
        assert TOKENS.read(body + "." + signature[:-2] + "AA") is None
        assert TOKENS.read("garbage") is None

    def test_another_secret_does_not_accept_our_tokens(self) -> None:
        token = TOKENS.issue(UnsubscribeTarget(uuid4(), Channel.EMAIL, None))
        assert SignedUnsubscribeTokens(b"another-secret-of-enough-length").read(token) is None
