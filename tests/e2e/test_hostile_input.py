"""Hostile input at the edge: every input PostgreSQL cannot hold, or that once got a 500, is
refused with a 4xx problem naming its field (or dead-lettered over NATS), and a clean signal
sent after each is still attributed."""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import nats
import pytest

if TYPE_CHECKING:
    from tests.e2e.service import ChorusProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chorus(shared_chorus: ChorusProcess) -> ChorusProcess:
    """The module's tests share one service: each makes its own customers and names."""
    return shared_chorus


DEEP = "[" * 1000 + "]" * 1000  # a JSON value nested 1,000 deep
TOO_DEEP = "[" * 33 + "]" * 33


def _signal(event_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "order.placed",
        "occurred_at": "2026-11-02T10:00:00Z",
        "identities": [{"type": "email", "value": "hostile@example.org"}],
        **changes,
    }


def _json(value: Any, *, deep_at: str | None = None, nested: str = DEEP) -> bytes:
    """`value` as JSON; the string `deep_at` stands for a value nested deeper than allowed."""
    text = json.dumps(value)
    return (text.replace(json.dumps(deep_at), nested) if deep_at else text).encode()


@dataclass(frozen=True)
class Bad:
    """One hostile request and the field its refusal must name (a prefix of it)."""

    name: str
    method: str
    path: str
    body: bytes | None = None
    field: str = "$"
    content_type: str = "application/json"
    statuses: tuple[int, ...] = (400, 422)
    params: dict[str, str] = dataclasses.field(default_factory=dict)


_CUSTOMER = {"identities": [{"type": "email", "value": "c@example.org"}]}
_SEGMENT = {"key": "seg-a", "name": "A", "condition": {"signal": {"type": "order.placed"}}}
_TRIGGER = {"key": "trig-a", "name": "A", "on": {"signal": "order.placed"}}
_TEMPLATE = {"default_locale": "en", "variants": [{"channel": "sms", "locale": "en", "body": "Hi"}]}
_SEND = {"identity": "email:c@example.org", "team": "ops", "purpose": "transactional"}
_CURSOR_BEYOND_INT64 = base64.urlsafe_b64encode(str(2**64).encode()).decode()

