"""Events about an access grant as a whole: what Seam could not create, a door lost, the grant
deleted, the grant created. Each is re-read from Seam, told to the front desk at most once per
grant and event, and never to the guest; duplicates and out-of-order arrivals change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.context import Context
from app.events.processing import process_event
from app.ledger.models import DeliveryStatus, EventStatus, FlagStatus
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.events.test_pipeline import (
    CARD_ID,
    GRANT_ID,
    deliveries,
    record,
    run,
    send,
)

INCOMPLETE = "access_grant.could_not_create_requested_access_methods"
DOOR_LOST = "access_grant.access_to_door_lost"
MISSING_DEVICE = "2b6e7a1c-4d3f-4e8a-9c0b-1f2e3d4c5b6a"
REASON = "The lock on Room 204 does not support access codes"


def grant_cannot_create(seam: SeamStandin, **changes: Any) -> None:
    """The sample grant as Seam has it after failing to create its PIN code."""
    grant = seam.get("access_grant", GRANT_ID)
    assert grant is not None
    requested = [dict(r) for r in grant["requested_access_methods"]]
    requested[0]["created_access_method_ids"] = []
    error = {
        "error_code": "cannot_create_requested_access_methods",
        "message": REASON,
        "created_at": "2025-06-16T16:54:31.104Z",
        "missing_device_ids": [MISSING_DEVICE],
    }
    seam.put_access_grant(
        {**grant, "errors": [error], "requested_access_methods": requested, **changes}
    )


def front_desk_texts(sendgrid: SendGridStandin) -> list[str]:
    return [
        next(p["value"] for p in mail["content"] if p["type"] == "text/plain")
        for mail in sendgrid.sent
    ]


def test_could_not_create_tells_the_front_desk_what_is_missing(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """Seam's failure to create a requested key is one front-desk email naming the guest, the
    stay, Seam's reason, what was not created and the device left out; the guest gets nothing."""
    grant_cannot_create(seam)
    event = record(services, INCOMPLETE)
    run(services, event)
    run(services, event)

    assert twilio.sent == []
    [mail] = sendgrid.sent
    assert mail["personalizations"][0]["to"][0]["email"] == "frontdesk@hotel.example"
    [text] = front_desk_texts(sendgrid)
    for fact in ("Alex Rivera", "Room 204", "Fri, Jun 20, 2053", "reservation-8841", REASON,
                 "PIN Code", MISSING_DEVICE):  # fmt: skip
        assert fact in text
    [delivery] = deliveries(services)
    assert (delivery.kind, delivery.access_grant_id) == ("front_desk_grant_incomplete", GRANT_ID)


def test_could_not_create_is_told_once_per_grant_and_event(
    services: Context, seam: SeamStandin, sendgrid: SendGridStandin
) -> None:
    """The same event twice (and its retry) is one email; a new event from Seam is another."""
    grant_cannot_create(seam)
    first = record(services, INCOMPLETE)
    run(services, first)
    run(services, record(services, INCOMPLETE))  # Svix's retry: the same Seam event id
    run(services, record(services, INCOMPLETE, event_id="a-second-failure"))

    assert len(sendgrid.sent) == 2


def test_could_not_create_resolved_since_tells_no_one(
    services: Context, sendgrid: SendGridStandin
) -> None:
    """An event that arrives after Seam created everything (the grant has no such error now)
    plans nothing."""
    event = record(services, INCOMPLETE)
    run(services, event)

    assert sendgrid.sent == []
    assert deliveries(services) == []
    assert "created what was requested since" in (services.ledger.get_event(event).detail or "")


def test_could_not_create_after_the_grant_was_deleted_tells_no_one(
    services: Context, seam: SeamStandin, sendgrid: SendGridStandin
) -> None:
    """Out of order: a failure reported after the grant's deletion is not news to anyone."""
    with seam._lock:
        seam._stores["access_grant"].pop(GRANT_ID)
    run(services, record(services, INCOMPLETE))

    assert sendgrid.sent == []


