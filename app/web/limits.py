"""The web server's own limits: how big a request's head may be, how slowly a client may send
it, how long an idle connection is kept, and how many connections are held at once.

uvicorn (with httptools) has no limit on a request's head and no timeout while one is read: a
50 MB header was taken in whole (and held the event loop for seconds), and a client sending a
byte now and then held its connection for as long as it liked. `GuardedHttpTools` is uvicorn's
own HTTP protocol with these checks around it, in the order the bytes arrive:

- a connection holds at most WEB_MAX_CONNECTIONS; one more makes room by closing the one that
  has waited longest for a request head (a slow or idle client), or is closed itself when every
  connection is busy with a request: slow clients cannot crowd out a webhook;
- a request head over WEB_MAX_HEADER_BYTES is answered 431 and the connection closed, checked
  as each chunk arrives, so no more than one read past the limit is ever buffered;
- a head must arrive within WEB_READ_TIMEOUT_SECONDS of its first byte (or of the connection),
  and the body within as long again once the head is in, or the client gets 408 and is closed;
- an idle keep-alive connection is closed after WEB_KEEPALIVE_SECONDS (uvicorn's own timer).

uvicorn's `limit_concurrency` is not used: it counts the slow connections too, so under a
slowloris it would answer the webhook 503 while the attacker's connections stayed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import Settings

log = logging.getLogger(__name__)

_REFUSALS = {
    408: b"HTTP/1.1 408 Request Timeout\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
    503: b"HTTP/1.1 503 Service Unavailable\r\n",
}


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head size limit, read timeouts and a connection cap.
    The limits are class attributes, set by `protocol_for`."""

    max_header_bytes = 64 * 1024
    read_timeout = 10.0
    max_connections = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True
        self._head_bytes = 0
        self._waiting_since = time.monotonic()
        self._read_timer: asyncio.TimerHandle | None = None

    # -- the connection ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_read_timer()
        if len(self.connections) > self.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_read_timer()
        super().connection_lost(exc)

    def _make_room(self) -> None:
        """Close the connection that has waited longest for a request head, or this one."""
        waiting = [
            c
            for c in self.connections
            if isinstance(c, GuardedHttpTools) and c is not self and c._reading_head
        ]
        oldest = min(waiting, key=lambda c: c._waiting_since, default=None)
        if oldest is None:
            log.warning("web connection refused: %d connections all busy", len(self.connections))
            self._refuse(503)
            return
        log.warning("web connection closed to make room: it sent no request in time")
        oldest._refuse(408)

    # -- reading a request ------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._reading_head and self._read_timer is None:
            self._waiting_since = time.monotonic()
            self._start_read_timer()
        super().data_received(data)
        if self._reading_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                log.warning("request refused: its head is over %d bytes", self.max_header_bytes)
                self._refuse(431)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        self._start_read_timer()  # now for the body
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._stop_read_timer()
        self._reading_head = True  # the next request on this connection, if any
        self._waiting_since = time.monotonic()
        super().on_message_complete()

    def _start_read_timer(self) -> None:
        self._stop_read_timer()
        self._read_timer = self.loop.call_later(self.read_timeout, self._too_slow)

    def _stop_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _too_slow(self) -> None:
        self._read_timer = None
        log.warning(
            "request refused: its %s did not arrive within %g s",
            "head" if self._reading_head else "body",
            self.read_timeout,
        )
        self._refuse(408)

    def _refuse(self, status: int) -> None:
        """Answer `status` (when no response has begun) and close the connection."""
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            self.transport.write(
                _REFUSALS[status] + b"content-length: 0\r\nconnection: close\r\n\r\n"
            )
        self.transport.close()


def protocol_for(settings: Settings) -> type[GuardedHttpTools]:
    """The HTTP protocol class with this process's limits."""
    return type(
        "KeycourierHttp",
        (GuardedHttpTools,),
        {
            "max_header_bytes": settings.web_max_header_bytes,
            "read_timeout": settings.web_read_timeout_seconds,
            "max_connections": settings.web_max_connections,
        },
    )


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.run's options for the limits above (`keycourier serve`)."""
    return {"http": protocol_for(settings), "timeout_keep_alive": settings.web_keepalive_seconds}
