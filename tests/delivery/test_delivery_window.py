"""Scheduled deliveries on a frozen clock: held until their minute, released by the sweeper,
expired after the stay, deferred by quiet hours, re-timed when Seam changes the grant.

Real ledgers (SQLite and PostgreSQL), Seam, Twilio and SendGrid through their SDKs to the
stand-ins; the clock is frozen with time-machine (the whole process: the ledger's clock,
claims and the sweeper alike). The sample stay runs 2053-06-20 15:00 to 2053-06-23 11:00 UTC.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.context import Context
from app.delivery.scheduling import retime_grant
from app.delivery.send import Result, send_delivery
from app.errors import ConfigError
from app.events.processing import process_event
from app.intake.sweeper import patience_for, sweep
from app.ledger.models import AttemptOutcome, Delivery, DeliveryStatus
from app.ledger.store import AttemptEnd
from app.ledger.window import Rescheduled
from app.ops.deliveries import format_deliveries
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import TEMPLATES
from tests.events.test_pipeline import CODE_ID, GRANT_ID, GUEST_ID, PIN, record, set_method
from tests.queueing import RecordingEnqueuer, send_and_hand_on, sent_ids

STARTS = datetime(2053, 6, 20, 15, tzinfo=UTC)
ENDS = datetime(2053, 6, 23, 11, tzinfo=UTC)
WORKSPACE_ID = "661025d3-c1d2-403c-83a8-af153aaedfbc"


@pytest.fixture(autouse=True)
def distinctive_pin(seam: SeamStandin) -> None:
    set_method(seam, CODE_ID, code=PIN)


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """A frozen clock, ten days before the sample stay; `clock.move_to(...)` moves it."""
    with time_machine.travel(datetime(2053, 6, 10, 12, tzinfo=UTC), tick=False) as traveller:
        yield traveller


def windowed(settings_env: dict[str, str], services: Context, **env: str) -> Context:
    return Context.from_settings(load_settings({**settings_env, **env}), services.ledger)


def process_and_send_now(services: Context, event_id: int) -> list[int]:
    """Process an event the way the Celery task does: send what is due in the same task (the
    planning transaction's claim included); returns what it queued."""
    return sent_ids(process_event(services, event_id, send_now=True).next)


def released(services: Context) -> list[int]:
    """What one sweeper run hands to the workers."""
    queue = RecordingEnqueuer()
    sweep(services.ledger, queue, patience=timedelta(minutes=1))
    return queue.sends


def rows(services: Context) -> list[Delivery]:
    with Session(services.ledger.engine) as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def expired_count(channel: str) -> float:
    value = REGISTRY.get_sample_value(
        "keycourier_deliveries_total", {"channel": channel, "status": "expired"}
    )
    return value or 0.0


def test_a_credential_waits_for_its_minute_and_the_sweeper_releases_it(
    settings_env: dict[str, str],
    services: Context,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    clock: time_machine.Traveller,
) -> None:
    """DELIVERY_LEAD_TIME=48h: planned at once, sent by nobody before 2053-06-18 15:00 UTC (not
    the processing task, not an early or duplicated send task, not the sweeper), then
    released by the sweeper at that minute and sent once."""
    services = windowed(settings_env, services, DELIVERY_LEAD_TIME="48h")
    due = STARTS - timedelta(hours=48)

    assert process_and_send_now(services, record(services, "access_method.issued.code")) == []
    planned = rows(services)
    assert [(d.channel, d.status) for d in planned] == [("sms", "pending"), ("email", "pending")]
    assert {d.not_before for d in planned} == {due}
    assert {d.expires_at for d in planned} == {ENDS}
    assert twilio.sent == []
    assert sendgrid.sent == []

    for delivery in planned:  # an early (or duplicated) send task
        assert send_delivery(services, delivery.id).result == Result.NOT_PENDING
    clock.move_to(due - timedelta(minutes=1))
    assert released(services) == []
    assert twilio.sent == []
    assert sendgrid.sent == []

    clock.move_to(due)
    handed = released(services)
    assert handed == [d.id for d in planned]
    results = [send_delivery(services, i).result for i in handed]
    assert results == [Result.SENT, Result.SENT]
    assert len(twilio.sent) == 1
    assert len(sendgrid.sent) == 1
    assert PIN in twilio.sent[0]["body"]
    assert {d.sent_at for d in rows(services)} == {due}
    assert released(services) == []  # sent: nothing more to release


def test_unsent_at_the_end_of_the_stay_it_expires_unsent(
    settings_env: dict[str, str],
    services: Context,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    clock: time_machine.Traveller,
) -> None:
    """A delivery still waiting when the stay ends is closed as expired by the sweeper,
    counted in metrics, never sent afterwards, and nothing falls back or alerts the desk."""
    services = windowed(settings_env, services, DELIVERY_LEAD_TIME="48h")
    process_and_send_now(services, record(services, "access_method.issued.code"))
    before = expired_count("sms"), expired_count("email")

    clock.move_to(ENDS)
    assert released(services) == []
    after = rows(services)
    assert [(d.channel, d.status) for d in after] == [("sms", "expired"), ("email", "expired")]
    assert all("stay ended" in (d.error_message or "") for d in after)
    assert (expired_count("sms"), expired_count("email")) == (before[0] + 1, before[1] + 1)

    for delivery in after:
        assert send_delivery(services, delivery.id).result == Result.NOT_PENDING
    assert released(services) == []
    assert twilio.sent == []
    assert sendgrid.sent == []
    assert len(rows(services)) == 2  # no fallback, no front-desk alert


def test_an_event_after_the_stay_is_recorded_and_never_sent(
    services: Context,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    clock: time_machine.Traveller,
) -> None:
    """Even with no lead time, a credential issued after ends_at is planned (the record), not
    sent in the processing task, and expired by the next sweep."""
    clock.move_to(ENDS + timedelta(hours=1))
    process_and_send_now(services, record(services, "access_method.issued.code"))
    assert [d.status for d in rows(services)] == ["pending", "pending"]
    assert twilio.sent == []
    assert sendgrid.sent == []

    assert released(services) == []
    assert [d.status for d in rows(services)] == ["expired", "expired"]


def test_without_a_window_the_credential_goes_at_once(
    services: Context, twilio: TwilioStandin, clock: time_machine.Traveller
) -> None:
    """The default (no DELIVERY_LEAD_TIME, no QUIET_HOURS): sent in the processing task, ten
    days before the stay, with no not_before recorded."""
    process_and_send_now(services, record(services, "access_method.issued.code"))
    assert len(twilio.sent) == 1
    assert [(d.status, d.not_before) for d in rows(services)] == [("sent", None), ("sent", None)]


def test_quiet_hours_defer_to_the_morning_of_the_propertys_time_zone(
    settings_env: dict[str, str],
    services: Context,
    twilio: TwilioStandin,
    tmp_path: Path,
    clock: time_machine.Traveller,
) -> None:
    """QUIET_HOURS=22:00-07:00 with the workspace in New York (properties.toml; TIMEZONE is
    UTC): a credential issued at 23:30 New York time is released at 07:00 there, 11:00 UTC."""
    folder = Path(shutil.copytree(TEMPLATES, tmp_path / "templates"))
    (folder / "properties.toml").write_text(
        f'[workspaces."{WORKSPACE_ID}"]\ntimezone = "America/New_York"\n', encoding="utf-8"
    )
    services = windowed(
        settings_env, services, QUIET_HOURS="22:00-07:00", TIMEZONE="UTC", TEMPLATES_DIR=str(folder)
    )
    clock.move_to(datetime(2053, 6, 15, 3, 30, tzinfo=UTC))  # 23:30 on the 14th in New York
    morning = datetime(2053, 6, 15, 11, tzinfo=UTC)

    process_and_send_now(services, record(services, "access_method.issued.code"))
    assert {d.not_before for d in rows(services)} == {morning}
    assert twilio.sent == []
    clock.move_to(morning - timedelta(seconds=1))
    assert released(services) == []

    clock.move_to(morning)
    handed = released(services)
    assert [send_delivery(services, i).result for i in handed] == [
        Result.SENT,
        Result.SENT,
    ]
    assert len(twilio.sent) == 1


def test_a_released_delivery_still_retries_after_a_transient_error(
    settings_env: dict[str, str],
    services: Context,
    twilio: TwilioStandin,
    clock: time_machine.Traveller,
) -> None:
    """Released at its minute, a Twilio 500 leaves it pending for its backoff (not before),
    and the retry sends it once."""
    services = windowed(settings_env, services, DELIVERY_LEAD_TIME="48h", DELIVERY_CHANNELS="sms")
    process_and_send_now(services, record(services, "access_method.issued.code"))
    clock.move_to(STARTS - timedelta(hours=48))
    [sms_id] = released(services)
    twilio.fail_next(1, 500, {"code": 20500, "message": "Internal Server Error", "status": 500})

    outcome = send_delivery(services, sms_id)
    assert outcome.result == Result.RETRY
    assert outcome.retry_in is not None
    assert send_delivery(services, sms_id).result == Result.NOT_PENDING
    clock.shift(timedelta(seconds=outcome.retry_in))
    assert send_delivery(services, sms_id).result == Result.SENT
    assert len(twilio.sent) == 1


def test_new_grant_times_re_time_the_scheduled_deliveries(
    settings_env: dict[str, str],
    services: Context,
    seam: SeamStandin,
    twilio: TwilioStandin,
    clock: time_machine.Traveller,
) -> None:
    """Seam moves the stay a day later (access_times_changed): retime_grant, given the grant
    as read from Seam, moves the wait and the end; the old minute releases nothing."""
    services = windowed(settings_env, services, DELIVERY_LEAD_TIME="48h")
    process_and_send_now(services, record(services, "access_method.issued.code"))
    grant = seam.get("access_grant", GRANT_ID)
    assert grant is not None
    seam.put_access_grant(
        {**grant, "starts_at": "2053-06-21T15:00:00.000Z", "ends_at": "2053-06-24T11:00:00.000Z"}
    )

    done = retime_grant(
        services.ledger, services.schedule, services.seam.get_access_grant(GRANT_ID), WORKSPACE_ID
    )
    assert (done.retimed, done.revived) == (2, 0)
    new_due = datetime(2053, 6, 19, 15, tzinfo=UTC)
    assert {(d.not_before, d.expires_at) for d in rows(services)} == {
        (new_due, datetime(2053, 6, 24, 11, tzinfo=UTC))
    }
    clock.move_to(STARTS - timedelta(hours=48))
    assert released(services) == []
    clock.move_to(new_due)
    assert len(released(services)) == 2


def test_an_extended_stay_brings_back_what_had_expired(
    settings_env: dict[str, str],
    services: Context,
    seam: SeamStandin,
    twilio: TwilioStandin,
    clock: time_machine.Traveller,
) -> None:
    """Expired at the old end; Seam extends the stay: the credential is pending again, goes
    at once (its lead time has passed) and reaches the guest."""
    services = windowed(settings_env, services, DELIVERY_LEAD_TIME="48h")
    process_and_send_now(services, record(services, "access_method.issued.code"))
    clock.move_to(ENDS)
    released(services)
    assert [d.status for d in rows(services)] == ["expired", "expired"]

    grant = seam.get("access_grant", GRANT_ID)
    assert grant is not None
    seam.put_access_grant({**grant, "ends_at": "2053-06-25T11:00:00.000Z"})
    done = retime_grant(
        services.ledger, services.schedule, services.seam.get_access_grant(GRANT_ID), WORKSPACE_ID
    )

    assert (done.retimed, done.revived) == (2, 2)
    assert [(d.status, d.not_before, d.error_message) for d in rows(services)] == [
        ("pending", None, None),
        ("pending", None, None),
    ]
    handed = released(services)
    assert [send_delivery(services, i).result for i in handed] == [
        Result.SENT,
        Result.SENT,
    ]
    assert len(twilio.sent) == 1


def test_a_send_that_may_have_gone_out_is_not_brought_back(
    settings_env: dict[str, str], services: Context, clock: time_machine.Traveller
) -> None:
    """An unknown send (no answer from the provider) expired at the end of the stay stays
    expired when the stay is extended: it may have reached the guest, and is never resent
    without the lookup an unknown delivery gets."""
    services = windowed(settings_env, services, DELIVERY_CHANNELS="sms")
    ledger = services.ledger
    event_id = record(services, "access_method.issued.code")
    process_event(services, event_id)  # queued, not sent: still pending
    [delivery] = rows(services)
    claimed = ledger.claim_delivery(delivery.id, timedelta(minutes=1))
    assert claimed is not None
    attempt = ledger.begin_attempt(claimed, "twilio", None, timedelta(minutes=1))
    assert attempt is not None
    ledger.finish_attempt(attempt, AttemptEnd(AttemptOutcome.UNKNOWN, DeliveryStatus.UNKNOWN))

    clock.move_to(ENDS)
    released(services)
    assert rows(services)[0].status == "expired"
    done = ledger.reschedule_grant(
        GRANT_ID, ["pin_code"], None, ENDS + timedelta(days=2), ENDS + timedelta(minutes=1)
    )
    assert (done.retimed, done.revived) == (0, 0)
    assert rows(services)[0].status == "expired"


def test_front_desk_messages_ignore_the_window(
    settings_env: dict[str, str],
    services: Context,
    sendgrid: SendGridStandin,
    clock: time_machine.Traveller,
) -> None:
    """A card to encode is emailed to the front desk at once, in quiet hours and before any
    lead time: the desk is not a guest."""
    services = windowed(settings_env, services, DELIVERY_LEAD_TIME="48h", QUIET_HOURS="00:00-23:59")
    process_event(services, record(services, "access_method.card_encoding_required"))
    [desk] = rows(services)
    assert desk.kind == "front_desk_card"
    assert desk.not_before is None
    assert send_delivery(services, desk.id).result == Result.SENT
    assert len(sendgrid.sent) == 1


def test_ops_see_scheduled_deliveries_and_their_time(
    settings_env: dict[str, str], services: Context, clock: time_machine.Traveller
) -> None:
    """`keycourier deliveries` shows a waiting delivery as scheduled, with when it goes."""
    services = windowed(settings_env, services, DELIVERY_LEAD_TIME="2d")
    process_and_send_now(services, record(services, "access_method.issued.code"))
    table = format_deliveries(services.ledger.recent_deliveries())
    assert table.count("scheduled") == 2
    assert "not before 2053-06-18 15:00 UTC" in table

    clock.move_to(ENDS)
    released(services)
    table = format_deliveries(services.ledger.recent_deliveries())
    assert "scheduled" not in table
    assert table.count("expired") == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [("DELIVERY_LEAD_TIME", "48"), ("DELIVERY_LEAD_TIME", "P1M"), ("QUIET_HOURS", "10pm-7am")],
)
def test_a_window_setting_that_cannot_be_read_stops_startup(name: str, value: str) -> None:
    """A lead time or quiet hours that are not understood refuse to start, naming the
    setting and the expected form."""
    with pytest.raises(ConfigError, match=f"^{name} is invalid: .*expected"):
        load_settings({name: value})


