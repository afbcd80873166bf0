"""A local stand-in for Twilio's Programmable Messaging API (2010-04-01), for the `twilio` SDK.

Point the SDK at it with `client.api.base_url = standin.url`. It accepts form-encoded
`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, checks HTTP Basic auth, honours
Twilio's magic test numbers (+15005550001 invalid, +15005550009 not a mobile, ...), and
lists or fetches what it accepted so that ambiguous sends can be looked up afterwards. Like
Twilio, it POSTs a signed status callback to a message's `StatusCallback` URL, on cue
(`report_status`).

WhatsApp, as Twilio's Content API sends it: to `whatsapp:+E164` from `whatsapp:+E164` (or a
Messaging Service), with `ContentSid` (a content template `add_content` registered; else 21655)
and `ContentVariables` (a JSON object of non-empty strings; else 21656). It renders the body from
the template as Twilio does and keeps what was asked in `whatsapp_sent`. A free-form WhatsApp
(`Body`, no template) is accepted and then fails with 63016, as outside the 24-hour window; a
destination told to fail (`fail_whatsapp`: 63003 not on WhatsApp, 63016, ...) is accepted and
then reported `failed` with that code to its StatusCallback, as Twilio would.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
import re
import threading
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from app.standins.http import Answer, RecordedRequest, StandinServer

API = "/2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "5ea75ea75ea75ea75ea75ea75ea75ea7"
DEFAULT_AUTH_TOKEN = "standin_auth_token"  # noqa: S105 - the stand-in's fixed test credential

_MESSAGES = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages(?:/(?P<sid>[^/]+))?\.json$"
)
_ACCOUNT = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)\.json$")

# Twilio's magic "To" numbers for test credentials: number -> (code, message template).
MAGIC_TO: dict[str, tuple[int, str]] = {
    "+15005550001": (21211, "The 'To' number {to} is not a valid phone number."),
    "+15005550002": (
        21612,
        "The 'To' phone number: {to}, is not currently reachable using the 'From' phone "
        "number via SMS.",
    ),
    "+15005550003": (
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the "
        "'To' number: {to}.",
    ),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number {to} is not a mobile number"),
}


WHATSAPP = "whatsapp:"
_CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
_PLACEHOLDER = re.compile(r"\{\{\s*([0-9A-Za-z_]{1,16})\s*\}\}")


def twilio_error(status: int, code: int, message: str) -> Answer:
    """Twilio's legacy JSON error shape, which the SDK turns into a TwilioRestException."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Answer(status, body)


