from __future__ import annotations

from uuid import UUID

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from entrypoints.http.problems import exception_handlers


@get("/v1/customers/{customer_id:uuid}/context")
async def _context(customer_id: UUID) -> str:
    return str(customer_id)


@get("/v1/customers/search")
async def _search() -> str:
    return "search"


@get("/v1/campaigns/{campaign:str}/versions/{version:int}")
async def _version(campaign: str, version: int) -> str:
    return f"{campaign}:{version}"


_APP = Litestar([_context, _search, _version], exception_handlers=exception_handlers)


class TestAPathParameterThatDoesNotParse:
    @pytest.mark.parametrize(
        ("path", "field", "reason"),
        [
            ("/v1/customers/not-a-uuid/context", "path.customer_id", "'not-a-uuid' is not a UUID"),
            ("/v1/campaigns/welcome/versions/two", "path.version", "'two' is not an integer"),
        ],
    )
    def test_is_a_problem_naming_the_parameter(self, path: str, field: str, reason: str) -> None:
        with TestClient(_APP) as client:
            answer = client.get(path)
        assert answer.status_code == 400
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["type"].endswith("/invalid-request")
        assert problem["errors"] == [{"field": field, "reason": reason}]

    def test_a_parameter_that_parses_reaches_its_route(self) -> None:
        customer = "0b6f2c2e-8d3c-4c8e-9a51-1f1b5f0b9a10"
        with TestClient(_APP) as client:
            assert client.get(f"/v1/customers/{customer}/context").text == customer
            assert client.get("/v1/customers/search").text == "search"

    @pytest.mark.parametrize("path", ["/v1/nothing/here", "/v1/customers/not-a-uuid/orders"])
    def test_a_path_no_route_has_is_still_a_bare_404(self, path: str) -> None:
        with TestClient(_APP) as client:
            answer = client.get(path)
        assert answer.status_code == 404
        assert "errors" not in answer.json()
