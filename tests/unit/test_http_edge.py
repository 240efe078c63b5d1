from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, cast

import msgspec
import pytest
from litestar import Litestar, get, post, put
from litestar.params import Parameter
from litestar.testing import TestClient

from entrypoints.http.edge import (
    MAX_QUERY_BYTES,
    EdgeRequest,
    edge_middleware,
    idempotency_key_fault,
    idempotency_keys_fault,
    is_json,
    query_fault,
)
from entrypoints.http.problems import exception_handlers
from entrypoints.http.staff_schemas import AgentIn, CapacityIn, TeamIn
from entrypoints.idempotency_keys import request_key
from entrypoints.text_checks import InputRefused
from entrypoints.workers.nats_problems import problem_for


class TestJsonContentTypes:
    @pytest.mark.parametrize(
        "content_type",
        [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            "application/problem+json",
            "application/vnd.chorus.v1+json",
        ],
    )
    def test_json_and_its_suffixed_types_are_json(self, content_type: str) -> None:
        assert is_json(content_type)

    @pytest.mark.parametrize(
        "content_type",
        ["", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "text/json"],
    )
    def test_anything_else_is_not(self, content_type: str) -> None:
        assert not is_json(content_type)


class TestIdempotencyKeyHeader:
    @pytest.mark.parametrize("key", [b"nt-9", b"x" * 200, "caf\u00e9-1".encode(), b"a b"])
    def test_a_clean_line_of_1_to_200_characters_is_a_key(self, key: bytes) -> None:
        assert idempotency_key_fault(key) is None

    @pytest.mark.parametrize(
        ("key", "reason"),
        [
            (b"x" * 5000, "must be 1 to 200 characters long"),
            (b"x" * 201, "must be 1 to 200 characters long"),
            (b"", "must be 1 to 200 characters long"),
            (b"a\x00b", "control character U+0000"),
            (b"a\x1bb", "control character U+001B"),
            (b"\x7f", "control character U+007F"),
        ],
    )
    def test_anything_else_is_refused_saying_why(self, key: bytes, reason: str) -> None:
        fault = idempotency_key_fault(key)
        assert fault is not None
        assert reason in fault


class TestIdempotencyKeyHeadersGivenTwice:
    """As the HTTP server passes headers on: each one given, in order (a test client joins
    them into one)."""

    @staticmethod
    def fault(*keys: bytes) -> Any:
        headers = [(b"host", b"chorus"), *((b"idempotency-key", key) for key in keys)]
        return idempotency_keys_fault(cast("Any", {"headers": headers}))

    def test_two_different_keys_are_refused_naming_the_header(self) -> None:
        fault = self.fault(b"k-1", b"k-2")
        assert fault is not None
        assert (fault.path, fault.reason) == (
            "header.Idempotency-Key",
            "is given 2 times with different keys: send one key",
        )

    def test_the_same_key_twice_is_one_key(self) -> None:
        assert self.fault(b"k-1", b"k-1") is None
        assert self.fault(b"k-1") is None
        assert self.fault() is None

    def test_each_is_checked(self) -> None:
        fault = self.fault(b"k", b"")
        assert fault is not None
        assert fault.reason == "must be 1 to 200 characters long"


class TestARequestsKey:
    def test_the_header_or_the_body_gives_it(self) -> None:
        assert request_key("k", None) == request_key(None, "k") == request_key("k", "k") == "k"
        assert request_key(None, None) is None

    def test_a_header_and_a_body_that_differ_are_refused_naming_both(self) -> None:
        with pytest.raises(InputRefused) as refused:
            request_key("k-header", "k-body")
        assert [fault.path for fault in refused.value.faults] == [
            "$.idempotency_key",
            "header.Idempotency-Key",
        ]
        over_nats = problem_for(refused.value)
        assert over_nats is not None
        assert over_nats.status == 400
        assert [e["field"] for e in over_nats.body()["errors"]] == [
            "$.idempotency_key",
            "header.Idempotency-Key",
        ]


