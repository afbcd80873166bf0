"""`app.adapters.http_headers`: a response's header lines read without the email package give
the message http.client's own parser gives, for plain fields and for every odd line that sends
the block to that parser; a whole exchange reads the same status, headers and body."""

from __future__ import annotations

import http.client
from collections.abc import Callable

import pytest

from app.adapters.http_headers import Connection, parse_header_lines
from tests.adapters.conftest import RawServer

BLOCKS = {
    "api answer": [
        b"Content-Type: application/json; charset=utf-8\r\n",
        b"Content-Length: 12\r\n",
        b"seam-request-id: req_1\r\n",
        b"\r\n",
    ],
    "repeated names, odd case": [
        b"Set-Cookie: a=1\r\n",
        b"set-cookie: b=2\r\n",
        b"X-Empty:\r\n",
        b"X-Tab:\tvalue with trailing blanks  \r\n",
        b"\r\n",
    ],
    "bare LF endings": [b"Content-Type: text/plain\n", b"X-A: b\n", b"\n"],
    "latin-1 bytes in a value": [b"X-Name: caf\xe9\r\n", b"\r\n"],
    "colon in the value": [b"Location: https://x.example:8443/a?b=c:d\r\n", b"\r\n"],
    "end of stream, no blank line": [b"X-A: b\r\n", b""],
    # The lines below are not plain fields: the email package reads them.
    "folded continuation": [b"X-Long: first\r\n", b"  second\r\n", b"X-After: c\r\n", b"\r\n"],
    "name with a space": [b"Bad Name: value\r\n", b"X-After: c\r\n", b"\r\n"],
    "no colon": [b"not a header\r\n", b"X-After: c\r\n", b"\r\n"],
    "empty name": [b": value\r\n", b"\r\n"],
    "unix from": [b"From someone\r\n", b"X-After: c\r\n", b"\r\n"],
    "bare CR inside a value": [b"X-A: one\rX-B: two\r\n", b"\r\n"],
}


@pytest.mark.parametrize("lines", BLOCKS.values(), ids=BLOCKS.keys())
def test_the_message_is_http_clients_own(lines: list[bytes]) -> None:
    ours = parse_header_lines(lines)
    standard = http.client._parse_header_lines(lines)  # type: ignore[attr-defined]
    assert type(ours) is http.client.HTTPMessage
    assert _state(ours) == _state(standard)
    assert ours.items() == standard.items()
    assert ours.get_content_charset() == standard.get_content_charset()


def _state(message: http.client.HTTPMessage) -> dict[str, object]:
    """Every attribute of `message`; its defects by kind (a defect equals only itself)."""
    return {**vars(message), "defects": [type(defect) for defect in message.defects]}


def test_an_exchange_reads_as_http_client_reads_it(
    raw_server: Callable[..., RawServer],
) -> None:
    """A chunked answer with its fields: status, reason, fields, body and keep-alive as the
    standard connection reads them."""
    answer = (
        b"HTTP/1.1 201 Created\r\n"
        b"Content-Type: application/json; charset=ISO-8859-1\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"X-Twilio-Request: RQ1\r\n"
        b"\r\n"
        b'5\r\n{"a":\r\n3\r\n 1}\r\n0\r\n\r\n'
    )
    read = []
    for kind in (Connection, http.client.HTTPConnection):
        server = raw_server(lambda _: answer)
        connection = kind("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=2)
        connection.request("POST", "/x", b"{}", {"Content-Type": "application/json"})
        response = connection.getresponse()
        read.append(
            (
                type(response).__name__,
                response.status,
                response.reason,
                response.getheaders(),
                response.read(),
                response.chunked,
                response.will_close,
                response.headers.get_content_charset(),
            )
        )
        connection.close()
    ours, standard = read
    assert ours[0] == "Response"
    assert ours[1:] == standard[1:]
    assert ours[4] == b'{"a": 1}'
