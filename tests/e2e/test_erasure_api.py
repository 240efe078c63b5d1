"""Erasure over HTTP: a customer who came in by a signal, erased, reads as erased in the audit
export; erasing again answers the same."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from domain.access.records import RECORD_TOPICS

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e

ERASED = "domain.customer.aggregate:Customer.Erased"
SECRETS = ("ana@example.org", "7700900123", "Lima", "gold-tier")
SIGNAL = {
    "id": "order-1",
    "type": "order.placed",
    "occurred_at": "2026-11-27T10:00:00Z",
    "identities": [
        {"type": "email", "value": "ana@example.org"},
        {"type": "phone", "value": "+44 7700 900123"},
    ],
    "properties": {"note": "gold-tier", "total": 120},
    "profile": {"first_name": "Ana", "last_name": "Lima"},
}


def client(chorus: ChorusProcess, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=chorus.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def logged(http: httpx.Client, topic: str) -> list[dict[str, Any]]:
    """The log's lines once one of `topic` is readable (the horizon waits for the server's
    other transactions)."""
    deadline = time.monotonic() + 20
    while True:
        answer = http.get("/v1/audit/events", params={"limit": 10_000})
        found = [json.loads(line) for line in answer.text.splitlines()]
        if any(line["type"] == topic for line in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


class TestErasingACustomer:
    def test_the_export_shows_them_erased_and_a_second_erasure_answers_the_same(
        self, chorus: ChorusProcess, tmp_path: Path
    ) -> None:
        admin = chorus.admin_key  # type: ignore[attr-defined]
        with client(chorus, admin) as http:
            ingested = http.post("/v1/events?wait=attributed", json={"signals": [SIGNAL]})
            assert ingested.status_code == 200, ingested.text
            found = http.get("/v1/customers", params={"identity": "email:ana@example.org"})
            assert found.status_code == 200, found.text
            ana = found.json()["id"]
            assert found.json()["profile"]["last_name"] == "Lima"
            before = logged(http, "domain.signals.aggregate:Signal.Recorded")
            assert any(secret in json.dumps(before) for secret in SECRETS)

            marketer = chorus.chorus("keys", "create", "--role", "marketer")  # type: ignore[attr-defined]
            with client(chorus, marketer) as refused:
                assert refused.post(f"/v1/customers/{ana}/erase").status_code == 403

            keyed = {"Idempotency-Key": "erase-ana"}
            first = http.post(f"/v1/customers/{ana}/erase", headers=keyed)
            assert first.status_code == 200, first.text
            assert first.json()["customer_id"] == ana
            assert first.json()["erased_ids"] == [ana]
            retried = http.post(f"/v1/customers/{ana}/erase", headers=keyed)
            again = http.post(f"/v1/customers/{ana}/erase")
            assert (retried.status_code, retried.json()) == (200, first.json())
            assert retried.headers["chorus-repeated"] == "true"
            assert (again.status_code, again.json()) == (200, first.json())

            gone = http.get("/v1/customers", params={"identity": "email:ana@example.org"})
            assert gone.status_code == 404
            assert http.get(f"/v1/customers/{ana}").json()["identities"] == []
            consent = {"channel": "email", "purpose": "marketing", "granted": True, "source": "x"}
            changed = http.post(f"/v1/customers/{ana}/consents", json={"changes": [consent]})
            assert changed.status_code == 409
            assert changed.json()["type"].endswith("customer-erased")
            after = logged(http, ERASED)

        assert [line["type"] for line in after].count(ERASED) == 1

        # The log keeps its shape: one fact more about customers (the keys made are their own).
        def facts(lines: list[dict[str, Any]]) -> int:
            return sum(1 for line in lines if line["type"] not in RECORD_TOPICS)

        assert facts(after) == facts(before) + 1
        out = tmp_path / "log.jsonl"
        chorus.chorus("audit", "export", "--out", str(out))  # type: ignore[attr-defined]
        exported = out.read_text()
        assert len(exported.splitlines()) == len(after)
        assert not [secret for secret in SECRETS if secret in exported]
        assert "[erased]" in exported
