"""Finding a guest by phone number or email address when the ledger keeps neither.

A delivery records its destination masked (`+1********23`), which is what people read, and a
keyed hash of it (HMAC-SHA256 of the normalised address), which is what a search matches: the
console hashes what the operator typed the same way and compares. The key is derived from the
credential fingerprint key (CREDENTIAL_HASH_KEY, else the webhook secret), so a stolen
database alone does not let anyone test a list of numbers against it. Only an exact number or
address is found, never part of one; deliveries planned before this column existed have none.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from app.settings import Settings, search_key_from

_NOT_DIGITS = re.compile(r"[^\d]")
_PHONE_LIKE = re.compile(r"^\+?[\d\s().-]{7,25}$")


def search_key(settings: Settings) -> bytes:
    return search_key_from(settings.fingerprint_key())


def normalise(destination: str) -> str | None:
    """An email address lower-cased; a phone number as + and its digits; None for neither."""
    value = destination.strip()
    if "@" in value:
        return value.lower()
    if _PHONE_LIKE.match(value):
        digits = _NOT_DIGITS.sub("", value)
        return f"+{digits}" if 7 <= len(digits) <= 15 else None
    return None


def destination_hash(key: bytes, destination: str) -> str | None:
    normalised = normalise(destination)
    if normalised is None:
        return None
    return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()
