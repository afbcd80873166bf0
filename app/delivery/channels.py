"""Which channels a guest's key goes on at once, and which stand in, in turn, when one fails.

A hotel's channel order is its `channels` in templates/properties.toml, else DELIVERY_CHANNELS.
WhatsApp and SMS reach the same phone number: a key goes on the first of them the order lists,
never on both at once, and the next one listed stands by as its fallback. Email reaches another
address and goes beside it, as it always has. After a channel fails for good, the channels are
tried in the order's turn from the one that failed (wrapping round), then SMS and email even
when the order leaves them out (a guest without a key is the worst outcome); WhatsApp only
where it is listed, since it needs the hotel's approved templates.

    order ["whatsapp", "sms", "email"]:  at once whatsapp + email;  whatsapp fails -> sms
    order ["sms", "email"] (the default): at once sms + email;      sms fails -> email
"""

from __future__ import annotations

from collections.abc import Sequence

from app.settings import PHONE_CHANNELS, Channel

# Tried after a failure even when a hotel's order leaves them out.
ALWAYS_FALLBACK: tuple[Channel, ...] = ("sms", "email")


def first_channels(order: Sequence[Channel]) -> tuple[Channel, ...]:
    """The channels a key goes on at once: the first phone channel of `order`, and the others
    (email) as listed."""
    phone = next((channel for channel in order if channel in PHONE_CHANNELS), None)
    return tuple(channel for channel in order if channel == phone or channel not in PHONE_CHANNELS)


def fallback_order(order: Sequence[Channel], failed: str) -> tuple[Channel, ...]:
    """The channels to try, in turn, after `failed` failed for good."""
    chain = list(dict.fromkeys([*order, *ALWAYS_FALLBACK]))
    if failed in chain:
        at = chain.index(failed)
        chain = chain[at + 1 :] + chain[:at]
    return tuple(channel for channel in chain if channel != failed)


def channel_name(channel: str) -> str:
    """How people call it: SMS, WhatsApp, Email."""
    return {"sms": "SMS", "whatsapp": "WhatsApp", "email": "Email"}.get(channel, channel)
