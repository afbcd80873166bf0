"""The web process: `create_app(settings)` wires routes to the ledger and the broker.

With REDIS_URL the web process pushes to Redis itself. The embedded broker is published to
through the workers' Celery app, which `keycourier serve` (app/ops/cli.py) builds and passes in
as the enqueuer: nothing here imports workers.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.console import console_routes
from app.context import Context
from app.errors import BrokerUnavailable, ConfigError, LedgerUnavailable
from app.guest import guest_routes
from app.intake.ingest import EventWriter, IngestWriter
from app.intake.ingest_async import AsyncIngestWriter
from app.intake.queue import Enqueuer, RedisEnqueuer, hand_on
from app.ledger.store import Ledger
from app.messages.live import LiveTemplates
from app.settings import TWILIO_STATUS_PATH, Settings
from app.web.loop_watch import LoopWatch
from app.web.webhooks.seam import SeamWebhookEndpoint
from app.web.webhooks.sendgrid import SendGridEventsEndpoint
from app.web.webhooks.twilio import TwilioStatusEndpoint
from app.web.webhooks.workspaces import PATH as WORKSPACE_PATH
from app.web.webhooks.workspaces import WorkspaceWebhooks


def make_writer(settings: Settings, ledger: Ledger, enqueuer: Enqueuer) -> EventWriter:
    """PostgreSQL and Redis: written on the event loop with async drivers. Else a thread."""
    if settings.redis_url is not None and settings.database_url.startswith("postgresql"):
        return AsyncIngestWriter(settings.database_url, settings.redis_url)
    return IngestWriter(ledger, enqueuer)


def create_app(
    settings: Settings,
    *,
    ledger: Ledger | None = None,
    enqueuer: Enqueuer | None = None,
    templates: LiveTemplates | None = None,
) -> Starlette:
    settings.require("SEAM_WEBHOOK_SECRET")
    if ledger is None:
        ledger = Ledger.from_url(settings.database_url, status_webhooks=settings.status_webhooks)
    if enqueuer is None:
        if settings.redis_url is None:
            raise ConfigError(
                "REDIS_URL is not set: the embedded broker's enqueuer comes from `keycourier serve`"
            )
        enqueuer = RedisEnqueuer(settings.redis_url)
    if templates is None:
        templates = LiveTemplates.from_settings(settings)
    live_templates = templates
    writer = make_writer(settings, ledger, enqueuer)
    seam_routes = []
    if settings.seam_webhook_secret is not None:
        single = SeamWebhookEndpoint(settings.seam_webhook_secret.get_secret_value(), writer)
        seam_routes.append(Route("/webhooks/seam", single.handle, methods=["POST"]))
    if settings.seam_workspaces:
        per_workspace = WorkspaceWebhooks(settings.seam_workspaces, writer)
        seam_routes.append(Route(WORKSPACE_PATH, per_workspace.handle, methods=["POST"]))
    twilio_status = TwilioStatusEndpoint(
        settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None,
        settings.public_base_url,
        ledger,
        enqueuer,
    )
    sendgrid_events = SendGridEventsEndpoint(
        settings.sendgrid_webhook_public_key,
        settings.sendgrid_webhook_tolerance_seconds,
        ledger,
        enqueuer,
    )

    loop_watch = LoopWatch()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Everything allocated at start-up lives for the whole process: keep it out of the
        # collector's way, and collect young objects less eagerly, so a full collection does
        # not stall the loop mid-burst.
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        if settings.slow_callback_ms is not None:
            # asyncio's debug mode logs each callback that held the loop longer, naming it.
            # The benchmark measures "nothing blocks the loop" this way.
            loop = asyncio.get_running_loop()
            loop.set_debug(True)
            loop.slow_callback_duration = settings.slow_callback_ms / 1000
        loop_watch.start()
        writer.start()
        yield
        await writer.stop()
        await loop_watch.stop()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "event_loop_lag": loop_watch.report()})

    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        for name, ping, unavailable in (
            ("database", ledger.ping, LedgerUnavailable),
            ("broker", enqueuer.ping, BrokerUnavailable),
        ):
            try:
                await run_in_threadpool(ping)
                checks[name] = "ok"
            except unavailable:
                checks[name] = "unavailable"
        ready = all(value == "ok" for value in checks.values())
        # Templates that fail the check do not stop webhooks from being taken in (the last
        # good version keeps serving): "degraded" is a 200, for people and alerts to read.
        template_status = await run_in_threadpool(live_templates.status)
        status = "ready" if template_status["status"] == "ok" else "degraded"
        return JSONResponse(
            {"status": status if ready else "not ready", **checks, "templates": template_status},
            status_code=200 if ready else 503,
        )

    metrics_token = settings.metrics_token
    # Built on first use, and shared: the console's and the guest link's resends need it.
    context = console_context(settings, ledger, templates)
    queue = partial(hand_on, enqueuer, ledger)

    async def metrics(request: Request) -> Response:
        if metrics_token is not None:
            given = request.headers.get("authorization", "").encode()
            wanted = f"Bearer {metrics_token.get_secret_value()}".encode()
            if not hmac.compare_digest(given, wanted):
                return Response("metrics need METRICS_TOKEN as a bearer token\n", status_code=401)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        lifespan=lifespan,
        routes=[
            *seam_routes,
            Route(TWILIO_STATUS_PATH, twilio_status.handle, methods=["POST"]),
            Route("/webhooks/sendgrid/events", sendgrid_events.handle, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            *console_routes(settings, ledger, context, queue),
            *guest_routes(settings, ledger, context, queue, templates),
        ],
    )


def console_context(
    settings: Settings, ledger: Ledger, templates: LiveTemplates
) -> Callable[[], Context]:
    """What the console's resend and encode need (Seam, the senders), built on first use:
    the web process starts without SEAM_API_KEY, and only those two actions need it. The
    SDKs load then, not at start."""
    built: list[Context] = []
    lock = threading.Lock()

    def context() -> Context:
        with lock:
            if not built:
                made = Context.from_settings(settings, ledger)
                built.append(replace(made, templates=templates))
            return built[0]

    return context
