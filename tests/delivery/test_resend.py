"""The front desk sends a guest's key message again: the current credential read from Seam,
one new message through the normal send path, never twice, and refused with a reason when
there is nothing (or no one) to send to. Through the official SDKs against the stand-ins, on
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

import pytest
import redis

from app.context import Context
from app.delivery.credentials import credential_part, is_resend
from app.delivery.resend import ResendResult, resend
from app.delivery.send import Result
from app.errors import BrokerUnavailable
from app.events.processing import process_event
from app.intake.queue import QUEUE, SEND_DELIVERY, RedisEnqueuer, hand_on
from app.intake.sweeper import sweep
from app.ledger.models import AttemptOutcome, Delivery, DeliveryStatus
from app.messages.kinds import MessageKind
from app.ports import Queued, Work
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.events.test_pipeline import (
    CODE_ID,
    GUEST_ID,
    NEW_PIN,
    PIN,
    deliveries,
    record,
    run,
    send,
    set_method,
    sms_bodies,
    time_passes,
)
from tests.processes import free_port
from tests.queueing import RecordingEnqueuer, send_and_hand_on, sent_ids

PHONE = "+15555550123"
INVALID_NUMBER = "+15005550001"  # Twilio answers 21211
DESK = "frontdesk@hotel.example"


@pytest.fixture(autouse=True)
def distinctive_pin(seam: SeamStandin) -> None:
    """A PIN no other text contains, so 'not in' assertions mean something."""
    set_method(seam, CODE_ID, code=PIN)


@pytest.fixture
def quick(settings_env: dict[str, str], services: Context) -> Context:
    """Context with a short provider timeout, for answers that never come."""
    env = {**settings_env, "PROVIDER_TIMEOUT_SECONDS": "0.5", "RETRY_WINDOW_SECONDS": "60"}
    return Context.from_settings(load_settings(env), services.ledger)


def delivered(services: Context, channel: str = "sms") -> Delivery:
    """The PIN code's delivery on `channel`, after the issued event went through."""
    return next(d for d in deliveries(services) if d.channel == channel and d.kind == "pin_code")


def issued_and_sent(services: Context) -> Delivery:
    run(services, record(services, "access_method.issued.code"))
    sms = delivered(services)
    assert sms.status == DeliveryStatus.SENT
    return sms


def ask(services: Context, delivery_id: int, queue: list[int], **options: str) -> ResendResult:
    """Resend as the console does; the new delivery, when there is one to send, joins `queue`."""
    result = resend(services, delivery_id, actor="desk-anna", **options)
    queue.extend(sent_ids(result.next))
    return result