def test_could_not_create_after_the_stay_tells_no_one(
    services: Context, seam: SeamStandin, sendgrid: SendGridStandin
) -> None:
    """A stay that has ended needs no front-desk alert."""
    ended = (datetime.now(UTC) - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    grant_cannot_create(seam, ends_at=ended, starts_at="2020-01-01T00:00:00.000Z")
    run(services, record(services, INCOMPLETE))

    assert sendgrid.sent == []


def test_could_not_create_resolved_before_sending_is_superseded(
    services: Context, seam: SeamStandin, sendgrid: SendGridStandin
) -> None:
    """Seam creating the missing key between planning and sending supersedes the email."""
    grant_cannot_create(seam)
    outcome = process_event(services, record(services, INCOMPLETE))
    grant = seam.get("access_grant", GRANT_ID)
    assert grant is not None
    seam.put_access_grant({**grant, "errors": []})
    [queued] = outcome.next
    send(services, queued.id)

    assert sendgrid.sent == []
    [delivery] = deliveries(services)
    assert delivery.status == DeliveryStatus.SUPERSEDED


def test_door_lost_tells_the_front_desk_once_not_the_guest(
    services: Context, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """Access to a door lost is one front-desk email per event, however often it comes."""
    event = record(services, DOOR_LOST)
    run(services, event)
    run(services, event)
    run(services, record(services, DOOR_LOST))

    assert twilio.sent == []
    [text] = front_desk_texts(sendgrid)
    assert "Alex Rivera" in text
    assert "lost" in text


def test_grant_deleted_cancels_its_pending_messages_and_card_flags(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """A deleted grant's unsent messages are superseded and its card flag closed; nothing is
    sent to anyone."""
    process_event(services, record(services, "access_method.issued.code"))
    run(services, record(services, "access_method.card_encoding_required"))
    sent_before = len(twilio.sent)
    with seam._lock:
        seam._stores["access_grant"].pop(GRANT_ID)
    event = record(services, "access_grant.deleted")
    run(services, event)
    run(services, event)

    guest = [d for d in deliveries(services) if d.kind == "pin_code"]
    assert guest
    assert {d.status for d in guest} == {DeliveryStatus.SUPERSEDED}
    assert [f.status for f in services.ledger.flags(CARD_ID)] == [FlagStatus.CLOSED]
    assert len(twilio.sent) == sent_before == 0


def test_grant_deleted_while_seam_still_has_it_cancels_nothing(
    services: Context, twilio: TwilioStandin
) -> None:
    """A replayed or early deletion event, for a grant Seam still has, leaves its messages."""
    process_event(services, record(services, "access_method.issued.code"))
    run(services, record(services, "access_grant.deleted"))

    assert {d.status for d in deliveries(services)} == {DeliveryStatus.PENDING}


def test_grant_created_is_recorded_and_ignored(
    services: Context, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """access_grant.created asks nothing of keycourier: recorded, ignored."""
    event = record(services, DOOR_LOST, event_type="access_grant.created")
    run(services, event)

    assert twilio.sent == sendgrid.sent == []
    found = services.ledger.get_event(event)
    assert found is not None
    assert found.status == EventStatus.IGNORED


@pytest.mark.parametrize("first", ["deleted", "alert"])
def test_could_not_create_and_deletion_in_either_order_send_nothing_stale(
    services: Context, seam: SeamStandin, sendgrid: SendGridStandin, first: str
) -> None:
    """Whichever of a failure report and the grant's deletion is processed first, once the
    grant is gone no alert about it goes out."""
    grant_cannot_create(seam)
    alert = record(services, INCOMPLETE)
    if first == "alert":
        process_event(services, alert)  # planned, not sent yet
    with seam._lock:
        seam._stores["access_grant"].pop(GRANT_ID)
    run(services, record(services, "access_grant.deleted"))
    if first == "deleted":
        run(services, alert)
    for delivery in deliveries(services):
        send(services, delivery.id)

    assert sendgrid.sent == []
