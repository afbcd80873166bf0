"""An access method deleted in Seam: cancel what is pending and, when asked, tell its guests.

Deletion is final (DESIGN.md section 1). A guest who already holds the credential is told only
with NOTIFY_GUEST_ON_DELETE, on each channel the credential reached them on; a guest who was
never sent it has nothing to be told.
"""

from __future__ import annotations

from collections.abc import Callable

from app.container import Services
from app.ledger.models import DeliveryStatus, Event
from app.ledger.store import NewDelivery
from app.planner import ACCESS_CANCELLED, GUEST_MESSAGE
from app.scheduling import plan_notice_on_window


def deleted(
    services: Services, event: Event, access_method_id: str, enqueue_send: Callable[[int], None]
) -> str:
    """Cancel the access method's pending sends and flags; plan and hand on the notices."""
    # A repeat of the deletion must not cancel the notices the first one planned.
    cancelled = services.ledger.cancel_pending(
        access_method_id, "access method deleted", keep=(ACCESS_CANCELLED,)
    )
    services.ledger.close_flags(access_method_id)
    detail = f"cancelled {cancelled} pending deliveries"
    if services.settings.notify_guest_on_delete:
        told = _tell_guests_deleted(services, event, access_method_id)
        for delivery_id in told:
            enqueue_send(delivery_id)
        services.ledger.mark_deliveries_enqueued(told)
        detail += f"; telling {len(told)} guest channel(s) their key is cancelled"
    return detail


def _tell_guests_deleted(services: Services, event: Event, access_method_id: str) -> list[int]:
    """Plan a notice on each channel a guest was sent this access method's credential on,
    once per guest and channel; returns the notices planned now."""
    planned = []
    for sent in services.ledger.delivered(access_method_id, tuple(GUEST_MESSAGE.values())):
        # The delivery window (app/scheduling.py): quiet hours hold it; never after the stay.
        delivery_id, created = plan_notice_on_window(
            services,
            event.workspace_id,
            sent.expires_at,
            NewDelivery(
                access_method_id=access_method_id,
                kind=ACCESS_CANCELLED,
                channel=sent.channel,
                # One notice per guest and channel, however many codes they were sent.
                credential_fingerprint=f"deleted-{sent.user_identity_id}",
                event_id=event.id,
                access_grant_id=sent.access_grant_id,
                user_identity_id=sent.user_identity_id,
                guest_name=sent.guest_name,
                reservation=sent.reservation,
                destination_masked=sent.destination_masked,
                status=DeliveryStatus.PENDING,
            ),
        )
        if created:
            planned.append(delivery_id)
    return planned
