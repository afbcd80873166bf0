"""Message variables: stay times in the hotel's time zone and the guest's language, and which
language, zone and hotel name properties.toml gives a workspace or space."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.errors import PropertiesError
from app.messages import catalog
from app.messages.kinds import MessageKind
from app.messages.properties import Audience, parse_properties
from app.messages.rendering import Renderer
from app.messages.sms_segments import count_segments
from app.messages.variables import format_stay_time, sample_context

MOMENT = datetime(2025, 1, 20, 15, 30, tzinfo=UTC)  # winter: Paris is UTC+1, New York UTC-5
PROPERTIES = """
[workspaces."ws-paris"]
property_name = "Hôtel Lumière"
locale = "fr"
timezone = "Europe/Paris"

[workspaces."ws-nyc"]
timezone = "America/New_York"

[spaces."room-101"]
locale = "en"
"""


@pytest.mark.parametrize(
    ("locale", "timezone", "expected"),
    [
        ("en", "UTC", "Mon, Jan 20, 2025, 3:30 PM"),
        ("en", "America/New_York", "Mon, Jan 20, 2025, 10:30 AM"),
        ("en_GB", "Europe/London", "Mon, 20 Jan 2025, 15:30"),
        ("fr", "Europe/Paris", "lun. 20 janv. 2025, 16:30"),
        ("es", "Europe/Madrid", "lun, 20 ene 2025, 16:30"),
        ("de", "Asia/Tokyo", "Di., 21. Jan. 2025, 00:30"),
    ],
)
def test_stay_time_is_written_in_the_zone_and_language(
    locale: str, timezone: str, expected: str
) -> None:
    """The same instant reads as the hotel's local time, in the guest's language's own format."""
    assert format_stay_time(MOMENT, Audience(locale, timezone)) == expected


def test_stay_time_has_only_gsm7_spaces() -> None:
    """CLDR's narrow no-break space before PM is replaced, so the SMS stays GSM-7."""
    text = format_stay_time(MOMENT, Audience("en", "UTC"))
    assert count_segments(text).encoding == "GSM-7"


def test_a_stay_without_times_is_empty() -> None:
    """No start or end time gives an empty text, which the templates replace with words."""
    assert format_stay_time(None, Audience("fr", "Europe/Paris")) == ""


def test_space_entry_wins_over_its_workspace() -> None:
    """A space's locale overrides its workspace's; the workspace still gives zone and name."""
    properties = parse_properties(PROPERTIES)
    entry = properties.lookup("ws-paris", ["room-101"])
    assert (entry.locale, entry.timezone, entry.property_name) == (
        "en",
        "Europe/Paris",
        "Hôtel Lumière",
    )
    assert properties.lookup("ws-paris", []).locale == "fr"
    assert properties.lookup("ws-unknown", ["room-999"]).locale is None


def test_locale_codes_are_normalised() -> None:
    """pt-BR and pt_br are written as Babel's pt_BR."""
    properties = parse_properties('[spaces.a]\nlocale = "pt-BR"\n[spaces.b]\nlocale = "pt_br"\n')
    assert {properties.spaces["a"].locale, properties.spaces["b"].locale} == {"pt_BR"}


def test_bad_locale_is_refused_with_its_line() -> None:
    """An unknown language code is a PropertiesError at the line of its section."""
    with pytest.raises(PropertiesError) as caught:
        parse_properties('\n\n[workspaces."w"]\nlocale = "xx-nope"\n')
    assert caught.value.line == 3


def test_audience_combines_the_file_and_the_defaults(tmp_path: Path) -> None:
    """Mapped ids get their language, zone and name; others get DEFAULT_LOCALE and TIMEZONE."""
    shipped = Path(__file__).resolve().parents[2] / "templates"
    folder = tmp_path / "templates"
    shutil.copytree(shipped, folder)
    (folder / "properties.toml").write_text(PROPERTIES, encoding="utf-8")
    renderer = Renderer.from_folder(folder, default_timezone="Europe/London")
    assert renderer.audience("pin_code", "ws-paris", []) == Audience(
        "fr", "Europe/Paris", "Hôtel Lumière"
    )
    assert renderer.audience("pin_code", "ws-nyc", []) == Audience("en", "America/New_York", "")
    assert renderer.audience("pin_code", None, []) == Audience("en", "Europe/London", "")

    audience = renderer.audience("pin_code", "ws-paris", [])
    sms = renderer.render_sms("pin_code", sample_context("pin_code", audience))
    assert "ven. 20 juin 2025, 17:00" in sms  # the sample stay: 15:00 UTC is 17:00 in Paris


def test_only_the_problem_reports_and_seams_reports_get_a_sample_problem() -> None:
    """The messages that see {{ problem }} are the front-desk problem reports (what went wrong
    with a guest's messages) and the emails that pass on what Seam reports (a key's errors, a
    grant Seam could not complete); only those get a sample problem in a preview."""
    audience = Audience(locale="en", timezone="UTC")
    reports = {kind.value for kind in MessageKind if kind.reports_problem}
    assert reports == {"front_desk_undelivered", "front_desk_delivery_problem"}
    seams = {"front_desk_key_error", "front_desk_grant_incomplete"}
    for message in catalog.MESSAGES:
        context = sample_context(message, audience)
        assert (context["problem"] is not None) == (message in reports | seams), message
