"""POST /v1/events: a batch of signals, committed before the answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import structlog
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, post
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody

from application.customer.ingest_signals import IngestSignals
from domain.signals.aggregate import SignalReport
from entrypoints.http.auth import allow
from entrypoints.http.problems import problem
from entrypoints.http.schemas import IngestOut, SignalResultOut
from entrypoints.metrics import SIGNAL_BATCH_SECONDS, SIGNALS
from entrypoints.signal_schema import MAX_BATCH, InvalidSignal, SignalIn, SignalMapper
from ports.api_keys import Role

__all__ = ["EventsController"]


class _Batch(msgspec.Struct):
    signals: list[msgspec.Raw]


class SignalBatch(msgspec.Struct):
    """The documented body of POST /v1/events; each signal is validated on its own."""

    signals: Annotated[list[SignalIn], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


def _inline(schema: Any, definitions: dict[str, Any]) -> Any:
    """msgspec's JSON schema with its $defs written in place, to embed in the OpenAPI document."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {k: _inline(v, definitions) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(item, definitions) for item in schema]
    return schema


_RAW_SCHEMA = msgspec.json.schema(SignalBatch)
_BATCH_SCHEMA = _inline(_RAW_SCHEMA, _RAW_SCHEMA.get("$defs", {}))


@dataclass
class _IngestOperation(Operation):
    """Documents the body that the handler reads itself, signal by signal."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=_BATCH_SCHEMA)},
            required=True,
        )


_batch_decoder = msgspec.json.Decoder(_Batch)
log = structlog.get_logger("chorus.http")


class EventsController(Controller):
    path = "/v1/events"
    tags = ["signals"]

    @post(
        operation_class=_IngestOperation,
        operation_id="ingestSignals",
        name="events:ingest",
        guards=[allow(Role.SERVICE)],
        status_code=200,
        request_max_body_size=16 * 1024 * 1024,
        summary="Ingest a batch of up to 1,000 signals",
        description=(
            'Body: `{"signals": [{"id", "type", "occurred_at", "identities", "properties", '
            '"source", "profile", "attributes"}]}`. Answers after the signals are committed. '
            "A signal whose id was seen before is acknowledged as a duplicate. Invalid signals "
            "are listed in a 422 problem with their index and reason; the valid ones of the "
            "same batch are stored and listed in `results`."
        ),
    )
    @inject
    async def ingest(
        self,
        request: Request[Any, Any, Any],
        ingest: FromDishka[IngestSignals],
        mapper: FromDishka[SignalMapper],
    ) -> Response[Any]:
        body = await request.body()
        try:
            batch = _batch_decoder.decode(body)
        except msgspec.ValidationError as error:
            return problem(
                400,
                "invalid-request",
                "The batch is not valid",
                str(error),
                errors=[{"field": "$.signals", "reason": str(error)}],
            )
        except msgspec.DecodeError as error:
            return problem(400, "invalid-json", "The body is not JSON", str(error))
        if not batch.signals:
            return problem(
                400,
                "invalid-request",
                "The batch is empty",
                errors=[{"field": "$.signals", "reason": "needs at least one signal"}],
            )
        if len(batch.signals) > MAX_BATCH:
            return problem(
                413,
                "batch-too-large",
                f"At most {MAX_BATCH} signals a batch",
                errors=[{"field": "$.signals", "reason": f"has {len(batch.signals)}"}],
            )
        reports: list[SignalReport] = []
        indexes: list[int] = []
        invalid: list[InvalidSignal] = []
        for index, raw in enumerate(batch.signals):
            mapped = mapper.from_raw(index, raw)
            if isinstance(mapped, InvalidSignal):
                invalid.append(mapped)
            else:
                reports.append(mapped)
                indexes.append(index)
        with SIGNAL_BATCH_SECONDS.labels("http").time():
            outcomes = await ingest(reports) if reports else []
        results = [
            SignalResultOut(
                index, report.event_id, outcome.status, outcome.signal_id, outcome.customer_id
            )
            for index, report, outcome in zip(indexes, reports, outcomes, strict=True)
        ]
        recorded = sum(1 for r in results if r.status == "recorded")
        SIGNALS.labels("http", "recorded").inc(recorded)
        SIGNALS.labels("http", "duplicate").inc(len(results) - recorded)
        SIGNALS.labels("http", "invalid").inc(len(invalid))
        log.info(
            "signals ingested",
            count=len(batch.signals),
            recorded=recorded,
            duplicates=len(results) - recorded,
            invalid=len(invalid),
        )
        if invalid:
            return problem(
                422,
                "invalid-signals",
                "Some signals were refused",
                f"{len(invalid)} of {len(batch.signals)} were refused"
                + ("; the others were stored" if results else ""),
                errors=[
                    {"index": i.index, "field": i.field, "reason": i.reason, "id": i.signal_id}
                    for i in invalid
                ],
                recorded=recorded,
                duplicates=len(results) - recorded,
                results=msgspec.to_builtins(results),
            )
        return Response(IngestOut(recorded, len(results) - recorded, results))
