"""The routing document as data: versions, and a bad document refused whole."""

from __future__ import annotations

import pytest

from domain.conversation.routing_book import NoRoutingYet
from domain.conversation.routing_reader import RoutingInvalid
from domain.shared.errors import NotFound
from entrypoints.demo_desk import DEMO_AGENTS, DEMO_ROUTING, DEMO_TEAMS
from tests.unit.application.conversations.desk import Desk

DOCUMENT = {
    "default_team": "support",
    "rules": [{"id": "refunds", "intents": ["refund"], "team": "billing", "skills": ["billing"]}],
    "escalations": [{"id": "vip", "tiers": ["vip"], "priority": "urgent"}],
    "sla": {"first_response": {"chat": "2m", "email": "4h"}},
}


class TestPublishRouting:
    async def test_each_publication_is_the_next_version_with_its_author(self) -> None:
        desk = Desk()
        await desk.staffed()
        first = await desk.publish_routing(DOCUMENT, "admin key")
        second = await desk.publish_routing({**DOCUMENT, "default_team": "billing"}, "ops key")
        assert (first.policy.version, second.policy.version) == (1, 2)
        current = await desk.routing.current()
        assert (current.policy.version, current.author) == (2, "ops key")
        assert current.policy.document.default_team == "billing"
        assert (await desk.routing.version(1)).document.default_team == "support"

    async def test_the_document_in_force_sent_again_publishes_nothing(self) -> None:
        desk = Desk()
        await desk.staffed()
        await desk.publish_routing(DOCUMENT, "admin")
        again = await desk.publish_routing(DOCUMENT, "admin")
        assert (again.policy.version, again.changed) == (1, False)

    async def test_a_bad_document_names_every_path_and_stores_nothing(self) -> None:
        desk = Desk()
        await desk.staffed()
        bad = {
            "default_team": "nowhere",
            "rules": [
                {"id": "refunds", "team": "billing", "overflow": {"team": "billing"}},
                {"id": "refunds", "team": "sales", "segments": ["churn-risk"]},
            ],
        }
        with pytest.raises(RoutingInvalid) as refused:
            await desk.publish_routing(bad, "admin")
        paths = {fault.path for fault in refused.value.faults}
        assert paths == {
            "$.default_team",
            "$.rules[0].overflow.team",
            "$.rules[1].id",
            "$.rules[1].team",
            "$.rules[1].segments[0]",
        }
        with pytest.raises(NoRoutingYet):
            await desk.routing.current()

    async def test_a_version_never_published_is_not_found(self) -> None:
        desk = Desk()
        await desk.staffed()
        await desk.publish_routing(DOCUMENT, "admin")
        with pytest.raises(NotFound):
            await desk.routing.version(2)


class TestTheDemoDesk:
    async def test_the_demo_routing_document_is_valid_against_the_demo_teams(self) -> None:
        desk = Desk()
        for key, (name, skills, hours, members) in DEMO_TEAMS.items():
            await desk.create_team(key, name, "demo", skills, hours)
            assert set(members) <= set(DEMO_AGENTS)
        published = await desk.publish_routing(DEMO_ROUTING, "demo")
        assert published.policy.document.default_team == "support"
