"""The start-up line of web and worker: channels live or dry run, the console on or off, the
URLs to give Seam and to open, and never a secret."""

from __future__ import annotations

import logging

import pytest

from app.observability.startup import log_summary, summary
from app.settings import load_settings

SECRETS = {
    "SEAM_API_KEY": "seam_live_key_0123456789",
    "SEAM_WEBHOOK_SECRET": "whsec_QUJDREVGR0hJSktMTU5PUA==",
    "TWILIO_ACCOUNT_SID": "AC0123456789abcdef",
    "TWILIO_AUTH_TOKEN": "twilio-auth-token-secret",
    "TWILIO_FROM_NUMBER": "+15005550006",
    "SENDGRID_API_KEY": "SG.sendgrid-secret-key",
    "SENDGRID_FROM_EMAIL": "keys@hotel.example",
    "OPS_USERS": "desk:scrypt$16384$8$1$c2FsdA$aGFzaA",
    "OPS_SESSION_SECRET": "s" * 40,
    "DATABASE_URL": "postgresql://kc:db-password-secret@db.internal:5432/keys",
    "REDIS_URL": "redis://:redis-password-secret@redis.internal:6379/0",
    "PUBLIC_BASE_URL": "https://keys.hotel.example",
}


def test_a_dry_run_machine_says_so_and_where_to_look() -> None:
    """With nothing set, both channels are a dry run, the console is off with what turns it
    on, and the webhook and console URLs are the local ones."""
    line = summary(load_settings({}), "web", "http://localhost:8000")
    assert line.startswith("keycourier web starting; ")
    assert "sms dry run (no Twilio credentials)" in line
    assert "email dry run (no SendGrid credentials)" in line
    assert "console off: set OPS_USERS and OPS_SESSION_SECRET (http://localhost:8000/ops/" in line
    assert "Seam webhook URL http://localhost:8000/webhooks/seam" in line
    assert "broker embedded" in line
    assert "\n" not in line


def test_production_settings_are_summed_up_without_a_secret() -> None:
    """Live channels, the console on at the public address, the ledger and broker by host:
    and no key, token, password or hash anywhere in the line."""
    line = summary(load_settings(SECRETS), "web", "http://localhost:8000")
    assert "sms live (Twilio)" in line
    assert "email live (SendGrid)" in line
    assert "console on at https://keys.hotel.example/ops/" in line
    assert "Seam webhook URL https://keys.hotel.example/webhooks/seam" in line
    assert "ledger postgresql+psycopg://db.internal:5432/keys" in line
    assert "broker redis://redis.internal:6379/0" in line
    for name, value in SECRETS.items():
        if name not in ("PUBLIC_BASE_URL", "TWILIO_FROM_NUMBER", "SENDGRID_FROM_EMAIL"):
            assert value not in line, name
    for part in ("password-secret", "scrypt", "seam_live", "SG.", "twilio-auth"):
        assert part not in line


def test_a_worker_line_has_no_console(caplog: pytest.LogCaptureFixture) -> None:
    """A worker logs its channels, ledger and broker, and nothing about a console it lacks."""
    with caplog.at_level(logging.INFO, logger="app.observability.startup"):
        log_summary(load_settings(SECRETS), "worker")
    (record,) = caplog.records
    assert record.getMessage().startswith("keycourier worker starting; sms live (Twilio)")
    assert "console" not in record.getMessage()
