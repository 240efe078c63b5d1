from __future__ import annotations

import pytest

from entrypoints.http.edge import is_json, query_fault


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