def test_a_fallback_ends_with_the_stay_too(
    settings_env: dict[str, str],
    services: Context,
    seam: SeamStandin,
    sendgrid: SendGridStandin,
    clock: time_machine.Traveller,
) -> None:
    """The SMS fails for good at its minute; the email standing in for it is due at once but
    still ends with the stay: unsent by then, it expires instead of going after checkout."""
    services = windowed(settings_env, services, DELIVERY_LEAD_TIME="48h", DELIVERY_CHANNELS="sms")
    guest = seam.get("user_identity", GUEST_ID)
    assert guest is not None
    seam.put_user_identity({**guest, "phone_number": "+15005550001"})  # Twilio answers 21211
    process_and_send_now(services, record(services, "access_method.issued.code"))
    clock.move_to(STARTS - timedelta(hours=48))
    [sms_id] = released(services)
    handed: list[int] = []
    assert send_and_hand_on(services, sms_id, handed).result == Result.FAILED

    [fallback] = [d for d in rows(services) if d.fallback_for_id == sms_id]
    assert fallback.channel == "email"
    assert fallback.not_before is None
    assert fallback.expires_at == ENDS
    clock.move_to(ENDS)
    assert released(services) == []
    assert send_delivery(services, fallback.id).result == Result.NOT_PENDING
    assert sendgrid.sent == []


