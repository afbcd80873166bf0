"""An access method's whole life (DESIGN.md section 1's event table), events in any order.

Seam's events are at-least-once and only best-effort ordered, so each test sets the stand-in to
what Seam would say at that moment and processes the events in the order they arrive, repeats
included. Everything runs through the official SDKs against the stand-ins, on both ledgers.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.context import Context
from app.delivery.send import Result
from app.events.processing import process_event
from app.ledger.models import DeliveryStatus, EventStatus
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.events.test_pipeline import (
    CODE_ID,
    GRANT_ID,
    GUEST_ID,
    INSTANT_KEY,
    MOBILE_ID,
    NEW_PIN,
    PIN,
    deliveries,
    record,
    run,
    send,
    set_method,
    sms_bodies,
)
from tests.queueing import sent_ids

GUEST_B = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
GRANT_B = "3c5e7a9b-2d4f-4a6b-8c0d-1e2f3a4b5c6d"
CODE_B = "c0de0b0b-1111-4222-8333-444455556666"
PIN_B = "406158"
PHONE_B = "+15555550188"


@pytest.fixture(autouse=True)
def distinctive_credentials(seam: SeamStandin) -> None:
    """The same distinctive credentials as tests/events/test_pipeline.py."""
    set_method(seam, CODE_ID, code=PIN)
    set_method(seam, MOBILE_ID, instant_key_url=INSTANT_KEY)


def event_of(services: Context, event_id: int) -> tuple[str, str | None]:
    event = services.ledger.get_event(event_id)
    assert event is not None
    return event.status, event.detail


def plan_only(services: Context, sample: str, **changes: Any) -> list[int]:
    """Process an event without sending: the deliveries it hands on wait in the ledger."""
    handed_on = sent_ids(process_event(services, record(services, sample, **changes)).next)
    return handed_on


def second_guest(seam: SeamStandin, *, access_method_id: str = CODE_ID) -> None:
    """Bea, on her own grant, sharing `access_method_id` (e.g. one door code for a family)."""
    seam.put_user_identity(
        {
            "user_identity_id": GUEST_B,
            "email_address": "bea.okafor@example.com",
            "phone_number": PHONE_B,
            "full_name": "Bea Okafor",
            "workspace_id": "661025d3-c1d2-403c-83a8-af153aaedfbc",
        }
    )
    grant = seam.get("access_grant", GRANT_ID)
    assert grant is not None
    seam.put_access_grant(
        {
            **grant,
            "access_grant_id": GRANT_B,
            "access_grant_key": "reservation-9902",
            "display_name": "Bea Okafor, Room 204",
            "user_identity_id": GUEST_B,
            "access_method_ids": [access_method_id],
        }
    )


def sms_to(twilio: TwilioStandin, phone: str) -> list[str]:
    return [m["body"] for m in twilio.sent if m["to"] == phone]


# -- access_method.reissued -----------------------------------------------------------------


def test_backup_code_replaces_the_code_and_says_it_changed(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """A backup code (is_backup_code) is a new code: sent once per channel, saying it changed;
    the same reissue again sends nothing."""
    run(services, record(services, "access_method.issued.code"))
    set_method(seam, CODE_ID, code=NEW_PIN)
    reissued = record(services, "access_method.reissued.backup_code", code=NEW_PIN)
    run(services, reissued)
    run(services, reissued)
    run(services, record(services, "access_method.reissued.backup_code", event_id="again"))

    first, second = sms_bodies(twilio)
    assert PIN in first
    assert NEW_PIN in second
    assert "changed" in second.lower()
    assert len(sendgrid.sent) == 2
    assert "new door code" in sendgrid.sent[1]["subject"].lower()


def test_reissued_before_issued_sends_the_code_once(
    services: Context, twilio: TwilioStandin
) -> None:
    """The reissue arrives first: the guest gets their code once, as a first code (nothing was
    sent before, so nothing 'changed'); the late issued sends nothing more."""
    run(services, record(services, "access_method.reissued.backup_code"))
    run(services, record(services, "access_method.issued.code"))

    [sms] = sms_bodies(twilio)
    assert PIN in sms
    assert "changed" not in sms.lower()


def test_reissued_mobile_key_with_a_new_link_is_sent(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """A mobile key reissued with a new Instant Key URL sends the new link (the same link
    is not re-sent: tests/events/test_pipeline.py)."""
    run(services, record(services, "access_method.issued.mobile_key"))
    new_link = "https://ik.seam.co/NEWLINK7"
    set_method(seam, MOBILE_ID, instant_key_url=new_link)
    run(
        services,
        record(
            services,
            "access_method.issued.mobile_key",
            event_id="reissue-1",
            event_type="access_method.reissued",
        ),
    )

    first, second = sms_bodies(twilio)
    assert INSTANT_KEY in first
    assert new_link in second
    assert INSTANT_KEY not in second


# -- access_method.revoked --------------------------------------------------------------------


def test_revoked_holds_pending_sends_and_tells_no_one(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """Seam revokes while re-programming: what has not gone out is held, not sent, not
    cancelled, and the guest hears nothing; a duplicate revoke changes nothing."""
    handed_on = plan_only(services, "access_method.issued.code")
    set_method(seam, CODE_ID, is_issued=False)
    revoked = record(services, "access_method.revoked")
    run(services, revoked)
    run(services, record(services, "access_method.revoked", event_id="revoked-again"))

    assert {d.status for d in deliveries(services)} == {DeliveryStatus.HELD}
    assert {send(services, d) for d in handed_on} == {Result.NOT_PENDING}
    assert twilio.sent == []
    assert sendgrid.sent == []
    assert event_of(services, revoked) == (
        EventStatus.PROCESSED,
        "revoked; held 2 pending deliveries until Seam issues it again",
    )


def test_reissued_after_revoked_releases_the_held_code(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """Seam issues the same code again: the held messages go out, once each."""
    plan_only(services, "access_method.issued.code")
    set_method(seam, CODE_ID, is_issued=False)
    run(services, record(services, "access_method.revoked"))
    set_method(seam, CODE_ID, is_issued=True)
    reissued = record(services, "access_method.reissued.backup_code", code=PIN)
    run(services, reissued)
    run(services, reissued)

    [sms] = sms_bodies(twilio)
    assert PIN in sms
    assert "changed" not in sms.lower()
    assert len(sendgrid.sent) == 1
    assert {d.status for d in deliveries(services)} == {DeliveryStatus.SENT}


def test_reissued_after_revoked_with_a_new_code_replaces_the_held_one(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """Seam re-programs with a new code: the held old code is superseded, never sent."""
    plan_only(services, "access_method.issued.code")
    set_method(seam, CODE_ID, is_issued=False)
    run(services, record(services, "access_method.revoked"))
    set_method(seam, CODE_ID, is_issued=True, code=NEW_PIN)
    run(services, record(services, "access_method.reissued.backup_code", code=NEW_PIN))

    [sms] = sms_bodies(twilio)
    assert NEW_PIN in sms
    assert PIN not in sms
    statuses = sorted(d.status for d in deliveries(services))
    assert statuses == ["sent", "sent", "superseded", "superseded"]


def test_a_send_that_finds_the_code_revoked_waits_for_the_reissue(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """The worker reaches a delivery while Seam re-programs (the revoke not processed yet):
    it is held, not lost; the reissue with the same code sends it."""
    handed_on = plan_only(services, "access_method.issued.code")
    set_method(seam, CODE_ID, is_issued=False)
    assert {send(services, d) for d in handed_on} == {Result.HELD}
    run(services, record(services, "access_method.revoked"))
    set_method(seam, CODE_ID, is_issued=True)
    run(services, record(services, "access_method.reissued.backup_code", code=PIN))

    [sms] = sms_bodies(twilio)
    assert PIN in sms
    assert {d.status for d in deliveries(services)} == {DeliveryStatus.SENT}


def test_revoked_before_issued_holds_nothing(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """The revoke arrives first, while Seam still re-programs: nothing to hold, nothing sent;
    the issued that follows sends the code."""
    set_method(seam, CODE_ID, is_issued=False)
    revoked = record(services, "access_method.revoked")
    run(services, revoked)
    assert twilio.sent == []
    assert deliveries(services) == []

    set_method(seam, CODE_ID, is_issued=True)
    run(services, record(services, "access_method.issued.code"))
    [sms] = sms_bodies(twilio)
    assert PIN in sms


def test_a_late_revoke_seam_has_issued_since_does_not_hold(
    services: Context, twilio: TwilioStandin
) -> None:
    """A revoke processed after Seam has issued the access method again (Seam says issued now)
    holds nothing: the guest's code goes out."""
    plan_only(services, "access_method.issued.code")
    revoked = record(services, "access_method.revoked")
    run(services, revoked)

    [sms] = sms_bodies(twilio)
    assert PIN in sms
    assert DeliveryStatus.HELD not in {d.status for d in deliveries(services)}


