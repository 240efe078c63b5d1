"""One-click unsubscribe (RFC 8058): the link in every marketing email, no API key needed."""

from __future__ import annotations

import html

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, MediaType, Response, get, post

from application.customer.change_consent import ChangeConsent
from domain.customer.contact import ConsentRecord
from entrypoints.http.problems import problem
from ports.unsubscribe import UnsubscribeTokens

__all__ = ["UnsubscribeController"]

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Unsubscribe</title></head>
<body style="font-family:sans-serif;max-width:32em;margin:4em auto">{body}</body></html>"""


class UnsubscribeController(Controller):
    path = "/v1/unsubscribe"
    tags = ["consent"]
    security = [{}]

    @get(
        "/{token:str}",
        operation_id="unsubscribePage",
        name="unsubscribe:page",
        media_type=MediaType.HTML,
        summary="A page with an unsubscribe button; opening the link changes nothing",
        description="Link scanners follow GET links, so only the POST unsubscribes.",
    )
    @inject
    async def page(self, token: str, tokens: FromDishka[UnsubscribeTokens]) -> Response[str]:
        if tokens.read(token) is None:
            body = "<p>This unsubscribe link is not valid.</p>"
            return Response(_PAGE.format(body=body), media_type=MediaType.HTML, status_code=404)
        form = (
            f'<form method="post" action="{html.escape(token)}">'
            "<p>Stop these emails?</p><button type=submit>Unsubscribe</button></form>"
        )
        return Response(_PAGE.format(body=form), media_type=MediaType.HTML)

    @post(
        "/{token:str}",
        operation_id="unsubscribe",
        name="unsubscribe:post",
        status_code=200,
        media_type=MediaType.HTML,
        summary="Withdraw the consent the link names, at once (List-Unsubscribe=One-Click)",
    )
    @inject
    async def unsubscribe(
        self, token: str, tokens: FromDishka[UnsubscribeTokens], change: FromDishka[ChangeConsent]
    ) -> Response[str]:
        target = tokens.read(token)
        if target is None:
            return problem(404, "not-found", "This unsubscribe link is not valid")  # type: ignore[return-value]
        await change(
            target.customer_id,
            [ConsentRecord(target.channel, target.purpose, False, "List-Unsubscribe one-click")],
        )
        what = f"{target.purpose} " if target.purpose else ""
        return Response(
            _PAGE.format(body=f"<p>Done: no more {what}{target.channel} messages.</p>"),
            media_type=MediaType.HTML,
        )
