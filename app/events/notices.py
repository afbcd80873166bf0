"""Guest notices: messages about a guest's access that carry no credential.

- `access_grant.access_times_changed` (NOTIFY_GUEST_ON_TIMES_CHANGED, on by default): a guest
  who already holds their code or mobile key is told their stay's new times. A guest who does
  not hold it yet needs no notice: their credential's message is written from Seam's current
  times when it goes out.
- A key card's `issued` (NOTIFY_GUEST_CARD_READY, on by default): the card is encoded and
  waiting at the front desk.
- `access_method.deleted` (NOTIFY_GUEST_ON_DELETE, off by default; app/events/deletion.py).

Each goes once per guest and channel per thing told (the ledger's unique key), on the channels
the guest can be reached on, and compose checks it is still true before it goes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from app.context import Context, Schedule
from app.delivery.compose import stay_fingerprint
from app.delivery.planned import About, Destination, new_delivery
from app.delivery.scheduling import plan_notice_on_window, retime_grant, schedule_guest_delivery
from app.errors import NotFound
from app.events.planner import address
from app.ledger.models import Delivery, Event
from app.ledger.store import Ledger
from app.messages.kinds import CREDENTIAL_KINDS, MessageKind
from app.ports import AccessGrant, AccessMethod, Recipient


def tell_holders(
    ledger: Ledger,
    schedule: Schedule,
    event: Event,
    sent: Sequence[Delivery],
    kind: MessageKind,
    fingerprint: str,
    *,
    access_method_id: str | None = None,
    access_grant_id: str | None = None,
) -> list[int]:
    """Plan a `kind` notice on each channel these deliveries reached their guest on, once per
    guest and channel, filed under `access_method_id`/`access_grant_id` when given (else each
    delivery's own); returns the notices planned now."""
    planned = []
    seen: set[tuple[str, str]] = set()
    for delivery in sent:
        if (delivery.recipient, delivery.channel) in seen:
            continue
        seen.add((delivery.recipient, delivery.channel))
        # The delivery window (app/delivery/scheduling.py): quiet hours hold it; never after the
        # stay.
        delivery_id, created = plan_notice_on_window(
            ledger,
            schedule,
            event.workspace_id,
            delivery.expires_at,
            new_delivery(
                kind,
                access_method_id=access_method_id or delivery.access_method_id,
                channel=delivery.channel,
                credential_fingerprint=fingerprint,
                event_id=event.id,
                about=replace(
                    About.like(delivery),
                    access_grant_id=access_grant_id or delivery.access_grant_id,
                ),
                destination=Destination.kept_by(delivery),
            ),
        )
        if created:
            planned.append(delivery_id)
    return planned


def times_changed(ctx: Context, event: Event) -> tuple[str, list[int]]:
    """Tell each guest of the event's grants who already holds a credential of the grant that
    the stay's times changed. Returns what happened and the notices planned now.

    First, whatever the setting, the grant's unsent credential messages take the delivery
    window of the new times (app/delivery/scheduling.py)."""
    planned: list[int] = []
    for grant_id in event.access_grant_ids:
        try:
            grant = ctx.seam.get_access_grant(grant_id)
        except NotFound:
            continue
        retime_grant(ctx.ledger, ctx.schedule, grant, event.workspace_id)
        if ctx.policy.notify_times_changed:
            planned += _tell_stay_changed(ctx.ledger, ctx.schedule, event, grant)
    if not ctx.policy.notify_times_changed:
        return "stay times changed; NOTIFY_GUEST_ON_TIMES_CHANGED is off", []
    return f"stay times changed; telling {len(planned)} guest channel(s)", planned


def _tell_stay_changed(
    ledger: Ledger, schedule: Schedule, event: Event, grant: AccessGrant
) -> list[int]:
    if grant.user_identity_id is None or not grant.access_method_ids:
        return []
    sent = [
        delivery
        for delivery in ledger.delivered(grant.access_method_ids, CREDENTIAL_KINDS)
        if delivery.recipient == grant.user_identity_id
    ]
    if not sent:
        return []
    # One notice per channel, however many of the grant's credentials the guest holds: filed
    # under the first of them, the same one for every repeat of the event.
    return tell_holders(
        ledger,
        schedule,
        event,
        sent,
        MessageKind.STAY_TIMES_CHANGED,
        stay_fingerprint(grant),
        access_method_id=min(delivery.access_method_id for delivery in sent),
        access_grant_id=grant.access_grant_id,
    )


def card_ready(
    ctx: Context, event: Event, method: AccessMethod, recipients: Sequence[Recipient]
) -> list[int]:
    """Plan 'your key card is ready at the front desk' for the card's guests."""
    spaces = sorted({space for r in recipients for space in r.grant.space_ids})
    country = ctx.templates.country(method.workspace_id, spaces)
    channels = ctx.templates.routing(method.workspace_id, spaces).channels
    plan = address(MessageKind.CARD_READY, recipients, channels or ctx.policy.channels, country)
    planned = []
    for message in plan.messages:
        guest = message.recipient.guest
        grant = message.recipient.grant
        # The delivery window (app/delivery/scheduling.py): a notice, held by quiet hours only.
        scheduled = schedule_guest_delivery(
            ctx.schedule,
            new_delivery(
                MessageKind.CARD_READY,
                access_method_id=method.access_method_id,
                channel=message.channel,
                credential_fingerprint="card_ready",
                event_id=event.id,
                about=About.stay(
                    grant, guest, message.recipient.name, workspace_id=method.workspace_id
                ),
                destination=Destination.of(message.destination, ctx.policy.search_key()),
            ),
            grant,
            method.workspace_id,
        )
        delivery_id, created = ctx.ledger.plan_delivery(scheduled)
        if created:
            planned.append(delivery_id)
    return planned