HTTP_CASES = [
    # A NUL, another control character, or invalid UTF-8, where PostgreSQL would store it.
    Bad("nul in an identity, PUT /v1/customers", "PUT", "/v1/customers",
        _json({"identities": [{"type": "email", "value": "a\u0000b@example.org"}]}),
        "$.identities[0].value"),
    Bad("nul in an account id, PUT /v1/customers", "PUT", "/v1/customers",
        _json({"identities": [{"type": "account_id", "value": "a\u0000b"}]}),
        "$.identities[0].value"),
    Bad("nul in a profile", "PUT", "/v1/customers",
        _json({**_CUSTOMER, "profile": {"first_name": "A\u0000"}}), "$.profile.first_name"),
    Bad("nul in an attribute name", "PUT", "/v1/customers",
        _json({**_CUSTOMER, "attributes": {"t\u0000": "x"}}), "$.attributes["),
    Bad("invalid UTF-8, PUT /v1/customers", "PUT", "/v1/customers",
        _json({**_CUSTOMER, "attributes": {"t": "PLACE"}}).replace(b"PLACE", b"\xff\xfe")),
    Bad("attributes nested 1,000 deep", "PUT", "/v1/customers",
        _json({**_CUSTOMER, "attributes": {"t": "X"}}, deep_at="X")),
    Bad("nul in a consent's source", "POST", f"/v1/customers/{uuid.uuid4()}/consents",
        _json({"changes": [{"channel": "sms", "granted": True, "source": "form\u0000"}]}),
        "$.changes[0].source"),
    Bad("invalid UTF-8, POST /v1/events", "POST", "/v1/events",
        b'{"signals": [{"id": "\xff"}]}'),
    Bad("invalid UTF-8, PUT /v1/rules", "PUT", "/v1/rules", b'{"default_time_zone": "\xff"}'),
    Bad("nul in the rules", "PUT", "/v1/rules", _json({"default_time_zone": "UTC\u0000"}),
        "$.default_time_zone"),
    Bad("rules nested 1,000 deep", "PUT", "/v1/rules", _json({"caps": "X"}, deep_at="X")),
    Bad("nul in a segment's name", "POST", "/v1/segments",
        _json({**_SEGMENT, "name": "A\u0000"}), "$.name"),
    Bad("nul in a segment's description", "POST", "/v1/segments",
        _json({**_SEGMENT, "description": "d\u0000"}), "$.description"),
    Bad("a segment's condition nested 1,000 deep", "POST", "/v1/segments",
        _json({**_SEGMENT, "condition": "X"}, deep_at="X")),
    Bad("a segment's condition nested 33 deep", "PUT", "/v1/segments/seg-b",
        _json({"name": "B", "condition": "X"}, deep_at="X", nested=TOO_DEEP), "$.condition"),
    Bad("nul in a trigger's name", "POST", "/v1/triggers",
        _json({**_TRIGGER, "name": "\u0000"}), "$.name"),
    Bad("nul in a trigger's description", "PUT", "/v1/triggers/trig-b",
        _json({"name": "B", "on": _TRIGGER["on"], "description": "\u0000"}), "$.description"),
    Bad("a trigger's on nested 1,000 deep", "POST", "/v1/triggers",
        _json({**_TRIGGER, "on": "X"}, deep_at="X")),
    Bad("nul in a template's description", "PUT", "/v1/templates/tpl-a",
        _json({**_TEMPLATE, "description": "\u0000"}), "$.description"),
    Bad("nul in a template's body", "PUT", "/v1/templates/tpl-a",
        _json({**_TEMPLATE, "variants": [{"channel": "sms", "locale": "en", "body": "\u0000"}]}),
        "$.variants[0].body"),
    Bad("a preview context nested 1,000 deep", "POST", "/v1/templates/tpl-a/preview",
        _json({"channel": "sms", "context": "X"}, deep_at="X")),
    Bad("nul in a send's variables", "POST", "/v1/messages",
        _json({**_SEND, "channels": ["sms"], "variables": {"v": "\u0000"}}), "$.variables.v"),
    Bad("a routing rule nested 1,000 deep", "PUT", "/v1/routing",
        _json({"default_team": "t", "rules": [{"when": "X"}]}, deep_at="X"),
        "$.rules[0].when"),
    Bad("nul in a routing team", "PUT", "/v1/routing",
        _json({"default_team": "t\u0000"}), "$.default_team"),
    Bad("simulate rules nested 1,000 deep", "POST", "/v1/rules/simulate",
        _json({"rules": "X", "since": "2026-01-01T00:00:00Z"}, deep_at="X")),
    Bad("simulate since year 1 with a positive offset", "POST", "/v1/rules/simulate",
        _json({"rules": {}, "since": "0001-01-01T00:00:00+14:00"}), "$.since"),
    # Query parameters.
    Bad("nul in ?identity=", "GET", "/v1/customers", params={"identity": "email:a\u0000b"},
        field="query.identity"),
    Bad("nul in the search's ?identity=", "GET", "/v1/customers/search",
        params={"identity": "email:a\u0000b"}, field="query.identity"),
    Bad("a control character in ?attribute=", "GET", "/v1/customers/search",
        params={"attribute": "tier:\u001bgold"}, field="query.attribute"),
    Bad("?until= at year 1", "GET", "/v1/reports/costs",
        params={"until": "0001-01-01T00:00:00Z"}, field="query.until"),
    Bad("?since= at the last instant of year 9999", "GET", "/v1/reports/costs",
        params={"since": "9999-12-31T23:59:59-14:00"}, field="query.since"),
    Bad("a timeline cursor beyond int64", "GET", f"/v1/customers/{uuid.uuid4()}/timeline",
        params={"cursor": _CURSOR_BEYOND_INT64}, field="query.cursor"),
    # Not JSON.
    Bad("a form where JSON is due", "PUT", "/v1/customers", b"identities=x",
        content_type="application/x-www-form-urlencoded", statuses=(415,)),
    Bad("text/plain where JSON is due", "POST", "/v1/events", _json({"signals": []}),
        content_type="text/plain", statuses=(415,)),
]  # fmt: skip


