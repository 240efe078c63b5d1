"""Assign and transfer over NATS (`<prefix>.cmd.conversations.assign` / `.transfer`): the HTTP
body with `conversation_id` beside it and `acting_agent` for the agent who acts; the answers
are the HTTP answers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import nats
import pytest

from domain.policy.vocabulary import Channel
from tests.e2e.test_agent_desk_api import client, customer_wrote, staffed

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e


class TestAssignAndTransferOverNats:
    async def test_they_answer_as_http_does_from_a_403_to_a_transfer(
        self, chorus: ChorusProcess
    ) -> None:
        staffed(chorus)  # ana.silva on support (chat only), bruno.costa on billing
        conversation = str(await customer_wrote(chorus, Channel.EMAIL))  # support's queue
        nc = await nats.connect(chorus.nats_url)
        try:

            async def ask(
                command: str, body: dict[str, Any], key: str | None = None
            ) -> tuple[int, dict[str, Any]]:
                subject = f"{chorus.subject_prefix}.cmd.conversations.{command}"
                headers = None if key is None else {"Idempotency-Key": key}
                reply = await nc.request(
                    subject, json.dumps(body).encode(), timeout=10, headers=headers
                )
                return int((reply.headers or {})["Chorus-Status"]), json.loads(reply.data)

            to_ana = {"conversation_id": conversation, "agent": "ana.silva", "reason": "asked"}
            status, refused = await ask("assign", {**to_ana, "acting_agent": "bruno.costa"})
            assert (status, refused["type"].rpartition("/")[2]) == (403, "not-on-team")
            assert [e["field"] for e in refused["errors"]] == ["$.agent"]
            assert "'bruno.costa' is not on team 'support'" in refused["errors"][0]["reason"]
            status, unknown = await ask("assign", {**to_ana, "agent": "nobody"})
            assert (status, unknown["errors"]) == (
                404,
                [{"field": "$.agent", "reason": "no agent 'nobody'"}],
            )
            status, unknown = await ask("transfer", {**to_ana, "team": "nowhere"})
            assert (status, unknown["errors"]) == (
                404,
                [{"field": "$.team", "reason": "no team 'nowhere'"}],
            )

            # Ana takes chats only: no room for an email, as HTTP answers it
            status, full = await ask("assign", to_ana)
            with client(chorus) as http:
                over_http = http.post(
                    f"/v1/conversations/{conversation}/assign",
                    json={"agent": "ana.silva", "reason": "asked"},
                )
            assert (status, over_http.status_code) == (409, 409)
            answered = {k: full[k] for k in ("type", "title", "status", "detail", "errors")}
            assert answered == {k: over_http.json()[k] for k in answered}

            status, bad = await ask("assign", {"conversation_id": conversation, "agent": "ana"})
            assert (status, bad["errors"][0]["field"]) == (400, "$.reason")
            status, bad = await ask("transfer", {**to_ana, "team": "x", "acting_agent": "No Key"})
            assert (status, bad["errors"][0]["field"]) == (400, "$.acting_agent")

            to_billing = {
                "conversation_id": conversation,
                "team": "billing",
                "reason": "a billing question",
                "acting_agent": "ana.silva",
            }
            status, moved = await ask("transfer", to_billing, key="move-1")
            assert status == 200
            assert moved == {
                "conversation_id": conversation,
                "team": "billing",
                "agent": None,
                "changed": True,
            }
            status, again = await ask("transfer", to_billing, key="move-1")
            assert (status, again["changed"]) == (200, False)
            # Billing's now: Ana's reach is gone
            status, refused = await ask("assign", {**to_ana, "acting_agent": "ana.silva"})
            assert (status, refused["type"].rpartition("/")[2]) == (403, "not-on-team")
        finally:
            await nc.close()
