"""The consents a segment condition sees, read from the customer directory's stored JSON."""

from __future__ import annotations

from adapters.postgres.segment_states import _consents
from domain.policy.vocabulary import Channel, Purpose


class TestStoredConsents:
    def test_each_channel_and_purpose_reads_as_granted_or_not(self) -> None:
        stored = {"email:marketing": {"granted": True}, "sms:service": {"granted": False}}
        assert _consents(stored) == {
            (Channel.EMAIL, Purpose.MARKETING): True,
            (Channel.SMS, Purpose.SERVICE): False,
        }

    def test_a_channel_wide_opt_out_withdraws_every_purpose_on_it(self) -> None:
        stored = {"sms:marketing": {"granted": True}, "sms:*": {"granted": False}}
        assert _consents(stored) == {(Channel.SMS, purpose): False for purpose in Purpose}

    def test_a_channel_wide_grant_adds_nothing(self) -> None:
        assert _consents({"email:*": {"granted": True}}) == {}

    def test_unknown_channels_and_purposes_are_left_out(self) -> None:
        stored = {
            "pigeon:marketing": {"granted": True},
            "email:gossip": {"granted": True},
            "email:service": {"granted": True},
        }
        assert _consents(stored) == {(Channel.EMAIL, Purpose.SERVICE): True}
