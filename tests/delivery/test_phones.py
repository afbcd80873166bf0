"""Guests' phone numbers: parsed with phonenumbers in the hotel's country (properties.toml),
sent to as E.164, refused at once with the reason when they cannot be a number (the email
takes over), and found by the console however they are typed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.context import Context
from app.delivery.destinations import destination_hash, search_hashes, search_key_from
from app.delivery.phones import parse_phone
from app.events.planner import Recipient, address
from app.events.processing import process_event
from app.ledger.console import ConsoleStore, DeliveryQuery
from app.ledger.models import DeliveryStatus
from app.ledger.scope import EVERYWHERE
from app.ledger.store import Ledger, NewDelivery, NewEvent
from app.messages.check import check_templates
from app.ports import AccessGrant, Guest
from app.settings import load_settings
from app.standins.seam import SAMPLES, SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import TEMPLATES
from tests.queueing import send_and_hand_on, sent_ids

WORKSPACE_ID = "661025d3-c1d2-403c-83a8-af153aaedfbc"
GUEST_ID = "0d6e1c3b-7e0f-4b59-9d1a-2f3b7c9a8e41"


@pytest.mark.parametrize(
    ("typed", "country", "e164"),
    [
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+33 6 12 34 56 78", None, "+33612345678"),
        ("0033 6 12 34 56 78", None, "+33612345678"),
        ("+1 (555) 555-0123", "FR", "+15555550123"),  # its own country code wins
        ("07700 900123", "GB", "+447700900123"),
    ],
)
def test_numbers_are_read_as_e164(typed: str, country: str | None, e164: str) -> None:
    """National numbers are read in the hotel's country, international ones as they are."""
    assert parse_phone(typed, country).e164 == e164


@pytest.mark.parametrize(
    ("typed", "country", "problem"),
    [
        ("06 12 34 56 78", None, "has no country code (+...), and templates/properties.toml"),
        ("+0612345678", None, "has a country code no country uses"),
        ("12 34", "FR", "is too short for FR"),
        ("+33 6 12 34 56 78 90 12", None, "is too long for FR"),
    ],
)
def test_numbers_that_cannot_be_are_refused_with_the_reason(
    typed: str, country: str | None, problem: str
) -> None:
    """What the hand-made normaliser turned into "+0612345678" is refused, with a reason that
    holds no digit of the number."""
    parsed = parse_phone(typed, country)
    assert parsed.e164 is None
    assert parsed.problem is not None
    assert problem in parsed.problem
    assert not any(character.isdigit() for character in parsed.problem)


def test_a_number_read_again_is_not_parsed_again() -> None:
    """A guest's message reads the same number several times: once parsed, it is kept, the
    same answer for the same text and country, and not for another country."""
    first = parse_phone("06 98 76 54 32", "FR")
    before = parse_phone.cache_info()
    assert parse_phone("06 98 76 54 32", "FR") is first
    assert parse_phone.cache_info().hits == before.hits + 1
    assert parse_phone("06 98 76 54 32", "BE").e164 != first.e164


def recipient(phone: str) -> Recipient:
    grant = AccessGrant("ag-1", "ui-1", "Guest, Room 1", None, None, ("sp-1",))
    return Recipient(grant, Guest("ui-1", "Sam Guest", phone, "g@example.com"))


def test_the_planner_addresses_the_sms_in_e164() -> None:
    """A French guest's national number, in a hotel in France, is planned as +33..."""
    plan = address("pin_code", [recipient("06 12 34 56 78")], ("sms", "email"), "FR")
    assert [(m.channel, m.destination) for m in plan.messages] == [
        ("sms", "+33612345678"),
        ("email", "g@example.com"),
    ]
    assert plan.notes == ()


def test_the_planner_notes_a_number_that_cannot_be() -> None:
    """Without a country for the hotel a national number is planned as it is (its send fails
    at once and falls back) and the plan says why."""
    plan = address("pin_code", [recipient("06 12 34 56 78")], ("sms", "email"), None)
    assert [m.channel for m in plan.messages] == ["sms", "email"]
    (note,) = plan.notes
    assert "has no country code" in note
    assert "fall back to email" in note


def templates_in(tmp_path: Path, properties: str) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES, folder)
    (folder / "properties.toml").write_text(properties)
    return folder


def context(
    settings_env: dict[str, str], ledger: Ledger, templates: Path, **changes: str
) -> Context:
    env = {**settings_env, "TEMPLATES_DIR": str(templates), **changes}
    return Context.from_settings(load_settings(env), ledger)


