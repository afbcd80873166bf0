"""Catching up on webhooks keycourier never received, from Seam's events/list.

An endpoint that was down for hours (or a webhook Seam gave up on) leaves events the ledger
has not seen. Reconcile lists the access-method events since a point in time and records and
queues each one the ledger lacks; the ledger's unique event id keeps a later webhook for the
same event, or a second reconcile, from doing anything twice.

With several workspaces (SEAM_WORKSPACES_FILE) each is listed with its own key
(`reconcile_all`); an event is filed under the workspace it was listed from when Seam's
summary names none, so the worker reads it with the same key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from app.errors import KeycourierError
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


def reconcile_all(
    ledger: Ledger,
    readers: Iterable[tuple[str | None, SeamReader]],
    enqueuer: Enqueuer,
    since: datetime,
) -> Reconciled:
    """Reconcile every workspace, each read with its own key: (workspace id, reader) pairs,
    None for the SEAM_API_KEY one. A workspace Seam does not answer for is logged and the
    others are still reconciled; its error is raised after them."""
    listed = recorded = queued = 0
    failed: KeycourierError | None = None
    pairs = list(readers)
    for workspace_id, seam in pairs:
        try:
            found = reconcile(ledger, seam, enqueuer, since, workspace_id)
        except KeycourierError as exc:
            if len(pairs) > 1:  # one workspace's failure; alone, the raise says it all
                log.error("reconcile of workspace %s failed: %s", workspace_id or "(default)", exc)
            failed = failed or exc
            continue
        listed, recorded, queued = (
            listed + found.listed,
            recorded + found.recorded,
            queued + found.queued,
        )
    if failed is not None:
        raise failed
    return Reconciled(listed, recorded, queued)


def reconcile(
    ledger: Ledger,
    seam: SeamReader,
    enqueuer: Enqueuer,
    since: datetime,
    workspace_id: str | None = None,
) -> Reconciled:
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
                workspace_id=event.workspace_id or workspace_id,
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
