"""TwilioWhatsApp and the Twilio stand-in's WhatsApp (Content API), through the `twilio` SDK."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.adapters.dry_run import DryRunWhatsApp
from app.adapters.twilio_whatsapp import TwilioWhatsApp
from app.errors import PermanentProviderError, TransientProviderError
from app.ports import Sent, WhatsApp
from app.standins.twilio import TwilioStandin

GUEST = "+15555550123"
SENDER = "+14155238886"
PIN_TEMPLATE = "HX" + "1" * 32
PIN = "418207"
TEXT = "Hello {{1}}, your door code at {{3}} is {{2}}."
VARIABLES = {"1": "Alex", "2": PIN, "3": "Hotel Lumière"}
CALLBACK = "https://keys.example.com/webhooks/twilio/status"


@pytest.fixture
def whatsapp(twilio: TwilioStandin) -> TwilioWhatsApp:
    twilio.add_content(PIN_TEMPLATE, TEXT)
    return TwilioWhatsApp(
        twilio.account_sid,
        twilio.auth_token,
        sender=SENDER,
        base_url=twilio.url,
        timeout=2.0,
        status_callback=CALLBACK,
    )


def message(**changes: object) -> WhatsApp:
    fields: dict[str, object] = {
        "to": GUEST,
        "content_sid": PIN_TEMPLATE,
        "variables": VARIABLES,
        "reference": "kc-7",
    }
    return WhatsApp(**(fields | changes))  # type: ignore[arg-type]


def test_a_template_message_goes_as_content_sid_and_variables(
    whatsapp: TwilioWhatsApp, twilio: TwilioStandin
) -> None:
    """The SDK posts To and From with the whatsapp: prefix, ContentSid, ContentVariables as a
    JSON object and the status callback with our reference, and no Body; Twilio renders the
    code into the message."""
    sent = whatsapp.send_whatsapp(message())

    [request] = twilio.requests
    assert request.form is not None
    assert request.form["To"] == [f"whatsapp:{GUEST}"]
    assert request.form["From"] == [f"whatsapp:{SENDER}"]
    assert request.form["ContentSid"] == [PIN_TEMPLATE]
    assert json.loads(request.form["ContentVariables"][0]) == VARIABLES
    assert request.form["StatusCallback"] == [f"{CALLBACK}?ref=kc-7"]
    assert "Body" not in request.form
    [recorded] = twilio.whatsapp_sent
    assert recorded["body"] == f"Hello Alex, your door code at Hotel Lumière is {PIN}."
    assert sent == Sent(provider="twilio", provider_message_id=recorded["sid"])


def test_a_hotel_sender_wins_and_a_messaging_service_replaces_from(
    whatsapp: TwilioWhatsApp, twilio: TwilioStandin
) -> None:
    """The hotel's own sender replaces TWILIO_WHATSAPP_FROM; a Messaging Service SID is sent as
    MessagingServiceSid, with no From."""
    service = "MG" + "a" * 32
    whatsapp.send_whatsapp(message(sender="whatsapp:+33612345678"))
    whatsapp.send_whatsapp(message(sender=service))

    first, second = twilio.requests
    assert first.form is not None
    assert second.form is not None
    assert first.form["From"] == ["whatsapp:+33612345678"]
    assert second.form["MessagingServiceSid"] == [service]
    assert "From" not in second.form


def test_an_unknown_template_is_refused_for_good_without_the_code_or_number(
    whatsapp: TwilioWhatsApp, twilio: TwilioStandin
) -> None:
    """A content SID the account does not have is Twilio's 21655: a permanent error (the
    fallback takes over) whose message holds neither the PIN nor the guest's number."""
    with pytest.raises(PermanentProviderError) as raised:
        whatsapp.send_whatsapp(message(content_sid="HX" + "9" * 32))
    assert raised.value.code == "21655"
    assert PIN not in str(raised.value)
    assert GUEST not in str(raised.value)
    assert twilio.whatsapp_sent == []


