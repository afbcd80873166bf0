"""Processing one recorded event: re-read Seam's current state, plan, record, hand on.

Running it twice for the same event, or for three events that say the same thing, plans
nothing new: the ledger's unique keys hold the line, and `send_delivery` sends a delivery
only after claiming it. What is left to do is returned (`Outcome.next`), never called back:
the worker's task hands it to the queue.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from app.context import Context
from app.delivery.compose import SeamState
from app.delivery.credentials import fingerprint
from app.delivery.planned import About, Destination, new_delivery
from app.delivery.retry_policy import backoff_seconds
from app.delivery.scheduling import plan_on_window
from app.delivery.send import send_delivery
from app.delivery.workspace import front_desk_for
from app.errors import (
    KeycourierError,
    NotFound,
)
from app.events.deletion import deleted
from app.events.grants import alert_about_grants, grant_deleted
from app.events.kinds import Action, action_for
from app.events.notices import card_ready, times_changed
from app.events.planner import (
    front_desk_alerts,
    guest_message_kind,
    hold_reason,
    plan_guest_messages,
)
from app.ledger.models import Event, EventStatus, utcnow
from app.ledger.store import Claimed, Ledger, NewDelivery, Planned
from app.messages.kinds import MessageKind
from app.observability import metrics
from app.ports import (
    AccessGrant,
    AccessMethod,
    Queued,
    Recipient,
    Related,
    SeamReader,
    Work,
    sends,
)

log = logging.getLogger(__name__)

FINAL = {
    EventStatus.PROCESSED,
    EventStatus.IGNORED,
    EventStatus.REJECTED,
    EventStatus.FAILED,
    EventStatus.POISONED,
}


@dataclass(frozen=True)
class Outcome:
    status: EventStatus
    detail: str
    # What is left for the queue: deliveries to send (or to send again later).
    next: tuple[Queued, ...] = ()
    # Seam is still changing what the event is about: look again later (the sweeper hands the
    # event on after a backoff), instead of finishing it.
    look_again: bool = False


def process_event(
    ctx: Context, event_id: int, *, send_now: bool = False, event: Event | None = None
) -> Outcome:
    """Act on a recorded event (`event`, when the caller has just read it). Transient errors
    propagate so the caller retries.

    With `send_now`, the deliveries it plans are sent here with the Seam state just read
    (saving a queue hop and four Seam reads each); otherwise, and for what cannot go now,
    they are returned for the queue.
    """
    if event is None:
        event = ctx.ledger.get_event(event_id)
    if event is None:
        log.error("event %s is not in the ledger", event_id)
        return Outcome(EventStatus.FAILED, "not in the ledger")
    if EventStatus(event.status) in FINAL:
        return Outcome(EventStatus(event.status), "already done")
    metrics.processing_event(event.received_at)

    # Seam is read with the key of the event's workspace (SEAM_WORKSPACES_FILE).
    outcome = _act(ctx.for_workspace(event.workspace_id), event, send_now)
    if outcome.look_again:
        delay = backoff_seconds(event.attempts + 1)
        ctx.ledger.event_failed(event_id, outcome.detail, utcnow() + timedelta(seconds=delay))
        metrics.retry_scheduled("event")
        log.info(
            "event to look at again in %.0f s: %s",
            delay,
            outcome.detail,
            extra={"event_id": event_id, "event_type": event.event_type},
        )
        return outcome
    ctx.ledger.finish_event(event_id, outcome.status, outcome.detail)
    metrics.event_processed(event.event_type, outcome.status.value)
    log.info(
        "event processed",
        extra={"event_id": event_id, "event_type": event.event_type, "outcome": outcome.detail},
    )
    return outcome


def _act(ctx: Context, event: Event, send_now: bool) -> Outcome:
    action = action_for(event.event_type or "")
    access_method_id = event.access_method_id
    if action is Action.TIMES_CHANGED:
        detail, told = times_changed(ctx, event)
        return Outcome(EventStatus.PROCESSED, detail, tuple(sends(told)))
    if action in _GRANT_ALERTS:
        detail, planned_ids = alert_about_grants(ctx, event, _GRANT_ALERTS[action])
        return Outcome(EventStatus.PROCESSED, detail, tuple(sends(planned_ids)))
    if action is Action.GRANT_DELETED:
        return Outcome(EventStatus.PROCESSED, grant_deleted(ctx, event))
    if action is Action.RECORD or access_method_id is None:
        return Outcome(EventStatus.IGNORED, f"no action for {event.event_type}")
    if action is Action.CANCEL:
        detail, told = deleted(ctx, event, access_method_id)
        return Outcome(EventStatus.PROCESSED, detail, tuple(sends(told)))

    related: Related | None = None
    try:
        if action is Action.DELIVER:
            # What a delivery needs besides (spaces, grants) in the same call to Seam.
            method, related = ctx.seam.get_access_method_and_related(access_method_id)
        else:
            method = ctx.seam.get_access_method(access_method_id)
    except NotFound:
        return Outcome(EventStatus.PROCESSED, "the access method no longer exists")

    state, planned = None, None
    alerted = _alert_from_state(ctx, event, method)
    if action is Action.HOLD and not (method.is_issued and method.credential):
        return Outcome(EventStatus.PROCESSED, _hold(ctx.ledger, method) + alerted)
    waiting = hold_reason(method)
    if (
        waiting is not None
        and action in (Action.DELIVER, Action.HOLD)
        and method.is_issued
        and guest_message_kind(method) is not None
    ):
        # The credential may be about to change: nothing goes out until Seam has finished.
        detail = f"{waiting}; {_hold(ctx.ledger, method, waiting)}; will look again" + alerted
        return Outcome(EventStatus.RECEIVED, detail, look_again=True)
    if action is Action.FLAG_CARD:
        detail = _flag_card(ctx, event, method)
    elif action is Action.CREATED:
        detail = _created(ctx, event, method)
    elif action is Action.ALERT_FRONT_DESK:
        detail = _alert_front_desk(ctx, event, method)
    elif method.mode == "card":
        detail = _card_issued(ctx, event, method, related)
    else:
        # issued, reissued, or a revoke Seam has already issued again since: deliver what the
        # guest should hold now (releasing what the revoke held, if it is still current).
        detail, state, planned = _plan_guest(ctx, event, method, related, claim=send_now)
    detail += alerted
    if planned is not None:
        pending = planned.pending
    else:
        pending = ctx.ledger.pending_delivery_ids(access_method_id)
    if not send_now or state is None:
        return Outcome(EventStatus.PROCESSED, detail, tuple(sends(pending)))
    claims = [(c.delivery.id, c) for c in planned.claimed] if planned else []
    later = _send_now(ctx, state, [*claims, *((delivery_id, None) for delivery_id in pending)])
    return Outcome(EventStatus.PROCESSED, detail, tuple(later))


def _send_now(
    ctx: Context, state: SeamState, deliveries: list[tuple[int, Claimed | None]]
) -> list[Queued]:
    """Send deliveries planned a moment ago, here, with the Seam state just read instead of
    queueing them to be read again; returns what cannot go now, for the queue."""
    later: list[Queued] = []
    for delivery_id, claimed in deliveries:
        try:
            sent = send_delivery(ctx, delivery_id, state, claimed)
        except KeycourierError:
            later.append(Queued(Work.SEND_DELIVERY, delivery_id))
            continue
        later += sent.next
        if sent.retry_in is not None:
            later.append(Queued(Work.SEND_DELIVERY, delivery_id, sent.retry_in))
    return later


_GRANT_ALERTS = {
    Action.GRANT_INCOMPLETE: MessageKind.FRONT_DESK_GRANT_INCOMPLETE,
    Action.DOOR_LOST: MessageKind.FRONT_DESK_DOOR_LOST,
}


def _hold(ledger: Ledger, method: AccessMethod, why: str | None = None) -> str:
    """Seam revoked the access method to re-program it (after a grant change), or is changing
    it (`why`): what has not gone out waits for what Seam issues next, which sends it or what
    replaces it. The guest is not told: it is temporary."""
    what = "revoked" if why is None else "changing"
    kind = guest_message_kind(method)
    if kind is None:
        return f"{what}; mode {method.mode} has no guest message to hold"
    held = ledger.hold_pending(
        method.access_method_id,
        (kind,),
        f"held: {why or 'Seam is re-programming the access method'}",
    )
    return f"{what}; held {held} pending deliveries until Seam issues it again"


def _alert_from_state(ctx: Context, event: Event, method: AccessMethod) -> str:
    """Plan the front-desk alerts the access method's errors and warnings call for (each once
    per access method and alert: an event's own alert is the same ledger row). Returns a note
    for the event's detail ("" when there is none)."""
    alerts = front_desk_alerts(method)
    if not alerts:
        return ""
    recipient = _first_guest(ctx, event)
    front_desk = _front_desk(ctx, method, recipient)
    planned = 0
    for kind, key in alerts:
        _, created = _plan_desk_email(ctx, event, method, kind, key, recipient, front_desk)
        planned += created
    kinds = ", ".join(kind for kind, _ in alerts)
    return f"; Seam reports a problem ({kinds}): {planned} new front-desk alert(s)"


