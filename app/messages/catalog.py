"""What the templates folder holds: the messages, their parts, and the variables they may use.

templates/README.md documents the same list for the ops team; a test keeps the two in step.
"""

from __future__ import annotations

from app.messages.kinds import MessageKind

GUEST_PARTS = ("sms.txt", "email_subject.txt", "email.txt", "email.html")
EMAIL_PARTS = ("email_subject.txt", "email.txt", "email.html")
# Message name (its folder under templates/) -> the files each of its locale folders holds: a
# guest is written to by SMS and email, the front desk by email.
MESSAGES: dict[str, tuple[str, ...]] = {
    template: GUEST_PARTS if kind.is_for_guest else EMAIL_PARTS
    for kind in MessageKind
    for template in kind.templates
}
# The variable a guest message exists to deliver: its body must show it.
CREDENTIAL_OF: dict[str, str] = {
    template: variable
    for kind in MessageKind
    if (variable := kind.credential_variable)
    for template in kind.templates
}
# Files of a message that go to the guest's screen in full (the subject shows on lock screens).
BODY_PARTS = ("sms.txt", "email.txt", "email.html")
PROPERTIES_FILE = "properties.toml"
LAYOUT_FILE = "_layout.html"

VARIABLES: dict[str, str] = {
    "guest_name": "The guest's full name, e.g. Alex Rivera",
    "guest_first_name": "The guest's first name, e.g. Alex (may be empty)",
    "space_names": (
        "The rooms and spaces the access covers, a list, e.g. ['Room 204'] (may be empty)"
    ),
    "property_name": "The hotel's name from properties.toml (may be empty)",
    "stay_starts_at": (
        "When access starts, in the hotel's time zone and the guest's language "
        "(empty when it works at once)"
    ),
    "stay_ends_at": (
        "When access ends, in the hotel's time zone and the guest's language "
        "(empty when it has no end)"
    ),
    "reservation": "The reservation key or access grant key, e.g. reservation-8841 (may be None)",
    "access_grant_name": "The access grant's name in Seam, e.g. Alex Rivera, Room 204",
    "access_grant_id": "Seam's id of the access grant",
    "access_method_id": "Seam's id of the access method (the code, mobile key or card)",
    "pin_code": "The door PIN code, e.g. 1234 (pin_code and code_changed only, else None)",
    "instant_key_url": "The Instant Key (mobile key) link (instant_key only, else None)",
    "code_changed": "True when this message replaces a credential the guest was sent before",
    "problem": "What went wrong: one line per channel (front_desk_undelivered and "
    "front_desk_delivery_problem), Seam's error codes (front_desk_key_error), what Seam could "
    "not create (front_desk_grant_incomplete); else None",
    "locale": "The language of this message, e.g. en or fr (for <html lang>)",
    "resend_url": "The guest's own link to have their key sent again (pin_code, code_changed "
    "and instant_key, when properties.toml turns guest_resend_link on; else None)",
}
