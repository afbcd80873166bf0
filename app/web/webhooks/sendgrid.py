"""POST /webhooks/sendgrid/events: SendGrid's Event Webhook, verified, de-duplicated, acted on.

SendGrid signs each batch with ECDSA (P-256, SHA-256) over `timestamp + body`, in the headers
`X-Twilio-Email-Event-Webhook-Signature` (base64) and `-Timestamp` (Unix seconds); the sendgrid
library's `EventWebhook` checks it against SENDGRID_WEBHOOK_PUBLIC_KEY. A batch signed longer
ago than SENDGRID_WEBHOOK_TOLERANCE_SECONDS (either way) is refused: a replay.

SendGrid often delivers an event more than once: `sg_event_id` is the ledger's unique key, so
a duplicate changes nothing. Recorded: delivered, deferred, bounce, dropped (the others, such
as processed, open or click, are answered and dropped). Each event finds its delivery by the
opaque reference the mail carries in `custom_args` (`keycourier_ref`: `kc-<delivery id>`).

Answers: 403 unsigned, forged, stale or not configured (no public key); 400 signed but not a
JSON array; 503 the ledger is unreachable (SendGrid retries the batch; what was recorded is
then a duplicate); 200 otherwise.
"""

from __future__ import annotations

import binascii
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from app.delivery import provider_status as delivery_status
from app.delivery.provider_status import SENDGRID
from app.errors import LedgerUnavailable
from app.intake.queue import Enqueuer
from app.ledger.provider_events import ProviderReport, Reported, ReportOutcome
from app.ledger.store import Ledger
from app.observability import metrics
from app.ports import EMAIL_REFERENCE_ARG
from app.web.webhooks.body import read_or_refuse
from app.web.webhooks.handoff import hand_on_fallback

log = logging.getLogger(__name__)

# SendGrid posts batches of up to a few thousand events.
MAX_BODY_BYTES = 4 * 1024 * 1024
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"


class SendGridEventsEndpoint:
    def __init__(
        self,
        public_key: str | None,
        tolerance_seconds: float,
        ledger: Ledger,
        enqueuer: Enqueuer,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._webhook = _verifier(public_key) if public_key else None
        self._tolerance = tolerance_seconds
        self._ledger = ledger
        self._enqueuer = enqueuer
        self._clock = clock

    async def handle(self, request: Request) -> JSONResponse:
        body = await read_or_refuse(request, MAX_BODY_BYTES, _answer)
        if isinstance(body, JSONResponse):
            return body
        if self._webhook is None:
            log.error("sendgrid events refused: SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
            return _answer(403, "not_configured")
        signature = request.headers.get(SIGNATURE_HEADER)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        if not signature or not timestamp or not self._verified(body, signature, timestamp):
            log.warning("sendgrid events refused: signature missing or wrong")
            return _answer(403, "invalid_signature")
        if not timestamp.isdigit() or abs(self._clock() - int(timestamp)) > self._tolerance:
            log.warning("sendgrid events refused: signed too long ago (a replay?)")
            return _answer(403, "stale")
        try:
            events = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
            events = None
        if not isinstance(events, list):
            return _answer(400, "malformed")

        reports = []
        for event in events:
            report = _report(event)
            if report is None:
                kind = event.get("event") if isinstance(event, dict) else None
                status = kind if isinstance(kind, str) else None
                metrics.provider_event_answered(
                    SENDGRID, delivery_status.status_label(SENDGRID, status or ""), "ignored"
                )
                continue
            reports.append(report)
        try:
            outcomes = await run_in_threadpool(_record_all, self._ledger, reports)
        except LedgerUnavailable as exc:
            log.error("sendgrid events deferred (503): %s", exc)
            return _answer(503, "unavailable")
        counts: dict[str, int] = {}
        for report, reported in zip(reports, outcomes, strict=True):
            metrics.provider_event_answered(SENDGRID, report.status, reported.outcome.value)
            counts[reported.outcome.value] = counts.get(reported.outcome.value, 0) + 1
            if reported.outcome is ReportOutcome.UNDELIVERED and reported.delivery_id is not None:
                await hand_on_fallback(self._enqueuer, reported.delivery_id)
        return JSONResponse({"outcome": "ok", "events": counts})

    def _verified(self, body: bytes, signature: str, timestamp: str) -> bool:
        assert self._webhook is not None
        try:
            return bool(self._webhook.verify_signature(body.decode(), signature, timestamp))
        except (InvalidSignature, ValueError, binascii.Error, UnicodeDecodeError):
            return False


def _verifier(public_key: str) -> Any:
    """SendGrid's `EventWebhook` for this key. Imported here: the sendgrid package (~10 MB
    with its mail helpers) loads only in a web process configured to take SendGrid's events,
    at start-up, not on the event loop."""
    from sendgrid.helpers.eventwebhook import EventWebhook

    return EventWebhook(public_key)


def _record_all(ledger: Ledger, reports: list[ProviderReport]) -> list[Reported]:
    return [delivery_status.record(ledger, report) for report in reports]


def _report(event: Any) -> ProviderReport | None:
    """The ledger's view of one tracked event; None for what keycourier does not record."""
    if not isinstance(event, dict):
        return None
    kind, event_id = event.get("event"), event.get("sg_event_id")
    if not isinstance(kind, str) or not delivery_status.is_tracked(SENDGRID, kind):
        return None
    if not isinstance(event_id, str) or not event_id or len(event_id) > 200:
        return None
    message_id = event.get("sg_message_id")
    # sg_message_id is the X-Message-Id SendGrid answered the send with, plus a suffix.
    message_id = message_id.split(".", 1)[0] if isinstance(message_id, str) else None
    # A bounce's SMTP status ("5.1.1"); a dropped mail's reason is free text: not kept.
    code = event.get("status") if kind == "bounce" else None
    stamp = event.get("timestamp")
    occurred_at = (
        datetime.fromtimestamp(stamp, UTC) if isinstance(stamp, int) and 0 < stamp < 2**33 else None
    )
    return ProviderReport(
        provider=SENDGRID,
        provider_event_id=event_id,
        status=kind,
        delivery_id=delivery_status.delivery_id_from_reference(event.get(EMAIL_REFERENCE_ARG)),
        provider_message_id=message_id or None,
        error_code=code[:100] if isinstance(code, str) and code else None,
        occurred_at=occurred_at,
    )


def _answer(code: int, outcome: str) -> JSONResponse:
    metrics.provider_event_answered(SENDGRID, "other", outcome)
    return JSONResponse({"outcome": outcome}, status_code=code)