def _created(ctx: Context, event: Event, method: AccessMethod) -> str:
    """A new access method: nothing to send until it is issued. A card that needs a card
    assigned is flagged now (no other event of Seam's says so); one to encode waits for its
    card_encoding_required."""
    if method.mode == "card" and not method.is_issued and method.is_assignment_required:
        return _flag_card(ctx, event, method)
    return "created; nothing to do until it is issued"


def _recipients(
    seam: SeamReader, event: Event, known: Mapping[str, AccessGrant] | None = None
) -> list[Recipient]:
    """The guests of the access method's grants. `known` grants, just read with the access
    method's related resources, are Seam's current answer and win over the event's list (an
    event may predate a grant's removal or addition); they are not read again."""
    recipients = []
    for grant_id in sorted(known) if known else event.access_grant_ids:
        try:
            grant = (known or {}).get(grant_id) or seam.get_access_grant(grant_id)
        except NotFound:
            log.warning("access grant %s no longer exists", grant_id)
            continue
        guest = None
        if grant.user_identity_id is not None:
            try:
                guest = seam.get_guest(grant.user_identity_id)
            except NotFound:
                # The grant's guest was deleted in Seam: nobody to send to on this grant (the
                # planner notes it); the access method's other grants still get theirs.
                log.warning("user identity of access grant %s no longer exists", grant_id)
        recipients.append(Recipient(grant, guest))
    return recipients


