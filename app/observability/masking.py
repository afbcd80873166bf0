"""Masking of phone numbers and email addresses, for logs and the ledger's display columns."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"(?P<local>[A-Za-z0-9._%+-]+)@(?P<domain>[A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_PHONE = re.compile(r"\+\d{7,15}\b")


def mask_phone(number: str) -> str:
    """+15555550123 -> +1********23: the country code and last two digits stay readable."""
    digits = number.lstrip("+")
    if len(digits) <= 4:
        return "*" * len(number)
    return f"+{digits[0]}{'*' * (len(digits) - 3)}{digits[-2:]}"


def mask_email(address: str) -> str:
    """alex.rivera@example.com -> a***@example.com."""
    local, _, domain = address.partition("@")
    if not domain:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_destination(destination: str) -> str:
    return mask_email(destination) if "@" in destination else mask_phone(destination)


def mask_text(text: str) -> str:
    """Mask every phone number and email address found in free text."""
    # Neither can match without its "@" or "+": most text (ids, names) is spared both.
    if "@" in text:
        text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    if "+" in text:
        text = _PHONE.sub(lambda m: mask_phone(m.group(0)), text)
    return text
