"""Provider status through real processes: the worker's SMS asks Twilio (stand-in, through the
SDK) for a status callback; the stand-in POSTs its signed callback to the web process like
Twilio; the worker then sends the email fallback, and SendGrid's signed events are taken in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import provider_env
from tests.processes import Processes, free_port, post_sample, running_web, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def service(
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    clean_postgres_url: str,
    redis_url: str,
    tmp_path: Path,
) -> Iterator[tuple[str, Processes]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **provider_env(seam, twilio, sendgrid),
        "DATABASE_URL": clean_postgres_url,
        "REDIS_URL": redis_url,
        "DELIVERY_CHANNELS": "sms",
        "PUBLIC_BASE_URL": base,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": sendgrid.webhook_public_key,
    }
    with running_web(env, tmp_path, port) as (base, processes):
        processes.start("worker", "worker", "--concurrency", "2")
        yield base, processes


def test_undelivered_sms_reaches_the_guest_by_email(
    service: tuple[str, Processes], twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """Twilio reports the SMS undelivered: one email goes instead, and the front desk is told;
    SendGrid then reports it delivered. A forged callback is refused. No log line holds the
    guest's details."""
    base, processes = service
    assert post_sample(base, "access_method.issued.code", "msg_status_1").status_code == 200
    assert wait_for(lambda: len(twilio.sent) == 1, 60)
    [sms] = twilio.sent
    assert twilio.status_callback_url(sms["sid"]) is not None

    assert twilio.report_status(sms["sid"], "sent") == 200
    assert twilio.report_status(sms["sid"], "undelivered", 30003) == 200
    assert wait_for(lambda: len(sendgrid.sent) == 2, 60)  # the guest's email, the desk's alert
    to = sorted(m["personalizations"][0]["to"][0]["email"] for m in sendgrid.sent)
    assert to == ["alex.rivera@example.com", "frontdesk@hotel.example"]

    real_token = twilio.auth_token
    twilio.auth_token = "forged"
    assert twilio.report_status(sms["sid"], "delivered") == 403
    twilio.auth_token = real_token

    events_url = f"{base}/webhooks/sendgrid/events"
    assert sendgrid.post_events(events_url, [sendgrid.event(0, "delivered")]) == 200
    assert not wait_for(lambda: len(sendgrid.sent) > 2 or len(twilio.sent) > 1, seconds=3)

    logs = processes.stop()
    assert "reports the message undelivered" in logs
    for personal in ("+15555550123", "alex.rivera@example.com", sms["sid"]):
        assert personal not in logs
