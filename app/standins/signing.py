"""Signing a webhook the way Seam's Svix does, for the demo and the tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from svix.webhooks import Webhook


def signed_headers(
    secret: str, body: bytes, *, msg_id: str | None = None, timestamp: datetime | None = None
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = timestamp or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, timestamp, body.decode())
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(int(timestamp.timestamp())),
        "svix-signature": signature,
        "content-type": "application/json",
    }
