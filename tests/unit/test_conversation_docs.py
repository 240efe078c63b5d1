"""What docs/conversations.md says about agents, teams and routing holds for the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from domain.conversation.routing_reader import RoutingInvalid, decode_routing

DOCS = Path(__file__).parents[2] / "docs"


class TestTheRoutingDocs:
    def test_the_refused_example_is_the_problem_the_api_answers(self) -> None:
        page = (DOCS / "conversations.md").read_text()
        section = page.partition("## Agents, teams and routing")[2]
        example = json.loads(re.search(r"```json\n(\{\"type\".*?)```", section, re.S).group(1))  # type: ignore[union-attr]
        refused = {
            "default_team": "nowhere",
            "rules": [
                {"id": "a", "team": "billing", "overflow": {"team": "billing"}},
                {"id": "a", "team": "support"},
            ],
        }
        with pytest.raises(RoutingInvalid) as refusal:
            decode_routing(refused, teams={"billing", "support"}, segments=set())
        answered = [{"field": f.path, "reason": f.reason} for f in refusal.value.faults]
        assert answered == example["errors"]
        assert example["detail"].startswith(f"{len(answered)} problem(s)")
