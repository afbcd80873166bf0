"""Keep-alive for urllib, which python_http_client (SendGrid's SDK) sends through.

urllib opens a connection for every request and asks the server to close it ("Connection:
close"): against SendGrid, every email paid a TCP and a TLS handshake, a round trip or two and
a few milliseconds of CPU. `KeepAliveHandler` keeps each opener's connection to a host open
between requests, as requests (Twilio's SDK) and httpx (Seam's) do. An opener belongs to one
thread (app/adapters/sendgrid_email.py), so its connections are never shared.

A kept connection is used again only when it is safe to (app/adapters/kept_http.py's `Kept`);
otherwise a new connection is opened, as urllib always did. Requests through a proxy go as
urllib sends them.

What a caller sees is urllib's: the same response object, URLError when the request could not
be sent, and a timeout waiting for the answer raised as is (the request may have been acted on).
"""

from __future__ import annotations

import http.client
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

from app.adapters.http_headers import Connection, TLSConnection
from app.adapters.kept_http import Kept, take


class KeepAliveHandler(urllib.request.HTTPSHandler, urllib.request.HTTPHandler):
    """urllib's HTTP and HTTPS handlers, keeping one connection per host open between requests."""

    def __init__(self, context: ssl.SSLContext) -> None:
        urllib.request.HTTPSHandler.__init__(self, context=context)
        self._tls = context
        # One connection is kept, to the host last asked (SendGrid's API is one host): one to
        # another host is closed, so a thread never gathers connections it will not use again.
        self._kept: tuple[tuple[str, str], Kept] | None = None

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self._open(Connection, req)

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self._open(TLSConnection, req, context=self._tls)

    def _open(
        self, kind: type[http.client.HTTPConnection], req: urllib.request.Request, **extra: Any
    ) -> http.client.HTTPResponse:
        if req.has_proxy() or getattr(req, "_tunnel_host", None):
            return self.do_open(kind, req, **extra)
        if not req.host:
            raise urllib.error.URLError("no host given")
        key = (kind.__name__, req.host)
        held, self._kept = self._kept, None
        kept = take(held, key) or Kept(kind(req.host, timeout=req.timeout, **extra))
        connection = kept.connection
        connection.timeout = req.timeout
        if connection.sock is not None:
            connection.sock.settimeout(req.timeout)
        headers = dict(req.unredirected_hdrs)
        headers.update((k, v) for k, v in req.headers.items() if k not in headers)
        headers = {name.title(): value for name, value in headers.items()}
        try:
            try:
                connection.request(
                    req.get_method(), req.selector, req.data, headers,
                    encode_chunked=req.has_header("Transfer-encoding"),
                )  # fmt: skip
            except OSError as err:
                raise urllib.error.URLError(err) from err
            response = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        kept.response, kept.used_at = response, time.monotonic()
        if not response.will_close:
            self._kept = (key, kept)
        response.url = req.get_full_url()
        response.msg = response.reason  # type: ignore[assignment]  # urllib's convention
        return response
