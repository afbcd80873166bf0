"""A hotel's own senders (properties.toml) on a message replace the configured ones, through
the Twilio and SendGrid SDKs to their stand-ins."""

from __future__ import annotations

import pytest

from app.adapters.sendgrid_email import SendGridEmail
from app.adapters.twilio_sms import TwilioSms
from app.ports import Email, Sms
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin

GUEST_PHONE, GUEST_EMAIL = "+15555550123", "guest@example.com"
HOTEL_SERVICE = "MG" + "ab" * 16


@pytest.mark.parametrize(
    ("sender", "field", "absent"),
    [
        ("+33612345678", "From", "MessagingServiceSid"),
        (HOTEL_SERVICE, "MessagingServiceSid", "From"),
    ],
)
def test_a_hotel_sms_sender_replaces_the_configured_one(
    twilio: TwilioStandin, sender: str, field: str, absent: str
) -> None:
    """A message's own number goes as From, its messaging service as MessagingServiceSid,
    whatever TWILIO_MESSAGING_SERVICE_SID says."""
    sms = TwilioSms(
        twilio.account_sid,
        twilio.auth_token,
        messaging_service_sid="MG" + "0" * 32,
        base_url=twilio.url,
        timeout=2.0,
    )
    sms.send_sms(Sms(GUEST_PHONE, "Your code is 4821.", "kc-1", sender=sender))

    [request] = twilio.requests
    assert request.form is not None
    assert request.form[field] == [sender]
    assert absent not in request.form


def test_a_message_without_a_sender_keeps_the_configured_one(
    twilio_sms: TwilioSms, twilio: TwilioStandin
) -> None:
    """No hotel sender: the configured TWILIO_FROM_NUMBER, as before."""
    twilio_sms.send_sms(Sms(GUEST_PHONE, "Your code is 4821.", "kc-1"))
    [request] = twilio.requests
    assert request.form is not None
    assert request.form["From"] == ["+15555550100"]


@pytest.mark.parametrize(
    ("sender", "name", "expected"),
    [
        (
            "keys@lumiere.example",
            "Hôtel Lumière",
            {"email": "keys@lumiere.example", "name": "Hôtel Lumière"},
        ),
        (None, "Hôtel Lumière", {"email": "front-desk@hotel.example", "name": "Hôtel Lumière"}),
        (None, None, {"email": "front-desk@hotel.example"}),
    ],
)
def test_a_hotel_email_sender_and_name_replace_the_configured_ones(
    sendgrid_email: SendGridEmail,
    sendgrid: SendGridStandin,
    sender: str | None,
    name: str | None,
    expected: dict[str, str],
) -> None:
    """The hotel's address and display name are the From; a name alone goes with
    SENDGRID_FROM_EMAIL; neither leaves the configured sender."""
    message = Email(GUEST_EMAIL, "Your key", "text", "<p>html</p>", "kc-2", sender, name)
    sendgrid_email.send_email(message)
    [payload] = sendgrid.sent
    assert payload["from"] == expected