class TestQueryParameters:
    def test_clean_parameters_pass(self) -> None:
        assert (
            query_fault(b"identity=email%3Aana%40example.org&limit=5&attribute=city:Z%C3%BCrich")
            is None
        )

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            (b"identity=email:a%00b", "query.identity"),
            (b"identity=email:a%0Ab", "query.identity"),
            (b"attribute=tier:%C2%85", "query.attribute"),
            (b"a%00=1", "query['a\\x00']"),
            (b"identity=%FF", "query"),
            (b"identity=%ED%A0%80", "query"),
        ],
    )
    def test_a_control_character_or_invalid_utf8_is_refused_naming_the_parameter(
        self, query: bytes, field: str
    ) -> None:
        fault = query_fault(query)
        assert fault is not None
        assert fault.path == field


@get("/things/{key:str}")
async def _things(
    key: str,
    status: str | None = None,
    limit: int = 50,
    types: Annotated[list[str] | None, Parameter(query="type")] = None,
) -> dict[str, Any]:
    return {"key": key, "status": status, "limit": limit, "types": types}


@pytest.fixture
def http() -> Iterator[TestClient[Litestar]]:
    app = Litestar([_things], middleware=[edge_middleware], exception_handlers=exception_handlers)
    with TestClient(app) as client:
        yield client


class TestQueryLength:
    def test_a_query_string_of_8_kib_is_read_and_a_longer_one_is_a_414_problem(
        self, http: TestClient[Litestar]
    ) -> None:
        assert http.get(f"/things/a?pad={'x' * (MAX_QUERY_BYTES - 4)}").status_code == 200
        answer = http.get(f"/things/a?pad={'x' * (MAX_QUERY_BYTES - 3)}")
        assert answer.status_code == 414
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json() == {
            "type": "https://chorus.dev/problems/uri-too-long",
            "title": "The request's URI is too long",
            "status": 414,
            "detail": "a query string may have at most 8,192 bytes",
        }


class TestRepeatedQueryParameters:
    """A parameter the route takes one value of, given twice, is refused naming it, rather
    than one of its values kept silently; one it takes a list of repeats freely."""

    @pytest.mark.parametrize(
        ("query", "field", "times"),
        [
            ("status=open&status=resolved", "query.status", 2),
            ("limit=5&status=open&limit=5&limit=", "query.limit", 3),
            ("%73tatus=open&status=open", "query.status", 2),
        ],
    )
    def test_one_value_given_more_than_once_is_a_400_naming_the_parameter(
        self, http: TestClient[Litestar], query: str, field: str, times: int
    ) -> None:
        answer = http.get(f"/things/a?{query}")
        assert answer.status_code == 400, answer.text
        assert answer.json()["type"].endswith("/invalid-request")
        assert answer.json()["errors"] == [
            {"field": field, "reason": f"is given {times} times: it takes one value"}
        ]

    def test_a_list_repeats_and_what_the_route_does_not_read_is_left_alone(
        self, http: TestClient[Litestar]
    ) -> None:
        answer = http.get("/things/a?type=x&type=y&status=open&other=1&other=2&key=b&key=c")
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"key": "a", "status": "open", "limit": 50, "types": ["x", "y"]}


class _Body(msgspec.Struct):
    journey: dict[str, Any]


@post("/echo", status_code=200)
async def _echo(data: _Body) -> dict[str, Any]:
    return data.journey


