"""WhatsApp content templates: which approved template each guest message goes out as.

WhatsApp takes a business's first message to a guest only as a template it approved: in Twilio,
a content template (`HX...`, the Content API) whose placeholders (`{{1}}`, `{{2}}`, ...) are
filled when the message is sent. Ops write the words in Twilio and have them approved; here,
in templates/properties.toml, they say which content template each message is sent with (one
SID, or one per language), and which of keycourier's template variables fills each placeholder:

    [whatsapp.pin_code]                       # every hotel's, unless its own entry names one
    content_sid = { en = "HX...", fr = "HX..." }   # or one SID for every language
    variables = { 1 = "guest_first_name", 2 = "pin_code", 3 = "property_name" }

    [workspaces."ID".whatsapp.pin_code]       # this hotel's own (a space's wins, as elsewhere)

Parsing refuses a SID that is not a content template's, placeholders that are not 1..n without a
gap, a variable a message does not have, and a key message whose template leaves the key out;
`templates check` then requires a content template for each key message where WhatsApp is on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.messages.kinds import MessageKind
from app.settings.locales import normalize_locale

_CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
_TEMPLATE_KEYS = frozenset({"content_sid", "variables"})
# WhatsApp refuses an empty parameter (Twilio error 21656) and one with a line break, a tab or
# more than four spaces in a row: what fills a placeholder is one line, never empty.
EMPTY_VALUE = "-"
MAX_VALUE_CHARS = 1024

# The template variables a placeholder may be filled with (templates/README.md lists them all):
# the ones that read as text in a sentence. `space_names` is joined with ", ".
_TEXT_VARIABLES = (
    "guest_name",
    "guest_first_name",
    "space_names",
    "property_name",
    "stay_starts_at",
    "stay_ends_at",
    "reservation",
    "access_grant_name",
)


def guest_messages() -> tuple[str, ...]:
    """The messages that may go to a guest by WhatsApp (template folder names)."""
    return tuple(
        template for kind in MessageKind if kind.is_for_guest for template in kind.templates
    )


def variables_of(message: str) -> tuple[str, ...]:
    """The variables that may fill a placeholder of `message`'s content template."""
    kind = MessageKind.by_template(message)
    credential = kind.credential_variable if kind is not None else None
    return _TEXT_VARIABLES + ((credential,) if credential else ())


def credential_of(message: str) -> str | None:
    """The variable a key message exists to deliver (its content template must show it)."""
    kind = MessageKind.by_template(message)
    return kind.credential_variable if kind is not None else None


@dataclass(frozen=True)
class ContentTemplate:
    """One message's content template: its SID per language ("" for every language) and the
    variable that fills each placeholder ("1" -> "guest_first_name")."""

    sids: Mapping[str, str]
    variables: Mapping[str, str] = field(default_factory=dict)

    def sid_for(self, locale: str, default_locale: str) -> str | None:
        """The SID for a guest written to in `locale`: that language's, else the language's
        without its region, else DEFAULT_LOCALE's, else the one for every language."""
        for candidate in (locale, locale.split("_")[0], default_locale, ""):
            if candidate in self.sids:
                return self.sids[candidate]
        return None


@dataclass(frozen=True)
class Content:
    """What one WhatsApp message is sent as: the template's SID and its placeholders."""

    content_sid: str
    variables: Mapping[str, str] = field(repr=False)


def parse_templates(values: object) -> dict[str, ContentTemplate]:
    """A `whatsapp` table of properties.toml: message name -> its content template. Raises
    ValueError saying what is wrong (the caller adds where)."""
    if not isinstance(values, dict):
        raise ValueError("whatsapp must be a table of messages, e.g. [whatsapp.pin_code]")
    allowed = guest_messages()
    templates = {}
    for message, table in values.items():
        if message not in allowed:
            raise ValueError(
                f"whatsapp.{message}: not a message a guest is sent (they are: "
                + ", ".join(allowed)
                + ")"
            )
        templates[message] = _parse_template(message, table)
    return templates


def _parse_template(message: str, table: object) -> ContentTemplate:
    where = f"whatsapp.{message}"
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table with content_sid and variables")
    unknown = sorted(set(table) - _TEMPLATE_KEYS)
    if unknown:
        raise ValueError(f"{where} has an unknown setting {unknown[0]!r} (allowed: content_sid, "
                         "variables)")  # fmt: skip
    if "content_sid" not in table:
        raise ValueError(f"{where} needs content_sid (the HX... SID Twilio shows)")
    sids = _parse_sids(where, table["content_sid"])
    variables = _parse_variables(where, message, table.get("variables", {}))
    return ContentTemplate(sids, variables)


def _parse_sids(where: str, value: object) -> dict[str, str]:
    if isinstance(value, str):
        return {"": _sid(where, value)}
    if not isinstance(value, dict) or not value:
        raise ValueError(
            f'{where}.content_sid must be "HX..." or a table of languages, '
            '{ en = "HX...", fr = "HX..." }'
        )
    sids = {}
    for locale, sid in value.items():
        try:
            normalized = normalize_locale(locale)
        except ValueError as exc:
            raise ValueError(f"{where}.content_sid: {exc}") from None
        if not isinstance(sid, str):
            raise ValueError(f"{where}.content_sid.{locale} must be text in quotes")
        sids[normalized] = _sid(where, sid)
    return sids


def _sid(where: str, text: str) -> str:
    sid = text.strip()
    if not _CONTENT_SID.fullmatch(sid):
        raise ValueError(
            f"{where}.content_sid: {text!r} is not a content template SID (HX followed by 32 "
            "hex characters, from Twilio's Content Template Builder)"
        )
    return sid


def _parse_variables(where: str, message: str, value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f'{where}.variables must be a table, e.g. {{ 1 = "guest_first_name" }}')
    known = variables_of(message)
    numbers = []
    for placeholder, variable in value.items():
        if not (placeholder.isascii() and placeholder.isdigit()):
            raise ValueError(
                f"{where}.variables: {placeholder!r} is not a placeholder number ({{{{1}}}} is 1)"
            )
        numbers.append(int(placeholder))
        if variable not in known:
            raise ValueError(
                f"{where}.variables.{placeholder}: {variable!r} is not a variable {message} "
                f"has (it has: {', '.join(known)})"
            )
    if sorted(numbers) != list(range(1, len(numbers) + 1)):
        raise ValueError(
            f"{where}.variables must fill placeholders 1 to {max(numbers, default=0)} with no "
            "gap: every placeholder of the template needs its variable"
        )
    credential = credential_of(message)
    if credential is not None and credential not in value.values():
        raise ValueError(
            f"{where}.variables: no placeholder is filled with {credential}, so the guest "
            "would not get their key"
        )
    return {
        str(number): value[placeholder] for placeholder, number in zip(value, numbers, strict=True)
    }


def content_variables(template: ContentTemplate, context: Mapping[str, object]) -> dict[str, str]:
    """ContentVariables for one message: each placeholder's text from the message's variables,
    one line, never empty (WhatsApp refuses both)."""
    return {
        placeholder: _one_line(context.get(variable))
        for placeholder, variable in sorted(template.variables.items(), key=lambda i: int(i[0]))
    }


def _one_line(value: object) -> str:
    if value is None or value is False:
        return EMPTY_VALUE
    if isinstance(value, list | tuple):
        value = ", ".join(str(item) for item in value)
    text = " ".join(str(value).split())[:MAX_VALUE_CHARS]
    return text or EMPTY_VALUE
