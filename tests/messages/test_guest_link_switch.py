"""properties.toml's guest_resend_link: a per-hotel switch, off by default, that a room can turn
off; `templates check` refuses a value that is not true or false, renders the shipped key
messages with the link, and measures their SMS with it once a hotel turns it on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.errors import PropertiesError
from app.messages.check import check_configured, check_templates
from app.messages.properties import Audience, parse_properties
from app.messages.rendering import Renderer
from app.messages.variables import SAMPLE_RESEND_URL, sample_context
from app.settings import load_settings
from tests.conftest import TEMPLATES, WEBHOOK_SECRET

HOTEL = "661025d3-c1d2-403c-83a8-af153aaedfbc"
ROOM = "5e1a2b3c-4d5e-4f60-8172-839405162738"


def test_the_switch_is_per_hotel_off_by_default_and_a_room_may_turn_it_off() -> None:
    """Unset: off. A hotel's true covers its rooms, but a room's false wins there."""
    properties = parse_properties(
        f'[workspaces."{HOTEL}"]\nguest_resend_link = true\n'
        f'[spaces."{ROOM}"]\nguest_resend_link = false\n'
    )
    assert properties.guest_resend_link(HOTEL, []) is True
    assert properties.guest_resend_link(HOTEL, ["another-room"]) is True
    assert properties.guest_resend_link(HOTEL, [ROOM]) is False
    assert properties.guest_resend_link("another-hotel", []) is False
    assert properties.offers_guest_resend_link()
    assert not parse_properties(
        f'[workspaces."{HOTEL}"]\nlocale = "fr"\n'
    ).offers_guest_resend_link()


@pytest.mark.parametrize("value", ['"true"', "1", '"yes"'])
def test_a_switch_that_is_not_true_or_false_is_refused(value: str) -> None:
    """Text or a number is a mistake named with its line, not a silent on."""
    with pytest.raises(PropertiesError, match="must be true or false") as refused:
        parse_properties(f'[workspaces."{HOTEL}"]\nguest_resend_link = {value}\n')
    assert refused.value.line == 1


def test_text_settings_must_still_be_text() -> None:
    """Allowing a boolean for the switch allows none elsewhere."""
    with pytest.raises(PropertiesError, match="must be text in quotes"):
        parse_properties(f'[workspaces."{HOTEL}"]\nproperty_name = true\n')


def turned_on(tmp_path: Path) -> Path:
    folder = Path(shutil.copytree(TEMPLATES, tmp_path / "templates"))
    (folder / "properties.toml").write_text(
        f'[workspaces."{HOTEL}"]\nguest_resend_link = true\n', encoding="utf-8"
    )
    return folder


def test_the_check_measures_the_sms_with_the_link_once_a_hotel_turns_it_on(
    tmp_path: Path,
) -> None:
    """The shipped key SMS fit one segment without the link (so a one-segment limit still
    passes while no hotel uses it) and two with it: with a hotel turning it on, a one-segment
    limit fails each key SMS, and the two-segment default passes."""
    assert check_templates(TEMPLATES, max_segments=1).ok
    folder = turned_on(tmp_path)
    assert check_templates(folder, max_segments=2).ok
    failed = {p.where for p in check_templates(folder, max_segments=1).problems}
    assert failed == {
        f"{message}/{locale}/sms.txt"
        for message in ("pin_code", "code_changed", "instant_key")
        for locale in ("en", "fr")
    }


def test_every_shipped_key_message_shows_the_link_when_given_and_nothing_when_not() -> None:
    """Each part (SMS, text and HTML email) of each key message, in each language, shows the
    link when it is set; unset, no part mentions one."""
    renderer = Renderer.from_folder(TEMPLATES)
    for message in ("pin_code", "code_changed", "instant_key"):
        for locale in ("en", "fr"):
            audience = Audience(locale, "UTC", "Hotel Lumière")
            linked = sample_context(message, audience, with_resend_link=True)
            plain = sample_context(message, audience)
            for part in ("sms.txt", "email.txt", "email.html"):
                assert SAMPLE_RESEND_URL in renderer.render_part(message, part, linked)
                assert "/k/" not in renderer.render_part(message, part, plain)


def test_the_check_notes_a_switch_without_a_public_address(tmp_path: Path) -> None:
    """A hotel turns the link on but PUBLIC_BASE_URL is unset: the check passes, and says no
    message carries the link until it is set."""
    folder = turned_on(tmp_path)
    env = {"SEAM_WEBHOOK_SECRET": WEBHOOK_SECRET, "TEMPLATES_DIR": str(folder)}
    without = check_configured(load_settings(env))
    assert without.ok
    assert any("PUBLIC_BASE_URL is not set" in note for note in without.notes)
    with_address = check_configured(
        load_settings({**env, "PUBLIC_BASE_URL": "https://keys.hotel.example"})
    )
    assert not any("PUBLIC_BASE_URL" in note for note in with_address.notes)
