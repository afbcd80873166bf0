"""An access method deleted in Seam: cancel what is pending and, when asked, tell its guests.

Deletion is final (DESIGN.md section 1). A guest who already holds the credential is told only
with NOTIFY_GUEST_ON_DELETE, on each channel the credential reached them on; a guest who was
never sent it has nothing to be told.
"""

from __future__ import annotations

from app.context import Context
from app.events.notices import tell_holders
from app.ledger.models import Event
from app.messages.kinds import CREDENTIAL_KINDS, MessageKind


def deleted(ctx: Context, event: Event, access_method_id: str) -> tuple[str, list[int]]:
    """Cancel the access method's pending sends and flags; plan the notices (returned, to be
    sent)."""
    # A repeat of the deletion must not cancel the notices the first one planned.
    cancelled = ctx.ledger.cancel_pending(
        access_method_id, "access method deleted", keep=(MessageKind.ACCESS_CANCELLED,)
    )
    ctx.ledger.close_flags(access_method_id)
    detail = f"cancelled {cancelled} pending deliveries"
    told: list[int] = []
    if ctx.policy.notify_on_delete:
        told = _tell_guests_deleted(ctx, event, access_method_id)
        detail += f"; telling {len(told)} guest channel(s) their key is cancelled"
    return detail, told


def _tell_guests_deleted(ctx: Context, event: Event, access_method_id: str) -> list[int]:
    """Plan a notice on each channel a guest was sent this access method's credential on,
    once per guest and channel, however many codes they were sent; returns the notices
    planned now."""
    sent = ctx.ledger.delivered((access_method_id,), CREDENTIAL_KINDS)
    return [
        delivery_id
        for recipient in sorted({delivery.recipient for delivery in sent})
        for delivery_id in tell_holders(
            ctx.ledger,
            ctx.schedule,
            event,
            [delivery for delivery in sent if delivery.recipient == recipient],
            MessageKind.ACCESS_CANCELLED,
            f"deleted-{recipient}",
        )
    ]
