"""Every Prometheus metric keycourier exports, and the calls that record them.

Labels carry only bounded, non-personal values: event types keycourier knows (anything else is
"other"), channels, statuses, provider and operation names. Never an id, a phone number, an
address or a credential. Which event types keycourier knows is the events package's to say
(app/events/kinds.py calls `know_event_types`): this module imports nothing of the domain.

The web process serves these at `/metrics`; a worker serves its own on WORKER_METRICS_PORT
(it is another process, with its own counters: see README "Metrics").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TypeVar

from prometheus_client import Counter, Histogram

T = TypeVar("T")

WEBHOOKS = Counter(
    "keycourier_webhooks_total",
    "Seam webhooks answered, by event type and outcome (received, duplicate, ignored, "
    "rejected, invalid_signature, too_large, unavailable).",
    ["event_type", "outcome"],
)
EVENTS_PROCESSED = Counter(
    "keycourier_events_processed_total",
    "Events a worker finished, by event type and status (processed, ignored, failed).",
    ["event_type", "status"],
)
EVENTS_SET_ASIDE = Counter(
    "keycourier_events_set_aside_total",
    "Events set aside (poisoned) after EVENT_MAX_TRIES failed tries, by event type and what "
    "failed (seam: Seam answered something keycourier cannot act on; data: the ledger refused "
    "a value; worker_lost: the worker processing it stopped, killed or out of memory; other).",
    ["event_type", "cause"],
)
DELIVERIES = Counter(
    "keycourier_deliveries_total",
    "Deliveries that reached an outcome, by channel and status (sent, dry_run, failed, "
    "unknown, skipped, superseded, expired).",
    ["channel", "status"],
)
RETRIES = Counter(
    "keycourier_retries_total",
    "Retries scheduled after a transient failure, by what is retried (event, sms, email, "
    "whatsapp).",
    ["what"],
)
PROVIDER_LATENCY = Histogram(
    "keycourier_provider_request_seconds",
    "Time of each call to Seam, Twilio or SendGrid, by provider, operation and result.",
    ["provider", "operation", "result"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_LAG = Histogram(
    "keycourier_queue_lag_seconds",
    "From the webhook's arrival to the provider accepting the message, for first sends.",
    ["channel"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
PROVIDER_EVENTS = Counter(
    "keycourier_provider_events_total",
    "Provider status reports (Twilio status callbacks, SendGrid events) answered, by provider, "
    "status (the provider's word, 'other' when keycourier does not track it) and outcome "
    "(advanced, undelivered, recorded, duplicate, unknown_message, ignored, invalid_signature, "
    "stale, malformed, not_configured, too_large, unavailable).",
    ["provider", "status", "outcome"],
)

# When the event being processed in this task arrived; None outside event processing (a
# retried delivery's lag is a retry's, counted by RETRIES, not queue lag).
_event_received_at: ContextVar[datetime | None] = ContextVar("event_received_at", default=None)


# The event types that get their own label; set by app/events/kinds.py when it is imported.
_KNOWN_EVENT_TYPES: set[str] = set()


def know_event_types(event_types: Iterable[str]) -> None:
    """Give these event types their own label (every other type is counted as "other")."""
    _KNOWN_EVENT_TYPES.update(event_types)


def event_type_label(event_type: str | None) -> str:
    return event_type if event_type and event_type in _KNOWN_EVENT_TYPES else "other"


def webhook_answered(event_type: str | None, outcome: str) -> None:
    WEBHOOKS.labels(event_type_label(event_type), outcome).inc()


def event_processed(event_type: str | None, status: str) -> None:
    EVENTS_PROCESSED.labels(event_type_label(event_type), status).inc()


def event_set_aside(event_type: str | None, cause: str) -> None:
    EVENTS_SET_ASIDE.labels(event_type_label(event_type), cause).inc()


def processing_event(received_at: datetime) -> None:
    """The deliveries sent from here on in this task were planned by an event that arrived then."""
    _event_received_at.set(received_at)


def task_finished() -> None:
    _event_received_at.set(None)


def delivery_finished(channel: str, status: str) -> None:
    DELIVERIES.labels(channel, status).inc()
    received_at = _event_received_at.get()
    if status == "sent" and received_at is not None:
        QUEUE_LAG.labels(channel).observe((datetime.now(UTC) - received_at).total_seconds())


def provider_event_answered(provider: str, status: str, outcome: str) -> None:
    """`status` must already be one of the provider's words keycourier tracks, or "other"."""
    PROVIDER_EVENTS.labels(provider, status, outcome).inc()


def retry_scheduled(what: str) -> None:
    RETRIES.labels(what).inc()


@contextmanager
def provider_call(provider: str, operation: str) -> Iterator[None]:
    started = time.perf_counter()
    result = "error"
    try:
        yield
        result = "ok"
    finally:
        PROVIDER_LATENCY.labels(provider, operation, result).observe(time.perf_counter() - started)


def timed(provider: str, operation: str, call: Callable[[], T]) -> T:
    with provider_call(provider, operation):
        return call()