def run_code_event(ctx: Context) -> None:
    """Record and process the sample PIN event, then send all it hands on, fallbacks too."""
    event = json.loads((SAMPLES / "events" / "access_method.issued.code.json").read_text())
    recorded = ctx.ledger.record_event(
        NewEvent(
            svix_id=None,
            seam_event_id=event["event_id"],
            event_type=event["event_type"],
            access_method_id=event["access_method_id"],
            access_grant_ids=tuple(event["access_grant_ids"]),
        )
    )
    queue = sent_ids(process_event(ctx, recorded.event_id).next)
    while queue:
        queue += sent_ids(send_and_hand_on(ctx, queue.pop(0), []).next)


def set_phone(seam: SeamStandin, phone: str) -> None:
    guest = seam.get("user_identity", GUEST_ID)
    assert guest is not None
    seam.put_user_identity({**guest, "phone_number": phone})


def test_a_national_number_is_sent_to_in_the_hotels_country(
    settings_env: dict[str, str],
    ledger: Ledger,
    seam: SeamStandin,
    twilio: TwilioStandin,
    tmp_path: Path,
) -> None:
    """With `country = "FR"` for the workspace, "06 12 34 56 78" gets its SMS at
    +33612345678, and the ledger masks that number."""
    set_phone(seam, "06 12 34 56 78")
    folder = templates_in(tmp_path, f'[workspaces."{WORKSPACE_ID}"]\ncountry = "FR"\n')
    run_code_event(context(settings_env, ledger, folder))

    assert [message["to"] for message in twilio.sent] == ["+33612345678"]
    sms = next(d for d in ledger.recent_deliveries(10) if d.channel == "sms")
    assert sms.status == DeliveryStatus.SENT
    assert sms.destination_masked == "+3********78"


def test_a_number_that_cannot_be_falls_back_to_email_with_the_reason(
    settings_env: dict[str, str],
    ledger: Ledger,
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    tmp_path: Path,
) -> None:
    """With SMS as the only channel, a number too short for France never reaches Twilio: the
    SMS fails at once with the reason, and the key goes by email as its fallback."""
    set_phone(seam, "12 34")
    folder = templates_in(tmp_path, f'[workspaces."{WORKSPACE_ID}"]\ncountry = "FR"\n')
    run_code_event(context(settings_env, ledger, folder, DELIVERY_CHANNELS="sms"))

    assert twilio.sent == []
    found = {d.channel: d for d in ledger.recent_deliveries(10) if d.kind == "pin_code"}
    sms, email = found["sms"], found["email"]
    assert sms.status == DeliveryStatus.FAILED
    assert sms.error_message == "the phone number is too short for FR"
    assert email.fallback_for_id == sms.id
    assert email.status == DeliveryStatus.SENT
    assert len(sendgrid.sent) == 1


def test_the_console_finds_a_guest_by_a_national_number(ledger: Ledger, tmp_path: Path) -> None:
    """A delivery to +33612345678 is found by "06 12 34 56 78" when a hotel is in France,
    and by the international form whatever the hotels' countries."""
    key = search_key_from(b"k" * 32)
    ledger.plan_delivery(
        NewDelivery(
            access_method_id="am-1",
            kind="pin_code",
            channel="sms",
            credential_fingerprint="fp",
            event_id=None,
            access_grant_id="ag-1",
            user_identity_id="ui-1",
            guest_name="Camille",
            reservation="r-1",
            destination_masked="+3********78",
            destination_hash=destination_hash(key, "+33612345678"),
        )
    )
    store = ConsoleStore(ledger.engine)

    def found(typed: str, countries: set[str]) -> int:
        hashes = search_hashes(key, typed, countries)
        query = DeliveryQuery(EVERYWHERE, text=typed, destination_hashes=hashes)
        return len(store.find_deliveries(query))

    assert found("06 12 34 56 78", {"FR", "GB"}) == 1
    assert found("+33 6 12 34 56 78", set()) == 1
    assert found("06 12 34 56 78", {"GB"}) == 0


def test_templates_check_reads_the_country(tmp_path: Path) -> None:
    """`country` is a properties.toml key like the others: a code nobody uses is a problem
    with its line, and lower case is accepted."""
    good = templates_in(tmp_path / "good", '[spaces."sp-1"]\ncountry = "fr"\n')
    assert check_templates(good).ok

    bad = templates_in(tmp_path / "bad", '[spaces."sp-1"]\nlocale = "fr"\ncountry = "France"\n')
    problems = [str(problem) for problem in check_templates(bad).problems]
    assert problems == [
        "properties.toml:1: [spaces.sp-1] 'France' is not a country code (ISO 3166, two "
        "letters, e.g. FR, GB, US)"
    ]
