"""Where a body Litestar refused is at fault, said in the body's own JSON paths.

Litestar passes on msgspec's words cut at their first ` - `, and msgspec writes a value of a
free-keyed object as `[...]` and a key at fault as the object. The body is read again here as
the route reads it (`domain.shared.documents` names keys as every document reader does): a
key at fault is named (`$.capacity.fax`), a value by its key (`$.capacity.chat`, not
`$.capacity[...]`), and a field a value object's own check refuses by its path
(`$.working_hours.time_zone`, not `$.working_hours`).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec

from domain.shared.documents import field_named, key_fault, keyed_values, own_field
from entrypoints.http.edge import body_read

if TYPE_CHECKING:
    from litestar import Request

__all__ = ["body_fault"]


def body_fault(request: Request[Any, Any, Any]) -> tuple[str, str] | None:
    """The path and reason of the fault in the request's body that its route's `data` refused;
    None when the body was not read, or reads without one."""
    body = body_read(request.scope)
    handler = request.scope.get("route_handler")
    if body is msgspec.UNSET or handler is None:
        return None
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return None
    read = partial(_read, annotation=data.annotation)
    try:
        read(body)
    except msgspec.ValidationError as error:
        message = str(error)
    except (TypeError, ValueError, RecursionError):  # a shape msgspec does not read: as it was
        return None
    else:
        return None
    found = key_fault(message, body, read)
    if found is not None:
        return found
    path, reason = field_named(keyed_values(message, body, read))
    return own_field(path, reason, body)


def _read(document: Any, annotation: Any) -> object:
    # As Litestar reads a body into `data` (leniently, keys as text).
    return msgspec.convert(document, annotation, strict=False, str_keys=True)
