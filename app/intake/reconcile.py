"""Catching up on webhooks keycourier never received, from Seam's events/list.

An endpoint that was down for hours (or a webhook Seam gave up on) leaves events the ledger
has not seen. Reconcile lists the access-method events since a point in time and records and
queues each one the ledger lacks; the ledger's unique event id keeps a later webhook for the
same event, or a second reconcile, from doing anything twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from app.events.kinds import SUBSCRIBED_EVENT_TYPES, Action, action_for
from app.intake.queue import Enqueuer
from app.ledger.models import EventStatus
from app.ledger.store import Ledger, NewEvent
from app.ports import SeamReader

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reconciled:
    listed: int
    recorded: int
    queued: int


def reconcile(ledger: Ledger, seam: SeamReader, enqueuer: Enqueuer, since: datetime) -> Reconciled:
    events = seam.list_events(since, SUBSCRIBED_EVENT_TYPES)
    known = ledger.seen_seam_event_ids([event.event_id for event in events])
    recorded = queued = 0
    # Oldest first, so a catch-up acts in the order things happened where it can.
    for event in reversed(events):
        if event.event_id in known:
            continue
        actionable = action_for(event.event_type) is not Action.RECORD
        result = ledger.record_event(
            NewEvent(
                svix_id=None,
                seam_event_id=event.event_id,
                event_type=event.event_type,
                workspace_id=event.workspace_id,
                access_method_id=event.access_method_id,
                access_grant_ids=event.access_grant_ids,
                occurred_at=event.occurred_at,
                source="reconcile",
                status=EventStatus.RECEIVED if actionable else EventStatus.IGNORED,
                detail=None if actionable else f"no action for {event.event_type}",
            )
        )
        if result.duplicate:
            continue  # a webhook for it arrived while we were listing
        recorded += 1
        if result.needs_enqueue:
            enqueuer.enqueue_events([result.event_id])
            ledger.mark_events_queued([result.event_id])
            queued += 1
    if recorded:
        log.warning("reconcile found %d events the webhook never delivered", recorded)
    return Reconciled(len(events), recorded, queued)
