"""What the docs say about the API holds for the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from domain.customer.aggregate import Customer
from domain.policy.rule_document import RuleSetInvalid, decode_rule_set

DOCS = Path(__file__).parents[2] / "docs"


class TestTheApiDocs:
    def test_every_decision_event_is_named_as_the_timeline_shows_it(self) -> None:
        api = (DOCS / "api.md").read_text()
        for event in Customer.MessageDecided.__subclasses__():
            assert f"`Customer.{event.__name__}`" in api


class TestTheRulesDocs:
    def test_the_refused_example_is_the_problem_the_api_answers(self) -> None:
        rules = (DOCS / "rules.md").read_text()
        section = rules.partition("## When a document is refused")[2]
        example = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))  # type: ignore[union-attr]
        assert set(example) == {"type", "title", "status", "detail", "errors"}
        assert example["status"] == 422
        assert all(set(error) == {"field", "reason"} for error in example["errors"])
        fields = [error["field"] for error in example["errors"]]
        assert example["detail"].startswith(f"{len(fields)} problem(s)")
        refused = {
            "default_time_zone": "Europe/Atlantis",
            "quiet_hours": [
                {
                    "id": "quiet.night",
                    "windows": [{"start": "21:00", "end": "08:00", "days": ["mon", "funday"]}],
                }
            ],
            "caps": [
                {"id": "cap.global.daily", "limit": 3, "window": "1d"},
                {"id": "quiet.night", "limit": 5, "window": "7d"},
                {"id": "cap.growth.sms", "limit": 2, "window": "1 day", "reserved": 3},
            ],
        }
        with pytest.raises(RuleSetInvalid) as refusal:
            decode_rule_set(json.dumps(refused).encode(), version=0)
        answered = [{"field": e.path, "reason": e.reason} for e in refusal.value.errors]
        assert answered == example["errors"]
