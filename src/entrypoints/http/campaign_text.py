"""A campaign's document with control characters in its strings is refused (a 400, as the edge
refuses any body with them) naming every such string, and with them every other fault of its
journey, as a 422 would: one answer says all that is wrong (issue 15).

The edge refuses a body at its first control character, before any handler reads it.
`CampaignRequest` reads such a body anyway, keeping each control character's fault, and the
handler answers with them and the journey's other faults before it does anything with the
document, so that nothing of it is stored."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import ValidationException

from domain.campaign.journey_reader import JourneyFault, JourneyInvalid, decode_journey
from entrypoints.http.edge import EdgeRequest
from entrypoints.http.problems import exception_handlers, problem
from entrypoints.text_checks import (
    FREE_TEXT,
    MAX_DEPTH,
    InputRefused,
    TextFault,
    line_fault,
    raw_fault,
    text_fault,
)
from ports.campaigns import JourneyReferences

__all__ = [
    "READS_TEXT_FAULTS",
    "CampaignRequest",
    "refused_text",
    "text_faults",
    "text_refusal",
    "validation_with_text",
]

_TEXT_FAULTS = "chorus.campaigns.text_faults"
READS_TEXT_FAULTS = "reads_text_faults"
"""The `opt` of a route handler that answers `refused_text` itself before anything else: the
others' bodies are refused at their first control character, as the edge refuses them."""


class CampaignRequest(EdgeRequest):
    """An `EdgeRequest` that reads a body with control characters in its strings, keeping every
    one's fault for the handler (`refused_text`); any other fault the edge refuses at once."""

    async def json(self) -> Any:
        body = await self.body()
        first = raw_fault(body)
        if first is None:
            return await super().json()
        found = text_faults(body) if self.route_handler.opt.get(READS_TEXT_FAULTS) else []
        if not found:
            raise InputRefused(first)
        self.scope.setdefault("state", {})[_TEXT_FAULTS] = found
        return msgspec.json.decode(body)


def refused_text(request: Request[Any, Any, Any]) -> list[TextFault]:
    """The control characters of the request's body, each by its path; none if it has none."""
    found: list[TextFault] = request.scope.get("state", {}).get(_TEXT_FAULTS, [])
    return found


async def text_refusal(
    refused: list[TextFault], journey: Any, references: JourneyReferences
) -> Response[Any]:
    """The 400 naming every control character, and every other fault of the `journey`."""
    inside = [
        JourneyFault("$" + fault.path.removeprefix("$.journey"), fault.reason)
        for fault in refused
        if _under(fault.path, "$.journey")
    ]
    faults = [JourneyFault(f.path, f.reason) for f in refused if not _under(f.path, "$.journey")]
    found = inside
    if isinstance(journey, Mapping):
        templates, segments = await asyncio.gather(
            references.template_keys(), references.segment_keys()
        )
        try:
            decode_journey(journey, templates=templates, segments=segments, refused=inside)
        except JourneyInvalid as invalid:
            found = list(invalid.faults)
    faults.extend(JourneyFault("$.journey" + f.path.removeprefix("$"), f.reason) for f in found)
    return _answer(faults)


def validation_with_text(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    """A body of the wrong shape that holds control characters too: they are named, as the
    edge names them before any shape is checked."""
    refused = refused_text(request)
    if refused:
        return _answer([JourneyFault(fault.path, fault.reason) for fault in refused])
    return exception_handlers[ValidationException](request, exc)


def _answer(faults: list[JourneyFault]) -> Response[Any]:
    return problem(
        400,
        "invalid-request",
        "The request is not valid",
        "; ".join(f"{fault.path}: {fault.reason}" for fault in faults),
        errors=[{"field": fault.path, "reason": fault.reason} for fault in faults],
    )


def _under(path: str, prefix: str) -> bool:
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] in ".[")


def text_faults(body: bytes) -> list[TextFault]:
    """Every string and key of the body that holds a control character; none if the body
    cannot be read whole (not UTF-8, nested too deep): the edge then names its first fault."""
    try:
        value = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return []
    found: list[TextFault] = []
    if not _walk(value, "$", free=False, depth=0, found=found):
        return []
    return found


def _walk(value: Any, path: str, *, free: bool, depth: int, found: list[TextFault]) -> bool:
    """Adds the faults under `value` to `found`; False if it is nested too deep."""
    if isinstance(value, str):
        reason = text_fault(value) if free else line_fault(value)
        if reason is not None:
            found.append(TextFault(path, reason))
        return True
    if not isinstance(value, dict | list):
        return True
    if depth >= MAX_DEPTH:
        return False
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(key, int):
            at = f"{path}[{key}]"
        else:
            reason = line_fault(key)
            at = f"{path}.{key}" if reason is None else f"{path}[{key!a}]"
            if reason is not None:
                found.append(TextFault(at, f"its name {reason}"))
        if not _walk(item, at, free=free or key in FREE_TEXT, depth=depth + 1, found=found):
            return False
    return True
