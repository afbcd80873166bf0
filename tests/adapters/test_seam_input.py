"""Cleaning what Seam answers: every value fits the ledger column it lands in and reads as typed,
without the bytes and characters that broke the ledger or could disguise a name."""

from __future__ import annotations

import pytest
from sqlalchemy import String

from app.adapters import seam_input
from app.adapters.seam_input import clean_email, clean_id, clean_phone, clean_text
from app.ledger.models import Delivery, FrontDeskFlag


def column_length(model: type, name: str) -> int:
    column_type = model.__table__.c[name].type  # type: ignore[attr-defined]
    assert isinstance(column_type, String)
    assert column_type.length is not None
    return column_type.length


def test_limits_match_the_ledger_columns() -> None:
    """The adapter's limits are the ledger's column sizes, so a cleaned value always fits."""
    assert column_length(Delivery, "guest_name") == seam_input.TEXT_CHARS
    assert column_length(Delivery, "reservation") == seam_input.TEXT_CHARS
    assert column_length(FrontDeskFlag, "guest_name") == seam_input.TEXT_CHARS
    assert column_length(Delivery, "destination_masked") >= seam_input.EMAIL_CHARS
    assert column_length(Delivery, "user_identity_id") == seam_input.ID_CHARS
    assert column_length(Delivery, "access_grant_id") == seam_input.ID_CHARS


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Bea\x00 Okafor", "Bea Okafor"),
        ("\u202eBea\u202c Okafor\u200b", "Bea Okafor"),
        ("Bea\ud800 Okafor", "Bea Okafor"),
        ("Bea\tOkafor\r\n", "Bea Okafor"),
        ("Zoe\u0308", "Zoë"),  # NFC: one character, as typed on another keyboard
        ("Jos\u00e9 \U0001f600", "José \U0001f600"),
        ("\x00\x01", None),
    ],
)
def test_text_is_cleaned_as_typed(raw: str, clean: str | None) -> None:
    """Control, surrogate, bidi and invisible characters go; letters and emoji stay."""
    assert clean_text(raw) == clean


def test_long_text_is_cut_to_its_column_with_a_mark() -> None:
    """A name past 200 characters is cut to 200, ending with an ellipsis; stacked accents are
    kept to a few per letter."""
    cut = clean_text("Okafor" * 100)
    assert cut is not None
    assert len(cut) == 200
    assert cut.endswith("…")
    stacked = clean_text("O" + "\u0301" * 500)
    assert stacked is not None
    assert len(stacked) <= 5


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("+15555550188", "+15555550188"),
        ("+1 (555) 555-0188", "+15555550188"),
        ("+1555\x00555 0188", "+15555550188"),
        ("+" + "".join(chr(0xFF10 + int(d)) for d in "15555550188"), "+15555550188"),
        ("+1" + "5" * 400, None),
        ("06 12 34 56 78", "0612345678"),
        ("123", None),
        ("+1555555O188", None),
        ("call me", None),
    ],
)
def test_phone_numbers_are_digits_or_nothing(raw: str, clean: str | None) -> None:
    """Spacing and full-width digits are read, a national number is kept for the hotel's country
    to read; anything that cannot be a number is no number."""
    assert clean_phone(raw) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("bea@example.com", "bea@example.com"),
        (" bea@example.com\n", "bea@example.com"),
        ("bea\x00@example.com", "bea@example.com"),
        ("bea" + "a" * 300 + "@example.com", None),
        ("bea at example.com", None),
        ("bea@exa mple.com", None),
    ],
)
def test_email_addresses_fit_or_are_nothing(raw: str, clean: str | None) -> None:
    """An address is trimmed and cleaned; one too long for the ledger or malformed is none."""
    assert clean_email(raw) == clean


def test_ids_are_kept_only_when_they_look_like_ids() -> None:
    """A Seam id is printable ASCII up to 100 characters; anything else is no id."""
    assert (
        clean_id("0d6e1c3b-7e0f-4b59-9d1a-2f3b7c9a8e41") == "0d6e1c3b-7e0f-4b59-9d1a-2f3b7c9a8e41"
    )
    assert clean_id("id\x00") is None
    assert clean_id("x" * 101) is None
    assert clean_id("two words") is None
