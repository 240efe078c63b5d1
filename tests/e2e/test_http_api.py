from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.conftest import module_chorus

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.e2e.service import ChorusProcess
    from tests.servers import TestDatabases

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chorus(shared_chorus: ChorusProcess) -> ChorusProcess:
    """The module's tests share one service: each makes its own signals and customers."""
    return shared_chorus


@pytest.fixture(scope="module")
async def clock_chorus(
    databases: TestDatabases, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ChorusProcess]:
    """One service for the tests that set the manual clock to a moment and read it back:
    each sets it before it reads it."""
    async with module_chorus(databases, nats_url, tmp_path_factory) as service:
        yield service


def unique() -> str:
    """A suffix for ids and identities no other test of the shared service uses."""
    return uuid.uuid4().hex[:8]


def signal(event_id: str, *identities: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": extra.pop("type", "order.placed"),
        "occurred_at": "2026-11-02T10:00:00Z",
        "identities": [{"type": t, "value": v} for t, v in identities],
        **extra,
    }


def client(chorus: ChorusProcess, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key or chorus.admin_key}"}  # type: ignore[attr-defined]
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


class TestKeysAndProblems:
    def test_v1_needs_a_key_and_says_so_as_problem_details(self, chorus: ChorusProcess) -> None:
        answer = httpx.get(chorus.base_url + "/v1/customers?identity=email:a@example.org")
        assert answer.status_code == 401
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["status"] == 401

    def test_a_role_without_the_right_gets_403(self, chorus: ChorusProcess) -> None:
        auditor = chorus.key("auditor")
        with client(chorus, auditor) as http:
            answer = http.post(
                "/v1/events?wait=attributed",
                json={"signals": [signal("x", ("email", "a@example.org"))]},
            )
        assert answer.status_code == 403
        assert answer.json()["type"].endswith("/forbidden")

    def test_health_ready_schema_and_metrics_are_open(self, chorus: ChorusProcess) -> None:
        for path in ("/health", "/ready", "/schema/openapi.json", "/metrics"):
            assert httpx.get(chorus.base_url + path).status_code == 200, path


