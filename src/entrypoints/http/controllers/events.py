"""POST /v1/events: a batch of signals, committed before the answer, attributed after it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
import structlog
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, post
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody

from application.customer.signals import AcceptSignals
from domain.shared.documents import json_fault
from domain.signals.aggregate import signal_id_for
from domain.signals.document import MAX_BATCH, InvalidSignal, ReceivedSignal, SignalIn, SignalReader
from entrypoints.http.auth import allow
from entrypoints.http.edge import MAX_BODY_BYTES
from entrypoints.http.problems import not_json, problem
from entrypoints.http.schemas import IngestOut, SignalResultOut
from entrypoints.metrics import SIGNAL_BATCH_SECONDS, SIGNALS
from entrypoints.text_checks import MAX_DEPTH, TextFault, raw_fault
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


def _refused(fault: TextFault) -> Response[Any]:
    """A batch the edge refuses whole, naming where."""
    return problem(
        400,
        "invalid-request",
        "The batch is not valid",
        errors=[{"field": fault.path, "reason": fault.reason}],
    )


log = structlog.get_logger("chorus.http")


ATTRIBUTION_TIMEOUT = 10.0  # seconds `?wait=attributed` waits before answering 202


class EventsController(Controller):
    path = "/v1/events"
    tags = ["signals"]

    @post(
        operation_class=_IngestOperation,
        operation_id="ingestSignals",
        name="events:ingest",
        guards=[allow(Role.SERVICE)],
        status_code=202,
        request_max_body_size=MAX_BODY_BYTES,
        summary="Ingest a batch of up to 1,000 signals",
        description=(
            'Body: `{"signals": [{"id", "type", "occurred_at", "identities", "properties", '
            '"source", "profile", "attributes"}]}`. Answers 202 once the signals are committed '
            "(`accepted`); attributing them to customers follows within milliseconds. With "
            "`?wait=attributed` it answers 200 once they are on their customers' timelines, "
            "with each one's `customer_id`, or `status: refused` and the `reason` for one a rule "
            "of its customer refused (202 if that took over 10 s). A signal whose id was "
            "seen before is acknowledged as a duplicate. Invalid signals are listed in a 422 "
            "problem with their index and reason; the valid ones of the same batch are stored "
            "and listed in `results`. A signal may have 64 KiB of JSON nested at most 32 deep, and no "
            "control characters but in free text (tab and line breaks in `properties` and "
            "`attributes`); see docs/api.md."
        ),
    )
    @inject
    async def ingest(
        self,
        request: Request[Any, Any, Any],
        accept: FromDishka[AcceptSignals],
        reader: FromDishka[SignalReader],
        wait: Literal["committed", "attributed"] = "committed",
    ) -> Response[Any]:
        body = await request.body()
        try:
            batch = _batch_decoder.decode(body)
        except msgspec.ValidationError as error:
            # Not a batch: first what the edge refuses in any body (nesting deeper than
            # MAX_DEPTH, `[[[...]]]` say, that no reader may walk), then what is not JSON.
            if (fault := raw_fault(body)) is not None:
                return _refused(fault)
            if (broken := json_fault(body)) is not None:
                return not_json(broken)
            return problem(
                400,
                "invalid-request",
                "The batch is not valid",
                str(error),
                errors=[{"field": "$.signals", "reason": str(error)}],
            )
        except msgspec.DecodeError as error:
            return not_json(str(error), body)
        except (UnicodeDecodeError, RecursionError):
            # Each signal's text and nesting are checked with it, by the reader; this is a
            # body whose envelope cannot even be read.
            fault = raw_fault(body)
            return _refused(fault or TextFault("$", f"is nested deeper than {MAX_DEPTH} levels"))
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
        received: list[ReceivedSignal] = []
        results: list[SignalResultOut] = []
        invalid: list[InvalidSignal] = []
        for index, raw in enumerate(batch.signals):
            signal = reader.check(index, raw)
            if isinstance(signal, InvalidSignal):
                invalid.append(signal)
            else:
                received.append(reader.received(index, signal, bytes(raw)))
                results.append(SignalResultOut(index, signal.id, "accepted"))
        with SIGNAL_BATCH_SECONDS.labels("http").time():
            new = await accept(received) if received else []
        for result, fresh in zip(results, new, strict=True):
            if not fresh:
                result.status = "duplicate"
        accepted = sum(new)
        SIGNALS.labels("http", "accepted").inc(accepted)
        SIGNALS.labels("http", "duplicate").inc(len(results) - accepted)
        SIGNALS.labels("http", "invalid").inc(len(invalid))
        log.info(
            "signals accepted",
            count=len(batch.signals),
            accepted=accepted,
            duplicates=len(results) - accepted,
            invalid=len(invalid),
        )
        status = 202
        recorded = None
        if wait == "attributed":
            recorded = await self._attributed(accept, results)
            waited_for_all = all(r.customer_id is not None or r.reason for r in results)
            status = 200 if waited_for_all else 202
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
                **msgspec.to_builtins(
                    IngestOut(accepted, len(results) - accepted, results, recorded)
                ),
            )
        return Response(
            IngestOut(accepted, len(results) - accepted, results, recorded), status_code=status
        )

    @staticmethod
    async def _attributed(accept: AcceptSignals, results: list[SignalResultOut]) -> int:
        """Waits until every signal of the batch is on its customer or refused, duplicates
        included (one received earlier may not be attributed yet); the number of accepted
        ones recorded."""
        waiting: dict[str, list[SignalResultOut]] = {}
        for result in results:
            result.signal_id = signal_id_for(result.id)
            waiting.setdefault(result.id, []).append(result)
        found = await accept.attributed(list(waiting), ATTRIBUTION_TIMEOUT) if waiting else {}
        recorded = 0
        for event_id, attribution in found.items():
            for result in waiting.get(event_id, ()):
                if attribution.refused is not None:
                    result.reason = attribution.refused
                    if result.status == "accepted":
                        result.status = "refused"
                    continue
                result.customer_id = attribution.customer_id
                if result.status == "accepted":
                    result.status = "recorded"
                    recorded += 1
        return recorded