def _client(chorus: ChorusProcess) -> httpx.Client:
    headers = {"Authorization": f"Bearer {chorus.admin_key}"}  # type: ignore[attr-defined]
    return httpx.Client(base_url=chorus.base_url, headers=headers, timeout=30)


def _still_attributed(http: httpx.Client, after: str) -> None:
    """A clean signal sent now is on its customer's timeline within seconds."""
    clean = _signal(f"clean-after-{uuid.uuid4().hex[:8]}")
    answer = http.post("/v1/events?wait=attributed", json={"signals": [clean]})
    assert answer.status_code == 200, (after, answer.text)
    assert answer.json()["results"][0]["status"] == "recorded", after


def _assert_refused(answer: httpx.Response, bad: Bad) -> dict[str, Any]:
    assert answer.status_code in bad.statuses, (bad.name, answer.status_code, answer.text)
    assert answer.headers["content-type"].startswith("application/problem+json"), bad.name
    problem: dict[str, Any] = answer.json()
    fields = [e.get("field") or "" for e in problem.get("errors", [])]
    assert any(f.startswith(bad.field) for f in fields) or bad.statuses == (415,), (
        bad.name,
        problem,
    )
    return problem


class TestHostileInputOverHttp:
    def test_every_bad_input_gets_a_4xx_problem_naming_its_field_and_attribution_goes_on(
        self, chorus: ChorusProcess
    ) -> None:
        with _client(chorus) as http:
            for bad in HTTP_CASES:
                answer = http.request(
                    bad.method,
                    bad.path,
                    content=bad.body,
                    params=bad.params,
                    headers={"Content-Type": bad.content_type} if bad.body is not None else {},
                )
                _assert_refused(answer, bad)
                _still_attributed(http, bad.name)
            assert http.get("/ready").status_code == 200

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"identities": [{"type": "email", "value": "a\u0000b@example.org"}]},
             "$.identities[0].value"),
            ({"identities": [{"type": "custom_id", "value": "a\u0000b"}]},
             "$.identities[0].value"),
            ({"properties": {"note": "a\u0000b"}}, "$.properties.note"),
            ({"properties": {"k\u0000": 1}}, "$.properties['k\\x00']"),
            ({"attributes": {"tier": "\u0000"}}, "$.attributes.tier"),
            ({"id": "evt\u0000"}, "$.id"),
            ({"occurred_at": "0001-01-01T00:00:00+14:00"}, "$.occurred_at"),
            ({"properties": {"blob": "x" * (5 * 1024 * 1024)}}, "$"),
        ],
    )  # fmt: skip
    def test_a_bad_signal_is_refused_in_its_batch_while_the_others_are_stored(
        self, chorus: ChorusProcess, changes: dict[str, Any], field: str
    ) -> None:
        run = uuid.uuid4().hex[:8]
        batch = [_signal(f"good-1-{run}"), _signal("bad", **changes), _signal(f"good-2-{run}")]
        with _client(chorus) as http:
            answer = http.post("/v1/events?wait=attributed", json={"signals": batch})
            assert answer.status_code == 422, answer.text
            problem = answer.json()
            assert [(e["index"], e["field"]) for e in problem["errors"]] == [(1, field)]
            assert [r["status"] for r in problem["results"]] == ["recorded", "recorded"]
            _still_attributed(http, field)

    def test_properties_nested_40_deep_are_refused_in_the_batch(
        self, chorus: ChorusProcess
    ) -> None:
        deep = "[" * 40 + "]" * 40
        batch = {"signals": [_signal("deep", properties={"a": "X"}), _signal("ok")]}
        with _client(chorus) as http:
            answer = http.post(
                "/v1/events",
                content=_json(batch, deep_at="X", nested=deep),
                headers={"Content-Type": "application/json"},
            )
            assert answer.status_code == 422, answer.text
            errors = answer.json()["errors"]
            assert [e["index"] for e in errors] == [0]
            assert errors[0]["field"].startswith("$.properties.a[0][0]")
            assert "nested deeper than 32" in errors[0]["reason"]
            _still_attributed(http, "deep properties")

    def test_a_batch_nested_1000_deep_is_refused_whole_with_a_400(
        self, chorus: ChorusProcess
    ) -> None:
        batch = {"signals": [_signal("deep", properties={"a": "X"}), _signal("ok")]}
        with _client(chorus) as http:
            answer = http.post(
                "/v1/events",
                content=_json(batch, deep_at="X"),
                headers={"Content-Type": "application/json"},
            )
            assert answer.status_code == 400, answer.text
            (error,) = answer.json()["errors"]
            assert "nested deeper than 32" in error["reason"]
            assert error["field"] == "$.signals[0].properties.a" + "[0]" * 28
            _still_attributed(http, "a batch nested 1,000 deep")

    @pytest.mark.parametrize("depth", [33, 1000, 100_000])
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/v1/events"),
            ("PUT", "/v1/customers"),
            ("POST", "/v1/segments"),
            ("POST", "/v1/rules/simulate"),
            ("POST", "/v1/messages"),
        ],
    )
    def test_a_bare_array_nested_any_depth_is_a_400_naming_its_path(
        self, chorus: ChorusProcess, method: str, path: str, depth: int
    ) -> None:
        with _client(chorus) as http:
            answer = http.request(
                method,
                path,
                content=b"[" * depth + b"]" * depth,
                headers={"Content-Type": "application/json"},
            )
        assert answer.status_code == 400, answer.text
        (error,) = answer.json()["errors"]
        assert (error["field"], error["reason"]) == (
            "$" + "[0]" * 32,
            "is nested deeper than 32 levels",
        )

    def test_newlines_and_tabs_in_free_text_are_kept(self, chorus: ChorusProcess) -> None:
        signal = _signal("free-text", properties={"note": "line 1\nline 2\tend"})
        with _client(chorus) as http:
            answer = http.post("/v1/events?wait=attributed", json={"signals": [signal]})
            assert answer.status_code == 200, answer.text

    def test_json_with_a_charset_and_a_json_suffix_type_are_accepted(
        self, chorus: ChorusProcess
    ) -> None:
        with _client(chorus) as http:
            for content_type in ("application/json; charset=utf-8", "application/vnd.chorus+json"):
                answer = http.put(
                    "/v1/customers",
                    content=_json(_CUSTOMER),
                    headers={"Content-Type": content_type},
                )
                assert answer.status_code in (200, 201), (content_type, answer.text)

    def test_a_webhook_form_is_not_refused_as_not_json(self, chorus: ChorusProcess) -> None:
        answer = httpx.post(
            f"{chorus.base_url}/v1/webhooks/twilio",
            content=b"MessageSid=SM1&MessageStatus=delivered",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code != 415
        assert answer.status_code < 500


_KEYED_ROUTES = [
    ("POST", "/v1/messages", {**_SEND, "channels": ["sms"]}),
    ("POST", f"/v1/conversations/{uuid.uuid4()}/notes", {"text": "first"}),
    ("POST", f"/v1/conversations/{uuid.uuid4()}/replies", {"text": "hi"}),
    ("POST", f"/v1/conversations/{uuid.uuid4()}/assign", {"agent": "ana", "reason": "asked"}),
    ("POST", f"/v1/conversations/{uuid.uuid4()}/transfer", {"team": "ops", "reason": "asked"}),
    ("POST", f"/v1/customers/{uuid.uuid4()}/erase", {}),
]


def _raw_answer(chorus: ChorusProcess, path: str, key: bytes) -> tuple[int, dict[str, Any]]:
    """The status and problem of a POST whose `Idempotency-Key` holds bytes no HTTP client
    library sends (a NUL, an escape)."""
    where = urlsplit(chorus.base_url)
    secret = chorus.admin_key  # type: ignore[attr-defined]
    body = b'{"text": "first"}'
    request = (
        (
            f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\nAuthorization: Bearer {secret}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n"
        ).encode()
        + b"Idempotency-Key: "
        + key
        + b"\r\n\r\n"
        + body
    )
    with socket.create_connection((where.hostname, where.port), timeout=30) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, content = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(content) if content.startswith(b"{") else {}


class TestIdempotencyKeyHeader:
    def test_a_key_not_1_to_200_characters_is_a_400_naming_the_header_on_every_keyed_route(
        self, chorus: ChorusProcess
    ) -> None:
        with _client(chorus) as http:
            for method, path, body in _KEYED_ROUTES:
                for key in ("k" * 5000, "k" * 201, ""):
                    answer = http.request(method, path, json=body, headers={"Idempotency-Key": key})
                    assert answer.status_code == 400, (path, len(key), answer.text)
                    assert answer.json()["errors"] == [
                        {
                            "field": "header.Idempotency-Key",
                            "reason": "must be 1 to 200 characters long",
                        }
                    ], path
            # 200 characters is a key: the request goes on (to no such conversation)
            _, notes, body = _KEYED_ROUTES[1]
            answer = http.post(notes, json=body, headers={"Idempotency-Key": "k" * 200})
            assert answer.status_code == 404, answer.text

    def test_two_different_keys_are_a_400_naming_the_header_and_one_key_twice_is_one(
        self, chorus: ChorusProcess
    ) -> None:
        with _client(chorus) as http:
            for method, path, body in _KEYED_ROUTES:
                twice = [("Idempotency-Key", "k-1"), ("Idempotency-Key", "k-2")]
                answer = http.request(method, path, json=body, headers=twice)
                assert answer.status_code == 400, (path, answer.text)
                assert answer.json()["errors"] == [
                    {
                        "field": "header.Idempotency-Key",
                        "reason": "is given 2 times with different keys: send one key",
                    }
                ], path
            # the same key twice is one key: the request goes on (to no such conversation)
            _, notes, body = _KEYED_ROUTES[1]
            same = [("Idempotency-Key", "k-1"), ("Idempotency-Key", "k-1")]
            assert http.post(notes, json=body, headers=same).status_code == 404

    def test_a_header_and_a_body_key_that_differ_are_a_400_naming_both(
        self, chorus: ChorusProcess
    ) -> None:
        with _client(chorus) as http:
            for method, path, body in _KEYED_ROUTES[:5]:  # those whose body takes a key
                keyed = {**body, "idempotency_key": "k-body"}
                answer = http.request(
                    method, path, json=keyed, headers={"Idempotency-Key": "k-header"}
                )
                assert answer.status_code == 400, (path, answer.text)
                assert [e["field"] for e in answer.json()["errors"]] == [
                    "$.idempotency_key",
                    "header.Idempotency-Key",
                ], path
            _, notes, body = _KEYED_ROUTES[1]
            same = {**body, "idempotency_key": "k-1"}
            answer = http.post(notes, json=same, headers={"Idempotency-Key": "k-1"})
            assert answer.status_code == 404, answer.text

    def test_a_nul_or_another_control_character_in_the_key_is_a_400_naming_the_header(
        self, chorus: ChorusProcess
    ) -> None:
        _, notes, _ = _KEYED_ROUTES[1]
        for key, code in ((b"nt\x009", "U+0000"), (b"nt\x1b9", "U+001B")):
            status, problem = _raw_answer(chorus, notes, key)
            assert status == 400, (key, problem)
            # the server's parser may refuse the request before the service does: a problem too
            if not problem["type"].endswith("/invalid-http"):
                [error] = problem["errors"]
                assert error["field"] == "header.Idempotency-Key"
                assert code in error["reason"]


class TestBodyThatIsNotJson:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/v1/events"),
            ("PUT", "/v1/customers"),
            ("POST", "/v1/segments"),
            ("POST", "/v1/messages"),
            ("POST", "/v1/rules/simulate"),
        ],
    )
    @pytest.mark.parametrize("body", [b'{"a": 1', b'{"a": NaN}', b'{"signals": ['])
    def test_every_route_answers_one_invalid_json_problem_naming_the_body(
        self, chorus: ChorusProcess, method: str, path: str, body: bytes
    ) -> None:
        with _client(chorus) as http:
            answer = http.request(
                method, path, content=body, headers={"Content-Type": "application/json"}
            )
        assert answer.status_code == 400, answer.text
        problem = answer.json()
        assert problem["type"] == "https://chorus.dev/problems/invalid-json"
        assert problem["errors"][0]["field"] == "$"

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/v1/keys"),
            ("POST", "/v1/messages"),
            ("PUT", "/v1/customers"),
            ("POST", "/v1/segments"),
            ("PUT", "/v1/segments/seg-empty"),
            ("POST", "/v1/admin/clock"),
            ("POST", "/v1/events"),
            ("POST", "/v1/rules/simulate"),
        ],
    )
    @pytest.mark.parametrize("body", [b"", b" \n"])
    def test_an_empty_body_is_one_invalid_json_problem_saying_so(
        self, chorus: ChorusProcess, method: str, path: str, body: bytes
    ) -> None:
        with _client(chorus) as http:
            answer = http.request(
                method, path, content=body, headers={"Content-Type": "application/json"}
            )
        assert answer.status_code == 400, answer.text
        problem = answer.json()
        assert problem["type"] == "https://chorus.dev/problems/invalid-json", problem
        assert problem["errors"] == [
            {"field": "$", "reason": "the body is empty: send a JSON object"}
        ]

    def test_a_rule_set_cut_short_is_refused_as_not_json(self, chorus: ChorusProcess) -> None:
        with _client(chorus) as http:
            answer = http.put(
                "/v1/rules", content=b'{"a": 1', headers={"Content-Type": "application/json"}
            )
        assert answer.status_code == 422, answer.text
        (error,) = answer.json()["errors"]
        assert (error["field"], error["reason"].startswith("not valid JSON")) == ("$", True)

    def test_a_refused_query_parameter_is_named_by_its_place(self, chorus: ChorusProcess) -> None:
        with _client(chorus) as http:
            answer = http.get("/v1/customers/search", params={"limit": "-1"})
        assert answer.status_code == 400, answer.text
        assert answer.json()["errors"][0]["field"] == "query.limit"