def test_an_error_echoing_the_variables_is_scrubbed(
    whatsapp: TwilioWhatsApp, twilio: TwilioStandin
) -> None:
    """Twilio's error text quoting the variables or the number loses both, chained cause
    included."""
    echo = f"Invalid parameter {PIN} for whatsapp:{GUEST}"
    twilio.fail_next(1, 400, {"code": 63021, "message": echo, "status": 400})
    with pytest.raises(PermanentProviderError) as raised:
        whatsapp.send_whatsapp(message())
    for text in (str(raised.value), str(raised.value.__cause__)):
        assert PIN not in text
        assert GUEST not in text


def test_rate_limits_are_transient(whatsapp: TwilioWhatsApp, twilio: TwilioStandin) -> None:
    """A 429 is retried later, honouring Retry-After."""
    twilio.fail_next(1, 429, {"code": 20429, "message": "Too Many Requests"}, {"Retry-After": "7"})
    with pytest.raises(TransientProviderError) as raised:
        whatsapp.send_whatsapp(message())
    assert raised.value.retry_after == 7


def test_no_sender_anywhere_is_a_permanent_error(twilio: TwilioStandin) -> None:
    """Without TWILIO_WHATSAPP_FROM or a hotel's whatsapp_from nothing is sent, and the reason
    says what to set."""
    bare = TwilioWhatsApp(twilio.account_sid, twilio.auth_token, base_url=twilio.url)
    with pytest.raises(PermanentProviderError, match="TWILIO_WHATSAPP_FROM"):
        bare.send_whatsapp(message())
    assert twilio.requests == []


def test_recent_messages_show_the_text_twilio_rendered(
    whatsapp: TwilioWhatsApp, twilio: TwilioStandin
) -> None:
    """A lost answer is looked up among the WhatsApp messages to the guest's number, each with
    the text Twilio wrote from its template (what the worker matches against)."""
    sent = whatsapp.send_whatsapp(message())
    found = whatsapp.recent_messages(GUEST, datetime.now(UTC) - timedelta(minutes=1))
    assert [m.provider_message_id for m in found] == [sent.provider_message_id]
    assert PIN in found[0].body
    assert whatsapp.recent_messages("+15555550999", datetime.now(UTC)) == []


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ("not json", 21656),
        ('["1"]', 21656),
        ('{"1": ""}', 21656),
        ('{"1": 4}', 21656),
    ],
)
def test_the_standin_refuses_variables_that_are_not_an_object_of_text(
    twilio: TwilioStandin, variables: str, code: int
) -> None:
    """ContentVariables must be a JSON object of non-empty strings, as Twilio checks."""
    twilio.add_content(PIN_TEMPLATE, TEXT)
    form = {
        "To": f"whatsapp:{GUEST}",
        "From": f"whatsapp:{SENDER}",
        "ContentSid": PIN_TEMPLATE,
        "ContentVariables": variables,
    }
    answer = httpx.post(
        f"{twilio.url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json",
        data=form,
        auth=(twilio.account_sid, twilio.auth_token),
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == code
    assert twilio.whatsapp_sent == []


def test_the_standin_refuses_an_sms_sender_for_a_whatsapp_number(twilio: TwilioStandin) -> None:
    """From and To must be of the same channel (Twilio's 21910)."""
    twilio.add_content(PIN_TEMPLATE, TEXT)
    answer = httpx.post(
        f"{twilio.url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json",
        data={"To": f"whatsapp:{GUEST}", "From": SENDER, "ContentSid": PIN_TEMPLATE},
        auth=(twilio.account_sid, twilio.auth_token),
    )
    assert answer.json()["code"] == 21910


def test_a_dry_run_writes_the_template_and_variables(tmp_path: Path) -> None:
    """Without Twilio's credentials the message is written to the outbox, not sent."""
    sent = DryRunWhatsApp(tmp_path).send_whatsapp(message())
    assert sent.dry_run
    [written] = tmp_path.glob("*whatsapp.json")
    record = json.loads(written.read_text())
    assert record["content_sid"] == PIN_TEMPLATE
    assert record["content_variables"] == VARIABLES
    assert record["to"] == GUEST
