"""An undelivered delivery's fallback: the worker's half of app/delivery/provider_status.py."""

from __future__ import annotations

from app.context import Context
from app.delivery.fallback import after_failure
from app.delivery.workspace import for_delivery, hotel_desk_of
from app.errors import NotFound
from app.ledger.models import DeliveryStatus
from app.ports import Guest, Queued


def after_undelivered(ctx: Context, delivery_id: int) -> list[Queued] | None:
    """Plan the fallback (or the front-desk alert) an undelivered delivery calls for, once.

    Returns the deliveries to send, or None when there is nothing (left) to do. Seam being
    unreachable propagates: the fallback stays due, and the sweeper hands it on again.
    """
    ledger = ctx.ledger
    delivery = ledger.get_delivery(delivery_id)
    if delivery is None or delivery.status != DeliveryStatus.UNDELIVERED:
        return None
    if delivery.next_attempt_at is None:
        return None  # planned already
    seam = for_delivery(ctx, delivery).seam
    guest: Guest | None = None
    if delivery.user_identity_id and delivery.is_guest_message:
        try:
            guest = seam.get_guest(delivery.user_identity_id)
        except NotFound:
            guest = None
    try:
        space_ids = [space.space_id for space in seam.get_spaces(delivery.access_method_id)]
    except NotFound:
        space_ids = []  # gone from Seam: its hotel's desk, by the workspace alone
    desk = hotel_desk_of(ctx, delivery, space_ids)
    planned = after_failure(ledger, ctx.policy, delivery, guest, reported=True, hotel_desk=desk)
    ledger.fallback_planned(delivery_id)
    return planned
