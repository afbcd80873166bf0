"""The guest's own "resend my key" link: a short signed token naming one delivery, until when.

    PUBLIC_BASE_URL/k/<token>
    token = base64url(version: 1 byte | delivery id: 4 | expires: 4 (Unix seconds) | tag: 12)

28 characters, so an SMS stays within its segments. The tag is HMAC-SHA256, under the
guest-link key (GUEST_LINK_SECRET, else derived from the fingerprint key), of the version, the
id and the expiry together with the delivery's guest (its user identity) and channel, cut to 96
bits: only a token made for that delivery, its guest and its channel verifies, and changing a
byte of it makes another tag. The token carries no PIN, phone number or address; what it allows
is asking for the key to be sent again to the guest's own destination on file, a few times per
stay (app/guest/).

A link lasts until the stay ends (the grant's ends_at), and never more than
GUEST_LINK_MAX_DAYS after the message it is in was written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.context import Policy
from app.ledger.models import MAX_ROW_ID, Delivery
from app.ports import AccessGrant

PATH = "/k/"
VERSION = 1
TAG_BYTES = 12
_HEAD = struct.Struct(">BII")  # version, delivery id, expires
TOKEN_CHARS = len(base64.urlsafe_b64encode(bytes(_HEAD.size + TAG_BYTES)).rstrip(b"="))
_DOMAIN = b"keycourier guest link v1\x00"


@dataclass(frozen=True)
class LinkToken:
    """A token read from a URL: what it claims. Nothing is true of it until `verify`."""

    delivery_id: int
    expires_at: datetime
    head: bytes
    tag: bytes


def sign(key: bytes, delivery_id: int, recipient: str, channel: str, expires_at: datetime) -> str:
    """The token for `delivery_id`'s guest (`recipient`, its user identity) on `channel`."""
    if not 0 < delivery_id <= MAX_ROW_ID:
        raise ValueError("a delivery id is a positive Integer key")
    head = _HEAD.pack(VERSION, delivery_id, int(expires_at.timestamp()))
    tag = _tag(key, head, recipient, channel)
    return base64.urlsafe_b64encode(head + tag).rstrip(b"=").decode("ascii")


def read(token: str) -> LinkToken | None:
    """What a token from a URL claims; None for anything that cannot be one (wrong length or
    alphabet, another version)."""
    if len(token) != TOKEN_CHARS or not token.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    # A token written back from its bytes must be the same text: no padding or stray bits.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        return None
    head, tag = raw[: _HEAD.size], raw[_HEAD.size :]
    version, delivery_id, expires = _HEAD.unpack(head)
    if version != VERSION or not 0 < delivery_id <= MAX_ROW_ID:
        return None
    return LinkToken(delivery_id, datetime.fromtimestamp(expires, UTC), head, tag)


def verify(key: bytes, token: LinkToken, recipient: str, channel: str) -> bool:
    """Whether `token` was made with `key` for this delivery's guest and channel."""
    return hmac.compare_digest(token.tag, _tag(key, token.head, recipient, channel))


def expiry(grant: AccessGrant | None, now: datetime, max_days: float) -> datetime:
    """When a link written now stops working: the stay's end, at most `max_days` away."""
    latest = now + timedelta(days=max_days)
    ends = grant.ends_at if grant is not None else None
    return min(ends, latest) if ends is not None else latest


def link_for(policy: Policy, delivery: Delivery, grant: AccessGrant | None) -> str | None:
    """The link to put in `delivery`'s message, or None when there can be none: no
    PUBLIC_BASE_URL to put it under, no guest, or a stay already over."""
    base = policy.public_base_url
    if base is None or delivery.user_identity_id is None:
        return None
    now = datetime.now(UTC)
    expires_at = expiry(grant, now, policy.guest_link_max_days)
    if expires_at <= now:
        return None
    token = sign(
        policy.guest_link_key(),
        delivery.id,
        delivery.user_identity_id,
        delivery.channel,
        expires_at,
    )
    return f"{base}{PATH}{token}"


def _tag(key: bytes, head: bytes, recipient: str, channel: str) -> bytes:
    message = b"\x00".join([_DOMAIN + head, recipient.encode(), channel.encode()])
    return hmac.new(key, message, hashlib.sha256).digest()[:TAG_BYTES]
