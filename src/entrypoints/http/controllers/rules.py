"""The rule set in force, and publishing a new version."""

from __future__ import annotations

from typing import Any

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, put

from application.rules.publish_rules import PublishRules
from entrypoints.http.auth import allow, current_key
from entrypoints.http.problems import problem
from entrypoints.rules_schema import RuleSetInvalid, parse_rule_set, rule_set_document
from ports.api_keys import Role
from ports.rules import PublishedRules, RuleSets

__all__ = ["RulesController"]


def _out(published: PublishedRules) -> dict[str, Any]:
    return {
        "version": published.rules.version,
        "published_at": published.published_at.isoformat() if published.published_at else None,
        "author": published.author,
        "rules": rule_set_document(published.rules),
    }


class RulesController(Controller):
    path = "/v1/rules"
    tags = ["rules"]

    @get(
        operation_id="getRules",
        name="rules:get",
        guards=[allow(Role.MARKETER, Role.AGENT, Role.AUDITOR, Role.SERVICE)],
        summary="The rule set in force, its version, who published it and when",
    )
    @inject
    async def get_rules(self, rule_sets: FromDishka[RuleSets]) -> dict[str, Any]:
        return _out(await rule_sets.latest())

    @put(
        operation_id="publishRules",
        name="rules:publish",
        guards=[allow(Role.MARKETER)],
        status_code=200,
        summary="Publish a rule set as the next version (the body is the rule document, docs/rules.md)",
    )
    @inject
    async def publish_rules(
        self, request: Request[Any, Any, Any], publish: FromDishka[PublishRules]
    ) -> Response[Any]:
        try:
            rules = parse_rule_set(await request.body(), version=0)
        except RuleSetInvalid as invalid:
            return problem(
                422,
                "invalid-rules",
                "The rule set is not valid",
                f"{len(invalid.errors)} problem(s); nothing was published",
                errors=[{"field": e.path, "reason": e.reason} for e in invalid.errors],
            )
        key = current_key(request)
        published = await publish(rules, author=f"{key.name} ({key.role.value} key {key.id})")
        return Response(_out(published), status_code=200)
