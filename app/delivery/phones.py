"""A guest's phone number, read the way a hotel writes it, as the E.164 number Twilio takes.

Seam's user identities should hold E.164 numbers, but a property management system often
hands over what the guest typed: "06 12 34 56 78" for a French mobile. Keeping the digits and
adding "+" made that "+0612345678", which Twilio refuses (21211) after the send was attempted.
Here a number is parsed with phonenumbers (Google's libphonenumber): one with its country code
is read as is; a national one is read in the hotel's country (`country` in
templates/properties.toml); a number that cannot be a phone number of that country (wrong
length, unknown country code, no country to read it in) is refused with the reason, so its SMS
fails at once, recorded, and the guest's email takes over (app/delivery/fallback.py).

"Can be a number" is libphonenumber's possible-number test (the country code and the length),
not its full validity test: that one also checks number ranges against metadata that lags
new ranges and refuses fictional ones (555 numbers, used in demos and tests), and refusing a
real guest's new number would leave them without their key. Twilio still has the last word.
Reasons name the problem and the country, never a digit of the number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

_LENGTH_PROBLEMS = {
    ValidationResult.TOO_SHORT: "is too short",
    ValidationResult.TOO_LONG: "is too long",
    ValidationResult.INVALID_LENGTH: "has the wrong number of digits",
    ValidationResult.INVALID_COUNTRY_CODE: "has a country code no country uses",
}
_PARSE_PROBLEMS = {
    NumberParseException.INVALID_COUNTRY_CODE: "has a country code no country uses",
    NumberParseException.NOT_A_NUMBER: "is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "is too short",
    NumberParseException.TOO_SHORT_NSN: "is too short",
    NumberParseException.TOO_LONG: "is too long",
}


@dataclass(frozen=True)
class Phone:
    """A phone number as E.164 (`+33612345678`), or why it cannot be sent to."""

    e164: str | None = field(default=None, repr=False)
    problem: str | None = None


@lru_cache(maxsize=1024)
def parse_phone(text: str, country: str | None) -> Phone:
    """`text` as E.164; a national number is read in `country` (ISO 3166 alpha-2, e.g. FR).

    Kept for the last 1,024 numbers: a guest's message reads the same number four or five
    times (its plan, its destination, its text), and phonenumbers' parse is pure Python."""
    value = text.strip()
    if value.startswith("00") and country is None:
        # 00 dials out of most countries; with a country, phonenumbers knows its own prefix.
        value = "+" + value[2:]
    international = value.startswith("+")
    if not international and country is None:
        return Phone(
            problem="the phone number has no country code (+...), and templates/"
            "properties.toml gives this hotel no country to read it in"
        )
    where = "" if international else f" for {country}"
    try:
        number = phonenumbers.parse(value, None if international else country)
    except NumberParseException as exc:
        reason = _PARSE_PROBLEMS.get(exc.error_type, "cannot be read")
        return Phone(problem=f"the phone number {reason}{where}")
    verdict = phonenumbers.is_possible_number_with_reason(number)
    if verdict not in (ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        reason = _LENGTH_PROBLEMS.get(verdict, "is not a possible number")
        region = phonenumbers.region_code_for_number(number) or country
        return Phone(problem=f"the phone number {reason}" + (f" for {region}" if region else ""))
    if verdict == ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        return Phone(problem=f"the phone number lacks its area code{where}")
    return Phone(e164=phonenumbers.format_number(number, PhoneNumberFormat.E164))
