"""The delivery window's rules (app/delivery/window.py, on the values app/settings/window.py
parses) on explicit datetimes: lead time, quiet hours spanning midnight, daylight saving
changes, the end of the stay."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.delivery.window import SendAt, TooLate, decide
from app.settings.window import (
    LeadTime,
    QuietHours,
    Window,
    local_instant,
    parse_lead_time,
    parse_quiet_hours,
)

PARIS = ZoneInfo("Europe/Paris")  # 2026: clocks forward on 29 March, back on 25 October
NEW_YORK = ZoneInfo("America/New_York")
NIGHT = QuietHours(time(22), time(7))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


# -- parsing the settings ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("48h", LeadTime(0, timedelta(hours=48))),
        ("2d", LeadTime(2, timedelta(0))),
        ("90m", LeadTime(0, timedelta(minutes=90))),
        ("1d12h", LeadTime(1, timedelta(hours=12))),
        (" 2D ", LeadTime(2, timedelta(0))),
        ("PT48H", LeadTime(0, timedelta(hours=48))),
        ("P2D", LeadTime(2, timedelta(0))),
        ("P1DT12H30M", LeadTime(1, timedelta(hours=12, minutes=30))),
        ("P1W", LeadTime(7, timedelta(0))),
        ("0h", LeadTime(0, timedelta(0))),
    ],
)
def test_lead_time_formats(text: str, expected: LeadTime) -> None:
    """Short forms and ISO 8601 durations read as calendar days plus elapsed time."""
    assert parse_lead_time(text) == expected


@pytest.mark.parametrize(
    "text", ["48", "2 days", "-1h", "1.5h", "1h1h", "h", "", "P1M", "P1Y", "PT", "P", "tomorrow"]
)
def test_lead_time_refuses_anything_else(text: str) -> None:
    """A bare number, a unit spelled out, a sign, months or years: refused, not guessed."""
    with pytest.raises(ValueError, match=r"\S"):
        parse_lead_time(text)


def test_quiet_hours_format() -> None:
    """HH:MM-HH:MM, spanning midnight or not; anything else is refused."""
    assert parse_quiet_hours("22:00-07:00") == NIGHT
    assert parse_quiet_hours(" 13:30 - 14:00 ") == QuietHours(time(13, 30), time(14))
    for bad in ("22-07", "22:00", "25:00-07:00", "22:00-07:60", "22:00-22:00", "10pm-7am"):
        with pytest.raises(ValueError, match=r"\S"):
            parse_quiet_hours(bad)


# -- the window --------------------------------------------------------------------------


def test_no_window_sends_at_once() -> None:
    """Unset settings: the credential goes now, whenever the stay starts."""
    now = utc(2026, 6, 1, 12)
    decision = decide(
        Window(), now=now, starts_at=utc(2026, 7, 1, 13), ends_at=utc(2026, 7, 3, 9), tz=PARIS
    )
    assert decision == SendAt(now, "now", utc(2026, 7, 3, 9))


def test_never_after_the_stay() -> None:
    """At or past ends_at it is too late, whatever the window."""
    ends = utc(2026, 7, 3, 9)
    for now in (ends, ends + timedelta(minutes=1)):
        decision = decide(Window(), now=now, starts_at=utc(2026, 7, 1), ends_at=ends, tz=PARIS)
        assert decision == TooLate(ends)
    before = decide(
        Window(), now=ends - timedelta(minutes=1), starts_at=None, ends_at=ends, tz=PARIS
    )
    assert isinstance(before, SendAt)


def test_lead_time_holds_the_credential_until_its_time() -> None:
    """48h before a 15:00 (Paris, summer) check-in is 13:00 UTC two days before; once that
    moment has passed, it goes at once."""
    window = Window(parse_lead_time("48h"))
    starts, ends = paris(2026, 6, 20, 15), paris(2026, 6, 23, 11)
    early = decide(window, now=utc(2026, 6, 1), starts_at=starts, ends_at=ends, tz=PARIS)
    assert early == SendAt(utc(2026, 6, 18, 13), "lead_time", utc(2026, 6, 23, 9))
    late = decide(window, now=utc(2026, 6, 19), starts_at=starts, ends_at=ends, tz=PARIS)
    assert late == SendAt(utc(2026, 6, 19), "now", utc(2026, 6, 23, 9))


def test_lead_time_days_follow_the_calendar_across_a_dst_change() -> None:
    """Check-in 15:00 on 30 March 2026, the day after Paris moves its clocks forward: "2d"
    is 15:00 local on the 28th (14:00 UTC), "48h" is 48 real hours (13:00 UTC)."""
    starts = paris(2026, 3, 30, 15)
    assert starts.astimezone(UTC) == utc(2026, 3, 30, 13)
    now = utc(2026, 3, 1)
    by_days = decide(
        Window(parse_lead_time("2d")), now=now, starts_at=starts, ends_at=None, tz=PARIS
    )
    by_hours = decide(
        Window(parse_lead_time("48h")), now=now, starts_at=starts, ends_at=None, tz=PARIS
    )
    assert by_days == SendAt(utc(2026, 3, 28, 14), "lead_time", None)
    assert by_hours == SendAt(utc(2026, 3, 28, 13), "lead_time", None)


def test_lead_time_of_zero_waits_for_the_start() -> None:
    """`0h` is not "at once": the credential goes when access starts."""
    starts = utc(2026, 6, 20, 13)
    decision = decide(
        Window(parse_lead_time("0h")), now=utc(2026, 6, 1), starts_at=starts, ends_at=None, tz=PARIS
    )
    assert decision == SendAt(starts, "lead_time", None)


@pytest.mark.parametrize(
    ("local_now", "released"),
    [
        (paris(2026, 6, 10, 23, 30), paris(2026, 6, 11, 7)),  # evening: tomorrow morning
        (paris(2026, 6, 11, 2, 15), paris(2026, 6, 11, 7)),  # after midnight: this morning
        (paris(2026, 6, 10, 22), paris(2026, 6, 11, 7)),  # the first quiet minute
    ],
)
def test_quiet_hours_spanning_midnight_defer_to_the_local_morning(
    local_now: datetime, released: datetime
) -> None:
    """22:00-07:00 in Paris: a message due inside waits until 07:00 local (05:00 UTC)."""
    decision = decide(
        Window(quiet_hours=NIGHT),
        now=local_now,
        starts_at=paris(2026, 6, 12, 15),
        ends_at=paris(2026, 6, 14, 11),
        tz=PARIS,
    )
    assert decision == SendAt(released.astimezone(UTC), "quiet_hours", utc(2026, 6, 14, 9))
    assert released.astimezone(UTC).hour == 5


@pytest.mark.parametrize("local_now", [paris(2026, 6, 10, 21, 59), paris(2026, 6, 11, 7)])
def test_outside_quiet_hours_goes_at_once(local_now: datetime) -> None:
    """21:59 and 07:00 are not quiet."""
    decision = decide(
        Window(quiet_hours=NIGHT),
        now=local_now,
        starts_at=paris(2026, 6, 12, 15),
        ends_at=None,
        tz=PARIS,
    )
    assert decision == SendAt(local_now.astimezone(UTC), "now", None)


def test_quiet_hours_over_the_nights_clocks_change() -> None:
    """07:00 local is 05:00 UTC after clocks go forward, 06:00 UTC after they go back."""
    window = Window(quiet_hours=NIGHT)
    spring = decide(
        window, now=paris(2026, 3, 28, 23), starts_at=paris(2026, 4, 2, 15), ends_at=None, tz=PARIS
    )
    assert spring == SendAt(utc(2026, 3, 29, 5), "quiet_hours", None)
    autumn = decide(
        window,
        now=paris(2026, 10, 24, 23),
        starts_at=paris(2026, 10, 30, 15),
        ends_at=None,
        tz=PARIS,
    )
    assert autumn == SendAt(utc(2026, 10, 25, 6), "quiet_hours", None)


def test_quiet_hours_ending_in_the_skipped_hour_end_when_the_clocks_jump() -> None:
    """Quiet until 02:30 on the night 02:00-03:00 does not exist: released at 03:00 local."""
    decision = decide(
        Window(quiet_hours=QuietHours(time(23), time(2, 30))),
        now=paris(2026, 3, 28, 23, 30),
        starts_at=paris(2026, 4, 2, 15),
        ends_at=None,
        tz=PARIS,
    )
    assert decision == SendAt(utc(2026, 3, 29, 1), "quiet_hours", None)
    assert decision.at.astimezone(PARIS).time() == time(3)


def test_local_instant_of_a_repeated_hour_is_the_first() -> None:
    """02:30 happens twice on 25 October 2026 in Paris: the earlier one (CEST) is taken."""
    assert local_instant(datetime(2026, 10, 25, 2, 30), PARIS) == utc(2026, 10, 25, 0, 30)


def test_same_day_quiet_hours() -> None:
    """A range that does not span midnight (13:00-14:00) ends the same day, in New York."""
    decision = decide(
        Window(quiet_hours=QuietHours(time(13), time(14))),
        now=datetime(2026, 1, 15, 13, 20, tzinfo=NEW_YORK),
        starts_at=datetime(2026, 1, 20, 15, tzinfo=NEW_YORK),
        ends_at=None,
        tz=NEW_YORK,
    )
    assert decision == SendAt(utc(2026, 1, 15, 19), "quiet_hours", None)


def test_lead_time_landing_in_quiet_hours_waits_for_the_morning() -> None:
    """Lead time 2h before an 08:00 check-in is 06:00, inside 22:00-07:00: sent at 07:00."""
    decision = decide(
        Window(parse_lead_time("2h"), NIGHT),
        now=paris(2026, 6, 1, 12),
        starts_at=paris(2026, 6, 10, 8),
        ends_at=paris(2026, 6, 12, 11),
        tz=PARIS,
    )
    assert decision == SendAt(
        paris(2026, 6, 10, 7).astimezone(UTC), "quiet_hours", utc(2026, 6, 12, 9)
    )


def test_quiet_hours_never_keep_a_key_the_guest_can_use() -> None:
    """A late arrival (access from 23:30) and a guest already mid-stay get their key at once,
    in quiet hours: a late-night message is a lesser harm than a locked door."""
    window = Window(quiet_hours=NIGHT)
    now = paris(2026, 6, 10, 23)
    late_arrival = decide(
        window, now=now, starts_at=paris(2026, 6, 10, 23, 30), ends_at=None, tz=PARIS
    )
    mid_stay = decide(window, now=now, starts_at=paris(2026, 6, 8, 15), ends_at=None, tz=PARIS)
    no_start = decide(window, now=now, starts_at=None, ends_at=None, tz=PARIS)
    for decision in (late_arrival, mid_stay, no_start):
        assert decision == SendAt(now.astimezone(UTC), "now", None)


def test_a_stay_ending_inside_quiet_hours_is_not_waited_out() -> None:
    """A notice (no lead time) due at 23:00 for a stay ending 03:00 goes at once, not at 07:00
    when it would be useless; one for a stay ending at noon waits for the morning."""
    window = Window(parse_lead_time("48h"), NIGHT)
    now = paris(2026, 6, 10, 23)
    ending_at_night, ending_at_noon = (
        decide(
            window, now=now, starts_at=paris(2026, 6, 12, 15), ends_at=ends, tz=PARIS,
            credential=False,
        )
        for ends in (paris(2026, 6, 11, 3), paris(2026, 6, 11, 12))
    )  # fmt: skip
    assert ending_at_night == SendAt(now.astimezone(UTC), "now", utc(2026, 6, 11, 1))
    assert ending_at_noon == SendAt(utc(2026, 6, 11, 5), "quiet_hours", utc(2026, 6, 11, 10))


def test_bad_grant_times_are_too_late_not_an_error() -> None:
    """A grant whose start is after its end never sends (and does not crash)."""
    decision = decide(
        Window(parse_lead_time("1h")),
        now=utc(2026, 6, 1),
        starts_at=utc(2026, 6, 5),
        ends_at=utc(2026, 6, 2),
        tz=PARIS,
    )
    assert decision == TooLate(utc(2026, 6, 2))
