"""WhatsApp in properties.toml: each hotel's channel order and sender, the content templates its
messages go out as and the variables filling their placeholders, checked by `keycourier
templates check`; and the channel order's meaning (app/delivery/channels.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.delivery.channels import fallback_order, first_channels
from app.errors import PropertiesError
from app.messages.check import check_templates
from app.messages.properties import parse_properties
from app.messages.rendering import Renderer
from app.messages.whatsapp import ContentTemplate, content_variables

SHIPPED = Path(__file__).resolve().parents[2] / "templates"
HOTEL = "661025d3-c1d2-403c-83a8-af153aaedfbc"
OTHER = "2f8e6c1a-0b4d-4e7f-9a3c-5d6e7f809a1b"
ROOM = "5e1a2b3c-4d5e-4f60-8172-839405162738"
PIN_EN, PIN_FR, KEY, HOTEL_PIN = ("HX" + c * 32 for c in "1234")

KEYS = f"""
[whatsapp.pin_code]
content_sid = {{ en = "{PIN_EN}", fr = "{PIN_FR}" }}
variables = {{ 1 = "guest_first_name", 2 = "pin_code", 3 = "space_names" }}

[whatsapp.instant_key]
content_sid = "{KEY}"
variables = {{ 1 = "instant_key_url" }}
"""

HOTEL_ON = f"""
[workspaces."{HOTEL}"]
channels = ["whatsapp", "sms", "email"]
whatsapp_from = "whatsapp:+33612345678"
"""


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SHIPPED, tmp_path / "templates"))


def check(
    templates: Path, properties: str, channels: tuple[str, ...] = ("sms", "email")
) -> list[str]:
    (templates / "properties.toml").write_text(properties)
    result = check_templates(templates, channels=channels)  # type: ignore[arg-type]
    return [str(problem) for problem in result.problems] + result.notes


def test_a_hotel_turning_whatsapp_on_with_every_hotels_templates_passes(templates: Path) -> None:
    """A hotel's channels, sender and the top-level key templates pass; the notices it has no
    template for are noted, not refused."""
    found = check(templates, KEYS + HOTEL_ON)
    assert len(found) == 1
    assert "card_ready" in found[0]
    assert "notice" in found[0]


def test_a_hotel_sending_by_whatsapp_needs_each_key_messages_template(templates: Path) -> None:
    """Without a content template for instant_key, the hotel that sends keys by WhatsApp fails
    the check, naming the table to add; a hotel without WhatsApp needs none."""
    only_pin = KEYS.split("[whatsapp.instant_key]")[0]
    found = check(templates, only_pin + HOTEL_ON)
    assert any("instant_key" in f and "[whatsapp.instant_key]" in f for f in found)
    assert check(templates, only_pin) == []


def test_delivery_channels_with_whatsapp_need_the_templates_too(templates: Path) -> None:
    """DELIVERY_CHANNELS naming whatsapp makes every hotel without its own order need them."""
    found = check(templates, "", channels=("whatsapp", "email"))
    assert any("DELIVERY_CHANNELS" in f and "pin_code" in f for f in found)


def test_languages_without_the_default_one_are_refused(templates: Path) -> None:
    """A content_sid table of languages must name DEFAULT_LOCALE's, which the others fall back
    to."""
    french_only = KEYS.replace(f'en = "{PIN_EN}", ', "")
    found = check(templates, french_only + HOTEL_ON)
    assert any("whatsapp.pin_code.content_sid" in f and "(en)" in f for f in found)


@pytest.mark.parametrize(
    ("table", "words"),
    [
        (f'content_sid = "{PIN_EN}"\nvariables = {{ 1 = "guest_first_name", 3 = "pin_code" }}',
         "placeholders 1 to 3 with no gap"),
        (f'content_sid = "{PIN_EN}"\nvariables = {{ 1 = "guest_first_name" }}',
         "no placeholder is filled with pin_code"),
        (f'content_sid = "{PIN_EN}"\nvariables = {{ 1 = "pin_code", 2 = "instant_key_url" }}',
         "'instant_key_url' is not a variable pin_code has"),
        (f'content_sid = "{PIN_EN}"\nvariables = {{ 1 = "pin_code", 2 = "problem" }}',
         "'problem' is not a variable"),
        (f'content_sid = "{PIN_EN}"\nvariables = {{ one = "pin_code" }}',
         "not a placeholder number"),
        ('content_sid = "HX123"\nvariables = { 1 = "pin_code" }', "not a content template SID"),
        ('variables = { 1 = "pin_code" }', "needs content_sid"),
        (f'content_sid = {{ klingon = "{PIN_EN}" }}\nvariables = {{ 1 = "pin_code" }}',
         "not a language code"),
    ],
)  # fmt: skip
def test_a_content_template_that_cannot_work_fails_at_its_line(
    templates: Path, table: str, words: str
) -> None:
    """Each mistake is refused with its reason and properties.toml's line, before any guest is
    sent anything."""
    found = check(templates, f"# every hotel's\n[whatsapp.pin_code]\n{table}\n")
    assert len(found) == 1
    assert found[0].startswith("properties.toml:2:")
    assert words in found[0]


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ('channels = ["whatsapp", "fax"]', "'fax' is not a channel"),
        ('channels = ["sms", "sms"]', "sms is listed twice"),
        ('channels = "whatsapp"', "must be a list"),
        ('whatsapp_from = "0612345678"', "not a phone number in E.164 form"),
        ('whatsapp_from = "MG123"', "not a Twilio Messaging Service SID"),
    ],
)
def test_a_hotels_channels_and_sender_are_checked(setting: str, words: str) -> None:
    """A channel that does not exist or twice, and a sender Twilio cannot send from, stop the
    file from being used."""
    with pytest.raises(PropertiesError, match=words):
        parse_properties(f'[workspaces."{HOTEL}"]\n{setting}\n')


def test_a_rooms_and_hotels_own_templates_win_over_every_hotels() -> None:
    """The hotel's own pin_code template replaces the top-level one for its guests only; the
    channel order and sender come from the first entry naming them."""
    hotel_pin = f"""
