"""Every list the API answers has one shape: `{"items": [...], "next_cursor": str | null}`."""

from __future__ import annotations

from typing import Any

import pytest
from dishka import Provider, make_async_container

from entrypoints.http.app import create_app
from entrypoints.settings import Settings

# GET operations that answer one thing which has arrays inside it, not a list of things.
# A new GET answering an object with an array must take the list shape or be named here.
DOCUMENTS = {
    "auditCustomer": "one customer as of an instant",
    "auditMessage": "one message's story: its decisions, attempts and statuses",
    "findCustomer": "one customer, by identity",
    "getAgent": "one agent with skills and teams",
    "getTeam": "one team with members, skills and working hours",
    "getCampaign": "one campaign with its journey and the history of its versions",
    "getCampaignStats": "one report: figures per step and variant, arms against the control",
    "getConversation": "one conversation: its thread, notes, assignments and customer context",
    "getCampaignEnrollment": "one enrollment with the journal of its events",
    "getCustomer": "one customer",
    "getCustomerContext": "one summary: counts and the last few signals, orders, decisions",
    "getDecision": "one decision with the rules that fired",
    "getKey": "one API key with its change log",
    "getMessage": "one message with its attempts and statuses",
    "getTemplate": "one template version with its variants",
    "getCostReport": "a report: lines and totals over a period",
    "suggestReplies": "one message's intent with the replies suggested and those left out",
}


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    settings = Settings.from_env({"CHORUS_CLOCK": "manual"})
    app = create_app(make_async_container(Provider()), settings)
    return app.openapi_schema.to_schema()


def resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rpartition("/")[2]]
    return schema


def kinds(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    schema = resolved(document, schema)
    found = {schema["type"]} if isinstance(schema.get("type"), str) else set(schema.get("type", []))
    for option in schema.get("oneOf", []) + schema.get("anyOf", []):
        found |= kinds(document, option)
    return found


def answered_objects(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The JSON object each GET operation answers on success, by operation id."""
    objects = {}
    for operations in document["paths"].values():
        get = operations.get("get")
        if get is None:
            continue
        for status, response in get["responses"].items():
            content = response.get("content", {}).get("application/json")
            if status.startswith("2") and content is not None:
                schema = resolved(document, content["schema"])
                if "properties" in schema:
                    objects[get["operationId"]] = schema
    return objects


def arrays_in(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    return {
        name for name, field in schema["properties"].items() if "array" in kinds(document, field)
    }


class TestOneListShape:
    def test_every_get_answering_an_array_answers_items_and_next_cursor(
        self, openapi: dict[str, Any]
    ) -> None:
        answered = answered_objects(openapi)
        lists = {
            op: s for op, s in answered.items() if op not in DOCUMENTS and arrays_in(openapi, s)
        }
        assert {
            "listCampaigns",
            "listSegments",
            "listSegmentMembers",
            "listTriggerFirings",
            "listProviders",
        } <= set(lists)
        for operation, schema in lists.items():
            assert arrays_in(openapi, schema) == {"items"}, operation
            assert {"items", "next_cursor"} <= set(schema.get("required", [])), operation
            assert kinds(openapi, schema["properties"]["next_cursor"]) == {"string", "null"}, (
                operation
            )

    def test_a_customer_in_a_list_is_named_by_id(self, openapi: dict[str, Any]) -> None:
        for operation, schema in answered_objects(openapi).items():
            if operation in DOCUMENTS or "items" not in schema["properties"]:
                continue
            item = resolved(openapi, resolved(openapi, schema["properties"]["items"])["items"])
            fields = set(item.get("properties", {}))
            assert "customer_id" not in fields or "id" in fields, operation

    def test_every_document_named_as_not_a_list_still_answers_arrays(
        self, openapi: dict[str, Any]
    ) -> None:
        answered = answered_objects(openapi)
        for operation in DOCUMENTS:
            assert arrays_in(openapi, answered[operation]), operation
