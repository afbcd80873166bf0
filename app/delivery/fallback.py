"""After a delivery fails for good: try the guest's next channel, else tell the front desk.

A guest at a locked door is the failure keycourier exists to prevent, so a failed channel is
never the end: the next channel of the hotel's order that reaches the guest is planned (once:
the ledger's unique key sees to that; WhatsApp -> SMS -> email, app/delivery/channels.py), and
when no channel is left that holds or will hold the credential, the front desk is emailed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.delivery.channels import fallback_order
from app.delivery.compose import guest_destination
from app.delivery.planned import About, Destination, new_delivery
from app.ledger.models import Delivery
from app.ledger.store import Ledger, NewDelivery
from app.messages.kinds import MessageKind
from app.ports import Guest, Queued, sends
from app.settings import Channel

if TYPE_CHECKING:
    from app.context import Policy

log = logging.getLogger(__name__)


def after_failure(
    ledger: Ledger,
    policy: Policy,
    delivery: Delivery,
    guest: Guest | None,
    *,
    reported: bool = False,
    hotel_desk: str | None = None,
    channels: Sequence[Channel] = (),
) -> list[Queued]:
    """Plan what follows a failed guest message; returns the deliveries to send.

    `reported`: the provider accepted the message, then reported it undelivered (a status
    callback); when the other channel is tried for it, the front desk hears of it too.
    `hotel_desk`: the front desk of the guest's hotel (properties.toml), when it has its own;
    else the alert goes to FRONT_DESK_EMAIL. `channels`: the hotel's channel order (else
    DELIVERY_CHANNELS), which says which channel comes next."""
    if not delivery.is_guest_message:
        log.error("front-desk message could not be sent", extra={"delivery_id": delivery.id})
        return []
    if not delivery.message_kind.may_fall_back:
        # A notice, not a key: no fallback, no desk alert.
        log.error("guest notice could not be sent", extra={"delivery_id": delivery.id})
        return []
    to_send: list[int] = []
    order = fallback_order(channels or policy.channels, delivery.channel)
    # The next channel that reaches the guest (a phone number that cannot be one reaches
    # them on neither WhatsApp nor SMS).
    other, destination = next(
        ((c, to) for c in order if (to := guest_destination(guest, c))), (None, None)
    )
    falling_back = False
    if other is not None and destination:
        new = _like(
            delivery,
            channel=other,
            destination=Destination.of(destination, policy.search_key()),
            fallback_for_id=delivery.id,
        )
        fallback_id, created = ledger.plan_delivery(new)
        if created:
            log.warning(
                "falling back to %s", other, extra={"delivery_id": fallback_id, "kind": other}
            )
            to_send.append(fallback_id)
        # Not when the other channel had its own message of this key already (it went).
        fallback = ledger.get_delivery(fallback_id)
        falling_back = fallback is not None and fallback.fallback_for_id == delivery.id
    if ledger.credential_is_live(delivery):
        if reported and falling_back:
            to_send += _alert(
                ledger, policy, delivery, MessageKind.FRONT_DESK_DELIVERY_PROBLEM, hotel_desk
            )
        return sends(to_send)
    to_send += _alert(ledger, policy, delivery, MessageKind.FRONT_DESK_UNDELIVERED, hotel_desk)
    return sends(to_send)


def _alert(
    ledger: Ledger,
    policy: Policy,
    delivery: Delivery,
    kind: MessageKind,
    hotel_desk: str | None,
) -> list[int]:
    """Plan the front desk's email about `delivery`; returns it when it is to be sent now."""
    front_desk = hotel_desk or policy.front_desk_email
    alert_id, created = ledger.plan_delivery(
        _like(
            delivery,
            kind=kind,
            channel="email",
            destination=Destination.of(front_desk, policy.search_key()),
        )
    )
    what = (
        "a guest's message was reported undelivered; trying the other channel"
        if kind is MessageKind.FRONT_DESK_DELIVERY_PROBLEM
        else "guest left without a credential: every channel failed"
    )
    log.error(
        "%s; front desk %s",
        what,
        "alerted" if front_desk else "NOT alerted (FRONT_DESK_EMAIL is not set)",
        extra={"delivery_id": delivery.id},
    )
    return [alert_id] if created and front_desk else []


def _like(
    delivery: Delivery,
    *,
    channel: str,
    destination: Destination | None,
    kind: MessageKind | None = None,
    fallback_for_id: int | None = None,
) -> NewDelivery:
    return new_delivery(
        kind or delivery.message_kind,
        access_method_id=delivery.access_method_id,
        channel=channel,
        credential_fingerprint=delivery.credential_fingerprint,
        event_id=delivery.event_id,
        about=About.like(delivery),
        destination=destination,
        no_destination="FRONT_DESK_EMAIL is not set",
        fallback_for_id=fallback_for_id,
        # The delivery window: a fallback to the guest ends with the stay, like the delivery
        # it stands in for (already due: it is not held again); the desk's alert never ends.
        expires_at=None if kind else delivery.expires_at,
    )
