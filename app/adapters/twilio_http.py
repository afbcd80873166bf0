"""Twilio's SDK over http.client, each thread keeping its connection to Twilio open.

The SDK's own client goes through requests: preparing, sending and reading one message cost
about twice the CPU of the same request over http.client (bench/RESULTS.md), and a worker
sends one per SMS and WhatsApp message. `KeptHttpClient` is a `twilio.http.HttpClient`
that sends what requests would send (the SDK's headers, its parameters form-encoded, None
values left out, basic auth), trusts the certificates requests would (its CA bundle, or
REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE), follows no redirect, and keeps one connection per thread
to the host last asked, used again only when safe (app/adapters/kept_http.py).
A proxy that applies to Twilio's URL keeps the SDK's own client (app/adapters/twilio_sms.py).

Its errors are requests' kinds, which the adapters already translate, drawn where the request
stands, since that decides whether Twilio may have acted on it:
- nothing sent (no connection, a refused TLS handshake, a request not written whole):
  requests' ConnectTimeout or ConnectionError, safe to send again;
- the request written whole and no answer in time: requests' ReadTimeout (a write that timed
  out is a ConnectionError: it did not go out whole);
- the request written whole and the answer cut off: app.errors.NoAnswer as it is. Twilio may
  have accepted the message: the adapters treat it as an unknown outcome, looked up before any
  resend.
"""

from __future__ import annotations

import json
import os
from base64 import b64encode
from collections.abc import Callable, Mapping
from functools import lru_cache
from ssl import SSLContext, create_default_context
from urllib.parse import urlencode, urlsplit

import requests
from requests.structures import CaseInsensitiveDict
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from twilio.http import HttpClient
from twilio.http.response import Response

from app.adapters.kept_http import KeptConnections
from app.errors import NoAnswer, NotSent

_JSON_TYPES = ("application/json", "application/scim+json")


@lru_cache(maxsize=8)
def tls_as_requests(verify: bool | str | None) -> SSLContext:
    """A TLS context trusting what requests would: `verify` as requests' environment settings
    give it (True or None: requests' own CA bundle; a path: that file or directory). One per
    `verify` a process: loading a CA bundle is ~25 ms of CPU, and the SMS and WhatsApp clients
    (each Context built again, in the tests) would each load it."""
    if verify is True or verify is None:
        return create_default_context(cafile=DEFAULT_CA_BUNDLE_PATH)
    if isinstance(verify, str) and os.path.isdir(verify):
        return create_default_context(capath=verify)
    if isinstance(verify, str):
        return create_default_context(cafile=verify)
    raise ValueError("certificate checks cannot be turned off for Twilio")


class KeptHttpClient(HttpClient):  # type: ignore[misc]  # the SDK's class is untyped
    """A `twilio.http.HttpClient` over `KeptConnections`; `on_response` is given each
    answer's headers (for Retry-After)."""

    def __init__(
        self,
        timeout: float,
        tls: SSLContext,
        on_response: Callable[[Mapping[str, str]], None],
    ) -> None:
        super().__init__(None, False, timeout)  # no logger: it logs nothing
        self._connections = KeptConnections(tls)
        self._on_response = on_response

    def request(
        self,
        method: str,
        uri: str,
        params: Mapping[str, object] | None = None,
        data: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if timeout is not None and timeout <= 0:
            raise ValueError(timeout)
        timeout = timeout or self.timeout
        url = urlsplit(uri)
        target = url.path or "/"
        if query := _form(params):
            target = f"{target}?{query}"
        sent = dict(headers or {})
        body: bytes | None = None
        if data is not None:
            if sent.get("Content-Type") in _JSON_TYPES:
                body = json.dumps(data).encode()
            else:
                body = _form(data).encode()
                sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if auth is not None:
            sent["Authorization"] = "Basic " + b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        try:
            answer = self._connections.exchange(
                method.upper(), url.scheme, url.hostname or "", url.port, target, body,
                list(sent.items()),
                connect_timeout=timeout, read_timeout=timeout,
            )  # fmt: skip
        except NotSent as exc:
            if exc.timed_out and exc.connecting:
                raise requests.exceptions.ConnectTimeout(str(exc)) from exc
            raise requests.exceptions.ConnectionError(str(exc)) from exc
        except NoAnswer as exc:
            if exc.timed_out:
                raise requests.exceptions.ReadTimeout(str(exc)) from exc
            raise  # the adapters catch it beside requests' errors
        answered = CaseInsensitiveDict(answer.headers)
        self._on_response(answered)
        return Response(
            answer.status, answer.body.decode(answer.charset or "utf-8", "replace"), answered
        )


def _form(values: Mapping[str, object] | None) -> str:
    """`values` form-encoded as requests encodes them: a list's items each under its key, None
    left out."""
    pairs: list[tuple[str, object]] = []
    for key, value in (values or {}).items():
        for each in value if isinstance(value, list | tuple) else (value,):
            if each is not None:
                pairs.append((key, each))
    return urlencode(pairs)
