"""A local stand-in for SendGrid's v3 Mail Send endpoint, for the `sendgrid` SDK.

Create the SDK client with `host=standin.url`. `POST /v3/mail/send` checks the Bearer key,
validates the payload the way SendGrid does (all problems at once, in its `errors` shape),
and answers 202 with an empty body and an `X-Message-Id` header. Like SendGrid's Event
Webhook, it POSTs signed event batches about the mail it accepted, on cue (`post_events`),
signed with its own ECDSA key (`webhook_public_key` is what keycourier verifies with).
"""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from app.standins.http import Answer, RecordedRequest, StandinServer
from app.standins.signing import (
    event_webhook_public_key,
    new_event_webhook_key,
    sendgrid_signed_headers,
)

HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def sendgrid_error(status: int, message: str, field: str | None = None) -> Answer:
    return Answer(status, {"errors": [{"message": message, "field": field, "help": None}]})


def _problem(message: str, field: str | None, anchor: str) -> dict[str, Any]:
    return {"message": message, "field": field, "help": f"{HELP}#{anchor}"}


def validate_mail(payload: Any) -> list[dict[str, Any]]:
    """SendGrid's complaints about a v3 mail/send payload; empty when it would be accepted."""
    if not isinstance(payload, dict):
        return [_problem("Bad Request", None, "-Request-Body-Parameters")]
    problems: list[dict[str, Any]] = []
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        problems.append(
            _problem(
                "The personalizations field is required and must have at least one "
                "personalization.",
                "personalizations",
                "-Personalizations-Errors",
            )
        )
        personalizations = []
    for i, item in enumerate(personalizations):
        recipients = item.get("to") if isinstance(item, dict) else None
        if not isinstance(recipients, list) or not recipients:
            problems.append(
                _problem(
                    "The to array is required for all personalization objects, and must have "
                    "at least one email object with a valid email address.",
                    f"personalizations.{i}.to",
                    "message.personalizations.to",
                )
            )
            continue
        for j, recipient in enumerate(recipients):
            address = recipient.get("email") if isinstance(recipient, dict) else None
            if not isinstance(address, str) or not _EMAIL.match(address):
                problems.append(
                    _problem(
                        "Does not contain a valid address.",
                        f"personalizations.{i}.to.{j}.email",
                        "message.personalizations.to",
                    )
                )
    sender = payload.get("from")
    address = sender.get("email") if isinstance(sender, dict) else None
    if not isinstance(address, str) or not _EMAIL.match(address):
        problems.append(
            _problem(
                "The from object must be provided for every email send. It is an object that "
                "requires the email parameter, but may also contain a name parameter.  e.g. "
                '{"email" : "example@example.com"}  or {"email" : "example@example.com", '
                '"name" : "Example Recipient"}.',
                "from.email",
                "message.from",
            )
        )
    templated = bool(payload.get("template_id"))
    every_has_subject = bool(personalizations) and all(
        isinstance(p, dict) and p.get("subject") for p in personalizations
    )
    if not payload.get("subject") and not templated and not every_has_subject:
        problems.append(
            _problem(
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
                "subject",
                "message.subject",
            )
        )
    problems.extend(_content_problems(payload.get("content"), templated))
    custom_args = payload.get("custom_args") or {}
    if not isinstance(custom_args, dict) or not all(
        isinstance(v, str) for v in custom_args.values()
    ):
        problems.append(
            _problem("Custom args must be strings", "custom_args", "message.custom_args")
        )
    return problems


def _content_problems(content: Any, templated: bool) -> list[dict[str, Any]]:
    if not isinstance(content, list) or not content:
        if templated:
            return []
        return [
            _problem(
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block. We typically suggest both "
                "text/plain and text/html blocks are included, but only one block is required.",
                "content",
                "message.content",
            )
        ]
    problems: list[dict[str, Any]] = []
    types = [block.get("type") if isinstance(block, dict) else None for block in content]
    for i, block in enumerate(content):
        value = block.get("value") if isinstance(block, dict) else None
        if not isinstance(value, str) or not value:
            problems.append(
                _problem(
                    "The content value must be a string at least one character in length.",
                    f"content.{i}.value",
                    "message.content.value",
                )
            )
    ordered = [t for t in types if t in ("text/plain", "text/html")]
    if ordered != sorted(ordered, key=("text/plain", "text/html").index) or (
        ordered and types[: len(ordered)] != ordered
    ):
        problems.append(
            _problem(
                "If present, text/plain and text/html may only be provided in this order "
                "(text/plain, then text/html), and must precede other content types.",
                "content.0.type",
                "message.content.type",
            )
        )
    return problems


