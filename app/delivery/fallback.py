"""After a delivery fails for good: try the guest's other channel, else tell the front desk.

A guest at a locked door is the failure keycourier exists to prevent, so a failed channel is
never the end: the other channel is planned (once: the ledger's unique key sees to that), and
when no channel is left that holds or will hold the credential, the front desk is emailed.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from app.delivery.compose import guest_destination
from app.delivery.destinations import destination_hash
from app.events.planner import (
    ACCESS_CANCELLED,
    FRONT_DESK_DELIVERY_PROBLEM,
    FRONT_DESK_UNDELIVERED,
    GUEST_NOTICES,
)
from app.ledger.models import Delivery, DeliveryStatus
from app.ledger.store import Ledger, NewDelivery
from app.observability.masking import mask_destination
from app.ports import Guest, Queued, sends

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
) -> list[Queued]:
    """Plan what follows a failed guest message; returns the deliveries to send.

    `reported`: the provider accepted the message, then reported it undelivered (a status
    callback); when the other channel is tried for it, the front desk hears of it too."""
    if not delivery.is_guest_message:
        log.error("front-desk message could not be sent", extra={"delivery_id": delivery.id})
        return []
    if delivery.kind == ACCESS_CANCELLED or delivery.kind in GUEST_NOTICES:
        # A notice, not a key: no fallback, no desk alert.
        log.error("guest notice could not be sent", extra={"delivery_id": delivery.id})
        return []
    to_send: list[int] = []
    other = "email" if delivery.channel == "sms" else "sms"
    destination = guest_destination(guest, other)
    falling_back = False
    if destination:
        new = _like(delivery, channel=other, destination=destination, fallback_for_id=delivery.id)
        # The console finds the guest by the address this fallback goes to.
        digest = destination_hash(policy.search_key(), destination)
        fallback_id, created = ledger.plan_delivery(replace(new, destination_hash=digest))
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
            to_send += _alert(ledger, policy, delivery, FRONT_DESK_DELIVERY_PROBLEM)
        return sends(to_send)
    to_send += _alert(ledger, policy, delivery, FRONT_DESK_UNDELIVERED)
    return sends(to_send)


def _alert(ledger: Ledger, policy: Policy, delivery: Delivery, kind: str) -> list[int]:
    """Plan the front desk's email about `delivery`; returns it when it is to be sent now."""
    front_desk = policy.front_desk_email
    alert_id, created = ledger.plan_delivery(
        _like(delivery, kind=kind, channel="email", destination=front_desk)
    )
    what = (
        "a guest's message was reported undelivered; trying the other channel"
        if kind == FRONT_DESK_DELIVERY_PROBLEM
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
    destination: str | None,
    kind: str | None = None,
    fallback_for_id: int | None = None,
) -> NewDelivery:
    return NewDelivery(
        access_method_id=delivery.access_method_id,
        kind=kind or delivery.kind,
        channel=channel,
        credential_fingerprint=delivery.credential_fingerprint,
        event_id=delivery.event_id,
        access_grant_id=delivery.access_grant_id,
        user_identity_id=delivery.user_identity_id,
        guest_name=delivery.guest_name,
        reservation=delivery.reservation,
        destination_masked=mask_destination(destination) if destination else None,
        status=DeliveryStatus.PENDING if destination else DeliveryStatus.SKIPPED,
        error_message=None if destination else "FRONT_DESK_EMAIL is not set",
        fallback_for_id=fallback_for_id,
        # The delivery window: a fallback to the guest ends with the stay, like the delivery
        # it stands in for (already due: it is not held again); the desk's alert never ends.
        expires_at=None if kind else delivery.expires_at,
        recipient=delivery.recipient,
    )
