"""Which Seam workspace a delivery belongs to (the workspace of the event that planned it), and
a card's front-desk flag (the event that opened it); where the front desk of a hotel reads its
email.

Every delivery is planned from an event (a fallback, a notice or a resend keeps its original's
event), and the event row keeps the workspace its webhook, or reconcile, named. So the ledger
needs no column of its own for it, and a deployment of one workspace never reads it.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.context import Context
from app.ledger.models import Delivery, FrontDeskFlag
from app.ledger.store import Ledger
from app.settings import Channel


def workspace_of(ledger: Ledger, delivery: Delivery) -> str | None:
    """The Seam workspace id of `delivery`'s event (None when it has none)."""
    if delivery.event_id is None:
        return None
    event = ledger.get_event(delivery.event_id)
    return event.workspace_id if event is not None else None


def for_delivery(ctx: Context, delivery: Delivery) -> Context:
    """`ctx` reading Seam with the key of `delivery`'s workspace (SEAM_WORKSPACES_FILE)."""
    if not ctx.seam.workspaces:
        return ctx
    return ctx.for_workspace(workspace_of(ctx.ledger, delivery))


def for_flag(ctx: Context, flag: FrontDeskFlag) -> Context:
    """`ctx` reading Seam with the key of the workspace `flag`'s card is in: what the console's
    encode, assign, scan and check on that card use (a group without SEAM_API_KEY has no
    other key to use)."""
    if not ctx.seam.workspaces:
        return ctx
    return ctx.for_workspace(ctx.ledger.flag_workspace(flag))


def front_desk_for(ctx: Context, workspace_id: str | None, space_ids: Sequence[str]) -> str | None:
    """Where the front desk of the hotel these Seam ids are in reads its email: its
    `front_desk_email` in properties.toml (a space's wins), else FRONT_DESK_EMAIL."""
    routed = ctx.templates.routing(workspace_id, space_ids).front_desk_email
    return routed or ctx.policy.front_desk_email


def hotel_desk_of(ctx: Context, delivery: Delivery, space_ids: Sequence[str] = ()) -> str | None:
    """The front desk `delivery`'s hotel names in properties.toml (None: FRONT_DESK_EMAIL
    applies), from the ledger alone: its event's workspace, and `space_ids` when known."""
    return ctx.templates.routing(workspace_of(ctx.ledger, delivery), space_ids).front_desk_email


def channels_of(ctx: Context, delivery: Delivery) -> tuple[Channel, ...]:
    """The channel order of `delivery`'s hotel: its `channels` in properties.toml (a space's
    wins), else DELIVERY_CHANNELS (app/delivery/channels.py)."""
    workspace_id = delivery.workspace_id or workspace_of(ctx.ledger, delivery)
    routed = ctx.templates.routing(workspace_id, delivery.space_id_list).channels
    return routed or ctx.policy.channels
