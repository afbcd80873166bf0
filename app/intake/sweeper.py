"""The sweeper: the ledger, not the broker, is the record of work to do.

Run periodically (Celery beat; embedded in single-machine mode), it hands back to the broker
whatever the ledger says is unfinished but nobody is working on: events recorded but never
processed (a broker restarted without persistence forgets its queue; an event a living worker
has started is left to it, one whose worker died is handed on once its start's lease ran out,
and the next worker counts that try: app/ledger/event_starts.py), deliveries due for a
retry whose message was lost, deliveries held by a worker that died (its lease expired: the
heartbeat of a living worker renews it; these are handed on at once), and failed or
undelivered deliveries whose follow-up (fallback, front-desk alert) is still owed. It also
releases scheduled deliveries once due (the delivery window, app/delivery/window.py: they are
pending rows with a `not_before`) and closes as `expired` those whose stay is over.
Handing the same work on twice is harmless: processing is idempotent and sends are claimed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from app.intake.queue import Enqueuer, hand_on
from app.ledger.models import utcnow
from app.ledger.store import Ledger
from app.observability import metrics
from app.ports import Queued, Work
from app.settings import Settings

log = logging.getLogger(__name__)

BATCH = 500


def patience_for(settings: Settings) -> timedelta:
    """How long unfinished work may wait before the sweeper re-queues it: two sweeps."""
    return timedelta(seconds=2 * settings.sweep_interval_seconds)


@dataclass(frozen=True)
class Swept:
    events: int
    deliveries: int
    recovered: int
    undelivered: int = 0
    # Closed unsent: the guest's stay ended first (the delivery window).
    expired: int = 0


def sweep(ledger: Ledger, enqueuer: Enqueuer, *, patience: timedelta) -> Swept:
    """Re-queue work that has waited longer than `patience` without a worker finishing it."""
    now = utcnow()
    waited_since = now - patience

    recovered = ledger.recover_expired_leases(now)
    if recovered:
        log.warning("took back %d deliveries from workers that stopped", len(recovered))
        # At once: a dead worker's send is picked up within a lease and a sweep.
        hand_on(enqueuer, ledger, [Queued(Work.SEND_DELIVERY, i) for i in recovered])

    expired = ledger.expire_overdue(now)
    for closed in expired:
        metrics.delivery_finished(closed.channel, "expired")
    if expired:
        log.warning("%d deliveries expired unsent: the guest's stay ended first", len(expired))

    event_ids = ledger.stale_event_ids(now, waited_since, BATCH)
    enqueuer.enqueue_events(event_ids)
    ledger.mark_events_queued(event_ids)

    delivery_ids = ledger.due_delivery_ids(now, waited_since, BATCH)
    hand_on(enqueuer, ledger, [Queued(Work.SEND_DELIVERY, i) for i in delivery_ids])

    undelivered_ids = ledger.follow_ups_due_ids(now, waited_since, BATCH)
    hand_on(enqueuer, ledger, [Queued(Work.AFTER_UNDELIVERED, i) for i in undelivered_ids])

    if event_ids or delivery_ids or undelivered_ids:
        log.warning(
            "re-queued %d events, %d deliveries and %d follow-ups of failures",
            len(event_ids),
            len(delivery_ids),
            len(undelivered_ids),
        )
    return Swept(
        len(event_ids), len(delivery_ids), len(recovered), len(undelivered_ids), len(expired)
    )
