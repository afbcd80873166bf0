"""After a delivery fails for good: try the guest's other channel, else tell the front desk.

A guest at a locked door is the failure keycourier exists to prevent, so a failed channel is
never the end: the other channel is planned (once: the ledger's unique key sees to that), and
when no channel is left that holds or will hold the credential, the front desk is emailed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from app.delivery.compose import guest_destination
from app.delivery.destinations import search_key
from app.delivery.planned import About, Destination, new_delivery
from app.events.processing import EnqueueSend
from app.ledger.models import Delivery
from app.ledger.store import NewDelivery
from app.messages.kinds import MessageKind
from app.ports import Guest

if TYPE_CHECKING:  # the adapters (and the SDKs) load only where Services are built
    from app.container import Services

log = logging.getLogger(__name__)


def after_failure(
    services: Services,
    delivery: Delivery,
    guest: Guest | None,
    enqueue: EnqueueSend,
    *,
    reported: bool = False,
) -> None:
    """`reported`: the provider accepted the message, then reported it undelivered (a status
    callback); when the other channel is tried for it, the front desk hears of it too."""
    if not delivery.is_guest_message:
        log.error("front-desk message could not be sent", extra={"delivery_id": delivery.id})
        return
    if not delivery.message_kind.may_fall_back:
        # A notice, not a key: no fallback, no desk alert.
        log.error("guest notice could not be sent", extra={"delivery_id": delivery.id})
        return
    ledger = services.ledger
    other = "email" if delivery.channel == "sms" else "sms"
    destination = guest_destination(guest, other)
    falling_back = False
    if destination:
        new = _like(
            delivery,
            channel=other,
            destination=Destination.of(destination, search_key(services.settings)),
            fallback_for_id=delivery.id,
        )
        fallback_id, created = ledger.plan_delivery(new)
        if created:
            log.warning(
                "falling back to %s", other, extra={"delivery_id": fallback_id, "kind": other}
            )
            enqueue(fallback_id)
        # Not when the other channel had its own message of this key already (it went).
        fallback = ledger.get_delivery(fallback_id)
        falling_back = fallback is not None and fallback.fallback_for_id == delivery.id
    if ledger.credential_is_live(delivery):
        if reported and falling_back:
            _alert(services, delivery, MessageKind.FRONT_DESK_DELIVERY_PROBLEM, enqueue)
        return
    _alert(services, delivery, MessageKind.FRONT_DESK_UNDELIVERED, enqueue)


def _alert(services: Services, delivery: Delivery, kind: MessageKind, enqueue: EnqueueSend) -> None:
    front_desk = services.settings.front_desk_email
    alert_id, created = services.ledger.plan_delivery(
        _like(
            delivery,
            kind=kind,
            channel="email",
            destination=Destination.of(front_desk, search_key(services.settings)),
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
    if created and front_desk:
        enqueue(alert_id)


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
