"""From a recorded event to messages at the Twilio and SendGrid stand-ins, through the real SDKs.

These drive `process_event` and `send_delivery` directly (the Celery tasks are thin wrappers
around them); tests/e2e/test_end_to_end.py runs the same path through real processes.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.context import Context
from app.delivery.send import Result
from app.errors import TransientProviderError
from app.events.processing import process_event
from app.ledger.models import Delivery, DeliveryStatus, EventStatus, FlagStatus, utcnow
from app.ledger.store import NewEvent
from app.settings import load_settings
from app.standins.seam import SAMPLES, SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.queueing import send_and_hand_on, sent_ids

CODE_ID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
MOBILE_ID = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
CARD_ID = "27d8ad77-55c2-4e20-b5b3-43555926f0e8"
GUEST_ID = "0d6e1c3b-7e0f-4b59-9d1a-2f3b7c9a8e41"
GRANT_ID = "b2c4e6f8-1a3c-4e5f-8a9b-0c1d2e3f4a5b"
PIN = "739164"
NEW_PIN = "582046"
INSTANT_KEY = "https://ik.seam.co/QWERTY42"


@pytest.fixture(autouse=True)
def distinctive_credentials(seam: SeamStandin) -> None:
    """Credentials no other text could contain by chance, so 'not in' assertions mean something."""
    set_method(seam, CODE_ID, code=PIN)
    set_method(seam, MOBILE_ID, instant_key_url=INSTANT_KEY)


def set_method(seam: SeamStandin, access_method_id: str, **changes: Any) -> None:
    method = seam.get("access_method", access_method_id)
    assert method is not None
    seam.put_access_method({**method, **changes})


def record(services: Context, sample: str, event_id: str | None = None, **changes: Any) -> int:
    """Record a sample event as the webhook would, returning its ledger id."""
    event = json.loads((SAMPLES / "events" / f"{sample}.json").read_text())
    event.update(changes)
    recorded = services.ledger.record_event(
        NewEvent(
            svix_id=None,
            seam_event_id=event_id or event["event_id"],
            event_type=event["event_type"],
            access_method_id=event.get("access_method_id"),
            # access_method.* events list their grants, access_grant.* events name one.
            access_grant_ids=tuple(
                event.get("access_grant_ids")
                or ([event["access_grant_id"]] if "access_grant_id" in event else [])
            ),
        )
    )
    return recorded.event_id


def send(services: Context, delivery_id: int, handed_on: list[int] | None = None) -> Result:
    """Send one delivery as the worker's task would; what it hands on lands in `handed_on`."""
    return send_and_hand_on(services, delivery_id, [] if handed_on is None else handed_on).result


def run(services: Context, event_id: int) -> list[Result]:
    """Process an event and send every delivery it hands on (fallbacks too), as workers would."""
    queue = sent_ids(process_event(services, event_id).next)
    results = []
    while queue:
        results.append(send(services, queue.pop(0), queue))
    return results


def time_passes(services: Context, delivery_id: int) -> None:
    """Make a delivery waiting for its retry due now, as if its backoff had elapsed."""
    with services.ledger.engine.begin() as connection:
        connection.execute(
            text("UPDATE deliveries SET next_attempt_at = :now WHERE id = :id"),
            {"now": utcnow() - timedelta(seconds=1), "id": delivery_id},
        )


def deliveries(services: Context) -> list[Delivery]:
    with Session(services.ledger.engine) as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def sms_bodies(twilio: TwilioStandin) -> list[str]:
    return [message["body"] for message in twilio.sent]


