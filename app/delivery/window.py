"""The delivery window: when a guest message may go out (pure functions, no clock, no I/O).

    decide(window, now=..., starts_at=..., ends_at=..., tz=...) -> SendAt | TooLate

Rules, in order (DELIVERY_LEAD_TIME and QUIET_HOURS, README "Delivery window"):
1. Never after the stay: at or past the grant's `ends_at` the message is too late (the ledger
   closes it as `expired`; nothing is sent, nothing falls back).
2. Lead time (credentials only): no earlier than `starts_at` minus DELIVERY_LEAD_TIME. Unset,
   there is no wait: the credential goes as soon as it is issued. Days count on the property's
   calendar ("2d" before 15:00 is 15:00 two days before, whatever a DST change in between);
   hours and minutes are elapsed time ("48h" is 48 real hours).
3. Quiet hours (QUIET_HOURS, the property's local time): a message that would go inside them
   waits for the end of the quiet period, never dropped. Except when waiting would keep a key
   from a guest who can use it: a credential whose access has already started, or starts
   before the quiet period ends, goes at once; and no message is held past `ends_at` (the
   stay ends inside the quiet period: it goes at once, while the key still opens the door).
   A late-night message is a lesser harm than a guest locked out.

The configured window (`Window`: a `LeadTime` and `QuietHours`, each optional) is parsed from
the settings by app/settings/window.py. Every datetime given is timezone-aware; every datetime
returned is UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Literal

from app.settings.window import Window


@dataclass(frozen=True)
class SendAt:
    """Send no earlier than `at` (UTC; `now` itself when nothing holds it), and not at all
    from `expires_at` on."""

    at: datetime
    reason: Literal["now", "lead_time", "quiet_hours"]
    expires_at: datetime | None


@dataclass(frozen=True)
class TooLate:
    """The stay is over (or ends before the message could go): never send it."""

    ends_at: datetime


def decide(
    window: Window,
    *,
    now: datetime,
    starts_at: datetime | None,
    ends_at: datetime | None,
    tz: tzinfo,
    credential: bool = True,
) -> SendAt | TooLate:
    """When a guest message may go out. `credential`: it carries the key (lead time applies,
    and quiet hours never hold it once the guest can use it); otherwise a notice."""
    now = now.astimezone(UTC)
    ends = ends_at.astimezone(UTC) if ends_at is not None else None
    if ends is not None and now >= ends:
        return TooLate(ends)
    at = now
    reason: Literal["now", "lead_time", "quiet_hours"] = "now"
    if credential and window.lead_time is not None and starts_at is not None:
        earliest = window.lead_time.before(starts_at, tz).astimezone(UTC)
        if earliest > now:
            at, reason = earliest, "lead_time"
    if ends is not None and at >= ends:
        return TooLate(ends)  # only when starts_at is not before ends_at (bad data)
    quiet = window.quiet_hours
    if quiet is not None and quiet.contains(at, tz):
        quiet_end = quiet.end_after(at, tz).astimezone(UTC)
        usable_before_quiet_ends = credential and (starts_at is None or starts_at < quiet_end)
        past_the_stay = ends is not None and quiet_end >= ends
        if not usable_before_quiet_ends and not past_the_stay:
            at, reason = quiet_end, "quiet_hours"
    return SendAt(at, reason, ends)
