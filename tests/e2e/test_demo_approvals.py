"""The demo's held refund answer, as the README tour shows it with the manual clock: it waits
in /v1/approvals, and approved it is delivered by the demo's fake email provider."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.demo import DemoProcess

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    started = DemoProcess(tmp_path_factory.mktemp("demo-approvals") / "demo.log")
    started.env["CHORUS_CLOCK"] = "manual"
    try:
        started.start()
        yield started
    finally:
        started.stop()


def message(http: httpx.Client, message_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        view: dict[str, Any] = http.get(f"/v1/messages/{message_id}").json()
        if view.get("status") == status or time.monotonic() > deadline:
            return view
        time.sleep(0.2)


class TestTheDemosRefundAnswer:
    def test_it_waits_for_approval_and_once_approved_is_delivered(self, demo: DemoProcess) -> None:
        headers = {"Authorization": f"Bearer {demo.admin_key}"}
        with httpx.Client(base_url=demo.base_url, headers=headers, timeout=30) as http:
            pending = http.get("/v1/approvals?status=pending").json()["items"]
            (refund,) = pending
            approved = http.post(f"/v1/approvals/{refund['id']}/approve", json={})
            view = message(http, refund["message_id"], "delivered")
        assert (refund["rule_id"], refund["team"], refund["channel"]) == (
            "approval.refund",
            "billing",
            "email",
        )
        assert approved.json()["outcome"] == "send"
        assert view["status"] == "delivered", view
        assert view["approvals"][0]["status"] == "approved"
