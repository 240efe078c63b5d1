from __future__ import annotations

from uuid import UUID

from domain.campaign.origin import SendOrigin

ENROLLMENT = UUID("0b5d3b0e-8b7c-4f4e-9d0b-6a7e1f2c3d4e")


class TestSendOrigin:
    def test_an_origin_reads_back_as_the_send_it_names(self) -> None:
        send = SendOrigin("order-follow-up", 2, "whatsapp", ENROLLMENT)
        assert str(send) == f"campaign:order-follow-up:2:whatsapp:{ENROLLMENT}"
        assert SendOrigin.parse(str(send)) == send

    def test_origins_of_other_senders_name_no_campaign_send(self) -> None:
        assert SendOrigin.parse("api:admin") is None
        assert SendOrigin.parse("campaign:only:three") is None
        assert SendOrigin.parse("campaign:k:not-a-number:step:" + str(ENROLLMENT)) is None
        assert SendOrigin.parse("campaign:k:1:step:not-a-uuid") is None
