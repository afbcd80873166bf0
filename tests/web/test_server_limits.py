"""The web server's limits, probed as an attacker would against a real `keycourier serve`: a
huge request head, and more slow connections than the server holds."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.standins.seam import SeamStandin
from tests.conftest import provider_env
from tests.processes import post_sample, running_web

MAX_CONNECTIONS = 50
READ_TIMEOUT = 3
SLOW_CLIENTS = 120
PARTIAL_HEAD = b"POST /webhooks/seam HTTP/1.1\r\nHost: keys.example\r\nX-Slow: "


@pytest.fixture
def web(seam: SeamStandin, redis_url: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A real web process with small limits: its base URL and port."""
    env = {
        **provider_env(seam, None, None),
        "DATABASE_URL": f"sqlite:///{tmp_path}/ledger.sqlite3",
        "REDIS_URL": redis_url,
        "WEB_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "WEB_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
    }
    with running_web(env, tmp_path) as (base, _):
        port = urlsplit(base).port
        assert port is not None
        yield base, port


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def answer_of(sock: socket.socket, timeout: float) -> bytes | None:
    """What the server sent before closing the connection, or None if still open."""
    received = b""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], left)
        if not readable:
            return None
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return received
        if not chunk:
            return received
        received += chunk
    return None


class Webhooks(threading.Thread):
    """Posts signed webhooks one after another, noting each answer's status and time."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.results: list[tuple[int, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        number = 0
        while not self.done.is_set():
            number += 1
            started = time.monotonic()
            answer = post_sample(
                self.base,
                "access_method.issued.code",
                f"msg_limits_{number}",
                event_id=f"e{number}",
            )
            self.results.append((answer.status_code, time.monotonic() - started))
            time.sleep(0.05)


def test_a_50_mb_header_is_refused_quickly_without_stalling_a_webhook(
    web: tuple[str, int],
) -> None:
    """A request head of 50 MB is answered 431 after little more than the limit was read, and
    webhooks posted meanwhile keep answering 200 within half a second."""
    base, port = web
    webhooks = Webhooks(base)
    webhooks.start()
    time.sleep(0.3)
    sock = connect(port)
    chunk = b"a" * 65536
    sent = 0
    started = time.monotonic()
    sock.sendall(PARTIAL_HEAD)
    try:
        while sent < 50 * 1024 * 1024:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass  # the server closed the connection: refused
    answer = answer_of(sock, 5)
    refused_after = time.monotonic() - started
    sock.close()
    time.sleep(0.5)
    webhooks.done.set()
    webhooks.join(10)
    assert answer is not None, "the connection was left open"
    assert answer.startswith(b"HTTP/1.1 431"), answer[:80]
    assert sent < 10 * 1024 * 1024, f"{sent} bytes were taken before refusing"
    assert refused_after < 2, f"refused after {refused_after:.1f} s"
    assert webhooks.results
    assert {status for status, _ in webhooks.results} == {200}
    slowest = max(seconds for _, seconds in webhooks.results)
    assert slowest < 0.5, f"a webhook waited {slowest:.2f} s"


def test_slow_connections_beyond_the_limit_are_closed_and_a_webhook_gets_200(
    web: tuple[str, int],
) -> None:
    """120 clients sending a request head a byte at a time: those past WEB_MAX_CONNECTIONS are
    closed at once, a webhook posted among them gets its 200, and the rest are answered 408 and
    closed once WEB_READ_TIMEOUT_SECONDS have passed."""
    base, port = web
    slow = []
    for _ in range(SLOW_CLIENTS):
        sock = connect(port)
        sock.sendall(PARTIAL_HEAD)
        slow.append(sock)
    opened = time.monotonic()
    answer = post_sample(base, "access_method.issued.code", "msg_among_slow_clients")
    assert answer.status_code == 200
    closed_at_once = [sock for sock in slow if answer_of(sock, 0.05) is not None]
    assert len(closed_at_once) >= SLOW_CLIENTS - MAX_CONNECTIONS
    for sock in slow:
        if sock not in closed_at_once:
            sock.sendall(b"x")  # a byte now and then does not keep it open
    left = [sock for sock in slow if sock not in closed_at_once]
    answers = [answer_of(sock, READ_TIMEOUT + 3) for sock in left]
    held_for = time.monotonic() - opened
    assert all(a is not None for a in answers), "a slow connection was held past the timeout"
    assert all(a == b"" or a.startswith(b"HTTP/1.1 408") for a in answers if a is not None)
    assert held_for < READ_TIMEOUT + 3
    for sock in slow:
        sock.close()
    assert (
        post_sample(base, "access_method.issued.code", "msg_after_slow_clients").status_code == 200
    )