def test_re_timing_touches_only_that_grants_unsent_messages_of_those_kinds(
    settings_env: dict[str, str],
    services: Context,
    seam: SeamStandin,
    clock: time_machine.Traveller,
) -> None:
    """Another grant, another kind, or a delivery already sent is left alone; a stay moved
    into the past ends the waiting deliveries at the next sweep."""
    services = windowed(settings_env, services, DELIVERY_LEAD_TIME="48h")
    ledger = services.ledger
    process_and_send_now(services, record(services, "access_method.issued.code"))
    later, now = datetime(2053, 7, 1, tzinfo=UTC), datetime.now(UTC)
    other_grant = ledger.reschedule_grant("another-grant", ["pin_code"], later, None, now)
    other_kind = ledger.reschedule_grant(GRANT_ID, ["instant_key"], later, None, now)
    assert other_grant == other_kind == Rescheduled(0, 0)
    assert {d.not_before for d in rows(services)} == {STARTS - timedelta(hours=48)}

    grant = seam.get("access_grant", GRANT_ID)
    assert grant is not None
    seam.put_access_grant(
        {**grant, "starts_at": "2053-06-01T15:00:00.000Z", "ends_at": "2053-06-05T11:00:00.000Z"}
    )
    done = retime_grant(
        services.ledger, services.schedule, services.seam.get_access_grant(GRANT_ID), WORKSPACE_ID
    )
    assert done == Rescheduled(2, 0)
    assert released(services) == []
    assert [d.status for d in rows(services)] == ["expired", "expired"]


