"""Finding deliveries (guest, reservation, phone, email; status and channel filters) and the
JSON API's answers, on SQLite and PostgreSQL, with deliveries planned and sent by the real
pipeline (process_event, send_delivery) through the stand-ins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from app.context import Context
from app.delivery.destinations import destination_hash, normalise
from app.delivery.planned import About, Destination, new_delivery
from app.events.processing import process_event
from app.ledger.console import ConsoleStore, DeliveryQuery
from app.ledger.scope import EVERYWHERE
from app.messages.kinds import MessageKind
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.standins.twilio import TwilioStandin
from app.web.main import create_app
from tests.console.support import API_TOKEN, console_env, sign_in
from tests.events.test_pipeline import CODE_ID, PIN, record, send, set_method


@pytest.fixture
def sent(services: Context, seam: SeamStandin) -> list[int]:
    """Alex Rivera's PIN planned and sent on both channels; returns the delivery ids."""
    set_method(seam, CODE_ID, code=PIN)
    event_id = record(services, "access_method.issued.code")
    process_event(services, event_id)
    ids = services.ledger.pending_delivery_ids(CODE_ID)
    assert len(ids) == 2
    for delivery_id in ids:
        send(services, delivery_id)
    return ids


@pytest.fixture
def api(services: Context, settings_env: dict[str, str], redis_url: str) -> Iterator[TestClient]:
    settings = load_settings({**settings_env, "REDIS_URL": redis_url, **console_env()})
    with TestClient(create_app(settings, ledger=services.ledger)) as client:
        client.headers["Authorization"] = f"Bearer {API_TOKEN}"
        yield client


def test_phone_and_email_are_normalised_before_hashing() -> None:
    """Spaces, dashes and brackets do not matter in a number, nor case in an address."""
    assert normalise("+1 (555) 555-0123") == "+15555550123"
    assert normalise(" Alex.Rivera@Example.com ") == "alex.rivera@example.com"
    assert normalise("Rivera") is None
    assert normalise("+12") is None
    key = b"k" * 32
    assert destination_hash(key, "+1 555 555 0123") == destination_hash(key, "+15555550123")
    assert destination_hash(b"x" * 32, "+15555550123") != destination_hash(key, "+15555550123")


def test_deliveries_are_found_by_name_reservation_phone_and_email(
    services: Context, sent: list[int]
) -> None:
    """The pipeline records each delivery's destination hash; a search finds the guest by
    part of the name, the reservation, the whole phone number or email, and filters apply."""
    store = ConsoleStore(services.ledger.engine)
    key = services.policy.search_key()

    def ids(**query: object) -> set[int]:
        return {d.id for d in store.find_deliveries(DeliveryQuery(EVERYWHERE, **query))}  # type: ignore[arg-type]

    assert ids(text="rivera") == set(sent)
    assert ids(text="reservation-8841") == set(sent)
    assert ids(text="nobody at all") == set()
    by_phone = ids(destination_hash=destination_hash(key, "+1 555-555-0123"))
    by_email = ids(destination_hash=destination_hash(key, "ALEX.RIVERA@example.com"))
    assert len(by_phone) == 1
    assert len(by_email) == 1
    assert by_phone | by_email == set(sent)
    assert ids(destination_hash=destination_hash(key, "+15555550124")) == set()
    assert ids(text="rivera", channel="sms") == by_phone
    assert ids(text="rivera", status="sent") == set(sent)
    assert ids(text="rivera", status="failed") == set()
    # Percent and underscore are searched for, not wildcards.
    assert ids(text="%") == set()


def test_api_lists_searches_and_shows_a_delivery_with_its_timeline(
    api: TestClient, sent: list[int], twilio: TwilioStandin
) -> None:
    """The API finds the guest by phone, shows masked destinations, and a delivery's timeline
    of attempts, never the PIN or the full number."""
    listed = api.get("/api/deliveries", params={"q": "+1 555 555 0123"}).json()
    [sms] = listed["deliveries"]
    assert sms["channel"] == "sms"
    assert sms["destination"] == "+1********23"
    assert sms["status"] == "sent"

    one = api.get(f"/api/deliveries/{sms['id']}")
    assert one.status_code == 200
    timeline = one.json()["timeline"]
    assert [entry["what"] for entry in timeline] == ["planned", "attempt 1"]
    assert timeline[1]["status"] == "sent"
    assert timeline[1]["source"] == "twilio"
    for answer in (one.text, api.get("/api/deliveries").text):
        assert PIN not in answer
        assert "+15555550123" not in answer
        assert "alex.rivera@example.com" not in answer
    assert len(twilio.sent) == 1  # reading sent nothing

    assert api.get("/api/deliveries", params={"status": "nonsense"}).status_code == 400
    assert api.get("/api/deliveries/999999").status_code == 404
    assert (
        api.get("/api/deliveries", params={"channel": "email"}).json()["deliveries"][0][
            "destination"
        ]
        == "a***@example.com"
    )


def test_console_search_page_finds_by_email_and_filters(api: TestClient, sent: list[int]) -> None:
    """The deliveries page finds the guest by email address and applies the status filter."""
    api.headers.pop("Authorization")
    sign_in(api)
    page = api.get("/ops/", params={"q": "alex.rivera@example.com"})
    assert page.status_code == 200
    assert page.text.count("/ops/deliveries/") == 2  # one row, linked twice (id and name)
    assert "a***@example.com" in page.text
    assert "alex.rivera@example.com</td>" not in page.text
    empty = api.get("/ops/", params={"q": "alex.rivera@example.com", "status": "failed"})
    assert "No delivery matches." in empty.text


def test_alerts_list_a_key_held_while_seam_reprograms(
    api: TestClient, services: Context, seam: SeamStandin
) -> None:
    """A guest's PIN held by a revoke (Seam re-programming) is on the alerts list until Seam
    issues it again; a sent one is not."""
    set_method(seam, CODE_ID, code=PIN)
    process_event(services, record(services, "access_method.issued.code"))
    set_method(seam, CODE_ID, is_issued=False)
    process_event(services, record(services, "access_method.revoked"))

    alerts = api.get("/api/alerts").json()["deliveries"]
    assert sorted((d["kind"], d["status"]) for d in alerts) == [
        ("pin_code", "held"),
        ("pin_code", "held"),
    ]

    set_method(seam, CODE_ID, is_issued=True)
    event_id = record(services, "access_method.reissued.backup_code", code=PIN)
    process_event(services, event_id)
    for delivery_id in services.ledger.pending_delivery_ids(CODE_ID):
        send(services, delivery_id)
    assert api.get("/api/alerts").json()["deliveries"] == []


def test_a_delivery_page_offers_a_resend_only_for_a_guests_key(
    api: TestClient, services: Context, sent: list[int]
) -> None:
    """The PIN's page has the resend form; a notice's page does not (a resend of a notice is
    refused: only a key is sent again)."""
    notice_id, _ = services.ledger.plan_delivery(
        new_delivery(
            MessageKind.CARD_READY,
            access_method_id=CODE_ID,
            channel="sms",
            credential_fingerprint="card_ready",
            event_id=None,
            about=About(user_identity_id="ui-1", guest_name="Alex Rivera"),
            destination=Destination.of("+15555550123", services.policy.search_key()),
        )
    )
    api.headers.pop("Authorization")
    sign_in(api)

    key_page = api.get(f"/ops/deliveries/{sent[0]}")
    notice_page = api.get(f"/ops/deliveries/{notice_id}")

    assert key_page.status_code == notice_page.status_code == 200
    assert "Resend to guest" in key_page.text
    assert "Resend to guest" not in notice_page.text
