"""Putting guest deliveries on the delivery window: app/delivery/window.py's decision, applied with
the settings, the property's time zone and the clock, to ledger rows.

Front-desk messages are never scheduled: the desk needs to know at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from app.context import Schedule
from app.delivery.window import SendAt, TooLate, decide
from app.ledger.models import DeliveryStatus, utcnow
from app.ledger.store import Ledger, NewDelivery, Planned
from app.ledger.window import Rescheduled
from app.messages.kinds import CREDENTIAL_KINDS, MessageKind
from app.ports import AccessGrant, Recipient

log = logging.getLogger(__name__)


def decide_for(
    schedule: Schedule,
    grant: AccessGrant,
    workspace_id: str | None,
    *,
    credential: bool = True,
    now: datetime | None = None,
) -> SendAt | TooLate:
    """When a guest message about `grant` may go, with the configured window."""
    return decide(
        schedule.window,
        now=now or utcnow(),
        starts_at=grant.starts_at,
        ends_at=grant.ends_at,
        tz=schedule.zone(workspace_id, grant.space_ids),
        credential=credential,
    )


def on_window(new: NewDelivery, decision: SendAt | TooLate, now: datetime) -> NewDelivery:
    """`new` with its window. Too late: planned all the same (the ledger keeps the record),
    with a window already over, so no claim takes it and the sweeper closes it as expired."""
    if new.status != DeliveryStatus.PENDING:
        return new
    if isinstance(decision, TooLate):
        return replace(new, not_before=None, expires_at=decision.ends_at)
    not_before = decision.at if decision.at > now else None
    return replace(new, not_before=not_before, expires_at=decision.expires_at)


def schedule_guest_delivery(
    schedule: Schedule, new: NewDelivery, grant: AccessGrant, workspace_id: str | None
) -> NewDelivery:
    """A guest delivery just planned, put on the delivery window."""
    now = utcnow()
    decision = decide_for(
        schedule, grant, workspace_id, credential=new.kind.carries_credential, now=now
    )
    scheduled = on_window(new, decision, now)
    if scheduled.not_before is not None and isinstance(decision, SendAt):
        log.info(
            "delivery scheduled",
            extra={"kind": new.kind, "channel": new.channel, "reason": decision.reason,
                   "not_before": scheduled.not_before.isoformat()},
        )  # fmt: skip
    elif isinstance(decision, TooLate) and new.status == DeliveryStatus.PENDING:
        log.warning(
            "the guest's stay has ended: the delivery will not be sent",
            extra={"kind": new.kind, "channel": new.channel},
        )
    return scheduled


def plan_notice_on_window(
    ledger: Ledger,
    schedule: Schedule,
    workspace_id: str | None,
    ends_at: datetime | None,
    new: NewDelivery,
) -> tuple[int, bool]:
    """The ledger's plan_delivery for a guest notice that reads no grant (access_cancelled):
    quiet hours apply, in the workspace's time zone, and it ends with the stay of the delivery
    it follows (`ends_at`). Returns the delivery's id and whether it was created now."""
    now = utcnow()
    decision = decide(
        schedule.window,
        now=now,
        starts_at=None,
        ends_at=ends_at,
        tz=schedule.zone(workspace_id, ()),
        credential=False,
    )
    return ledger.plan_delivery(on_window(new, decision, now))


def plan_on_window(
    ledger: Ledger,
    schedule: Schedule,
    recipients: Sequence[Recipient],
    workspace_id: str | None,
    access_method_id: str,
    news: Sequence[NewDelivery],
    kind: str,
    fingerprint: str,
    *,
    claim_for: timedelta | None = None,
) -> Planned:
    """The ledger's plan_credential, with each guest delivery put on its grant's window first
    (processing's one hook). A delivery whose grant is unknown has no window: it goes at once."""
    grants = {r.grant.access_grant_id: r.grant for r in recipients}
    scheduled = [
        schedule_guest_delivery(schedule, new, grant, workspace_id)
        if (grant := grants.get(new.access_grant_id or "")) is not None
        else new
        for new in news
    ]
    return ledger.plan_credential(
        access_method_id, scheduled, kind, fingerprint, claim_for=claim_for
    )


def retime_grant(
    ledger: Ledger,
    schedule: Schedule,
    grant: AccessGrant,
    workspace_id: str | None,
    kinds: Sequence[str] = CREDENTIAL_KINDS,
) -> Rescheduled:
    """Seam changed the grant's times (access_grant.access_times_changed): give its unsent
    guest deliveries of `kinds` (by default the credential messages) the window of the new
    times. `grant` is the grant as read from Seam now (the event's content is not trusted).

    Returns how many were re-timed and how many expired ones were brought back.
    """
    now = utcnow()
    retimed = revived = 0
    # Lead time applies to the key itself, and quiet hours never hold it once the guest can use
    # it (app/delivery/window.py); a notice is held by quiet hours only.
    credentials = [kind for kind in kinds if MessageKind(kind).carries_credential]
    notices = [kind for kind in kinds if not MessageKind(kind).carries_credential]
    for group, credential in ((credentials, True), (notices, False)):
        if not group:
            continue
        decision = decide_for(schedule, grant, workspace_id, credential=credential, now=now)
        not_before: datetime | None = None
        expires_at: datetime | None
        if isinstance(decision, TooLate):
            expires_at = decision.ends_at
        else:
            not_before = decision.at if decision.at > now else None
            expires_at = decision.expires_at
        done = ledger.reschedule_grant(grant.access_grant_id, group, not_before, expires_at, now)
        retimed, revived = retimed + done.retimed, revived + done.revived
    log.info(
        "grant re-timed: %d unsent deliveries, %d brought back",
        retimed,
        revived,
        extra={"access_grant_id": grant.access_grant_id},
    )
    return Rescheduled(retimed, revived)
