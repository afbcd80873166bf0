"""SendGridEmail and the SendGrid stand-in, through the official `sendgrid` SDK."""

from __future__ import annotations

import logging
import ssl
import threading
import time
import urllib.request
from typing import Any

import pytest
from python_http_client.exceptions import BadRequestsError
from sendgrid import SendGridAPIClient

from app.adapters.sendgrid_email import SendGridEmail
from app.errors import PermanentProviderError, TransientProviderError, UnknownOutcome
from app.ports import Email, Sent
from app.standins.sendgrid import SendGridStandin

GUEST = "alex.rivera@example.com"
MESSAGE = Email(
    to=GUEST,
    subject="Your key for Room 204",
    text="Your door code is 4821.",
    html="<p>Your door code is <b>4821</b>.</p>",
    reference="dlv-42",
)


def test_send_has_both_parts_and_reference(
    sendgrid_email: SendGridEmail, sendgrid: SendGridStandin
) -> None:
    """A send posts text/plain then text/html, the custom arg, and returns X-Message-Id."""
    sent = sendgrid_email.send_email(MESSAGE)
    [payload] = sendgrid.sent
    assert sent == Sent(provider="sendgrid", provider_message_id=sendgrid.message_ids[0])
    assert payload["from"] == {"email": "front-desk@hotel.example"}
    assert payload["personalizations"] == [{"to": [{"email": GUEST}]}]
    assert payload["subject"] == MESSAGE.subject
    assert payload["content"] == [
        {"type": "text/plain", "value": MESSAGE.text},
        {"type": "text/html", "value": MESSAGE.html},
    ]
    assert payload["custom_args"] == {"keycourier_ref": "dlv-42"}
    [request] = sendgrid.requests
    assert request.headers["authorization"] == f"Bearer {sendgrid.api_key}"