class TestIngestingOverHttp:
    def test_duplicates_and_malformed_signals_in_one_batch(self, chorus: ChorusProcess) -> None:
        # Ids and email of its own; no other test of the shared service names the phone.
        run = unique()
        batch = [
            signal(f"o-1-{run}", ("email", f"Ana-{run}@Example.org")),
            signal(f"o-1-{run}", ("email", f"ana-{run}@example.org")),
            {"id": f"bad-1-{run}", "type": "order.placed"},
            signal(f"bad-2-{run}", ("email", "not-an-email")),
            signal(f"o-2-{run}", ("phone", "020 7946 0958")),
        ]
        with client(chorus) as http:
            answer = http.post("/v1/events?wait=attributed", json={"signals": batch})
            assert answer.status_code == 422
            body = answer.json()
            assert [(e["index"], e["field"]) for e in body["errors"]] == [
                (2, "$.occurred_at"),
                (3, "$.identities[0].value"),
            ]
            assert "missing" in body["errors"][0]["reason"]
            assert [r["status"] for r in body["results"]] == ["recorded", "duplicate", "recorded"]
            again = http.post("/v1/events?wait=attributed", json={"signals": [batch[0], batch[4]]})
            assert again.status_code == 200
            assert again.json()["duplicates"] == 2
            found = http.get("/v1/customers", params={"identity": "phone:+442079460958"})
            assert found.status_code == 200

    def test_an_inbound_message_no_conversation_can_thread_is_a_422_naming_the_property(
        self, chorus: ChorusProcess
    ) -> None:
        """Refused at the edge, nothing stored for it: it would otherwise park the process that
        threads messages (a bad topic) or be passed by in silence (a channel Chorus does not
        know); the rest of the batch is stored and threaded, and /ready stays 200."""
        run = unique()
        phone = ("phone", f"+4477009{int(run, 16) % 100_000:05d}")

        def message(n: int, identity: tuple[str, str], **properties: Any) -> dict[str, Any]:
            text = {"channel": "sms", "text": "Where is my card?", **properties}
            return signal(f"h-{n}-{run}", identity, type="message.received", properties=text)

        batch = [
            message(1, phone, topic="Not A Key!! "),
            message(2, phone, topic="x" * 300),
            message(3, phone, channel=42),
            message(4, ("email", f"h-{run}@example.org"), channel="whatsapp"),
            message(5, phone, topic="cards"),
        ]
        with client(chorus) as http:
            answer = http.post("/v1/events?wait=attributed", json={"signals": batch})
            assert answer.status_code == 422, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            body = answer.json()
            assert body["type"].endswith("/invalid-signals")
            assert [(e["index"], e["id"], e["field"]) for e in body["errors"]] == [
                (0, f"h-1-{run}", "$.properties.topic"),
                (1, f"h-2-{run}", "$.properties.topic"),
                (2, f"h-3-{run}", "$.properties.channel"),
                (3, f"h-4-{run}", "$.properties.channel"),
            ]
            reasons = [e["reason"] for e in body["errors"]]
            assert reasons[0].startswith("is not a topic key like 'order-42'")
            assert reasons[1].startswith("is 300 characters long")
            assert reasons[2].startswith("must be a string, one of chat, email")
            assert "whatsapp_id or phone identity; the signal names only email" in reasons[3]
            assert [(r["index"], r["status"]) for r in body["results"]] == [(4, "recorded")]
            customer_id = body["results"][0]["customer_id"]
            deadline = time.monotonic() + 30
            while not (
                threads := http.get(
                    "/v1/conversations", params={"customer_id": customer_id}
                ).json()["items"]
            ):
                assert time.monotonic() < deadline, "the good message was never threaded"
                time.sleep(0.1)
            assert [t["topic"] for t in threads] == ["cards"]
            assert http.get("/ready").status_code == 200
            unknown = http.get("/v1/customers", params={"identity": f"email:h-{run}@example.org"})
            assert unknown.status_code == 404  # nothing stored for the refused ones

    def test_a_merge_over_http_keeps_the_merged_id_resolving(self, alone: ChorusProcess) -> None:
        chorus = alone  # it moves the clock
        with client(chorus) as http:
            first = http.post(
                "/v1/events?wait=attributed",
                json={"signals": [signal("a", ("email", "ana@example.org"))]},
            )
            http.post("/v1/admin/clock", json={"advance_seconds": 60}).raise_for_status()
            second = http.post(
                "/v1/events?wait=attributed",
                json={"signals": [signal("b", ("phone", "+442079460958"))]},
            )
            link = signal("c", ("email", "ana@example.org"), ("phone", "+442079460958"))
            http.post("/v1/events?wait=attributed", json={"signals": [link]}).raise_for_status()
            survivor = first.json()["results"][0]["customer_id"]
            merged = second.json()["results"][0]["customer_id"]
            answer = http.get(f"/v1/customers/{merged}").json()
            assert answer["id"] == survivor
            assert answer["merged_from"] == [merged]
            timeline = http.get(f"/v1/customers/{merged}/timeline", params={"limit": 2}).json()
            assert timeline["customer_id"] == survivor
            assert len(timeline["items"]) == 2
            assert timeline["next_cursor"]
            rest = http.get(
                f"/v1/customers/{survivor}/timeline",
                params={"cursor": timeline["next_cursor"], "limit": 100},
            ).json()
            positions = [i["position"] for i in timeline["items"] + rest["items"]]
            assert positions == sorted(positions, reverse=True)
            assert {i["type"] for i in rest["items"]} >= {"Signal.Recorded", "Customer.Registered"}


class TestCorrelation:
    def test_a_correlation_id_is_echoed_and_logged_as_json(self, chorus: ChorusProcess) -> None:
        run = unique()
        correlation = f"req-{run}"  # the shared service's log is every test's
        with client(chorus) as http:
            answer = http.post(
                "/v1/events?wait=attributed",
                json={"signals": [signal(f"corr-{run}", ("email", f"ana-{run}@example.org"))]},
                headers={"X-Correlation-Id": correlation},
            )
        assert answer.headers["x-correlation-id"] == correlation
        lines = [
            json.loads(line)
            for line in chorus.log_path.read_text().splitlines()
            if line.startswith("{")
        ]
        assert any(
            line.get("correlation_id") == correlation and line["event"] == "signals accepted"
            for line in lines
        )


