"""The JSON API under /api, for other hotel systems to read delivery status. Read-only.

Every request presents `Authorization: Bearer <token>` with one of API_TOKENS (compared in
constant time); without API_TOKENS the API refuses everything. 401 otherwise, with a
`WWW-Authenticate` header. Masked destinations only; never a PIN or Instant Key URL.

    GET /api/deliveries?q=&status=&channel=&page=&limit=   newest first
    GET /api/deliveries/{id}                              one delivery with its timeline
    GET /api/flags                                        open front-desk flags (card queue)
    GET /api/alerts                                       failed/undelivered deliveries,
                                                          front-desk alerts and events set aside
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.console.context import Console, Endpoint, has_nul
from app.console.pages import delivery_query
from app.console.timeline import delivery_json, timeline
from app.ledger.models import FrontDeskFlag


def parse_tokens(value: str) -> list[bytes]:
    return [token.strip().encode() for token in value.split(",") if token.strip()]


class RequireToken:
    """Every /api path needs a bearer token from API_TOKENS."""

    def __init__(self, app: ASGIApp, tokens: list[bytes]) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._allowed(Request(scope)):
            response = JSONResponse(
                {"error": "unauthorized", "message": "present a token from API_TOKENS as "
                                                     "Authorization: Bearer <token>"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="keycourier"'},
            )  # fmt: skip
            await response(scope, receive, send)
            return
        if scope["type"] == "http" and has_nul(scope):
            refused = JSONResponse({"error": "a query parameter holds a NUL character"}, 400)
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return False
        offered = given.strip().encode()
        # Compare with every token, not stopping at a match: the time taken says nothing.
        matches = [hmac.compare_digest(offered, token) for token in self.tokens]
        return any(matches)


def _flag_json(flag: FrontDeskFlag) -> dict[str, Any]:
    return {
        "id": flag.id,
        "access_method_id": flag.access_method_id,
        "access_grant_id": flag.access_grant_id,
        "guest_name": flag.guest_name,
        "reason": flag.reason,
        "status": flag.status,
        "opened_at": flag.opened_at.isoformat(),
    }


def _deliveries(console: Console) -> Endpoint:
    async def list_them(request: Request) -> Response:
        query = delivery_query(console, request)
        found = await console.run(console.store.find_deliveries, query)
        page = query.offset // query.limit + 1
        return JSONResponse(
            {
                "deliveries": [delivery_json(d) for d in found],
                "page": page,
                "next_page": page + 1 if len(found) == query.limit else None,
            }
        )

    return list_them


def _delivery(console: Console) -> Endpoint:
    async def one(request: Request) -> Response:
        delivery_id = console.row_id(request, "delivery_id")
        found = await console.run(console.store.delivery_timeline, delivery_id)
        if found is None:
            raise HTTPException(404, f"there is no delivery {delivery_id}")
        row, reports = found
        body = delivery_json(row)
        body["timeline"] = [entry.as_json() for entry in timeline(row, reports)]
        return JSONResponse(body)

    return one


def _flags(console: Console) -> Endpoint:
    async def open_flags(request: Request) -> Response:
        flags = await console.run(console.store.open_flag_list)
        return JSONResponse({"flags": [_flag_json(f) for f in flags]})

    return open_flags


def _alerts(console: Console) -> Endpoint:
    async def alerts(request: Request) -> Response:
        rows = await console.run(console.store.alert_deliveries)
        flags = await console.run(console.store.open_flag_list)
        poisoned = await console.run(console.store.poisoned_events)
        return JSONResponse(
            {
                "deliveries": [delivery_json(d) for d in rows],
                "flags": [_flag_json(f) for f in flags],
                "events_set_aside": [
                    {
                        "id": e.id,
                        "seam_event_id": e.seam_event_id,
                        "event_type": e.event_type,
                        "access_method_id": e.access_method_id,
                        "attempts": e.attempts,
                        "reason": e.detail,
                        "set_aside_at": e.processed_at.isoformat() if e.processed_at else None,
                    }
                    for e in poisoned
                ],
            }
        )

    return alerts


def api_routes(console: Console) -> list[Route]:
    return [
        Route("/deliveries", _deliveries(console), methods=["GET"]),
        Route("/deliveries/{delivery_id:int}", _delivery(console), methods=["GET"]),
        Route("/flags", _flags(console), methods=["GET"]),
        Route("/alerts", _alerts(console), methods=["GET"]),
    ]


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
