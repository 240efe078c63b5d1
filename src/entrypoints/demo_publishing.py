"""What the demo publishes (rules, routing, templates) goes out only where the demo is still the
author: when nothing is published yet, or the version in force is the demo's own. An operator's
newer version is theirs to keep: running the demo again never publishes over it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from application.conversations.routing_document import PublishRouting, RoutingQueries
from application.queries.templates import TemplateQueries
from application.rules.publish_rules import PublishRules
from application.templates.publish_template import PublishTemplate
from domain.conversation.routing_book import NoRoutingYet
from ports.rules import RuleSets
from ports.templates import TemplateNotFound

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dishka import AsyncContainer

    from application.templates.publish_template import TemplateDraft
    from domain.policy.rules import RuleSet

__all__ = ["DEMO_AUTHOR", "publish_demo_routing", "publish_demo_rules", "publish_demo_template"]

DEMO_AUTHOR = "demo"
"""Who the demo's publications name as their author."""


async def publish_demo_rules(container: AsyncContainer, rules: RuleSet) -> bool:
    """Publishes the demo's rule set unless someone else's is in force; whether it is."""
    published = await (await container.get(RuleSets)).latest()
    if published.published_at is not None and published.author != DEMO_AUTHOR:
        return False
    await (await container.get(PublishRules))(rules, DEMO_AUTHOR)
    return True


async def publish_demo_routing(container: AsyncContainer, document: Mapping[str, Any]) -> bool:
    """Publishes the demo's routing unless someone else's is in force; whether it is."""
    try:
        current = await (await container.get(RoutingQueries)).current()
    except NoRoutingYet:
        current = None
    if current is not None and current.author != DEMO_AUTHOR:
        return False
    await (await container.get(PublishRouting))(document, DEMO_AUTHOR)
    return True


async def publish_demo_template(container: AsyncContainer, key: str, draft: TemplateDraft) -> bool:
    """Publishes the demo's template unless someone else published its latest version; whether
    the demo's is the latest."""
    try:
        latest = (await (await container.get(TemplateQueries)).get(key)).version
    except TemplateNotFound:
        latest = None
    if latest is not None and latest.author != DEMO_AUTHOR:
        return False
    await (await container.get(PublishTemplate))(key, draft, DEMO_AUTHOR)
    return True