def test_quiet_hours_hold_the_cancellation_notice_too(
    settings_env: dict[str, str],
    services: Context,
    seam: SeamStandin,
    twilio: TwilioStandin,
    clock: time_machine.Traveller,
) -> None:
    """A code sent in the afternoon, deleted at 23:00 Paris time: the guest's "your key is
    cancelled" notice (NOTIFY_GUEST_ON_DELETE) waits for 07:00 there, and is then sent."""
    services = windowed(
        settings_env,
        services,
        QUIET_HOURS="22:00-07:00",
        TIMEZONE="Europe/Paris",
        NOTIFY_GUEST_ON_DELETE="true",
        DELIVERY_CHANNELS="sms",
    )
    process_and_send_now(services, record(services, "access_method.issued.code"))
    assert len(twilio.sent) == 1
    clock.move_to(datetime(2053, 6, 10, 21, tzinfo=UTC))
    seam.delete_access_method(CODE_ID)
    queued = sent_ids(process_event(services, record(services, "access_method.deleted")).next)

    [notice] = [d for d in rows(services) if d.kind == "access_cancelled"]
    morning = datetime(2053, 6, 11, 5, tzinfo=UTC)  # 07:00 in Paris (summer time)
    assert notice.not_before == morning
    assert notice.expires_at == ENDS
    assert [send_delivery(services, i).result for i in queued] == [Result.NOT_PENDING]
    clock.move_to(morning)
    assert released(services) == [notice.id]
    assert send_delivery(services, notice.id).result == Result.SENT
    assert "cancelled" in twilio.sent[1]["body"]


