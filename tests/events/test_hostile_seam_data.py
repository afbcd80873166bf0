"""What Seam answers is input: a guest's NUL bytes, over-long values or odd unicode must not stop
another guest's key, and an event that cannot be processed is set aside, not retried forever.

On PostgreSQL, which refuses NULs and values longer than a column, as production does.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.context import Context
from app.events.tries import handle_event
from app.ledger.console import ConsoleStore
from app.ledger.models import Delivery, Event, FrontDeskFlag
from app.ledger.store import Ledger
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from app.web.main import create_app
from tests.console.support import API_TOKEN, console_env, sign_in
from tests.events.test_lifecycle import GRANT_B, GUEST_B, PHONE_B, second_guest
from tests.events.test_pipeline import CODE_ID, PIN, record, set_method
from tests.queueing import send_and_hand_on, sent_ids

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
ALEX_PHONE = "+15555550123"
ALEX_EMAIL = "alex.rivera@example.com"
HOSTILE_GUESTS: dict[str, dict[str, Any]] = {
    "NUL bytes": {
        "full_name": "Bea\x00 Okafor",
        "phone_number": "+1555\x00555 0188",
        "email_address": "bea.okafor\x00@example.com",
    },
    "over-long values": {
        "full_name": "Bea " + "Okafor" * 2000,
        "phone_number": "+1" + "5" * 400,
        "email_address": "bea" + "a" * 400 + "@example.com",
    },
    "odd unicode": {
        "full_name": "\u202eBea\ud800 O\u0301" + "\u0301" * 600 + "kafor\u200b\x1b[31m",
        "phone_number": "+" + "".join(chr(0xFF10 + int(d)) for d in "15555550188"),  # full-width
        "email_address": "bea.okafor@example.com\u202e\n",
    },
}


def hostile_grant(seam: SeamStandin) -> None:
    """Bea's grant, with a reservation key and a name past every column and a NUL in each."""
    grant = seam.get("access_grant", GRANT_B)
    assert grant is not None
    seam.put_access_grant(
        {
            **grant,
            "access_grant_key": "reservation\x00" + "9" * 500,
            "reservation_key": "R\x00" + "8" * 500,
            "display_name": "Bea\x00" + "!" * 500,
        }
    )


def stored(ledger: Ledger, model: type[Any]) -> list[Any]:
    with Session(ledger.engine) as session:
        return list(session.scalars(select(model).order_by(model.id)))


def deliver(services: Context, event_id: int) -> None:
    """Handle an event as the worker's task does, then send what it hands on."""
    outcome = handle_event(services, event_id)
    for delivery_id in sent_ids(outcome.next):
        send_and_hand_on(services, delivery_id, [])


@pytest.mark.parametrize("changes", list(HOSTILE_GUESTS.values()), ids=list(HOSTILE_GUESTS))
def test_one_guests_hostile_data_does_not_stop_the_other_guests_key(
    services: Context,
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    changes: dict[str, Any],
) -> None:
    """Two guests share a code; one's name, phone and email carry NULs, run past the ledger's
    columns or hold control and bidi characters: the event is processed, the other guest gets
    the code by SMS and email, and what is stored of the hostile guest fits and is clean."""
    set_method(seam, CODE_ID, code=PIN)
    second_guest(seam)
    guest = seam.get("user_identity", GUEST_B)
    assert guest is not None
    seam.put_user_identity({**guest, **changes})
    hostile_grant(seam)

    event_id = record(services, "access_method.issued.code")
    deliver(services, event_id)

    [event] = stored(services.ledger, Event)
    assert event.status == "processed", event.detail
    assert next(m["body"] for m in twilio.sent if m["to"] == ALEX_PHONE).count(PIN) == 1
    assert ALEX_EMAIL in [m["personalizations"][0]["to"][0]["email"] for m in sendgrid.sent]
    for delivery in stored(services.ledger, Delivery):
        for text in (delivery.guest_name, delivery.reservation, delivery.destination_masked):
            assert text is None or ("\x00" not in text and len(text) <= 200)
            assert text is None or not any(ord(c) < 32 or 0x202A <= ord(c) <= 0x202E for c in text)
    to_bea = [m for m in twilio.sent if m["to"] != ALEX_PHONE]
    assert all(m["to"] == PHONE_B for m in to_bea)  # cleaned, or not sent at all


def test_a_flag_for_a_card_keeps_a_clean_fitted_guest_name(
    services: Context, seam: SeamStandin
) -> None:
    """A card's front-desk flag stores the guest's name cut to its column, without NULs."""
    second_guest(seam)
    guest = seam.get("user_identity", GUEST_B)
    assert guest is not None
    seam.put_user_identity({**guest, **HOSTILE_GUESTS["over-long values"]})
    hostile_grant(seam)
    deliver(
        services,
        record(
            services,
            "access_method.card_encoding_required",
            access_grant_ids=[GRANT_B],
        ),
    )
    [event] = stored(services.ledger, Event)
    assert event.status == "processed", event.detail
    for flag in stored(services.ledger, FrontDeskFlag):
        assert flag.guest_name is None or len(flag.guest_name) <= 200


def poisoned_count() -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "keycourier_events_set_aside":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


def test_an_event_failing_every_try_is_set_aside_with_a_reason_and_an_alert(
    settings_env: dict[str, str], ledger: Ledger, seam: SeamStandin, redis_url: str
) -> None:
    """An access method Seam describes in a way keycourier cannot act on fails every try: after
    EVENT_MAX_TRIES it is poisoned, with its reason, listed on the console's alerts, counted
    in keycourier_events_set_aside_total, and never handed out by the sweeper again."""
    services = Context.from_settings(
        load_settings({**settings_env, "EVENT_MAX_TRIES": "3"}), ledger
    )
    set_method(seam, CODE_ID, mode="telepathy")
    event_id = record(services, "access_method.issued.code")
    before = poisoned_count()

    for _ in range(5):
        handle_event(services, event_id)

    [event] = stored(ledger, Event)
    assert event.status == "poisoned"
    assert event.attempts == 3
    assert "unsupported_mode" in (event.detail or "")
    assert poisoned_count() == before + 1
    far_future = event.received_at.replace(year=event.received_at.year + 1)
    assert ledger.stale_event_ids(far_future, far_future, 10) == []
    alerts = ConsoleStore(ledger.engine).poisoned_events()
    assert [e.id for e in alerts] == [event_id]
    web = load_settings({**settings_env, "REDIS_URL": redis_url, **console_env()})
    with TestClient(create_app(web, ledger=ledger)) as client:
        sign_in(client)
        page = client.get("/ops/alerts")
        assert "Seam events set aside" in page.text
        assert "unsupported_mode" in page.text
        api = client.get("/api/alerts", headers={"Authorization": f"Bearer {API_TOKEN}"})
        [aside] = api.json()["events_set_aside"]
        assert aside["id"] == event_id
        assert (aside["attempts"], aside["failed_tries"], aside["workers_lost"]) == (3, 3, 0)
