from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import nats
import pytest

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chorus(shared_chorus: ChorusProcess) -> ChorusProcess:
    """The module's tests share one service, each with segments of its own; its clock is only
    ever set to one time, 2030-01-01 12:00 (the test that moves it has a service of its own)."""
    return shared_chorus


def own_buyers() -> dict[str, Any]:
    """The repeat buyers' segment under a key of the test's own."""
    return {**BUYERS, "key": f"repeat-buyers-{uuid.uuid4().hex[:8]}"}


BUYERS: dict[str, Any] = {
    "key": "repeat-buyers",
    "name": "Repeat buyers",
    "description": "Two orders in a day",
    "condition": {
        "type": "signal_count",
        "signal": "order.placed",
        "within": "24h",
        "op": "gte",
        "value": 2,
    },
}


def client(chorus: ChorusProcess) -> httpx.Client:
    headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


def order(n: int, email: str, at: str = "2030-01-01T10:00:00Z") -> dict[str, Any]:
    return {
        "id": f"order-{n}",
        "type": "order.placed",
        "occurred_at": at,
        "identities": [{"type": "email", "value": email}],
        "properties": {"total": 10 * n},
    }


def wait_for(probe: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


class TestSegmentsApi:
    def test_a_segment_over_past_signals_fills_then_follows_new_signals_and_time(
        self, alone: ChorusProcess
    ) -> None:
        with client(alone) as http:  # it moves the clock: a service of its own
            http.post("/v1/admin/clock", json={"set": "2030-01-01T12:00:00Z"}).raise_for_status()
            events = [order(1, "ana@example.org"), order(2, "ana@example.org")]
            events.append(order(3, "bo@example.org"))
            http.post("/v1/events?wait=attributed", json={"signals": events}).raise_for_status()

            created = http.post("/v1/segments", json=BUYERS)
            assert created.status_code == 201, created.text
            assert http.post("/v1/segments", json=BUYERS).status_code == 200

            def members() -> list[str]:
                page = http.get("/v1/segments/repeat-buyers/members").json()
                return [m["id"] for m in page["items"]]

            ana = http.get("/v1/customers", params={"identity": "email:ana@example.org"}).json()
            assert wait_for(lambda: members() == [ana["id"]])
            assert http.get("/v1/segments/repeat-buyers/count").json()["members"] == 1
            mine = http.get(f"/v1/customers/{ana['id']}/segments").json()
            assert mine["items"] == [{"key": "repeat-buyers"}]

            http.post(
                "/v1/events?wait=attributed",
                json={"signals": [order(4, "bo@example.org", "2030-01-01T11:00:00Z")]},
            ).raise_for_status()
            assert wait_for(lambda: len(members()) == 2)
            found = http.get(
                "/v1/customers/search", params={"segment": "repeat-buyers", "limit": 1}
            ).json()
            assert len(found["items"]) == 1
            assert found["next_cursor"]
            rest = http.get(
                "/v1/customers/search",
                params={"segment": "repeat-buyers", "after": found["next_cursor"]},
            ).json()
            assert len(rest["items"]) == 1
            assert rest["next_cursor"] is None
            assert {found["items"][0]["id"], rest["items"][0]["id"]} == set(members())

            # A day later every order has left the window: both leave with no new signal.
            http.post("/v1/admin/clock", json={"set": "2030-01-02T12:00:01Z"}).raise_for_status()
            assert wait_for(lambda: members() == [])

            activity = http.get(
                f"/v1/customers/{ana['id']}/activity", params={"within": "30d"}
            ).json()
            assert activity["items"][0]["signal_type"] == "order.placed"
            assert activity["items"][0]["count"] == 2
            for bad in ("0h", "90m", "3651d", "soon"):
                answer = http.get(f"/v1/customers/{ana['id']}/activity", params={"within": bad})
                assert answer.status_code == 400, bad
                assert answer.json()["type"].endswith("/invalid-request"), bad
                assert answer.json()["errors"][0]["field"] == "query.within"

    def test_a_refused_search_or_activity_parameter_is_a_400_naming_it(
        self, chorus: ChorusProcess
    ) -> None:
        nobody = uuid.uuid4()
        deep = "tier:" + "[" * 40 + "]" * 40  # nested deeper than any reader walks
        refused = [
            ("/v1/customers/search", {"attribute": "gold"}, "query.attribute"),
            ("/v1/customers/search", {"attribute": ":gold"}, "query.attribute"),
            ("/v1/customers/search", {"attribute": ["tier:gold", deep]}, "query.attribute"),
            ("/v1/customers/search", {"segment": "Not A Key"}, "query.segment"),
            ("/v1/customers/search", {"identity": "ana@example.org"}, "query.identity"),
            ("/v1/customers/search", {"identity": "email:ana"}, "query.identity"),
            (f"/v1/customers/{nobody}/activity", {"within": "soon"}, "query.within"),
            (f"/v1/customers/{nobody}/activity", {"within": "-1h"}, "query.within"),
            (f"/v1/customers/{nobody}/activity", {"within": "1h30m"}, "query.within"),
        ]
        with client(chorus) as http:
            answers = [(http.get(path, params=params), field) for path, params, field in refused]
            kept = http.get(
                "/v1/customers/search",
                params={"attribute": ["tier:gold", "vip:true"], "segment": "no-such-segment"},
            )
            unknown = http.get(f"/v1/customers/{nobody}/activity", params={"within": "7d"})
        for (answer, field), (path, params, _) in zip(answers, refused, strict=True):
            body = answer.json()
            assert (answer.status_code, body["type"].rpartition("/")[2]) == (
                400,
                "invalid-request",
            ), (path, params, body)
            assert [error["field"] for error in body["errors"]] == [field], (path, params)
        reasons = [answer.json()["errors"][0]["reason"] for answer, _ in answers]
        assert reasons[0] == "'gold' is not NAME:VALUE, e.g. tier:gold"
        assert reasons[3] == "'Not A Key' is not a segment key"
        assert reasons[5].startswith("email: ")
        assert reasons[6].startswith("'soon' is not a duration")
        assert kept.status_code == 200, kept.text
        assert kept.json()["items"] == []
        assert unknown.status_code == 404

    def test_a_bad_condition_is_a_problem_naming_the_field(self, chorus: ChorusProcess) -> None:
        buyers = own_buyers()
        bad = {**buyers, "condition": {**buyers["condition"], "within": "a day"}}
        with client(chorus) as http:
            answer = http.post("/v1/segments", json=bad)
            assert answer.status_code == 422
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.json()["errors"][0]["field"] == "$.condition.within"
            # A count past 64 bits: no PostgreSQL integer or JSON reader holds it exactly.
            huge = {**buyers, "condition": {**buyers["condition"], "value": 99999999999999999999}}
            answer = http.post("/v1/segments", json=huge)
            assert answer.status_code == 422, answer.text
            assert answer.json()["errors"] == [
                {"field": "$.condition.value", "reason": "at most 2,147,483,647"}
            ]
            other = {**buyers, "condition": {"type": "identity", "identity_type": "phone"}}
            http.post("/v1/segments", json=buyers).raise_for_status()
            assert http.post("/v1/segments", json=other).status_code == 409
            assert http.get("/v1/segments/nope").status_code == 404

    async def test_entries_and_exits_are_published_on_nats(self, chorus: ChorusProcess) -> None:
        buyers = own_buyers()
        nc = await nats.connect(chorus.nats_url)
        received: list[Any] = []
        subject = f"{chorus.subject_prefix}.out.segments.>"

        async def got(message: Any) -> None:
            event = json.loads(message.data)
            # Its own segment's only: another test's segment of the service has its condition.
            if event["data"]["segment"] == buyers["key"]:
                received.append((message.subject, event))

        subscription = await nc.subscribe(subject, cb=got)
        try:
            async with httpx.AsyncClient(
                base_url=chorus.base_url,
                headers={"Authorization": f"Bearer {chorus.admin_key}"},  # type: ignore[attr-defined]
            ) as http:
                await http.post("/v1/admin/clock", json={"set": "2030-01-01T12:00:00Z"})
                (await http.post("/v1/segments", json=buyers)).raise_for_status()
                events = [order(1, "ana@example.org"), order(2, "ana@example.org")]
                (
                    await http.post("/v1/events?wait=attributed", json={"signals": events})
                ).raise_for_status()
                for _ in range(100):
                    if received:
                        break
                    await asyncio.sleep(0.1)
                await http.delete(f"/v1/segments/{buyers['key']}")
                for _ in range(100):
                    if len(received) == 2:
                        break
                    await asyncio.sleep(0.1)
        finally:
            await subscription.unsubscribe()
            await nc.close()
        assert [(s, e["type"]) for s, e in received] == [
            (f"{chorus.subject_prefix}.out.segments.entered", "chorus.segment.entered"),
            (f"{chorus.subject_prefix}.out.segments.exited", "chorus.segment.exited"),
        ]
        assert received[0][1]["data"]["segment"] == buyers["key"]
        assert received[1][1]["data"]["reason"] == "segment deleted"
