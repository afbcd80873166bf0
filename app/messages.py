"""The variables a message template sees, built from Seam's current state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from app.ports import AccessGrant, AccessMethod, Guest, Space


def format_time(moment: datetime | None, timezone: str, *, missing: str) -> str:
    if moment is None:
        return missing
    return moment.astimezone(ZoneInfo(timezone)).strftime("%a %d %b %Y, %H:%M %Z")


def message_context(
    *,
    method: AccessMethod,
    grant: AccessGrant | None,
    guest: Guest | None,
    spaces: Sequence[Space],
    timezone: str,
    code_changed: bool = False,
    include_credential: bool = True,
    problem: str | None = None,
) -> dict[str, object]:
    """Every documented template variable (see templates/README.md)."""
    name = (guest.full_name if guest else None) or (grant.display_name if grant else "") or ""
    reservation = None
    if grant is not None:
        reservation = grant.reservation_key or grant.access_grant_key
    return {
        "guest_name": name,
        "guest_first_name": name.split()[0] if name.split() else "",
        "space_names": [space.name for space in spaces],
        # A grant without times is valid at once and until it is deleted.
        "stay_starts_at": format_time(grant.starts_at if grant else None, timezone, missing="now"),
        "stay_ends_at": format_time(
            grant.ends_at if grant else None, timezone, missing="the end of your stay"
        ),
        "reservation": reservation,
        "access_grant_id": grant.access_grant_id if grant else "",
        "access_method_id": method.access_method_id,
        "pin_code": method.code if include_credential and method.mode == "code" else None,
        "instant_key_url": (
            method.instant_key_url if include_credential and method.mode == "mobile_key" else None
        ),
        "code_changed": code_changed,
        "problem": problem,
    }
