"""Per-hotel routing in properties.toml: each hotel's (or room's) front desk and the senders its
guests see, checked by `keycourier templates check` and picked up by hot reload."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.messages.check import check_templates
from app.messages.live import LiveTemplates
from app.messages.properties import Routing, parse_properties

SHIPPED = Path(__file__).resolve().parents[2] / "templates"
HOTEL = "661025d3-c1d2-403c-83a8-af153aaedfbc"
ROOM = "5e1a2b3c-4d5e-4f60-8172-839405162738"
SERVICE = "MG" + "0123456789abcdef" * 2

GROUP = f"""
[workspaces."{HOTEL}"]
front_desk_email = "desk@lumiere.example"
twilio_messaging_service_sid = "{SERVICE}"
sendgrid_from_email = "keys@lumiere.example"
sendgrid_from_name = "Hôtel Lumière"

[spaces."{ROOM}"]
front_desk_email = "annex@lumiere.example"
twilio_from = "+33612345678"
"""


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A private copy of the shipped templates, free to edit."""
    return Path(shutil.copytree(SHIPPED, tmp_path / "templates"))


def test_a_room_wins_over_its_hotel_and_the_sms_sender_is_taken_whole() -> None:
    """A room's desk and SMS number replace its hotel's; the hotel's messaging service does not
    leak into the room's sender; what the room leaves unset comes from the hotel."""
    properties = parse_properties(GROUP)

    assert properties.routing(HOTEL, [ROOM]) == Routing(
        front_desk_email="annex@lumiere.example",
        sms_sender="+33612345678",
        email_sender="keys@lumiere.example",
        email_sender_name="Hôtel Lumière",
    )
    assert properties.routing(HOTEL, ["another-room"]) == Routing(
        front_desk_email="desk@lumiere.example",
        sms_sender=SERVICE,
        email_sender="keys@lumiere.example",
        email_sender_name="Hôtel Lumière",
    )
    assert properties.routing("another-hotel", []) == Routing()


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ('front_desk_email = "front desk"', "not an email address"),
        ('sendgrid_from_email = "keys@"', "not an email address"),
        ('twilio_from = "06 12 34 56 78"', "E.164"),
        ('twilio_messaging_service_sid = "PN0123"', "Messaging Service SID"),
        ('sendgrid_from_name = "Lumière\\nBcc: x@y.example"', "one line"),
        ('twilio_from = "+33612345678"\ntwilio_messaging_service_sid = "' + SERVICE + '"', "both"),
        ("front_desk_email = 42", "text in quotes"),
    ],
)
def test_a_bad_address_or_sender_fails_the_check_at_its_line(
    templates: Path, setting: str, words: str
) -> None:
    """An address that is not an email, a number not in E.164, a SID that is not a messaging
    service's, a name of two lines, or two SMS senders at once fail `templates check` there."""
    (templates / "properties.toml").write_text(f'\n[workspaces."{HOTEL}"]\n{setting}\n')

    problems = {p.where: p.reason for p in check_templates(templates).problems}

    assert list(problems) == ["properties.toml:2"]
    assert words in problems["properties.toml:2"]


def test_a_hotel_group_using_every_setting_passes(templates: Path) -> None:
    """A hotel group's properties.toml using every routing setting passes the check."""
    (templates / "properties.toml").write_text(GROUP)
    assert check_templates(templates).ok


def test_a_new_front_desk_is_used_without_a_restart_and_a_bad_one_refused(
    templates: Path,
) -> None:
    """An edit giving a hotel its own desk is used at once; a later edit with a malformed
    address is refused and the last good desk stays in use."""
    live = LiveTemplates(templates, reload_seconds=0)
    assert live.routing(HOTEL, []).front_desk_email is None

    (templates / "properties.toml").write_text(
        f'[workspaces."{HOTEL}"]\nfront_desk_email = "desk@lumiere.example"\n'
    )
    assert live.routing(HOTEL, []).front_desk_email == "desk@lumiere.example"

    (templates / "properties.toml").write_text(
        f'[workspaces."{HOTEL}"]\nfront_desk_email = "desk at lumiere"\n'
    )
    assert live.routing(HOTEL, []).front_desk_email == "desk@lumiere.example"
    assert live.status()["status"] == "degraded"