class SendGridStandin(StandinServer):
    """Accepts mail for one API key. `sent` holds every accepted payload."""

    name = "sendgrid-standin"

    def __init__(
        self, api_key: str = "SG.standin", *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        self._sent: list[dict[str, Any]] = []
        self.message_ids: list[str] = []
        # What GET /v3/scopes lists: the permissions of the API key.
        self.scopes: list[str] = ["mail.send", "user.profile.read"]
        self._event_key = new_event_webhook_key()
        self.webhook_public_key = event_webhook_public_key(self._event_key)

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Every payload accepted so far, oldest first."""
        with self._lock:
            return list(self._sent)

    def rate_limit_next(self, times: int = 1, *, reset_in: float = 30.0) -> int:
        """Answer the next `times` sends with SendGrid's 429; returns the X-RateLimit-Reset
        epoch second it advertises."""
        reset = int(time.time() + reset_in)
        headers = {
            "X-RateLimit-Limit": "600",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset),
        }
        body = {"errors": [{"field": None, "message": "too many requests"}]}
        self.fail_next(times, 429, body, headers, path="/v3/mail/send")
        return reset

    def authorize(self, request: RecordedRequest) -> Answer | None:
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return sendgrid_error(
            401, "The provided authorization grant is invalid, expired, or revoked"
        )

    def route(self, request: RecordedRequest) -> Answer:
        if request.path.rstrip("/") == "/v3/scopes" and request.method == "GET":
            return Answer(200, {"scopes": list(self.scopes)})
        if request.path.rstrip("/") != "/v3/mail/send":
            return sendgrid_error(404, "Not Found")
        if request.method != "POST":
            return sendgrid_error(405, "Method Not Allowed")
        problems = validate_mail(request.json)
        if problems:
            return Answer(400, {"errors": problems})
        message_id = secrets.token_urlsafe(16)[:22]
        with self._lock:
            self._sent.append(request.json)
            self.message_ids.append(message_id)
        return Answer(202, None, {"X-Message-Id": message_id})

    # -- the Event Webhook ---------------------------------------------------------------

    def event(self, index: int, kind: str, **extra: Any) -> dict[str, Any]:
        """One event about the `index`-th accepted mail, shaped as SendGrid sends it: the
        mail's custom_args at the top level, a fresh sg_event_id."""
        with self._lock:
            payload, message_id = self._sent[index], self.message_ids[index]
        [personalization] = payload["personalizations"]
        event: dict[str, Any] = {
            "email": personalization["to"][0]["email"],
            "timestamp": int(time.time()),
            "event": kind,
            "sg_event_id": uuid.uuid4().hex,
            "sg_message_id": f"{message_id}.filterdrecv-5645d9c87f-abcde-1-0",
            "smtp-id": f"<{message_id}@ismtpd0001p1iad2.sendgrid.net>",
            **(payload.get("custom_args") or {}),
        }
        if kind == "bounce":
            event |= {"type": "bounce", "status": "5.1.1", "reason": "550 5.1.1 unknown user"}
        if kind == "dropped":
            event["reason"] = "Bounced Address"
        return event | extra

    def signed_events(
        self, events: list[dict[str, Any]], *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """A batch's body and headers, signed as SendGrid signs them."""
        body = json.dumps(events).encode()
        return body, self.sign(body, timestamp=timestamp)

    def sign(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """The signature headers SendGrid would send with this raw body."""
        return sendgrid_signed_headers(self._event_key, body, timestamp=timestamp)

    def post_events(self, url: str, events: list[dict[str, Any]], *, timeout: float = 10) -> int:
        """POST a signed batch to the Event Webhook URL; the HTTP status it got."""
        body, headers = self.signed_events(events)
        request = urllib.request.Request(  # noqa: S310 - the URL a test gives
            url, data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
