"""The redaction step skips a pattern only for text that pattern cannot match: for any text,
it gives exactly what running every pattern over it gives (the fast path for the ids and
names that make up most of a log line loses nothing)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from app.observability import redaction
from app.observability.masking import _EMAIL, _PHONE, mask_email, mask_phone
from app.observability.redaction import REDACTED, redact


def every_pattern(text: str) -> str:
    """The redaction as it was before the fast path: every pattern over every text."""
    if redaction._Configured.pattern is not None:
        text = redaction._Configured.pattern.sub(REDACTED, text)
    text = redaction._ENCODED.sub(lambda m: "+" if m.group(0).upper() == "%2B" else "@", text)
    text = redaction._SECRETS.sub(REDACTED, text)
    text = redaction._PIN.sub(redaction._without_pin, text)
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


# Pieces that each pattern looks for, and the Unicode letters that case-insensitive matching
# folds onto ASCII ones (dotted and dotless i, long s, the Kelvin sign).
PIECES = [
    "code ", "PIN: ", "passcode is ", "pin_code=", "CODE", "pİn ", "p\u0131n ", "(code 21211)",
    "4821", "123456", "+15555550123", "%2B15555550123", "%40", "guest@example.com",
    "a%40b.co", "whsec_abc123", "seam_key_1", "SG.abc.def", "Bearer abc.def", "ba\u017fic xyz",
    "BASIC dXNlcg==", "https://ik.seam.co/abc", "task_id", "3f1c9a2e-8b7d-4c1e-9f00-1a2b3c4d5e6f",
    " ", "=", "'", "\n", "\u212a", "é",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=8))
def test_fast_path_equals_every_pattern(parts: list[str]) -> None:
    """Whatever the text, the fast path's result is every pattern's."""
    text = "".join(parts)
    assert redact(text) == every_pattern(text)


def test_case_folded_words_still_hide_a_pin() -> None:
    """A PIN after a word written with letters that only fold to ASCII ("p\u0130n", "p\u0131n") is
    still removed, as the case-insensitive pattern removes it."""
    for word in ("p\u0130n", "p\u0131n", "CODE", "Passcode"):
        assert re.search(r"\d{4}", redact(f"{word} 4821")) is None, word
