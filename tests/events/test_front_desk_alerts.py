"""Seam late issuing a credential, or giving up: the front desk is emailed once per access
method and kind of alert, through the normal delivery path; the guest is never told."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from app.context import Context
from app.events.processing import process_event
from app.ledger.models import DeliveryStatus, EventStatus
from app.ledger.store import Ledger
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import TEMPLATES
from tests.events.test_pipeline import CODE_ID, GRANT_ID, deliveries, record, run, send, set_method
from tests.queueing import sent_ids

DELAYED = "access_method.delay_in_issuing"
FAILED = "access_method.failed_to_issue"
KIND = {DELAYED: "front_desk_issue_delayed", FAILED: "front_desk_issue_failed"}
PIN = "739164"
FRONT_DESK = "frontdesk@hotel.example"


@pytest.fixture(autouse=True)
def not_issued(seam: SeamStandin) -> None:
    """The code is not issued yet (as when Seam is late), with a PIN no other text contains,
    so 'not in' assertions mean something when the code does exist."""
    set_method(seam, CODE_ID, is_issued=False, code=PIN)


def text_part(mail: dict[str, Any]) -> str:
    return str(next(p["value"] for p in mail["content"] if p["type"] == "text/plain"))


def html_part(mail: dict[str, Any]) -> str:
    return str(next(p["value"] for p in mail["content"] if p["type"] == "text/html"))


@pytest.mark.parametrize("sample", [DELAYED, FAILED])
def test_each_alert_emails_the_front_desk_once_and_never_the_guest(
    services: Context, twilio: TwilioStandin, sendgrid: SendGridStandin, sample: str
) -> None:
    """The event emails the front desk once, with guest, room and start time and no credential,
    however often it is delivered or repeated; the guest gets nothing."""
    event = record(services, sample)
    run(services, event)
    run(services, event)
    run(services, record(services, sample, event_id="a-repeat-of-it"))

    assert twilio.sent == []
    [mail] = sendgrid.sent
    assert [to["email"] for to in mail["personalizations"][0]["to"]] == [FRONT_DESK]
    subject = mail["subject"]
    for part in (subject, text_part(mail), html_part(mail)):
        assert "Alex Rivera" in part
        assert "Room 204" in part
        assert "Fri, Jun 20, 2053, 3:00 PM" in part
        assert PIN not in part
    assert CODE_ID in text_part(mail)
    assert GRANT_ID in text_part(mail)
    [delivery] = deliveries(services)
    assert (delivery.kind, delivery.channel, delivery.status) == (
        KIND[sample],
        "email",
        DeliveryStatus.SENT,
    )
    assert delivery.user_identity_id is not None  # named the guest, yet nothing went to them


def test_delay_then_failure_alerts_once_each(
    services: Context, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """A delay and then a failure are two alerts, each sent once, in that order."""
    for sample in (DELAYED, FAILED, DELAYED, FAILED):
        run(services, record(services, sample, event_id=f"{sample}-{len(sendgrid.sent)}"))

    assert twilio.sent == []
    subjects = [mail["subject"] for mail in sendgrid.sent]
    assert len(subjects) == 2
    assert subjects[0].startswith("Key delayed:")
    assert subjects[1].startswith("Key NOT issued:")


def test_without_front_desk_email_the_alert_is_skipped(
    settings_env: dict[str, str],
    ledger: Ledger,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without FRONT_DESK_EMAIL the alert is recorded as skipped, with a warning, and nothing
    is sent to anyone."""
    env = {key: value for key, value in settings_env.items() if key != "FRONT_DESK_EMAIL"}
    services = Context.from_settings(load_settings(env), ledger)
    for sample in (DELAYED, FAILED):
        event = record(services, sample)
        run(services, event)
        run(services, event)

    assert twilio.sent == []
    assert sendgrid.sent == []
    skipped = deliveries(services)
    assert sorted(d.kind for d in skipped) == sorted(KIND.values())
    assert {d.status for d in skipped} == {DeliveryStatus.SKIPPED}
    assert "FRONT_DESK_EMAIL is not set" in caplog.text


def test_no_alert_when_seam_has_issued_it_since(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """A delay reported for a credential Seam has issued since alerts nobody (the guest gets
    their code from the issued event, not from this one)."""
    set_method(seam, CODE_ID, is_issued=True)
    event = record(services, DELAYED)
    run(services, event)

    assert sendgrid.sent == []
    assert twilio.sent == []
    assert deliveries(services) == []
    recorded = services.ledger.get_event(event)
    assert recorded is not None
    assert recorded.status == EventStatus.PROCESSED


def test_an_alert_issued_before_it_goes_out_is_not_sent(
    services: Context, seam: SeamStandin, sendgrid: SendGridStandin
) -> None:
    """An alert planned while the credential was late, but sent after Seam issued it, is
    superseded rather than sent stale."""
    queue = sent_ids(process_event(services, record(services, DELAYED)).next)
    set_method(seam, CODE_ID, is_issued=True)
    [alert_id] = queue
    send(services, alert_id)

    assert sendgrid.sent == []
    [delivery] = deliveries(services)
    assert delivery.status == DeliveryStatus.SUPERSEDED


def test_alert_in_the_hotel_language_and_time_zone(
    tmp_path: Path, settings_env: dict[str, str], ledger: Ledger, sendgrid: SendGridStandin
) -> None:
    """A hotel set to fr and Europe/Paris gets the alert in French, the start in Paris time."""
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES, folder)
    (folder / "properties.toml").write_text(
        '[workspaces."661025d3-c1d2-403c-83a8-af153aaedfbc"]\n'
        'locale = "fr"\ntimezone = "Europe/Paris"\n',
        encoding="utf-8",
    )
    services = Context.from_settings(
        load_settings({**settings_env, "TEMPLATES_DIR": str(folder)}), ledger
    )
    run(services, record(services, FAILED))

    [mail] = sendgrid.sent
    assert mail["subject"].startswith("Clé NON émise : Room 204 pour Alex Rivera")
    assert "Du : ven. 20 juin 2053, 17:00" in text_part(mail)
    assert PIN not in text_part(mail) + html_part(mail)
