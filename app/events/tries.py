"""A worker's try at an event: start it, process it, and count the tries that fail, to a bound.

`handle_event` is the worker's one call for an event. Before any work it commits a start on
the event (app/ledger/event_starts.py), which its heartbeat keeps while the worker lives and
the try's end clears (app/ledger/event_starts.py says how a dead worker's start is told from a
living one's). What ends a try without finishing the event:

- an outage (Seam, the ledger or the broker unreachable): retried for as long as it lasts,
  after a backoff, never set aside: giving up would lose the guest's key;
- a failure that raises (an answer keycourier cannot act on, a value the ledger refuses, a
  bug): a failed try, retried after a backoff;
- the worker dying while processing it (SIGKILL, the OOM killer, a segfault): nothing is
  recorded then, but its start stays behind with its lease running out, and the next worker
  to pick the event up counts it as a failed try before it starts again. Such an event is
  processed while no other that lost a try is in a worker: the one that kills workers dies
  alone, and the events that were beside it once are not taken down with it again.

After EVENT_MAX_TRIES failed tries of either kind the event is set aside (`poisoned`) with its
reason: an error logged (and reported), `keycourier_events_set_aside_total`, the console's
alerts; no worker takes it again. A copy of the task that arrives while a living worker still
processes the event (its start's lease runs) leaves it to that worker and counts nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from app.context import Context
from app.delivery.retry_policy import backoff_seconds
from app.errors import (
    BrokerUnavailable,
    KeycourierError,
    LedgerRefused,
    LedgerUnavailable,
    ProviderError,
    TransientProviderError,
)
from app.events.processing import FINAL, Outcome, process_event
from app.ledger.event_starts import StartKind
from app.ledger.models import Event, EventStatus, utcnow
from app.ledger.store import Ledger
from app.observability import metrics

log = logging.getLogger(__name__)

# Seam, the ledger or the broker unreachable: retried for as long as it lasts, never set aside.
OUTAGES = (TransientProviderError, LedgerUnavailable, BrokerUnavailable)
# A start left behind: its worker never finished the try (nothing of the event's content).
WORKER_LOST = "the worker stopped while processing it: killed or out of memory"
# The set-aside metric's cause for it.
WORKER_LOST_CAUSE = "worker_lost"


def handle_event(ctx: Context, event_id: int) -> Outcome:
    """The worker's one call for an event: start it, process it (sending what it plans at
    once), and on a failure record the try for the sweeper to hand on again after a backoff.

    Seam, the ledger or the broker being unreachable is retried for as long as it lasts. Any
    other failure, a worker that died while processing it included, is retried
    EVENT_MAX_TRIES times, then the event is set aside (poisoned) with its reason.
    """
    try:
        start = ctx.ledger.start_event(
            event_id, ctx.policy.lease, ctx.policy.event_max_tries, WORKER_LOST
        )
    except OUTAGES as exc:
        retry_later(ctx.ledger, event_id, exc)
        return Outcome(EventStatus.RECEIVED, "retry")
    except Exception as exc:
        return failed_try(ctx, event_id, exc)
    event = start.event
    if event is None:
        log.error("event %s is not in the ledger", event_id)
        return Outcome(EventStatus.FAILED, "not in the ledger")
    if start.kind is StartKind.DONE:
        return Outcome(EventStatus(event.status), "already done")
    if start.kind is StartKind.BUSY:
        # A copy of the task (the sweeper's, the broker's redelivery) while a living worker
        # processes the event: that worker finishes it, or its start runs out and counts.
        log.info("event in another worker's hands: left to it", extra={"event_id": event_id})
        return Outcome(EventStatus(event.status), "being processed by another worker")
    if start.kind is StartKind.SET_ASIDE:
        return _alert_set_aside(event, event.detail or WORKER_LOST, WORKER_LOST_CAUSE)
    if start.lost:
        log.warning(
            "%s: failed try %d of %d",
            WORKER_LOST,
            event.failed_tries,
            ctx.policy.event_max_tries,
            extra={"event_id": event_id, "event_type": event.event_type},
        )
    if start.kind is StartKind.WAITING:
        # Another event that was in a worker when one died is in a worker now: one of them
        # may be what kills workers, so they go one at a time. The sweeper hands it on again.
        log.info(
            "event waits: another event that was in a dying worker is being processed",
            extra={"event_id": event_id},
        )
        return Outcome(EventStatus(event.status), "waiting for another event's try to end")
    assert start.token is not None  # every start this worker holds has its token
    return _try(ctx, event, start.token)


def _try(ctx: Context, event: Event, token: str) -> Outcome:
    """Process the started event while the heartbeat keeps its start; end the start unless
    the event's own finishing write did (or the worker dies first: then the start stays)."""
    finished = False
    with ctx.leases.holding_event(token):
        try:
            outcome = _process(ctx, event)
            finished = outcome.status in FINAL
            return outcome
        finally:
            if not finished:
                _end_start(ctx.ledger, event.id, token)


