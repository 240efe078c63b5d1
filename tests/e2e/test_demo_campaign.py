"""The demo's running campaign, `order-follow-up`, as the README tour shows it with the manual
clock: Sam, on WhatsApp, orders; a day later his follow-up really goes out on WhatsApp as the
approved template, outside WhatsApp's 24-hour window, and the dry run of that day agrees."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.demo import DemoProcess
from tests.e2e.service import ROOT

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

SAM = "whatsapp_id:447700900123"  # the demo's customer on WhatsApp
DAY = timedelta(days=1)
TOUR_URL = "http://127.0.0.1:8000"


def sams_tour() -> str:
    """The README tour's steps for Sam, from his order to where he is a day later."""
    lines = (ROOT / "README.md").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("# Sam is on WhatsApp"))
    last = next(
        i
        for i, line in enumerate(lines)
        if i > first and line.startswith("sleep 5;") and "$SAM/campaigns" in line
    )
    return "\n".join(lines[first : last + 1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    started = DemoProcess(tmp_path_factory.mktemp("demo-campaign") / "demo.log")
    started.env["CHORUS_CLOCK"] = "manual"
    try:
        started.start()
        yield started
    finally:
        started.stop()


def eventually(read: Callable[[], Any], holds: Callable[[Any], bool], seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = read()
        if holds(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


class TestTheDemoCampaign:
    def test_a_day_after_an_order_the_whatsapp_follow_up_goes_out_as_the_approved_template(
        self, demo: DemoProcess
    ) -> None:
        headers = {"Authorization": f"Bearer {demo.admin_key}"}
        with httpx.Client(base_url=demo.base_url, headers=headers, timeout=30) as http:
            now = datetime.fromisoformat(http.post("/v1/admin/clock", json={}).json()["now"])
            # Mid-morning in London, so the rules' quiet hours (21:00-08:00) do not defer it.
            start = (now + DAY).replace(hour=10, minute=0, second=0, microsecond=0)
            http.post("/v1/admin/clock", json={"set": start.isoformat()}).raise_for_status()
            order = {
                "id": "sam-order-1",
                "type": "order.placed",
                "occurred_at": start.isoformat(),
                "identities": [{"type": "whatsapp_id", "value": "447700900123"}],
                "properties": {"order_id": "S-1"},
            }
            http.post("/v1/events?wait=attributed", json={"signals": [order]}).raise_for_status()
            sam = http.get("/v1/customers", params={"identity": SAM}).json()["id"]

            def journeys() -> list[dict[str, Any]]:
                items: list[dict[str, Any]] = http.get(f"/v1/customers/{sam}/campaigns").json()[
                    "items"
                ]
                return items

            entered = eventually(journeys, lambda items: len(items) == 1)
            assert entered[0]["step"] == "a-day-later"
            http.post("/v1/admin/clock", json={"advance_seconds": DAY.total_seconds()})

            replied_to = eventually(journeys, lambda items: items[0]["step"] == "reply")
            assert (replied_to[0]["step"], replied_to[0]["reason"]) == ("reply", "delivered")
            timeline = http.get(f"/v1/customers/{sam}/timeline", params={"limit": 20}).json()
            kinds = {item["type"]: item["data"] for item in timeline["items"]}
            allowed = kinds["Customer.MessageAllowed"]
            assert allowed["channel"] == "whatsapp"
            assert allowed["origin"].startswith("campaign:order-follow-up:1:whatsapp:")
            content = kinds["Message.Queued"]["content"]
            assert content["whatsapp_template"] == "order_follow_up"
            assert content["whatsapp_parameters"] == ["Sam"]

            played = http.post(
                "/v1/campaigns/order-follow-up/dry-run",
                json={"from": start.isoformat(), "to": (start + DAY).isoformat()},
            )
            assert played.status_code == 200, played.text
            sends = played.json()["sends"]["by_step"]
            assert sends["whatsapp"]["channels"] == {"whatsapp": 1}
            assert played.json()["steps"]["reply"] == {"reached": 1, "held": 1}


@pytest.fixture
def tour_demo(tmp_path: Path) -> Iterator[DemoProcess]:
    started = DemoProcess(tmp_path / "demo.log")
    started.env["CHORUS_CLOCK"] = "manual"
    try:
        started.start()
        yield started
    finally:
        started.stop()


class TestTheReadmeTour:
    def test_sams_follow_up_goes_out_whatever_the_time_of_day_the_tour_is_run(
        self, tour_demo: DemoProcess
    ) -> None:
        """Run late in the evening, in London's quiet hours, the tour's steps for Sam still
        show his follow-up delivered: the tour sets the manual clock itself."""
        headers = {"Authorization": f"Bearer {tour_demo.admin_key}"}
        with httpx.Client(base_url=tour_demo.base_url, headers=headers, timeout=30) as http:
            now = datetime.fromisoformat(http.post("/v1/admin/clock", json={}).json()["now"])
            evening = (now + DAY).replace(hour=22, minute=30, second=0, microsecond=0)
            http.post("/v1/admin/clock", json={"set": evening.isoformat()}).raise_for_status()
            script = (
                f'set -e\nKEY={tour_demo.admin_key}\nH="Authorization: Bearer $KEY"\n'
                + sams_tour().replace(TOUR_URL, tour_demo.base_url)
                + '\necho\necho "$SAM"'
            )
            ran = subprocess.run(
                ["bash", "-c", script], capture_output=True, text=True, timeout=120, check=False
            )
            assert ran.returncode == 0, ran.stderr
            sam = ran.stdout.strip().splitlines()[-1]

            def journeys() -> list[dict[str, Any]]:
                items: list[dict[str, Any]] = http.get(f"/v1/customers/{sam}/campaigns").json()[
                    "items"
                ]
                return items

            found = eventually(journeys, lambda items: items and items[0]["step"] == "reply")
            assert (found[0]["step"], found[0]["reason"]) == ("reply", "delivered")