def rfc2822(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def _parse_date(value: str) -> datetime:
    """Twilio's DateSent filters: `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ`, in GMT."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class TwilioStandin(StandinServer):
    """Accepts messages for one account. `sent` holds every accepted message resource."""

    name = "twilio-standin"

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._sent: list[dict[str, Any]] = []
        self._sent_at: dict[str, datetime] = {}
        self._status_callbacks: dict[str, str] = {}
        # What fetching the account answers: active, suspended or closed.
        self.account_status = "active"
        # WhatsApp: content templates by SID (their body, with {{1}} placeholders), what was
        # sent with them, and destinations told to fail (number -> Twilio's error code).
        self._contents: dict[str, str] = {}
        self._whatsapp: list[dict[str, Any]] = []
        self._whatsapp_failures: dict[str, int] = {}
        # How long after accepting a failing WhatsApp its `failed` callback is posted.
        self.failure_delay = 0.2

    def add_content(self, content_sid: str, body: str) -> None:
        """Register a content template (as made in Twilio's Content Template Builder)."""
        if not _CONTENT_SID.fullmatch(content_sid):
            raise ValueError("a content template SID is HX followed by 32 hex characters")
        with self._lock:
            self._contents[content_sid] = body

    def fail_whatsapp(self, number: str, code: int = 63003) -> None:
        """Messages to this WhatsApp number (E.164) are accepted, then fail with `code`:
        63003 the number is not on WhatsApp, 63016 outside the 24-hour window, ..."""
        with self._lock:
            self._whatsapp_failures[number.removeprefix(WHATSAPP)] = code

    @property
    def whatsapp_sent(self) -> list[dict[str, Any]]:
        """Every WhatsApp message accepted, oldest first: sid, to, from, messaging_service_sid,
        content_sid, content_variables (the object as sent) and the body rendered from it."""
        with self._lock:
            return [dict(m) for m in self._whatsapp]

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Every message accepted so far, oldest first (Twilio's message JSON)."""
        with self._lock:
            return [dict(m) for m in self._sent]

    def authorize(self, request: RecordedRequest) -> Answer | None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        if scheme.lower() == "basic" and decoded == f"{self.account_sid}:{self.auth_token}":
            return None
        return twilio_error(401, 20003, "Authenticate")

    def route(self, request: RecordedRequest) -> Answer:
        account = _ACCOUNT.match(request.path)
        if account is not None and request.method == "GET":
            return self._account(account["account"])
        match = _MESSAGES.match(request.path)
        if match is None or match["account"] != self.account_sid:
            return twilio_error(404, 20404, f"The requested resource {request.path} was not found")
        if match["sid"] is not None:
            if request.method != "GET":
                return twilio_error(405, 20004, "Method not allowed")
            return self._fetch(request.path, match["sid"])
        if request.method == "POST":
            return self._create(request)
        if request.method == "GET":
            return self._list(request)
        return twilio_error(405, 20004, "Method not allowed")

    def _create(self, request: RecordedRequest) -> Answer:
        to = request.param("To")
        sender = request.param("From")
        service = request.param("MessagingServiceSid")
        body = request.param("Body")
        if not to:
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not sender and not service:
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        content = self._content(request, to, sender)
        if isinstance(content, Answer):
            return content
        if content is not None:
            body = content["body"]
        if not body:
            return twilio_error(400, 21602, "Message body is required.")
        if to in MAGIC_TO:
            code, template = MAGIC_TO[to]
            return twilio_error(400, code, template.format(to=to))
        now = datetime.now(UTC)
        sid = "SM" + uuid.uuid4().hex
        uri = f"{API}/Accounts/{self.account_sid}/Messages/{sid}.json"
        message = {
            "sid": sid,
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "to": to,
            "from": sender,
            "messaging_service_sid": service,
            "body": body,
            "status": "queued" if sender else "accepted",
            "direction": "outbound-api",
            "num_segments": str(max(1, math.ceil(len(body) / 160))),
            "num_media": "0",
            "date_created": rfc2822(now),
            "date_updated": rfc2822(now),
            "date_sent": None,
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "uri": uri,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
        }
        callback = request.param("StatusCallback")
        failure = self._whatsapp_failure(to, content)
        with self._lock:
            # What a later fetch or list sees: the message went out at once (or failed).
            self._sent.append({**message, "status": "sent", "date_sent": rfc2822(now)})
            if failure is not None:
                self._sent[-1].update(status="failed", error_code=failure)
            self._sent_at[sid] = now
            if callback:
                self._status_callbacks[sid] = callback
            if to.startswith(WHATSAPP):
                self._whatsapp.append(
                    {"sid": sid, "to": to, "from": sender, "messaging_service_sid": service}
                    | (content or {"content_sid": None, "content_variables": None, "body": body})
                )
        if failure is not None and callback:
            timer = threading.Timer(self.failure_delay, self._report_failure, (sid, failure))
            timer.daemon = True
            timer.start()
        return Answer(201, message)

    # -- WhatsApp ------------------------------------------------------------------------

    def _content(
        self, request: RecordedRequest, to: str, sender: str | None
    ) -> dict[str, Any] | Answer | None:
        """The content template a message names, rendered; an error Answer when it is wrong;
        None for a message without one."""
        content_sid = request.param("ContentSid")
        raw = request.param("ContentVariables")
        if to.startswith(WHATSAPP) and sender and not sender.startswith(WHATSAPP):
            return twilio_error(
                400, 21910, "Invalid From and To pair. From and To should be of the same channel"
            )
        if content_sid is None:
            if raw is not None:
                return twilio_error(400, 21654, "ContentSid Required")
            return None
        with self._lock:
            template = self._contents.get(content_sid)
        if template is None:
            return twilio_error(400, 21655, "The ContentSid is Invalid")
        try:
            variables = json.loads(raw) if raw is not None else {}
        except ValueError:
            variables = None
        if not isinstance(variables, dict) or not all(
            isinstance(key, str) and isinstance(value, str) and value
            for key, value in variables.items()
        ):
            return twilio_error(400, 21656, "The ContentVariables Parameter is invalid")
        body = _PLACEHOLDER.sub(lambda m: variables.get(m.group(1), m.group(0)), template)
        return {"content_sid": content_sid, "content_variables": variables, "body": body}

    def _whatsapp_failure(self, to: str, content: dict[str, Any] | None) -> int | None:
        """The error a WhatsApp message to `to` fails with after it was accepted, if any."""
        if not to.startswith(WHATSAPP):
            return None
        with self._lock:
            told = self._whatsapp_failures.get(to.removeprefix(WHATSAPP))
        if told is not None:
            return told
        return 63016 if content is None else None  # free-form, outside the 24-hour window

    def _report_failure(self, sid: str, code: int) -> None:
        # Nobody listening any more (the test ended): Twilio does not retry either.
        with contextlib.suppress(OSError):
            self.report_status(sid, "failed", code)

    # -- status callbacks ----------------------------------------------------------------

    def status_callback_url(self, sid: str) -> str | None:
        """The StatusCallback the message was sent with, if any."""
        with self._lock:
            return self._status_callbacks.get(sid)

    def status_callback(
        self, sid: str, status: str, error_code: int | None = None
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """The callback Twilio would POST about message `sid`: (url, form, headers), signed
        with the account's auth token over the URL and the form, as Twilio signs it."""
        url = self.status_callback_url(sid)
        if url is None:
            raise LookupError(f"message {sid} was sent without a StatusCallback")
        [message] = [m for m in self.sent if m["sid"] == sid]
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": message["from"] or "",
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": message["to"],
        }
        if message["messaging_service_sid"]:
            form["MessagingServiceSid"] = message["messaging_service_sid"]
        if error_code is not None:
            form["ErrorCode"] = str(error_code)
        signature = RequestValidator(self.auth_token).compute_signature(url, form)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            "User-Agent": "TwilioProxy/1.1",
        }
        return url, form, headers

    def report_status(
        self, sid: str, status: str, error_code: int | None = None, *, timeout: float = 10
    ) -> int:
        """POST the signed status callback to the message's StatusCallback; its HTTP status."""
        url, form, headers = self.status_callback(sid, status, error_code)
        request = urllib.request.Request(  # noqa: S310 - the URL keycourier gave, in tests
            url, data=urlencode(form).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def _account(self, account_sid: str) -> Answer:
        if account_sid != self.account_sid:
            return twilio_error(404, 20404, f"The requested resource {account_sid} was not found")
        created = rfc2822(datetime(2024, 1, 1, tzinfo=UTC))
        account = {
            "sid": self.account_sid,
            "friendly_name": "Stand-in account",
            "status": self.account_status,
            "type": "Full",
            "owner_account_sid": self.account_sid,
            "date_created": created,
            "date_updated": created,
            "uri": f"{API}/Accounts/{self.account_sid}.json",
        }
        return Answer(200, account)

    def _fetch(self, path: str, sid: str) -> Answer:
        for message in self.sent:
            if message["sid"] == sid:
                return Answer(200, message)
        return twilio_error(404, 20404, f"The requested resource {path} was not found")

    def _list(self, request: RecordedRequest) -> Answer:
        with self._lock:
            rows = [(dict(m), self._sent_at[m["sid"]]) for m in self._sent]
        to, sender = request.param("To"), request.param("From")
        after, before = request.param("DateSent>"), request.param("DateSent<")
        rows = [
            (m, at)
            for m, at in rows
            if (not to or m["to"] == to)
            and (not sender or m["from"] == sender)
            and (not after or at >= _parse_date(after))
            and (not before or at <= _parse_date(before))
        ]
        rows.sort(key=lambda row: row[1], reverse=True)
        page_size = int(request.param("PageSize") or 50)
        messages = [m for m, _ in rows[:page_size]]
        uri = f"{API}/Accounts/{self.account_sid}/Messages.json?PageSize={page_size}&Page=0"
        return Answer(
            200,
            {
                "messages": messages,
                "end": max(len(messages) - 1, 0),
                "first_page_uri": uri,
                "next_page_uri": None,
                "previous_page_uri": None,
                "page": 0,
                "page_size": page_size,
                "start": 0,
                "uri": uri,
            },
        )
