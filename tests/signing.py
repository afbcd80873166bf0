"""A SendGrid Event Webhook key made for this test session (doctor and settings tests)."""

from __future__ import annotations

from app.standins.signing import event_webhook_public_key, new_event_webhook_key

_KEY = new_event_webhook_key()


def webhook_public_key() -> str:
    return event_webhook_public_key(_KEY)