def _plan_guest(
    ctx: Context, event: Event, method: AccessMethod, related: Related | None, *, claim: bool
) -> tuple[str, SeamState | None, Planned | None]:
    """Plan the guest's messages; returns what happened, the Seam state read (when there is
    something new to send with it) and what was planned. `related`: the access method's
    spaces and grants if they were read with it. With `claim`, the new deliveries are claimed
    as they are planned, for this task to send at once."""
    kind = guest_message_kind(method)
    if kind is None:
        return f"mode {method.mode} has no guest message", None, None
    if not method.is_issued or method.credential is None:
        return "the access method is not issued yet", None, None

    if related is None:
        related = ctx.seam.get_related(method.access_method_id)
    recipients = _recipients(ctx.seam, event, related.grants)
    # The hotel's country (properties.toml): guests' national phone numbers are read in it.
    space_ids = [s.space_id for s in related.spaces]
    country = ctx.templates.country(method.workspace_id, space_ids)
    # The hotel's channel order (properties.toml `channels`, else DELIVERY_CHANNELS).
    channels = ctx.templates.routing(method.workspace_id, space_ids).channels
    plan = plan_guest_messages(method, recipients, channels or ctx.policy.channels, country)
    credential_fp = fingerprint(
        ctx.policy.fingerprint_key(), method.access_method_id, method.credential
    )
    lease = ctx.policy.lease
    search_key = ctx.policy.search_key()
    # The delivery window (app/delivery/scheduling.py): each guest delivery waits for its time, and
    # is never sent after the stay; plan_credential's claim takes only those due now.
    planned = plan_on_window(
        ctx.ledger,
        ctx.schedule,
        recipients,
        method.workspace_id,
        method.access_method_id,
        [
            _new_delivery(
                search_key,
                event,
                method,
                kind=message.kind,
                channel=message.channel,
                credential_fingerprint=credential_fp,
                recipient=message.recipient,
                destination=message.destination,
            )
            for message in plan.messages
        ],
        kind,
        credential_fp,
        claim_for=lease if claim else None,
    )
    for note in plan.notes:
        log.warning("nothing to send: %s", note, extra={"event_id": event.id})
    notes = "; ".join(plan.notes)
    state = None
    if planned.created:
        state = SeamState(
            method=method,
            grants={r.grant.access_grant_id: r.grant for r in recipients},
            guests={r.guest.user_identity_id: r.guest for r in recipients if r.guest},
            spaces=related.spaces,
        )
    detail = f"planned {planned.created} new deliveries" + (f"; {notes}" if notes else "")
    return detail, state, planned


