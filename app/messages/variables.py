"""The variables a message template sees, built from Seam's current state.

Stay times are written by Babel in the guest's language, in the hotel's time zone (both from
templates/properties.toml, see app/messages/properties.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton, get_datetime_format
from babel.dates import format_time as babel_time

from app.messages.catalog import CREDENTIAL_OF
from app.messages.kinds import MessageKind
from app.messages.properties import Audience
from app.ports import AccessGrant, AccessMethod, Guest, Space

# CLDR puts a narrow or non-breaking space before AM/PM and in some dates: outside GSM-7, one
# of them would turn an SMS into UCS-2 and halve what fits in a segment.
_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " "})


def format_stay_time(moment: datetime | None, audience: Audience) -> str:
    """`Fri, Jun 20, 2025, 5:00 PM` (en), `ven. 20 juin 2025, 17:00` (fr); '' when unset."""
    if moment is None:
        return ""
    return _stay_time(moment, audience.timezone, audience.locale)


# Babel's formatting is a large share of composing a message, and a hotel's stays start and end
# at a handful of times: the SMS and the email of one stay, and most guests of a day, share them.
@lru_cache(maxsize=4096)
def _stay_time(moment: datetime, timezone: str, locale: str) -> str:
    zone = ZoneInfo(timezone)
    date = format_skeleton("yMMMEd", moment, tzinfo=zone, locale=locale)
    time = babel_time(moment, "short", tzinfo=zone, locale=locale)
    pattern = str(get_datetime_format("medium", locale=locale))
    return pattern.replace("{1}", date).replace("{0}", time).translate(_SPACES)


def message_context(
    *,
    method: AccessMethod,
    grant: AccessGrant | None,
    guest: Guest | None,
    spaces: Sequence[Space],
    audience: Audience,
    code_changed: bool = False,
    include_credential: bool = True,
    problem: str | None = None,
    resend_url: str | None = None,
) -> dict[str, object]:
    """Every documented template variable (see templates/README.md). `resend_url` is the
    guest's own "resend my key" link, given only for a message carrying the credential of a
    hotel that turned it on (app/delivery/guest_links.py)."""
    name = (guest.full_name if guest else None) or (grant.display_name if grant else "") or ""
    reservation = None
    if grant is not None:
        reservation = grant.reservation_key or grant.access_grant_key
    return {
        "guest_name": name,
        "guest_first_name": name.split()[0] if name.split() else "",
        "space_names": [space.name for space in spaces],
        "property_name": audience.property_name,
        # A grant without times is valid at once and until it is deleted: the templates say so.
        "stay_starts_at": format_stay_time(grant.starts_at if grant else None, audience),
        "stay_ends_at": format_stay_time(grant.ends_at if grant else None, audience),
        "reservation": reservation,
        "access_grant_name": grant.display_name if grant else "",
        "access_grant_id": grant.access_grant_id if grant else "",
        "access_method_id": method.access_method_id,
        "pin_code": method.code if include_credential and method.mode == "code" else None,
        "instant_key_url": (
            method.instant_key_url if include_credential and method.mode == "mobile_key" else None
        ),
        "code_changed": code_changed,
        "problem": problem,
        "locale": audience.locale,
        "resend_url": resend_url if include_credential else None,
    }


def ledger_context(
    *,
    guest_name: str,
    reservation: str | None,
    access_grant_id: str,
    access_method_id: str,
    audience: Audience,
) -> dict[str, object]:
    """What can be said from the ledger alone, when Seam cannot be asked."""
    return {
        "guest_name": guest_name,
        "guest_first_name": guest_name.split()[0] if guest_name.split() else "",
        "space_names": [],
        "property_name": audience.property_name,
        "stay_starts_at": "",
        "stay_ends_at": "",
        "reservation": reservation,
        "access_grant_name": "",
        "access_grant_id": access_grant_id,
        "access_method_id": access_method_id,
        "pin_code": None,
        "instant_key_url": None,
        "code_changed": False,
        "problem": None,
        "locale": audience.locale,
        "resend_url": None,
    }


# The sample stay the check and the preview fill every message with.
SAMPLE_PIN = "1234"
SAMPLE_INSTANT_KEY_URL = "https://ik.seam.co/ABCXYZ"
# As long as a real one under a short PUBLIC_BASE_URL: the check measures the SMS with it.
SAMPLE_RESEND_URL = "https://keys.hotel.example/k/AQAAAHtpVbkABFMWOZ_9nWndnJoe"
SAMPLE_WORKSPACE_ID = "661025d3-c1d2-403c-83a8-af153aaedfbc"
SAMPLE_GRANT = AccessGrant(
    access_grant_id="b2c4e6f8-1a3c-4e5f-8a9b-0c1d2e3f4a5b",
    user_identity_id="0d6e1c3b-7e0f-4b59-9d1a-2f3b7c9a8e41",
    display_name="Alex Rivera, Room 204",
    starts_at=datetime(2025, 6, 20, 15, 0, tzinfo=UTC),
    ends_at=datetime(2025, 6, 23, 11, 0, tzinfo=UTC),
    space_ids=("5e1a2b3c-4d5e-4f60-8172-839405162738",),
    access_grant_key="reservation-8841",
)
SAMPLE_GUEST = Guest("0d6e1c3b-7e0f-4b59-9d1a-2f3b7c9a8e41", "Alex Rivera", None, None)
SAMPLE_SPACES = (Space("5e1a2b3c-4d5e-4f60-8172-839405162738", "Room 204"),)
_SAMPLE_METHODS = {
    "pin_code": ("f47ac10b-58cc-4372-a567-0e02b2c3d479", "code"),
    "code_changed": ("f47ac10b-58cc-4372-a567-0e02b2c3d479", "code"),
    "instant_key": ("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "mobile_key"),
    "front_desk_card": ("27d8ad77-55c2-4e20-b5b3-43555926f0e8", "card"),
    "card_ready": ("27d8ad77-55c2-4e20-b5b3-43555926f0e8", "card"),
    "front_desk_undelivered": ("f47ac10b-58cc-4372-a567-0e02b2c3d479", "code"),
    "front_desk_delivery_problem": ("f47ac10b-58cc-4372-a567-0e02b2c3d479", "code"),
    "front_desk_issue_delayed": ("f47ac10b-58cc-4372-a567-0e02b2c3d479", "code"),
    "front_desk_issue_failed": ("f47ac10b-58cc-4372-a567-0e02b2c3d479", "code"),
    "front_desk_card_assign": ("27d8ad77-55c2-4e20-b5b3-43555926f0e8", "card"),
    "front_desk_key_error": ("f47ac10b-58cc-4372-a567-0e02b2c3d479", "code"),
    # About a grant, not an access method: the templates show no access method id.
    "front_desk_grant_incomplete": ("", "code"),
    "front_desk_door_lost": ("", "code"),
}
SAMPLE_PROBLEM = (
    "SMS to +1********23: not a valid phone number (code 21211)\n"
    "Email to a***@example.com: the from address is not a verified Sender (code 403)"
)
# What Seam reports, for the front-desk emails that say it (`problem`).
SAMPLE_SEAM_PROBLEMS = {
    "front_desk_key_error": "Seam reports: access_not_provisioned",
    "front_desk_grant_incomplete": (
        "Seam: The lock on Room 204 is offline\n"
        "Not created: PIN Code Credential\n"
        "Devices left without access: 2b6e7a1c-4d3f-4e8a-9c0b-1f2e3d4c5b6a"
    ),
}


def sample_method(message: str, code: str | None = SAMPLE_PIN) -> AccessMethod:
    method_id, mode = _SAMPLE_METHODS.get(message, _SAMPLE_METHODS["pin_code"])
    return AccessMethod(
        access_method_id=method_id,
        workspace_id=SAMPLE_WORKSPACE_ID,
        mode=mode,  # type: ignore[arg-type]  # one of the literal modes above
        display_name="Sample",
        is_issued=True,
        is_encoding_required=mode == "card",
        is_ready_for_encoding=False,
        code=code if mode == "code" else None,
        instant_key_url=SAMPLE_INSTANT_KEY_URL if mode == "mobile_key" else None,
    )


def sample_context(
    message: str,
    audience: Audience,
    method: AccessMethod | None = None,
    *,
    with_resend_link: bool = False,
) -> dict[str, object]:
    """The sample guest (Alex Rivera, Room 204, PIN 1234) as `message` would see them; with
    the guest's resend link (SAMPLE_RESEND_URL) when asked, as a hotel that turned it on."""
    kind = MessageKind.by_template(message)
    return message_context(
        method=method or sample_method(message),
        grant=SAMPLE_GRANT,
        guest=SAMPLE_GUEST,
        spaces=SAMPLE_SPACES,
        audience=audience,
        code_changed=message == "code_changed",
        include_credential=message in CREDENTIAL_OF,
        resend_url=SAMPLE_RESEND_URL if with_resend_link else None,
        problem=(
            SAMPLE_PROBLEM if kind and kind.reports_problem else SAMPLE_SEAM_PROBLEMS.get(message)
        ),
    )
