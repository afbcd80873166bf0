"""Sending one status webhook: claim it, sign it, POST it, record the try.

    send_status_webhook(ledger, hooks, client, webhook_id) -> HookState | None
        None: not ours to send now (done, not due, or another worker holds it). Otherwise the
        state the try left it in. It blocks on the PMS for at most `hooks.timeout`: a task calls
        it, never the event loop.

A try that got no answer (a timeout, a refused connection) is recorded without a status code;
any answer but a 2xx is tried again, `retry_seconds` after the first try, three times longer
after each next one (at most MAX_DELAY), until `max_attempts` tries have failed: then it is
failed for good (the console's status webhooks page lists it with every try).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from svix.webhooks import Webhook

from app.ledger.outbox import HookState, HookTry
from app.ledger.store import Ledger
from app.outbound.payloads import body
from app.settings import Settings

log = logging.getLogger(__name__)

MAX_DELAY = timedelta(hours=6)
TIMEOUT_SECONDS = 10.0
# The claim outlives the POST's timeout: a second worker never sends while the first waits.
LEASE = timedelta(seconds=3 * TIMEOUT_SECONDS)
USER_AGENT = "keycourier-status-webhooks/1"


@dataclass(frozen=True)
class StatusHooks:
    """Where and how status webhooks go (STATUS_WEBHOOK_*)."""

    url: str
    signer: Webhook
    max_attempts: int
    retry_seconds: float
    timeout: float = TIMEOUT_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> StatusHooks | None:
        if settings.status_webhook_url is None or settings.status_webhook_secret is None:
            return None
        return cls(
            url=settings.status_webhook_url,
            signer=Webhook(settings.status_webhook_secret.get_secret_value()),
            max_attempts=settings.status_webhook_max_attempts,
            retry_seconds=settings.status_webhook_retry_seconds,
        )

    def retry_delay(self, failed_tries: int) -> timedelta:
        """How long after the `failed_tries`-th failure the next try is made."""
        delay = timedelta(seconds=self.retry_seconds * 3 ** (failed_tries - 1))
        return min(delay, MAX_DELAY)


def new_client() -> httpx.Client:
    """One per process: its connections are kept for the next webhook."""
    return httpx.Client(
        timeout=TIMEOUT_SECONDS, follow_redirects=False, headers={"User-Agent": USER_AGENT}
    )


def send_status_webhook(
    ledger: Ledger, hooks: StatusHooks, client: httpx.Client, webhook_id: int
) -> HookState | None:
    hook = ledger.claim_status_webhook(webhook_id, LEASE)
    if hook is None:
        return None
    text = body(hook)
    sent_at = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": hook.message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": hooks.signer.sign(hook.message_id, sent_at, text),
    }
    started = time.monotonic()
    try:
        answer = client.post(hooks.url, content=text.encode(), headers=headers,
                             timeout=hooks.timeout)  # fmt: skip
        result = HookTry(answer.status_code, _why(answer), _ms(started))
    except httpx.HTTPError as exc:
        # The exception's text may quote the URL, which may carry a token: its kind only.
        result = HookTry(None, f"no answer: {type(exc).__name__}", _ms(started))
    tries = hook.attempts + 1
    retry_at = None
    if not result.delivered and tries < hooks.max_attempts:
        retry_at = datetime.now(UTC) + hooks.retry_delay(tries)
    state = ledger.finish_status_webhook(hook, result, retry_at=retry_at)
    context = {"webhook_id": hook.id, "event_type": hook.event_type, "attempt": tries,
               "status_code": result.status_code}  # fmt: skip
    if state == HookState.DELIVERED:
        log.info("status webhook delivered", extra=context)
    elif state == HookState.PENDING:
        log.warning("status webhook not taken (%s): trying again", result.error, extra=context)
    else:
        log.error("status webhook failed for good after %d tries", tries, extra=context)
    return state


def _why(answer: httpx.Response) -> str | None:
    if 200 <= answer.status_code < 300:
        return None
    return f"HTTP {answer.status_code}"


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