def _card_issued(ctx: Context, event: Event, method: AccessMethod, related: Related | None) -> str:
    """A card is encoded: close its front-desk flag and (NOTIFY_GUEST_CARD_READY) tell its
    guests it waits at the desk (`related`: its grants, if read with it). The pending notices
    are handed on by the caller."""
    if not method.is_issued:
        return "card not issued yet"
    closed = ctx.ledger.close_flags(method.access_method_id)
    detail = f"card issued; closed {closed} front-desk flag(s)"
    if ctx.policy.notify_card_ready:
        if related is None:
            related = ctx.seam.get_related(method.access_method_id)
        told = card_ready(ctx, event, method, _recipients(ctx.seam, event, related.grants))
        detail += f"; telling {len(told)} guest channel(s) the card is ready"
    return detail


def _flag_card(ctx: Context, event: Event, method: AccessMethod) -> str:
    """Open the card's front-desk flag (one per card while open) and email the front desk: the
    card is to be encoded, or (Seam's is_assignment_required) to have a card assigned."""
    if method.mode != "card" or method.is_issued:
        return "no card waiting for encoding or assignment"
    assign = method.is_assignment_required
    recipient = _first_guest(ctx, event)
    flag_id, opened = ctx.ledger.open_flag(
        method.access_method_id,
        reason="card_assignment_required" if assign else "card_encoding_required",
        access_grant_id=recipient.grant.access_grant_id if recipient else None,
        guest_name=recipient.name if recipient else None,
        event_id=event.id,
    )
    front_desk = _front_desk(ctx, method, recipient)
    if front_desk is None:
        log.warning("FRONT_DESK_EMAIL is not set: card flag %s recorded, not emailed", flag_id)
    kind = MessageKind.FRONT_DESK_CARD_ASSIGN if assign else MessageKind.FRONT_DESK_CARD
    # One front-desk email per flag: a card that needs encoding again opens a new one.
    _plan_desk_email(ctx, event, method, kind, f"flag-{flag_id}", recipient, front_desk)
    return f"front-desk flag {flag_id} {'opened' if opened else 'already open'}"


def _alert_front_desk(ctx: Context, event: Event, method: AccessMethod) -> str:
    """Tell the front desk, once per access method and kind of alert, that Seam is late
    issuing a guest's credential or gave up; the guest is never told."""
    kind = MessageKind.issuing_alert(event.event_type or "")
    if method.is_issued:
        return "issued since: no front-desk alert"
    recipient = _first_guest(ctx, event)
    front_desk = _front_desk(ctx, method, recipient)
    if front_desk is None:
        log.warning("FRONT_DESK_EMAIL is not set: %s recorded, not emailed", kind)
    # The kind already tells the two alerts apart; one of each per access method.
    delivery_id, created = _plan_desk_email(
        ctx, event, method, kind, "alert", recipient, front_desk
    )
    return f"front-desk alert {delivery_id} {'planned' if created else 'already planned'}"


def _first_guest(ctx: Context, event: Event) -> Recipient | None:
    """The guest a front-desk email about the access method names (the first of its grants')."""
    recipients = _recipients(ctx.seam, event)
    return recipients[0] if recipients else None


def _plan_desk_email(
    ctx: Context,
    event: Event,
    method: AccessMethod,
    kind: MessageKind,
    key: str,
    recipient: Recipient | None,
    front_desk: str | None,
) -> tuple[int, bool]:
    """Plan a front-desk email of `kind` about the access method, once per `key`."""
    return ctx.ledger.plan_delivery(
        _new_delivery(
            ctx.policy.search_key(),
            event,
            method,
            kind=kind,
            channel="email",
            credential_fingerprint=key,
            recipient=recipient,
            destination=front_desk,
        )
    )


def _front_desk(ctx: Context, method: AccessMethod, recipient: Recipient | None) -> str | None:
    """The front desk of the hotel the guest's rooms are in (properties.toml), else
    FRONT_DESK_EMAIL."""
    space_ids = list(recipient.grant.space_ids) if recipient else []
    return front_desk_for(ctx, method.workspace_id, space_ids)


def _new_delivery(
    search_key: bytes,
    event: Event,
    method: AccessMethod,
    *,
    kind: MessageKind,
    channel: str,
    credential_fingerprint: str,
    recipient: Recipient | None,
    destination: str | None,
) -> NewDelivery:
    return new_delivery(
        kind,
        access_method_id=method.access_method_id,
        channel=channel,
        credential_fingerprint=credential_fingerprint,
        event_id=event.id,
        about=About.stay(
            recipient.grant if recipient else None,
            recipient.guest if recipient else None,
            recipient.name if recipient else None,
            workspace_id=method.workspace_id,
        ),
        destination=Destination.of(destination, search_key),
    )
