"""access_method.deleted cancels what is pending and, only with NOTIFY_GUEST_ON_DELETE and only
for a guest who was already sent the credential, tells that guest once per channel."""

from __future__ import annotations

from typing import Any

from app.context import Context
from app.events.processing import process_event
from app.ledger.models import DeliveryStatus
from app.ledger.store import Ledger
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.events.test_pipeline import (
    CODE_ID,
    PIN,
    deliveries,
    distinctive_credentials,  # noqa: F401  # autouse: a PIN no other text contains
    record,
    run,
    send,
)
from tests.queueing import sent_ids


def notifying(settings_env: dict[str, str], ledger: Ledger, value: str) -> Context:
    env = {**settings_env, "NOTIFY_GUEST_ON_DELETE": value}
    return Context.from_settings(load_settings(env), ledger)


def email_text(mail: dict[str, Any]) -> str:
    return str(next(p["value"] for p in mail["content"] if p["type"] == "text/plain"))


def delete_in_seam(services: Context, seam: SeamStandin, event_id: str = "deleted-1") -> int:
    seam.delete_access_method(CODE_ID)
    return record(services, "access_method.deleted", event_id=event_id)


def test_the_setting_is_off_unless_set(settings_env: dict[str, str]) -> None:
    """NOTIFY_GUEST_ON_DELETE is off by default and reads true when set."""
    assert load_settings(settings_env).notify_guest_on_delete is False
    env = {**settings_env, "NOTIFY_GUEST_ON_DELETE": "true"}
    assert load_settings(env).notify_guest_on_delete is True


def test_off_a_delivered_guest_is_not_told(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """With the setting off (the default), deleting a delivered code sends the guest nothing."""
    run(services, record(services, "access_method.issued.code"))
    assert (len(twilio.sent), len(sendgrid.sent)) == (1, 1)

    run(services, delete_in_seam(services, seam))

    assert (len(twilio.sent), len(sendgrid.sent)) == (1, 1)
    assert all(d.kind == "pin_code" for d in deliveries(services))


def test_on_a_delivered_guest_is_told_once_per_channel(
    settings_env: dict[str, str],
    ledger: Ledger,
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:
    """With the setting on, a guest who got their code by SMS and email is told it is cancelled
    once on each, without the code, however often the deletion is reported."""
    services = notifying(settings_env, ledger, "true")
    run(services, record(services, "access_method.issued.code"))
    event = delete_in_seam(services, seam)
    run(services, event)
    run(services, event)
    run(services, record(services, "access_method.deleted", event_id="deleted-again"))

    [_, notice] = twilio.sent
    assert "cancelled" in notice["body"]
    assert "Alex" in notice["body"]
    assert PIN not in notice["body"]
    [_, mail] = sendgrid.sent
    assert "cancelled" in mail["subject"]
    assert "Alex Rivera" in email_text(mail)
    assert PIN not in email_text(mail) + mail["subject"]
    notices = [d for d in deliveries(services) if d.kind == "access_cancelled"]
    assert sorted(d.channel for d in notices) == ["email", "sms"]
    assert {d.status for d in notices} == {DeliveryStatus.SENT}


def test_on_a_guest_never_sent_the_code_is_not_told(
    settings_env: dict[str, str],
    ledger: Ledger,
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:
    """With the setting on, a code deleted before it went out is cancelled and the guest is
    told nothing: they never had it."""
    services = notifying(settings_env, ledger, "true")
    process_event(services, record(services, "access_method.issued.code"))
    run(services, delete_in_seam(services, seam))

    assert twilio.sent == []
    assert sendgrid.sent == []
    assert [d.kind for d in deliveries(services)] == ["pin_code", "pin_code"]
    assert {d.status for d in deliveries(services)} == {DeliveryStatus.SUPERSEDED}


def test_a_repeated_deletion_does_not_cancel_the_notices_waiting_to_go_out(
    settings_env: dict[str, str],
    ledger: Ledger,
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:
    """A second report of the deletion, processed before the notices are sent, leaves them
    pending: the guest is still told, once per channel."""
    services = notifying(settings_env, ledger, "true")
    run(services, record(services, "access_method.issued.code"))
    queued = sent_ids(process_event(services, delete_in_seam(services, seam)).next)
    queued.extend(
        sent_ids(process_event(services, record(services, "access_method.deleted", "again")).next)
    )

    assert len(queued) == 2
    for delivery_id in queued:
        send(services, delivery_id)
    assert "cancelled" in twilio.sent[-1]["body"]
    assert "cancelled" in sendgrid.sent[-1]["subject"]
    assert (len(twilio.sent), len(sendgrid.sent)) == (2, 2)
