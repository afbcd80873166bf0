"""HTTP over http.client with each thread keeping its connection open, for the SDKs' hot calls.

The Twilio SDK sends through requests and Seam's through httpx (httpcore, h11), and a worker
makes three such calls per guest message. Measured (bench/RESULTS.md): a Twilio message over
requests cost about twice its CPU over http.client; under httpx, its transport was a tenth of
the task body, and Seam's two reads cost ~13 % less over this one. `KeptConnections`
makes one exchange at a time per thread over one connection kept to the host last asked; the
SDKs keep building the requests and reading the answers (app/adapters/twilio_http.py for
Twilio, `KeptTransport` here for httpx, so Seam's). A URL the environment sends through a
proxy (`proxied`) keeps its SDK's own client.

A kept connection is used again only when it is safe to (`Kept.reusable`): it went unused for
less than `MAX_IDLE_SECONDS` (servers close idle connections after a while, and a request
written into one they are closing would be lost in doubt), nothing is waiting to be read on it
(a server that closed it shows as readable), and its last answer was read to the end.
Otherwise a new connection is opened.

A failure says where the exchange stood, since that decides whether the other side may have
acted on it: `NotSent` (no connection, a refused TLS handshake, a request not written whole:
safe to send again) or `NoAnswer` (the request went out whole; no answer in time, or one cut
off: it may have been acted on).
"""

from __future__ import annotations

import http.client
import select
import threading
import time
import weakref
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from ssl import SSLContext

import httpx
from requests.utils import get_environ_proxies, select_proxy

from app.adapters.http_headers import Connection, TLSConnection
from app.errors import NoAnswer, NotSent

# Below the idle timeouts of the APIs and load balancers in front of them (60 s and more).
MAX_IDLE_SECONDS = 20.0


class Kept:
    """A connection kept open between requests, and whether it is safe to use again."""

    __slots__ = ("connection", "response", "used_at")

    def __init__(self, connection: http.client.HTTPConnection) -> None:
        self.connection = connection
        self.response: http.client.HTTPResponse | None = None
        self.used_at = 0.0

    def reusable(self, now: float) -> bool:
        sock = self.connection.sock
        if sock is None or now - self.used_at >= MAX_IDLE_SECONDS:
            return False
        if self.response is not None and not self.response.isclosed():
            return False  # its answer was not read to the end
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable  # closed by the server (or stray bytes): not ours to use


def take(held: tuple[Hashable, Kept] | None, key: Hashable) -> Kept | None:
    """The held connection, if it is for `key` and safe to use again (`Kept.reusable`);
    otherwise None, and the held one is closed."""
    if held is None:
        return None
    held_for, kept = held
    if held_for == key and kept.reusable(time.monotonic()):
        return kept
    kept.connection.close()
    return None


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    body: bytes
    message: http.client.HTTPMessage  # the headers as http.client read them

    @property
    def headers(self) -> list[tuple[str, str]]:
        """The header fields in the order they came (as HTTPResponse.getheaders gives them)."""
        return self.message.items()

    @property
    def charset(self) -> str | None:
        """Content-Type's charset, read when asked (httpx reads its own)."""
        return self.message.get_content_charset()


