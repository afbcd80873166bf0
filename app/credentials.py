"""Keyed fingerprints of credentials: how the ledger compares PINs without keeping them."""

from __future__ import annotations

import hashlib
import hmac


def fingerprint(key: bytes, access_method_id: str, credential: str) -> str:
    """HMAC-SHA256 of the credential, bound to its access method.

    A four-digit PIN has only 10,000 values, so an unkeyed hash would be a lookup table away
    from the PIN; the key lives in the environment, not in the database.
    """
    message = f"{access_method_id}\x00{credential}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:40]
