"""SendGrid's SDK sends through urllib; its connections are kept open between emails, and a kept
connection is used again only when that is safe."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from app.adapters import kept_http
from app.adapters.sendgrid_email import SendGridEmail
from app.standins.sendgrid import SendGridStandin
from tests.adapters.conftest import RawServer
from tests.adapters.test_sendgrid_email import MESSAGE


def test_emails_from_one_thread_share_one_connection(
    sendgrid_email: SendGridEmail, sendgrid: SendGridStandin
) -> None:
    """Ten emails, one connection: no TCP (and, against SendGrid, TLS) handshake per email."""
    for _ in range(10):
        sendgrid_email.send_email(MESSAGE)

    assert len(sendgrid.sent) == 10
    assert sendgrid.connections == 1


def test_a_thread_keeps_one_connection_the_one_to_the_host_last_asked(
    sendgrid_email: SendGridEmail, sendgrid: SendGridStandin
) -> None:
    """Sending to another host closes the connection kept to the first (a thread never gathers
    connections it will not use again: SendGrid's API is one host); coming back opens one."""
    with SendGridStandin() as other:
        elsewhere = SendGridEmail(other.api_key, "front-desk@hotel.example", other.url)
        sendgrid_email.send_email(MESSAGE)
        elsewhere.send_email(MESSAGE)
        elsewhere.send_email(MESSAGE)
        sendgrid_email.send_email(MESSAGE)

        assert (len(sendgrid.sent), len(other.sent)) == (2, 2)
        assert (sendgrid.connections, other.connections) == (2, 1)


def test_a_connection_idle_too_long_is_not_used_again(
    sendgrid_email: SendGridEmail, sendgrid: SendGridStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server may be closing a connection that sat idle: past MAX_IDLE_SECONDS a new one is
    opened rather than a request written into one that may be going away."""
    monkeypatch.setattr(kept_http, "MAX_IDLE_SECONDS", 0.0)
    for _ in range(3):
        sendgrid_email.send_email(MESSAGE)

    assert len(sendgrid.sent) == 3
    assert sendgrid.connections == 3


def test_a_connection_the_server_closed_is_not_used_again(
    raw_server: Callable[..., RawServer],
) -> None:
    """Each email after the server hung up goes out on a new connection, and arrives."""
    accepted = b"HTTP/1.1 202 Accepted\r\nX-Message-Id: m1\r\nContent-Length: 0\r\n\r\n"
    server = raw_server(lambda _: accepted)
    email = SendGridEmail("SG.standin", "front-desk@hotel.example", server.url, timeout=2.0)

    for _ in range(3):
        sent = email.send_email(MESSAGE)
        assert sent.provider_message_id == "m1"
        assert server.served.acquire(timeout=5)

    assert len(server.requests) == 3
