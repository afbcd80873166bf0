"""Signing webhooks the way Seam's Svix and SendGrid's Event Webhook do, for the demo and tests.

(Twilio's status callbacks are signed by the Twilio stand-in itself, with its auth token.)"""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from svix.webhooks import Webhook

SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


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


def new_event_webhook_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key, like the one SendGrid signs an account's events with."""
    return ec.generate_private_key(ec.SECP256R1())


def event_webhook_public_key(key: ec.EllipticCurvePrivateKey) -> str:
    """The verification key as SendGrid shows it: base64 of the DER public key (MFkw...)."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sendgrid_signed_headers(
    key: ec.EllipticCurvePrivateKey, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """SendGrid's signature headers: ECDSA (SHA-256) over the timestamp then the raw body."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        SENDGRID_SIGNATURE: base64.b64encode(signature).decode(),
        SENDGRID_TIMESTAMP: stamp,
        "content-type": "application/json",
    }
