"""Running the demo again never publishes over an operator: its rules, routing and reply templates
go out while nothing is published or the demo's own version is in force, and an operator's newer
version stays in force."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import msgspec
import pytest

from application.conversations.routing_document import PublishRouting, RoutingQueries
from application.queries.templates import TemplateQueries
from application.rules.publish_rules import PublishRules
from application.templates.publish_template import PublishTemplate
from domain.policy.rules import ApprovalRule
from entrypoints.demo_approvals import DEMO_APPROVALS, load_demo_approvals
from entrypoints.demo_desk import DEMO_ROUTING, load_demo_desk
from entrypoints.demo_replies import DEMO_REPLIES, load_demo_replies
from entrypoints.ioc import make_container
from entrypoints.settings import Settings
from ports.rules import RuleSets

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from dishka import AsyncContainer

pytestmark = pytest.mark.integration


@pytest.fixture
async def container(database_url: str) -> AsyncIterator[AsyncContainer]:
    settings = msgspec.structs.replace(
        Settings.from_env(), database_url=database_url, classifier="keywords"
    )
    made = make_container(settings)
    try:
        yield made
    finally:
        await made.close()


class TestTheDemoPublishesOnlyItsOwn:
    async def test_an_operators_routing_stays_in_force(self, container: AsyncContainer) -> None:
        await load_demo_desk(container)
        queries = await container.get(RoutingQueries)
        assert (await queries.current()).author == "demo"
        theirs = {**DEMO_ROUTING, "escalations": []}
        await (await container.get(PublishRouting))(theirs, "ops key")
        await load_demo_desk(container)
        current = await queries.current()
        assert (current.author, current.policy.version) == ("ops key", 2)
        assert current.policy.document.escalations == ()

    async def test_an_operators_rules_stay_in_force(self, container: AsyncContainer) -> None:
        await load_demo_approvals(container)
        rule_sets = await container.get(RuleSets)
        demos = await rule_sets.latest()
        assert demos.author == "demo"
        strict = ApprovalRule("approval.everything", confidence_below=1.0)
        theirs = dataclasses.replace(demos.rules, approvals=(*DEMO_APPROVALS, strict))
        await (await container.get(PublishRules))(theirs, "ops key")
        await load_demo_approvals(container)
        current = await rule_sets.latest()
        assert (current.author, current.rules.version) == ("ops key", demos.rules.version + 1)
        assert strict in current.rules.approvals

    async def test_the_demos_own_rules_again_publish_nothing(
        self, container: AsyncContainer
    ) -> None:
        await load_demo_approvals(container)
        first = (await (await container.get(RuleSets)).latest()).rules.version
        await load_demo_approvals(container)
        assert (await (await container.get(RuleSets)).latest()).rules.version == first

    async def test_an_operators_reply_template_stays_the_latest(
        self, container: AsyncContainer
    ) -> None:
        await load_demo_replies(container)
        draft = DEMO_REPLIES["reply.refund"]
        theirs = dataclasses.replace(draft, description="Reply: a refund, in our words")
        await (await container.get(PublishTemplate))("reply.refund", theirs, "ops key")
        await load_demo_replies(container)
        latest = await (await container.get(TemplateQueries)).get("reply.refund")
        assert (latest.latest_version, latest.version.author) == (2, "ops key")