def test_pin_code_reaches_guest_by_sms_and_email(
    services: Context, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """An issued PIN code becomes one SMS and one email naming guest, room, stay and PIN."""
    results = run(services, record(services, "access_method.issued.code"))

    assert sorted(results) == [Result.SENT, Result.SENT]
    [sms] = twilio.sent
    assert sms["to"] == "+15555550123"
    for fact in (
        PIN,
        "Alex",
        "Room 204",
        "Fri, Jun 20, 2053, 3:00 PM",
        "Mon, Jun 23, 2053, 11:00 AM",
    ):
        assert fact in sms["body"]
    [mail] = sendgrid.sent
    assert mail["personalizations"][0]["to"][0]["email"] == "alex.rivera@example.com"
    parts = {part["type"]: part["value"] for part in mail["content"]}
    assert PIN in parts["text/plain"]
    assert PIN in parts["text/html"]
    assert "Room 204" in parts["text/html"]
    assert mail["subject"]
    assert {d.status for d in deliveries(services)} == {DeliveryStatus.SENT}


def test_instant_key_reaches_guest(
    services: Context, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """An issued mobile key sends its Instant Key URL by SMS and email."""
    run(services, record(services, "access_method.issued.mobile_key"))

    [sms] = sms_bodies(twilio)
    assert INSTANT_KEY in sms
    [mail] = sendgrid.sent
    assert all(INSTANT_KEY in part["value"] for part in mail["content"])


def test_duplicates_and_repeats_send_exactly_once(
    services: Context, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """The same event processed twice, and the same state under new event ids, sends once."""
    first = record(services, "access_method.issued.code")
    run(services, first)
    run(services, first)
    for n in range(3):
        run(services, record(services, "access_method.issued.code", event_id=f"repeat-{n}"))

    assert len(twilio.sent) == 1
    assert len(sendgrid.sent) == 1
    assert len(deliveries(services)) == 2


def test_a_delivery_handed_on_twice_is_sent_once(services: Context, twilio: TwilioStandin) -> None:
    """Two workers given the same delivery id: one claims and sends, the other does nothing."""
    process_event(services, record(services, "access_method.issued.code"))
    sms_id = next(d.id for d in deliveries(services) if d.channel == "sms")

    assert send(services, sms_id) == Result.SENT
    assert send(services, sms_id) == Result.NOT_PENDING
    assert len(twilio.sent) == 1


def test_reissued_with_new_code_delivers_the_new_code(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """A reissued access method whose code changed sends the new code, saying it changed."""
    run(services, record(services, "access_method.issued.code"))
    set_method(seam, CODE_ID, code=NEW_PIN)
    run(services, record(services, "access_method.reissued.backup_code", code=NEW_PIN))

    first, second = sms_bodies(twilio)
    assert PIN in first
    assert NEW_PIN in second
    assert PIN not in second
    assert "changed" in second.lower()


def test_reissued_with_same_code_sends_nothing(services: Context, twilio: TwilioStandin) -> None:
    """A reissue that leaves the guest's code as it was does not message the guest again."""
    run(services, record(services, "access_method.issued.code"))
    run(services, record(services, "access_method.reissued.backup_code"))

    assert len(twilio.sent) == 1


def test_unchanged_instant_key_is_not_resent(services: Context, twilio: TwilioStandin) -> None:
    """A mobile key reissued with the same Instant Key URL is not sent again."""
    run(services, record(services, "access_method.issued.mobile_key"))
    run(
        services,
        record(
            services,
            "access_method.issued.mobile_key",
            event_id="reissue-1",
            event_type="access_method.reissued",
        ),
    )

    assert len(twilio.sent) == 1


def test_delivery_channels_narrows_to_sms(
    settings_env: dict[str, str],
    services: Context,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:
    """DELIVERY_CHANNELS=sms sends no email."""
    narrowed = Context.from_settings(
        load_settings({**settings_env, "DELIVERY_CHANNELS": "sms"}), services.ledger
    )
    run(narrowed, record(narrowed, "access_method.issued.code"))

    assert len(twilio.sent) == 1
    assert sendgrid.sent == []


def test_guest_without_phone_gets_email_only(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """A guest with no phone number is emailed; nothing is sent by SMS."""
    guest = seam.get("user_identity", GUEST_ID)
    assert guest is not None
    seam.put_user_identity({**guest, "phone_number": None})
    run(services, record(services, "access_method.issued.code"))

    assert twilio.sent == []
    assert len(sendgrid.sent) == 1


def test_card_encoding_flags_front_desk_not_guest(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """A card needing encoding opens one flag and emails the front desk, never the guest; its
    issued closes the flag and tells the guest the card is ready at the desk."""
    event = record(services, "access_method.card_encoding_required")
    run(services, event)
    run(services, event)
    run(services, record(services, "access_method.card_encoding_required", event_id="again"))

    assert twilio.sent == []
    [mail] = sendgrid.sent
    assert mail["personalizations"][0]["to"][0]["email"] == "frontdesk@hotel.example"
    text_part = next(p["value"] for p in mail["content"] if p["type"] == "text/plain")
    for fact in (
        "Alex Rivera",
        "Room 204",
        "Fri, Jun 20, 2053, 3:00 PM",
        "Mon, Jun 23, 2053, 11:00 AM",
        GRANT_ID,
        CARD_ID,
    ):
        assert fact in text_part
    [flag] = services.ledger.flags(CARD_ID)
    assert flag.status == FlagStatus.OPEN

    set_method(seam, CARD_ID, is_issued=True, is_encoding_required=False)
    run(services, record(services, "access_method.issued.card"))
    run(services, record(services, "access_method.issued.card", event_id="issued-again"))
    [flag] = services.ledger.flags(CARD_ID)
    assert flag.status == FlagStatus.CLOSED
    # The guest is told once, on each channel, that the card waits at the desk (on by default).
    [sms] = twilio.sent
    assert "front desk" in sms["body"]
    assert sms["to"] == "+15555550123"
    _, ready = sendgrid.sent
    assert ready["personalizations"][0]["to"][0]["email"] == "alex.rivera@example.com"
    assert "ready" in ready["subject"]


def test_deleted_access_method_cancels_pending(services: Context, twilio: TwilioStandin) -> None:
    """access_method.deleted cancels deliveries that have not gone out yet."""
    process_event(services, record(services, "access_method.issued.code"))
    process_event(services, record(services, "access_method.deleted"))

    assert {d.status for d in deliveries(services)} == {DeliveryStatus.SUPERSEDED}
    for delivery in deliveries(services):
        assert send(services, delivery.id) == Result.NOT_PENDING
    assert twilio.sent == []


def test_credential_changed_before_sending_is_not_sent_stale(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """A delivery planned for a code that has since changed is superseded, not sent."""
    outcome = process_event(services, record(services, "access_method.issued.code"))
    handed_on = sent_ids(outcome.next)
    set_method(seam, CODE_ID, code=NEW_PIN)

    assert {send(services, d) for d in handed_on} == {Result.SUPERSEDED}
    assert twilio.sent == []


def test_access_method_gone_from_seam_sends_nothing(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """An event for an access method Seam no longer has is processed without sending."""
    seam.delete_access_method(CODE_ID)
    event_id = record(services, "access_method.issued.code")
    run(services, event_id)

    assert twilio.sent == []
    event = services.ledger.get_event(event_id)
    assert event is not None
    assert event.status == EventStatus.PROCESSED
    assert event.detail == "the access method no longer exists"


def test_permanent_twilio_error_is_recorded_not_retried(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """Twilio 21211 (invalid number) fails the SMS for good, with the code recorded."""
    guest = seam.get("user_identity", GUEST_ID)
    assert guest is not None
    seam.put_user_identity({**guest, "phone_number": "+15005550001"})
    run(services, record(services, "access_method.issued.code"))

    sms = next(d for d in deliveries(services) if d.channel == "sms")
    assert sms.status == DeliveryStatus.FAILED
    assert sms.error_code == "21211"
    [attempt] = services.ledger.get_delivery(sms.id).attempts  # type: ignore[union-attr]
    assert attempt.outcome == "permanent_error"
    assert twilio.sent == []


def test_transient_twilio_error_retries_then_sends_once(
    services: Context, twilio: TwilioStandin
) -> None:
    """A Twilio 500 leaves the delivery pending for a retry, which then sends exactly once."""
    process_event(services, record(services, "access_method.issued.code"))
    sms_id = next(d.id for d in deliveries(services) if d.channel == "sms")
    twilio.fail_next(1, 500, {"code": 20500, "message": "Internal Server Error", "status": 500})

    assert send(services, sms_id) == Result.RETRY
    assert services.ledger.get_delivery(sms_id).status == DeliveryStatus.PENDING  # type: ignore[union-attr]
    assert send(services, sms_id) == Result.NOT_PENDING  # not due before its backoff
    time_passes(services, sms_id)

    assert send(services, sms_id) == Result.SENT
    assert len(twilio.sent) == 1
    outcomes = [a.outcome for a in services.ledger.get_delivery(sms_id).attempts]  # type: ignore[union-attr]
    assert outcomes == ["transient_error", "sent"]


def test_seam_outage_while_planning_raises_for_retry(services: Context, seam: SeamStandin) -> None:
    """When Seam answers 5xx, processing raises a transient error and the event stays open."""
    seam.fail_next(10, 503, {"error": {"type": "service_unavailable", "message": "down"}})
    event_id = record(services, "access_method.issued.code")

    with pytest.raises(TransientProviderError):
        process_event(services, event_id)
    event = services.ledger.get_event(event_id)
    assert event is not None
    assert event.status == EventStatus.RECEIVED


def test_dry_run_channels_record_without_sending(
    settings_env: dict[str, str],
    services: Context,
    tmp_path: Any,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:
    """Without provider credentials, messages are rendered and recorded, not sent."""
    env = {k: v for k, v in settings_env.items() if not k.startswith(("TWILIO_", "SENDGRID_"))}
    dry = Context.from_settings(
        load_settings({**env, "DRY_RUN_OUTBOX": str(tmp_path)}), services.ledger
    )
    results = run(dry, record(dry, "access_method.issued.code"))

    assert sorted(results) == [Result.DRY_RUN, Result.DRY_RUN]
    assert twilio.sent == []
    assert sendgrid.sent == []
    assert {d.status for d in deliveries(dry)} == {DeliveryStatus.DRY_RUN}
    outbox = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert len(outbox) == 2
    assert all(PIN in (m.get("body") or m.get("text")) for m in outbox)


def test_the_pin_is_never_stored_in_clear(services: Context, seam: SeamStandin) -> None:
    """No column of any ledger table holds the PIN or the Instant Key URL."""
    run(services, record(services, "access_method.issued.code", code=PIN))
    run(services, record(services, "access_method.issued.mobile_key"))
    set_method(seam, CODE_ID, code=NEW_PIN)
    run(services, record(services, "access_method.reissued.backup_code", code=NEW_PIN))

    with services.ledger.engine.connect() as connection:
        for table in ("events", "deliveries", "attempts", "front_desk_flags"):
            for row in connection.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
                dumped = " ".join(str(value) for value in row)
                assert PIN not in dumped
                assert NEW_PIN not in dumped
                assert INSTANT_KEY not in dumped


def test_sending_at_once_reuses_what_processing_read(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """Sent in the processing task, both messages go out on two Seam reads, not twelve: the
    access method with its related spaces and grants in one call, and the guest."""
    event_id = record(services, "access_method.issued.code")
    seam.clear_requests()
    outcome = process_event(services, event_id, send_now=True)

    assert outcome.next == ()
    assert len(twilio.sent) == 1
    assert len(sendgrid.sent) == 1
    assert PIN in twilio.sent[0]["body"]
    reads = sorted(r.path for r in seam.requests)
    assert reads == ["/access_methods/get_related", "/user_identities/get"]


def test_a_grant_missing_from_related_resources_is_read_on_its_own(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """A grant the event names but get_related does not list is read with access_grants/get,
    and its guest still gets the code."""
    grant = seam.get("access_grant", GRANT_ID)
    assert grant is not None
    seam.put_access_grant({**grant, "access_method_ids": []})
    seam.clear_requests()

    run(services, record(services, "access_method.issued.code"))

    assert "/access_grants/get" in [r.path for r in seam.requests]
    assert PIN in sms_bodies(twilio)[0]
