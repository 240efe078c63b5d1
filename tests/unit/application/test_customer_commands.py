"""Commands on one known customer: its profile, and the suppression list."""

from __future__ import annotations

import pytest

from application.customer.update_profile import UpdateProfile
from domain.customer.aggregate import CustomerWasMerged
from domain.policy.decision import Outcome, SendRequest
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.errors import NotFound
from tests.unit.in_memory_chorus import InMemoryChorus, claim

ANA = claim("email", "ana@example.org")
ANA_PHONE = claim("phone", "+351912345678")
RECEIPT = SendRequest("care", Purpose.TRANSACTIONAL, (Channel.EMAIL,))


class TestUpdateProfile:
    async def test_a_change_is_recorded_once(self) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        update = UpdateProfile(chorus.uows, chorus.clock)
        assert await update(ana, {"first_name": "Ana"}, {"tier": "gold", "plan": "pro"})
        assert not await update(ana, {"first_name": "Ana"}, {"tier": "gold"})
        assert await update(ana, {}, {"plan": None})
        customer = await chorus.customer(ana)
        assert (customer.profile.first_name, customer.attributes) == ("Ana", {"tier": "gold"})

    async def test_an_unknown_or_merged_customer_takes_no_change(self) -> None:
        chorus = InMemoryChorus()
        update = UpdateProfile(chorus.uows, chorus.clock)
        with pytest.raises(NotFound):
            await update(chorus.ids.new_id(), {"first_name": "Ana"}, {})
        await chorus.upsert((ANA,), {}, {})
        newer = await chorus.upsert((ANA_PHONE,), {}, {})
        await chorus.upsert((ANA, ANA_PHONE), {}, {})
        with pytest.raises(CustomerWasMerged):
            await update(newer.customer_id, {"first_name": "Bea"}, {})


class TestChangeSuppression:
    async def test_a_suppressed_channel_carries_nothing_until_it_is_lifted(self) -> None:
        chorus = InMemoryChorus()
        ana = (await chorus.upsert((ANA,), {}, {})).customer_id
        assert await chorus.change_suppression(ana, Channel.EMAIL, "complaint", active=True)
        assert not await chorus.change_suppression(ana, Channel.EMAIL, "complaint", active=True)
        decided = await chorus.request_message(ana, RECEIPT)
        assert decided.decision is not None
        assert decided.decision.outcome is Outcome.SUPPRESS
        assert await chorus.change_suppression(ana, Channel.EMAIL, "support", active=False)
        decided = await chorus.request_message(ana, RECEIPT)
        assert decided.decision is not None
        assert decided.decision.outcome is Outcome.SEND
