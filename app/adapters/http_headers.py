"""http.client's responses with their header lines read without the email package.

`http.client.HTTPResponse.begin` hands every response's header lines to `email.parser`, a
general MIME parser: profiled in a worker's task (bench/RESULTS.md), reading the headers of its
four answers (Seam twice, Twilio, SendGrid) was ~6 % of the task's CPU. `Response` reads them
itself when every line is a plain `Name: value` field, the case of every API answer, into the
same `http.client.HTTPMessage` with the same items, payload and defects (`vars()` of the two are
equal: tests/adapters/test_http_headers.py). Any other line (a folded continuation, a name with
a space, no colon, a bare CR) sends the whole block to http.client's own parser as before.

`Response.begin` is http.client's own code, run with this module's `parse_headers` in place of
http.client's: status lines, 100 Continue, chunking, lengths and keep-alive stay the
standard library's.
"""

from __future__ import annotations

import http.client
import re
import types
from typing import Any, BinaryIO

# A field line as email's compat32 parser takes it whole: a name of printable ASCII without
# the colon, the colon, blanks, then a value without CR or LF, then the line's end.
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+):[ \t]*([^\r\n]*)\r?\n\Z")
_END = (b"\r\n", b"\n", b"")


def parse_header_lines(lines: list[bytes]) -> http.client.HTTPMessage:
    """The header block `lines` (as http.client reads them, ending with the blank line) as
    http.client's `parse_headers` returns it."""
    message = http.client.HTTPMessage()
    for line in lines:
        if line in _END:
            break
        field = _FIELD.match(line)
        if field is None:
            return _email_parse(lines)
        message.set_raw(field[1].decode("iso-8859-1"), field[2].decode("iso-8859-1"))
    message.set_payload("")  # what email's parser leaves after a header block with no body
    return message


def _email_parse(lines: list[bytes]) -> http.client.HTTPMessage:
    parsed: http.client.HTTPMessage = http.client._parse_header_lines(lines)  # type: ignore[attr-defined]
    return parsed


def _parse_headers(fp: BinaryIO) -> http.client.HTTPMessage:
    # _read_headers keeps http.client's limits: the line length and the number of lines.
    return parse_header_lines(http.client._read_headers(fp))  # type: ignore[attr-defined]


def _begin() -> Any:
    standard = http.client.HTTPResponse.begin
    names = {**vars(http.client), "parse_headers": _parse_headers}
    return types.FunctionType(standard.__code__, names, standard.__name__)


class Response(http.client.HTTPResponse):
    begin = _begin()


class Connection(http.client.HTTPConnection):
    response_class = Response


class TLSConnection(http.client.HTTPSConnection):
    response_class = Response
