"""Fixtures: adapters pointed at the stand-ins (tests/conftest.py) through the real SDKs."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from app.adapters.seam_api import SeamApiReader
from app.adapters.sendgrid_email import SendGridEmail
from app.adapters.twilio_sms import TwilioSms
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin

FROM_NUMBER = "+15555550100"
FROM_EMAIL = "front-desk@hotel.example"


@pytest.fixture
def seam_reader(seam: SeamStandin) -> Iterator[SeamApiReader]:
    with SeamApiReader(seam.api_key, seam.url, timeout=2.0) as reader:
        yield reader


@pytest.fixture
def twilio_sms(twilio: TwilioStandin) -> TwilioSms:
    return TwilioSms(
        twilio.account_sid,
        twilio.auth_token,
        from_number=FROM_NUMBER,
        base_url=twilio.url,
        timeout=2.0,
    )


@pytest.fixture
def sendgrid_email(sendgrid: SendGridStandin) -> SendGridEmail:
    return SendGridEmail(sendgrid.api_key, FROM_EMAIL, sendgrid.url, timeout=2.0)


@pytest.fixture
def dead_url() -> str:
    """The URL of a port that was just listening and no longer is: connections are refused."""
    standin = SeamStandin().start()
    url = standin.url
    standin.stop()
    return url


Answer = Callable[[bytes], bytes | None]


@dataclass
class RawServer:
    """A server on a socket: `answer` decides, per request read whole, what is written back
    (None: hang up without a word); after each answer it hangs up, as a server closing an
    idle keep-alive connection does."""

    answer: Answer
    tls: ssl.SSLContext | None = None
    requests: list[bytes] = field(default_factory=list)
    served: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                with self.tls.wrap_socket(client, server_side=True) if self.tls else client as s:
                    self._one(s)
            except (OSError, ssl.SSLError):
                pass  # a client that refused our certificate
            self.served.release()

    def _one(self, client: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += client.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            body += client.recv(65536)
        self.requests.append(head + b"\r\n\r\n" + body)
        answer = self.answer(body)
        if answer is not None:
            client.sendall(answer)


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def make(answer: Answer, tls: ssl.SSLContext | None = None) -> RawServer:
        servers.append(RawServer(answer, tls))
        return servers[-1]

    yield make
    for server in servers:
        server.listener.close()
