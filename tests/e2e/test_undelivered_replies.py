"""A reply that bounces, in the running service: the provider's webhook reaches the message, the
reply statuses process tells its thread, and the conversation waits on us again, its SLA clock
running, with the reason."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from domain.policy.vocabulary import Channel
from tests.e2e.conftest import bouncing_email
from tests.e2e.service import ChorusProcess
from tests.e2e.test_agent_desk_api import NOW, ROUTING, client, customer_wrote, staffed

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.e2e


@pytest.fixture
async def bouncing(
    database_url: str, nats_url: str, tmp_path: Path
) -> AsyncIterator[ChorusProcess]:
    """Chorus with one email provider whose every message bounces."""
    log = tmp_path / "chorus.log"
    async with bouncing_email(database_url, nats_url, log, sender="help@shop.example") as made:
        yield made[0]


async def test_a_bounced_reply_puts_its_conversation_back_to_waiting_on_us(
    bouncing: ChorusProcess,
) -> None:
    chorus = bouncing
    staff = staffed(chorus)
    with client(chorus) as http:
        sla = {"first_response": {"email": "4h"}, "next_response": {"email": "2h"}}
        published = http.put("/v1/routing", json={**ROUTING, "sla": sla})
        assert published.status_code == 200, published.text
    conversation = await customer_wrote(chorus, Channel.EMAIL)
    with client(chorus, staff.ana_key) as http:
        sent = http.post(f"/v1/conversations/{conversation}/replies", json={"text": "On its way"})
        assert sent.status_code == 200, sent.text
        assert (sent.json()["sent"], sent.json()["status"]) == (True, "waiting_on_customer")
        deadline = time.monotonic() + 30
        thread: dict[str, Any] = {}
        while time.monotonic() < deadline:
            thread = http.get(f"/v1/conversations/{conversation}").json()
            if thread["status"] == "waiting_on_us":
                break
            await asyncio.sleep(0.2)
    assert thread["status"] == "waiting_on_us", thread
    assert thread["thread"][-1]["provider_status"] == "bounced"
    with client(chorus, staff.ana_key) as http:
        deadline = time.monotonic() + 15
        items: list[Any] = []
        while time.monotonic() < deadline:
            listed = http.get("/v1/conversations", params={"status": "waiting_on_us"})
            items = [i for i in listed.json()["items"] if i["id"] == str(conversation)]
            if items and items[0]["sla"] is not None:
                break
            await asyncio.sleep(0.2)
    (item,) = items
    # The customer wrote at NOW and still has no answer: the clock runs from then again.
    assert item["sla"]["sla"] == "next_response"
    assert datetime.fromisoformat(item["sla"]["due"]) == NOW + timedelta(hours=2)
