"""What Seam answers is input: each value the Seam adapter hands on is cleaned and fitted here.

A guest's name and a reservation key are typed by people and other systems, and they reach the
ledger, the messages and the console. Left as they came, a NUL byte made PostgreSQL refuse the
delivery rows of every guest of the access method, a value longer than its column did the same,
a lone surrogate could not be encoded at all, and control or bidi characters can disguise a
name on a page. So, as the adapter builds app.ports' types:

- text (names, keys, space names): Unicode NFC; control characters, lone surrogates,
  noncharacters, bidi embeddings and overrides, zero-width and other invisible format
  characters dropped (a tab or a line break becomes a space), runs of spaces made one, and cut
  to the ledger column it lands in (TEXT_CHARS), ending with "…" when cut;
- ids: kept only when they look like one (printable ASCII without spaces, ID_CHARS at most);
  anything else is no id: a guest whose id is garbage cannot be addressed, the others can;
- phone numbers: any digits (NFKC: full-width ones too) after a +, spaces, dots, dashes and
  brackets dropped, then E.164 (8 to 15 digits) or none: no SMS, the email still goes;
- email addresses: trimmed, one @, no space or control character, EMAIL_CHARS at most, or none;
- credentials: a code of printable characters, an Instant Key URL of http(s) without spaces,
  or none (the access method is then treated as not issued, and Seam's next event sends it).

Nothing is refused for the others' sake: each value is kept as far as it fits.
"""

from __future__ import annotations

import re
import unicodedata

# The ledger's columns (app/ledger/models.py): String(100) ids, String(200) names and keys.
# tests/adapters/test_seam_input.py checks these against the models.
ID_CHARS = 100
TEXT_CHARS = 200
EMAIL_CHARS = 200  # under RFC 5321's 254: the ledger's masked copy must fit String(200)
URL_CHARS = 2000
CODE_CHARS = 100

_ID = re.compile(r"[\x21-\x7e]+")
# A phone number as written: its + and country code, or a national number (06 12 34 56 78) that
# the planner reads in the hotel's country (app/delivery/phones.py decides if it can be one).
_PHONE = re.compile(r"\+?[0-9]{4,17}")
_PHONE_DECORATION = re.compile(r"[\s().\-]")
_EMAIL = re.compile(r"[^\s@\x00-\x1f\x7f]+@[^\s@\x00-\x1f\x7f]+\.[^\s@\x00-\x1f\x7f]+")
_URL = re.compile(r"https?://[\x21-\x7e]+")
_SPACES = re.compile(r"\s+")
# Accents stacked on one letter ("zalgo" text): a few are a language, hundreds are a disguise.
MAX_COMBINING = 4
_COMBINING_RUN = re.compile(
    r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]{5,}"
)
# Format characters a name has no use for: bidi embeddings, overrides and isolates, zero-width
# spaces and joiners' look-alikes, the BOM. (ZWJ U+200D stays: emoji and some scripts need it.)
_INVISIBLE = frozenset(
    {*range(0x200B, 0x200D), 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2060, 0x2070)}
    | {0xFEFF, 0x061C, 0x180E}
)


def _visible(character: str) -> str:
    """The character as kept: '' to drop it, ' ' for a tab or line break."""
    code = ord(character)
    if character in "\t\n\r\v\f\x85\u2028\u2029":
        return " "
    if code in _INVISIBLE or (code & 0xFFFE) == 0xFFFE or 0xFDD0 <= code <= 0xFDEF:
        return ""
    category = unicodedata.category(character)
    if category in ("Cc", "Cs", "Co", "Cn"):
        return ""
    return character


def clean_text(value: object, limit: int = TEXT_CHARS) -> str | None:
    """A name or key, readable and at most `limit` characters; None when nothing is left."""
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFC", value)
    text = _COMBINING_RUN.sub(lambda run: run.group(0)[:MAX_COMBINING], text)
    text = _SPACES.sub(" ", "".join(map(_visible, text))).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or None


def clean_id(value: object) -> str | None:
    """A Seam id as it is, or None when it does not look like one."""
    if isinstance(value, str) and len(value) <= ID_CHARS and _ID.fullmatch(value):
        return value
    return None


def clean_phone(value: object) -> str | None:
    """A phone number's digits (and its leading +), without spacing or decoration, or None for
    anything that cannot be one. Whether a national number is a number of the hotel's country
    is the planner's to decide (app/delivery/phones.py), with that country."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    visible = "".join(map(_visible, unicodedata.normalize("NFKC", value)))
    number = _PHONE_DECORATION.sub("", visible)
    return number if _PHONE.fullmatch(number) else None


def clean_email(value: object) -> str | None:
    """An email address that fits the ledger, or None."""
    if not isinstance(value, str):
        return None
    address = "".join(map(_visible, unicodedata.normalize("NFC", value))).strip()
    if len(address) > EMAIL_CHARS or not _EMAIL.fullmatch(address):
        return None
    return address


def clean_code(value: object) -> str | None:
    """A PIN code of printable characters, or None."""
    if isinstance(value, str) and len(value) <= CODE_CHARS and _ID.fullmatch(value):
        return value
    return None


def clean_url(value: object) -> str | None:
    """An http(s) URL without spaces or control characters, or None."""
    if isinstance(value, str) and len(value) <= URL_CHARS and _URL.fullmatch(value):
        return value
    return None
