"""SendGrid's SDK sends through urllib; its connections are kept open between emails, and a kept
connection is used again only when that is safe."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from app.adapters import kept_http
from app.adapters.sendgrid_email import SendGridEmail
from app.standins.sendgrid import SendGridStandin
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


@pytest.fixture
def closing_server() -> Iterator[tuple[str, list[bytes], threading.Semaphore]]:
    """A server that answers each request 202 (no "Connection: close") and then hangs up, as a
    server closing an idle keep-alive connection does."""
    listener = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []
    hung_up = threading.Semaphore(0)

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with client:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += client.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(body) < length:
                    body += client.recv(65536)
                requests.append(body)
                client.sendall(
                    b"HTTP/1.1 202 Accepted\r\nX-Message-Id: m1\r\nContent-Length: 0\r\n\r\n"
                )
            hung_up.release()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", requests, hung_up
    listener.close()


def test_a_connection_the_server_closed_is_not_used_again(
    closing_server: tuple[str, list[bytes], threading.Semaphore],
) -> None:
    """Each email after the server hung up goes out on a new connection, and arrives."""
    url, requests, hung_up = closing_server
    email = SendGridEmail("SG.standin", "front-desk@hotel.example", url, timeout=2.0)

    for _ in range(3):
        sent = email.send_email(MESSAGE)
        assert sent.provider_message_id == "m1"
        assert hung_up.acquire(timeout=5)

    assert len(requests) == 3
