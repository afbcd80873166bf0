"""A failure's follow-up, done by a worker: the other channel, else the front desk's alert.

Owed from the moment a delivery fails for good (app/delivery/send.py) or a provider reports it
undelivered (app/delivery/provider_status.py): the ledger records it as due in the same
statement as the failure (`follow_up_due_at`). The sending worker plans it at once; when that
worker dies first, or the web's hand-on of an undelivered report is lost, the sweeper hands it
to this task until it is done. Planning twice plans nothing new (the ledger's unique keys).
"""

from __future__ import annotations

from app.context import Context
from app.delivery.fallback import after_failure
from app.delivery.workspace import channels_of, for_delivery, hotel_desk_of
from app.errors import NotFound
from app.ledger.models import DeliveryStatus
from app.ports import Guest, Queued


def after_undelivered(ctx: Context, delivery_id: int) -> list[Queued] | None:
    """Plan the fallback (or the front-desk alert) a failed or undelivered delivery calls for,
    once.

    Returns the deliveries to send, or None when there is nothing (left) to do. Seam being
    unreachable propagates: the follow-up stays due, and the sweeper hands it on again.
    """
    ledger = ctx.ledger
    delivery = ledger.get_delivery(delivery_id)
    if delivery is None or delivery.follow_up_due_at is None:
        return None  # planned already
    if delivery.status not in (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED):
        return None
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
    reported = delivery.status == DeliveryStatus.UNDELIVERED
    planned = after_failure(
        ledger, ctx.policy, delivery, guest,
        reported=reported, hotel_desk=desk, channels=channels_of(ctx, delivery),
    )  # fmt: skip
    ledger.follow_up_done(delivery_id)
    return planned
