"""The one factory of a delivery to plan: destination, recipient and status decided alike."""

from __future__ import annotations

from dataclasses import astuple

from app.delivery.destinations import destination_hash
from app.delivery.planned import About, Destination, new_delivery
from app.ledger.models import DeliveryStatus
from app.ledger.store import NewDelivery
from app.messages.kinds import MessageKind
from app.ports import AccessGrant, Guest

KEY = b"destination search key for tests"
PHONE = "+15555550123"
GRANT = AccessGrant("ag-1", "ui-1", "Alex Rivera, Room 204", None, None, (), "booking-7")
GUEST = Guest("ui-1", "Alex Rivera", PHONE, "alex@example.com")
ALEX = About.stay(GRANT, GUEST, "Alex Rivera")


def planned(kind: MessageKind, destination: Destination | None, **extra: str) -> NewDelivery:
    return new_delivery(
        kind,
        access_method_id="am-1",
        channel="sms",
        credential_fingerprint="fp",
        event_id=None,
        about=ALEX,
        destination=destination,
        **extra,
    )


def test_the_destination_is_kept_masked_and_hashed_never_in_full() -> None:
    """A guest's phone number is recorded masked for people and hashed for the console's
    search; no field of the row holds it in full."""
    new = planned(MessageKind.PIN_CODE, Destination.of(PHONE, KEY))

    assert new.status == DeliveryStatus.PENDING
    assert new.error_message is None
    assert new.destination_masked is not None
    assert new.destination_masked.endswith("23")
    assert new.destination_hash == destination_hash(KEY, PHONE)
    assert not any(PHONE in str(value) for value in astuple(new))


def test_a_delivery_with_nowhere_to_go_is_recorded_skipped_saying_why() -> None:
    """No destination: the row is planned all the same (the ledger keeps the record), skipped,
    with the reason given or else the channel that has none."""
    unset = planned(MessageKind.FRONT_DESK_UNDELIVERED, None, no_destination="FRONT_DESK_EMAIL?")
    missing = planned(MessageKind.PIN_CODE, Destination.of("", KEY))

    assert (unset.status, unset.error_message) == (DeliveryStatus.SKIPPED, "FRONT_DESK_EMAIL?")
    assert (missing.status, missing.error_message) == (
        DeliveryStatus.SKIPPED,
        "no sms destination configured",
    )
    assert missing.destination_masked is None
    assert missing.destination_hash is None


def test_the_recipient_is_the_guest_only_for_a_message_owed_per_guest() -> None:
    """A guest's message and a problem report are filed under the guest; a front-desk email
    about the access method as a whole is one per access method, whoever its guest."""
    destination = Destination.of(PHONE, KEY)

    assert planned(MessageKind.PIN_CODE, destination).recipient == "ui-1"
    assert planned(MessageKind.FRONT_DESK_UNDELIVERED, destination).recipient == "ui-1"
    assert planned(MessageKind.FRONT_DESK_CARD, destination).recipient == ""
    assert planned(MessageKind.FRONT_DESK_ISSUE_FAILED, destination).recipient == ""


def test_a_stay_is_filed_by_its_reservation_else_its_grant_key() -> None:
    """The desk searches by the reservation key; a grant without one is found by its access
    grant key."""
    booked = AccessGrant("ag-2", None, "Room 9", None, None, (), "grant-key", "reservation-1")

    assert About.stay(booked, None, None).reservation == "reservation-1"
    assert ALEX.reservation == "booking-7"
    assert (ALEX.access_grant_id, ALEX.user_identity_id, ALEX.guest_name) == (
        "ag-1",
        "ui-1",
        "Alex Rivera",
    )
    assert About.stay(None, None, None) == About()