class KeptConnections:
    """One exchange at a time per thread, over the connection the thread keeps to the host it
    last asked (one to another host is closed: a thread never gathers connections it will not
    use again). `tls` checks the certificates of https URLs."""

    def __init__(self, tls: SSLContext) -> None:
        self._tls = tls
        self._local = threading.local()
        # Every thread's, for `close`.
        self._opened: weakref.WeakSet[http.client.HTTPConnection] = weakref.WeakSet()

    def close(self) -> None:
        """Close every thread's connection (the client is done with: at shutdown)."""
        for connection in list(self._opened):
            connection.close()

    def exchange(
        self,
        method: str,
        scheme: str,
        host: str,
        port: int | None,
        target: str,
        body: bytes | None,
        headers: Sequence[tuple[str, str]],
        *,
        connect_timeout: float | None,
        read_timeout: float | None,
    ) -> Answer:
        kept = self._connection(scheme, host, port, connect_timeout)
        connection = kept.connection
        if connection.sock is not None:
            connection.sock.settimeout(read_timeout)
        try:
            connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            if body is not None and not _named("content-length", headers):
                connection.putheader("Content-Length", str(len(body)))
            if not _named("host", headers):
                connection.putheader("Host", _host_header(scheme, host, port))
            connection.endheaders(body)
        except OSError as exc:  # not all of it went out
            raise _not_sent(connection, "sending", exc) from exc
        try:
            answer = connection.getresponse()
            payload = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise NoAnswer(
                f"no whole answer: {exc!r}", timed_out=isinstance(exc, TimeoutError)
            ) from exc
        kept.response, kept.used_at = answer, time.monotonic()
        if answer.will_close:
            connection.close()
        return Answer(
            answer.status,
            answer.reason,
            payload,
            answer.headers,
        )

    def _connection(self, scheme: str, host: str, port: int | None, timeout: float | None) -> Kept:
        key = (scheme, host, port)
        found = take(getattr(self._local, "kept", None), key)
        self._local.kept = None
        if found is not None:
            self._local.kept = (key, found)
            return found
        connection = (
            TLSConnection(host, port, timeout=timeout, context=self._tls)
            if scheme == "https"
            else Connection(host, port, timeout=timeout)
        )
        try:
            connection.connect()
        except OSError as exc:  # refused, unreachable, a name not found, a TLS handshake refused
            raise _not_sent(connection, "connecting", exc) from exc
        kept = Kept(connection)
        self._local.kept = (key, kept)
        self._opened.add(connection)
        return kept


def _not_sent(connection: http.client.HTTPConnection, doing: str, exc: OSError) -> NotSent:
    """The connection closed, and what `doing` ("connecting", "sending") met, as NotSent."""
    connection.close()
    return NotSent(
        f"{doing} failed: {exc!r}",
        timed_out=isinstance(exc, TimeoutError),
        connecting=doing == "connecting",
    )


def _named(name: str, headers: Sequence[tuple[str, str]]) -> bool:
    return any(each.lower() == name for each, _ in headers)


def _host_header(scheme: str, host: str, port: int | None) -> str:
    if port is None or port == (443 if scheme == "https" else 80):
        return host
    return f"{host}:{port}"


def proxied(url: str) -> bool:
    """Whether the environment's proxy variables (HTTPS_PROXY, ALL_PROXY, NO_PROXY...) route
    `url` through a proxy, as requests reads them. Such a URL keeps its SDK's own client,
    which goes through the proxy: these connections go straight to the host."""
    return select_proxy(url, get_environ_proxies(url)) is not None


class KeptTransport(httpx.BaseTransport):
    """An httpx transport over `KeptConnections`, raising httpx's own errors as its default
    transport does: ConnectError/ConnectTimeout and WriteError/WriteTimeout when nothing went
    out, ReadTimeout when no answer came in time, RemoteProtocolError when it was cut off."""

    def __init__(self, tls: SSLContext) -> None:
        self._connections = KeptConnections(tls)

    def close(self) -> None:
        self._connections.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        headers = [
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw
        ]
        content = request.read()
        try:
            answer = self._connections.exchange(
                request.method,
                url.scheme,
                url.host,
                url.port,
                url.raw_path.decode("ascii"),
                content if content or _named("content-length", headers) else None,
                headers,
                connect_timeout=timeouts.get("connect"),
                read_timeout=timeouts.get("read"),
            )
        except NotSent as exc:
            kind: type[httpx.TransportError] = (
                (httpx.ConnectTimeout if exc.timed_out else httpx.ConnectError)
                if exc.connecting
                else (httpx.WriteTimeout if exc.timed_out else httpx.WriteError)
            )
            raise kind(str(exc), request=request) from exc
        except NoAnswer as exc:
            lost = httpx.ReadTimeout if exc.timed_out else httpx.RemoteProtocolError
            raise lost(str(exc), request=request) from exc
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=httpx.ByteStream(answer.body),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": answer.reason.encode()},
            request=request,
        )