def test_access_times_changed_re_times_the_waiting_credential(
    settings_env: dict[str, str],
    services: Context,
    seam: SeamStandin,
    twilio: TwilioStandin,
    clock: time_machine.Traveller,
) -> None:
    """Seam moves the stay a day later and says so (access_grant.access_times_changed): the
    credential still waiting for its lead time waits a day longer."""
    services = windowed(settings_env, services, DELIVERY_LEAD_TIME="48h", DELIVERY_CHANNELS="sms")
    process_and_send_now(services, record(services, "access_method.issued.code"))
    grant = seam.get("access_grant", GRANT_ID)
    assert grant is not None
    seam.put_access_grant(
        {**grant, "starts_at": "2053-06-21T15:00:00.000Z", "ends_at": "2053-06-24T11:00:00.000Z"}
    )
    process_event(services, record(services, "access_grant.access_times_changed"))

    [sms] = rows(services)
    assert sms.not_before == datetime(2053, 6, 19, 15, tzinfo=UTC)
    assert sms.expires_at == datetime(2053, 6, 24, 11, tzinfo=UTC)
    clock.move_to(STARTS - timedelta(hours=48))
    assert released(services) == []
    assert twilio.sent == []


def test_queued_before_its_time_it_is_released_at_its_time(
    settings_env: dict[str, str],
    services: Context,
    twilio: TwilioStandin,
    clock: time_machine.Traveller,
) -> None:
    """Planned ten seconds before it is due and queued at once (the task finds nothing to
    claim), it is released at its minute, not a sweeper's patience later."""
    services = windowed(settings_env, services, DELIVERY_LEAD_TIME="48h", DELIVERY_CHANNELS="sms")
    due = STARTS - timedelta(hours=48)
    clock.move_to(due - timedelta(seconds=10))
    queued = sent_ids(process_event(services, record(services, "access_method.issued.code")).next)
    assert [send_delivery(services, i).result for i in queued] == [Result.NOT_PENDING]

    clock.move_to(due)
    patience = patience_for(load_settings(settings_env))
    queue = RecordingEnqueuer()
    sweep(services.ledger, queue, patience=patience)
    handed = queue.sends
    assert handed == queued
    assert send_delivery(services, handed[0]).result == Result.SENT
    assert len(twilio.sent) == 1