def test_sends_share_one_tls_context(
    sendgrid_email: SendGridEmail, sendgrid: SendGridStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten sends make no TLS context of their own (Python 3.12's urllib would make one per
    request, loading the whole CA store each time): they share the adapter's one."""
    loads: list[object] = []
    load = ssl.SSLContext.load_default_certs

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args)
        load(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_default_certs", counted)
    for _ in range(10):
        sendgrid_email.send_email(MESSAGE)
    assert len(sendgrid.sent) == 10
    assert loads == []


def test_each_thread_builds_one_opener(
    sendgrid_email: SendGridEmail, sendgrid: SendGridStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Openers are built once per thread and kept (building one was ~40 % of a send); threads
    never share one, and every send from every thread arrives."""
    built: list[tuple[int, urllib.request.OpenerDirector]] = []
    build = urllib.request.build_opener

    def counted(*handlers: Any) -> urllib.request.OpenerDirector:
        opener = build(*handlers)
        built.append((threading.get_ident(), opener))
        return opener

    monkeypatch.setattr(urllib.request, "build_opener", counted)

    # Every thread stays until all have sent: a thread that ended could hand its ident on.
    together = threading.Barrier(4, timeout=30)

    def three_sends() -> None:
        for _ in range(3):
            sendgrid_email.send_email(MESSAGE)
        together.wait()

    threads = [threading.Thread(target=three_sends) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sendgrid.sent) == 12
    assert len(built) == 4
    assert len({ident for ident, _ in built}) == 4
    assert len({id(opener) for _, opener in built}) == 4


@pytest.mark.parametrize("status", [400, 403, 413])
def test_client_errors_are_permanent(
    sendgrid_email: SendGridEmail, sendgrid: SendGridStandin, status: int
) -> None:
    """400, 403 and 413 are permanent, with SendGrid's status and field."""
    body = {"errors": [{"message": f"rejected {GUEST}", "field": "content", "help": None}]}
    sendgrid.fail_next(1, status, body)
    with pytest.raises(PermanentProviderError) as caught:
        sendgrid_email.send_email(MESSAGE)
    assert caught.value.status == status
    assert "field content" in str(caught.value)
    assert GUEST not in str(caught.value)


@pytest.mark.parametrize("address", ["not-an-address-653", "front desk"])
def test_an_address_the_sdk_cannot_read_is_permanent(
    sendgrid_email: SendGridEmail, sendgrid: SendGridStandin, address: str
) -> None:
    """An address the SDK cannot build a message for (a guest's email in Seam that is not an
    address) is a permanent error naming no address, and nothing is posted."""
    with pytest.raises(PermanentProviderError) as caught:
        sendgrid_email.send_email(Email(address, "s", "t", "<p>t</p>", "dlv-43"))
    assert caught.value.code == "invalid_message"
    assert sendgrid.sent == []
    assert address not in str(caught.value)


def test_wrong_api_key_is_permanent(sendgrid: SendGridStandin) -> None:
    """A 401 is permanent, and the key is not in the error."""
    key = "SG.wrongkey.abcdef"
    email = SendGridEmail(key, "front-desk@hotel.example", sendgrid.url, timeout=2.0)
    with pytest.raises(PermanentProviderError) as caught:
        email.send_email(MESSAGE)
    assert caught.value.status == 401
    assert key not in str(caught.value)


def test_rate_limit_is_transient_until_reset(
    sendgrid_email: SendGridEmail, sendgrid: SendGridStandin
) -> None:
    """A 429 is transient with retry_after = X-RateLimit-Reset - now."""
    reset = sendgrid.rate_limit_next(reset_in=40)
    with pytest.raises(TransientProviderError) as caught:
        sendgrid_email.send_email(MESSAGE)
    assert caught.value.status == 429
    assert caught.value.retry_after is not None
    assert caught.value.retry_after == pytest.approx(reset - time.time(), abs=2)
    assert sendgrid.sent == []


def test_server_error_is_transient(
    sendgrid_email: SendGridEmail, sendgrid: SendGridStandin
) -> None:
    """A 500 is transient."""
    sendgrid.fail_next(1, 500, {"errors": [{"message": "internal", "field": None}]})
    with pytest.raises(TransientProviderError) as caught:
        sendgrid_email.send_email(MESSAGE)
    assert caught.value.status == 500


def test_slow_answer_is_an_unknown_outcome(sendgrid: SendGridStandin) -> None:
    """No answer within the timeout, once the request went out, may have been sent."""
    sendgrid.latency = 1.0
    email = SendGridEmail(sendgrid.api_key, "front-desk@hotel.example", sendgrid.url, timeout=0.2)
    with pytest.raises(UnknownOutcome) as caught:
        email.send_email(MESSAGE)
    assert caught.value.code == "read_timeout"


def test_connection_refused_is_transient(dead_url: str) -> None:
    """Nobody listening is a transient connection error."""
    email = SendGridEmail("SG.standin", "front-desk@hotel.example", dead_url, timeout=1.0)
    with pytest.raises(TransientProviderError) as caught:
        email.send_email(MESSAGE)
    assert caught.value.code == "connection_error"


def test_sdk_logging_never_shows_content(
    sendgrid_email: SendGridEmail, caplog: pytest.LogCaptureFixture
) -> None:
    """With everything logged at DEBUG, neither the content nor the address reaches the log."""
    caplog.set_level(logging.DEBUG)
    sendgrid_email.send_email(MESSAGE)
    assert "dlv-42" in caplog.text
    assert "4821" not in caplog.text
    assert GUEST not in caplog.text


def test_standin_validates_like_sendgrid(sendgrid: SendGridStandin) -> None:
    """A payload missing its pieces is refused with one SendGrid error per problem."""
    client = SendGridAPIClient(api_key=sendgrid.api_key, host=sendgrid.url)
    payload = {
        "personalizations": [{"to": []}],
        "from": {},
        "content": [
            {"type": "text/html", "value": "<p>x</p>"},
            {"type": "text/plain", "value": "x"},
        ],
    }
    with pytest.raises(BadRequestsError) as caught:
        client.client.mail.send.post(request_body=payload, timeout=2)
    fields = {e["field"] for e in caught.value.to_dict["errors"]}
    assert fields == {"personalizations.0.to", "from.email", "subject", "content.0.type"}
    assert sendgrid.sent == []
