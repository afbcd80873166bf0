"""The front desk's emails about an access grant as a whole (app/events/grants.py plans them):
Seam could not create what the grant asked for, or access to one of its doors was lost.

Written from the grant as Seam has it when the email goes out, not as the event said: a grant
deleted since, or one Seam has since created everything for, is superseded, never reported.
"""

from __future__ import annotations

from app.errors import NotFound, Unsendable
from app.ledger.models import Delivery, DeliveryStatus
from app.messages.kinds import MessageKind
from app.messages.rendering import Templates
from app.messages.variables import format_stay_time, ledger_context
from app.ports import AccessGrant, Email, Guest, SeamReader, Space

CANNOT_CREATE = "cannot_create_requested_access_methods"


def grant_alert(
    seam: SeamReader, templates: Templates, front_desk: str, delivery: Delivery
) -> tuple[Email, Guest | None]:
    """The email `delivery` stands for. Raises Unsendable when it must not go out,
    ProviderError when Seam cannot be read now (to retry)."""
    try:
        grant = seam.get_access_grant(delivery.access_grant_id or "")
    except NotFound as exc:
        raise Unsendable(DeliveryStatus.SUPERSEDED, "the access grant was deleted since") from exc
    if (
        delivery.kind == MessageKind.FRONT_DESK_GRANT_INCOMPLETE
        and CANNOT_CREATE not in grant.errors
    ):
        raise Unsendable(DeliveryStatus.SUPERSEDED, "Seam has created what was requested since")
    guest = None
    if grant.user_identity_id:
        try:
            guest = seam.get_guest(grant.user_identity_id)
        except NotFound:
            guest = None
    spaces = _spaces(seam, grant)
    space_ids = [space.space_id for space in spaces] or list(grant.space_ids)
    audience = templates.audience(delivery.kind, grant.workspace_id, space_ids)
    name = (guest.full_name if guest else None) or grant.display_name or delivery.guest_name or ""
    context = ledger_context(
        guest_name=name,
        reservation=grant.reservation_key or grant.access_grant_key,
        access_grant_id=grant.access_grant_id,
        access_method_id="",
        audience=audience,
    ) | {
        "space_names": [space.name for space in spaces],
        "stay_starts_at": format_stay_time(grant.starts_at, audience),
        "stay_ends_at": format_stay_time(grant.ends_at, audience),
        "access_grant_name": grant.display_name,
        "problem": describe(grant)
        if delivery.kind == MessageKind.FRONT_DESK_GRANT_INCOMPLETE
        else None,
    }
    rendered = templates.render_email(delivery.kind, context)
    email = Email(front_desk, rendered.subject, rendered.text, rendered.html, f"kc-{delivery.id}")
    return email, guest


def describe(grant: AccessGrant) -> str:
    """What Seam could not create, one fact a line, for the front desk (no credential: a
    requested code is never named)."""
    lines = []
    if grant.error_message:
        lines.append(f"Seam: {grant.error_message}")
    if grant.missing_access_methods:
        lines.append("Not created: " + ", ".join(grant.missing_access_methods))
    if grant.missing_device_ids:
        lines.append("Devices left without access: " + ", ".join(grant.missing_device_ids))
    return "\n".join(lines) or "Seam could not create one or more of the requested keys"


def _spaces(seam: SeamReader, grant: AccessGrant) -> list[Space]:
    """The grant's spaces, read through one of its access methods (Seam names spaces by access
    method); none when it has none yet."""
    for access_method_id in grant.access_method_ids[:1]:
        try:
            return seam.get_spaces(access_method_id)
        except NotFound:
            return []
    return []