class TestBodyLimit:
    def test_a_body_over_16_mib_gets_a_413_problem_the_client_can_read(
        self, chorus: ChorusProcess
    ) -> None:
        body = b'{"signals": ["' + b"x" * (17 * 1024 * 1024) + b'"]}'
        with _client(chorus) as http:
            answer = http.post(
                "/v1/events", content=body, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 413
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert "16,777,216" in answer.json()["detail"]
            _still_attributed(http, "a 17 MB body")


def _raw_get(chorus: ChorusProcess, target: bytes) -> tuple[int, str, dict[str, Any]]:
    """The status, content type and JSON body of a GET whose request target no HTTP client
    library sends (longer than 64 KiB)."""
    where = urlsplit(chorus.base_url)
    secret = chorus.admin_key  # type: ignore[attr-defined]
    request = (
        b"GET "
        + target
        + f" HTTP/1.1\r\nHost: {where.netloc}\r\nAuthorization: Bearer {secret}\r\n".encode()
        + b"Connection: close\r\n\r\n"
    )
    with socket.create_connection((where.hostname, where.port), timeout=30) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, content = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ", 2)[1]), headers["content-type"], json.loads(content)


class TestQueryLength:
    def test_a_query_string_of_8_kib_is_read(self, chorus: ChorusProcess) -> None:
        with _client(chorus) as http:
            answer = http.get("/v1/conversations", params={"pad": "x" * (8192 - 4)})
        assert answer.status_code == 200, answer.text

    def test_a_longer_one_is_a_414_problem_naming_the_limit(self, chorus: ChorusProcess) -> None:
        with _client(chorus) as http:
            answer = http.get("/v1/conversations", params={"pad": "x" * 8192})
            assert answer.status_code == 414, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            problem = answer.json()
            assert problem["type"] == "https://chorus.dev/problems/uri-too-long"
            assert problem["detail"] == "a query string may have at most 8,192 bytes"
            _still_attributed(http, "a 8 KiB query string")

    @pytest.mark.parametrize("size", [100_000, 1_000_000])
    def test_one_the_http_server_refuses_is_a_414_problem_too(
        self, chorus: ChorusProcess, size: int
    ) -> None:
        status, content_type, problem = _raw_get(chorus, b"/v1/conversations?pad=" + b"x" * size)
        assert (status, content_type) == (414, "application/problem+json")
        assert problem["type"] == "https://chorus.dev/problems/uri-too-long"
        assert "8,192 bytes" in problem["detail"]
        with _client(chorus) as http:
            _still_attributed(http, f"a {size:,} byte query string")

    def test_a_request_the_http_server_cannot_read_is_a_400_problem(
        self, chorus: ChorusProcess
    ) -> None:
        status, content_type, problem = _raw_get(chorus, b"/v1/conversations?a=b c")
        assert (status, content_type) == (400, "application/problem+json")
        assert problem["type"] == "https://chorus.dev/problems/invalid-http"


async def _dead_letters(js: Any, stream: str) -> int:
    return int((await js.stream_info(stream)).state.messages)


class TestHostileInputOverNats:
    async def test_every_bad_signal_is_dead_lettered_with_its_reason_and_attribution_goes_on(
        self, chorus: ChorusProcess
    ) -> None:
        import asyncio

        messages = [
            (_json(_signal("n1", identities=[{"type": "email", "value": "a\u0000b@x.org"}])),
             "$.identities[0].value"),
            (_json(_signal("n2", properties={"note": "\u0000"})), "$.properties.note"),
            (_json(_signal("n3", properties={"a": "X"}), deep_at="X"), "nested deeper than 32"),
            (_json(_signal("n4", properties={"x": "P"})).replace(b'"P"', b'"\xff"'), "UTF-8"),
            (_json(_signal("n5", properties={"blob": "x" * 70_000})), "65,536"),
            (_json({"signals": [_signal("n6", properties={"k": "\u0001"})]}),
             "$.signals[0].properties.k"),
            (b"[" * 30_000 + b"]" * 30_000, "$" + "[0]" * 32 + ": is nested deeper than 32"),
            (_json({"signals": ["X"]}, deep_at="X"), "nested deeper than 32"),
        ]  # fmt: skip
        nc = await nats.connect(chorus.nats_url)
        try:
            js = nc.jetstream()
            with _client(chorus) as http:
                _still_attributed(http, "start")  # the streams exist
                for data, reason in messages:
                    before = await _dead_letters(js, chorus.dead_letter_stream)
                    await js.publish(f"{chorus.subject_prefix}.signals.test", data)
                    for _ in range(100):
                        if await _dead_letters(js, chorus.dead_letter_stream) > before:
                            break
                        await asyncio.sleep(0.1)
                    letter = await js.get_last_msg(
                        chorus.dead_letter_stream, f"{chorus.subject_prefix}.dlq.signals"
                    )
                    assert letter.headers is not None
                    assert reason in letter.headers["Chorus-Reason"], letter.headers
                    clean = _signal(f"nats-clean-{uuid.uuid4().hex[:8]}")
                    await js.publish(f"{chorus.subject_prefix}.signals.test", _json(clean))
                    answer = http.post("/v1/events?wait=attributed", json={"signals": [clean]})
                    assert answer.json()["results"][0]["status"] in ("recorded", "duplicate")
                    assert answer.json()["results"][0].get("customer_id"), reason
        finally:
            await nc.close()

    async def test_a_bad_send_request_gets_an_error_reply_naming_its_field(
        self, chorus: ChorusProcess
    ) -> None:
        subject = f"{chorus.subject_prefix}.cmd.messages.send"
        requests = [
            (_json({**_SEND, "channels": ["sms"], "variables": {"v": "\u0000"}}), "$.variables.v"),
            (_json({**_SEND, "channels": ["sms"], "variables": {"v": "X"}}, deep_at="X"), "$"),
            (_json({**_SEND, "channels": ["sms"], "team": "P"}).replace(b'"P"', b'"\xff"'), "$"),
        ]
        nc = await nats.connect(chorus.nats_url)
        try:
            for data, field in requests:
                reply = await nc.request(subject, data, timeout=10)
                assert reply.headers is not None
                assert reply.headers["Chorus-Status"] == "400", reply.data
                problem = json.loads(reply.data)
                assert problem["errors"][0]["field"].startswith(field), problem
        finally:
            await nc.close()
