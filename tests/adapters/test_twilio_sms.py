"""TwilioSms and the Twilio stand-in, through the official `twilio` SDK."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime, timedelta

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from app.adapters.twilio_sms import TwilioSms
from app.errors import PermanentProviderError, TransientProviderError, UnknownOutcome
from app.observability.masking import mask_phone
from app.ports import Sent, Sms
from app.standins.twilio import TwilioStandin

GUEST = "+15555550123"
BODY = "Your door code for Room 204 is 4821. Welcome!"


def test_send_records_to_from_body(twilio_sms: TwilioSms, twilio: TwilioStandin) -> None:
    """A send reaches Twilio form-encoded with To, From and Body, and returns the message SID."""
    sent = twilio_sms.send_sms(Sms(GUEST, BODY, reference="dlv-1"))
    [message] = twilio.sent
    assert sent == Sent(provider="twilio", provider_message_id=message["sid"])
    assert message["sid"].startswith("SM")
    assert len(message["sid"]) == 34
    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert request.form is not None
    assert (request.form["To"], request.form["From"], request.form["Body"]) == (
        [GUEST],
        ["+15555550100"],
        [BODY],
    )
    credentials = f"{twilio.account_sid}:{twilio.auth_token}".encode()
    assert request.headers["authorization"] == "Basic " + base64.b64encode(credentials).decode()


def test_messaging_service_is_preferred(twilio: TwilioStandin) -> None:
    """With a Messaging Service SID configured, it is sent instead of From."""
    service = "MG" + "0" * 32
    sms = TwilioSms(
        twilio.account_sid,
        twilio.auth_token,
        from_number="+15555550100",
        messaging_service_sid=service,
        base_url=twilio.url,
        timeout=2.0,
    )
    sms.send_sms(Sms(GUEST, BODY))
    [request] = twilio.requests
    assert request.form is not None
    assert request.form["MessagingServiceSid"] == [service]
    assert "From" not in request.form


@pytest.mark.parametrize("to", ["+15005550001", "+15005550009"])
def test_magic_numbers_are_permanent(twilio_sms: TwilioSms, to: str) -> None:
    """Twilio's invalid (21211) and not-a-mobile (21614) numbers are permanent, with the code."""
    with pytest.raises(PermanentProviderError) as caught:
        twilio_sms.send_sms(Sms(to, BODY))
    expected = {"+15005550001": "21211", "+15005550009": "21614"}[to]
    assert (caught.value.code, caught.value.status) == (expected, 400)


def test_error_never_shows_body_or_number(twilio_sms: TwilioSms, twilio: TwilioStandin) -> None:
    """An error, and the SDK exception chained to it, hold neither the body nor the number."""
    echo = f"Refused '{BODY}' for {GUEST}"
    twilio.fail_next(1, 400, {"code": 21610, "message": echo, "status": 400})
    with pytest.raises(PermanentProviderError) as caught:
        twilio_sms.send_sms(Sms(GUEST, BODY))
    for text in (str(caught.value), str(caught.value.__cause__)):
        assert "4821" not in text
        assert GUEST not in text
    assert mask_phone(GUEST) in str(caught.value)
    assert caught.value.code == "21610"


def test_rate_limit_is_transient(twilio_sms: TwilioSms, twilio: TwilioStandin) -> None:
    """Twilio's 429 / 20429 is transient and keeps a Retry-After hint."""
    body = {"code": 20429, "message": "Too Many Requests", "status": 429}
    twilio.fail_next(1, 429, body, {"Retry-After": "12"})
    with pytest.raises(TransientProviderError) as caught:
        twilio_sms.send_sms(Sms(GUEST, BODY))
    assert (caught.value.code, caught.value.status, caught.value.retry_after) == (
        "20429",
        429,
        12.0,
    )


def test_service_unavailable_is_transient(twilio_sms: TwilioSms, twilio: TwilioStandin) -> None:
    """A 503 is transient, and nothing was accepted."""
    body = {"code": 20503, "message": "Service Unavailable", "status": 503}
    twilio.fail_next(1, 503, body)
    with pytest.raises(TransientProviderError) as caught:
        twilio_sms.send_sms(Sms(GUEST, BODY))
    assert caught.value.status == 503
    assert twilio.sent == []