def _process(ctx: Context, event: Event) -> Outcome:
    try:
        return process_event(ctx, event.id, send_now=True, event=event)
    except OUTAGES as exc:
        retry_later(ctx.ledger, event.id, exc)
        return Outcome(EventStatus.RECEIVED, "retry")
    except Exception as exc:
        return failed_try(ctx, event.id, exc)


def _end_start(ledger: Ledger, event_id: int, token: str) -> None:
    try:
        ledger.end_event_start(event_id, token)
    except KeycourierError as exc:
        # Left behind, the start runs out and counts as a failed try: one too many at worst.
        log.warning("could not end the try at an event: %s", exc, extra={"event_id": event_id})


def failed_try(ctx: Context, event_id: int, exc: Exception) -> Outcome:
    """Record a failed try that was not an outage; at EVENT_MAX_TRIES, set the event aside."""
    reason, cause = describe_failure(exc)
    failed = retry_later(ctx.ledger, event_id, KeycourierError(reason), failure=True)
    if failed < ctx.policy.event_max_tries:
        return Outcome(EventStatus.RECEIVED, "retry")
    try:
        detail = ctx.ledger.poison_event(event_id, reason)
        event = ctx.ledger.get_event(event_id)
    except LedgerUnavailable:
        return Outcome(EventStatus.RECEIVED, "retry")
    if event is None:
        return Outcome(EventStatus.FAILED, "not in the ledger")
    if detail is None:
        return Outcome(EventStatus(event.status), "already done")
    return _alert_set_aside(event, detail, cause)


def _alert_set_aside(event: Event, detail: str, cause: str) -> Outcome:
    """The alert for an event just set aside: an error logged (Sentry reports it), the set-aside
    metric; the console lists it from the ledger."""
    log.error("event set aside: %s", detail, extra={"event_id": event.id})
    metrics.event_set_aside(event.event_type, cause)
    metrics.event_processed(event.event_type, EventStatus.POISONED.value)
    return Outcome(EventStatus.POISONED, detail)


def describe_failure(exc: Exception) -> tuple[str, str]:
    """(reason, cause) for a failed try, safe to store and log: our errors carry ids and codes
    only; of anything else only its kind is kept (a database error's text quotes the row)."""
    if isinstance(exc, ProviderError):
        return str(exc), exc.provider
    if isinstance(exc, LedgerRefused):
        return str(exc), "data"
    if isinstance(exc, KeycourierError):
        return str(exc), "other"
    return f"unexpected {type(exc).__name__}", "other"


def retry_later(
    ledger: Ledger, event_id: int, exc: KeycourierError, *, failure: bool = False
) -> int:
    """Record a try that did not finish the event; the sweeper hands it on again after a
    backoff. A `failure` (not an outage) counts towards EVENT_MAX_TRIES. Returns the event's
    failed tries so far (0 if the ledger could not be reached).

    Errors reading Seam are retried for as long as Seam does not answer: without Seam nothing
    can be sent, and giving up would lose the guest's key.
    """
    log.warning("event not processed, will retry: %s", exc, extra={"event_id": event_id})
    metrics.retry_scheduled("event")
    hint = exc.retry_after if isinstance(exc, ProviderError) else None
    try:
        event = ledger.get_event(event_id)
        delay = backoff_seconds((event.attempts if event else 0) + 1, hint)
        return ledger.event_failed(
            event_id, str(exc), utcnow() + timedelta(seconds=delay), failure=failure
        )
    except LedgerUnavailable:
        return 0  # still unfinished in the ledger: the sweeper finds it when the ledger is back
