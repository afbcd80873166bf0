"""POST /webhooks/twilio/status: Twilio's SMS status callbacks, verified, recorded, acted on.

Twilio signs each callback (`X-Twilio-Signature`: an HMAC of the URL it called and the form
parameters, keyed with TWILIO_AUTH_TOKEN); twilio's own `RequestValidator` checks it. Behind a
TLS-terminating proxy the URL this process sees is not the one Twilio called, so the signature
is checked against each URL the request may have been sent to, and accepted if one matches:
1. PUBLIC_BASE_URL + the path and query (the URL keycourier gave Twilio: robust whatever the
   proxy does or does not forward),
2. the URL from `X-Forwarded-Proto` / `X-Forwarded-Host` (first values), when present,
3. the URL as this process received it.
Trying several URLs weakens nothing: each is checked against an HMAC only the auth token can
make, over the same parameters.

Answers: 403 unsigned, forged or not configured (no TWILIO_AUTH_TOKEN); 400 signed but without
MessageSid/MessageStatus; 503 the ledger is unreachable; 200 otherwise, including statuses
keycourier does not track and messages it does not know (logged, not stored). Ledger writes and
the broker publish are blocking: they run in the thread pool, off the event loop.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import JSONResponse
from twilio.request_validator import RequestValidator, get_signature_algorithm

from app.delivery import provider_status as delivery_status
from app.delivery.provider_status import TWILIO
from app.errors import LedgerUnavailable
from app.intake.queue import Enqueuer
from app.ledger.provider_events import ProviderReport, ReportOutcome
from app.ledger.store import Ledger
from app.observability import metrics
from app.web.webhooks.body import read_or_refuse
from app.web.webhooks.handoff import hand_on_fallback

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


class TwilioStatusEndpoint:
    def __init__(
        self,
        auth_token: str | None,
        public_base_url: str | None,
        ledger: Ledger,
        enqueuer: Enqueuer,
    ) -> None:
        self._validator = RequestValidator(auth_token) if auth_token else None
        self._public_base_url = public_base_url
        self._ledger = ledger
        self._enqueuer = enqueuer

    async def handle(self, request: Request) -> JSONResponse:
        body = await read_or_refuse(request, MAX_BODY_BYTES, _answer)
        if isinstance(body, JSONResponse):
            return body
        if self._validator is None:
            log.error("twilio status callback refused: TWILIO_AUTH_TOKEN is not set")
            return _answer(403, "not_configured")
        try:
            params = ImmutableMultiDict(
                parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
            )
        except UnicodeDecodeError:
            return _answer(403, "invalid_signature")
        if not self._signed(request, params):
            log.warning("twilio status callback refused: signature missing or wrong")
            return _answer(403, "invalid_signature")

        sid, status = params.get("MessageSid"), params.get("MessageStatus")
        if not sid or not status:
            return _answer(400, "malformed")
        if not delivery_status.is_tracked(TWILIO, status):
            return _answer(200, "ignored", status)
        report = ProviderReport(
            provider=TWILIO,
            # Twilio has no event id: one report per message and status.
            provider_event_id=f"{sid}:{status}",
            status=status,
            delivery_id=delivery_status.delivery_id_from_reference(request.query_params.get("ref")),
            provider_message_id=sid,
            error_code=params.get("ErrorCode") or None,
        )
        try:
            reported = await run_in_threadpool(delivery_status.record, self._ledger, report)
        except LedgerUnavailable as exc:
            log.error("twilio status callback lost (503): %s", exc)
            return _answer(503, "unavailable", status)
        if reported.outcome is ReportOutcome.UNDELIVERED and reported.delivery_id is not None:
            await hand_on_fallback(self._enqueuer, reported.delivery_id)
        return _answer(200, reported.outcome.value, status)

    def _signed(self, request: Request, params: ImmutableMultiDict[str, str]) -> bool:
        assert self._validator is not None
        signature = request.headers.get("x-twilio-signature")
        if not signature:
            return False
        algorithm = get_signature_algorithm(
            request.headers.get("x-twilio-webhooks-signature-settings")
        )
        return any(
            self._validator.validate(url, params, signature, algorithm)
            for url in candidate_urls(request, self._public_base_url)
        )


def candidate_urls(request: Request, public_base_url: str | None) -> list[str]:
    """The URLs Twilio may have called to reach this request (see the module docstring)."""
    path = request.url.path
    raw_query = request.scope.get("query_string", b"").decode("latin-1")
    tail = f"{path}?{raw_query}" if raw_query else path
    urls = []
    if public_base_url:
        urls.append(f"{public_base_url}{tail}")
    proto = _first(request.headers.get("x-forwarded-proto"))
    host = _first(request.headers.get("x-forwarded-host")) or request.headers.get("host")
    if proto and host:
        urls.append(f"{proto}://{host}{tail}")
    urls.append(str(request.url))
    return list(dict.fromkeys(urls))


def _first(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(",", 1)[0].strip() or None


def _answer(code: int, outcome: str, status: str | None = None) -> JSONResponse:
    label = delivery_status.status_label(TWILIO, status) if status else "other"
    metrics.provider_event_answered(TWILIO, label, outcome)
    return JSONResponse({"outcome": outcome}, status_code=code)
