"""The ops console at /ops and its JSON API at /api.

Server-rendered pages (Starlette and Jinja2; the templates and the CSS and JS they use ship in
this package, nothing comes from a CDN) for the front desk and operations:

    /ops/sign-in             GET, POST   public: the sign-in form (signin.py)
    /ops/sign-out            POST
    /ops/                    GET         deliveries: search by guest, reservation, phone, email;
                                         filter by status and channel (pages.py)
    /ops/deliveries/{id}     GET         one delivery: its timeline of attempts and provider
                                         status reports (timeline.py)
    /ops/deliveries/{id}/resend  POST    send the guest's current credential again (actions.py)
    /ops/cards               GET         the card queue: cards to encode and cards to assign
    /ops/cards/{id}          GET         one card: Seam's encoders for it
    /ops/cards/{id}/encode   POST        encode the card on an encoder (actions.py)
    /ops/cards/{id}/assign   POST        assign a pre-registered card by its number
    /ops/cards/{id}/scan     POST        scan a pre-registered card on an encoder and assign it
    /ops/cards/{id}/check    POST        where an encode or assignment left pending stands now
    /ops/alerts              GET         deliveries that reached nobody, front-desk alerts
    /ops/templates           GET         the template preview form (preview.py)
    /ops/templates/preview   POST        a message rendered from the templates on disk
    /ops/audit               GET         the audit log
    /ops/webhooks            GET         the status webhooks sent to the PMS, with each try
                                         (admin; webhooks.py)
    /ops/static/...          GET         public: console.css, console.js

Who may sign in: OPS_USERS (`name:scrypt$...`, made by `keycourier ops-user NAME`). What each
user and API token may do (role: admin, desk, viewer) and whose guests they see (scope: Seam
workspaces and spaces, or everywhere): ACCESS_FILE (access.py). Each route below names the
permission it needs (`Console.guard`: 403 for a role without it); each ledger read takes the
request's scope, so an id outside it is a 404, as if it did not exist. The
session lives in the ledger, named by a random id in a cookie signed by OPS_SESSION_SECRET
(sessions.py): sign-out, a changed password and OPS_SESSION_IDLE_MINUTES revoke it. A sign-in
takes an attempt slot per name and per client address in the ledger before its password is
checked (the lockout), and waits for one of a few password checks (throttle.py) or is refused
with 503 (signin.py). Every POST carries the session's CSRF token and no NUL; a query string
with a NUL, an id past an Integer key or a page past MAX_PAGE is a 4xx. Every action (sign-in
and its failures, sign-out, resend, encode, assign, scan, preview) is written to the audit log
(a card's number only by its last four characters), and so is every search for a guest and
every delivery looked at, here and through the API. The API (api.py) takes bearer tokens from
API_TOKENS (tokens.py); /api/v1 is the same API, plus resend and card encoding for a PMS
(api_write.py) and its OpenAPI document (openapi.py); /api stays as it was.

Nothing here blocks the event loop: the ledger, Seam and the providers are called in a thread
(`Console.run`).

May import: delivery (resend, card encoding, destination hashes), ledger, messages (the
template preview), observability, context (what resend and encode work with), and the
foundations (settings, errors, ports).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from app.console import actions, pages, preview, signin, webhooks
from app.console.access import Permission
from app.console.api import RequireToken, api_error, api_routes, api_v1_routes
from app.console.context import Console, RequireSignIn
from app.context import Context
from app.ledger.store import Ledger
from app.ports import Queued
from app.settings import Settings

READ, RESEND, ENCODE = Permission.READ, Permission.RESEND, Permission.ENCODE
TEMPLATES, AUDIT, WEBHOOKS = Permission.TEMPLATES, Permission.AUDIT, Permission.WEBHOOKS
ERROR_TITLES = {400: "That request is not right", 403: "Not allowed", 404: "Not found"}


def console_routes(
    settings: Settings,
    ledger: Ledger,
    context: Callable[[], Context],
    queue: Callable[[Sequence[Queued]], None],
) -> list[BaseRoute]:
    """The /ops and /api mounts. `context` builds (once) what resend and encode need;
    `queue` hands a resend's new delivery to the workers (a blocking call: run in a thread)."""
    console = Console(settings, ledger)
    need = console.guard
    ops = [
        Route("/sign-in", signin.sign_in_page(console), methods=["GET"]),
        Route("/sign-in", signin.sign_in_post(console), methods=["POST"]),
        Route("/sign-out", signin.sign_out(console), methods=["POST"]),
        Route("/", need(READ, pages.deliveries(console)), methods=["GET"]),
        Route(
            "/deliveries/{delivery_id:int}", need(READ, pages.delivery(console)), methods=["GET"]
        ),
        Route(
            "/deliveries/{delivery_id:int}/resend",
            need(RESEND, actions.resend(console, context, queue)),
            methods=["POST"],
        ),
        Route("/cards", need(READ, pages.cards(console)), methods=["GET"]),
        Route("/cards/{flag_id:int}", need(READ, actions.card(console, context)), methods=["GET"]),
        Route(
            "/cards/{flag_id:int}/encode",
            need(ENCODE, actions.encode(console, context)),
            methods=["POST"],
        ),
        Route(
            "/cards/{flag_id:int}/assign",
            need(ENCODE, actions.assign(console, context)),
            methods=["POST"],
        ),
        Route(
            "/cards/{flag_id:int}/scan",
            need(ENCODE, actions.scan(console, context)),
            methods=["POST"],
        ),
        Route(
            "/cards/{flag_id:int}/check",
            need(ENCODE, actions.check(console, context)),
            methods=["POST"],
        ),
        Route("/alerts", need(READ, pages.alerts(console)), methods=["GET"]),
        Route("/templates", need(TEMPLATES, preview.preview_form(console)), methods=["GET"]),
        Route(
            "/templates/preview", need(TEMPLATES, preview.preview_post(console)), methods=["POST"]
        ),
        Route("/audit", need(AUDIT, pages.audit(console)), methods=["GET"]),
        Route("/webhooks", need(WEBHOOKS, webhooks.page(console)), methods=["GET"]),
        Mount("/static", app=StaticFiles(packages=[("app.console", "static")]), name="static"),
    ]

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return console.render(
            request,
            "error.html",
            {
                "status_code": exc.status_code,
                "title": ERROR_TITLES.get(exc.status_code, "Something went wrong"),
                "detail": exc.detail,
            },
            status_code=exc.status_code,
        )

    return [
        Mount(
            "/ops",
            routes=ops,
            middleware=[
                Middleware(RequireSignIn, console=console),
                Middleware(ExceptionMiddleware, handlers={HTTPException: page_error}),
            ],
        ),
        # Before /api, which would otherwise take /api/v1/... as its own (and 404 it).
        Mount(
            "/api/v1",
            routes=api_v1_routes(console, context, queue),
            middleware=[
                Middleware(RequireToken, console=console),
                Middleware(ExceptionMiddleware, handlers={HTTPException: api_error}),
            ],
        ),
        Mount(
            "/api",
            routes=api_routes(console),
            middleware=[
                Middleware(RequireToken, console=console),
                Middleware(ExceptionMiddleware, handlers={HTTPException: api_error}),
            ],
        ),
    ]
