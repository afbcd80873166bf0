"""The JSON API under /api/v1 (and, unchanged, /api), for other hotel systems: read delivery
status here; /api/v1 also writes (app/console/api_write.py) and serves its OpenAPI document
(app/console/openapi.py) at /api/v1/openapi.json, the one path without a token.

Every request presents `Authorization: Bearer <token>` with one of API_TOKENS (compared in
constant time, app/console/tokens.py); without API_TOKENS the API refuses everything. 401
otherwise, with a `WWW-Authenticate` header. Masked destinations only; never a PIN or Instant
Key URL. A token sees the deliveries and flags of its scope (ACCESS_FILE, app/console/access.py):
any other id is a 404, as if it did not exist. A search and a delivery read are written to the
audit log under `api:<token name>`.

    GET /api/deliveries?q=&status=&channel=&hotel=&page=&limit=   newest first
    GET /api/deliveries/{id}                              one delivery with its timeline
    GET /api/flags                                        open front-desk flags (card queue)
    GET /api/alerts                                       failed/undelivered deliveries,
                                                          front-desk alerts and events set aside
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.console import api_write
from app.console.access import Permission
from app.console.actions import ContextFactory, Queue
from app.console.context import Console, Endpoint, has_nul
from app.console.openapi import document
from app.console.pages import audit_search, delivery_query
from app.console.timeline import delivery_json, timeline
from app.console.tokens import ApiToken, matching
from app.ledger.models import FrontDeskFlag

OPENAPI_PATH = "/api/v1/openapi.json"


class RequireToken:
    """Every /api path needs a bearer token from API_TOKENS; the request carries which one
    (`state.api_client`) for its scope and the audit log."""

    def __init__(self, app: ASGIApp, console: Console) -> None:
        self.app = app
        self.tokens = console.tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == OPENAPI_PATH:
            await self.app(scope, receive, send)  # the document describes; it holds nothing
            return
        client = self._client(Request(scope)) if scope["type"] == "http" else None
        if scope["type"] == "http" and client is None:
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
        if client is not None:
            scope.setdefault("state", {})["api_client"] = client
        await self.app(scope, receive, send)

    def _client(self, request: Request) -> ApiToken | None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return None
        return matching(self.tokens, given.strip().encode())


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
        hotels = await console.run(console.hotels.current)
        query = delivery_query(console, request, hotels)
        found = await console.run(console.store.find_deliveries, query)
        await audit_search(console, request, query, found)
        page = query.offset // query.limit + 1
        return JSONResponse(
            {
                "deliveries": [delivery_json(d, hotels.name_of(d)) for d in found],
                "page": page,
                "next_page": page + 1 if len(found) == query.limit else None,
            }
        )

    return list_them


def _delivery(console: Console) -> Endpoint:
    async def one(request: Request) -> Response:
        delivery_id = console.row_id(request, "delivery_id")
        found = await console.run(
            console.store.delivery_timeline, delivery_id, console.scope(request)
        )
        await console.audit(console.actor(request), "view", f"delivery {delivery_id}",
                            "ok" if found else "not_found")  # fmt: skip
        if found is None:
            raise HTTPException(404, f"there is no delivery {delivery_id}")
        row, reports = found
        hotels = await console.run(console.hotels.current)
        body = delivery_json(row, hotels.name_of(row))
        body["timeline"] = [entry.as_json() for entry in timeline(row, reports)]
        return JSONResponse(body)

    return one


def _flags(console: Console) -> Endpoint:
    async def open_flags(request: Request) -> Response:
        flags = await console.run(console.store.open_flag_list, console.scope(request))
        return JSONResponse({"flags": [_flag_json(f) for f in flags]})

    return open_flags


def _alerts(console: Console) -> Endpoint:
    async def alerts(request: Request) -> Response:
        scope = console.scope(request)
        rows = await console.run(console.store.alert_deliveries, scope)
        flags = await console.run(console.store.open_flag_list, scope)
        hotels = await console.run(console.hotels.current)
        # Events set aside may be any hotel's (they are not filed under one): only someone who
        # sees every hotel is shown them.
        poisoned = await console.run(console.store.poisoned_events) if scope.everywhere else []
        return JSONResponse(
            {
                "deliveries": [delivery_json(d, hotels.name_of(d)) for d in rows],
                "flags": [_flag_json(f) for f in flags],
                "events_set_aside": [
                    {
                        "id": e.id,
                        "seam_event_id": e.seam_event_id,
                        "event_type": e.event_type,
                        "access_method_id": e.access_method_id,
                        "attempts": e.attempts,
                        # The tries EVENT_MAX_TRIES bounds: attempts less outage retries.
                        "failed_tries": e.failed_tries,
                        "workers_lost": e.lost_tries,
                        "reason": e.detail,
                        "set_aside_at": e.processed_at.isoformat() if e.processed_at else None,
                    }
                    for e in poisoned
                ],
            }
        )

    return alerts


def api_routes(console: Console) -> list[Route]:
    """Every role may read the API; what it reads is limited by the token's scope."""
    return [
        Route("/deliveries", _deliveries(console), methods=["GET"]),
        Route("/deliveries/{delivery_id:int}", _delivery(console), methods=["GET"]),
        Route("/flags", _flags(console), methods=["GET"]),
        Route("/alerts", _alerts(console), methods=["GET"]),
    ]


def api_v1_routes(console: Console, context: ContextFactory, queue: Queue) -> list[Route]:
    """/api/v1: the read routes, the write routes (each needs its permission) and the
    OpenAPI document."""
    need = console.guard
    spec = document()

    async def openapi(request: Request) -> Response:
        return JSONResponse(spec)

    return [
        *api_routes(console),
        Route(
            "/deliveries/{delivery_id:int}/resend",
            need(Permission.RESEND, api_write.resend(console, context, queue)),
            methods=["POST"],
        ),
        Route(
            "/flags/{flag_id:int}/encoders",
            need(Permission.ENCODE, api_write.encoders(console, context)),
            methods=["GET"],
        ),
        Route(
            "/flags/{flag_id:int}/encode",
            need(Permission.ENCODE, api_write.encode(console, context)),
            methods=["POST"],
        ),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
