"""Retries, fallback, lost answers, the sweeper and reconcile, in one process.

Real ledgers (SQLite and PostgreSQL) and the official SDKs against the stand-ins; faults are
injected at the stand-ins (status codes, late answers) or by stopping work half-way the way a
dead worker would leave it. tests/e2e/faults/ does the same with real processes and signals.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.context import Context
from app.delivery.send import Result
from app.errors import TransientProviderError
from app.events.processing import process_event
from app.events.tries import retry_later
from app.intake.reconcile import reconcile
from app.intake.sweeper import sweep
from app.ledger.models import (
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    Event,
    EventStatus,
    utcnow,
)
from app.messages.kinds import MessageKind
from app.settings import load_settings
from app.standins.seam import SAMPLES, SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.events.test_pipeline import CODE_ID, GUEST_ID, PIN, record, set_method, time_passes
from tests.queueing import RecordingEnqueuer, send_and_hand_on, sent_ids

INVALID_NUMBER = "+15005550001"  # Twilio answers 21211


@pytest.fixture(autouse=True)
def distinctive_pin(seam: SeamStandin) -> None:
    set_method(seam, CODE_ID, code=PIN)


@pytest.fixture
def quick(settings_env: dict[str, str], services: Context) -> Context:
    """Context with a short provider timeout and a short retry window."""
    env = {**settings_env, "PROVIDER_TIMEOUT_SECONDS": "0.5", "RETRY_WINDOW_SECONDS": "60"}
    return Context.from_settings(load_settings(env), services.ledger)


class Worker:
    """Runs what the pipeline hands on, like the Celery tasks would, minus the broker."""

    def __init__(self, services: Context) -> None:
        self.services = services
        self.queue: list[int] = []

    def process(self, event_id: int) -> None:
        self.queue.extend(sent_ids(process_event(self.services, event_id).next))

    def send(self, delivery_id: int) -> Result:
        return send_and_hand_on(self.services, delivery_id, self.queue).result

    def drain(self) -> list[Result]:
        results = []
        while self.queue:
            results.append(self.send(self.queue.pop(0)))
        return results


def lose_the_answer(worker: Worker, twilio: TwilioStandin, delivery_id: int) -> None:
    """Send through a Twilio that takes the SMS but answers after the client gave up."""
    twilio.reply_delay = 1.5
    assert worker.send(delivery_id) == Result.UNKNOWN
    twilio.reply_delay = 0


def deliveries(services: Context) -> list[Delivery]:
    with Session(services.ledger.engine) as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def delivery_on(services: Context, channel: str, kind: str = "pin_code") -> Delivery:
    return next(d for d in deliveries(services) if d.channel == channel and d.kind == kind)


def set_guest(seam: SeamStandin, **changes: Any) -> None:
    guest = seam.get("user_identity", GUEST_ID)
    assert guest is not None
    seam.put_user_identity({**guest, **changes})


def only_sms(settings_env: dict[str, str], services: Context) -> Context:
    env = {**settings_env, "DELIVERY_CHANNELS": "sms", "PROVIDER_TIMEOUT_SECONDS": "0.5"}
    return Context.from_settings(load_settings(env), services.ledger)


# -- 1. error classes and the retry window ---------------------------------------------------


def test_provider_retry_hint_is_honoured(services: Context, twilio: TwilioStandin) -> None:
    """A 429 with Retry-After: 120 is not retried before 120 seconds."""
    worker = Worker(services)
    worker.process(record(services, "access_method.issued.code"))
    sms = delivery_on(services, "sms")
    twilio.fail_next(
        1, 429, {"code": 20429, "message": "Too Many Requests", "status": 429},
        headers={"Retry-After": "120"},
    )  # fmt: skip

    outcome = send_and_hand_on(services, sms.id, worker.queue)

    assert outcome.result == Result.RETRY
    assert outcome.retry_in is not None
    assert outcome.retry_in >= 120
    waiting = services.ledger.get_delivery(sms.id)
    assert waiting is not None
    assert waiting.next_attempt_at is not None
    assert waiting.next_attempt_at >= utcnow() + timedelta(seconds=115)


def test_retries_stop_at_the_window_then_fall_back(
    settings_env: dict[str, str], services: Context, twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:  # fmt: skip
    """A provider failing past the retry window fails the SMS and sends the email instead."""
    narrow = Context.from_settings(
        load_settings({**settings_env, "DELIVERY_CHANNELS": "sms", "RETRY_WINDOW_SECONDS": "8"}),
        services.ledger,
    )
    worker = Worker(narrow)
    worker.process(record(narrow, "access_method.issued.code"))
    sms = delivery_on(narrow, "sms")
    twilio.fail_next(50, 503, {"code": 20503, "message": "Service Unavailable", "status": 503})

    results = [worker.send(sms.id)]
    while results[-1] == Result.RETRY:
        time_passes(narrow, sms.id)
        results.append(worker.send(sms.id))
    results += worker.drain()

    failed = narrow.ledger.get_delivery(sms.id)
    assert failed is not None
    assert failed.status == DeliveryStatus.FAILED
    assert failed.error_message is not None
    assert failed.error_message.startswith("gave up after")
    assert 2 <= len(failed.attempts) <= 4  # 5 s, 10 s ... cannot fit many into 8 s
    assert twilio.sent == []
    [mail] = sendgrid.sent
    assert mail["personalizations"][0]["to"][0]["email"] == "alex.rivera@example.com"
    assert delivery_on(narrow, "email").fallback_for_id == sms.id


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("+15005550001", "21211"),  # not a valid number
        ("+15005550002", "21612"),  # cannot be reached from this sender
        ("+15005550003", "21408"),  # region not enabled
        ("+15005550004", "21610"),  # the guest replied STOP
        ("+15005550009", "21614"),  # not a mobile number
    ],
)
def test_permanent_sms_error_is_not_retried_and_falls_back(
    settings_env: dict[str, str], services: Context, seam: SeamStandin,
    twilio: TwilioStandin, sendgrid: SendGridStandin, number: str, code: str,
) -> None:  # fmt: skip
    """Each permanent Twilio code fails the SMS at once (one attempt); email takes over."""
    narrow = only_sms(settings_env, services)
    set_guest(seam, phone_number=number)
    worker = Worker(narrow)
    worker.process(record(narrow, "access_method.issued.code"))
    worker.drain()

    sms = delivery_on(narrow, "sms")
    assert (sms.status, sms.error_code) == (DeliveryStatus.FAILED, code)
    assert len(narrow.ledger.get_delivery(sms.id).attempts) == 1  # type: ignore[union-attr]
    [mail] = sendgrid.sent
    assert PIN in next(p["value"] for p in mail["content"] if p["type"] == "text/plain")
    alerts = [d for d in deliveries(narrow) if d.kind == MessageKind.FRONT_DESK_UNDELIVERED]
    assert alerts == []  # the guest has their PIN: nothing to report


@pytest.mark.parametrize("status", [400, 403, 413])
def test_permanent_email_error_is_not_retried_and_falls_back(
    settings_env: dict[str, str], services: Context, twilio: TwilioStandin,
    sendgrid: SendGridStandin, status: int,
) -> None:  # fmt: skip
    """SendGrid 400, 403 and 413 fail the email at once; the SMS takes over."""
    env = {**settings_env, "DELIVERY_CHANNELS": "email"}
    narrow = Context.from_settings(load_settings(env), services.ledger)
    sendgrid.fail_next(1, status, {"errors": [{"message": "refused"}]}, path="/v3/mail/send")
    worker = Worker(narrow)
    worker.process(record(narrow, "access_method.issued.code"))
    worker.drain()

    email = delivery_on(narrow, "email")
    assert (email.status, len(narrow.ledger.get_delivery(email.id).attempts)) == (  # type: ignore[union-attr]
        DeliveryStatus.FAILED,
        1,
    )
    [sms] = twilio.sent
    assert PIN in sms["body"]


def test_every_channel_failing_alerts_the_front_desk(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """SMS and email both failing for good emails the front desk once, with codes, no PIN."""
    set_guest(seam, phone_number=INVALID_NUMBER)
    sendgrid.fail_next(
        1, 403, {"errors": [{"message": "The from address does not match a verified Sender"}]},
        path="/v3/mail/send",
    )  # fmt: skip
    worker = Worker(services)
    worker.process(record(services, "access_method.issued.code"))
    worker.drain()

    assert {delivery_on(services, c).status for c in ("sms", "email")} == {DeliveryStatus.FAILED}
    [alert_mail] = sendgrid.sent
    assert alert_mail["personalizations"][0]["to"][0]["email"] == "frontdesk@hotel.example"
    body = next(p["value"] for p in alert_mail["content"] if p["type"] == "text/plain")
    for fact in ("Alex Rivera", "Room 204", "21211", "403", "+1********01", "a***@example.com"):
        assert fact in body
    assert PIN not in json.dumps(alert_mail)
    assert twilio.sent == []


# -- 3. answers that never came --------------------------------------------------------------


def test_sms_accepted_but_answer_lost_is_not_sent_twice(
    quick: Context, twilio: TwilioStandin
) -> None:
    """Twilio took the SMS but answered too late: the lookup finds it, nothing is resent."""
    worker = Worker(quick)
    worker.process(record(quick, "access_method.issued.code"))
    sms = delivery_on(quick, "sms")
    lose_the_answer(worker, twilio, sms.id)
    assert quick.ledger.get_delivery(sms.id).status == DeliveryStatus.UNKNOWN  # type: ignore[union-attr]
    time_passes(quick, sms.id)

    assert worker.send(sms.id) == Result.SENT
    assert len(twilio.sent) == 1
    settled = quick.ledger.get_delivery(sms.id)
    assert settled is not None
    assert settled.provider_message_id == twilio.sent[0]["sid"]
    assert [a.outcome for a in settled.attempts] == [AttemptOutcome.SENT]


def test_sms_lost_before_twilio_took_it_is_sent_once(quick: Context, twilio: TwilioStandin) -> None:
    """No answer and Twilio has no such message: the SMS is sent again, exactly once."""
    worker = Worker(quick)
    worker.process(record(quick, "access_method.issued.code"))
    sms = delivery_on(quick, "sms")
    twilio.latency = 1.0  # the request hangs, then fails: Twilio never created the message
    twilio.fail_next(1, 503, {"code": 20503, "message": "Service Unavailable", "status": 503})

    assert worker.send(sms.id) == Result.UNKNOWN
    twilio.latency = 0
    time.sleep(1.0)  # let the hung request end (with its 503) before anything else arrives
    time_passes(quick, sms.id)

    assert worker.send(sms.id) == Result.SENT
    assert len(twilio.sent) == 1
    outcomes = [a.outcome for a in quick.ledger.get_delivery(sms.id).attempts]  # type: ignore[union-attr]
    assert outcomes == [AttemptOutcome.TRANSIENT_ERROR, AttemptOutcome.SENT]


# -- 4 and 6. the sweeper ----------------------------------------------------------------------


def test_worker_dead_mid_call_is_resolved_not_resent(quick: Context, twilio: TwilioStandin) -> None:
    """A worker killed after Twilio took the SMS: its lease expires, the lookup finds the SMS."""
    worker = Worker(quick)
    worker.process(record(quick, "access_method.issued.code"))
    sms = delivery_on(quick, "sms")
    # What a worker leaves behind when killed mid-call: a claim, an in-flight attempt, and the
    # SMS at Twilio. Reproduced by sending, then rewinding the ledger to the moment of death.
    assert worker.send(sms.id) == Result.SENT
    with quick.ledger.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE deliveries SET status = 'sending', lease_expires_at = :past, sent_at = NULL"
                " WHERE id = :id"
            ),
            {"past": utcnow() - timedelta(seconds=1), "id": sms.id},
        )
        connection.execute(
            text(
                "UPDATE attempts SET outcome = 'in_flight', finished_at = NULL"
                " WHERE delivery_id = :id"
            ),
            {"id": sms.id},
        )

    queue = RecordingEnqueuer()
    swept = sweep(quick.ledger, queue, patience=timedelta(0))
    handed = queue.events + queue.sends

    assert swept.recovered == 1
    assert sms.id in handed
    assert worker.send(sms.id) == Result.SENT
    assert len(twilio.sent) == 1


def test_worker_dead_before_calling_is_sent_once(quick: Context, twilio: TwilioStandin) -> None:
    """A worker killed after claiming but before any call: the delivery goes back to pending."""
    worker = Worker(quick)
    worker.process(record(quick, "access_method.issued.code"))
    sms = delivery_on(quick, "sms")
    claimed = quick.ledger.claim_delivery(sms.id, timedelta(seconds=-1))  # an expired lease
    assert claimed is not None

    queue = RecordingEnqueuer()
    sweep(quick.ledger, queue, patience=timedelta(0))

    assert quick.ledger.get_delivery(sms.id).status == DeliveryStatus.PENDING  # type: ignore[union-attr]
    assert worker.send(sms.id) == Result.SENT
    assert len(twilio.sent) == 1


def test_sweeper_requeues_events_the_broker_forgot(services: Context) -> None:
    """Events recorded (and queued) but never processed are handed to the broker again."""
    received = record(services, "access_method.issued.code")
    queued = record(services, "access_method.issued.mobile_key")
    services.ledger.mark_events_queued([queued])
    done = record(services, "access_method.deleted")
    services.ledger.finish_event(done, EventStatus.PROCESSED)

    queue = RecordingEnqueuer()
    sweep(services.ledger, queue, patience=timedelta(0))
    events = queue.events

    assert sorted(events) == sorted([received, queued])
    queue = RecordingEnqueuer()
    sweep(services.ledger, queue, patience=timedelta(minutes=5))
    again = queue.events
    assert again == []  # just re-queued: patience before the next time


def test_sweeper_requeues_due_deliveries(services: Context) -> None:
    """Deliveries due but not handed on recently are re-queued; ones in backoff are not."""
    worker = Worker(services)
    worker.process(record(services, "access_method.issued.code"))
    sms, email = delivery_on(services, "sms"), delivery_on(services, "email")
    with services.ledger.engine.begin() as connection:
        connection.execute(
            text("UPDATE deliveries SET next_attempt_at = :later WHERE id = :id"),
            {"later": utcnow() + timedelta(minutes=5), "id": email.id},
        )

    queue = RecordingEnqueuer()
    sweep(services.ledger, queue, patience=timedelta(0))
    handed = queue.sends

    assert handed == [sms.id]


# -- 7. catching up from Seam's events/list ----------------------------------------------------


def test_reconcile_processes_missed_events_once(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """Events the webhook never delivered are recorded and queued once, however often it runs."""
    for name in ("access_method.issued.code", "access_method.revoked", "device.connected"):
        event = json.loads((SAMPLES / "events" / f"{name}.json").read_text())
        seam.put_event({**event, "created_at": utcnow().isoformat()})
    seen_by_webhook = record(services, "access_method.revoked")
    worker = Worker(services)
    queue = RecordingEnqueuer()
    queued = queue.events

    first = reconcile(services.ledger, services.seam, queue, utcnow() - timedelta(hours=24))
    second = reconcile(services.ledger, services.seam, queue, utcnow() - timedelta(hours=24))

    assert (first.listed, first.recorded, first.queued) == (2, 1, 1)  # device.* is not asked for
    assert (second.recorded, second.queued) == (0, 0)
    [event_id] = queued
    assert event_id != seen_by_webhook
    worker.process(event_id)
    worker.drain()
    assert len(twilio.sent) == 1
    with Session(services.ledger.engine) as session:
        sources = session.scalars(select(Event.source).order_by(Event.id)).all()
    assert sources == ["webhook", "reconcile"]


def test_reconcile_records_a_grant_event_under_its_grant(
    services: Context, seam: SeamStandin
) -> None:
    """A missed access_grant.access_times_changed (one access_grant_id, no access method) is
    recorded under its grant, ready to act on."""
    event = json.loads((SAMPLES / "events" / "access_grant.access_times_changed.json").read_text())
    seam.put_event({**event, "created_at": utcnow().isoformat()})
    queue = RecordingEnqueuer()
    queued = queue.events

    found = reconcile(services.ledger, services.seam, queue, utcnow() - timedelta(1))

    assert (found.recorded, found.queued) == (1, 1)
    recorded = services.ledger.get_event(queued[0])
    assert recorded is not None
    assert recorded.event_type == "access_grant.access_times_changed"
    assert recorded.access_grant_ids == [event["access_grant_id"]]


def test_reconcile_pages_through_many_events(services: Context, seam: SeamStandin) -> None:
    """More events than one page of events/list are all read."""
    from app.adapters.seam_api import EVENTS_PAGE

    base = json.loads((SAMPLES / "events" / "access_method.revoked.json").read_text())
    for n in range(EVENTS_PAGE + 3):
        seam.put_event({**base, "event_id": f"bulk-{n}", "created_at": utcnow().isoformat()})

    found = reconcile(services.ledger, services.seam, RecordingEnqueuer(), utcnow() - timedelta(1))

    assert (found.listed, found.recorded) == (EVENTS_PAGE + 3, EVENTS_PAGE + 3)


# -- 8. out of order -------------------------------------------------------------------------


def test_issued_after_deleted_sends_nothing(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """`issued` arriving after `deleted` acts on Seam's current state: the method is gone."""
    seam.delete_access_method(CODE_ID)
    worker = Worker(services)
    worker.process(record(services, "access_method.deleted"))
    worker.process(record(services, "access_method.issued.code"))
    worker.drain()

    assert twilio.sent == []
    assert deliveries(services) == []


