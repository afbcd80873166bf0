"""The delivery window as configured: DELIVERY_LEAD_TIME and QUIET_HOURS parsed into values.

`LeadTime` (calendar days plus elapsed time), `QuietHours` (a daily local-time range) and
`Window` (both, each optional) are what Settings holds; the rules that apply them to a message
are app/delivery/window.py's `decide`. Pure: no clock, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

DURATION_HINT = 'a duration such as "48h", "2d", "90m", "1d12h" or ISO 8601 "PT48H", "P2D"'
QUIET_HOURS_HINT = 'a local time range such as "22:00-07:00"'

_SHORT = re.compile(r"(\d+)([dhm])")
_ISO = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True)
class LeadTime:
    """How long before the start of access a credential may go: calendar days plus elapsed
    time."""

    days: int = 0
    elapsed: timedelta = timedelta(0)

    def before(self, moment: datetime, tz: tzinfo) -> datetime:
        """`moment` minus this lead time: days on the wall clock of `tz`, then elapsed time."""
        wall = moment.astimezone(tz).replace(tzinfo=None) - timedelta(days=self.days)
        return local_instant(wall, tz) - self.elapsed

    def __str__(self) -> str:
        parts = [f"{self.days}d"] if self.days else []
        minutes = int(self.elapsed.total_seconds() // 60)
        seconds = int(self.elapsed.total_seconds() % 60)
        if minutes >= 60:
            parts.append(f"{minutes // 60}h")
        if minutes % 60:
            parts.append(f"{minutes % 60}m")
        if seconds:
            parts.append(f"{seconds}s")
        return "".join(parts) or "0m"


@dataclass(frozen=True)
class QuietHours:
    """A daily local-time range [start, end) when guests are not messaged; it may span
    midnight (22:00-07:00)."""

    start: time
    end: time

    def contains(self, moment: datetime, tz: tzinfo) -> bool:
        clock = moment.astimezone(tz).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end

    def end_after(self, moment: datetime, tz: tzinfo) -> datetime:
        """When the quiet period `moment` falls in ends (`moment` must be inside it)."""
        local = moment.astimezone(tz)
        day = local.date()
        if self.start > self.end and local.time().replace(tzinfo=None) >= self.start:
            day += timedelta(days=1)  # the evening part: it ends tomorrow morning
        return local_instant(datetime.combine(day, self.end), tz)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class Window:
    """The configured delivery window: None means no lead-time wait / no quiet hours."""

    lead_time: LeadTime | None = None
    quiet_hours: QuietHours | None = None


def local_instant(wall: datetime, tz: tzinfo) -> datetime:
    """The instant the clocks of `tz` show the naive `wall` time, in UTC.

    Ambiguous (the hour repeated when clocks go back): the first of the two. Nonexistent (the
    hour skipped when clocks go forward): the moment the clocks jump, the first instant whose
    local time is not before `wall`.
    """
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # In a gap: fold=0 reads `wall` with the offset before the jump (an instant after it),
    # fold=1 with the offset after (an instant before it). Bisect to the jump, to the second.
    after = int(first.timestamp())
    before = int(wall.replace(tzinfo=tz, fold=1).astimezone(UTC).timestamp())
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, tz).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def parse_lead_time(text: str) -> LeadTime:
    """`48h`, `2d`, `90m`, `1d12h`, or ISO 8601 `PT48H`, `P2D`, `P1DT12H`, `P1W`; else
    ValueError (whose message, read after the setting's name, says what is wrong). Years and
    months are refused: their length depends on the date."""
    value = text.strip()
    if not value:
        raise ValueError("is empty")
    if value[0] in "Pp":
        return _parse_iso(value.upper())
    lowered = value.lower().replace(" ", "")
    if not re.fullmatch(rf"(?:{_SHORT.pattern})+", lowered):
        raise ValueError("is not a duration")
    days, minutes, seen = 0, 0, set()
    for number, unit in _SHORT.findall(lowered):
        if unit in seen:
            raise ValueError(f"gives {unit!r} twice")
        seen.add(unit)
        if unit == "d":
            days += int(number)
        else:
            minutes += int(number) * (60 if unit == "h" else 1)
    return LeadTime(days, timedelta(minutes=minutes))


def _parse_iso(value: str) -> LeadTime:
    match = _ISO.fullmatch(value)
    if match is None or value in ("P", "PT") or value.endswith("T"):
        if re.search(r"P\d+[YM]", value):
            raise ValueError("gives years or months, whose length depends on the date")
        raise ValueError("is not an ISO 8601 duration of weeks, days, hours, minutes, seconds")
    weeks, days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return LeadTime(weeks * 7 + days, timedelta(hours=hours, minutes=minutes, seconds=seconds))


def parse_quiet_hours(text: str) -> QuietHours:
    """`22:00-07:00` (24-hour local times, start before end or spanning midnight); else
    ValueError."""
    parts = [part.strip() for part in text.strip().split("-")]
    clocks = [_CLOCK.fullmatch(part) for part in parts]
    if len(parts) != 2 or clocks[0] is None or clocks[1] is None:
        raise ValueError("is not a range of two 24-hour times")
    start, end = (time(int(c.group(1)), int(c.group(2))) for c in clocks if c is not None)
    if start == end:
        raise ValueError("starts and ends at the same time")
    return QuietHours(start, end)
