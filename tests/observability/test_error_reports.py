"""Optional Sentry reporting: off without SENTRY_DSN, and scrubbed before anything is sent.

Sentry's own client runs in full; only its transport is one of ours that keeps the envelopes
instead of sending them, so nothing leaves the machine.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from app.observability.error_reports import init_error_reports, scrub_event
from app.settings import load_settings
from tests.observability.test_log_paths import HIDDEN, SENSITIVE, TWILIO_TOKEN


class KeptEnvelopes(Transport):
    """A transport that keeps what Sentry would send."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)


@pytest.fixture
def kept() -> Iterator[KeptEnvelopes]:
    transport = KeptEnvelopes()
    settings = load_settings(
        {"SENTRY_DSN": "https://public@sentry.invalid/1", "TWILIO_AUTH_TOKEN": TWILIO_TOKEN}
    )
    assert init_error_reports(settings, transport=transport)
    yield transport
    sentry_sdk.get_client().close()
    sentry_sdk.init()


def test_without_dsn_nothing_starts() -> None:
    """No SENTRY_DSN, no Sentry client."""
    assert not init_error_reports(load_settings({}))


def test_reported_errors_hold_nothing_personal(kept: KeptEnvelopes) -> None:
    """An exception and an error log line that hold a PIN, an Instant Key URL, secrets, tokens,
    a phone number and an email reach Sentry with all of it removed or masked."""
    try:
        raise RuntimeError(SENSITIVE)
    except RuntimeError:
        sentry_sdk.capture_exception()
    sentry_sdk.add_breadcrumb(message=SENSITIVE, data={"code": "739164"})
    logging.getLogger("app.delivery.send").error("send failed: %s", SENSITIVE)
    sentry_sdk.flush()

    items = [item for envelope in kept.envelopes for item in envelope.items]
    events = [item.payload.json for item in items if item.payload.json]
    assert len(events) >= 2
    sent = json.dumps(events)
    assert "RuntimeError" in sent
    assert '"vars"' not in sent  # local variables (a composed message, say) stay here
    for hidden in HIDDEN:
        assert hidden not in sent
    assert "+1********23" in sent


def test_scrub_drops_request_data_user_and_frame_variables() -> None:
    """Request bodies, headers, cookies, the user and local variables never leave."""
    event = {
        "request": {"url": "https://keys.example.com/webhooks/seam", "data": {"code": "1"},
                    "headers": {"svix-signature": "v1,x"}, "cookies": "a=b"},
        "user": {"ip_address": "203.0.113.9"},
        "exception": {"values": [{"stacktrace": {"frames": [{"vars": {"pin": "4821"}}]}}]},
    }  # fmt: skip
    scrubbed = scrub_event(event)
    assert scrubbed["request"] == {"url": "https://keys.example.com/webhooks/seam"}
    assert "user" not in scrubbed
    assert scrubbed["exception"]["values"][0]["stacktrace"]["frames"] == [{}]