[workspaces."{HOTEL}".whatsapp.pin_code]
content_sid = "{HOTEL_PIN}"
variables = {{ 1 = "pin_code" }}
[spaces."{ROOM}"]
channels = ["sms", "whatsapp"]
"""
    properties = parse_properties(KEYS + HOTEL_ON + hotel_pin)
    mine = properties.whatsapp_template("pin_code", HOTEL, [ROOM])
    theirs = properties.whatsapp_template("pin_code", OTHER, [])
    assert mine == ContentTemplate({"": HOTEL_PIN}, {"1": "pin_code"})
    assert theirs is not None
    assert theirs.sids["fr"] == PIN_FR
    assert properties.routing(HOTEL, [ROOM]).channels == ("sms", "whatsapp")
    assert properties.routing(HOTEL, []).channels == ("whatsapp", "sms", "email")
    assert properties.routing(HOTEL, []).whatsapp_sender == "+33612345678"
    assert properties.routing(OTHER, []).channels is None


def test_the_guest_language_picks_the_template_and_code_changed_uses_pin_codes(
    templates: Path,
) -> None:
    """A French guest's message goes as the French template, a German one as DEFAULT_LOCALE's;
    code_changed, with no template of its own, goes as pin_code's."""
    (templates / "properties.toml").write_text(KEYS + HOTEL_ON)
    renderer = Renderer.from_folder(templates)
    context = {"guest_first_name": "Alex", "pin_code": "4821", "space_names": ["204", "Spa"]}
    french = renderer.whatsapp_content("pin_code", HOTEL, [], context | {"locale": "fr"})
    german = renderer.whatsapp_content("code_changed", HOTEL, [], context | {"locale": "de"})
    assert french is not None
    assert german is not None
    assert (french.content_sid, german.content_sid) == (PIN_FR, PIN_EN)
    assert dict(french.variables) == {"1": "Alex", "2": "4821", "3": "204, Spa"}
    assert renderer.whatsapp_content("card_ready", HOTEL, [], context | {"locale": "en"}) is None


def test_placeholders_are_one_line_and_never_empty() -> None:
    """WhatsApp refuses an empty parameter and one with line breaks or runs of spaces: a
    missing value is "-", whitespace is folded."""
    template = ContentTemplate({"": PIN_EN}, {"1": "guest_first_name", "2": "reservation",
                                              "3": "space_names", "10": "pin_code"})  # fmt: skip
    context = {"guest_first_name": "", "reservation": None, "space_names": [],
               "pin_code": "12\n  34     56"}  # fmt: skip
    assert content_variables(template, context) == {"1": "-", "2": "-", "3": "-", "10": "12 34 56"}


@pytest.mark.parametrize(
    ("order", "at_once", "after_first"),
    [
        (("whatsapp", "sms", "email"), ("whatsapp", "email"), ("sms", "email")),
        (("sms", "email"), ("sms", "email"), ("email",)),
        (("sms", "whatsapp", "email"), ("sms", "email"), ("whatsapp", "email")),
        (("whatsapp",), ("whatsapp",), ("sms", "email")),
        (("email", "whatsapp"), ("email", "whatsapp"), ("whatsapp", "sms")),
    ],
)
def test_one_phone_channel_goes_at_once_and_the_next_stands_by(
    order: tuple[str, ...], at_once: tuple[str, ...], after_first: tuple[str, ...]
) -> None:
    """WhatsApp and SMS reach one number: only the first listed goes at once (email beside it);
    when the first fails, the order goes on from it, then SMS and email even if unlisted."""
    assert first_channels(order) == at_once  # type: ignore[arg-type]
    assert fallback_order(order, order[0]) == after_first  # type: ignore[arg-type]
    assert "whatsapp" not in fallback_order(("sms", "email"), "email")