class TestCustomers:
    def test_upsert_by_identity_then_read_back(self, chorus: ChorusProcess) -> None:
        account = f"42-{unique()}"
        with client(chorus) as http:
            body = {
                "identities": [
                    {"type": "account_id", "value": account, "verification": "authenticated"}
                ],
                "profile": {"first_name": "Ana", "time_zone": "Asia/Tokyo"},
                "attributes": {"tier": "gold"},
            }
            created = http.put("/v1/customers", json=body).json()
            assert created["created"] is True
            again = http.put("/v1/customers", json=body).json()
            assert again["created"] is False
            assert again["customer"]["version"] == created["customer"]["version"]
            found = http.get("/v1/customers", params={"identity": f"account_id:{account}"}).json()
            assert found["profile"]["time_zone"] == "Asia/Tokyo"

    def test_an_upsert_answers_201_when_it_creates_and_200_when_it_updates(
        self, chorus: ChorusProcess
    ) -> None:
        with client(chorus) as http:
            body = {"identities": [{"type": "email", "value": f"new-{unique()}@example.org"}]}
            assert http.put("/v1/customers", json=body).status_code == 201
            assert http.put("/v1/customers", json=body).status_code == 200
            spec = http.get("/schema/openapi.json").json()
        assert {"200", "201"} <= set(spec["paths"]["/v1/customers"]["put"]["responses"])

    def test_a_bad_time_zone_names_the_field(self, chorus: ChorusProcess) -> None:
        with client(chorus) as http:
            answer = http.put(
                "/v1/customers",
                json={
                    "identities": [{"type": "email", "value": "a@example.org"}],
                    "profile": {"time_zone": "Mars/Base"},
                },
            )
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["field"] == "$.time_zone"

    def test_an_identity_to_find_that_is_none_is_a_400_naming_query_identity(
        self, chorus: ChorusProcess
    ) -> None:
        refused = ("ana@example.org", "email:ana", "Work Email:ana@example.org", "phone:12")
        with client(chorus) as http:
            answers = {
                text: http.get("/v1/customers", params={"identity": text}) for text in refused
            }
            unknown = http.get("/v1/customers", params={"identity": f"email:{unique()}@a.org"})
        for text, answer in answers.items():
            body = answer.json()
            assert (answer.status_code, body["type"].rpartition("/")[2]) == (
                400,
                "invalid-request",
            ), (text, body)
            assert [error["field"] for error in body["errors"]] == ["query.identity"], text
        assert answers["ana@example.org"].json()["errors"][0]["reason"] == (
            "expected TYPE:VALUE, for example email:ana@example.org"
        )
        assert answers["email:ana"].json()["errors"][0]["reason"].startswith("email: ")
        assert unknown.status_code == 404

    def test_an_unknown_customer_is_a_404_problem(self, chorus: ChorusProcess) -> None:
        with client(chorus) as http:
            answer = http.get("/v1/customers/00000000-0000-0000-0000-000000000000")
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("application/problem+json")

    def test_the_manual_clock_moves_only_for_admins(self, clock_chorus: ChorusProcess) -> None:
        with client(clock_chorus) as http:
            answer = http.post("/v1/admin/clock", json={"set": "2030-01-01T00:00:00Z"})
            assert answer.status_code == 200
            assert answer.json()["now"].startswith("2030-01-01")

    def test_a_clock_outside_1970_to_9000_is_refused_naming_the_field(
        self, clock_chorus: ChorusProcess
    ) -> None:
        with client(clock_chorus) as http:
            http.post("/v1/admin/clock", json={"set": "2030-01-01T00:00:00Z"}).raise_for_status()
            for body, field in (
                ({"set": "9999-12-31T23:59:59-14:00"}, "$.set"),
                ({"set": "0001-01-01T00:00:00Z"}, "$.set"),
                ({"advance_seconds": 1e300}, "$.advance_seconds"),
                ({"set": "8999-12-31T23:59:59Z", "advance_seconds": 1}, "$.advance_seconds"),
            ):
                answer = http.post("/v1/admin/clock", json=body)
                assert answer.status_code == 422, body
                assert answer.json()["errors"][0]["field"] == field, body
            unchanged = http.post("/v1/admin/clock", json={}).json()["now"]
        assert unchanged.startswith("2030-01-01")


class TestReadiness:
    def test_ready_reports_the_database_nats_and_every_worker(self, chorus: ChorusProcess) -> None:
        checks = httpx.get(chorus.base_url + "/ready").json()["checks"]
        assert checks == {
            "postgres": "ok",
            "nats": "ok",
            "signal_consumer": "ok",
            "scheduler": "ok",
            "fallbacks": "ok",
            "parked_statuses": "ok",
            "dispatcher": "ok",
            "send_responder": "ok",
            "segment_timers": "ok",
            "enrollment_timers": "ok",
            "schedule_timers": "ok",
            "sla_timers": "ok",
            "conversation_responder": "ok",
            "snooze_timers": "ok",
            "projections": "ok",
        }

    def test_the_openapi_document_describes_the_signal_batch(self, chorus: ChorusProcess) -> None:
        doc = httpx.get(chorus.base_url + "/schema/openapi.json").json()
        body = doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]
        assert "identities" in body["properties"]["signals"]["items"]["required"]
