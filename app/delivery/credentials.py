"""Keyed fingerprints of credentials: how the ledger compares PINs without keeping them.

A delivery's `credential_fingerprint` is the credential's fingerprint, or, for a resend the
front desk asked for (app/delivery/resend.py), that fingerprint marked with the request:
`<fingerprint>~resend-<request id>`. The mark gives the resend its own row under the
deliveries' unique key; everything that asks "is this the same credential?" compares
`credential_part` (in SQL: the first FINGERPRINT_LENGTH characters), so a resend counts as
the credential it carries. The format's two constants belong to the ledger, which stores and
queries it (app/ledger/models.py).
"""

from __future__ import annotations

import hashlib
import hmac

from app.ledger.models import FINGERPRINT_LENGTH, RESEND_MARK


def fingerprint(key: bytes, access_method_id: str, credential: str) -> str:
    """HMAC-SHA256 of the credential, bound to its access method.

    A four-digit PIN has only 10,000 values, so an unkeyed hash would be a lookup table away
    from the PIN; the key lives in the environment, not in the database.
    """
    message = f"{access_method_id}\x00{credential}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:FINGERPRINT_LENGTH]


def resend_fingerprint(credential_fingerprint: str, request_id: str) -> str:
    """The fingerprint of a resend: the credential's, marked with the resend's request id."""
    return f"{credential_part(credential_fingerprint)}{RESEND_MARK}{request_id}"


def credential_part(credential_fingerprint: str) -> str:
    """The credential's own fingerprint, without a resend's mark."""
    return credential_fingerprint.partition(RESEND_MARK)[0]


def is_resend(credential_fingerprint: str) -> bool:
    """Whether the delivery with this fingerprint is a resend the front desk asked for."""
    return RESEND_MARK in credential_fingerprint
