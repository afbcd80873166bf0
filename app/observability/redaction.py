"""What must never be read in a log line or an error report, and the step that removes it.

Code never logs a credential on purpose; this is the second line, applied to every log record
(whichever library wrote it) and to every Sentry event. It masks phone numbers and email
addresses, and removes PIN codes, Instant Key URLs, webhook secrets, API keys and tokens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import SecretStr

from app.observability.masking import mask_text
from app.settings import Settings

REDACTED = "[redacted]"

_SECRETS = re.compile(
    r"whsec_[A-Za-z0-9+/=]+"  # Svix signing secrets
    r"|seam_[A-Za-z0-9_]+"  # Seam API keys
    r"|SG\.[A-Za-z0-9_.-]+"  # SendGrid API keys
    r"|(?i:bearer|basic)\s+[A-Za-z0-9._~+/=-]+"  # Authorization header values
    r"|https?://ik\.seam\.co/\S+"  # Instant Key URLs
)
# A PIN is only digits: it is recognised by the word before it ("code 4821", "code='4821'",
# "PIN: 4821", "passcode is 4821"), since a bare number may as well be an id. A provider's
# error code, which ProviderError writes as "(code 21211)", is kept.
_PIN = re.compile(r"(?i)(\b(?:pin|pin_code|code|passcode)\b[^0-9\n]{0,12}?)\d{4,12}\b")
# What _PIN's and _SECRETS' case-insensitive words need, with the same flag.
_PIN_WORD = re.compile(r"(?i)pin|code")
_AUTH_WORD = re.compile(r"(?i)bearer|basic")
_ENCODED = re.compile(r"%2B(?=\d)|%40", re.IGNORECASE)
# Values under these keys are dropped whatever they look like (structured log fields, Sentry
# request data and local variables).
SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "auth_token",
        "api_key",
        "code",
        "credential",
        "instant_key_url",
        "password",
        "pin",
        "pin_code",
        "secret",
        "svix-signature",
        "token",
        "x-twilio-signature",
    }
)


class _Configured:
    """The secrets this process was configured with, removed wherever they appear: a Twilio
    auth token or a custom key has no shape a pattern could recognise."""

    pattern: re.Pattern[str] | None = None


def hide_values(values: Iterable[str]) -> None:
    """Remove these exact values (the configured secrets) from everything redacted from now on."""
    # Short values would blank out ordinary words and numbers; real secrets are long.
    wanted = sorted({value for value in values if len(value) >= 8}, key=len, reverse=True)
    _Configured.pattern = re.compile("|".join(map(re.escape, wanted))) if wanted else None


def hide_configured_secrets(settings: Settings) -> None:
    """Remove every secret setting's value (API keys, tokens, the webhook secret, the DSN)."""
    hide_values(
        value.get_secret_value()
        for value in (getattr(settings, name) for name in type(settings).model_fields)
        if isinstance(value, SecretStr)
    )


def redact(text: str) -> str:
    """The text with secrets and PINs removed, phone numbers and email addresses masked.

    Every log line's every field comes through here, so each pattern runs only on text that
    holds what it needs to match (bench/RESULTS.md: most fields are ids and names that hold
    none); each check asks for no more than its pattern does, so nothing it would have
    caught is let through."""
    if _Configured.pattern is not None:
        text = _Configured.pattern.sub(REDACTED, text)
    # A URL (an access log's query string) writes "+" and "@" as %2B and %40.
    if "%" in text:
        text = _ENCODED.sub(lambda m: "+" if m.group(0).upper() == "%2B" else "@", text)
    if _may_hold_secret(text):
        text = _SECRETS.sub(REDACTED, text)
    if _PIN_WORD.search(text):
        text = _PIN.sub(_without_pin, text)
    return mask_text(text)


def _may_hold_secret(text: str) -> bool:
    """Whether one of _SECRETS' alternatives could match: its case-sensitive prefixes, or its
    case-insensitive words (searched with the same flag, so Unicode case folding agrees)."""
    return (
        "whsec_" in text
        or "seam_" in text
        or "SG." in text
        or "://ik.seam.co/" in text
        or _AUTH_WORD.search(text) is not None
    )


def _without_pin(match: re.Match[str]) -> str:
    text, start, end = match.string, match.start(), match.end()
    if text[start - 1 : start] == "(" and match.group(1) == "code " and text[end : end + 1] == ")":
        return match.group(0)  # a provider's error code
    return match.group(1) + REDACTED


def is_sensitive(key: str) -> bool:
    lowered = key.lower()
    return lowered in SENSITIVE_KEYS or lowered.endswith(("_secret", "_token", "_api_key"))


def redact_value(value: Any) -> Any:
    """`value` with every string redacted and every sensitive key's value dropped, in depth."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and is_sensitive(key) else redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else is rendered as text first: an SDK object's repr may hold a PIN.
    return redact(repr(value))