class TestNumbersTooLargeToHold:
    """msgspec refuses `1e400` without saying where; the edge names the field."""

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            (
                b'{"journey": {"steps": {"welcome": {"priority": 1e400}}}}',
                "$.journey.steps.welcome.priority",
            ),
            (
                b'{"journey": {"arms": [{"weight": 1}, {"weight": -1e999}]}}',
                "$.journey.arms[1].weight",
            ),
            (b'{"journey": {"odd key": 2E+308}}', "$.journey['odd key']"),
        ],
    )
    def test_a_body_with_a_number_too_large_is_refused_naming_its_field(
        self, body: bytes, field: str
    ) -> None:
        app = Litestar([_echo], request_class=EdgeRequest, exception_handlers=exception_handlers)
        with TestClient(app) as http:
            answer = http.post("/echo", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, answer.text
        [error] = answer.json()["errors"]
        assert error == {
            "field": field,
            "reason": "is a number too large to hold: it must be finite",
        }

    def test_other_bodies_that_are_not_json_are_answered_as_before(self) -> None:
        app = Litestar([_echo], request_class=EdgeRequest, exception_handlers=exception_handlers)
        with TestClient(app) as http:
            broken = http.post(
                "/echo", content=b'{"journey": 1e400', headers={"Content-Type": "application/json"}
            )
            fine = http.post("/echo", json={"journey": {"priority": 1e300}})
        assert (broken.status_code, broken.json()["type"].rsplit("/", 1)[-1]) == (
            400,
            "invalid-json",
        )
        assert fine.json() == {"priority": 1e300}


@post("/agents", status_code=200)
async def _register(data: AgentIn) -> dict[str, Any]:
    return {"key": data.key}


@put("/capacity", status_code=200)
async def _capacity(data: CapacityIn) -> dict[str, Any]:
    return {"capacity": data.capacity}


@post("/teams", status_code=200)
async def _team(data: TeamIn) -> dict[str, Any]:
    return {"key": data.key}


@pytest.fixture
def staff_http() -> Iterator[TestClient[Litestar]]:
    app = Litestar(
        [_register, _capacity, _team],
        request_class=EdgeRequest,
        exception_handlers=exception_handlers,
    )
    with TestClient(app) as client:
        yield client


def _refused(answer: Any) -> list[dict[str, str]]:
    assert answer.status_code == 400, answer.text
    assert answer.json()["type"].endswith("/invalid-request")
    errors: list[dict[str, str]] = answer.json()["errors"]
    return errors


class TestBodyFaultsNameTheirField:
    """A body's fault is named by its whole path: a map's key or value by the key, not msgspec's
    `$.capacity` or `$.capacity[...]`, and a value object's own check by its field."""

    @pytest.mark.parametrize(
        ("capacity", "field", "reason"),
        [
            ({"fax": 1}, "$.capacity.fax", "Invalid enum value 'fax'"),
            ({"chat": -1}, "$.capacity.chat", "Expected `int` >= 0"),
            ({"chat": 3, "email": 101}, "$.capacity.email", "Expected `int` <= 100"),
            ({"chat": 1, "voice": "x", "fax": 2}, "$.capacity.voice", "Expected `int`, got `str`"),
            ({"chat": 1, "Fax Line": 2}, "$.capacity['Fax Line']", "Invalid enum value 'Fax Line'"),
        ],
    )
    def test_a_capacity_names_the_channel_kind_at_fault(
        self,
        staff_http: TestClient[Litestar],
        capacity: dict[str, Any],
        field: str,
        reason: str,
    ) -> None:
        body = {"key": "ana", "name": "Ana", "capacity": capacity}
        assert _refused(staff_http.post("/agents", json=body)) == [
            {"field": field, "reason": reason}
        ]
        assert _refused(staff_http.put("/capacity", json={"capacity": capacity})) == [
            {"field": field, "reason": reason}
        ]

    def test_a_value_objects_own_check_names_its_field(
        self, staff_http: TestClient[Litestar]
    ) -> None:
        window = {"start": "09:00", "end": "18:00"}
        mars = {"time_zone": "Mars/Base", "windows": [window]}
        body = {"key": "billing", "name": "Billing", "working_hours": mars}
        assert _refused(staff_http.post("/teams", json=body)) == [
            {
                "field": "$.working_hours.time_zone",
                "reason": "'Mars/Base' is not an IANA time zone, e.g. Europe/Lisbon or UTC",
            }
        ]
        backwards = {"time_zone": "UTC", "windows": [window, {"start": "10:00", "end": "09:00"}]}
        [error] = _refused(staff_http.post("/teams", json={**body, "working_hours": backwards}))
        assert error["field"] == "$.working_hours.windows[1].end"
        assert error["reason"].startswith("09:00 is not after 10:00")

    @pytest.mark.parametrize(
        ("body", "field", "reason"),
        [
            ({"capacity": []}, "$.capacity", "Expected `object`, got `array`"),
            ({}, "$.capacity", "Object missing required field `capacity`"),
            ({"capacity": {}, "more": 1}, "$.more", "Object contains unknown field `more`"),
        ],
    )
    def test_a_field_of_the_wrong_shape_missing_or_unknown_is_named(
        self, staff_http: TestClient[Litestar], body: dict[str, Any], field: str, reason: str
    ) -> None:
        assert _refused(staff_http.put("/capacity", json=body)) == [
            {"field": field, "reason": reason}
        ]
