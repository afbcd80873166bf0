"""The guest's resend link token: short, signed for one delivery's guest and channel, and
refused once altered, signed with another key, or made for someone else."""

from __future__ import annotations

import base64
import string
from datetime import UTC, datetime, timedelta

import pytest

from app.delivery.guest_links import TOKEN_CHARS, expiry, read, sign, verify
from app.ports import AccessGrant

KEY = b"k" * 32
GUEST = "0d6e1c3b-7e0f-4b59-9d1a-2f3b7c9a8e41"
UNTIL = datetime(2031, 6, 23, 11, 0, tzinfo=UTC)


def token(delivery_id: int = 123, recipient: str = GUEST, channel: str = "sms") -> str:
    return sign(KEY, delivery_id, recipient, channel, UNTIL)


def test_a_token_reads_back_what_it_was_signed_for_and_verifies() -> None:
    """28 URL-safe characters carrying the delivery id and the expiry; it verifies for the
    guest and channel it was made for."""
    made = token()
    assert len(made) == TOKEN_CHARS == 28
    assert set(made) <= set(string.ascii_letters + string.digits + "-_")
    found = read(made)
    assert found is not None
    assert (found.delivery_id, found.expires_at) == (123, UNTIL)
    assert verify(KEY, found, GUEST, "sms")


@pytest.mark.parametrize(
    ("recipient", "channel", "key"),
    [
        ("someone-else", "sms", KEY),
        (GUEST, "email", KEY),
        (GUEST, "sms", b"another key of thirty-two bytes!"),
    ],
)
def test_a_token_made_for_one_guest_channel_or_key_does_not_verify_for_another(
    recipient: str, channel: str, key: bytes
) -> None:
    """The tag binds the guest and the channel, under the one key."""
    found = read(token())
    assert found is not None
    assert not verify(key, found, recipient, channel)


def test_every_altered_character_is_refused() -> None:
    """Changing any one character (id, expiry or tag) gives a token that does not read or does
    not verify: a later expiry or another delivery cannot be written in."""
    made = token()
    for position in range(len(made)):
        for replacement in "A_9":
            if made[position] == replacement:
                continue
            altered = made[:position] + replacement + made[position + 1 :]
            found = read(altered)
            assert found is None or not verify(KEY, found, GUEST, "sms"), (position, altered)


@pytest.mark.parametrize(
    "text",
    ["", "x", "A" * 27, "A" * 29, "AQAAAHtpVbkABFMWOZ_9nWndnJo=", "AQAAAHtpVbkABFMWOZ/9nWndnJoe",
     "ÀQAAAHtpVbkABFMWOZ_9nWndnJoe", "AAAAAHtpVbkABFMWOZ_9nWndnJoe"],
)  # fmt: skip
def test_what_cannot_be_a_token_is_none(text: str) -> None:
    """Wrong length, padding, another alphabet, another version (the first byte 0): not read."""
    assert read(text) is None


def test_a_delivery_id_no_row_can_have_is_neither_signed_nor_read() -> None:
    """0 and ids past an Integer key name nothing."""
    with pytest.raises(ValueError, match="positive Integer key"):
        sign(KEY, 0, GUEST, "sms", UNTIL)
    zero = bytes([1]) + bytes(8) + bytes(12)
    assert read(base64.urlsafe_b64encode(zero).rstrip(b"=").decode()) is None


def test_a_link_lasts_until_the_stay_ends_and_no_longer_than_the_bound() -> None:
    """The grant's ends_at when it is sooner than GUEST_LINK_MAX_DAYS from now; the bound
    otherwise, and for a grant without an end."""
    now = datetime(2031, 6, 1, tzinfo=UTC)

    def grant(ends_at: datetime | None) -> AccessGrant:
        return AccessGrant("g", GUEST, "Alex", None, ends_at, ("s",), "k")

    assert expiry(grant(UNTIL), now, 30) == UNTIL
    assert expiry(grant(UNTIL), now, 7) == now + timedelta(days=7)
    assert expiry(grant(None), now, 30) == now + timedelta(days=30)
    assert expiry(None, now, 2) == now + timedelta(days=2)