def test_provider_silent_for_the_whole_window_fails_and_falls_back(
    settings_env: dict[str, str], services: Context, twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:  # fmt: skip
    """Twilio never answering (and never taking the SMS) ends in failure and the email."""
    env = {
        **settings_env,
        "DELIVERY_CHANNELS": "sms",
        "PROVIDER_TIMEOUT_SECONDS": "0.3",
        "RETRY_WINDOW_SECONDS": "1",
    }
    silent = Context.from_settings(load_settings(env), services.ledger)
    worker = Worker(silent)
    worker.process(record(silent, "access_method.issued.code"))
    sms = delivery_on(silent, "sms")
    twilio.latency = 0.6
    twilio.fail_next(
        10, 503, {"code": 20503, "message": "Service Unavailable", "status": 503}, method="POST"
    )

    assert worker.send(sms.id) == Result.UNKNOWN
    time.sleep(1.2)  # past the window, and past the hung request
    twilio.latency = 0
    time_passes(silent, sms.id)
    assert worker.send(sms.id) == Result.FAILED
    worker.drain()

    assert twilio.sent == []
    assert silent.ledger.get_delivery(sms.id).status == DeliveryStatus.FAILED  # type: ignore[union-attr]
    [mail] = sendgrid.sent
    assert mail["personalizations"][0]["to"][0]["email"] == "alex.rivera@example.com"


def test_lookup_failing_keeps_the_send_in_doubt_not_resent(
    quick: Context, twilio: TwilioStandin
) -> None:
    """When Twilio cannot be asked about a lost answer, nothing is resent until it can."""
    worker = Worker(quick)
    worker.process(record(quick, "access_method.issued.code"))
    sms = delivery_on(quick, "sms")
    lose_the_answer(worker, twilio, sms.id)
    twilio.fail_next(1, 500, {"code": 20500, "message": "Internal Server Error"}, method="GET")
    time_passes(quick, sms.id)

    assert worker.send(sms.id) == Result.UNKNOWN
    assert len(twilio.sent) == 1
    time_passes(quick, sms.id)
    assert worker.send(sms.id) == Result.SENT
    assert len(twilio.sent) == 1


def test_event_failing_on_seam_is_retried_by_the_sweeper_after_a_backoff(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """Seam down while processing: the failure is recorded and the sweeper retries when due."""
    event_id = record(services, "access_method.issued.code")
    # Three: the SDK's own two retries of a read, and the read.
    seam.fail_next(3, 503, {"error": {"type": "service_unavailable", "message": "down"}})
    with pytest.raises(TransientProviderError) as caught:
        process_event(services, event_id)
    assert retry_later(services.ledger, event_id, caught.value) == 0  # an outage: no failure

    failed = services.ledger.get_event(event_id)
    assert failed is not None
    assert (failed.status, failed.attempts, failed.failed_tries) == (EventStatus.RECEIVED, 1, 0)
    assert failed.next_attempt_at is not None
    assert failed.next_attempt_at > utcnow()
    queue = RecordingEnqueuer()
    sweep(services.ledger, queue, patience=timedelta(0))
    handed = queue.events
    assert handed == []  # not before its backoff

    with services.ledger.engine.begin() as connection:
        connection.execute(
            text("UPDATE events SET next_attempt_at = :now WHERE id = :id"),
            {"now": utcnow() - timedelta(seconds=1), "id": event_id},
        )
    sweep(services.ledger, queue, patience=timedelta(0))
    assert handed == [event_id]
    worker = Worker(services)
    worker.process(event_id)
    worker.drain()
    assert len(twilio.sent) == 1
