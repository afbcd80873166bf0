"""WhatsApp through real processes: a hotel whose properties.toml puts WhatsApp first gets its
guest's key as an approved content template (ContentSid + ContentVariables) at the Twilio
stand-in; a guest not on WhatsApp (Twilio's 63003, reported by status callback) gets it by SMS
instead. uvicorn, a Celery worker, Redis and PostgreSQL are real; Seam, Twilio and SendGrid are
the stand-ins, reached through the official SDKs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import TEMPLATES, provider_env
from tests.processes import Processes, free_port, post_sample, running_web, wait_for

pytestmark = pytest.mark.e2e

HOTEL = "661025d3-c1d2-403c-83a8-af153aaedfbc"  # the samples' workspace
CODE_ID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
GUEST_PHONE = "+15555550123"
SENDER = "+14155238886"
PIN_TEMPLATE = "HX" + "a1" * 16
KEY_TEMPLATE = "HX" + "b2" * 16
PIN = "418207"

PROPERTIES = f"""
[whatsapp.pin_code]
content_sid = "{PIN_TEMPLATE}"
variables = {{ 1 = "guest_first_name", 2 = "pin_code", 3 = "space_names" }}

[whatsapp.instant_key]
content_sid = "{KEY_TEMPLATE}"
variables = {{ 1 = "instant_key_url" }}

[workspaces."{HOTEL}"]
property_name = "Hotel Lumière"
channels = ["whatsapp", "sms", "email"]
whatsapp_from = "{SENDER}"
"""


@pytest.fixture
def service(
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    clean_postgres_url: str,
    redis_url: str,
    tmp_path: Path,
) -> Iterator[tuple[str, Processes]]:
    """Web and worker of a deployment whose sample hotel sends keys by WhatsApp first."""
    method = seam.get("access_method", CODE_ID)
    assert method is not None
    seam.put_access_method({**method, "code": PIN})
    twilio.add_content(PIN_TEMPLATE, "Hi {{1}}, your door code for {{3}} is {{2}}.")
    twilio.add_content(KEY_TEMPLATE, "Your key: {{1}}")
    templates = Path(shutil.copytree(TEMPLATES, tmp_path / "templates"))
    (templates / "properties.toml").write_text(PROPERTIES)
    port = free_port()
    env = {
        **provider_env(seam, twilio, sendgrid),
        "DATABASE_URL": clean_postgres_url,
        "REDIS_URL": redis_url,
        "TEMPLATES_DIR": str(templates),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    with running_web(env, tmp_path, port) as (base, processes):
        processes.start("worker", "worker", "--concurrency", "2")
        yield base, processes


def statuses(database_url: str) -> list[tuple[str, str, int | None]]:
    """(channel, status, fallback_for_id) of each guest key delivery, oldest first."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT channel, status, fallback_for_id FROM deliveries "
                    "WHERE kind = 'pin_code' ORDER BY id"
                )
            )
            return [(row[0], row[1], row[2]) for row in rows]
    finally:
        engine.dispose()


def test_a_pin_goes_by_whatsapp_as_an_approved_template(
    service: tuple[str, Processes],
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    clean_postgres_url: str,
) -> None:
    """A signed access_method.issued reaches the guest on WhatsApp, from the hotel's sender,
    as the content template with the code in its ContentVariables, and by email beside it,
    never also by SMS; Twilio's delivered and read reports move it to delivered. No log line
    holds the code or the guest's number."""
    base, processes = service
    assert post_sample(base, "access_method.issued.code", "msg_wa_1", code=PIN).status_code == 200
    assert wait_for(lambda: len(twilio.whatsapp_sent) == 1 and len(sendgrid.sent) == 1, 60)

    [message] = twilio.whatsapp_sent
    assert message["to"] == f"whatsapp:{GUEST_PHONE}"
    assert message["from"] == f"whatsapp:{SENDER}"
    assert message["content_sid"] == PIN_TEMPLATE
    assert message["content_variables"] == {"1": "Alex", "2": PIN, "3": "Room 204"}
    assert message["body"] == f"Hi Alex, your door code for Room 204 is {PIN}."
    assert [m["to"] for m in twilio.sent] == [f"whatsapp:{GUEST_PHONE}"]  # no SMS

    assert twilio.report_status(message["sid"], "delivered") == 200
    assert twilio.report_status(message["sid"], "read") == 200
    assert wait_for(lambda: ("whatsapp", "delivered", None) in statuses(clean_postgres_url), 30)
    assert not wait_for(lambda: len(twilio.sent) > 1, seconds=2)

    logs = processes.stop()
    assert "delivery sent" in logs
    for secret in (PIN, GUEST_PHONE, twilio.auth_token):
        assert secret not in logs


def test_a_guest_not_on_whatsapp_gets_the_pin_by_sms(
    service: tuple[str, Processes],
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    clean_postgres_url: str,
) -> None:
    """Twilio accepts the WhatsApp message, then reports it failed (63003: the number is not on
    WhatsApp) to the status callback: the worker sends the same code by SMS, once, and the
    front desk hears the WhatsApp did not arrive."""
    base, processes = service
    twilio.fail_whatsapp(GUEST_PHONE, 63003)
    assert post_sample(base, "access_method.issued.code", "msg_wa_2", code=PIN).status_code == 200

    def sms() -> list[dict[str, object]]:
        return [m for m in twilio.sent if m["to"] == GUEST_PHONE]

    assert wait_for(lambda: len(sms()) == 1, 60)
    [text_message] = sms()
    assert PIN in str(text_message["body"])
    assert len(twilio.whatsapp_sent) == 1
    assert wait_for(
        lambda: statuses(clean_postgres_url)[:1] == [("whatsapp", "undelivered", None)], 30
    )
    by_channel = {channel: fallback for channel, _, fallback in statuses(clean_postgres_url)}
    assert sorted(by_channel) == ["email", "sms", "whatsapp"]
    assert by_channel["sms"] is not None
    assert by_channel["email"] is None
    desk = "frontdesk@hotel.example"
    assert wait_for(
        lambda: any(m["personalizations"][0]["to"][0]["email"] == desk for m in sendgrid.sent),
        30,
    )
    assert not wait_for(lambda: len(sms()) > 1, seconds=3)

    logs = processes.stop()
    for secret in (PIN, GUEST_PHONE):
        assert secret not in logs