def test_deleted_after_revoked_cancels_what_was_held(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """Held sends of an access method Seam then deletes are cancelled, never sent."""
    plan_only(services, "access_method.issued.code")
    set_method(seam, CODE_ID, is_issued=False)
    run(services, record(services, "access_method.revoked"))
    seam.delete_access_method(CODE_ID)
    run(services, record(services, "access_method.deleted"))
    run(services, record(services, "access_method.issued.code", event_id="late-issued"))

    assert {d.status for d in deliveries(services)} == {DeliveryStatus.SUPERSEDED}
    assert twilio.sent == []


# -- access_method.deleted then issued ------------------------------------------------------


def test_deleted_then_a_late_issued_sends_nothing(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """An issued that arrives after the deletion (Seam no longer has the access method)
    sends nothing."""
    seam.delete_access_method(CODE_ID)
    run(services, record(services, "access_method.deleted"))
    late = record(services, "access_method.issued.code")
    run(services, late)

    assert twilio.sent == []
    assert sendgrid.sent == []
    assert event_of(services, late) == (
        EventStatus.PROCESSED,
        "the access method no longer exists",
    )


# -- access_grant.access_times_changed ------------------------------------------------------


def change_stay(seam: SeamStandin, starts_at: str, ends_at: str) -> None:
    grant = seam.get("access_grant", GRANT_ID)
    assert grant is not None
    seam.put_access_grant({**grant, "starts_at": starts_at, "ends_at": ends_at})


def test_stay_times_changed_tells_a_guest_who_has_the_code(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """The guest already has their PIN: one message per channel with the new times and no
    PIN; repeats of the event send nothing more; a second change is told too."""
    run(services, record(services, "access_method.issued.code"))
    change_stay(seam, "2053-06-20T12:00:00.000Z", "2053-06-24T11:00:00.000Z")
    changed = record(services, "access_grant.access_times_changed")
    run(services, changed)
    run(services, changed)
    run(services, record(services, "access_grant.access_times_changed", event_id="repeat"))

    _, notice = sms_bodies(twilio)
    assert "Tue, Jun 24, 2053, 11:00 AM" in notice
    assert "Fri, Jun 20, 2053, 12:00 PM" in notice
    assert PIN not in notice
    _, mail = sendgrid.sent
    assert "changed" in mail["subject"]
    assert all(PIN not in part["value"] for part in mail["content"])
    assert event_of(services, changed) == (
        EventStatus.PROCESSED,
        "stay times changed; telling 2 guest channel(s)",
    )

    change_stay(seam, "2053-06-20T12:00:00.000Z", "2053-06-25T11:00:00.000Z")
    run(services, record(services, "access_grant.access_times_changed", event_id="second"))
    assert "Wed, Jun 25, 2053, 11:00 AM" in sms_bodies(twilio)[-1]
    assert len(twilio.sent) == 3


def test_stay_times_changed_before_the_code_went_out_sends_no_notice(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """The guest has not been sent their code yet: no notice; the code's own message, sent
    later, carries the new times."""
    handed_on = plan_only(services, "access_method.issued.code")
    change_stay(seam, "2053-06-21T15:00:00.000Z", "2053-06-23T11:00:00.000Z")
    run(services, record(services, "access_grant.access_times_changed"))
    assert twilio.sent == []

    for delivery_id in handed_on:
        send(services, delivery_id)
    [sms] = sms_bodies(twilio)
    assert PIN in sms
    assert "Sat, Jun 21, 2053, 3:00 PM" in sms


def test_a_notice_overtaken_by_a_newer_change_is_not_sent(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """Two changes before the first notice goes out: only the latest times are told."""
    run(services, record(services, "access_method.issued.code"))
    change_stay(seam, "2053-06-20T12:00:00.000Z", "2053-06-24T11:00:00.000Z")
    first = plan_only(services, "access_grant.access_times_changed")
    change_stay(seam, "2053-06-20T12:00:00.000Z", "2053-06-26T11:00:00.000Z")
    run(services, record(services, "access_grant.access_times_changed", event_id="second"))
    assert {send(services, d) for d in first} <= {Result.SUPERSEDED, Result.NOT_PENDING}

    notices = sms_bodies(twilio)[1:]
    assert len(notices) == 1
    assert "Thu, Jun 26, 2053, 11:00 AM" in notices[0]


def test_stay_times_changed_notice_can_be_turned_off(
    settings_env: dict[str, str], services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """NOTIFY_GUEST_ON_TIMES_CHANGED=false: the guest is not told."""
    quiet = Context.from_settings(
        load_settings({**settings_env, "NOTIFY_GUEST_ON_TIMES_CHANGED": "false"}), services.ledger
    )
    run(quiet, record(quiet, "access_method.issued.code"))
    change_stay(seam, "2053-06-20T12:00:00.000Z", "2053-06-24T11:00:00.000Z")
    changed = record(quiet, "access_grant.access_times_changed")
    run(quiet, changed)

    assert len(twilio.sent) == 1
    assert event_of(quiet, changed) == (
        EventStatus.PROCESSED,
        "stay times changed; NOTIFY_GUEST_ON_TIMES_CHANGED is off",
    )


# -- card issued --------------------------------------------------------------------------


def test_card_ready_notice_can_be_turned_off(
    settings_env: dict[str, str],
    services: Context,
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:
    """NOTIFY_GUEST_CARD_READY=false: the card's flag closes, the guest is not messaged."""
    quiet = Context.from_settings(
        load_settings({**settings_env, "NOTIFY_GUEST_CARD_READY": "false"}), services.ledger
    )
    run(quiet, record(quiet, "access_method.card_encoding_required"))
    set_method(seam, "27d8ad77-55c2-4e20-b5b3-43555926f0e8", is_issued=True)
    run(quiet, record(quiet, "access_method.issued.card"))

    [flag] = quiet.ledger.flags("27d8ad77-55c2-4e20-b5b3-43555926f0e8")
    assert flag.status == "closed"
    assert twilio.sent == []
    assert len(sendgrid.sent) == 1  # the front desk's encoding request only


# -- several guests -----------------------------------------------------------------------


def test_an_access_method_shared_by_two_guests_reaches_each_once(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """One code on two grants (two guests): each guest gets their own SMS and email, once,
    whatever the event's grant list says and however often it comes."""
    second_guest(seam)
    run(services, record(services, "access_method.issued.code"))
    run(services, record(services, "access_method.issued.code", access_grant_ids=[GRANT_B]))
    run(services, record(services, "access_method.issued.code", event_id="repeat"))

    assert len(sms_to(twilio, "+15555550123")) == 1
    [to_bea] = sms_to(twilio, PHONE_B)
    assert PIN in to_bea
    assert "Bea" in to_bea
    emails = sorted(m["personalizations"][0]["to"][0]["email"] for m in sendgrid.sent)
    assert emails == ["alex.rivera@example.com", "bea.okafor@example.com"]


def test_a_guest_on_two_grants_of_one_access_method_gets_one_message(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """The same guest on two grants sharing the code is one guest: one message per channel."""
    grant = seam.get("access_grant", GRANT_ID)
    assert grant is not None
    seam.put_access_grant({**grant, "access_grant_id": GRANT_B, "access_method_ids": [CODE_ID]})
    run(services, record(services, "access_method.issued.code"))

    assert len(twilio.sent) == 1


def test_a_grant_whose_guest_changed_reaches_the_new_guest_only(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """The reservation moved to another guest before the code went out: the first guest's
    pending message is superseded, not sent; the new guest gets the code."""
    handed_on = plan_only(services, "access_method.issued.code")
    second_guest(seam)
    seam.put_access_grant({**seam.get("access_grant", GRANT_ID), "user_identity_id": GUEST_B})  # type: ignore[dict-item]
    seam.put_access_grant({**seam.get("access_grant", GRANT_B), "access_method_ids": []})  # type: ignore[dict-item]

    assert {send(services, d) for d in handed_on} == {Result.SUPERSEDED}
    run(services, record(services, "access_method.reissued.backup_code", code=PIN))

    assert sms_to(twilio, "+15555550123") == []
    [to_bea] = sms_to(twilio, PHONE_B)
    assert PIN in to_bea


def test_interleaved_events_of_two_guests_each_get_their_own_code(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """Two guests, two codes, their events interleaved, duplicated and out of order: each
    guest gets exactly their own code, once, and the revoked one only after its reissue."""
    second_guest(seam, access_method_id=CODE_B)
    code = seam.get("access_method", CODE_ID)
    assert code is not None
    seam.put_access_method({**code, "access_method_id": CODE_B, "code": PIN_B})
    issued_b = {"access_method_id": CODE_B, "access_grant_ids": [GRANT_B]}

    reissued_b = record(
        services, "access_method.reissued.backup_code", event_id="b-re", code=PIN_B, **issued_b
    )
    run(services, reissued_b)
    a_pending = plan_only(services, "access_method.issued.code")
    set_method(seam, CODE_ID, is_issued=False)
    run(services, record(services, "access_method.revoked"))
    run(services, record(services, "access_method.issued.code", event_id="b-1", **issued_b))
    for delivery_id in a_pending:
        send(services, delivery_id)
    assert sms_to(twilio, "+15555550123") == []
    set_method(seam, CODE_ID, is_issued=True, code=NEW_PIN)
    run(services, record(services, "access_method.reissued.backup_code", code=NEW_PIN))
    run(services, record(services, "access_method.issued.code", event_id="b-1", **issued_b))

    [to_alex] = sms_to(twilio, "+15555550123")
    [to_bea] = sms_to(twilio, PHONE_B)
    assert NEW_PIN in to_alex
    assert PIN_B not in to_alex
    assert PIN_B in to_bea
    assert NEW_PIN not in to_bea


@pytest.mark.parametrize(
    "event_type",
    ["access_grant.created", "device.connected"],
)
def test_other_events_are_recorded_and_ignored(
    services: Context, twilio: TwilioStandin, event_type: str
) -> None:
    """Anything else is recorded and does nothing."""
    event_id = record(services, "access_method.issued.code", event_type=event_type)
    run(services, event_id)

    assert twilio.sent == []
    assert event_of(services, event_id) == (EventStatus.IGNORED, f"no action for {event_type}")


def test_guest_id_is_the_recipient_of_each_guest_message(services: Context) -> None:
    """The ledger files each guest message under its guest (the unique key's recipient)."""
    run(services, record(services, "access_method.issued.code"))

    assert {d.recipient for d in deliveries(services)} == {GUEST_ID}