def test_resend_sends_one_new_message_with_the_current_credential(
    services: Context, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """A resend of the SMS plans one new delivery, hands it to the send path, and the guest
    gets the same message again; the email is not repeated."""
    sms = issued_and_sent(services)
    queue: list[int] = []

    result = ask(services, sms.id, queue)

    assert (result.status, result.channel, result.credential_changed) == ("queued", "sms", False)
    assert queue == [result.delivery_id]
    assert result.destination_masked is not None
    assert PHONE not in result.destination_masked
    assert send(services, queue[0]) == Result.SENT
    first, second = sms_bodies(twilio)
    assert PIN in second
    assert second == first  # the same words: no "your code changed"
    assert [message["to"] for message in twilio.sent] == [PHONE, PHONE]
    assert len(sendgrid.sent) == 1
    new = services.ledger.get_delivery(queue[0])
    assert new is not None
    assert (new.status, new.kind, new.channel) == (DeliveryStatus.SENT, "pin_code", "sms")
    assert is_resend(new.credential_fingerprint)
    assert credential_part(new.credential_fingerprint) == sms.credential_fingerprint
    assert new.user_identity_id == GUEST_ID


def test_resend_on_the_other_channel(
    services: Context, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """The desk may send the SMS's key by email instead."""
    sms = issued_and_sent(services)
    queue: list[int] = []

    result = ask(services, sms.id, queue, channel="email")

    assert (result.status, result.channel) == ("queued", "email")
    assert send(services, queue[0]) == Result.SENT
    assert len(twilio.sent) == 1
    assert len(sendgrid.sent) == 2
    assert all(PIN in part["value"] for part in sendgrid.sent[1]["content"])


def test_a_resend_run_twice_sends_once(services: Context, twilio: TwilioStandin) -> None:
    """The same request asked twice plans one delivery, and that delivery's send task run
    twice (a retried or duplicated task) sends one message."""
    sms = issued_and_sent(services)
    queue: list[int] = []

    first = ask(services, sms.id, queue, request_id="form-7f3a")
    again = ask(services, sms.id, queue, request_id="form-7f3a")

    assert (first.status, again.status) == ("queued", "already_requested")
    assert first.delivery_id == again.delivery_id
    assert queue == [first.delivery_id]
    assert first.delivery_id is not None
    assert send(services, first.delivery_id) == Result.SENT
    assert send(services, first.delivery_id) == Result.NOT_PENDING
    assert len(twilio.sent) == 2
    assert len(deliveries(services)) == 3


def test_two_requests_send_two_messages(services: Context, twilio: TwilioStandin) -> None:
    """Two separate requests, once the first has gone, are two messages: an explicit resend is
    never taken for a duplicate of an earlier one."""
    sms = issued_and_sent(services)
    queue: list[int] = []
    for _ in range(2):
        result = ask(services, sms.id, queue)
        assert result.status == "queued"
        assert send(services, queue[-1]) == Result.SENT

    assert len(twilio.sent) == 3


def test_resend_after_the_code_changed_sends_the_new_code(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """The code changed in Seam since the delivery (its event never came): the guest gets the
    current code, told it changed, never the old one."""
    sms = issued_and_sent(services)
    set_method(seam, CODE_ID, code=NEW_PIN)
    queue: list[int] = []

    result = ask(services, sms.id, queue)

    assert (result.status, result.credential_changed) == ("queued", True)
    assert "changed" in result.message
    assert send(services, queue[0]) == Result.SENT
    old, new = sms_bodies(twilio)
    assert PIN in old
    assert NEW_PIN in new
    assert PIN not in new
    assert "changed" in new.lower()


def test_a_pending_resend_survives_a_repeated_event(
    services: Context, twilio: TwilioStandin
) -> None:
    """A repeated issued event for the same code does not take a queued resend for a stale
    credential: the resend still goes, once, and nothing else does."""
    sms = issued_and_sent(services)
    queue: list[int] = []
    result = ask(services, sms.id, queue)

    run(services, record(services, "access_method.issued.code", event_id="a-repeat"))

    assert result.delivery_id is not None
    pending = services.ledger.get_delivery(result.delivery_id)
    assert pending is not None
    assert pending.status in (DeliveryStatus.SENT, DeliveryStatus.PENDING)
    send(services, result.delivery_id)
    assert len(twilio.sent) == 2
    sent = services.ledger.get_delivery(result.delivery_id)
    assert sent is not None
    assert sent.status == DeliveryStatus.SENT


def test_a_resend_whose_answer_was_lost_is_not_taken_for_the_original(
    quick: Context, twilio: TwilioStandin
) -> None:
    """The resend's call got no answer and Twilio never took it. Twilio does hold the original,
    with the same words, moments earlier: that one is accounted for, so the resend goes."""
    sms = issued_and_sent(quick)
    queue: list[int] = []
    ask(quick, sms.id, queue)
    twilio.latency = 1.0  # the request hangs, then fails: Twilio never created the message
    twilio.fail_next(1, 503, {"code": 20503, "message": "Service Unavailable", "status": 503})

    assert send(quick, queue[0]) == Result.UNKNOWN
    twilio.latency = 0
    time.sleep(1.0)  # let the hung request end before anything else arrives
    time_passes(quick, queue[0])

    assert send(quick, queue[0]) == Result.SENT
    assert len(twilio.sent) == 2
    resent = quick.ledger.get_delivery(queue[0])
    assert resent is not None
    assert resent.provider_message_id == twilio.sent[1]["sid"]


def test_a_resend_twilio_took_without_answering_is_not_sent_again(
    quick: Context, twilio: TwilioStandin
) -> None:
    """The resend reached Twilio but the answer was lost: the lookup finds the resend's own
    message (not the original's) and nothing is sent a third time."""
    sms = issued_and_sent(quick)
    queue: list[int] = []
    ask(quick, sms.id, queue)
    twilio.reply_delay = 1.5
    assert send(quick, queue[0]) == Result.UNKNOWN
    twilio.reply_delay = 0
    time_passes(quick, queue[0])

    assert send(quick, queue[0]) == Result.SENT
    assert len(twilio.sent) == 2
    resent = quick.ledger.get_delivery(queue[0])
    assert resent is not None
    assert resent.provider_message_id == twilio.sent[1]["sid"]
    assert [a.outcome for a in resent.attempts] == [AttemptOutcome.SENT]


def test_a_resend_that_fails_for_good_tells_the_front_desk(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """A resend is a delivery like any other: Twilio refusing the (corrected, still wrong)
    number for good fails it, and with no email to fall back on the front desk is told,
    although the original SMS was sent."""
    sms = issued_and_sent(services)
    guest = seam.get("user_identity", GUEST_ID)
    assert guest is not None
    seam.put_user_identity({**guest, "phone_number": INVALID_NUMBER, "email_address": None})
    queue: list[int] = []

    result = ask(services, sms.id, queue, reason="contact_corrected")
    while queue:
        send_and_hand_on(services, queue.pop(0), queue)

    failed = services.ledger.get_delivery(result.delivery_id or 0)
    assert failed is not None
    assert (failed.status, failed.error_code) == (DeliveryStatus.FAILED, "21211")
    assert len(twilio.sent) == 1
    alerts = [m for m in sendgrid.sent if m["personalizations"][0]["to"][0]["email"] == DESK]
    assert len(alerts) == 1


def test_refused_while_a_message_is_still_on_its_way(
    services: Context, twilio: TwilioStandin
) -> None:
    """While the original (or an earlier resend) is still pending, a resend is refused."""
    process_event(services, record(services, "access_method.issued.code"))
    pending = delivered(services)
    assert pending.status == DeliveryStatus.PENDING

    result = ask(services, pending.id, [])

    assert (result.status, result.refusal) == ("refused", "still_sending")
    assert "still on its way" in result.message
    assert len(deliveries(services)) == 2
    assert twilio.sent == []


def test_refused_for_a_front_desk_message(
    services: Context, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """A front-desk email is not a guest's key: it is not resent."""
    run(services, record(services, "access_method.card_encoding_required"))
    [flag_mail] = [d for d in deliveries(services) if d.kind == MessageKind.FRONT_DESK_CARD]
    queue: list[int] = []

    result = ask(services, flag_mail.id, queue)

    assert (result.status, result.refusal) == ("refused", "not_a_guest_key")
    assert queue == []
    assert len(sendgrid.sent) == 1


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ("deleted", "access_method_deleted"),
        ("not_issued", "not_issued"),
        ("no_phone", "no_destination"),
    ],
)
def test_refused_when_there_is_nothing_or_no_one_to_send_to(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, change: str, refusal: str
) -> None:
    """Seam now says the key is deleted or not issued, or the guest has no phone: refused with
    the reason, nothing planned, nothing sent."""
    sms = issued_and_sent(services)
    if change == "deleted":
        seam.delete_access_method(CODE_ID)
    elif change == "not_issued":
        set_method(seam, CODE_ID, is_issued=False)
    else:
        guest = seam.get("user_identity", GUEST_ID)
        assert guest is not None
        seam.put_user_identity({**guest, "phone_number": None})
    queue: list[int] = []

    result = ask(services, sms.id, queue)

    assert (result.status, result.refusal, result.delivery_id) == ("refused", refusal, None)
    assert result.message
    assert queue == []
    assert len(deliveries(services)) == 2
    assert len(twilio.sent) == 1


@pytest.mark.parametrize(
    ("options", "refusal"),
    [
        ({"reason": "because the guest at +15555550123 said so"}, "unknown_reason"),
        ({"request_id": "x%"}, "bad_request_id"),
        ({"channel": "fax"}, "bad_channel"),
    ],
)
def test_refused_for_bad_requests(services: Context, options: dict[str, str], refusal: str) -> None:
    """A reason outside the list (free text could carry a guest's details), a malformed request
    id or an unknown channel is refused."""
    sms = issued_and_sent(services)

    result = ask(services, sms.id, [], **options)

    assert (result.status, result.refusal) == ("refused", refusal)


def test_refused_for_an_unknown_delivery(services: Context) -> None:
    result = ask(services, 4242, [])
    assert (result.status, result.refusal) == ("refused", "not_found")


def test_the_log_says_who_and_why_without_the_guests_details(
    services: Context, caplog: pytest.LogCaptureFixture
) -> None:
    """The log line names the operator and the reason's key, and carries neither the PIN nor
    the guest's phone number or email address."""
    sms = issued_and_sent(services)
    caplog.set_level(logging.INFO, logger="app.delivery.resend")

    ask(services, sms.id, [], reason="lost_message")

    [line] = [r for r in caplog.records if r.name == "app.delivery.resend"]
    assert (getattr(line, "actor", None), getattr(line, "reason", None)) == (
        "desk-anna",
        "lost_message",
    )
    everything = json.dumps({k: str(v) for k, v in vars(line).items()}) + line.getMessage()
    for secret in (PIN, PHONE, "alex.rivera@example.com"):
        assert secret not in everything


def test_a_broker_outage_keeps_the_resend_for_the_sweeper(
    services: Context, twilio: TwilioStandin
) -> None:
    """The broker is down when the resend is asked for: it stays planned in the ledger and the
    sweeper hands it on; it is then sent once."""
    sms = issued_and_sent(services)

    result = resend(services, sms.id, actor="desk-anna")
    assert result.status == "queued"
    down = RedisEnqueuer(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(BrokerUnavailable):
        hand_on(down, services.ledger, result.next)
    queue = RecordingEnqueuer()
    sweep(services.ledger, queue, patience=timedelta(0))

    handed = queue.sends
    assert handed == [result.delivery_id]
    assert send(services, handed[0]) == Result.SENT
    assert len(twilio.sent) == 2


def test_redis_enqueuer_hands_a_delivery_to_the_send_task(redis_url: str) -> None:
    """The web process's enqueuer writes one send_delivery task message for the id."""
    RedisEnqueuer(redis_url).enqueue([Queued(Work.SEND_DELIVERY, 73)])

    client = redis.Redis.from_url(redis_url)
    [raw] = client.lrange(QUEUE, 0, -1)
    message = json.loads(raw)
    assert message["headers"]["task"] == SEND_DELIVERY
    assert message["headers"]["argsrepr"] == "[73]"
    client.close()