def test_wrong_auth_token_is_permanent(twilio: TwilioStandin) -> None:
    """Bad credentials (401, 20003) are permanent, and the token is not in the error."""
    token = "wrong_token_abcdef"
    sms = TwilioSms(
        twilio.account_sid,
        token,
        from_number="+15555550100",
        base_url=twilio.url,
        timeout=2.0,
    )
    with pytest.raises(PermanentProviderError) as caught:
        sms.send_sms(Sms(GUEST, BODY))
    assert (caught.value.code, caught.value.status) == ("20003", 401)
    assert token not in str(caught.value)


def test_connection_refused_is_transient(dead_url: str) -> None:
    """Nobody listening is a transient connection error."""
    sms = TwilioSms("AC" + "1" * 32, "t", "+15555550100", base_url=dead_url, timeout=1.0)
    with pytest.raises(TransientProviderError) as caught:
        sms.send_sms(Sms(GUEST, BODY))
    assert caught.value.code == "connection_error"


def test_slow_answer_is_an_unknown_outcome(twilio: TwilioStandin) -> None:
    """No answer within the timeout is an UnknownOutcome: the SMS may have been sent."""
    twilio.latency = 1.0
    sms = TwilioSms(
        twilio.account_sid,
        twilio.auth_token,
        "+15555550100",
        base_url=twilio.url,
        timeout=0.2,
    )
    with pytest.raises(UnknownOutcome) as caught:
        sms.send_sms(Sms(GUEST, BODY))
    assert caught.value.code == "read_timeout"


def test_sdk_logging_never_shows_body(
    twilio_sms: TwilioSms, caplog: pytest.LogCaptureFixture
) -> None:
    """With everything logged at DEBUG, the SDK's request logging stays silent (it prints
    query parameters such as To), and our own line has neither the body nor the number."""
    caplog.set_level(logging.DEBUG)
    twilio_sms.send_sms(Sms(GUEST, BODY, reference="dlv-9"))
    assert [r.getMessage() for r in caplog.records if r.name.startswith("twilio")] == []
    assert "dlv-9" in caplog.text
    assert "4821" not in caplog.text
    assert GUEST not in caplog.text


def test_sdk_lists_and_fetches_sent_messages(twilio: TwilioStandin) -> None:
    """The stand-in lists accepted messages by To and DateSent>, and fetches one by SID."""
    client = Client(
        twilio.account_sid,
        twilio.auth_token,
        http_client=TwilioHttpClient(timeout=2.0),
        environment={},
    )
    client.api.base_url = twilio.url
    before = datetime.now(UTC) - timedelta(seconds=5)
    first = client.messages.create(to=GUEST, from_="+15555550100", body="one")
    client.messages.create(to="+15555550199", from_="+15555550100", body="two")
    listed = client.messages.list(to=GUEST, date_sent_after=before)
    assert [m.sid for m in listed] == [first.sid]
    assert client.messages.list(to=GUEST, date_sent_after=before + timedelta(hours=1)) == []
    assert client.messages(first.sid).fetch().status == "sent"


def test_proxy_variables_read_at_start_still_apply(
    twilio: TwilioStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy variables are read once, when the adapter is built, and still decide the
    route: through HTTP_PROXY (here a closed port, so the send fails as a connection error),
    unless NO_PROXY names Twilio's host."""
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")

    def adapter() -> TwilioSms:
        return TwilioSms(
            twilio.account_sid,
            twilio.auth_token,
            from_number="+15555550100",
            base_url=twilio.url,
            timeout=2,
        )

    proxied = adapter()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # too late for the adapter already built
    with pytest.raises(TransientProviderError):
        proxied.send_sms(Sms(GUEST, BODY))
    assert twilio.sent == []

    adapter().send_sms(Sms(GUEST, BODY))
    assert len(twilio.sent) == 1
