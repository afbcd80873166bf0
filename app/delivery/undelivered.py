"""An undelivered delivery's fallback: the worker's half of app/delivery/provider_status.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.delivery.fallback import after_failure
from app.errors import NotFound
from app.events.processing import EnqueueSend
from app.ledger.models import DeliveryStatus
from app.ports import Guest

if TYPE_CHECKING:  # the adapters (and the SDKs) load only where Services are built
    from app.container import Services


def after_undelivered(services: Services, delivery_id: int, enqueue: EnqueueSend) -> bool:
    """Plan the fallback (or the front-desk alert) an undelivered delivery calls for, once.

    Returns False when there is nothing (left) to do. Seam being unreachable propagates: the
    fallback stays due, and the sweeper hands it on again.
    """
    ledger = services.ledger
    delivery = ledger.get_delivery(delivery_id)
    if delivery is None or delivery.status != DeliveryStatus.UNDELIVERED:
        return False
    if delivery.next_attempt_at is None:
        return False  # planned already
    guest: Guest | None = None
    if delivery.user_identity_id and delivery.is_guest_message:
        try:
            guest = services.seam.get_guest(delivery.user_identity_id)
        except NotFound:
            guest = None
    after_failure(services, delivery, guest, enqueue, reported=True)
    ledger.fallback_planned(delivery_id)
    return True
