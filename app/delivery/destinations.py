"""Finding a guest by phone number or email address when the ledger keeps neither.

A delivery records its destination masked (`+1********23`), which is what people read, and a
keyed hash of it (HMAC-SHA256 of the normalised address: an email lower-cased, a phone number
as E.164, app/delivery/phones.py), which is what a search matches: the console hashes what the
operator typed the same way and compares. A national number typed in a search ("06 12 34 56
78") is read in each hotel's country (properties.toml) and matches in any of them. The key is
derived from the credential fingerprint key (CREDENTIAL_HASH_KEY, else the webhook secret), so
a stolen database alone does not let anyone test a list of numbers against it. Only an exact
number or address is found, never part of one; deliveries planned before this column existed
have none.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

from app.delivery.phones import parse_phone
from app.settings import Settings, search_key_from

_PHONE_LIKE = re.compile(r"^\+?[\d\s().-]{7,25}$")


def search_key(settings: Settings) -> bytes:
    return search_key_from(settings.fingerprint_key())


def normalise(destination: str, country: str | None = None) -> str | None:
    """An email address lower-cased; a phone number as E.164 (a national one read in
    `country`); None for neither."""
    value = destination.strip()
    if "@" in value:
        return value.lower()
    if _PHONE_LIKE.match(value):
        return parse_phone(value, country).e164
    return None


def destination_hash(key: bytes, destination: str, country: str | None = None) -> str | None:
    normalised = normalise(destination, country)
    if normalised is None:
        return None
    return _digest(key, normalised)


def search_hashes(key: bytes, text: str, countries: Iterable[str]) -> tuple[str, ...]:
    """The hashes a search for `text` matches: as typed (with its country code, or an email),
    and as a national number of each of `countries`."""
    found = {normalise(text), *(normalise(text, country) for country in sorted(countries))}
    return tuple(sorted(_digest(key, value) for value in found if value is not None))


def _digest(key: bytes, normalised: str) -> str:
    return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()
