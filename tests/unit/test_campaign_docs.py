"""What docs/campaigns.md shows holds for the code: its worked example is a journey Chorus takes
with the templates the demo publishes, and its refusal is the one Chorus answers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from domain.campaign.journey_reader import JourneyInvalid, decode_journey
from entrypoints.demo_data import DEMO_OFFERS

DOCS = Path(__file__).parents[2] / "docs" / "campaigns.md"


def examples() -> list[dict[str, Any]]:
    blocks = re.findall(r"```json\n(.*?)```", DOCS.read_text(), re.S)
    return [json.loads(block) for block in blocks]


class TestTheCampaignDocs:
    def test_the_worked_example_is_a_valid_journey_in_the_demo(self) -> None:
        worked = next(e for e in examples() if "steps" in e)
        templates = frozenset({"order-shipped", "order-follow-up", *DEMO_OFFERS})
        journey = decode_journey(worked, templates=templates, segments=frozenset())
        assert journey.start == "a-day-later"
        assert journey.goal is not None
        assert journey.goal.signal == "purchase"

    def test_the_refusal_shown_is_the_one_answered(self) -> None:
        shown = next(e for e in examples() if e.get("status") == 422)
        refused = {
            "entry": {"type": "signal", "signal": "order.placed"},
            "start": "a-day-later",
            "steps": {
                "a-day-later": {"type": "wait", "for": "1d", "next": "whatsapp"},
                "whatsapp": {
                    "type": "send",
                    "channels": [],
                    "template": "order-folow-up",
                    "purpose": "marketing",
                    "team": "growth",
                },
                "orphan": {"type": "exit"},
            },
        }
        with pytest.raises(JourneyInvalid) as refusal:
            decode_journey(refused, templates=frozenset({"order-follow-up"}), segments=frozenset())
        answered = [
            {"field": "$.journey" + fault.path.removeprefix("$"), "reason": fault.reason}
            for fault in refusal.value.faults
        ]
        assert answered == shown["errors"]
