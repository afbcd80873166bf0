"""Events about an access grant as a whole: what Seam could not create, a door lost, the grant
deleted. Each re-reads the grant from Seam before acting (events come late, twice, out of
order) and never messages the guest: these are the front desk's business.

- `access_grant.could_not_create_requested_access_methods`: while the grant still carries
  Seam's `cannot_create_requested_access_methods` error and its stay has not ended, the front
  desk is emailed (front_desk_grant_incomplete: the guest, the stay, Seam's reason, what was
  not created and the devices left out), once per grant and event.
- `access_grant.access_to_door_lost`: while the grant exists and its stay has not ended, the
  front desk is emailed (front_desk_door_lost), once per grant and event.
- `access_grant.deleted`: once Seam no longer has the grant, its messages not sent yet are
  superseded (a guest notice that their key was cancelled is kept) and its card flags closed.

The two emails are filed under access_method_id "" (they are about no single access method)
with the grant's id; compose writes them from the grant as Seam has it then
(app/delivery/grant_alerts.py), so a problem solved in between is not reported.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace

from app.context import Context
from app.delivery.planned import About, Destination, new_delivery
from app.errors import NotFound
from app.ledger.models import Event, utcnow
from app.ledger.store import NewDelivery
from app.messages.kinds import MessageKind
from app.ports import AccessGrant, Guest

log = logging.getLogger(__name__)

CANNOT_CREATE = "cannot_create_requested_access_methods"


def alert_about_grants(ctx: Context, event: Event, kind: MessageKind) -> tuple[str, list[int]]:
    """Plan the `kind` front-desk email for each of the event's grants that still calls for
    it; returns what happened and the deliveries planned now (to send)."""
    notes: list[str] = []
    planned: list[int] = []
    for grant_id in event.access_grant_ids:
        try:
            grant = ctx.seam.get_access_grant(grant_id)
        except NotFound:
            notes.append(f"access grant {grant_id} no longer exists")
            continue
        why_not = _nothing_to_tell(grant, kind)
        if why_not is not None:
            notes.append(f"access grant {grant_id}: {why_not}")
            continue
        delivery_id, created = ctx.ledger.plan_delivery(
            _front_desk_delivery(ctx, event, grant, kind, _guest(ctx, grant))
        )
        notes.append(
            f"front-desk {kind} {delivery_id} {'planned' if created else 'already planned'}"
        )
        if created:
            planned.append(delivery_id)
    return "; ".join(notes) or "no access grant named", planned


def grant_deleted(ctx: Context, event: Event) -> str:
    """Supersede the messages not sent yet and close the card flags of each of the event's
    grants that Seam no longer has."""
    notes = []
    for grant_id in event.access_grant_ids:
        try:
            ctx.seam.get_access_grant(grant_id)
        except NotFound:
            pass
        else:
            # A late or replayed event: Seam still has the grant, so nothing ends.
            notes.append(f"access grant {grant_id} is still in Seam: nothing cancelled")
            continue
        cancelled = ctx.ledger.cancel_grant_pending(
            grant_id, "access grant deleted", keep=(MessageKind.ACCESS_CANCELLED,)
        )
        closed = ctx.ledger.close_grant_flags(grant_id)
        notes.append(
            f"access grant {grant_id} deleted: cancelled {cancelled} pending deliveries, "
            f"closed {closed} card flag(s)"
        )
    return "; ".join(notes) or "no access grant named"


def _nothing_to_tell(grant: AccessGrant, kind: MessageKind) -> str | None:
    if grant.ends_at is not None and grant.ends_at <= utcnow():
        return "the stay is over"
    if kind == MessageKind.FRONT_DESK_GRANT_INCOMPLETE and CANNOT_CREATE not in grant.errors:
        return "Seam has created what was requested since"
    return None


def _guest(ctx: Context, grant: AccessGrant) -> Guest | None:
    if grant.user_identity_id is None:
        return None
    try:
        return ctx.seam.get_guest(grant.user_identity_id)
    except NotFound:
        return None


def _front_desk_delivery(
    ctx: Context, event: Event, grant: AccessGrant, kind: MessageKind, guest: Guest | None
) -> NewDelivery:
    # The hotel's own front desk (properties.toml), else FRONT_DESK_EMAIL.
    routing = ctx.templates.routing(event.workspace_id, grant.space_ids)
    front_desk = routing.front_desk_email or ctx.policy.front_desk_email
    if front_desk is None:
        log.warning("FRONT_DESK_EMAIL is not set: %s recorded, not emailed", kind)
    # Once per grant and event: a repeat of the event (same ledger row) plans nothing new; a
    # new event from Seam about the same grant is news, told again. The grant id is hashed to
    # keep the key short whatever Seam's ids look like.
    grant_digest = hashlib.sha256(grant.access_grant_id.encode()).hexdigest()[:16]
    name = (guest.full_name if guest else None) or grant.display_name or None
    about = About.stay(grant, guest, name, workspace_id=event.workspace_id)
    if guest is None:
        about = replace(about, user_identity_id=grant.user_identity_id)
    return new_delivery(
        kind,
        # About the grant, not one access method: filed under "" with the grant's id.
        access_method_id="",
        channel="email",
        credential_fingerprint=f"grant-{grant_digest}-event-{event.id}",
        event_id=event.id,
        about=about,
        destination=Destination.of(front_desk, ctx.policy.search_key()),
    )
